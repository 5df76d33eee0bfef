"""What each TFLite builtin needs to run in INT8: the quantisation constraints of LiteRT's kernels.

Kinds of operator:
- ``compute``: inputs and outputs take any per-tensor asymmetric int8 parameters; the kernel
  requantises (ADD, MUL, MEAN, HARD_SWISH, ...). Weighted ops (CONV_2D, DEPTHWISE_CONV_2D,
  FULLY_CONNECTED, TRANSPOSE_CONV, BATCH_MATMUL) add a constant weight input with its per-channel
  axis and an int32 bias input whose scale is input_scale * weight_scale.
- ``same_scale``: the kernel moves or selects values without requantising, so every activation
  input and output must share one scale and zero point (MAX_POOL_2D, RESHAPE, CONCATENATION,
  PAD, RESIZE_*, TRANSPOSE, ...). The rewrite ties them together; where two ties conflict it
  inserts a requantising QUANTIZE.
- ``fixed``: the output's parameters are fixed by the kernel (LOGISTIC and SOFTMAX 1/256 with
  zero point -128, TANH and L2_NORMALIZATION 1/128 with 0, LOG_SOFTMAX 16/256 with 127).
- ``agnostic``: reads only the shape (SHAPE): takes whatever representation its input has.

``version`` is the minimal operator version for int8 operands (TFLite's op_version rules); the
rewrite writes max(float version, this) as TFLite's own converter does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sdk.converters.ir import DType, Operator, Tensor


@dataclass(frozen=True)
class OpRule:
    kind: str  # "compute" | "same_scale" | "fixed" | "agnostic"
    version: int = 1
    #: indices of inputs that carry activations; None: every float input that is not weight/bias
    activations: tuple[int, ...] | None = None
    weight: int | None = None
    weight_axis: int = 0
    #: True: the weight is one symmetric per-tensor scale (BATCH_MATMUL)
    weight_per_tensor: bool = False
    bias: int | None = None
    #: (scale, zero_point) of every int8 output, for ``fixed``
    fixed_output: tuple[float, int] | None = None
    #: returns why this particular node cannot be quantised (None when it can)
    check: Callable[[Operator], str | None] | None = None


def _weighted(bias: int) -> Callable[[Operator], str | None]:
    def check(op: Operator) -> str | None:
        w = op.inputs[1] if len(op.inputs) > 1 else None
        if w is None or not w.is_constant:
            return "its weights are not a constant (int8 kernels need constant symmetric weights)"
        if w.dtype is not DType.FLOAT32:
            return f"its weights are {w.dtype.name}, not FLOAT32"
        b = op.inputs[bias] if len(op.inputs) > bias else None
        if b is not None and not (b.is_constant and b.dtype is DType.FLOAT32):
            return "its bias is not a FLOAT32 constant"
        return None
    return check


def _rank_at_most(n: int) -> Callable[[Operator], str | None]:
    def check(op: Operator) -> str | None:
        t = op.inputs[0]
        if t is not None and t.rank > n:
            return f"int8 kernel supports rank <= {n}, input has rank {t.rank}"
        return None
    return check


def _batch_matmul(op: Operator) -> str | None:
    rhs = op.inputs[1]
    if rhs is None or not rhs.is_constant:
        return "both operands are activations (int8 BATCH_MATMUL needs a constant right operand)"
    if op.attrs.get("adj_x"):
        return "adj_x is not supported in int8"
    return None


WEIGHTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"}

OP_RULES: dict[str, OpRule] = {
    # weighted
    "CONV_2D": OpRule("compute", 3, activations=(0,), weight=1, weight_axis=0, bias=2,
                      check=_weighted(2)),
    "DEPTHWISE_CONV_2D": OpRule("compute", 3, activations=(0,), weight=1, weight_axis=3, bias=2,
                                check=_weighted(2)),
    "FULLY_CONNECTED": OpRule("compute", 4, activations=(0,), weight=1, weight_axis=0, bias=2,
                              check=_weighted(2)),
    "TRANSPOSE_CONV": OpRule("compute", 2, activations=(2,), weight=1, weight_axis=0, bias=3,
                             check=_weighted(3)),
    "BATCH_MATMUL": OpRule("compute", 2, activations=(0,), weight=1, weight_per_tensor=True,
                           check=_batch_matmul),
    # requantising element-wise and reductions
    "ADD": OpRule("compute", 2),
    "SUB": OpRule("compute", 2),
    "MUL": OpRule("compute", 2),
    "SQUARED_DIFFERENCE": OpRule("compute", 2),
    "MEAN": OpRule("compute", 2, activations=(0,)),
    "SUM": OpRule("compute", 2, activations=(0,)),
    "RELU": OpRule("compute", 2),
    "RELU6": OpRule("compute", 2),
    "RELU_N1_TO_1": OpRule("compute", 1),
    "LEAKY_RELU": OpRule("compute", 1),
    "HARD_SWISH": OpRule("compute", 1),
    "PRELU": OpRule("compute", 1),
    "ELU": OpRule("compute", 1),
    "GELU": OpRule("compute", 2),
    "ABS": OpRule("compute", 2),
    "RSQRT": OpRule("compute", 2),
    "ARG_MAX": OpRule("compute", 2, activations=(0,)),
    "ARG_MIN": OpRule("compute", 2, activations=(0,)),
    # fixed output parameters
    "LOGISTIC": OpRule("fixed", 2, fixed_output=(1.0 / 256, -128)),
    "SOFTMAX": OpRule("fixed", 2, fixed_output=(1.0 / 256, -128)),
    "TANH": OpRule("fixed", 2, fixed_output=(1.0 / 128, 0)),
    "LOG_SOFTMAX": OpRule("fixed", 2, fixed_output=(16.0 / 256, 127)),
    "L2_NORMALIZATION": OpRule("fixed", 2, fixed_output=(1.0 / 128, 0)),
    # same scale in and out
    "MAX_POOL_2D": OpRule("same_scale", 2),
    "AVERAGE_POOL_2D": OpRule("same_scale", 2),
    "RESHAPE": OpRule("same_scale", 1, activations=(0,)),
    "SQUEEZE": OpRule("same_scale", 1),
    "EXPAND_DIMS": OpRule("same_scale", 1, activations=(0,)),
    "TRANSPOSE": OpRule("same_scale", 2, activations=(0,), check=_rank_at_most(6)),
    "CONCATENATION": OpRule("same_scale", 2),
    "PAD": OpRule("same_scale", 2, activations=(0,)),
    "PADV2": OpRule("same_scale", 2, activations=(0, 2)),
    "MIRROR_PAD": OpRule("same_scale", 2, activations=(0,)),
    "SLICE": OpRule("same_scale", 2, activations=(0,)),
    "STRIDED_SLICE": OpRule("same_scale", 2, activations=(0,)),
    "GATHER": OpRule("same_scale", 2, activations=(0,)),
    "SPLIT": OpRule("same_scale", 2, activations=(1,)),
    "SPLIT_V": OpRule("same_scale", 2, activations=(0,)),
    "PACK": OpRule("same_scale", 2),
    "UNPACK": OpRule("same_scale", 2),
    "TILE": OpRule("same_scale", 3, activations=(0,)),
    "BROADCAST_TO": OpRule("same_scale", 3, activations=(0,)),
    "RESIZE_BILINEAR": OpRule("same_scale", 2, activations=(0,)),
    "RESIZE_NEAREST_NEIGHBOR": OpRule("same_scale", 2, activations=(0,)),
    "SPACE_TO_DEPTH": OpRule("same_scale", 2),
    "DEPTH_TO_SPACE": OpRule("same_scale", 2),
    "SPACE_TO_BATCH_ND": OpRule("same_scale", 2, activations=(0,)),
    "BATCH_TO_SPACE_ND": OpRule("same_scale", 2, activations=(0,)),
    "MAXIMUM": OpRule("same_scale", 2),
    "MINIMUM": OpRule("same_scale", 2),
    "REDUCE_MAX": OpRule("same_scale", 2, activations=(0,)),
    "REDUCE_MIN": OpRule("same_scale", 2, activations=(0,)),
    "SELECT": OpRule("same_scale", 2, activations=(1, 2)),
    "SELECT_V2": OpRule("same_scale", 1, activations=(1, 2)),
    # shape only
    "SHAPE": OpRule("agnostic", 1),
}


#: (op, weight type) -> minimal version with int8 activations and sub-byte weights (TFLite's
#: op_version rules; INT2 has no rule of its own and uses the int8 version)
SUBBYTE_WEIGHT_VERSIONS: dict[tuple[str, DType], int] = {
    ("FULLY_CONNECTED", DType.INT4): 10,
    ("CONV_2D", DType.INT4): 7,
    ("DEPTHWISE_CONV_2D", DType.INT4): 7,
}

#: (op, per-channel) -> minimal version of a dynamic-range op with INT8 weights
_HYBRID_INT8_VERSIONS: dict[tuple[str, bool], int] = {
    ("FULLY_CONNECTED", True): 12, ("FULLY_CONNECTED", False): 3,
    ("CONV_2D", True): 5, ("CONV_2D", False): 2,
    ("DEPTHWISE_CONV_2D", True): 6, ("DEPTHWISE_CONV_2D", False): 4,
}


def hybrid_version(op_type: str, weight_type: DType, per_channel: bool) -> int:
    """Minimal version of a dynamic-range (float activations, quantised weights) op. TFLite has
    version rules only for INT8 weights; INT4 / INT2 weights load at version 1 (what
    ai-edge-quantizer writes)."""
    if weight_type is DType.INT8:
        return _HYBRID_INT8_VERSIONS.get((op_type, per_channel), 1)
    return 1


def hybrid_kernel(op: Operator) -> bool:
    """Whether `op` can run as a dynamic-range ("hybrid") layer: float activations with
    constant weights quantised per channel, which LiteRT's hybrid kernels (CONV_2D,
    DEPTHWISE_CONV_2D, FULLY_CONNECTED) take. The one test the INT8 rewrite, the sub-byte
    schemes' float-kept layers and the mixed search's `HYBRID` format share."""
    rule = OP_RULES.get(op.type)
    return rule is not None and rule.weight is not None and not rule.weight_per_tensor \
        and (rule.check is None or rule.check(op) is None)


def register_op_rule(op_type: str, rule: OpRule) -> OpRule:
    """Teach the rewrite a new builtin (or override a rule)."""
    OP_RULES[op_type] = rule
    return rule


def supported_int8_ops() -> list[str]:
    return sorted(OP_RULES)


def _is_float(t: Tensor) -> bool:
    return t.dtype is DType.FLOAT32


def activation_inputs(op: Operator, rule: OpRule,
                      is_float: Callable[[Tensor], bool] = _is_float) -> list[int]:
    """Indices of the op's float inputs that are activations to be quantised (constants included:
    a constant operand of ADD or CONCATENATION is quantised like the activation it stands for).
    `is_float` says whether a tensor is (or was, before the rewrite changed it) float."""
    if rule.activations is not None:
        candidates = [i for i in rule.activations if i < len(op.inputs)]
    else:
        candidates = [i for i in range(len(op.inputs)) if i not in (rule.weight, rule.bias)]
    return [i for i in candidates if op.inputs[i] is not None and is_float(op.inputs[i])]
