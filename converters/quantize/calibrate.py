"""Calibration: run the float model in LiteRT over the calibration samples, with every
intermediate tensor preserved, and turn what each float activation tensor held into its range.

Pass 1 records min / max / exact zeros (and per-channel means of the inputs of weighted layers,
for bias correction); pass 2, only for `percentile` and `mse`, fills a histogram per tensor over
the range pass 1 found. Each batch's tensors are read as views and reduced at once, nothing is
kept across samples (`streaming`); the runs are planned within the memory budget and may use two
interpreters side by side (`sweep`).

The model's own inputs and outputs (and the tensors an output shows unchanged through RESHAPE /
CONCATENATION ...: `output_views`), and the logits that feed SOFTMAX / ARG_MAX, always use
min/max: clipping them changes what the user feeds in or reads out (a clipped top logit can tie
with the runner-up). A tensor read only by LOGISTIC / TANH takes the range that minimises the
error of that function's output (`ranges.TRANSFERS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sdk.base.errors import CalibrationError
from sdk.base.samples import SampleSet
from sdk.converters.ir import DType, Graph, Model, Tensor
from sdk.converters.quantize import layernorm
from sdk.converters.quantize.clamps import clamp_intervals
from sdk.converters.quantize.output_views import output_views
from sdk.converters.quantize.ranges import (
    METHODS,
    TRANSFERS,
    TensorStats,
    estimate_range,
    needs_histogram,
    softmax_input_range,
)
from sdk.converters.quantize.rules import WEIGHTED
from sdk.converters.quantize.streaming import Reducer
from sdk.converters.quantize.sweep import FloatSweep, Reader, constant_indices
from sdk.converters.tflite import serialize

Progress = Callable[[str, int, int], None]

#: where the float model runs for calibration (`calibrate(kernels=)`)
KERNELS = ("builtin", "xnnpack")
#: consumers whose input range is taken with min/max whatever the method
_PROTECTED_CONSUMERS = {"LOG_SOFTMAX", "ARG_MAX", "ARG_MIN"}
#: the input interval each of these ops can tell apart: outside it the output does not change
#: (RELU6 reads everything above 6 as 6, HARD_SWISH everything below -3 as -3 (output 0); the int8
#: outputs of LOGISTIC (step 1/256) and TANH (1/128) stop changing beyond about +-6 and +-3.5)
RELEVANT_INPUT: dict[str, tuple[float, float]] = {
    "RELU": (0.0, np.inf),
    "RELU6": (0.0, 6.0),
    "RELU_N1_TO_1": (-1.0, 1.0),
    "RELU_0_TO_1": (0.0, 1.0),
    "HARD_SWISH": (-3.0, np.inf),
    "LOGISTIC": (-8.0, 8.0),
    "TANH": (-5.0, 5.0),
}


@dataclass
class Calibration:
    """Per float activation tensor: statistics and the chosen range."""

    method: str
    samples: int
    source: str
    stats: dict[Tensor, TensorStats]
    ranges: dict[Tensor, tuple[float, float]]
    #: per-channel input means of weighted layers (keyed by the layer's input tensor)
    means: dict[Tensor, np.ndarray] = field(default_factory=dict)
    synthetic: bool = False
    #: tensors whose range was narrowed on purpose, and why
    notes: dict[Tensor, str] = field(default_factory=dict)
    #: interpreter runs the calibration took, and how the samples were fed (`sweep.SweepPlan`)
    invocations: int = 0
    sweep: str = ""


def activation_tensors(model: Model) -> list[Tensor]:
    """The float, non-constant tensors of the main graph that operators read or write."""
    g = model.main
    return [t for t in g.referenced_tensors()
            if not t.is_constant and t.dtype is DType.FLOAT32 and not t.is_variable]


def calibrate(model: Model, samples: SampleSet, method: str = "mse", *,
              percentile: float = 99.99, progress: Progress | None = None,
              channel_means: bool = True, workers: int | None = None,
              kernels: str = "builtin", layernorm_margin: float | None = None
              ) -> Calibration:
    """Calibrate the float `model` on `samples` (`workers`: interpreters run side by side,
    default `sweep.DEFAULT_WORKERS`; the memory budget may allow fewer).

    `kernels`: "builtin" (LiteRT's builtin kernels, every intermediate kept: the values the
    ranges have always come from) or "xnnpack" (every activation made a graph output, run in
    XNNPACK: about half the CPU per run, values that differ from the builtin kernels' in their
    last digits, so ranges that do too; see docs/calibration.md).
    `layernorm_margin`: widen each decomposed LayerNorm's input and output range by this
    fraction of its width (`layernorm.widen_ranges`); None: `layernorm.RANGE_MARGIN`."""
    if method not in METHODS:
        raise CalibrationError(f"unknown calibration method {method!r}; choose one of "
                               f"{', '.join(METHODS)}")
    if kernels not in KERNELS:
        raise CalibrationError(f"unknown calibration kernels {kernels!r}; choose one of "
                               f"{', '.join(KERNELS)}")
    if len(samples) == 0:
        raise CalibrationError("calibration data is empty")
    data, maps = serialize(model) if kernels == "builtin" else _with_activation_outputs(model)
    index = maps[0]
    tensors = [t for t in activation_tensors(model) if t in index]
    stats = {t: TensorStats() for t in tensors}
    g = model.main
    mean_for: set[int] = set()
    if channel_means:
        for op in g.operators:
            if op.type in WEIGHTED and op.inputs:
                x = op.inputs[2] if op.type == "TRANSPOSE_CONV" else op.inputs[0]
                if x is not None:
                    mean_for.add(id(x))
    only_by = _sole_consumer_types(model)
    softmax_inputs = {k for k, (op_type, _) in only_by.items() if op_type == "SOFTMAX"}
    sweep = FloatSweep(data, samples, constants=constant_indices(index), workers=workers,
                       xnnpack=kernels == "xnnpack")
    reads = [(stats[t], index[t], id(t) in mean_for, id(t) in softmax_inputs) for t in tensors]
    finite = [True] * len(reads)
    reducer = Reducer()

    def observe_all(read: Reader, count: int) -> None:
        for k, (s, i, channels, rows) in enumerate(reads):
            finite[k] &= reducer.observe(s, read(i), channels, rows)

    passes = 2 if needs_histogram(method) else 1
    sweep.run(observe_all, _reporter(progress, "calibrating" if passes == 1
                                     else "calibrating (pass 1/2)", len(samples)))
    if passes == 2:
        binned = [(s, i, finite[k]) for k, (s, i, _, _) in enumerate(reads) if s.seen]
        for s, _, _ in binned:
            s.start_histogram()

        def histogram_all(read: Reader, count: int) -> None:
            for s, i, all_finite in binned:
                reducer.histogram(s, read(i), all_finite)

        sweep.run(histogram_all, _reporter(progress, "calibrating (pass 2/2)", len(samples)))
    protected = _protected(model)
    clamped = clamp_intervals(g)
    ranges: dict[Tensor, tuple[float, float]] = {}
    notes: dict[Tensor, str] = {}
    for t, s in stats.items():
        if not s.seen:
            continue
        consumer = only_by.get(id(t))
        if consumer is not None and consumer[0] == "SOFTMAX":
            ranges[t] = softmax_input_range(s, beta=float(consumer[1].get("beta", 1.0) or 1.0))
            if ranges[t][0] > s.min:
                notes[t] = ("SOFTMAX input: logits far below each row's maximum are clipped on "
                            "purpose (they do not change the int8 probabilities); the finer step "
                            "helps the logits that matter")
        else:
            relevant = RELEVANT_INPUT.get(consumer[0]) if consumer is not None else None
            clamp = clamped.get(id(t)) if id(t) not in protected else None
            if clamp is not None:  # a constant clamp after it (through LEAKY_RELU): `clamps`
                relevant = clamp if relevant is None else (max(relevant[0], clamp[0]),
                                                           min(relevant[1], clamp[1]))
            how = "minmax" if id(t) in protected else method
            transfer = consumer[0] if consumer is not None and consumer[0] in TRANSFERS \
                else None
            ranges[t] = estimate_range(s, how, percentile=percentile, relevant=relevant,
                                       transfer=transfer)
            if relevant is not None and ranges[t] != estimate_range(s, how,
                                                                    percentile=percentile):
                notes[t] = (f"{consumer[0]} input: values its output cannot tell apart "
                            f"(outside [{relevant[0]:g}, {relevant[1]:g}]) are clipped on "
                            "purpose")
    notes.update(layernorm.widen_ranges(
        g, ranges, layernorm.RANGE_MARGIN if layernorm_margin is None else layernorm_margin))
    _padding_sentinels(g, ranges, notes)
    means = {t: m for t, s in stats.items() if id(t) in mean_for
             and (m := s.mean_per_channel()) is not None}
    return Calibration(method, len(samples), samples.source, stats, ranges, means,
                       samples.synthetic, notes, sweep.invocations,
                       sweep.plan.describe() if sweep.plan is not None else "")


def _with_activation_outputs(model: Model) -> tuple[bytes, list[dict[Tensor, int]]]:
    """The model serialised with every float activation tensor also a graph output (XNNPACK
    keeps outputs; it fuses the other intermediates away)."""
    g = model.main
    outputs = g.outputs
    present = {id(t) for t in (*outputs, *g.inputs)}
    extra = [t for t in activation_tensors(model) if id(t) not in present]
    g.outputs = [*outputs, *extra]
    try:
        return serialize(model)
    finally:
        g.outputs = outputs


def _reporter(progress: Progress | None, stage: str, total: int
              ) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    progress(stage, 0, total)
    return lambda done, total: progress(stage, done, total)


#: a PADV2 constant at least this far from zero is a sentinel (max-pool padding with the lowest
#: float: ONNX MaxPool with explicit pads), not a value that int8 must represent
PAD_SENTINEL = 1e30


def _padding_sentinels(g: Graph, ranges: dict[Tensor, tuple[float, float]],
                       notes: dict[Tensor, str]) -> None:
    """A PADV2 that pads with -inf / the lowest float for a max pool: its output takes its
    input's range (the pad value quantises to -128, below every real value, which is what a max
    pool needs), instead of a range reaching -3.4e38 that leaves int8 one useful code."""
    for op in g.operators:
        if op.type != "PADV2" or len(op.inputs) < 3 or not op.outputs:
            continue
        x, pad, y = op.inputs[0], op.inputs[2], op.outputs[0]
        if x is None or pad is None or not pad.is_constant or x not in ranges or y not in ranges:
            continue
        value = pad.numpy()
        if value.size != 1 or not (abs(float(value.reshape(-1)[0])) >= PAD_SENTINEL):
            continue
        ranges[y] = ranges[x]
        notes[y] = ("PADV2 output: the padding value is a sentinel (+-3.4e38, a max pool's "
                    "padding); it quantises to the int8 end on its side, the range is the "
                    "input's")


def _sole_consumer_types(model: Model) -> dict[int, tuple[str, dict]]:
    """Tensors read by exactly one kind of operator (and not model outputs): id -> (op type,
    attributes of the first such op)."""
    g = model.main
    outputs = {id(t) for t in g.outputs}
    kinds: dict[int, list[tuple[str, dict]]] = {}
    for op in g.operators:
        for t in op.inputs[:1]:
            if t is not None:
                kinds.setdefault(id(t), []).append((op.type, op.attrs))
        for t in op.inputs[1:]:
            if t is not None:
                kinds.setdefault(id(t), []).append(("", {}))
    return {k: v[0] for k, v in kinds.items()
            if k not in outputs and len({op_type for op_type, _ in v}) == 1 and v[0][0]}


def _protected(model: Model) -> set[int]:
    g = model.main
    # the outputs, and what they show unchanged (a detector head's logits before RESHAPE /
    # CONCATENATION: `output_views`)
    out = {id(t) for t in g.inputs} | output_views(g)
    for op in g.operators:
        if op.type in _PROTECTED_CONSUMERS and op.inputs and op.inputs[0] is not None:
            out.add(id(op.inputs[0]))
    return out
