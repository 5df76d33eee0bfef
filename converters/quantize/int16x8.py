"""TFLite's 16x8 scheme: int16 activations with int8 weights, whole-model or per layer.

What it is (TFLite's quantisation spec, "16x8"): activations int16, symmetric, zero point 0,
one scale per tensor; weights int8, symmetric per channel (as in INT8); the bias of CONV_2D,
DEPTHWISE_CONV_2D, FULLY_CONNECTED and TRANSPOSE_CONV is int64 with scale input_scale *
weight_scale. LiteRT's builtin kernels run it (XNNPACK does not take int16 ops, so LiteRT runs
them with its reference / optimised builtin kernels).

Whole model: `sdk.export(m, "int16x8", calibration=...)` (`edgesdk export m int16x8`). Per layer
inside an INT8 model: `precision={layer: "int16x8"}`, or the precision planner
(`target_sqnr=`), which offers 16x8 before float. The rewrite (`int8.quantize_int8`) gives each
quantised op its activation type; where an int16 op reads an int8 tensor (or the reverse) it
inserts one requantising QUANTIZE (LiteRT's QUANTIZE takes int8 -> int16 and int16 -> int8).

Which ops: `INT16_KERNELS` lists the builtins whose int16 kernel was run here in the installed
LiteRT (`python -m sdk.converters.quantize.int16x8` probes every op of `rules.OP_RULES` again
and prints the table); `INT16_REFUSED` says, per op that has an int8 kernel but no usable int16
one, what the op gets instead (int8 or float) and why.

Ranges: 65,535 levels leave no reason to clip; int16 tensors take the calibrated min/max
(`wide_ranges`), not the range the int8 MSE search chose.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from sdk.converters.ir import DType, Operator, QuantParams, Tensor
from sdk.converters.quantize.plan import INT8, INT16X8, PrecisionPlan, register_scheme
from sdk.converters.quantize.ranges import MIN_ACTIVATION_SCALE

INT16_QMAX = 32767
INT16_QMIN = -32768


@dataclass(frozen=True)
class Int16Kernel:
    """An op whose builtin kernel runs int16 activations (with int8 weights where it has any)."""

    #: operator version with int16 activations; None: the int8 rule's (what TensorFlow's
    #: 16x8 converter writes: CONV_2D 3, FULLY_CONNECTED 4, ADD 2, ...)
    version: int | None = None
    #: (scale, zero point) of the int16 output where the kernel fixes it
    fixed_output: tuple[float, int] | None = None
    #: options the int16 kernel needs (ADD / SUB: general scales, not powers of two)
    attrs: Mapping[str, object] = field(default_factory=dict)
    #: bias type of weighted ops
    bias: DType | None = None


#: measured in ai-edge-litert 2.3.0, builtin kernels (`int16x8_probe`: a one-op model exported
#: to 16x8, run, compared with float; worst-output SQNR 75-101 dB, weighted ops 43-48 dB where
#: their int8 weights dominate, against 33-54 dB for the same op in int8)
INT16_KERNELS: dict[str, Int16Kernel] = {
    # weighted: int8 symmetric per-channel weights, int64 bias
    "CONV_2D": Int16Kernel(bias=DType.INT64),
    "DEPTHWISE_CONV_2D": Int16Kernel(bias=DType.INT64),
    "FULLY_CONNECTED": Int16Kernel(bias=DType.INT64),
    "TRANSPOSE_CONV": Int16Kernel(bias=DType.INT64),
    "BATCH_MATMUL": Int16Kernel(),
    # element-wise and reductions (requantising)
    "ADD": Int16Kernel(attrs={"pot_scale_int16": False}),
    "SUB": Int16Kernel(attrs={"pot_scale_int16": False}),
    "MUL": Int16Kernel(),
    "MEAN": Int16Kernel(),
    "SUM": Int16Kernel(),
    "RELU": Int16Kernel(),
    "RELU6": Int16Kernel(),
    "LEAKY_RELU": Int16Kernel(),
    "GELU": Int16Kernel(),
    "ABS": Int16Kernel(),
    "RSQRT": Int16Kernel(),
    # fixed output scale 1/32768, zero point 0
    "LOGISTIC": Int16Kernel(fixed_output=(1.0 / 32768, 0)),
    "TANH": Int16Kernel(fixed_output=(1.0 / 32768, 0)),
    "SOFTMAX": Int16Kernel(fixed_output=(1.0 / 32768, 0)),
    # same scale in and out
    "MAX_POOL_2D": Int16Kernel(),
    "AVERAGE_POOL_2D": Int16Kernel(),
    "RESHAPE": Int16Kernel(),
    "SQUEEZE": Int16Kernel(),
    "EXPAND_DIMS": Int16Kernel(),
    "TRANSPOSE": Int16Kernel(),
    "CONCATENATION": Int16Kernel(),
    "PAD": Int16Kernel(),
    "PADV2": Int16Kernel(),
    "MIRROR_PAD": Int16Kernel(),
    "SLICE": Int16Kernel(),
    "STRIDED_SLICE": Int16Kernel(),
    "GATHER": Int16Kernel(),
    "SPLIT": Int16Kernel(),
    "SPLIT_V": Int16Kernel(),
    "PACK": Int16Kernel(),
    "UNPACK": Int16Kernel(),
    "TILE": Int16Kernel(),
    "BROADCAST_TO": Int16Kernel(),
    "RESIZE_BILINEAR": Int16Kernel(),
    "RESIZE_NEAREST_NEIGHBOR": Int16Kernel(),
    "SPACE_TO_BATCH_ND": Int16Kernel(),
    "BATCH_TO_SPACE_ND": Int16Kernel(),
    "SELECT": Int16Kernel(),
    "MAXIMUM": Int16Kernel(),
    "MINIMUM": Int16Kernel(),
    "REDUCE_MAX": Int16Kernel(),
    "REDUCE_MIN": Int16Kernel(),
}

_NO_INT16 = "LiteRT {} refuses int16 ({})"
#: ops with an int8 kernel but no int16 one, measured the same way: (what the op gets instead
#: under a 16x8 plan, why). Float keeps a 16x8 section's precision (a DEQUANTIZE / QUANTIZE
#: pair); int8 only where the output does not carry the precision (an index)
INT16_REFUSED: dict[str, tuple[str, str]] = {
    "ARG_MAX": ("int8", _NO_INT16.format("ARG_MAX", "prepare: 'Unknown input type: 7'")
                + "; its output is an index, int8 ordering is enough"),
    "ARG_MIN": ("int8", _NO_INT16.format("ARG_MIN", "the same kernel as ARG_MAX")
                + "; its output is an index, int8 ordering is enough"),
    "PRELU": ("float32", "LiteRT's int16 PRELU runs but its result is wrong (5.7 dB against "
                         "the float op; int8 44 dB)"),
    "ELU": ("float32", _NO_INT16.format("ELU", "'Only float32 and int8 is supported'")),
    "HARD_SWISH": ("float32", _NO_INT16.format("HARD_SWISH",
                                               "'Only float32, uint8 and int8 are supported'")),
    "LOG_SOFTMAX": ("float32", _NO_INT16.format("LOG_SOFTMAX",
                                                "'Only float32, uint8 and int8 are supported'")),
    "RELU_N1_TO_1": ("float32", _NO_INT16.format("RELU_N1_TO_1",
                                                 "'Only float32, uint8, int8 supported'")),
    "SQUARED_DIFFERENCE": ("float32", _NO_INT16.format(
        "SQUARED_DIFFERENCE", "'only supports FLOAT32 and INT32'")),
    "L2_NORMALIZATION": ("float32", _NO_INT16.format("L2_NORMALIZATION", "prepare fails")),
    "DEPTH_TO_SPACE": ("float32", _NO_INT16.format("DEPTH_TO_SPACE", "prepare fails")),
    "SPACE_TO_DEPTH": ("float32", _NO_INT16.format("SPACE_TO_DEPTH", "prepare fails")),
}


def symmetric_int16(lo: float, hi: float) -> QuantParams:
    """16x8 activation parameters for the float range [lo, hi]: zero point 0, scale
    max(|lo|, |hi|) / 32767."""
    absmax = max(abs(float(lo)), abs(float(hi)))
    if absmax < 1e-12:
        return QuantParams.per_tensor(1.0, 0)
    return QuantParams.per_tensor(np.float32(max(absmax / INT16_QMAX, MIN_ACTIVATION_SCALE)), 0)


def int16_kernel(op: Operator) -> Int16Kernel | None:
    return INT16_KERNELS.get(op.type)


def refusal(op: Operator) -> tuple[str, str]:
    """What an op without an int16 kernel gets under a 16x8 plan, and why."""
    if op.type in INT16_REFUSED:
        return INT16_REFUSED[op.type]
    return "float32", f"LiteRT has no int16 (16x8) kernel for {op.type} that edgesdk knows"


def supported_int16_ops() -> list[str]:
    return sorted(INT16_KERNELS)


def wide_ranges(stats: Mapping[Tensor, object],
                ranges: Mapping[Tensor, tuple[float, float]]) -> dict[Tensor, tuple[float, float]]:
    """The calibrated min/max of every tensor that has statistics (int16 tensors take it: 65,535
    levels leave no reason to clip), else its int8 range."""
    out = dict(ranges)
    for t, s in stats.items():
        lo, hi = float(getattr(s, "min", np.inf)), float(getattr(s, "max", -np.inf))
        if np.isfinite(lo) and np.isfinite(hi):
            out[t] = (min(lo, 0.0), max(hi, 0.0))
    return out


def widen_layers(plan: PrecisionPlan, candidates: Iterable[tuple[str, Sequence[Operator], str]],
                 user_layers: Mapping[str, object] | None = None
                 ) -> tuple[PrecisionPlan, list[str]]:
    """`plan` with each candidate layer (its name, its ops, why) at 16x8 and `why` as its note,
    and the notes as "name: why" lines. A layer keeps what it had when the user chose it (by
    name or pattern), when an earlier candidate or the plan already names it, when the plan
    gives one of its ops anything but plain int8, or when one of its ops has no int16 kernel
    in LiteRT. The default rules that widen layers by themselves (a streamed recurrent state,
    the layers reading a float front end) share this, so they respect the user alike."""
    layers = dict(plan.layers)
    notes = dict(plan.notes)
    kept = []
    for name, ops, why in candidates:
        chosen = name in layers or any(fnmatch.fnmatchcase(name, str(pattern))
                                       for pattern in (user_layers or {}))
        if chosen or not ops or any(plan.for_op(op) != INT8 or int16_kernel(op) is None
                                    for op in ops):
            continue
        layers[name] = INT16X8
        notes[name] = why
        kept.append(f"{name}: {why}")
    if not kept:
        return plan, []
    return replace(plan, layers=layers, notes=notes), sorted(kept)


def _int16x8_plan(model: object, activations: str = "int16") -> PrecisionPlan:
    if activations not in ("int16", "int8"):
        raise ValueError(f"scheme int16x8 has int16 activations; activations={activations!r} "
                         "is not one of its options")
    return PrecisionPlan(scheme="int16x8", default=INT16X8)


register_scheme("int16x8", _int16x8_plan)


__all__ = ["INT16_KERNELS", "INT16_QMAX", "INT16_QMIN", "INT16_REFUSED", "Int16Kernel",
           "int16_kernel", "refusal", "supported_int16_ops", "symmetric_int16", "wide_ranges",
           "widen_layers"]
