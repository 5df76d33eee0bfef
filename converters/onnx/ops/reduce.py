"""Reductions, Softmax/LogSoftmax and ArgMax/ArgMin: axis attributes are mapped into the order
the input is held in, so these ops never force a transpose of their own (Softmax needs its axis
last; when it is not, the input is moved so that it is, and the output stays in that order)."""

from __future__ import annotations

import numpy as np

from sdk.converters.ir import DType
from sdk.converters.onnx import layout
from sdk.converters.onnx.graph import Node
from sdk.converters.onnx.lowering import Lowering, ir_dtype
from sdk.converters.onnx.registry import handles


def reduce(ctx: Lowering, op_type: str, x: str, axes: list[int], keepdims: bool,
           output: str) -> None:
    if op_type in ("REDUCE_MAX", "REDUCE_MIN") and any(ctx.shape(x)[a] == 0 for a in axes):
        raise ctx.unsupported("max/min over an empty axis (LiteRT's kernels disagree on the "
                              "result)")
    perm = ctx.perm(x)
    t = ctx.tensor(x)
    inv = layout.inverse(perm)
    ir_axes = sorted(inv[a] for a in axes)
    out_perm = perm if keepdims else layout.drop_axes(perm, axes)
    out = ctx.new(output, layout.permute(ctx.shape(output), out_perm),
                  ir_dtype(ctx.info(output).dtype, ctx.label))
    ctx.emit(op_type, [t, ctx.int32(f"{output}/axes", ir_axes)], [out], keep_dims=keepdims)
    ctx.define(output, out, out_perm)


def _axes(ctx: Lowering, node: Node, rank: int, axes_input_from: int) -> list[int] | None:
    """The reduced axes (None: all, or none when noop_with_empty_axes)."""
    if ctx.og.opset >= axes_input_from:
        raw = ctx.require_const(node.input(1), "axes") if node.input(1) else None
    else:
        raw = node.attr("axes")
    if raw is None or len(raw) == 0:
        if int(node.attr("noop_with_empty_axes", 0)):
            return []
        return list(range(rank))
    return sorted({int(a) % rank for a in np.asarray(raw).reshape(-1)})


_REDUCE = {"ReduceMean": ("MEAN", 18), "ReduceSum": ("SUM", 13), "ReduceMax": ("REDUCE_MAX", 18),
           "ReduceMin": ("REDUCE_MIN", 18), "ReduceProd": ("REDUCE_PROD", 18)}


@handles(*_REDUCE, "ReduceSumSquare")
def _reduce(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = ctx.rank(x)
    if node.op_type == "ReduceSumSquare":
        op_type, since = "SUM", 18
    else:
        op_type, since = _REDUCE[node.op_type]
    axes = _axes(ctx, node, rank, since)
    keepdims = bool(int(node.attr("keepdims", 1)))
    if node.op_type == "ReduceSumSquare":
        from sdk.converters.onnx.ops.elementwise import elementwise

        sq = ctx.temp_value(f"{out}/square", ctx.shape(x), ctx.info(x).dtype)
        elementwise(ctx, "MUL", [x, x], sq)
        x = sq
    if not axes:
        from sdk.converters.onnx.ops.elementwise import alias

        alias(ctx, x, out)
        return
    if ctx.info(x).dtype == np.bool_:  # max / min of booleans: any / all
        op_type = {"REDUCE_MAX": "REDUCE_ANY", "REDUCE_MIN": "REDUCE_ALL"}.get(op_type, op_type)
    reduce(ctx, op_type, x, axes, keepdims, out)


@handles("Softmax", "LogSoftmax")
def _softmax(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = ctx.rank(x)
    op_type = "SOFTMAX" if node.op_type == "Softmax" else "LOG_SOFTMAX"
    attrs = {"beta": 1.0} if op_type == "SOFTMAX" else {}
    default = -1 if ctx.og.opset >= 13 else 1
    axis = int(node.attr("axis", default)) % rank
    if ctx.og.opset < 13 and axis != rank - 1:
        # before opset 13: softmax over the flattened trailing dims [axis:]
        shape = ctx.shape(x)
        flat = (int(np.prod(shape[:axis])), int(np.prod(shape[axis:])))
        t = ctx.reshape(ctx.tensor(x, layout.identity(rank)), flat, base=f"{out}/flat")
        y = ctx.new(f"{out}/softmax", flat)
        ctx.emit(op_type, [t], [y], **attrs)
        ctx.define(out, ctx.reshape(y, shape, base=out), layout.identity(rank))
        return
    perm = ctx.perm(x)
    if layout.inverse(perm)[axis] != rank - 1:
        perm = (*(p for p in perm if p != axis), axis)
    t = ctx.tensor(x, perm)
    y = ctx.new(out, tuple(t.shape))
    ctx.emit(op_type, [t], [y], **attrs)
    ctx.define(out, y, perm)


@handles("ArgMax", "ArgMin")
def _argmax(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = ctx.rank(x)
    axis = int(node.attr("axis", 0)) % rank
    keepdims = bool(int(node.attr("keepdims", 1)))
    op_type = "ARG_MAX" if node.op_type == "ArgMax" else "ARG_MIN"
    if not int(node.attr("select_last_index", 0)):
        arg_reduce(ctx, op_type, x, axis, keepdims, out)
        return
    # the last extreme: search the reversed axis, then count from the end
    from sdk.converters.onnx.ops.elementwise import elementwise
    from sdk.converters.onnx.ops.tensor import strided_slice

    dim = ctx.shape(x)[axis]
    reversed_x = ctx.temp_value(f"{out}/reversed", ctx.shape(x), ctx.info(x).dtype)
    strided_slice(ctx, x, [-1], [-dim - 1], [axis], [-1], reversed_x)
    index = ctx.temp_value(f"{out}/reversed_index", ctx.shape(out), np.int64)
    arg_reduce(ctx, op_type, reversed_x, axis, keepdims, index)
    elementwise(ctx, "SUB", [ctx.const_value(f"{out}/last", np.array(dim - 1, np.int64)), index],
                out)


def arg_reduce(ctx: Lowering, op_type: str, x: str, axis: int, keepdims: bool,
               out: str) -> None:
    perm = ctx.perm(x)
    t = ctx.tensor(x)
    reduced_perm = layout.drop_axes(perm, [axis])
    reduced_shape = tuple(d for a, d in enumerate(ctx.shape(x)) if a != axis)
    y = ctx.new(f"{out}/reduced" if keepdims else out,
                layout.permute(reduced_shape, reduced_perm), DType.INT32)
    ctx.emit(op_type, [t, ctx.int32(f"{out}/axis", [layout.inverse(perm)[axis]])], [y],
             output_type="INT32")
    if keepdims:
        y = ctx.reshape(y, layout.permute(ctx.shape(out), perm), base=out)
        ctx.define(out, y, perm)
    else:
        ctx.define(out, y, reduced_perm)
