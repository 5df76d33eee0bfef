"""IR operators -> .edge operators.

The IR names ops and attributes as TFLite does (`CONV_2D`, `padding="SAME"`, `stride_w`, ...).
A .edge operator is simpler for a runtime to check and run: padding is explicit (resolved here
exactly as TFLite resolves SAME/VALID), shape-only inputs (RESHAPE's shape, MEAN's axes, PAD's
paddings) become options, and SQUEEZE / EXPAND_DIMS become RESHAPE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sdk.base.errors import ConversionError, UnsupportedOpError
from sdk.converters.ir import Graph, Operator, Tensor

#: IR op types the .edge writer accepts
SUPPORTED_OPS = (
    "ADD", "MUL", "CONCATENATION", "MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "SQUEEZE",
    "EXPAND_DIMS", "SOFTMAX", "LOGISTIC", "HARD_SWISH", "QUANTIZE", "DEQUANTIZE", "MEAN", "PAD",
    "FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE",
)
#: ops whose second input (index 1) holds weights
WEIGHTED_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")


@dataclass
class LoweredOp:
    """One .edge operator before serialisation."""

    op: str
    inputs: list[Tensor | None]
    outputs: list[Tensor]
    options_type: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    source: Operator | None = None


def _activation(op: Operator) -> str:
    act = op.attrs.get("fused_activation_function", "NONE") or "NONE"
    if act not in ("NONE", "RELU", "RELU_N1_TO_1", "RELU6"):
        raise UnsupportedOpError(op.type, op.label, SUPPORTED_OPS, source=".edge writer",
                                 detail=f"fused activation {act} is not supported")
    return str(act)


def _out_size(padding: str, size: int, filt: int, stride: int, dilation: int) -> int:
    effective = (filt - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    if padding == "VALID":
        return (size + stride - effective) // stride
    raise ValueError(padding)


def resolve_padding(op: Operator, padding: str, in_hw: tuple[int, int], filt_hw: tuple[int, int],
                    stride_hw: tuple[int, int], dilation_hw: tuple[int, int] = (1, 1)
                    ) -> dict[str, int]:
    """TFLite's SAME/VALID as explicit (top, left, bottom, right); the smaller half goes first."""
    if padding not in ("SAME", "VALID"):
        raise ConversionError(f"{op.label}: padding {padding!r} is neither SAME nor VALID")
    pads = []
    for size, filt, stride, dilation in zip(in_hw, filt_hw, stride_hw, dilation_hw, strict=True):
        if stride < 1 or dilation < 1 or filt < 1:
            raise ConversionError(f"{op.label}: stride, dilation and filter size must be >= 1")
        out = _out_size(padding, size, filt, stride, dilation)
        effective = (filt - 1) * dilation + 1
        total = max(0, (out - 1) * stride + effective - size)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return {"top": top, "left": left, "bottom": bottom, "right": right}


def _const_ints(op: Operator, index: int, what: str) -> list[int]:
    t = op.inputs[index] if len(op.inputs) > index else None
    if t is None or not t.is_constant:
        raise ConversionError(f"{op.label}: {what} (input {index}) must be a constant tensor")
    return [int(v) for v in np.asarray(t.numpy()).reshape(-1)]


def _unsupported(op: Operator, detail: str = "") -> UnsupportedOpError:
    return UnsupportedOpError(op.type, op.label, SUPPORTED_OPS, source=".edge writer",
                              detail=detail)


def lower_operator(op: Operator) -> LoweredOp:
    """One IR operator as a .edge operator (options resolved, shape-only inputs folded)."""
    t = op.type
    a = op.attrs
    if t not in SUPPORTED_OPS:
        kind = f"CUSTOM:{op.custom_code}" if t == "CUSTOM" else t
        raise UnsupportedOpError(kind, op.label, SUPPORTED_OPS, source=".edge writer")
    if not op.outputs:
        raise ConversionError(f"{op.label}: operator without outputs")
    low = LoweredOp(op=t, inputs=list(op.inputs), outputs=list(op.outputs), name=op.name,
                    source=op)
    if t in ("ADD", "MUL"):
        low.options_type = "ElementwiseOptions"
        low.options = {"activation": _activation(op)}
    elif t == "CONCATENATION":
        low.options_type = "ConcatenationOptions"
        low.options = {"axis": int(a.get("axis", 0)), "activation": _activation(op)}
    elif t in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        x = op.inputs[0]
        if x is None or x.rank != 4:
            raise ConversionError(f"{op.label}: pooling needs a 4-D NHWC input")
        fh, fw = int(a.get("filter_height", 1)), int(a.get("filter_width", 1))
        sh, sw = int(a.get("stride_h", 1)), int(a.get("stride_w", 1))
        low.options_type = "Pool2DOptions"
        low.options = {
            "padding": resolve_padding(op, a.get("padding", "VALID"), (x.shape[1], x.shape[2]),
                                       (fh, fw), (sh, sw)),
            "stride_h": sh, "stride_w": sw, "filter_h": fh, "filter_w": fw,
            "activation": _activation(op),
        }
    elif t in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
        # the output tensor's shape says everything; shape/axis inputs are dropped
        low.op = "RESHAPE"
        low.inputs = [op.inputs[0]]
    elif t == "SOFTMAX":
        low.options_type = "SoftmaxOptions"
        low.options = {"beta": float(a.get("beta", 1.0))}
    elif t == "MEAN":
        low.options_type = "ReducerOptions"
        low.options = {"axes": _const_ints(op, 1, "the axes"),
                       "keep_dims": bool(a.get("keep_dims", False))}
        low.inputs = [op.inputs[0]]
    elif t == "PAD":
        low.options_type = "PadOptions"
        low.options = {"paddings": _const_ints(op, 1, "the paddings")}
        low.inputs = [op.inputs[0]]
    elif t == "FULLY_CONNECTED":
        fmt = a.get("weights_format", "DEFAULT")
        if fmt not in ("DEFAULT", 0):
            raise _unsupported(op, f"weights_format {fmt} (only DEFAULT)")
        low.options_type = "FullyConnectedOptions"
        low.options = {"activation": _activation(op),
                       "keep_num_dims": bool(a.get("keep_num_dims", False))}
        low.inputs = (list(op.inputs) + [None] * 3)[:3]
    elif t in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        x, w = op.inputs[0], op.inputs[1] if len(op.inputs) > 1 else None
        if x is None or w is None or x.rank != 4 or w.rank != 4:
            raise ConversionError(f"{op.label}: {t} needs a 4-D input and a 4-D filter")
        sh, sw = int(a.get("stride_h", 1)), int(a.get("stride_w", 1))
        dh, dw = int(a.get("dilation_h_factor", 1)), int(a.get("dilation_w_factor", 1))
        opts: dict[str, Any] = {
            "padding": resolve_padding(op, a.get("padding", "VALID"), (x.shape[1], x.shape[2]),
                                       (w.shape[1], w.shape[2]), (sh, sw), (dh, dw)),
            "stride_h": sh, "stride_w": sw, "dilation_h": dh, "dilation_w": dw,
            "activation": _activation(op),
        }
        if t == "DEPTHWISE_CONV_2D":
            low.options_type = "DepthwiseConv2DOptions"
            opts["depth_multiplier"] = int(a.get("depth_multiplier", 1) or 1)
        else:
            low.options_type = "Conv2DOptions"
        low.options = opts
        low.inputs = (list(op.inputs) + [None] * 3)[:3]
    elif t == "TRANSPOSE":
        low.options_type = "TransposeOptions"
        low.options = {"perm": _const_ints(op, 1, "the permutation")}
        low.inputs = [op.inputs[0]]
    elif t in ("LOGISTIC", "HARD_SWISH", "QUANTIZE", "DEQUANTIZE"):
        low.inputs = [op.inputs[0]]
    return low


def lower_graph(graph: Graph) -> list[LoweredOp]:
    """The graph's operators as .edge operators, in execution order.

    Operators nothing needs any more are left out: once RESHAPE takes its shape from its output
    tensor, the SHAPE -> STRIDED_SLICE -> PACK chain that TensorFlow emits for Flatten computes
    a value nobody reads, and is not written (nor has to be supported).
    """
    graph.validate()
    needed = {id(t) for t in graph.outputs}
    lowered: list[LoweredOp] = []
    for op in reversed(graph.operators):
        if not any(id(t) in needed for t in op.outputs):
            continue
        low = lower_operator(op)
        needed.update(id(t) for t in low.inputs if t is not None)
        lowered.append(low)
    lowered.reverse()
    return lowered
