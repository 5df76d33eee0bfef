"""Conv and ConvTranspose (1-D and 2-D; grouped and depthwise) on channels-last tensors.

Weights are constants, re-laid-out in numpy: CONV_2D takes [O, kh, kw, I], DEPTHWISE_CONV_2D
[1, kh, kw, O] with depth_multiplier = O / I, TRANSPOSE_CONV [O, kh, kw, I]. Groups other than
1 and "one per channel" become SPLIT -> one CONV_2D per group -> CONCATENATION, which every
TFLite kernel (and quantiser) handles. 1-D ops run as 2-D ops of height 1. Every convolution gets
a bias (zeros when ONNX has none), as TensorFlow's converter writes them.
"""

from __future__ import annotations

import numpy as np

from sdk.converters.ir import Tensor
from sdk.converters.onnx import layout
from sdk.converters.onnx.graph import Node
from sdk.converters.onnx.lowering import Lowering
from sdk.converters.onnx.ops.spatial import Window, pad_input, window
from sdk.converters.onnx.registry import handles

#: grouped convolutions (other than depthwise) become one CONV_2D per group, up to this many
MAX_SPLIT_GROUPS = 1024


def _split_channels(ctx: Lowering, x: Tensor, groups: int) -> list[Tensor]:
    n, h, w, c = x.shape
    parts = [ctx.new(f"{x.name}/group{g}", (n, h, w, c // groups), x.dtype) for g in range(groups)]
    ctx.emit("SPLIT", [ctx.int32(f"{x.name}/split_axis", 3), x], parts, num_splits=groups)
    return parts


def _concat_channels(ctx: Lowering, parts: list[Tensor], out: Tensor) -> None:
    ctx.emit("CONCATENATION", parts, [out], axis=3, fused_activation_function="NONE")


def conv2d(ctx: Lowering, x: Tensor, weights: np.ndarray, bias: np.ndarray, group: int,
           win: Window, padding: str, out_shape: tuple[int, ...], base: str) -> Tensor:
    """Emit a 2-D convolution of NHWC `x` with ONNX-layout weights [O, I/group, kh, kw]."""
    c_in = x.shape[3]
    c_out = weights.shape[0]
    common = dict(padding=padding, stride_h=win.strides[0], stride_w=win.strides[1],
                  dilation_h_factor=win.dilations[0], dilation_w_factor=win.dilations[1],
                  fused_activation_function="NONE")
    out = ctx.new(base, out_shape)
    if group == 1:
        w = ctx.constant(f"{base}/weights", weights.transpose(0, 2, 3, 1))
        ctx.emit("CONV_2D", [x, w, ctx.constant(f"{base}/bias", bias)], [out], **common)
    elif group == c_in and weights.shape[1] == 1:
        w = ctx.constant(f"{base}/weights", weights.transpose(1, 2, 3, 0))
        ctx.emit("DEPTHWISE_CONV_2D", [x, w, ctx.constant(f"{base}/bias", bias)], [out],
                 depth_multiplier=c_out // c_in, **common)
    else:
        if group > MAX_SPLIT_GROUPS:
            raise ctx.unsupported(f"a grouped convolution of {group} groups (at most "
                                  f"{MAX_SPLIT_GROUPS} are split into one convolution each)")
        per = c_out // group
        parts = []
        for g, xg in enumerate(_split_channels(ctx, x, group)):
            part = ctx.new(f"{base}/group{g}", (*out_shape[:3], per))
            wg = weights[g * per:(g + 1) * per].transpose(0, 2, 3, 1)
            ctx.emit("CONV_2D", [xg, ctx.constant(f"{base}/weights{g}", wg),
                                 ctx.constant(f"{base}/bias{g}", bias[g * per:(g + 1) * per])],
                     [part], **common)
            parts.append(part)
        _concat_channels(ctx, parts, out)
    return out


def _weights_and_bias(ctx: Lowering, node: Node, out_channels_axis: int,
                      group: int = 1) -> tuple[np.ndarray, np.ndarray]:
    w = ctx.require_const(node.input(1), "the weights").astype(np.float32)
    c_out = w.shape[out_channels_axis] * (group if out_channels_axis == 1 else 1)
    b = (ctx.require_const(node.input(2), "the bias").astype(np.float32).reshape(-1)
         if node.input(2) else np.zeros(c_out, np.float32))
    return w, b


@handles("Conv")
def _conv(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    xs, os = ctx.shape(x), ctx.shape(out)
    if len(xs) not in (3, 4):
        raise ctx.unsupported(f"{len(xs) - 2}-D convolution (1-D and 2-D are supported)")
    w, b = _weights_and_bias(ctx, node, 0)
    group = int(node.attr("group", 1))
    win = window(ctx, node, xs[2:], tuple(w.shape[2:]))
    cl = layout.channels_last(len(xs))
    xt = ctx.tensor(x, cl)
    if len(xs) == 3:  # NCW -> N,1,W,C
        xt = ctx.reshape(xt, (xs[0], 1, xs[2], xs[1]))
        w = w[:, :, None, :]
        win = win.lift_1d()
        in_hw, out_hw = (1, xs[2]), (1, os[2])
    else:
        in_hw, out_hw = (xs[2], xs[3]), (os[2], os[3])
    padding, xt = pad_input(ctx, xt, in_hw, win, out_hw, "zero")
    y = conv2d(ctx, xt, w, b, group, win, padding, (os[0], *out_hw, os[1]), out)
    if len(xs) == 3:
        y = ctx.reshape(y, layout.permute(os, cl), base=f"{out}/nwc")
    ctx.define(out, y, cl)


@handles("ConvTranspose")
def _conv_transpose(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    xs, os = ctx.shape(x), ctx.shape(out)
    if len(xs) not in (3, 4):
        raise ctx.unsupported(f"{len(xs) - 2}-D transposed convolution")
    group = int(node.attr("group", 1))
    w, b = _weights_and_bias(ctx, node, 1, group)  # ONNX weights: [I, O/group, kh, kw]
    n_sp = len(xs) - 2
    dilations = [int(d) for d in (node.attr("dilations") or [1] * n_sp)]
    if any(d != 1 for d in dilations):
        raise ctx.unsupported("dilated transposed convolution (TFLite has none)")
    strides = [int(s) for s in (node.attr("strides") or [1] * n_sp)]
    out_pad = [int(p) for p in (node.attr("output_padding") or [0] * n_sp)]
    kernel = list(w.shape[2:])
    auto_pad = node.attr("auto_pad", "NOTSET")
    begins = []
    for i in range(n_sp):
        if node.attr("output_shape") is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            total = strides[i] * (xs[2 + i] - 1) + out_pad[i] + kernel[i] - os[2 + i]
            begins.append(total // 2 if auto_pad == "SAME_UPPER" else total - total // 2)
        elif auto_pad == "VALID":
            begins.append(0)
        else:
            pads = [int(p) for p in (node.attr("pads") or [0] * (2 * n_sp))]
            begins.append(pads[i])
    if any(p < 0 for p in begins):
        raise ctx.unsupported("transposed convolution with negative padding")
    cl = layout.channels_last(len(xs))
    xt = ctx.tensor(x, cl)
    if n_sp == 1:
        xt = ctx.reshape(xt, (xs[0], 1, xs[2], xs[1]))
        w = w[:, :, None, :]
        kernel, strides, begins = [1, *kernel], [1, *strides], [0, *begins]
        in_hw, out_hw = [1, xs[2]], [1, os[2]]
    else:
        in_hw, out_hw = list(xs[2:]), list(os[2:])
    c_out = os[1]
    same = all(out_hw[i] == in_hw[i] * strides[i]
               and begins[i] == max(kernel[i] - strides[i], 0) // 2 for i in range(2))
    full = [(in_hw[i] - 1) * strides[i] + kernel[i] for i in range(2)]
    conv_hw = out_hw if same else full
    overhang = [max(begins[i] + out_hw[i] - full[i], 0) for i in range(2)]
    bias_in_conv = not any(overhang)
    y = _transpose_conv(ctx, xt, w, b if bias_in_conv else np.zeros_like(b), group,
                        strides, "SAME" if same else "VALID", (xs[0], *conv_hw, c_out), out)
    if not same:
        y = _crop_and_extend(ctx, y, begins, out_hw, overhang, f"{out}/crop")
        if not bias_in_conv:
            biased = ctx.new(f"{out}/biased", y.shape)
            ctx.emit("ADD", [y, ctx.constant(f"{out}/bias", b)], [biased],
                     fused_activation_function="NONE")
            y = biased
    if n_sp == 1:
        y = ctx.reshape(y, layout.permute(os, cl), base=f"{out}/nwc")
    ctx.define(out, y, cl)


def _transpose_conv(ctx: Lowering, x: Tensor, w: np.ndarray, b: np.ndarray, group: int,
                    strides: list[int], padding: str, out_shape: tuple[int, ...],
                    base: str) -> Tensor:
    attrs = dict(padding=padding, stride_h=strides[0], stride_w=strides[1],
                 fused_activation_function="NONE")
    out = ctx.new(base, out_shape)
    if group > MAX_SPLIT_GROUPS:
        raise ctx.unsupported(f"a grouped transposed convolution of {group} groups (at most "
                              f"{MAX_SPLIT_GROUPS} are split into one each)")
    if group == 1:
        ctx.emit("TRANSPOSE_CONV", [ctx.int32(f"{base}/output_shape", out_shape),
                                    ctx.constant(f"{base}/weights", w.transpose(1, 2, 3, 0)),
                                    x, ctx.constant(f"{base}/bias", b)], [out], **attrs)
        return out
    per_in = w.shape[0] // group
    per_out = w.shape[1]
    parts = []
    for g, xg in enumerate(_split_channels(ctx, x, group)):
        shape = (*out_shape[:3], per_out)
        part = ctx.new(f"{base}/group{g}", shape)
        wg = w[g * per_in:(g + 1) * per_in].transpose(1, 2, 3, 0)
        ctx.emit("TRANSPOSE_CONV", [ctx.int32(f"{base}/output_shape{g}", shape),
                                    ctx.constant(f"{base}/weights{g}", wg), xg,
                                    ctx.constant(f"{base}/bias{g}",
                                                 b[g * per_out:(g + 1) * per_out])],
                 [part], **attrs)
        parts.append(part)
    _concat_channels(ctx, parts, out)
    return out


def _crop_and_extend(ctx: Lowering, y: Tensor, begins: list[int], out_hw: list[int],
                     overhang: list[int], base: str) -> Tensor:
    """Rows/cols [begin, begin + out) of NHWC `y`; positions past its end are zeros."""
    n, h, w, c = y.shape
    stop = [min(begins[i] + out_hw[i], (h, w)[i]) for i in range(2)]
    if begins != [0, 0] or stop != [h, w]:
        cropped = ctx.new(base, (n, stop[0] - begins[0], stop[1] - begins[1], c))
        ctx.emit("STRIDED_SLICE", [y, ctx.int32(f"{base}/begin", [0, begins[0], begins[1], 0]),
                                   ctx.int32(f"{base}/end", [n, stop[0], stop[1], c]),
                                   ctx.int32(f"{base}/strides", [1, 1, 1, 1])], [cropped],
                 begin_mask=0, end_mask=0, ellipsis_mask=0, new_axis_mask=0,
                 shrink_axis_mask=0, offset=False)
        y = cropped
    if any(overhang):
        padded = ctx.new(f"{base}/extended", (n, out_hw[0], out_hw[1], c))
        ctx.emit("PAD", [y, ctx.int32(f"{base}/paddings",
                                      [[0, 0], [0, overhang[0]], [0, overhang[1]], [0, 0]])],
                 [padded])
        y = padded
    return y
