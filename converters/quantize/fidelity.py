"""A quantised model's fidelity to its float original, measured in LiteRT on held-out samples.

`evaluate` runs both models over the samples and fills a `sdk.run.fidelity.FidelityReport`:
per output with LiteRT's default kernels (XNNPACK), what users run; per layer with LiteRT's
builtin kernels and every intermediate tensor preserved (XNNPACK fuses intermediates away).
Per-layer SQNR runs both models again with every intermediate kept (builtin kernels: about
twice XNNPACK's CPU, and the int8 model in reference kernels), so by default it measures the
first `PER_LAYER_SAMPLES` held-out samples (the report's `layer_kernels` says how many); the
outputs are compared on all of them. Tensors are matched by identity through the rewrite's
tensor map, not by name. The per-layer
added-error walk (`layer_losses`) names the layer that loses most under a low output, for the
report's warnings and the precision planner.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sdk.base.samples import SampleSet
from sdk.converters.ir import DType, Model, Tensor
from sdk.converters.quantize.int8 import QuantizedModel
from sdk.converters.quantize.plan import layer_name
from sdk.converters.quantize.subgraph import upstream_ops
from sdk.run.fidelity import (
    LOW_SQNR_DB,
    FidelityReport,
    LayerFidelity,
    compare_outputs,
    sqnr_db,
)
from sdk.run.runner import LiteRTRunner, paired_runners

Progress = Callable[[str, int, int], None]

#: held-out samples the per-layer comparison runs on by default (`evaluate(per_layer_samples=)`;
#: None: all of them)
PER_LAYER_SAMPLES = 16
#: bytes of float per-layer tensors a `FloatReference` keeps for later per-layer comparisons
#: (the precision planner measures layers of several exports against the same float run)
LAYER_CACHE_BYTES = 768 << 20


def _dequantized(t: Tensor, value: np.ndarray) -> np.ndarray:
    if t.dtype in (DType.INT8, DType.UINT8, DType.INT16) and t.quant is not None:
        return t.quant.dequantize(value)
    return value.astype(np.float32)


# ---------------------------------------------------------------------------- evaluation
@dataclass
class FloatReference:
    """The float model's outputs on held-out samples, run once and reused by every evaluation
    of the same float bytes on the same samples (`sdk.export` with target_sqnr= or scheme
    "mixed" quantises and evaluates several times; the float model does not change)."""

    #: (float bytes, samples, outputs stacked per sample), matched by identity
    runs: list[tuple[bytes, SampleSet, list[np.ndarray]]] = field(default_factory=list)
    #: float runs over held-out samples this reference made
    computed: int = 0

    def outputs_for(self, runner: LiteRTRunner, samples: SampleSet,
                    on_batch: Callable[[int, int], None] | None = None) -> list[np.ndarray]:
        for data, seen, outputs in self.runs:
            if data is runner.model and seen is samples:
                return outputs
        outputs = runner.outputs_for(samples, on_batch)
        self.runs.append((runner.model, samples, outputs))
        self.computed += 1
        return outputs

    #: per-layer float tensors: (float bytes, samples, per sample {tensor index: (values, sum of
    #: squares)}), the first samples whose tensors fit in `layer_budget_bytes`
    layer_runs: list[tuple[bytes, SampleSet, list[dict[int, tuple[np.ndarray, float]]]]] = \
        field(default_factory=list)
    #: 0: keep none (one export measures its layers once); `LAYER_CACHE_BYTES` where several
    #: exports of one float model are measured layer by layer (target_sqnr=, scheme "mixed")
    layer_budget_bytes: int = 0
    #: float runs (one sample each, every intermediate kept) the per-layer comparisons made
    layer_computed: int = 0

    def layer_cache(self, data: bytes, samples: SampleSet
                    ) -> list[dict[int, tuple[np.ndarray, float]]]:
        """The per-layer float tensors kept for `data` on `samples` (filled by
        `per_layer_sqnr`), one dict per sample from the first."""
        for seen_data, seen, kept in self.layer_runs:
            if seen_data is data and seen is samples:
                return kept
        self.layer_runs.append((data, samples, []))
        return self.layer_runs[-1][2]

    def layer_room(self, tensors: Mapping[int, tuple[np.ndarray, float]]) -> bool:
        """Whether one more sample's tensors fit in the budget."""
        used = sum(v.nbytes for _, _, kept in self.layer_runs for d in kept
                   for v, _ in d.values())
        return used + sum(v.nbytes for v, _ in tensors.values()) <= self.layer_budget_bytes


def per_sample_energies(names: list[str], ref: list[np.ndarray], got: list[np.ndarray]
                        ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per output name: the float output's energy and the error's energy, per sample (the
    first axis)."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, r, g in zip(names, ref, got, strict=True):
        f = r.astype(np.float64).reshape(r.shape[0], -1) if r.ndim else r.reshape(1, 1)
        q = g.astype(np.float64).reshape(f.shape)
        out[name] = ((f ** 2).sum(axis=1), ((q - f) ** 2).sum(axis=1))
    return out


def evaluate(float_bytes: bytes, float_maps: list[dict[Tensor, int]], float_model: Model,
             quant_bytes: bytes, quant_maps: list[dict[Tensor, int]], quantized: QuantizedModel,
             samples: SampleSet, *, per_layer: bool = True,
             progress: Progress | None = None, delegates: list[Any] | None = None,
             layer_notes: Mapping[Tensor, str] | None = None,
             quant_runner: Any = None, kernels: str | None = None,
             per_layer_samples: int | None = PER_LAYER_SAMPLES,
             float_reference: FloatReference | None = None,
             energies: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
             ) -> FidelityReport:
    """Compare the quantised model with the float one on `samples`. `quant_runner` runs the
    quantised bytes when LiteRT cannot (a `ModelRunner`); per-layer SQNR needs LiteRT, and
    measures the first `per_layer_samples` samples (None: all). `float_reference`: the float
    outputs of earlier evaluations of the same float bytes and samples, reused. `energies`:
    filled with each output's per-sample signal and error energies (`per_sample_energies`),
    from the same runs, for the target_sqnr planner's bound."""

    def stage(name: str) -> Callable[[int, int], None]:
        return lambda done, total: progress(name, done, total) if progress else None

    float_run = LiteRTRunner(float_bytes)
    quant_run = quant_runner if quant_runner is not None else LiteRTRunner(quant_bytes,
                                                                            delegates=delegates)
    ref = (float_reference or FloatReference()).outputs_for(float_run, samples,
                                                            stage("validating (float)"))
    got = quant_run.outputs_for(samples, stage("validating (quantised)"))
    names = [d.name for d in float_run.outputs]
    if energies is not None:
        energies.update(per_sample_energies(names, ref, got))
    outputs = [compare_outputs(n, r, g, outputs=len(names))
               for n, r, g in zip(names, ref, got, strict=True)]
    report = FidelityReport(len(samples), samples.source, outputs, notes=list(samples.notes))
    if kernels is not None:
        report.kernels = kernels
    if per_layer and quant_runner is None:
        layer_set = samples
        if per_layer_samples is not None and len(samples) > per_layer_samples:
            layer_set = samples.subset(slice(0, per_layer_samples))
            report.layer_kernels += (f"; the first {per_layer_samples} of the {len(samples)} "
                                     "samples")
        report.layers = per_layer_sqnr(float_bytes, float_maps, float_model, quant_bytes,
                                       quant_maps, quantized, layer_set,
                                       stage("per-layer comparison"), delegates,
                                       layer_notes, float_reference)
    output_tensors = {d.name: t for t, i in float_maps[0].items() for d in float_run.outputs
                      if d.index == i}
    report.warnings = low_output_warnings(report, float_model, output_tensors,
                                          input_sqnr(float_model, quantized, samples))
    return report


def input_sqnr(float_model: Model, quantized: QuantizedModel, samples: SampleSet
               ) -> dict[int, float]:
    """SQNR of each model input's int8 / uint8 representation on `samples` (what the first
    layers receive), by the input tensor's id."""
    found: dict[int, float] = {}
    for t, values in zip(float_model.main.inputs, samples.arrays, strict=False):
        q = quantized.tensor_map.get(t)
        if q is None or q.quant is None or q.dtype not in (DType.INT8, DType.UINT8):
            continue
        lo, hi = (-128, 127) if q.dtype is DType.INT8 else (0, 255)
        scale, zp = float(q.quant.scale[0]), int(q.quant.zero_point[0])
        a = np.asarray(values, np.float64)
        d = (np.clip(np.round(a / scale) + zp, lo, hi) - zp) * scale
        found[id(t)] = sqnr_db(float((a ** 2).sum()), float(((a - d) ** 2).sum()))
    return found


# ---------------------------------------------------------------------------- never silent
#: what a layer whose input is a model input (or exact) counts as receiving
_CLEAN_DB = 60.0


@dataclass
class LayerLoss:
    name: str
    op_type: str
    input_sqnr_db: float
    sqnr_db: float

    @property
    def drop_db(self) -> float:
        return self.input_sqnr_db - self.sqnr_db

    @property
    def added_noise(self) -> float:
        """Error energy this layer adds, relative to its output's energy: noise(out) / signal
        minus noise(in) / signal. Not the dB drop: going from 60 to 36 dB (any first layer)
        adds far less error than going from 17 to 14 dB deep in a network."""
        return 10.0 ** (-self.sqnr_db / 10.0) - 10.0 ** (-self.input_sqnr_db / 10.0)


def layer_losses(report: FidelityReport, float_model: Model,
                 inputs_db: Mapping[int, float] | None = None) -> dict[int, LayerLoss]:
    """The error every measured layer adds, by op id.

    `inputs_db`: the SQNR each model input arrives with (by tensor id; default _CLEAN_DB).
    Layers whose SQNR reads low on purpose (a note: logits clipped far below the maximum, a
    ReLU input's negatives) pass their inputs' SQNR through instead of their own."""
    inputs_db = inputs_db or {}
    by_name = {x.name: x for x in report.layers}
    g = float_model.main
    producers = g.producers()
    effective: dict[int, float] = {}
    losses: dict[int, LayerLoss] = {}
    for op in g.topological_order():
        feeding = [effective[id(producers[t])] if t in producers else inputs_db[id(t)]
                   for t in op.inputs if t is not None and not t.is_constant and (
                       (t in producers and id(producers[t]) in effective)
                       or (t not in producers and id(t) in inputs_db))]
        in_db = min([_CLEAN_DB, *feeding])
        lf = by_name.get(layer_name(op))
        if lf is None or lf.note or not math.isfinite(lf.sqnr_db):
            effective[id(op)] = in_db if lf is None or lf.note else min(in_db, _CLEAN_DB)
            continue
        effective[id(op)] = lf.sqnr_db
        losses[id(op)] = LayerLoss(lf.name, lf.op_type, in_db, lf.sqnr_db)
    return losses


def worst_layer(report: FidelityReport, float_model: Model, output: Tensor,
                inputs_db: Mapping[int, float] | None = None) -> LayerLoss | None:
    """The layer on the way to `output` that adds most error (`LayerLoss.added_noise`; see
    `layer_losses`)."""
    if not report.layers:
        return None
    losses = layer_losses(report, float_model, inputs_db)
    cone = {id(op) for op in upstream_ops(float_model, output)}  # the layers upstream of it
    candidates = [losses[k] for k in cone if k in losses]
    return max(candidates, key=lambda x: x.added_noise) if candidates else None


def low_output_warnings(report: FidelityReport, float_model: Model,
                        outputs: Mapping[str, Tensor],
                        inputs_db: Mapping[int, float] | None = None) -> list[str]:
    """One warning per output under LOW_SQNR_DB, naming the layer that loses most."""
    found = []
    for o in report.outputs:
        if not o.sqnr_db < LOW_SQNR_DB:
            continue
        text = (f"output {o.name!r} is at {o.sqnr_db:.1f} dB SQNR (under {LOW_SQNR_DB:g} dB: "
                "far from the float model)")
        t = outputs.get(o.name)
        loss = worst_layer(report, float_model, t, inputs_db) if t is not None else None
        if loss is not None:
            text += (f"; the layer that loses most on its way is {loss.name} ({loss.op_type}: "
                     f"{loss.input_sqnr_db:.1f} dB in, {loss.sqnr_db:.1f} dB out); try it (or "
                     f"the layers before it) wider: precision={{{loss.name!r}: 'float32'}} "
                     f"(CLI: --float-layer {loss.name!r})")
        elif not report.layers:
            text += "; per-layer SQNR (per_layer=True) names the layer that loses most"
        found.append(text)
    return found


def per_layer_sqnr(float_bytes: bytes, float_maps: list[dict[Tensor, int]], float_model: Model,
                   quant_bytes: bytes, quant_maps: list[dict[Tensor, int]],
                   quantized: QuantizedModel, samples: SampleSet,
                   on_batch: Callable[[int, int], None] | None = None,
                   delegates: list[Any] | None = None,
                   layer_notes: Mapping[Tensor, str] | None = None,
                   float_reference: FloatReference | None = None) -> list[LayerFidelity]:
    """SQNR of every rewritten layer's output against the float model's, on `samples` (both
    in LiteRT's builtin kernels, every intermediate kept). `float_reference`: the float side
    is run one sample at a time and its tensors kept there (within its budget), so that later
    comparisons against the same float bytes and samples run the quantised model only."""
    fidx, qidx = float_maps[0], quant_maps[0]
    precision = {lr.name: lr.precision for lr in quantized.layers}
    pairs: list[tuple[str, str, str, Tensor, int, Tensor, int]] = []
    for op in float_model.main.operators:
        name = layer_name(op)
        if name not in precision:
            continue
        for t in op.outputs:
            q = quantized.tensor_map.get(t)
            if t.dtype is not DType.FLOAT32 or q is None or t not in fidx or q not in qidx:
                continue
            pairs.append((name, op.type, precision[name], t, fidx[t], q, qidx[q]))
            break
    if not pairs:
        return []
    notes = layer_notes or {}
    if float_reference is not None:
        signal, noise = _against_reference(float_bytes, quant_bytes, pairs, samples, on_batch,
                                           delegates, float_reference)
        return [LayerFidelity(name, op_type, prec, t.name.split(";")[0], sqnr_db(s, n),
                              notes.get(t, ""))
                for (name, op_type, prec, t, _, _, _), s, n in zip(pairs, signal, noise,
                                                                   strict=True)]
    float_run, quant_run = paired_runners(float_bytes, quant_bytes, samples,
                                          delegates=delegates)
    signal = np.zeros(len(pairs))
    noise = np.zeros(len(pairs))
    for _ in zip(float_run.run(samples, on_batch=on_batch), quant_run.run(samples),
                 strict=True):
        for k, (_, _, _, _, fi, qt, qi) in enumerate(pairs):
            f = float_run.tensor(fi).astype(np.float64)
            q = _dequantized(qt, quant_run.tensor(qi)).astype(np.float64)
            if f.shape != q.shape:
                q = q.reshape(f.shape)
            signal[k] += float((f ** 2).sum())
            noise[k] += float(((f - q) ** 2).sum())
    return [LayerFidelity(name, op_type, prec, t.name.split(";")[0], sqnr_db(s, n),
                          notes.get(t, ""))
            for (name, op_type, prec, t, _, _, _), s, n in zip(pairs, signal, noise, strict=True)]


def _against_reference(float_bytes: bytes, quant_bytes: bytes,
                       pairs: list[tuple[str, str, str, Tensor, int, Tensor, int]],
                       samples: SampleSet, on_batch: Callable[[int, int], None] | None,
                       delegates: list[Any] | None, reference: FloatReference,
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Signal and noise energy per pair, one sample at a time (no batching check: a batch of
    two and two single runs of each model cost half as much again as 8 samples), the float
    tensors from `reference` where it kept them, else run and kept while they fit."""
    kept = reference.layer_cache(float_bytes, samples)
    wanted = sorted({fi for *_, fi, _, _ in pairs})
    quant_run = LiteRTRunner(quant_bytes, reference=True, preserve_all_tensors=True,
                             delegates=delegates, batch_size=1)
    float_run: LiteRTRunner | None = None
    signal = np.zeros(len(pairs))
    noise = np.zeros(len(pairs))
    total = len(samples)
    for k, (_, feeds) in enumerate(samples.batches(1)):
        floats = kept[k] if k < len(kept) else None
        if floats is None or any(fi not in floats for fi in wanted):
            if float_run is None:
                float_run = LiteRTRunner(float_bytes, reference=True, preserve_all_tensors=True,
                                         batch_size=1)
            float_run.invoke(feeds, fetch=False)
            reference.layer_computed += 1
            floats = {}
            for fi in wanted:
                f = float_run.tensor(fi)
                floats[fi] = (f, float((f.astype(np.float64) ** 2).sum()))
            if k == len(kept) and reference.layer_room(floats):
                kept.append(floats)
        quant_run.invoke(feeds, fetch=False)
        for j, (_, _, _, _, fi, qt, qi) in enumerate(pairs):
            f, energy = floats[fi]
            q = _dequantized(qt, quant_run.tensor(qi)).astype(np.float64)
            if f.shape != q.shape:
                q = q.reshape(f.shape)
            signal[j] += energy
            noise[j] += float(((f.astype(np.float64) - q) ** 2).sum())
        if on_batch is not None:
            on_batch(k + 1, total)
    return signal, noise
