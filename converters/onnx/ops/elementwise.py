"""Element-wise ops: activations, arithmetic with broadcasting, comparisons, Clip, Where.

They are layout-neutral: the output keeps the order its inputs are held in. With several
non-constant inputs held in different orders, the order that needs the fewest new TRANSPOSEs
wins (ties go to channels-last, which is what convolutions downstream want). Constant operands
are permuted in numpy, never at run time.
"""

from __future__ import annotations

import numpy as np

from sdk.converters.ir import Tensor
from sdk.converters.onnx import layout
from sdk.converters.onnx.graph import Node
from sdk.converters.onnx.layout import Perm
from sdk.converters.onnx.lowering import Lowering, ir_dtype
from sdk.converters.onnx.registry import handles

# ------------------------------------------------------------------ helpers used across ops


def _restricted(perm: Perm, rank: int) -> Perm:
    """The order of a rank-`rank` operand right-aligned into a tensor held in `perm`."""
    shift = len(perm) - rank
    return tuple(p - shift for p in perm if p >= shift)


def input_cost(ctx: Lowering, name: str, perm: Perm) -> int:
    r = ctx.rank(name)
    return ctx.cost(name, perm if r == len(perm) else _restricted(perm, r))


def choose_perm(ctx: Lowering, names: list[str], rank: int) -> Perm:
    """The order to compute an element-wise op in (see the module doc)."""
    candidates: list[Perm] = []
    for n in names:
        if not ctx.is_const(n) and ctx.rank(n) == rank and ctx.perm(n) not in candidates:
            candidates.append(ctx.perm(n))
    if not candidates:
        return layout.identity(rank)
    candidates.sort(key=layout.is_identity)  # stable: non-identity first on ties
    return min(candidates, key=lambda p: sum(input_cost(ctx, n, p) for n in names))


def broadcast_input(ctx: Lowering, name: str, perm: Perm) -> Tensor:
    """Operand `name` of an element-wise op computed in `perm` order (rank len(perm)), in a
    shape that TFLite's right-aligned broadcasting combines correctly."""
    info = ctx.info(name)
    rank = len(perm)
    full_onnx = (1,) * (rank - info.rank) + info.shape
    full = layout.permute(full_onnx, perm)
    if info.const is not None:
        arr = np.transpose(info.const.reshape(full_onnx), perm)
        while arr.ndim and arr.shape[0] == 1:
            arr = arr.reshape(arr.shape[1:])
        return ctx.constant(name, arr)
    if info.rank == rank:
        return ctx.tensor(name, perm)
    t = ctx.tensor(name, _restricted(perm, info.rank))
    stripped = list(full)
    while stripped and stripped[0] == 1 and len(stripped) > len(t.shape):
        stripped.pop(0)
    if tuple(stripped) == tuple(t.shape):
        return t
    return ctx.reshape(t, full)


def elementwise(ctx: Lowering, op_type: str, inputs: list[str], output: str,
                **attrs: object) -> Tensor:
    """Emit `op_type` over `inputs` (ONNX value names) producing value `output`."""
    rank = ctx.rank(output)
    perm = choose_perm(ctx, inputs, rank)
    ins = [broadcast_input(ctx, n, perm) for n in inputs]
    out = ctx.new(output, layout.permute(ctx.shape(output), perm),
                  ir_dtype(ctx.info(output).dtype, ctx.label))
    ctx.emit(op_type, ins, [out], **attrs)
    ctx.define(output, out, perm)
    return out


def unary(ctx: Lowering, op_type: str, x: str, output: str, **attrs: object) -> Tensor:
    t = ctx.tensor(x)
    out = ctx.new(output, tuple(t.shape), ir_dtype(ctx.info(output).dtype, ctx.label))
    ctx.emit(op_type, [t], [out], **attrs)
    ctx.define(output, out, ctx.perm(x))
    return out


def alias(ctx: Lowering, x: str, output: str) -> None:
    """`output` is the same data as `x` (Identity, Dropout at inference, no-op casts)."""
    t, perm = ctx.home[x]
    ctx.define(output, t, perm)


def scalar_chain(ctx: Lowering, op_type: str, names: list[str], output: str,
                 **attrs: object) -> None:
    """A variadic op (Sum, Max, Min) as a chain of binary ops."""
    acc = names[0]
    for k, n in enumerate(names[1:]):
        last = k == len(names) - 2
        if last:
            target = output
        else:
            shape = tuple(np.broadcast_shapes(ctx.shape(acc), ctx.shape(n)))
            target = ctx.temp_value(f"{output}/acc{k}", shape, ctx.info(output).dtype)
        elementwise(ctx, op_type, [acc, n], target, **attrs)
        acc = target


# ------------------------------------------------------------------ unary ops

_UNARY = {
    "Relu": "RELU", "Sigmoid": "LOGISTIC", "Tanh": "TANH", "Exp": "EXP", "Log": "LOG",
    "Sqrt": "SQRT", "Abs": "ABS", "Neg": "NEG", "Floor": "FLOOR", "Ceil": "CEIL",
    "Round": "ROUND", "Sin": "SIN", "Cos": "COS", "Sign": "SIGN", "Not": "LOGICAL_NOT",
    "HardSwish": "HARD_SWISH",
}


@handles(*_UNARY)
def _unary(ctx: Lowering, node: Node) -> None:
    unary(ctx, _UNARY[node.op_type], node.inputs[0], node.outputs[0])


@handles("Rsqrt", internal=True)
def _rsqrt(ctx: Lowering, node: Node) -> None:
    unary(ctx, "RSQRT", node.inputs[0], node.outputs[0])


@handles("Identity", "Dropout")
def _identity(ctx: Lowering, node: Node) -> None:
    if node.op_type == "Dropout":
        if node.output_used(1):
            raise ctx.unsupported("the Dropout mask output is not supported")
        training = ctx.const(node.input(2)) if node.input(2) else np.array(False)
        ratio = ctx.const(node.input(1)) if node.input(1) else np.array(0.5)
        if training is None or (bool(training) and (ratio is None or float(ratio) != 0.0)):
            raise ctx.unsupported("Dropout in training mode (random)")
    alias(ctx, node.inputs[0], node.outputs[0])


@handles("LeakyRelu")
def _leaky_relu(ctx: Lowering, node: Node) -> None:
    unary(ctx, "LEAKY_RELU", node.inputs[0], node.outputs[0],
          alpha=float(node.attr("alpha", 0.01)))


@handles("Elu")
def _elu(ctx: Lowering, node: Node) -> None:
    alpha = float(node.attr("alpha", 1.0))
    x, out = node.inputs[0], node.outputs[0]
    if alpha == 1.0:
        unary(ctx, "ELU", x, out)
        return
    # TFLite's ELU has alpha 1: elu_a(x) = relu(x) + a * min(elu_1(x), 0)
    shape = ctx.shape(x)
    elu1 = ctx.temp_value(f"{out}/elu1", shape)
    unary(ctx, "ELU", x, elu1)
    neg = ctx.temp_value(f"{out}/negative_part", shape)
    elementwise(ctx, "MINIMUM", [elu1, ctx.const_value(f"{out}/zero", np.float32(0))], neg)
    scaled = ctx.temp_value(f"{out}/scaled", shape)
    elementwise(ctx, "MUL", [neg, ctx.const_value(f"{out}/alpha", np.float32(alpha))], scaled)
    pos = ctx.temp_value(f"{out}/positive_part", shape)
    unary(ctx, "RELU", x, pos)
    elementwise(ctx, "ADD", [pos, scaled], out)


@handles("Gelu")
def _gelu(ctx: Lowering, node: Node) -> None:
    approximate = node.attr("approximate", "none") == "tanh"
    unary(ctx, "GELU", node.inputs[0], node.outputs[0], approximate=approximate)


@handles("Softplus")
def _softplus(ctx: Lowering, node: Node) -> None:
    """log(1 + exp(x)) = relu(x) + log(1 + exp(-|x|)): TFLite has no Softplus, and this form
    does not overflow for large x."""
    x, out = node.inputs[0], node.outputs[0]
    shape = ctx.shape(x)
    steps = [("ABS", None), ("NEG", None), ("EXP", None), ("ADD", 1.0), ("LOG", None)]
    current = x
    for k, (op, const) in enumerate(steps):
        target = ctx.temp_value(f"{out}/{op.lower()}{k}", shape)
        if const is None:
            unary(ctx, op, current, target)
        else:
            elementwise(ctx, op, [current, ctx.const_value(f"{out}/one", np.float32(const))],
                        target)
        current = target
    pos = ctx.temp_value(f"{out}/relu", shape)
    unary(ctx, "RELU", x, pos)
    elementwise(ctx, "ADD", [pos, current], out)


@handles("HardSigmoid")
def _hard_sigmoid(ctx: Lowering, node: Node) -> None:
    """max(0, min(1, a*x + b)) = relu6(6a*x + 6b) / 6: MUL, ADD+RELU6, MUL (all quantisable)."""
    alpha = float(node.attr("alpha", 0.2))
    beta = float(node.attr("beta", 0.5))
    x, out = node.inputs[0], node.outputs[0]
    shape = ctx.shape(x)
    scaled = x
    if abs(6 * alpha - 1.0) > 1e-7:
        scaled = ctx.temp_value(f"{out}/scaled", shape)
        elementwise(ctx, "MUL", [x, ctx.const_value(f"{out}/6a", np.float32(6 * alpha))], scaled)
    clipped = ctx.temp_value(f"{out}/relu6", shape)
    elementwise(ctx, "ADD", [scaled, ctx.const_value(f"{out}/6b", np.float32(6 * beta))],
                clipped, fused_activation_function="RELU6")
    elementwise(ctx, "MUL", [clipped, ctx.const_value(f"{out}/sixth", np.float32(1 / 6))], out)


def _clip_bound(ctx: Lowering, value: object, what: str) -> float | None:
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "biuf":
        raise ctx.unsupported(f"a {what} that is not one number ({arr.dtype}, {arr.size} values)")
    return float(arr.reshape(-1)[0])


def _clip_runtime(ctx: Lowering, x: str, out: str, bounds: list[str | None]) -> None:
    """Clip whose min or max is computed at run time (a log-mel floor from ReduceMax - 80 dB):
    MAXIMUM / MINIMUM with that scalar tensor, broadcast over x."""
    dtype = ctx.info(x).dtype
    current = x
    for k, (bound, op, what) in enumerate(zip(bounds, ("MAXIMUM", "MINIMUM"), ("min", "max"),
                                              strict=True)):
        if not bound:
            continue
        info = ctx.info(bound)
        if int(np.prod(info.shape, dtype=np.int64)) != 1:
            raise ctx.unsupported(f"input {k + 1} ({what}, {bound!r}) must hold one value, not "
                                  f"shape {list(info.shape)}")
        if info.dtype != dtype:
            raise ctx.unsupported(f"input {k + 1} ({what}, {bound!r}) is {info.dtype}, the data "
                                  f"{dtype}")
        if len(info.shape) > ctx.rank(x):
            raise ctx.unsupported(f"input {k + 1} ({what}, {bound!r}) has a higher rank than "
                                  "the data")
        last = k == 1 or not bounds[1]
        target = out if last else ctx.temp_value(f"{out}/max", ctx.shape(x), dtype)
        elementwise(ctx, op, [current, bound], target)
        current = target


@handles("Clip")
def _clip(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    if ctx.og.opset < 11:
        lo, hi = node.attr("min"), node.attr("max")
    else:
        bounds = [node.input(1), node.input(2)]
        if any(b and ctx.const(b) is None for b in bounds):  # computed at run time
            _clip_runtime(ctx, x, out, bounds)
            return
        lo = ctx.const(bounds[0]) if bounds[0] else None
        hi = ctx.const(bounds[1]) if bounds[1] else None
    lo, hi = _clip_bound(ctx, lo, "min"), _clip_bound(ctx, hi, "max")
    lo = None if lo is None or lo <= -3.4e38 else lo
    hi = None if hi is None or hi >= 3.4e38 else hi
    if lo is None and hi is None:
        alias(ctx, x, out)
        return
    if ctx.info(x).dtype.kind == "f":
        named = {(0.0, None): "RELU", (0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}
        if (lo, hi) in named:
            unary(ctx, named[(lo, hi)], x, out)
            return
    dtype = ctx.info(x).dtype
    current = x
    if lo is not None:
        target = out if hi is None else ctx.temp_value(f"{out}/max", ctx.shape(x), dtype)
        elementwise(ctx, "MAXIMUM", [current, ctx.const_value(f"{out}/min", np.asarray(
            lo, dtype))], target)
        current = target
    if hi is not None:
        elementwise(ctx, "MINIMUM", [current, ctx.const_value(f"{out}/max", np.asarray(
            hi, dtype))], out)


# ------------------------------------------------------------------ binary and n-ary ops

_BINARY = {
    "Add": "ADD", "Sub": "SUB", "Mul": "MUL", "Equal": "EQUAL", "Less": "LESS",
    "Greater": "GREATER", "LessOrEqual": "LESS_EQUAL", "GreaterOrEqual": "GREATER_EQUAL",
    "And": "LOGICAL_AND", "Or": "LOGICAL_OR", "Xor": "NOT_EQUAL",
}


@handles(*_BINARY)
def _binary(ctx: Lowering, node: Node) -> None:
    elementwise(ctx, _BINARY[node.op_type], node.inputs[:2], node.outputs[0])


@handles("Div")
def _div(ctx: Lowering, node: Node) -> None:
    a, b = node.inputs[:2]
    out = node.outputs[0]
    if ctx.info(out).dtype.kind != "f":  # TFLite's int32 DIV truncates, as ONNX's does
        elementwise(ctx, "DIV", [a, b], out)
        return
    divisor = ctx.const(b)
    if divisor is not None and np.all(divisor != 0):
        # x / c -> x * (1/c): what TensorFlow's converter does; cheaper and quantisable
        recip = ctx.const_value(f"{b}/reciprocal", (1.0 / divisor.astype(np.float64)).astype(
            np.float32))
        elementwise(ctx, "MUL", [a, recip], out)
        return
    elementwise(ctx, "DIV", [a, b], out)


@handles("Reciprocal")
def _reciprocal(ctx: Lowering, node: Node) -> None:
    one = ctx.const_value(f"{node.outputs[0]}/one", np.float32(1.0))
    elementwise(ctx, "DIV", [one, node.inputs[0]], node.outputs[0])


@handles("Pow")
def _pow(ctx: Lowering, node: Node) -> None:
    x, e = node.inputs[:2]
    out = node.outputs[0]
    exponent = ctx.const(e)
    if exponent is not None and exponent.size == 1:
        v = float(exponent.reshape(()))
        if v == 1.0:
            alias(ctx, x, out)
            return
        if v == 2.0:
            elementwise(ctx, "MUL", [x, x], out)
            return
        if v == 3.0:
            sq = ctx.temp_value(f"{out}/square", ctx.shape(x))
            elementwise(ctx, "MUL", [x, x], sq)
            elementwise(ctx, "MUL", [sq, x], out)
            return
        if v == 0.5:
            unary(ctx, "SQRT", x, out)
            return
        if v == -0.5:
            unary(ctx, "RSQRT", x, out)
            return
        if v == -1.0:
            one = ctx.const_value(f"{out}/one", np.float32(1.0))
            elementwise(ctx, "DIV", [one, x], out)
            return
    if ctx.info(e).dtype != ctx.info(x).dtype:  # TFLite's POW takes one type
        if exponent is not None:
            e = ctx.const_value(f"{e}/as_base", exponent.astype(ctx.info(x).dtype))
        else:
            cast = ctx.temp_value(f"{e}/as_base", ctx.shape(e), ctx.info(x).dtype)
            src, dst = (ir_dtype(ctx.info(n).dtype, ctx.label) for n in (e, x))
            unary(ctx, "CAST", e, cast, in_data_type=src.name, out_data_type=dst.name)
            e = cast
    elementwise(ctx, "POW", [x, e], out)


@handles("Max", "Min", "Sum")
def _variadic(ctx: Lowering, node: Node) -> None:
    op = {"Max": "MAXIMUM", "Min": "MINIMUM", "Sum": "ADD"}[node.op_type]
    names = [n for n in node.inputs if n]
    if len(names) == 1:
        alias(ctx, names[0], node.outputs[0])
        return
    scalar_chain(ctx, op, names, node.outputs[0])


@handles("Mean")
def _mean(ctx: Lowering, node: Node) -> None:
    names = [n for n in node.inputs if n]
    out = node.outputs[0]
    if len(names) == 1:
        alias(ctx, names[0], out)
        return
    total = ctx.temp_value(f"{out}/sum", ctx.shape(out))
    scalar_chain(ctx, "ADD", names, total)
    elementwise(ctx, "MUL", [total, ctx.const_value(f"{out}/inv_n",
                                                      np.float32(1.0 / len(names)))], out)


@handles("Where")
def _where(ctx: Lowering, node: Node) -> None:
    elementwise(ctx, "SELECT_V2", node.inputs[:3], node.outputs[0])


@handles("PRelu")
def _prelu(ctx: Lowering, node: Node) -> None:
    elementwise(ctx, "PRELU", node.inputs[:2], node.outputs[0])


@handles("Cast")
def _cast(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    src = ir_dtype(ctx.info(x).dtype, ctx.label)
    dst = ir_dtype(ctx.info(out).dtype, ctx.label)
    if src == dst:
        alias(ctx, x, out)
        return
    unary(ctx, "CAST", x, out, in_data_type=src.name, out_data_type=dst.name)
