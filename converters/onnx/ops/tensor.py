"""Data movement: Reshape/Flatten/Squeeze/Unsqueeze, Transpose, Concat, Split, Slice, Gather,
Pad, Expand, Tile, DepthToSpace/SpaceToDepth.

Transpose costs nothing: it only changes the order the value is known to be held in. Reshapes
that split or merge dimensions which sit together in the held order (or only add or drop unit
dimensions) stay plain RESHAPEs; only a reshape that depends on ONNX's element order (e.g. a
Flatten of an NCHW feature map) reads the value in ONNX order, which costs a TRANSPOSE.
"""

from __future__ import annotations

import numpy as np

from sdk.converters.ir import Tensor
from sdk.converters.onnx import layout
from sdk.converters.onnx.graph import Node
from sdk.converters.onnx.lowering import Lowering, ir_dtype
from sdk.converters.onnx.ops.elementwise import broadcast_input, choose_perm
from sdk.converters.onnx.registry import handles


def reshape_value(ctx: Lowering, x: str, output: str) -> None:
    in_shape, out_shape = ctx.shape(x), ctx.shape(output)
    perm = layout.reshape_perm(in_shape, ctx.perm(x), out_shape)
    if perm is None:
        t = ctx.tensor(x, layout.identity(len(in_shape)))
        perm = layout.identity(len(out_shape))
    else:
        t = ctx.tensor(x)
    ctx.define(output, ctx.reshape(t, layout.permute(out_shape, perm), base=output), perm)


@handles("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def _reshape(ctx: Lowering, node: Node) -> None:
    reshape_value(ctx, node.inputs[0], node.outputs[0])


@handles("Transpose")
def _transpose(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = ctx.rank(x)
    q = tuple(int(p) for p in (node.attr("perm") or reversed(range(rank))))
    inv = layout.inverse(q)
    held = ctx.perm(x)
    ctx.define(out, ctx.tensor(x), tuple(inv[p] for p in held))


@handles("Concat")
def _concat(ctx: Lowering, node: Node) -> None:
    out = node.outputs[0]
    rank = ctx.rank(out)
    axis = int(node.attr("axis")) % rank
    names = [n for n in node.inputs if n and ctx.shape(n)[axis] != 0]
    if len(names) == 1 and not ctx.is_const(names[0]):
        t, perm = ctx.home[names[0]]
        ctx.define(out, t, perm)
        return
    perm = choose_perm(ctx, names, rank)
    ins = [ctx.tensor(n, perm) for n in names]
    y = ctx.new(out, layout.permute(ctx.shape(out), perm),
                ir_dtype(ctx.info(out).dtype, ctx.label))
    ctx.emit("CONCATENATION", ins, [y], axis=layout.inverse(perm)[axis],
             fused_activation_function="NONE")
    ctx.define(out, y, perm)


@handles("Split")
def _split(ctx: Lowering, node: Node) -> None:
    x = node.inputs[0]
    rank = ctx.rank(x)
    axis = int(node.attr("axis", 0)) % rank
    perm = ctx.perm(x)
    t = ctx.tensor(x)
    ir_ax = layout.inverse(perm)[axis]
    sizes = [ctx.shape(o)[axis] if o else None for o in node.outputs]
    if any(s is None for s in sizes):  # an unnamed output: its size is what is left over
        known = sum(s for s in sizes if s is not None)
        sizes = [s if s is not None else (ctx.shape(x)[axis] - known) for s in sizes]
    outs: list[Tensor] = []
    for k, (name, size) in enumerate(zip(node.outputs, sizes, strict=True)):
        shape = list(t.shape)
        shape[ir_ax] = int(size)  # type: ignore[arg-type]
        outs.append(ctx.new(name or f"{node.name}/unused{k}", tuple(shape), t.dtype))
    axis_t = ctx.int32(f"{node.name}/axis", ir_ax)
    if len(set(sizes)) == 1:
        ctx.emit("SPLIT", [axis_t, t], outs, num_splits=len(outs))
    else:
        ctx.emit("SPLIT_V", [t, ctx.int32(f"{node.name}/sizes", sizes), axis_t], outs,
                 num_splits=len(outs))
    for name, o in zip(node.outputs, outs, strict=True):
        if name:
            ctx.define(name, o, perm)


def _ints(values: np.ndarray | list[int] | None) -> list[int]:
    return [] if values is None else [int(v) for v in np.asarray(values).reshape(-1)]


def strided_slice(ctx: Lowering, x: str, starts: list[int], ends: list[int], axes: list[int],
                  steps: list[int], output: str) -> None:
    shape = ctx.shape(x)
    rank = len(shape)
    perm = ctx.perm(x)
    t = ctx.tensor(x)
    inv = layout.inverse(perm)
    begin = [0] * rank
    end = list(t.shape)
    stride = [1] * rank
    end_mask = 0
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        a %= rank
        dim = shape[a]
        if st == 0:
            raise ctx.unsupported("a slice step of 0")
        s = s + dim if s < 0 else s
        e = e + dim if e < 0 else e
        i = inv[a]
        if st > 0:
            s, e = min(max(s, 0), dim), min(max(e, 0), dim)
        else:
            s, e = min(max(s, 0), dim - 1), min(max(e, -1), dim - 1)
            if e == -1:
                end_mask |= 1 << i
                e = 0
        begin[i], end[i], stride[i] = s, e, st
    y = ctx.new(output, layout.permute(ctx.shape(output), perm), t.dtype)
    ctx.emit("STRIDED_SLICE", [t, ctx.int32(f"{output}/begin", begin),
                               ctx.int32(f"{output}/end", end),
                               ctx.int32(f"{output}/strides", stride)], [y],
             begin_mask=0, end_mask=end_mask, ellipsis_mask=0, new_axis_mask=0,
             shrink_axis_mask=0, offset=False)
    ctx.define(output, y, perm)


@handles("Slice")
def _slice(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    if ctx.og.opset >= 10:
        starts = _ints(ctx.require_const(node.input(1), "starts"))
        ends = _ints(ctx.require_const(node.input(2), "ends"))
        axes = _ints(ctx.require_const(node.input(3), "axes")) if node.input(3) else None
        steps = _ints(ctx.require_const(node.input(4), "steps")) if node.input(4) else None
    else:
        starts, ends = _ints(node.attr("starts")), _ints(node.attr("ends"))
        axes = _ints(node.attr("axes")) if node.attr("axes") is not None else None
        steps = None
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    strided_slice(ctx, x, starts, ends, axes, steps, out)


@handles("Gather")
def _gather(ctx: Lowering, node: Node) -> None:
    data, indices = node.inputs[:2]
    out = node.outputs[0]
    rank = ctx.rank(data)
    axis = int(node.attr("axis", 0)) % rank
    idx = ctx.const(indices)
    out_dtype = ir_dtype(ctx.info(out).dtype, ctx.label)
    if idx is None or ctx.is_const(data):
        # embedding lookup or run-time indices: ONNX order throughout
        d = ctx.tensor(data, layout.identity(rank))
        i = ctx.tensor(indices, layout.identity(ctx.rank(indices)))
        if idx is None:  # ONNX allows negative indices, TFLite's GATHER does not
            wrapped = ctx.new(f"{indices}/wrapped", tuple(i.shape), i.dtype)
            ctx.emit("FLOOR_MOD", [i, ctx.constant(f"{indices}/dim", np.array(
                ctx.shape(data)[axis], i.dtype.numpy))], [wrapped])
            i = wrapped
        y = ctx.new(out, ctx.shape(out), out_dtype)
        ctx.emit("GATHER", [d, i], [y], axis=axis, batch_dims=0)
        ctx.define(out, y, layout.identity(ctx.rank(out)))
        return
    idx = np.where(idx < 0, idx + ctx.shape(data)[axis], idx).astype(np.int32)
    if idx.ndim > 1:
        perm = layout.identity(rank)
        out_perm = layout.identity(ctx.rank(out))
    else:
        perm = ctx.perm(data)
        out_perm = perm if idx.ndim == 1 else layout.drop_axes(perm, [axis])
    t = ctx.tensor(data, perm)
    y = ctx.new(out, layout.permute(ctx.shape(out), out_perm), out_dtype)
    ctx.emit("GATHER", [t, ctx.int32(f"{out}/indices", idx)], [y],
             axis=layout.inverse(perm)[axis], batch_dims=0)
    ctx.define(out, y, out_perm)


@handles("Pad")
def _pad(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = ctx.rank(x)
    mode = node.attr("mode", "constant")
    if ctx.og.opset >= 11:
        pads = _ints(ctx.require_const(node.input(1), "pads"))
        value = ctx.require_const(node.input(2), "the pad value") if node.input(2) else None
        axes = _ints(ctx.require_const(node.input(3), "axes")) if node.input(3) else None
    else:
        pads, value, axes = _ints(node.attr("pads")), node.attr("value", 0.0), None
    axes = [a % rank for a in axes] if axes is not None else list(range(rank))
    begin, end = [0] * rank, [0] * rank
    for k, a in enumerate(axes):
        begin[a], end[a] = pads[k], pads[k + len(axes)]
    if any(p < 0 for p in begin + end):
        raise ctx.unsupported("negative pads (cropping)")
    perm = ctx.perm(x)
    t = ctx.tensor(x)
    paddings = ctx.int32(f"{out}/paddings", [[begin[p], end[p]] for p in perm])
    y = ctx.new(out, layout.permute(ctx.shape(out), perm), t.dtype)
    if mode == "constant":
        fill = 0.0 if value is None else float(np.asarray(value).reshape(-1)[0]) \
            if np.asarray(value).size else 0.0
        if fill == 0.0:
            ctx.emit("PAD", [t, paddings], [y])
        else:
            ctx.emit("PADV2", [t, paddings, ctx.constant(f"{out}/value", np.asarray(
                fill, dtype=t.dtype.numpy))], [y])
    elif mode == "reflect":
        ctx.emit("MIRROR_PAD", [t, paddings], [y], mode="REFLECT")
    else:
        raise ctx.unsupported(f"Pad mode {mode!r} (constant and reflect are supported)")
    ctx.define(out, y, perm)


@handles("Expand")
def _expand(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = ctx.rank(out)
    if ctx.shape(x) == ctx.shape(out):
        t, perm = ctx.home[x]
        ctx.define(out, t, perm)
        return
    perm = choose_perm(ctx, [x], rank)
    t = broadcast_input(ctx, x, perm)
    target = layout.permute(ctx.shape(out), perm)
    y = ctx.new(out, target, t.dtype)
    ctx.emit("BROADCAST_TO", [t, ctx.int32(f"{out}/shape", target)], [y])
    ctx.define(out, y, perm)


@handles("Tile")
def _tile(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    repeats = _ints(ctx.require_const(node.input(1), "repeats"))
    perm = ctx.perm(x)
    t = ctx.tensor(x)
    y = ctx.new(out, layout.permute(ctx.shape(out), perm), t.dtype)
    ctx.emit("TILE", [t, ctx.int32(f"{out}/multiples", [repeats[p] for p in perm])], [y])
    ctx.define(out, y, perm)


@handles("DepthToSpace", "SpaceToDepth")
def _depth_space(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    if ctx.rank(x) != 4:
        raise ctx.unsupported("only 4-D inputs")
    bs = int(node.attr("blocksize"))
    cl = layout.channels_last(4)
    t = ctx.tensor(x, cl)
    if node.op_type == "DepthToSpace" and node.attr("mode", "DCR") == "CRD":
        # CRD reads channel c*bs*bs + i*bs + j where DCR (TFLite) reads (i*bs + j)*C + c:
        # reorder the channels first
        c = ctx.shape(out)[1]
        ctx.check_alloc("the CRD channel order", c * bs * bs * 8)
        order = np.array([cc * bs * bs + k for k in range(bs * bs) for cc in range(c)], np.int32)
        reordered = ctx.new(f"{out}/dcr", tuple(t.shape), t.dtype)
        ctx.emit("GATHER", [t, ctx.int32(f"{out}/dcr_order", order)], [reordered], axis=3,
                 batch_dims=0)
        t = reordered
    y = ctx.new(out, layout.permute(ctx.shape(out), cl), t.dtype)
    ctx.emit("DEPTH_TO_SPACE" if node.op_type == "DepthToSpace" else "SPACE_TO_DEPTH", [t],
             [y], block_size=bs)
    ctx.define(out, y, cl)
