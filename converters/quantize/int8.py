"""The full-integer INT8 rewrite of a float IR model, exactly as TFLite defines it.

Input: the float model, a `PrecisionPlan`, and a calibrated float range per activation tensor.
Output: a new model (the input is not touched) in which

- every operator the plan and LiteRT's int8 kernels allow runs on int8 tensors: per-tensor
  asymmetric activations, per-channel symmetric weights (the axis TFLite expects for the op),
  int32 biases with scale input_scale * weight_scale and zero point 0, and the op-specific
  constraints of `rules.OP_RULES` (shared scales, fixed output scales);
- the others stay in float, with DEQUANTIZE before and QUANTIZE after them (reported, never
  silent; `strict=True` makes them an error instead);
- operators the plan gives 16x8 (`int16x8`: int16 symmetric activations, int8 weights, int64
  biases) run on int16 tensors where LiteRT has an int16 kernel (`int16x8.INT16_KERNELS`); a
  tensor crossing between int8 and int16 sections is requantised by one QUANTIZE;
- the model's inputs and outputs have the type the caller asked for (float32 with QUANTIZE /
  DEQUANTIZE at the edges, or int8 / uint8 directly); the float-facing tensors keep their original
  names, so signatures and callers see the same names.

How tensors change representation. Each activation tensor has a *home* representation: int8 if
an int8 operator produces it (or it is an int8 model input), float otherwise. A consumer that
needs the other representation, or int8 with different parameters (two conflicting ties), reads a
converted copy made by one QUANTIZE / DEQUANTIZE, created once per tensor and placed just before
its first consumer. One mechanism covers model edges, float islands, requantisation and the
int8 <-> int16 boundaries of 16x8 sections (one copy per target type and parameters).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from sdk.base.errors import ConversionError, UnsupportedOpError
from sdk.converters.ir import DType, Graph, Model, Operator, QuantParams, Tensor
from sdk.converters.quantize import layernorm, log_guard, row_split, stream_state
from sdk.converters.quantize.file_bytes import compact_bias_scales
from sdk.converters.quantize.head_rounding import HeadRounding
from sdk.converters.quantize.int16x8 import (
    INT16_QMAX,
    INT16_QMIN,
    int16_kernel,
    refusal,
    symmetric_int16,
)
from sdk.converters.quantize.plan import (
    HYBRID_INT8,
    INT8,
    LayerPrecision,
    PrecisionPlan,
    layer_name,
)
from sdk.converters.quantize.ranges import affine_params
from sdk.converters.quantize.rules import (
    OP_RULES,
    SUBBYTE_WEIGHT_VERSIONS,
    WEIGHTED,
    OpRule,
    activation_inputs,
    hybrid_kernel,
    hybrid_version,
    supported_int8_ops,
)
from sdk.converters.quantize.stem import StemRounding
from sdk.converters.quantize.weights import (
    per_tensor_symmetric,
    quantize_with_scales,
    weight_format,
)

INT32_MAX = 2**31 - 1
#: int64 biases (16x8) are clipped here: far beyond any accumulation, exact in float64
INT64_LIMIT = float(2**62)
#: the largest quantised bias written: half the int32 range, so that the accumulation of
#: int8 x int8 products on top of it cannot overflow
BIAS_LIMIT = 2**30
IO_TYPES = ("float32", "int8", "uint8")
#: inputs of one CONCATENATION / PACK whose ranges differ by more than this factor (4 bits) do
#: not share one int8 scale when they form a model output's tail (see `keep_wide_tails`)
RANGE_SPREAD_LIMIT = 16.0
#: the most ops such a float tail may hold
TAIL_OPS = 8
#: ops whose output magnifies the error of their input near 0 (an int8 step of max / 255 turns
#: every quieter value into 0 or a coarse step), op -> how
LOG_LIKE = {"LOG": "log(x) magnifies the relative error of x (log(0 + eps) for a value rounded "
                   "to 0)",
            "SQRT": "sqrt(x) has the slope 1 / (2 sqrt(x)), unbounded near 0 (a magnitude "
                    "spectrum from an int8 power)"}
#: the most ops a front end computed from the model inputs before a LOG may hold (STFT as conv,
#: power, mel matmul, floor: ~10 in the corpus) for it to be kept in float with the LOG
FRONT_END_OPS = 24
#: a longer front end is kept in float only when it is signal processing: linear maps, their
#: data movement, powers and magnitudes, nothing a network learns to gate (no activation). A
#: constant-Q transform (one strided conv per octave, each padded, sliced and stacked:
#: basic-pitch's ~170 ops) is one; a network before a LOG is not
SIGNAL_OPS = frozenset({
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "TRANSPOSE_CONV",
    "ADD", "SUB", "MUL", "NEG", "SQUARE", "SUM", "MEAN", "ABS", "SQRT", "MAXIMUM", "MINIMUM",
    "RESHAPE", "TRANSPOSE", "PAD", "PADV2", "MIRROR_PAD", "STRIDED_SLICE", "SLICE",
    "CONCATENATION", "PACK", "UNPACK", "SPLIT", "SPLIT_V", "SQUEEZE", "EXPAND_DIMS", "GATHER",
    "TILE", "BROADCAST_TO", "CAST", "DEQUANTIZE"})
#: the most ops such a signal-processing front end may hold
SIGNAL_FRONT_END_OPS = 512

def _moved_from_inputs(t: Tensor | None, producers: Mapping[int, Operator], inputs: set[int],
                       depth: int = 16) -> bool:
    """Whether `t` is a model input or made from model inputs (and constants) by ops that only
    move or select values (`same_scale` rules: RESHAPE, PAD, SLICE, ...): its values are the
    input's, whose range one int8 scale per inference holds, unlike a computed power spectrum
    whose quiet bins it rounds to 0."""
    if t is None or t.is_constant or id(t) in inputs:
        return t is not None
    op = producers.get(id(t))
    rule = OP_RULES.get(op.type) if op is not None else None
    if op is None or rule is None or rule.kind != "same_scale" or depth == 0:
        return False
    return all(_moved_from_inputs(x, producers, inputs, depth - 1) for x in op.inputs
               if x is not None and not x.is_constant)


# operator modes
_UNTOUCHED = "untouched"  # no float tensors (shape arithmetic on int32, ...)
_INT8 = "int8"
_FLOAT = "float"
_AGNOSTIC = "agnostic"


@dataclass
class LayerReport:
    """What the rewrite did with one operator."""

    name: str
    op_type: str
    precision: str  # "int8", "float32", "w4/a8", ... or "int32" for untouched integer ops
    reason: str = ""


@dataclass
class QuantizedModel:
    model: Model
    #: float model's activation tensor -> its quantised representation in `model`
    tensor_map: dict[Tensor, Tensor]
    layers: list[LayerReport]
    #: float model's operator -> the operator that replaced it in `model`
    op_map: dict[Operator, Operator] = field(default_factory=dict)
    requantized: list[str] = field(default_factory=list)
    #: layers kept in float because they join tensors of very different ranges into an output
    wide_tails: list[str] = field(default_factory=list)

    @property
    def fallbacks(self) -> dict[str, str]:
        return {lr.name: lr.reason for lr in self.layers if lr.precision == "float32"}

    @property
    def hybrid_kept(self) -> dict[str, str]:
        """Layers kept off int8 activations that took INT8 weights (`plan.hybrid_kept`): why."""
        return {lr.name: lr.reason for lr in self.layers
                if lr.precision == HYBRID_INT8.describe() and lr.reason}


def quantize_int8(model: Model, plan: PrecisionPlan, ranges: Mapping[Tensor, tuple[float, float]],
                  *, input_type: str = "float32", output_type: str = "float32",
                  strict: bool = False, weight_method: str | None = None,
                  input_means: Mapping[Tensor, np.ndarray] | None = None,
                  wide_ranges: Mapping[Tensor, tuple[float, float]] | None = None,
                  stem: StemRounding | None = None, heads: HeadRounding | None = None,
                  ) -> QuantizedModel:
    """Quantise `model` (float) to full-integer INT8.

    `ranges` maps the float model's activation tensors to their calibrated (lo, hi).
    `input_means`, when given, maps weighted ops' input tensors to their per-channel means and
    turns on bias correction (the expected shift of each output channel caused by weight rounding
    is subtracted from the bias).
    `weight_method`: how weight scales are chosen ("minmax", "mse"); None: each weight format's
    own default (int8: minmax, sub-byte formats: mse).

    Layers whose plan precision has float activations and quantised weights (`is_hybrid`) stay
    float with their weights quantised: LiteRT's dynamic-range ("hybrid") kernels.
    `wide_ranges`: the ranges int16 tensors (16x8 layers) take, by default `ranges`
    (`int16x8.wide_ranges` gives the calibrated min/max).
    `stem`: the input Hessians of the layers near the model input (`stem.stem_rounding`):
    their int8 weights (default method) are rounded by GPTQ against those inputs.
    `heads`: the same for output heads whose codes passed their held-out check
    (`head_rounding.head_rounding`).
    """
    for name, value in (("input_type", input_type), ("output_type", output_type)):
        if value not in IO_TYPES:
            raise ValueError(f"{name} must be one of {IO_TYPES}, not {value!r}")
    check_float_model(model)
    memo: dict[int, object] = {}
    qmodel: Model = copy.deepcopy(model, memo)

    def mapped(t: Tensor) -> Tensor:
        return memo[id(t)]  # type: ignore[return-value]

    qranges = {mapped(t): r for t, r in ranges.items() if id(t) in memo}
    qmeans = {mapped(t): m for t, m in (input_means or {}).items() if id(t) in memo}
    qwide = {mapped(t): r for t, r in (wide_ranges or {}).items() if id(t) in memo}
    qwide, _ = stream_state.widen(qmodel.main, qwide)  # a streamed state's int16 margin
    if plan.row_splits:  # layers with output channels in two formats: two ops (row_split)
        plan = row_split.apply(qmodel.main, plan, qranges)
    rewrite = _Rewrite(qmodel, qmodel.main, plan, qranges, input_type, output_type, strict,
                       weight_method, qmeans, qwide, stem, heads)
    rewrite.run()
    main = model.main
    tensor_map: dict[Tensor, Tensor] = {}
    for t in main.referenced_tensors():
        if id(t) in memo and not t.is_constant:
            tensor_map[t] = rewrite.quantized_view(mapped(t))
    op_map = {op: memo[id(op)] for op in main.operators if id(op) in memo}  # type: ignore[misc]
    return QuantizedModel(qmodel, tensor_map, rewrite.reports, op_map, rewrite.requantized,
                          rewrite.wide_tails)


def check_float_model(model: Model) -> None:
    """Refuse a model that is already quantised: integer activations with quantisation
    parameters, or integer weights with them (a dynamic-range model). `sdk.export` calls this
    right after loading, before any calibration."""
    for op in model.main.operators:
        for t in (*op.inputs, *op.outputs):
            if t is None or t.quant is None or not t.quant.scale.size:
                continue
            if t.is_constant:
                if t.dtype not in (DType.INT8, DType.UINT8, DType.INT4, DType.INT2):
                    continue
                kind = "weights"
            elif t.dtype in (DType.INT8, DType.UINT8, DType.INT16):
                kind = "tensor"
            else:
                continue
            raise ConversionError(
                f"the model is already quantised ({op.type} {layer_name(op)!r} has "
                f"{t.dtype.name} {kind} {t.name!r}); export needs the float model")


#: a fixed-parameter group (LOGISTIC's 1/256 output, ...) takes in another tensor only if the
#: merged calibrated range exceeds what the fixed parameters represent by at most this many steps
FIXED_RANGE_SLACK_STEPS = 2.0


def representable_range(p: QuantParams, qmin: int = -128, qmax: int = 127) -> tuple[float, float]:
    """The float interval per-tensor int8 (or, with qmin / qmax, int16) parameters cover."""
    scale, zp = float(p.scale[0]), int(p.zero_point[0])
    return (qmin - zp) * scale, (qmax - zp) * scale


class _Groups:
    """Union-find over activation tensors that must share int8 parameters.

    Each group carries the union of its members' calibrated ranges (`span`). A group whose
    parameters a kernel fixes (LOGISTIC, SOFTMAX, TANH, ...) refuses a merge whose span its
    parameters cannot hold: the caller requantises that input instead (TFLite's converter does
    the same), so a CONCATENATION of pixel boxes and sigmoid scores is not clamped to 0.996.
    """

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.fixed: dict[int, QuantParams] = {}
        self.members: dict[int, list[Tensor]] = {}
        self.span: dict[int, tuple[float, float]] = {}
        #: the integer type of a group whose members an integer op produces (int8 or int16);
        #: groups of different types never merge
        self.dtype: dict[int, DType] = {}

    def set_dtype(self, t: Tensor, dtype: DType) -> bool:
        r = self.find(t)
        return self.dtype.setdefault(r, dtype) is dtype

    def dtype_of(self, t: Tensor) -> DType:
        return self.dtype.get(self.find(t), DType.INT8)

    def set_span(self, t: Tensor, lo: float, hi: float) -> None:
        r = self.find(t)
        a, b = self.span.get(r, (0.0, 0.0))
        self.span[r] = (min(a, lo), max(b, hi))

    def _fits(self, params: QuantParams, span: tuple[float, float] | None,
              dtype: DType = DType.INT8) -> bool:
        if span is None:
            return True
        lo, hi = (representable_range(params, INT16_QMIN, INT16_QMAX) if dtype is DType.INT16
                  else representable_range(params))
        slack = FIXED_RANGE_SLACK_STEPS * float(params.scale[0])
        return span[0] >= lo - slack and span[1] <= hi + slack

    def add(self, t: Tensor) -> None:
        if id(t) not in self.parent:
            self.parent[id(t)] = id(t)
            self.members[id(t)] = [t]

    def find(self, t: Tensor) -> int:
        self.add(t)
        k = id(t)
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def fix(self, t: Tensor, params: QuantParams) -> bool:
        r = self.find(t)
        if r in self.fixed:
            return self.fixed[r].same_as(params)
        self.fixed[r] = params
        return True

    def union(self, a: Tensor, b: Tensor) -> bool:
        """Merge the groups of `a` and `b`; False (and nothing merged) when their parameters
        conflict: two different fixed ones, or a fixed one that cannot hold the merged span."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        fa, fb = self.fixed.get(ra), self.fixed.get(rb)
        if fa is not None and fb is not None and not fa.same_as(fb):
            return False
        da, db = self.dtype.get(ra), self.dtype.get(rb)
        if da is not None and db is not None and da is not db:
            return False
        dtype = da if da is not None else db
        sa, sb = self.span.get(ra), self.span.get(rb)
        merged = sa if sb is None else sb if sa is None else (min(sa[0], sb[0]),
                                                              max(sa[1], sb[1]))
        fixed = fa if fa is not None else fb
        if fixed is not None and not self._fits(fixed, merged, dtype or DType.INT8):
            return False
        self.parent[rb] = ra
        self.dtype.pop(rb, None)
        if dtype is not None:
            self.dtype[ra] = dtype
        self.members[ra].extend(self.members.pop(rb))
        if fb is not None:
            self.fixed[ra] = fb
        self.fixed.pop(rb, None)
        self.span.pop(rb, None)
        if merged is not None:
            self.span[ra] = merged
        return True


#: the largest activation scale written: beyond it LiteRT's requantisation multipliers overflow
MAX_ACTIVATION_SCALE = 1e30


def _check_scale(t: Tensor, params: QuantParams, what: str) -> None:
    """LiteRT's kernels abort the process (not an error) on int8 scales this large while
    preparing: a range this wide holds a sentinel (+-inf or +-3.4e38 masks or padding)."""
    scale = np.asarray(params.scale, np.float64)
    if np.isfinite(scale).all() and float(scale.max()) <= MAX_ACTIVATION_SCALE:
        return
    raise ConversionError(
        f"tensor {t.name!r} ({what}): its int8 scale would be {float(scale.max()):g}; it holds "
        "sentinel values (+-inf or +-3.4e38 masks or padding) that int8 cannot represent: keep "
        "the layer that reads it in float (precision={layer name: 'float32'})")


def input_cone(op: Operator, producers: Mapping[int, Operator], inputs: set[int],
               limit: int) -> list[Operator] | None:
    """The ops that compute `op`'s inputs from the model inputs and constants (at most `limit`;
    `producers` by tensor id, `inputs` the model inputs' ids); None when there are more, none,
    or a tensor is neither a model input nor computed (then it is not a plain front end)."""
    cone: list[Operator] = []
    seen: set[int] = set()
    frontier = [t for t in op.inputs if t is not None and not t.is_constant]
    while frontier:
        t = frontier.pop()
        if id(t) in inputs:
            continue
        producer = producers.get(id(t))
        if producer is None:
            return None
        if id(producer) in seen:
            continue
        seen.add(id(producer))
        cone.append(producer)
        if len(cone) > limit:
            return None
        frontier.extend(x for x in producer.inputs if x is not None and not x.is_constant)
    return cone or None


class _Rewrite:
    def __init__(self, model: Model, graph: Graph, plan: PrecisionPlan,
                 ranges: dict[Tensor, tuple[float, float]], input_type: str, output_type: str,
                 strict: bool, weight_method: str | None, means: dict[Tensor, np.ndarray],
                 wide: dict[Tensor, tuple[float, float]] | None = None,
                 stem: StemRounding | None = None, heads: HeadRounding | None = None):
        self.model = model
        self.g = graph
        self.plan = plan
        self.ranges = ranges
        self.input_type = input_type
        self.output_type = output_type
        self.strict = strict
        self.weight_method = weight_method
        self.means = means
        self.wide = wide or {}
        self.stem = stem
        self.heads = heads
        self.reports: list[LayerReport] = []
        #: integer ops (mode _INT8) -> their activation type (INT8, or INT16 for 16x8)
        self.act: dict[int, DType] = {}
        #: tensors whose `params` are int16 (their group is produced by 16x8 ops)
        self.int16_params: set[int] = set()
        self.requantized: list[str] = []
        self.modes: dict[int, str] = {}
        self.precisions: dict[int, LayerPrecision] = {}
        self.groups = _Groups()
        self.params: dict[int, QuantParams] = {}
        # (tensor id, target key) -> converted tensor
        self.converted: dict[tuple[int, str], Tensor] = {}
        self.pending: list[Operator] = []
        self.const_cache: dict[tuple[int, str], Tensor] = {}
        #: (type, params, codes digest) -> the quantised weight: ops whose weights quantise to
        #: the same codes (every step of an unrolled LSTM) read one quantised copy
        self.weight_cache: dict[tuple[str, str, str], Tensor] = {}
        self.originally_float: set[int] = {
            id(t) for t in graph.referenced_tensors()
            if not t.is_constant and t.dtype is DType.FLOAT32}
        self.requant_inputs: dict[tuple[int, int], Tensor] = {}
        #: float-mode ops whose weights are quantised (dynamic range)
        self.hybrid: set[int] = set()
        #: layers kept in float as the tail of an output that joins very different ranges
        self.wide_tails: list[str] = []

    def was_float(self, t: Tensor) -> bool:
        """Float in the original model: a float activation, or a float constant."""
        return id(t) in self.originally_float or (t.is_constant and t.dtype is DType.FLOAT32)

    # ------------------------------------------------------------------ driver
    def run(self) -> None:
        self.classify()
        self.keep_wide_tails()
        self.keep_log_front_ends()
        self.keep_layernorm_statistics()
        self.hybrid_float_kept()
        self.tie()
        self.assign_params()
        self.set_home_types()
        self.rewrite_ops()
        self.fix_outputs()
        self.g.prune()
        try:
            self.g.validate()
        except ValueError as exc:  # a bug in the rewrite, not the user's fault: say so
            raise ConversionError(f"internal error while quantising: {exc}") from exc

    # ------------------------------------------------------------------ 1. modes
    def classify(self) -> None:
        supported = supported_int8_ops()
        for op in self.g.operators:
            name = layer_name(op)
            float_tensors = [t for t in (*op.inputs, *op.outputs)
                             if t is not None and id(t) in self.originally_float]
            if not float_tensors:
                self.modes[id(op)] = _UNTOUCHED
                continue
            precision = self.plan.for_op(op)
            rule = OP_RULES.get(op.type)
            reason = None
            note = ""
            if precision.is_int16 and rule is not None and rule.kind != "agnostic":
                if precision.weights != "int8" and rule.weight is not None:
                    raise ConversionError(
                        f"{name} ({op.type}): 16x8 has int8 weights, not {precision.weights} "
                        "(LiteRT has no int16-activation kernel for other weight types)")
                if int16_kernel(op) is None:
                    instead, why = refusal(op)
                    if instead == "int8":
                        precision, note = INT8, why + "; kept int8"
                    else:
                        reason = why
            self.precisions[id(op)] = precision
            if precision.is_hybrid:
                if hybrid_kernel(op):
                    self.modes[id(op)] = _FLOAT
                    self.hybrid.add(id(op))
                    self.reports.append(LayerReport(name, op.type, precision.describe()))
                    continue
                if rule is None or rule.weight is None:
                    # dynamic range: ops without weights simply stay float (by design, not a
                    # fallback worth reporting)
                    self.modes[id(op)] = _FLOAT
                    continue
            if reason is not None:
                pass
            elif precision.is_float:
                reason = "kept in float by the precision plan"
            elif rule is None:
                reason = f"LiteRT has no int8 kernel for {op.type} that edgesdk knows"
            elif rule.check is not None:
                reason = rule.check(op)
            if reason is None and rule is not None and rule.kind != "agnostic":
                missing = [t.name for t in float_tensors
                           if not t.is_constant and t not in self.ranges]
                if missing:
                    reason = f"no calibration statistics for {missing[0]!r}"
            if reason is not None:
                if self.strict and not precision.is_float:
                    raise UnsupportedOpError(op.type, name, supported, source="int8 export",
                                             detail=reason)
                self.modes[id(op)] = _FLOAT
                self.reports.append(LayerReport(name, op.type, "float32", reason))
                continue
            assert rule is not None
            if rule.kind == "agnostic":
                self.modes[id(op)] = _AGNOSTIC
                continue
            self.modes[id(op)] = _INT8
            self.act[id(op)] = DType.INT16 if precision.is_int16 else DType.INT8
            self.reports.append(LayerReport(name, op.type, precision.describe(), note))

    # ------------------------------------------------------------------ 1b. wide tails
    def keep_wide_tails(self) -> None:
        """Keep in float the tail of a model output that joins tensors of very different ranges.

        One int8 scale cannot hold box coordinates in pixels (0..640) and sigmoid scores (0..1)
        at once: the scores would keep log2(640) fewer bits. Where a CONCATENATION / PACK whose
        inputs' calibrated ranges differ by more than `RANGE_SPREAD_LIMIT` feeds only model
        outputs through ops that move values (no weighted layer, at most `TAIL_OPS` ops), that
        op and everything after it runs in float: each input is DEQUANTIZEd with its own scale.
        Only with float outputs: int8 / uint8 outputs are one scale by definition.
        """
        if self.output_type != "float32":
            return
        consumers = self.g.consumers()
        outputs = {id(t) for t in self.g.outputs}
        for op in self.g.operators:
            if op.type not in ("CONCATENATION", "PACK") or self.modes[id(op)] != _INT8:
                continue
            widths = []
            for t in op.inputs:
                if t is None or id(t) not in self.originally_float:
                    continue
                if t.is_constant:
                    data = t.numpy()
                    lo, hi = (float(data.min()), float(data.max())) if data.size else (0., 0.)
                elif t in self.ranges:
                    lo, hi = self.ranges[t]
                else:
                    continue
                widths.append(max(hi, 0.0) - min(lo, 0.0))
            widths = [w for w in widths if w > 0]
            if len(widths) < 2 or max(widths) <= RANGE_SPREAD_LIMIT * min(widths):
                continue
            tail = self._tail(op, consumers, outputs)
            if tail is None:
                continue
            spread = max(widths) / min(widths)
            for tail_op in tail:
                if self.modes[id(tail_op)] not in (_INT8, _AGNOSTIC):
                    continue
                self.modes[id(tail_op)] = _FLOAT
                reason = (f"output tail kept in float: {layer_name(op)} joins inputs whose "
                          f"ranges differ {spread:.0f}x (one int8 scale would leave the "
                          f"narrow ones {np.log2(spread):.1f} bits fewer); each input is "
                          "dequantised with its own scale")
                name = layer_name(tail_op)
                self.reports = [r for r in self.reports if r.name != name]
                self.reports.append(LayerReport(name, tail_op.type, "float32", reason))
                self.wide_tails.append(name)

    def keep_log_front_ends(self) -> None:
        """Keep in float the front end that computes a float LOG's (SQRT's) input from the model
        inputs.

        A LOG (no int8 kernel: it runs in float) of an int8 tensor reads every value below half
        a step (range / 255) as 0: the quiet bins of a power or mel spectrum, whose logarithm is
        what the model looks at, come out as log(eps). No int8 range holds a spectrum's 60+ dB
        (oww_melspectrogram: 4.9 dB at the output with int8 power and mel, 9.0 dB with only the
        STFT convolutions in int8, 50.5 dB with the front end in float). A SQRT of an int8 power
        (a magnitude spectrum) loses the same quiet bins (silero_vad_16k_op15: 15.7 dB after the
        SQRT, 5.0 dB at the output; 17.4 dB with the STFT in float). Where everything that feeds
        the op is computed from the model inputs by at most `FRONT_END_OPS` ops (or by a longer
        chain of signal processing, `SIGNAL_OPS`: basic-pitch's constant-Q transform), those
        ops run in float too (each says why); a LOG deeper in a network keeps its int8 input,
        and a layer whose precision was chosen (16x8, `precision=`) keeps it.
        """
        producers = {id(t): op for op in self.g.operators for t in op.outputs}
        inputs = {id(t) for t in self.g.inputs}
        for op in self.g.operators:
            if op.type not in LOG_LIKE or self.modes.get(id(op)) != _FLOAT:
                continue
            cone = self._front_end(op, producers, inputs)
            if not cone:
                continue
            for head_op in cone:
                if self.modes[id(head_op)] not in (_INT8, _AGNOSTIC) or self._chosen(head_op):
                    continue
                self.modes[id(head_op)] = _FLOAT
                name = layer_name(head_op)
                reason = (f"front end of {layer_name(op)} ({op.type}) kept in float: "
                          f"{LOG_LIKE[op.type]}, and one int8 scale (range / 255) rounds the "
                          "quiet values to 0; computed from the model inputs by "
                          f"{len(cone)} ops")
                self.reports = [r for r in self.reports if r.name != name]
                self.reports.append(LayerReport(name, head_op.type, "float32", reason))

    def keep_layernorm_statistics(self) -> None:
        """Run each decomposed LayerNorm's statistics (row mean, centring, variance, 1/std and
        the normalising product: `layernorm.statistics_ops`) in float; its input and its
        normalised output stay int8. A layer whose precision was chosen keeps it."""
        for stats in layernorm.statistics_ops(self.g):
            for op in stats.ops:
                if self.modes.get(id(op)) not in (_INT8, _AGNOSTIC) or self._chosen(op):
                    continue
                self.modes[id(op)] = _FLOAT
                self.act.pop(id(op), None)
                name = layer_name(op)
                self.reports = [r for r in self.reports if r.name != name]
                self.reports.append(LayerReport(name, op.type, "float32", layernorm.REASON))

    def hybrid_float_kept(self) -> None:
        """With `plan.hybrid_kept` (the INT4 scheme): a weighted layer the steps above keep off
        int8 activations (a LOG / SQRT front end, a layer without calibration statistics) keeps
        float activations but takes INT8 weights, per channel (LiteRT's dynamic-range kernel):
        1 byte a weight where float keeps 4, and an STFT front end is most of such a model's
        bytes (oww_melspectrogram's int4 file 634,496 -> 240,800 B). Its activations stay float,
        which is why the layer was kept there. Only where its input is the model input moved
        (`_moved_from_inputs`: an STFT's frames), since the hybrid kernel quantises its input
        to int8 per inference; not a layer the plan keeps float itself, nor one LiteRT has no
        hybrid kernel for (`hybrid_kernel`)."""
        if not self.plan.hybrid_kept:
            return
        producers = {id(t): op for op in self.g.operators for t in op.outputs}
        inputs = {id(t) for t in self.g.inputs}
        for op in self.g.operators:
            if self.modes.get(id(op)) != _FLOAT or id(op) in self.hybrid \
                    or self.plan.for_op(op).is_float or not hybrid_kernel(op):
                continue
            name = layer_name(op)
            why = next((r.reason for r in self.reports if r.name == name), "")
            if not _moved_from_inputs(op.inputs[0], producers, inputs):
                # the hybrid kernel quantises its input to int8 at run time, one scale per
                # inference: the quiet values of a computed spectrum (oww_melspectrogram's mel
                # MatMul on the power: 22.86 -> 16.58 dB) round to 0 as in the int8 rewrite
                self.reports = [r if r.name != name else LayerReport(
                    name, op.type, r.precision,
                    f"{r.reason}; not INT8 weights with float activations (hybrid_kept): its "
                    "input is computed, not the model input moved, and the hybrid kernel "
                    "quantises it to int8 at run time") for r in self.reports]
                continue
            self.precisions[id(op)] = HYBRID_INT8
            self.hybrid.add(id(op))
            self.reports = [r for r in self.reports if r.name != name]
            self.reports.append(LayerReport(
                name, op.type, HYBRID_INT8.describe(),
                "INT8 weights with float activations (dynamic range, 1 byte a weight where "
                f"float keeps 4): the INT8 rewrite keeps its activations float ({why})"))

    def _chosen(self, op: Operator) -> bool:
        """Whether `op`'s precision was chosen for it (16x8, a per-layer override, the
        planner): then it is kept as chosen."""
        return self.act.get(id(op)) is DType.INT16 or layer_name(op) in self.plan.layers \
            or self.plan.for_op(op) is not self.plan.default

    def _front_end(self, op: Operator, producers: Mapping[int, Operator],
                   inputs: set[int]) -> list[Operator] | None:
        """The ops that compute `op`'s inputs from the model inputs and constants, when there
        are at most FRONT_END_OPS of them, or at most SIGNAL_FRONT_END_OPS that are all signal
        processing (`SIGNAL_OPS`, no fused activation); None otherwise (or when there are
        none)."""
        cone = input_cone(op, producers, inputs, SIGNAL_FRONT_END_OPS)
        if cone is None or len(cone) <= FRONT_END_OPS:
            return cone
        if all(c.type in SIGNAL_OPS and c.attrs.get("fused_activation_function", "NONE")
               in (None, "NONE") for c in cone):
            return cone
        return None

    def _tail(self, op: Operator, consumers: Mapping[Tensor, list[Operator]],
              outputs: set[int]) -> list[Operator] | None:
        """`op` and the ops after it, when they lead only to model outputs through at most
        TAIL_OPS ops without weights; None otherwise."""
        tail = [op]
        seen = {id(op)}
        frontier = list(op.outputs)
        while frontier:
            t = frontier.pop()
            users = consumers.get(t, [])
            if not users and id(t) not in outputs:
                return None  # a dead end that is not an output: not a plain tail
            for user in users:
                if id(user) in seen:
                    continue
                if user.type in WEIGHTED or user.type == "BATCH_MATMUL" \
                        or len(tail) >= TAIL_OPS:
                    return None
                seen.add(id(user))
                tail.append(user)
                frontier.extend(user.outputs)
        return tail

    # ------------------------------------------------------------------ 2. shared parameters
    def tie(self) -> None:
        for t, (lo, hi) in self.ranges.items():
            if id(t) in self.originally_float:
                self.groups.set_span(t, lo, hi)
        if self.input_type != "float32":
            for t in self.g.inputs:
                if id(t) in self.originally_float:
                    self.groups.set_dtype(t, DType.INT8)
        for op in self.g.operators:
            if self.modes[id(op)] != _INT8:
                continue
            rule = OP_RULES[op.type]
            outs = [t for t in op.outputs if id(t) in self.originally_float]
            for t in outs:
                self.groups.set_dtype(t, self.act[id(op)])
            fixed = rule.fixed_output
            if self.act[id(op)] is DType.INT16:
                kernel = int16_kernel(op)
                fixed = kernel.fixed_output if kernel is not None else None
            if rule.kind == "fixed" and fixed is not None:
                scale, zp = fixed
                for t in outs:
                    if not self.groups.fix(t, QuantParams.per_tensor(scale, zp)):
                        # the output is already tied to other fixed parameters: cannot happen
                        # for a tensor produced once, but say so rather than mis-quantise
                        raise ConversionError(f"{layer_name(op)}: conflicting fixed output "
                                              "quantisation")
        for op in self.g.operators:
            if self.modes[id(op)] != _INT8:
                continue
            rule = OP_RULES[op.type]
            if rule.kind != "same_scale":
                continue
            outs = [t for t in op.outputs if id(t) in self.originally_float]
            if not outs:
                continue
            anchor = outs[0]
            for t in outs[1:]:
                self.groups.union(anchor, t)
            for i in activation_inputs(op, rule, self.was_float):
                t = op.inputs[i]
                assert t is not None
                if t.is_constant:
                    continue
                if not self.groups.union(anchor, t):
                    self.requant_inputs[(id(op), i)] = anchor
                    self.requantized.append(f"{layer_name(op)} input {i}")

    def assign_params(self) -> None:
        spans: dict[int, tuple[float, float]] = {}
        for t, (lo, hi) in self.ranges.items():
            if id(t) not in self.originally_float:
                continue
            r = self.groups.find(t)
            if self.groups.dtype.get(r) is DType.INT16:
                lo, hi = self.wide.get(t, (lo, hi))
            a, b = spans.get(r, (0.0, 0.0))
            spans[r] = (min(a, lo), max(b, hi))
        for root, members in self.groups.members.items():
            int16 = self.groups.dtype.get(root) is DType.INT16
            if root in self.groups.fixed:
                params = self.groups.fixed[root]
            elif root in spans:
                params = symmetric_int16(*spans[root]) if int16 else affine_params(*spans[root])
            else:
                continue
            for t in members:
                self.params[id(t)] = params
                if int16:
                    self.int16_params.add(id(t))
        for t, (lo, hi) in self.ranges.items():
            if id(t) in self.originally_float and id(t) not in self.params:
                self.params[id(t)] = affine_params(lo, hi)
        for t, (lo, hi) in self.ranges.items():
            p = self.params.get(id(t))
            if p is not None:
                _check_scale(t, p, f"calibrated range [{lo:g}, {hi:g}]")

    # ------------------------------------------------------------------ 3. home types
    def set_home_types(self) -> None:
        for op in self.g.operators:
            if self.modes[id(op)] != _INT8:
                continue
            for t in op.outputs:
                if id(t) in self.originally_float:
                    t.dtype = self.act[id(op)]
                    t.quant = self.params[id(t)]
        for t in self.g.inputs:
            if id(t) not in self.originally_float or id(t) not in self.params:
                continue
            p = self.params[id(t)]
            if self.input_type == "int8":
                t.dtype, t.quant = DType.INT8, p
            elif self.input_type == "uint8":
                t.dtype, t.quant = DType.UINT8, _to_uint8(p)

    # ------------------------------------------------------------------ 4. operators
    def rewrite_ops(self) -> None:
        new_ops: list[Operator] = []
        for op in self.g.operators:
            mode = self.modes[id(op)]
            self.pending = []
            if mode == _INT8:
                self.quantize_op(op)
            elif mode == _FLOAT:
                x = op.inputs[0] if op.inputs else None
                for i, t in enumerate(op.inputs):
                    if t is not None and id(t) in self.originally_float and not (
                            t.is_constant and id(op) in self.hybrid):
                        op.inputs[i] = self.float_view(t)
                if op.type in log_guard.GUARDED and x is not None and x.quant is not None \
                        and log_guard.needs_guard(x, self.ranges.get(x, (None,))[0]):
                    self.pending.append(log_guard.guard(self.g, op.inputs[0], x.quant, op))
                if id(op) in self.hybrid:
                    self.hybrid_weights(op)
            new_ops.extend(self.pending)
            new_ops.append(op)
        self.pending = []
        self.g.operators = new_ops

    def view_params(self, t: Tensor, dtype: DType) -> QuantParams:
        """The parameters of `t` as `dtype`: its own where its home type is `dtype`, else the
        ones its calibrated range gives in that type (a boundary between int8 and 16x8)."""
        if id(t) in self.params and (id(t) in self.int16_params) == (dtype is DType.INT16):
            return self.params[id(t)]
        if dtype is DType.INT16:
            return symmetric_int16(*self.wide.get(t, self.ranges[t]))
        return affine_params(*self.ranges[t])

    def quantize_op(self, op: Operator) -> None:
        rule = OP_RULES[op.type]
        dtype = self.act[id(op)]
        own_params = rule.kind == "compute"
        anchor_params = None
        if rule.kind == "same_scale":
            outs = [t for t in op.outputs if id(t) in self.originally_float]
            anchor_params = self.params.get(id(outs[0])) if outs else None
        original_inputs = list(op.inputs)
        for i in activation_inputs(op, rule, self.was_float):
            t = op.inputs[i]
            assert t is not None
            if t.is_constant:
                if own_params or anchor_params is None:
                    params = _const_params(t, dtype)
                else:
                    params = anchor_params
                op.inputs[i] = self.quantized_constant(t, params, dtype)
                continue
            if (id(op), i) in self.requant_inputs:
                target = self.params[id(self.requant_inputs[(id(op), i)])]
            else:
                target = self.view_params(t, dtype)
            op.inputs[i] = self.quantized_copy(t, target, dtype)
        if rule.weight is not None and rule.weight < len(op.inputs) \
                and op.inputs[rule.weight] is not None:
            self.quantize_weights(op, rule, original_inputs)
        if dtype is DType.INT16:
            kernel = int16_kernel(op)
            assert kernel is not None
            op.attrs.update(kernel.attrs)
            op.version = max(op.version, kernel.version or rule.version)
        else:
            op.version = max(op.version, rule.version, _extra_version(op))

    def quantize_weights(self, op: Operator, rule: OpRule,
                         original_inputs: list[Tensor | None]) -> None:
        assert rule.weight is not None
        w = op.inputs[rule.weight]
        assert w is not None and w.is_constant
        x_index = rule.activations[0] if rule.activations else 0
        x = op.inputs[x_index]
        x_float = original_inputs[x_index]
        assert x is not None and x.quant is not None
        in_scale = np.float32(x.quant.scale[0])
        wf = w.numpy().astype(np.float32)
        if rule.weight_per_tensor:
            q, wq = per_tensor_symmetric(wf)
            op.inputs[rule.weight] = self.shared_weight(w, q, DType.INT8, wq)
            return
        precision = self.precisions[id(op)]
        fmt = weight_format(precision.weights)
        if fmt.block_size:
            raise ConversionError(
                f"{layer_name(op)}: block-wise weights ({fmt.name}) need float activations "
                "(LiteRT has no block-wise kernel with int8 activations); use per-channel "
                "weights or activations='float32'")
        result = fmt.quantize(wf, rule.weight_axis, self.weight_method or fmt.default_method)
        codes, wquant = result.values, result.quant
        if self.stem is not None and fmt.name == "int8" and not wquant.block_size \
                and (self.weight_method or fmt.default_method) == "minmax":
            solved = self.stem.codes(wf, rule.weight_axis, wquant.scale, fmt.qmin, fmt.qmax)
            if solved is not None:  # a stem layer: GPTQ codes against its inputs
                codes = solved[1].astype(codes.dtype)
                wquant = QuantParams.per_channel(solved[0], wquant.axis)
        if self.heads is not None and fmt.name == "int8" and not wquant.block_size \
                and (self.weight_method or fmt.default_method) == "minmax":
            solved = self.heads.codes(wf, rule.weight_axis, wquant.scale, fmt.qmin, fmt.qmax)
            if solved is not None:  # an output head: GPTQ codes that passed a held-out check
                codes = solved[1].astype(codes.dtype)
                wquant = QuantParams.per_channel(solved[0], wquant.axis)
        bias_t = op.inputs[rule.bias] if rule.bias is not None and rule.bias < len(op.inputs) \
            else None
        bias = bias_t.numpy().astype(np.float64) if bias_t is not None else None
        kernel = int16_kernel(op) if self.act[id(op)] is DType.INT16 else None
        bias_type = kernel.bias if kernel is not None and kernel.bias is not None \
            else DType.INT32
        if bias is not None and not wquant.block_size and bias_type is DType.INT32:
            # the int32 bias must fit with room for the accumulation: floor the weight scale of
            # channels whose bias would not (dead channels: BatchNorm folded a ~0 gamma into the
            # weights but kept beta), as TFLite's converter does; their codes round to ~0
            scales = wquant.scale.astype(np.float64)
            limit = np.abs(bias) / (float(in_scale) * BIAS_LIMIT)
            if (limit > scales).any():
                scales = np.maximum(scales, limit * 1.0001).astype(np.float32)
                codes = quantize_with_scales(wf, rule.weight_axis, scales, fmt.qmin,
                                             fmt.qmax).astype(codes.dtype)
                wquant = QuantParams.per_channel(scales, wquant.axis)
        if bias is not None and x_float in self.means and wquant.block_size == 0:
            bias = bias - _bias_shift(op.type, wf, wquant.dequantize(codes),
                                      self.means[x_float].astype(np.float64))
        op.inputs[rule.weight] = self.shared_weight(w, codes, result.dtype, wquant)
        if bias_t is not None and bias is not None:
            assert rule.bias is not None
            bias_scale = (in_scale * wquant.scale.astype(np.float32)).astype(np.float32)
            if bias_scale.size == 1 and bias.size > 1:
                bias_scale = np.full(bias.size, bias_scale[0], np.float32)
            limit = INT32_MAX if bias_type is DType.INT32 else INT64_LIMIT
            qb = np.clip(np.round(bias / bias_scale.astype(np.float64)), -limit, limit)
            bquant = QuantParams.per_channel(bias_scale, 0) if bias_scale.size > 1 \
                else QuantParams.per_tensor(float(bias_scale[0]), 0)
            if compact_bias_scales(op.type, result.dtype, bias_scale.size):
                bquant.extras["tflite_no_scale"] = True
            op.inputs[rule.bias] = self.add_constant(
                bias_t.name, qb.astype(np.int32 if bias_type is DType.INT32 else np.int64),
                bias_type, bquant)

    def hybrid_weights(self, op: Operator) -> None:
        """Dynamic range: quantise the weights of a float op; bias and activations stay float."""
        rule = OP_RULES[op.type]
        assert rule.weight is not None
        w = op.inputs[rule.weight]
        assert w is not None and w.is_constant
        fmt = weight_format(self.precisions[id(op)].weights)
        wf = w.numpy().astype(np.float32)
        try:
            result = fmt.quantize(wf, rule.weight_axis, self.weight_method or fmt.default_method)
        except ValueError as exc:
            raise ConversionError(f"{layer_name(op)} ({op.type}): {fmt.name} weights: {exc}") \
                from exc
        op.inputs[rule.weight] = self.shared_weight(w, result.values, result.dtype,
                                                    result.quant)
        op.version = max(op.version, hybrid_version(op.type, result.dtype,
                                                    result.quant.is_per_channel))

    # ------------------------------------------------------------------ views and constants
    def add_constant(self, name: str, data: np.ndarray, dtype: DType,
                     quant: QuantParams | None) -> Tensor:
        return self.g.add_tensor(Tensor(self.g.unique_name(name), data.shape, dtype,
                                        data=np.ascontiguousarray(data), quant=quant))

    def shared_weight(self, w: Tensor, codes: np.ndarray, dtype: DType,
                      quant: QuantParams | None) -> Tensor:
        """The quantised constant for float weight `w`: one tensor (one buffer) for every op
        whose weights quantise to the same codes and parameters (the shared recurrent weights
        of an unrolled LSTM / GRU are written once, not once per step; so are copies of one
        weight the importer made per consumer, e.g. each MatMul's transposed initializer)."""
        codes = np.ascontiguousarray(codes)
        key = (dtype.name,
               f"{_params_key(quant)}:{quant.block_size}" if quant is not None else "",
               hashlib.blake2b(codes.tobytes(), digest_size=16).hexdigest()
               + f"{codes.dtype}{codes.shape}")
        if key not in self.weight_cache:
            self.weight_cache[key] = self.add_constant(w.name, codes, dtype, quant)
        return self.weight_cache[key]

    def quantized_constant(self, t: Tensor, params: QuantParams,
                           dtype: DType = DType.INT8) -> Tensor:
        key = (id(t), f"{dtype.name}:{_params_key(params)}")
        if key not in self.const_cache:
            data = t.numpy().astype(np.float64)
            _check_scale(t, params, "constant")
            qmin, qmax, np_type = ((INT16_QMIN, INT16_QMAX, np.int16) if dtype is DType.INT16
                                   else (-128, 127, np.int8))
            q = np.clip(np.round(data / float(params.scale[0])) + int(params.zero_point[0]),
                        qmin, qmax).astype(np_type)
            self.const_cache[key] = self.add_constant(t.name, q, dtype, params)
        return self.const_cache[key]

    def new_activation(self, like: Tensor, name: str, dtype: DType,
                       quant: QuantParams | None) -> Tensor:
        t = Tensor(self.g.unique_name(name), like.shape, dtype, quant=quant,
                   shape_signature=like.shape_signature)
        return self.g.add_tensor(t)

    def int8_view(self, t: Tensor, params: QuantParams) -> Tensor:
        """`t` as int8 with `params`: itself, or the output of one QUANTIZE."""
        return self.quantized_copy(t, params, DType.INT8)

    def quantized_copy(self, t: Tensor, params: QuantParams, dtype: DType) -> Tensor:
        """`t` as `dtype` (int8 or int16) with `params`: itself, or the output of one QUANTIZE
        (from float, or requantising: int8 -> int8, int8 <-> int16 at a 16x8 boundary)."""
        if t.dtype is dtype and t.quant is not None and t.quant.same_as(params):
            return t
        prefix = "int16:" if dtype is DType.INT16 else "int8:"
        key = (id(t), prefix + _params_key(params))
        if key not in self.converted:
            out = self.new_activation(t, f"{t.name}_{prefix[:-1]}", dtype, params)
            if t.dtype in (DType.INT8, DType.INT16):
                self.requantized.append(t.name)
            self.pending.append(Operator("QUANTIZE", [t], [out], version=1,
                                         format_extras={"tflite_options_type": None}))
            self.converted[key] = out
        return self.converted[key]

    def float_view(self, t: Tensor) -> Tensor:
        """`t` as float32: itself, or the output of one DEQUANTIZE."""
        if t.dtype is DType.FLOAT32:
            return t
        key = (id(t), "float")
        if key not in self.converted:
            out = self.new_activation(t, f"{t.name}_float", DType.FLOAT32, None)
            self.pending.append(Operator("DEQUANTIZE", [t], [out],
                                         version=_DEQUANTIZE_VERSIONS.get(t.dtype, 1),
                                         format_extras={"tflite_options_type": None}))
            self.converted[key] = out
        return self.converted[key]

    def quantized_view(self, t: Tensor) -> Tensor:
        """The quantised representation of activation `t` in the rewritten graph (for
        per-layer comparisons): its int8 / int16 self or copy, else itself."""
        if t.dtype in (DType.INT8, DType.UINT8, DType.INT16):
            return t
        for (tid, key), out in self.converted.items():
            if tid == id(t) and key.startswith(("int8:", "int16:")):
                return out
        return t

    # ------------------------------------------------------------------ 5. model outputs
    def fix_outputs(self) -> None:
        replaced: dict[int, Tensor] = {}
        self.pending = []
        new_outputs = []
        for t in self.g.outputs:
            if id(t) not in self.originally_float or id(t) not in self.params:
                new_outputs.append(t)
                continue
            if self.output_type == "float32":
                out = self.float_view(t)
            else:
                out = self.int8_view(t, self.view_params(t, DType.INT8))
                if self.output_type == "uint8":
                    out = self.uint8_view(out)
            if out is not t:
                # the model-facing tensor keeps the original name
                out.name, t.name = t.name, self.g.unique_name(f"{t.name}_int8"
                                                              if t.dtype is DType.INT8
                                                              else f"{t.name}_float")
                replaced[id(t)] = out
            new_outputs.append(out)
        self.g.operators.extend(self.pending)
        self.pending = []
        self.g.outputs = new_outputs
        # model inputs fed through a QUANTIZE keep their (float / uint8) tensor and name
        for sig in self.model.signatures:
            if sig.graph_index != 0:
                continue
            sig.outputs = {k: replaced.get(id(v), v) for k, v in sig.outputs.items()}

    def uint8_view(self, t: Tensor) -> Tensor:
        assert t.quant is not None
        out = self.new_activation(t, f"{t.name}_uint8", DType.UINT8, _to_uint8(t.quant))
        self.pending.append(Operator("QUANTIZE", [t], [out], version=1,
                                     format_extras={"tflite_options_type": None}))
        return out


def _to_uint8(p: QuantParams) -> QuantParams:
    return QuantParams.per_tensor(float(p.scale[0]), int(p.zero_point[0]) + 128)


def _params_key(p: QuantParams) -> str:
    return f"{p.scale.tobytes().hex()}:{p.zero_point.tobytes().hex()}:{p.axis}"


def _const_params(t: Tensor, dtype: DType = DType.INT8) -> QuantParams:
    data = t.numpy()
    if data.size == 0:
        return QuantParams.per_tensor(1.0, 0)
    if dtype is DType.INT16:
        return symmetric_int16(float(np.min(data)), float(np.max(data)))
    return affine_params(float(np.min(data)), float(np.max(data)))


#: DEQUANTIZE's version by input type (what TensorFlow's converter writes)
_DEQUANTIZE_VERSIONS = {DType.INT8: 2, DType.INT16: 2}


def _extra_version(op: Operator) -> int:
    """Versions that depend on the quantisation parameters or the weight type, not only on the
    activation types."""
    if op.type in WEIGHTED and len(op.inputs) > 1 and op.inputs[1] is not None:
        version = SUBBYTE_WEIGHT_VERSIONS.get((op.type, op.inputs[1].dtype))
        if version is not None:
            return version
    if op.type == "MUL" and len(op.inputs) >= 2:
        a, b, o = op.inputs[0], op.inputs[1], op.outputs[0]
        if all(t is not None and t.quant is not None for t in (a, b, o)):
            ratio = float(a.quant.scale[0]) * float(b.quant.scale[0]) / float(o.quant.scale[0])  # type: ignore[union-attr]
            if ratio >= 1.0:
                return 3
    return 1


def _bias_shift(op_type: str, w: np.ndarray, wq: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Expected change of each output channel caused by rounding the weights, given the mean of
    each input channel: sum over the reduction of (wq - w) * E[x]."""
    dw = (wq.astype(np.float64) - w.astype(np.float64))
    if op_type == "FULLY_CONNECTED":  # [O, I]
        if mean.size != dw.shape[1]:
            return np.zeros(dw.shape[0])
        return dw @ mean
    if op_type == "CONV_2D":  # [O, H, W, I]
        if mean.size != dw.shape[3]:
            return np.zeros(dw.shape[0])
        return np.einsum("ohwi,i->o", dw, mean)
    if op_type == "DEPTHWISE_CONV_2D":  # [1, H, W, C*M]
        channels = dw.shape[3]
        if channels % max(mean.size, 1):
            return np.zeros(channels)
        multiplier = channels // mean.size
        return dw.sum(axis=(0, 1, 2)) * np.repeat(mean, multiplier)
    return np.zeros(w.shape[0])
