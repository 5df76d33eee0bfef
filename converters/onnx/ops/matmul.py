"""Gemm and MatMul: FULLY_CONNECTED when the weights are constant (weights [out, in], bias
folded in, keep_num_dims for inputs of rank > 2), BATCH_MATMUL otherwise."""

from __future__ import annotations

import numpy as np

from sdk.converters.ir import Tensor
from sdk.converters.onnx import layout
from sdk.converters.onnx.graph import Node
from sdk.converters.onnx.lowering import Lowering
from sdk.converters.onnx.ops.elementwise import elementwise
from sdk.converters.onnx.registry import handles


def fully_connected(ctx: Lowering, x: Tensor, weights: np.ndarray, bias: np.ndarray | None,
                    out_shape: tuple[int, ...], base: str) -> Tensor:
    """FULLY_CONNECTED of `x` (ONNX order) with weights [out, in]."""
    w = weights.astype(np.float32)
    b = np.zeros(w.shape[0], np.float32) if bias is None else bias.astype(np.float32)
    out = ctx.new(base, out_shape)
    ctx.emit("FULLY_CONNECTED", [x, ctx.constant(f"{base}/weights", w),
                                 ctx.constant(f"{base}/bias", b)], [out],
             fused_activation_function="NONE", weights_format="DEFAULT",
             keep_num_dims=len(out_shape) > 2, asymmetric_quantize_inputs=False)
    return out


def _swapped_last(perm: tuple[int, ...]) -> bool:
    r = len(perm)
    return r >= 2 and perm == (*range(r - 2), r - 1, r - 2)


def _operand(ctx: Lowering, name: str, adj: bool) -> tuple[Tensor, bool]:
    if not ctx.is_const(name) and _swapped_last(ctx.perm(name)):
        return ctx.tensor(name), not adj
    return ctx.tensor(name, layout.identity(ctx.rank(name))), adj


def batch_matmul(ctx: Lowering, a: str, b: str, output: str, adj_a: bool = False,
                 adj_b: bool = False) -> None:
    """BATCH_MATMUL of two values; an operand held with its last two axes swapped is read as
    is, with the adjoint flag, instead of being transposed back."""
    ta, adj_a = _operand(ctx, a, adj_a)
    tb, adj_b = _operand(ctx, b, adj_b)
    out = ctx.new(output, ctx.shape(output))
    ctx.emit("BATCH_MATMUL", [ta, tb], [out], adj_x=adj_a, adj_y=adj_b,
             asymmetric_quantize_inputs=False)
    ctx.define(output, out, layout.identity(ctx.rank(output)))


@handles("Gemm")
def _gemm(ctx: Lowering, node: Node) -> None:
    a, b = node.inputs[:2]
    c = node.input(2)
    out = node.outputs[0]
    alpha = float(node.attr("alpha", 1.0))
    beta = float(node.attr("beta", 1.0))
    trans_a = bool(int(node.attr("transA", 0)))
    trans_b = bool(int(node.attr("transB", 0)))
    n_out = ctx.shape(out)[1]
    weights = ctx.const(b)
    if weights is None:
        mm = out if c is None and alpha == 1.0 else ctx.temp_value(f"{out}/matmul",
                                                                      ctx.shape(out))
        batch_matmul(ctx, a, b, mm, trans_a, trans_b)
        if alpha != 1.0:
            scaled = out if c is None else ctx.temp_value(f"{out}/alpha", ctx.shape(out))
            elementwise(ctx, "MUL", [mm, ctx.const_value(f"{out}/alpha_s", np.float32(alpha))],
                        scaled)
            mm = scaled
        if c is not None:
            _add_c(ctx, mm, c, beta, out)
        return
    w = (weights if trans_b else weights.T).astype(np.float64) * alpha
    bias = None
    if c is not None:
        cv = ctx.const(c)
        if cv is not None and cv.size in (1, n_out) and (cv.ndim < 2 or cv.shape[0] == 1):
            bias = np.broadcast_to(beta * cv.astype(np.float64).reshape(-1), (n_out,))
    x = ctx.tensor(a, (1, 0) if trans_a else (0, 1))
    fc_out = out if c is None or bias is not None else ctx.temp_value(f"{out}/fc",
                                                                       ctx.shape(out))
    y = fully_connected(ctx, x, w, bias, ctx.shape(fc_out), fc_out)
    ctx.define(fc_out, y, (0, 1))
    if fc_out != out:
        _add_c(ctx, fc_out, c, beta, out)  # type: ignore[arg-type]


def _add_c(ctx: Lowering, y: str, c: str, beta: float, out: str) -> None:
    if beta != 1.0:
        cv = ctx.const(c)
        if cv is not None:
            c = ctx.const_value(f"{c}/beta", (beta * cv).astype(np.float32))
        else:
            scaled = ctx.temp_value(f"{c}/beta", ctx.shape(c))
            elementwise(ctx, "MUL", [c, ctx.const_value(f"{c}/beta_s", np.float32(beta))],
                        scaled)
            c = scaled
    elementwise(ctx, "ADD", [y, c], out)


@handles("MatMul")
def _matmul(ctx: Lowering, node: Node) -> None:
    a, b = node.inputs[:2]
    out = node.outputs[0]
    ra, rb = ctx.rank(a), ctx.rank(b)
    weights = ctx.const(b)
    if weights is not None and rb == 2 and not ctx.is_const(a):
        if ra == 1:
            x = ctx.reshape(ctx.tensor(a), (1, ctx.shape(a)[0]), base=f"{out}/row")
            y = fully_connected(ctx, x, weights.T, None, (1, weights.shape[1]), f"{out}/fc")
            ctx.define(out, ctx.reshape(y, ctx.shape(out), base=out), (0,))
            return
        x = ctx.tensor(a, layout.identity(ra))
        y = fully_connected(ctx, x, weights.T, None, ctx.shape(out), out)
        ctx.define(out, y, layout.identity(ra))
        return
    if ra < 2 or rb < 2:  # numpy semantics: a 1-D operand is a row (a) or a column (b)
        from sdk.converters.onnx.ops.tensor import reshape_value

        if ra == 1:
            row = ctx.temp_value(f"{a}/row", (1, ctx.shape(a)[0]), ctx.info(a).dtype)
            reshape_value(ctx, a, row)
            a = row
        if rb == 1:
            col = ctx.temp_value(f"{b}/column", (ctx.shape(b)[0], 1), ctx.info(b).dtype)
            reshape_value(ctx, b, col)
            b = col
        sa, sb = ctx.shape(a), ctx.shape(b)
        batch = np.broadcast_shapes(sa[:-2], sb[:-2])
        full = ctx.temp_value(f"{out}/matrix", (*batch, sa[-2], sb[-1]), ctx.info(out).dtype)
        batch_matmul(ctx, a, b, full)
        reshape_value(ctx, full, out)
        return
    batch_matmul(ctx, a, b, out)
