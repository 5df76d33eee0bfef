"""Error-compensating rounding for the stem: the first weighted layers of a network.

The first layers of an image network read (nearly) raw pixels, and neighbouring pixels are
almost equal: a 3x3x3 window is mostly one value per colour. Rounding each weight to nearest
leaves errors whose sum over the window multiplies that value, so they add up instead of
averaging out; analytic bias correction removes only their effect on the *mean* input. The
layers that read these inputs are also where a detector is most sensitive: in MediaPipe's
pose detector, int8 weights in the first CONV_2D alone (everything else float) bring the
regressor output to 15.1 dB SQNR, the first three to 12.5 dB with the rest int8 too; a 0.1 %
random change of the first layer's weights already costs 33 dB.

GPTQ (`sdk.converters.quantize.gptq`) chooses the codes of each output channel so that the
errors cancel on the layer's real inputs: it minimises ``||X W^T - X Q^T||^2`` with
H = 2 X^T X from the calibration samples, then the per-channel scales are refitted by least
squares. For the stem this is cheap: only the model's first ops run (a prefix of the graph,
`STEM_SAMPLES` samples), and the Hessians are small (K = KH * KW * Cin of a layer near the
input). The codes stay plain symmetric per-channel int8 with TFLite's scheme: the file is the
same kind of file, only the rounding differs.

The default (`sdk.export(..., stem_rounding=True)`; False turns it off) decides on a held-out
split of the calibration samples (`held_out_split`: the last quarter, 4 to `MAX_HELD_OUT`
samples, never the validation samples); the Hessians come from the other samples only.

1. Per layer (`_choose`): GPTQ codes where they lower the layer's int8 output error on the
   held-out inputs by `MIN_LAYER_GAIN` (about 1 dB): the weight rounding's part, with the mean
   shift removed as bias correction removes it, plus the output's own rounding noise (step^2 /
   12 from its calibrated range). A layer whose weight error sits under that noise is left
   alone.
2. For the model (`confirm`, called by the exporter): the int8 model is quantised once more with
   the stem rounded to nearest; the codes stay only where, on `MODEL_CHECK_SAMPLES` held-out
   samples, the worst output's error is `MIN_GAIN` lower (about 1 dB) and no output's is
   `MAX_LOSS` higher.

Weight error alone is no guide: with the rest of the model float, the stem's GPTQ codes raised
the held-out worst output of MediaPipe's face mesh from 51.8 to 64.8 dB, yet in int8 they cost
its landmarks 1-3.5 dB on four calibration sets (its face flag gained as much). Unchecked, the
rounding had also made the orientation classifier 0.8 dB and BlazeFace at 16 samples 1.7 dB
worse. The notes say which layers kept GPTQ codes, with the held-out figures
(benchmarks/results/corpus-detectors-2026-12-06.md).

`STEM_DEPTH`: layers with fewer than this many weighted layers between them and a model input
(the first CONV_2D, its DEPTHWISE_CONV_2D, the pointwise CONV_2D after it in a MobileNet-style
block). Pose detector, weights only: 12.5 dB (round to nearest), 17.1 / 24.3 / 27.0 / 27.4 dB
with the first 1 / 2 / 3 / 5 layers rounded this way. Layers with more than `MAX_STEM_WEIGHTS`
weights are left to round to nearest (bounds the export time of wide first layers).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from sdk.base.errors import EdgeSDKError
from sdk.base.samples import SampleSet
from sdk.converters.ir import Graph, Model, Operator, Tensor
from sdk.converters.quantize.adaround import error_power
from sdk.converters.quantize.gptq import (
    LayerHessian,
    collect_hessians,
    gptq_layers,
    gptq_quantize,
    refit_scales,
    weight_key,
)
from sdk.converters.quantize.plan import layer_name
from sdk.converters.quantize.rules import OP_RULES
from sdk.converters.quantize.subgraph import computing
from sdk.converters.quantize.weights import symmetric_per_channel

#: layers with fewer weighted layers than this between them and a model input are the stem
STEM_DEPTH = 3
#: calibration samples the stem's input Hessians are measured on
STEM_SAMPLES = 32
#: input rows per layer (output positions sampled over the samples)
STEM_ROWS = 8192
#: a Hessian built from fewer input rows than this many per input is rank-deficient: GPTQ would
#: fit the calibration rows rather than the layer (a dense wake-word head: 32 samples of 1536
#: features; oww_alexa 29.4 -> 22.9 dB, silero_vad_16k_op15 21.6 -> 19.9 dB): round to nearest
MIN_ROWS_PER_INPUT = 2
#: held-out samples: a quarter of the calibration samples, at least MIN_HELD_OUT, at most this
MAX_HELD_OUT = 8
MIN_HELD_OUT = 4
#: the int8 check keeps GPTQ codes where they lower the held-out worst output's error power by
#: this fraction (about 1 dB): on 4 held-out samples smaller gains are noise (selfie segmentation
#: landscape: +0.3 dB held out, -4.8 dB and mask IoU 0.92 -> 0.81 on the corpus's samples)
MIN_GAIN = 0.2
#: ... and no output's error power may rise by more than this fraction (about 0.2 dB)
MAX_LOSS = 0.05
#: a stem layer's GPTQ codes must lower its int8 output error (weights + the output's own
#: rounding) on the held-out inputs by this fraction (about 1 dB): smaller gains cannot move the
#: model's outputs, and the int8 check they would cost (two more int8 builds and runs) is skipped
MIN_LAYER_GAIN = 0.2
#: stem layers with more weights than this round to nearest (a wide first dense layer)
MAX_STEM_WEIGHTS = 1 << 18
#: held-out samples the int8 check (`confirm`) runs the float and both int8 models on
MODEL_CHECK_SAMPLES = 4


@dataclass
class StemChoice:
    """One layer's held-out check: the SQNR (dB) of its output on the held-out inputs with its
    weights rounded to nearest and with GPTQ codes, and whether the codes were kept. For a stem
    layer the output is its own int8 output (weight rounding, mean shift removed as bias
    correction does, plus the output's own rounding noise); `head_rounding` uses it for the
    output heads (their bias-corrected output)."""

    layer: str
    rtn_db: float
    gptq_db: float
    kept: bool


def describe_choices(choices: list[StemChoice]) -> str:
    """The held-out checks as "layer rtn -> gptq dB" items, "(not kept)" where refused."""
    return "; ".join(f"{c.layer} {c.rtn_db:.1f} -> {c.gptq_db:.1f} dB"
                     f"{'' if c.kept else ' (not kept)'}" for c in choices)


@dataclass
class StemRounding:
    """The stem layers' input Hessians, keyed by `gptq.weight_key` of their float weights."""

    hessians: dict[tuple[tuple[int, ...], str], LayerHessian] = field(default_factory=dict)
    #: layers whose codes were chosen here (filled by the rewrite)
    rounded: list[str] = field(default_factory=list)
    #: weight keys whose GPTQ codes passed the held-out check; None: no check was made
    accepted: set[tuple[tuple[int, ...], str]] | None = None
    #: the held-out check, per stem layer in execution order
    choices: list[StemChoice] = field(default_factory=list)
    #: the int8 model's check (`confirm`): held-out worst-output SQNR (dB) with the stem rounded
    #: to nearest and with the chosen layers' GPTQ codes
    model_db: tuple[float, float] | None = None
    #: the same per model output
    output_db: list[tuple[float, float]] = field(default_factory=list)
    #: the held-out calibration samples (for `confirm`)
    held: SampleSet | None = field(default=None, repr=False)
    #: why the stem kept round-to-nearest as a whole (too few samples, ...), when it did
    skipped: str = ""
    seconds: float = 0.0

    def codes(self, w: np.ndarray, axis: int, scales: np.ndarray, qmin: int, qmax: int
              ) -> tuple[np.ndarray, np.ndarray] | None:
        """(scales, codes shaped like `w`) rounded against the layer's inputs, or None when
        `w` is not a stem layer's weights (or its GPTQ codes failed the held-out check)."""
        key = weight_key(w)
        if self.accepted is not None and key not in self.accepted:
            return None
        entry = self.hessians.get(key)
        if entry is None:
            return None
        solved = _solve(w, axis, scales, qmin, qmax, entry)
        if solved is not None:
            self.rounded.extend(n for n in entry.layers if n not in self.rounded)
        return solved

    def describe(self) -> str:
        text = (f"stem rounding: {len(self.rounded)} layer(s) near the input rounded by GPTQ "
                f"against their calibration inputs ({', '.join(self.rounded) or 'none'})")
        if self.choices:
            text += "; held-out check, each layer's int8 output SQNR round-to-nearest -> GPTQ: " \
                + describe_choices(self.choices)
        if self.model_db is not None:
            verdict = "kept" if self.accepted else "not kept: round to nearest"
            outputs = ", ".join(f"{a:.1f} -> {b:.1f}" for a, b in self.output_db)
            text += (f"; the int8 model's outputs on {MODEL_CHECK_SAMPLES} held-out samples "
                     f"{outputs} dB, {verdict}")
        return text


def _solve(w: np.ndarray, axis: int, scales: np.ndarray, qmin: int, qmax: int,
           entry: LayerHessian) -> tuple[np.ndarray, np.ndarray] | None:
    rows = np.moveaxis(np.asarray(w, np.float64), axis, 0).reshape(w.shape[axis], -1)
    s = np.asarray(scales, np.float64).reshape(-1)
    if s.size != rows.shape[0] or entry.hessian.shape[-1] != rows.shape[1] \
            or entry.rows < MIN_ROWS_PER_INPUT * rows.shape[1]:
        return None
    result = gptq_quantize(rows, entry.hessian, qmin, qmax, scales=s)
    fitted = refit_scales(rows, result.codes, s, entry.hessian)
    codes = np.moveaxis(result.codes.reshape(np.moveaxis(np.asarray(w), axis, 0).shape),
                        0, axis)
    return fitted.astype(np.float32), codes


def weighted_depth(graph: Graph) -> dict[int, int]:
    """For each operator (by id): the most weighted layers on a path from a model input to
    it, itself excluded."""
    weighted = {id(op) for op in gptq_layers(Model([graph]))}
    producers = {id(t): op for op in graph.operators for t in op.outputs if t is not None}
    depth: dict[int, int] = {}
    for op in graph.operators:  # execution order: producers come first
        d = 0
        for t in op.inputs:
            if t is None or t.is_constant:
                continue
            p = producers.get(id(t))
            if p is not None and id(p) in depth:
                d = max(d, depth[id(p)] + (1 if id(p) in weighted else 0))
        depth[id(op)] = d
    return depth


def stem_layers(model: Model, depth: int = STEM_DEPTH) -> list[Operator]:
    g = model.main
    d = weighted_depth(g)
    return [op for op in gptq_layers(model) if d[id(op)] < depth]


def held_out_split(samples: SampleSet) -> tuple[SampleSet, SampleSet] | None:
    """(fit, held out): the last quarter of the calibration samples (MIN_HELD_OUT to
    MAX_HELD_OUT of them) is held out; None when the fit part would be smaller than twice that."""
    n = len(samples)
    held = min(MAX_HELD_OUT, max(MIN_HELD_OUT, n // 4))
    if n - held < 2 * held:
        return None
    return (samples.subset(slice(0, n - held)),
            samples.subset(slice(n - held, n), f"{samples.source}: stem held-out"))


def stem_rounding(model: Model, samples: SampleSet, *, depth: int = STEM_DEPTH,
                  max_samples: int = STEM_SAMPLES, check: bool = True,
                  ranges: Mapping[Tensor, tuple[float, float]] | None = None) -> StemRounding:
    """The input Hessians of `model`'s stem layers on (up to `max_samples` of) `samples`; only
    the graph up to the last stem layer runs. `check`: hold out part of `samples`, fit the
    Hessians on the rest and keep GPTQ codes only where they lower the held-out error, per
    layer and at the model's outputs (see the module docstring); without it every stem layer
    gets GPTQ codes. `ranges`: the calibrated int8 ranges of the layers' outputs (their own
    rounding noise is part of each layer's error in the check)."""
    start = time.perf_counter()
    ops = [op for op in stem_layers(model, depth)
           if _weight(op).num_elements <= MAX_STEM_WEIGHTS]
    if not ops or len(samples) == 0:
        return StemRounding()
    held: SampleSet | None = None
    fit = samples
    if check:
        split = held_out_split(samples)
        if split is None:
            return StemRounding(accepted=set(), skipped=(
                f"stem rounding: off ({len(samples)} calibration samples leave too few to hold "
                f"out {MIN_HELD_OUT} for its check; round to nearest)"))
        fit, held = split
    prefix = computing(model, [t for op in ops for t in op.outputs if t is not None])
    used = fit.subset(slice(0, max_samples)) if len(fit) > max_samples else fit
    hessians = collect_hessians(prefix, used, max_rows=STEM_ROWS)
    names = {layer_name(op) for op in ops}
    stem = StemRounding({k: v for k, v in hessians.items()
                         if any(n in names for n in v.layers)})
    if held is not None:
        try:
            _choose(stem, prefix, ops, held, ranges or {})
            stem.held = held
        except EdgeSDKError as exc:  # the float model does not run here: no check, no GPTQ
            stem.accepted, stem.choices = set(), []
            stem.skipped = f"stem rounding: off (its held-out check could not run: {exc})"
    stem.seconds = time.perf_counter() - start
    return stem


def _weight(op: Operator) -> Tensor:
    rule = OP_RULES[op.type]
    assert rule.weight is not None
    w = op.inputs[rule.weight]
    assert w is not None
    return w


def _centered(entry: LayerHessian) -> np.ndarray:
    """2 Cov(X) from H = 2 E[x x^T] and the mean row: the output error power that is left
    once the bias correction has removed the mean shift."""
    h = np.asarray(entry.hessian, np.float64)
    if entry.mean is None:
        return h
    m = np.asarray(entry.mean, np.float64)
    return h - 2.0 * m[..., :, None] * m[..., None, :]


@dataclass(eq=False)
class _Candidate:
    """A stem layer's weight error rows [C, K] rounded to nearest and by GPTQ."""

    key: tuple[tuple[int, ...], str]
    rows: np.ndarray  # the float weights as [C, K]
    rtn: np.ndarray
    gptq: np.ndarray | None


def _candidate(op: Operator, entry: LayerHessian) -> _Candidate:
    axis = OP_RULES[op.type].weight_axis
    w = _weight(op).numpy().astype(np.float32)
    rows = np.moveaxis(w.astype(np.float64), axis, 0).reshape(w.shape[axis], -1)
    scales, q = symmetric_per_channel(w, axis, 127)  # the int8 format's default (minmax)

    def error(s: np.ndarray, codes: np.ndarray) -> np.ndarray:
        deq = np.moveaxis(np.asarray(codes, np.float64), axis, 0).reshape(rows.shape)
        return deq * np.asarray(s, np.float64).reshape(-1, 1) - rows

    solved = _solve(w, axis, scales, -127, 127, entry)
    return _Candidate(weight_key(w), rows, error(scales, q),
                      None if solved is None else error(*solved))


def _output_errors(data: bytes, held: SampleSet, reference: list[np.ndarray] | None
                   ) -> tuple[list[float], list[np.ndarray]]:
    """(per output: error power / signal power against `reference`, the outputs) of the
    serialised model `data` on `held`."""
    from sdk.run.runner import LiteRTRunner

    outs = LiteRTRunner(data).outputs_for(held)
    if reference is None:
        return [], outs
    errors = []
    for o, f in zip(outs, reference, strict=True):
        f64 = np.asarray(f, np.float64)
        signal = float((f64 ** 2).sum())
        noise = float(((np.asarray(o, np.float64) - f64) ** 2).sum())
        errors.append(noise / max(signal, 1e-30) if math.isfinite(noise) else math.inf)
    return errors, outs


def _db(ratio: float) -> float:
    return -10.0 * math.log10(max(ratio, 1e-30))


def _choose(stem: StemRounding, prefix: Model, ops: list[Operator], held: SampleSet,
            ranges: Mapping[Tensor, tuple[float, float]]) -> None:
    """Fill `stem.accepted` / `stem.choices` from the held-out samples: per layer, GPTQ codes
    where they lower the layer's int8 output error on the held-out inputs by MIN_LAYER_GAIN: the
    weight rounding's part (bias-corrected: from the input covariance) plus the output's own
    int8 rounding noise (step^2 / 12 per element, from its calibrated range). A layer whose
    weight error already sits under that noise has nothing to gain. `confirm` then checks the
    chosen codes on the int8 model."""
    stem.accepted = set()
    entries = {n: e for e in stem.hessians.values() for n in e.layers}
    held_h = {n: e for e in collect_hessians(prefix, held, max_rows=STEM_ROWS).values()
              for n in e.layers}
    for op in ops:
        name = layer_name(op)
        entry, test = entries.get(name), held_h.get(name)
        if entry is None or test is None:
            continue
        c = _candidate(op, entry)
        if c.gptq is None:
            continue
        h = _centered(test)
        channels = 2.0 * c.rows.shape[0]  # quadratic / channels: mean square per element
        signal = error_power(c.rows, np.asarray(test.hessian, np.float64)) / channels
        noise = 0.0
        if op.outputs and op.outputs[0] in ranges:
            lo, hi = ranges[op.outputs[0]]
            noise = ((max(hi, 0.0) - min(lo, 0.0)) / 255.0) ** 2 / 12.0
        rtn = error_power(c.rtn, h) / channels + noise
        gptq = error_power(c.gptq, h) / channels + noise
        kept = gptq < rtn * (1.0 - MIN_LAYER_GAIN)
        stem.choices.append(StemChoice(name, _db(rtn / max(signal, 1e-30)),
                                       _db(gptq / max(signal, 1e-30)), kept))
        if kept:
            stem.accepted.add(c.key)


def confirm(stem: StemRounding, float_model: bytes, int8_model: Callable[[StemRounding | None],
            bytes]) -> None:
    """The int8 model with the chosen stem codes against the same model rounded to nearest, on
    `MODEL_CHECK_SAMPLES` held-out samples (`int8_model(stem or None)` -> serialised model with
    float inputs and outputs): the codes stay only where the worst output's error is lower by
    MIN_GAIN and no output's is higher by more than MAX_LOSS; otherwise the stem rounds to
    nearest. Weight error alone (the rest float) is no guide: on MediaPipe's face mesh the
    stem's GPTQ codes lower it 14 dB on both outputs, yet in int8 they cost the landmarks 1-3.5
    dB on four calibration sets while the face flag gained as much."""
    if not stem.accepted or stem.held is None:
        return
    start = time.perf_counter()
    few = stem.held.subset(slice(0, MODEL_CHECK_SAMPLES))
    try:
        _, reference = _output_errors(float_model, few, None)
        rtn, _ = _output_errors(int8_model(None), few, reference)
        gptq, _ = _output_errors(int8_model(stem), few, reference)
    except EdgeSDKError as exc:
        stem.accepted, stem.rounded = set(), []
        stem.skipped = f"stem rounding: off (its int8 check could not run: {exc})"
        stem.seconds += time.perf_counter() - start
        return
    stem.model_db = (_db(max(rtn)), _db(max(gptq)))
    stem.output_db = [(_db(a), _db(b)) for a, b in zip(rtn, gptq, strict=True)]
    if not (max(gptq) < max(rtn) * (1.0 - MIN_GAIN)
            and all(b <= a * (1.0 + MAX_LOSS) for a, b in zip(rtn, gptq, strict=True))):
        stem.accepted = set()
    stem.rounded = []  # filled again by the export's own rewrite
    stem.seconds += time.perf_counter() - start
