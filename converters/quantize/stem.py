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

Opt-in (`sdk.export(..., stem_rounding=True)`): on the corpus it lifts MediaPipe's short-range
BlazeFace from 17.3 to 21.3 dB (four calibration seeds: +0.3 to +4.1 dB) and YOLOv8n / the
openWakeWord embedding by ~1 dB, but the face-mesh net's landmarks came out 0.1 px worse (0.60
vs 0.47 px; 0.49 vs 0.40 with another seed), the orientation classifier 0.8 dB worse and the
BlazeFace at 16 calibration samples 1.7 dB worse (the Hessians of the first layers fit the few
calibration images): not a default until a held-out check decides per model
(benchmarks/results/corpus-detectors-2026-12-06.md).

`STEM_DEPTH`: layers with fewer than this many weighted layers between them and a model input
(the first CONV_2D, its DEPTHWISE_CONV_2D, the pointwise CONV_2D after it in a MobileNet-style
block). Pose detector, weights only: 12.5 dB (round to nearest), 17.1 / 24.3 / 27.0 / 27.4 dB
with the first 1 / 2 / 3 / 5 layers rounded this way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sdk.base.samples import SampleSet
from sdk.converters.ir import Graph, Model, Operator, Tensor
from sdk.converters.quantize.gptq import (
    LayerHessian,
    collect_hessians,
    gptq_layers,
    gptq_quantize,
    refit_scales,
    weight_key,
)
from sdk.converters.quantize.plan import layer_name

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


@dataclass
class StemRounding:
    """The stem layers' input Hessians, keyed by `gptq.weight_key` of their float weights."""

    hessians: dict[tuple[tuple[int, ...], str], LayerHessian] = field(default_factory=dict)
    #: layers whose codes were chosen here (filled by the rewrite)
    rounded: list[str] = field(default_factory=list)

    def codes(self, w: np.ndarray, axis: int, scales: np.ndarray, qmin: int, qmax: int
              ) -> tuple[np.ndarray, np.ndarray] | None:
        """(scales, codes shaped like `w`) rounded against the layer's inputs, or None when
        `w` is not a stem layer's weights."""
        entry = self.hessians.get(weight_key(w))
        if entry is None:
            return None
        rows = np.moveaxis(np.asarray(w, np.float64), axis, 0).reshape(w.shape[axis], -1)
        s = np.asarray(scales, np.float64).reshape(-1)
        if s.size != rows.shape[0] or entry.hessian.shape[-1] != rows.shape[1] \
                or entry.rows < MIN_ROWS_PER_INPUT * rows.shape[1]:
            return None
        result = gptq_quantize(rows, entry.hessian, qmin, qmax, scales=s)
        fitted = refit_scales(rows, result.codes, s, entry.hessian)
        codes = np.moveaxis(result.codes.reshape(np.moveaxis(np.asarray(w), axis, 0).shape),
                            0, axis)
        self.rounded.extend(n for n in entry.layers if n not in self.rounded)
        return fitted.astype(np.float32), codes

    def describe(self) -> str:
        return (f"stem rounding: {len(self.rounded)} layer(s) near the input rounded by GPTQ "
                f"against their calibration inputs ({', '.join(self.rounded)})")


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


def _prefix(model: Model, ops: list[Operator]) -> Model:
    """The main graph cut after the last of `ops`, with their outputs as the graph outputs."""
    g = model.main
    last = max(g.operators.index(op) for op in ops)
    outputs: list[Tensor] = [t for op in ops for t in op.outputs if t is not None]
    prefix = Graph(g.name, list(g.tensors), list(g.operators[:last + 1]), list(g.inputs),
                   outputs)
    prefix.prune()
    return Model([prefix], model.description, model.version)


def stem_rounding(model: Model, samples: SampleSet, *, depth: int = STEM_DEPTH,
                  max_samples: int = STEM_SAMPLES) -> StemRounding:
    """The input Hessians of `model`'s stem layers on (up to `max_samples` of) `samples`; only
    the graph up to the last stem layer runs."""
    ops = stem_layers(model, depth)
    if not ops or len(samples) == 0:
        return StemRounding()
    used = samples.subset(slice(0, max_samples)) if len(samples) > max_samples else samples
    hessians = collect_hessians(_prefix(model, ops), used, max_rows=STEM_ROWS)
    names = {layer_name(op) for op in ops}
    return StemRounding({k: v for k, v in hessians.items()
                         if any(n in names for n in v.layers)})
