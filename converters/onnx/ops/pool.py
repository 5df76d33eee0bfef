"""MaxPool, AveragePool (1-D and 2-D) and the global pools.

Global pools are reductions over the spatial axes, so they run in whatever order their input is
held (MEAN / REDUCE_MAX with keep_dims), as TensorFlow's converter writes GlobalAveragePooling.
"""

from __future__ import annotations

import numpy as np

from sdk.converters.onnx import layout
from sdk.converters.onnx.graph import Node
from sdk.converters.onnx.lowering import Lowering
from sdk.converters.onnx.ops.reduce import reduce
from sdk.converters.onnx.ops.spatial import (
    Window,
    pad_input,
    same_padding_matches,
    valid_padding_matches,
    window,
)
from sdk.converters.onnx.registry import handles


def _window_counts(win: Window, in_hw: tuple[int, int], out_hw: tuple[int, int],
                   include_pad: bool) -> np.ndarray:
    """[oh, ow]: how many elements each window averages over in ONNX: the input ones, plus
    the explicit padding when include_pad (never the ceil_mode overhang past it)."""
    per_axis = []
    for i in range(2):
        lo = -win.pads_begin[i] if include_pad else 0
        hi = in_hw[i] + win.pads_end[i] if include_pad else in_hw[i]
        start = np.arange(out_hw[i]) * win.strides[i] - win.pads_begin[i]
        per_axis.append(np.minimum(start + win.kernel[i], hi) - np.maximum(start, lo))
    return np.outer(per_axis[0], per_axis[1]).astype(np.float64)


@handles("MaxPool", "AveragePool")
def _pool(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    if node.output_used(1):
        raise ctx.unsupported("the Indices output of MaxPool")
    xs, os = ctx.shape(x), ctx.shape(out)
    if len(xs) not in (3, 4):
        raise ctx.unsupported(f"{len(xs) - 2}-D pooling (1-D and 2-D are supported)")
    kernel = tuple(int(k) for k in node.attr("kernel_shape"))
    win = window(ctx, node, xs[2:], kernel)
    if any(d != 1 for d in win.dilations):
        raise ctx.unsupported("dilated pooling (TFLite pools have no dilation)")
    include_pad = bool(int(node.attr("count_include_pad", 0)))
    if node.op_type == "MaxPool":
        kind, op_type = "max", "MAX_POOL_2D"
    else:
        kind, op_type = "avg", "AVERAGE_POOL_2D"
    cl = layout.channels_last(len(xs))
    xt = ctx.tensor(x, cl)
    if len(xs) == 3:
        xt = ctx.reshape(xt, (xs[0], 1, xs[2], xs[1]))
        win = win.lift_1d()
        in_hw, out_hw = (1, xs[2]), (1, os[2])
    else:
        in_hw, out_hw = (xs[2], xs[3]), (os[2], os[3])
    correction = None
    if kind == "avg" and not valid_padding_matches(win, in_hw, out_hw) and not (
            not include_pad and same_padding_matches(win, in_hw, out_hw)):
        # TFLite averages over the in-bounds elements only (SAME) or everything (VALID): pad
        # explicitly, average the whole window, and rescale where ONNX's count differs
        ctx.check_alloc("the average pool's window counts", out_hw[0] * out_hw[1] * 8 * 4)
        counts = _window_counts(win, in_hw, out_hw, include_pad)
        full = float(win.kernel[0] * win.kernel[1])
        kind = "explicit"
        if not np.all(counts == full):
            correction = (full / counts).astype(np.float32)[:, :, None]
    padding, xt = pad_input(ctx, xt, in_hw, win, out_hw, kind)
    y = ctx.new(out if correction is None else f"{out}/window_sum", (os[0], *out_hw, os[1]))
    ctx.emit(op_type, [xt], [y], padding=padding, stride_h=win.strides[0],
             stride_w=win.strides[1], filter_height=win.kernel[0], filter_width=win.kernel[1],
             fused_activation_function="NONE")
    if correction is not None:
        scaled = ctx.new(out, tuple(y.shape))
        ctx.emit("MUL", [y, ctx.constant(f"{out}/count_correction", correction)], [scaled],
                 fused_activation_function="NONE")
        y = scaled
    if len(xs) == 3:
        y = ctx.reshape(y, layout.permute(os, cl), base=f"{out}/nwc")
    ctx.define(out, y, cl)


@handles("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(ctx: Lowering, node: Node) -> None:
    x = node.inputs[0]
    op_type = "MEAN" if node.op_type == "GlobalAveragePool" else "REDUCE_MAX"
    reduce(ctx, op_type, x, list(range(2, ctx.rank(x))), True, node.outputs[0])
