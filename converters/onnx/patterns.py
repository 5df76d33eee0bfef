"""Rewrites of the folded ONNX graph into the forms TFLite users expect, before lowering.

- BatchNormalization after Conv / ConvTranspose / Gemm (constant weights, nothing else reading
  the conv's output) is folded into the weights and bias.
- Hard swish, exported as x * HardSigmoid(x) or x * relu6(x + 3) / 6 in any of its orders,
  becomes one HardSwish (TFLite HARD_SWISH). x * Sigmoid(x) (SiLU/Swish) needs no rewrite: it
  lowers to LOGISTIC + MUL.
- Exact GELU, exported as 0.5 * x * (1 + erf(x / sqrt(2))), becomes one Gelu (TFLite GELU);
  the tanh approximation, 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))), becomes GELU
  with approximate=True.
- a / sqrt(b) becomes a * rsqrt(b) (LayerNorm's tail: TFLite RSQRT + MUL, as Keras' LayerNorm
  converts).
Each rewrite keeps the final output's value name, so graph outputs and later consumers are
unaffected; nodes left without readers are removed.
"""

from __future__ import annotations

import math

import numpy as np

from sdk.converters.onnx.graph import INTERNAL_DOMAIN, Node, OnnxGraph, ValueInfo
from sdk.converters.onnx.ops.norm import bn_affine

#: ops with no TFLite counterpart of their own that a rewrite here absorbs (Erf -> GELU);
#: the importer lets them through constant folding and checks again after `rewrite`
ABSORBED = {"Erf": "only converted as part of an exact GELU, 0.5 * x * (1 + erf(x / sqrt(2)))"}


class _View:
    """Producer and consumer maps of the graph, updated locally by `replace` (a rewrite costs
    the size of the pattern, not of the graph); `commit` writes the changes into og.nodes."""

    def __init__(self, og: OnnxGraph):
        self.og = og
        self.gone: set[int] = set()
        self.replaced: dict[int, Node] = {}
        self.outputs = set(og.outputs)
        self.refresh()

    def refresh(self) -> None:
        self.producer = self.og.producers()
        self.consumers = self.og.consumers()

    def alive(self, node: Node) -> bool:
        return id(node) not in self.gone

    def replace(self, old: Node, new: Node) -> None:
        """`new` takes `old`'s place; nodes left without readers go too."""
        self.replaced[id(old)] = new
        self.gone.add(id(old))
        for name in old.outputs:
            if name and self.producer.get(name) is old:
                del self.producer[name]
        for name in new.outputs:
            if name:
                self.producer[name] = new
        self._drop_reads(old)
        for name in new.inputs:
            if name:
                self.consumers.setdefault(name, []).append(new)
        self._remove_unread(old.inputs)

    def remove(self, node: Node) -> None:
        self.gone.add(id(node))
        for name in node.outputs:
            if name and self.producer.get(name) is node:
                del self.producer[name]
        self._drop_reads(node)

    def _drop_reads(self, node: Node) -> None:
        for name in node.inputs:
            readers = self.consumers.get(name)
            if readers:
                self.consumers[name] = [r for r in readers if r is not node]

    def _remove_unread(self, names: list[str]) -> None:
        stack = [n for n in names if n]
        while stack:
            name = stack.pop()
            node = self.producer.get(name)
            if node is None or not self.alive(node):
                continue
            if any(o and (self.consumers.get(o) or o in self.outputs) for o in node.outputs):
                continue
            self.remove(node)
            stack.extend(n for n in node.inputs if n)

    def commit(self) -> None:
        if self.gone:
            self.og.nodes = [self.replaced.get(id(n), n) for n in self.og.nodes
                             if id(n) not in self.gone or id(n) in self.replaced]
            self.gone.clear()
            self.replaced.clear()

    def single_use(self, name: str) -> bool:
        return name not in self.og.outputs and len(self.consumers.get(name, [])) == 1

    def made_by(self, name: str | None, *op_types: str) -> Node | None:
        node = self.producer.get(name) if name else None
        return node if node is not None and node.op_type in op_types and not node.domain \
            else None

    def scalar(self, name: str | None) -> float | None:
        value = self.og.const(name)
        if value is None or value.size != 1:
            return None
        return float(value.reshape(()))

    def other(self, node: Node, name: str) -> str | None:
        """The other input of a binary node, if `name` is one of its two inputs."""
        a, b = node.inputs[0], node.inputs[1]
        return b if a == name else a if b == name else None


def rewrite(og: OnnxGraph) -> None:
    remove_dead(og)
    fold_batch_norm(og)
    fuse_hard_swish(og)
    fuse_gelu(og)
    fuse_gelu_tanh(og)
    div_by_sqrt(og)
    remove_dead(og)


def remove_dead(og: OnnxGraph) -> None:
    """Drop the nodes no graph output depends on (one pass, from the outputs back)."""
    live = set(og.outputs)
    keep: list[Node] = []
    for node in reversed(og.nodes):
        if any(o in live for o in node.outputs if o):
            keep.append(node)
            live.update(n for n in node.inputs if n)
    keep.reverse()
    og.nodes = keep


def _close(a: float | None, b: float, tol: float = 1e-3) -> bool:
    return a is not None and abs(a - b) <= tol * max(1.0, abs(b))


# ------------------------------------------------------------------ batch norm folding

def fold_batch_norm(og: OnnxGraph) -> None:
    view = _View(og)
    for bn in list(og.nodes):
        if bn.op_type != "BatchNormalization" or bn.domain:
            continue
        if int(bn.attr("training_mode", 0)) or any(bn.output_used(i) for i in (1, 2, 3, 4)):
            continue
        params = [og.const(bn.input(i)) for i in (1, 2, 3, 4)]
        x = bn.inputs[0]
        conv = view.made_by(x, "Conv", "ConvTranspose", "Gemm")
        if conv is None or any(p is None for p in params) or not view.single_use(x):
            continue
        try:
            gamma, beta, mean, var = (np.asarray(p, np.float64) for p in params)  # type: ignore
            scale, shift = bn_affine(gamma, beta, mean, var, float(bn.attr("epsilon", 1e-5)))
            if not _fold_into(og, conv, scale, shift):
                continue
        except (ValueError, TypeError, IndexError):
            continue  # parameters that do not fit the conv: lowered (and checked) on their own
        conv.outputs = [bn.outputs[0]]
        view.remove(bn)
        view.producer[bn.outputs[0]] = conv  # local update: only these two entries change
        view.consumers.pop(x, None)
    view.commit()


def _fold_into(og: OnnxGraph, node: Node, scale: np.ndarray, shift: np.ndarray) -> bool:
    w = og.const(node.input(1))
    if w is None or w.dtype.kind != "f":
        return False
    w = w.astype(np.float64)
    bias_name = node.input(2)
    if node.op_type == "Conv":
        c_out = w.shape[0]
        b = og.const(bias_name) if bias_name else np.zeros(c_out)
        if b is None or scale.size != c_out:
            return False
        w2 = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
        b2 = b.astype(np.float64).reshape(-1) * scale + shift
    elif node.op_type == "ConvTranspose":
        group = int(node.attr("group", 1))
        c_in, per_out = w.shape[0], w.shape[1]
        b = og.const(bias_name) if bias_name else np.zeros(per_out * group)
        if b is None or scale.size != per_out * group:
            return False
        s = scale.reshape(group, 1, per_out, *(1,) * (w.ndim - 2))
        w2 = (w.reshape(group, c_in // group, per_out, *w.shape[2:]) * s).reshape(w.shape)
        b2 = b.astype(np.float64).reshape(-1) * scale + shift
    else:  # Gemm: y = alpha * A' B' + beta * C, with B' = [K, N]
        if w.ndim != 2:
            return False
        bt = w.T if int(node.attr("transB", 0)) else w
        n = bt.shape[1]
        c = og.const(bias_name) if bias_name else np.zeros(n)
        if c is None or c.size not in (1, n) or (c.ndim == 2 and c.shape[0] != 1) or c.ndim > 2:
            return False
        alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
        w2 = bt * alpha * scale[None, :]
        b2 = np.broadcast_to(beta * c.astype(np.float64).reshape(-1), (n,)) * scale + shift
        node.attrs.update(alpha=1.0, beta=1.0, transB=0)
    w_name = og.fresh(f"{node.inputs[1]}/bn_folded")
    og.values[w_name] = ValueInfo.constant(w2.astype(np.float32))
    b_name = og.fresh(f"{node.name}/bias_bn_folded")
    og.values[b_name] = ValueInfo.constant(b2.astype(np.float32))
    node.inputs = [node.inputs[0], w_name, b_name]
    return True


# ------------------------------------------------------------------ hard swish

def _relu6_of_x_plus_3(view: _View, name: str) -> str | None:
    """x when `name` is Clip(x + 3, 0, 6) (single use), else None."""
    clip = view.made_by(name, "Clip")
    if clip is None or not view.single_use(name):
        return None
    if view.og.opset < 11:
        lo, hi = clip.attr("min"), clip.attr("max")
    else:
        lo, hi = view.scalar(clip.input(1)), view.scalar(clip.input(2))
    if lo is None or hi is None or float(lo) != 0.0 or float(hi) != 6.0:
        return None
    add = view.made_by(clip.inputs[0], "Add")
    if add is None or not view.single_use(clip.inputs[0]):
        return None
    for a, b in ((add.inputs[0], add.inputs[1]), (add.inputs[1], add.inputs[0])):
        if _close(view.scalar(b), 3.0, 1e-6) and not view.og.values[a].is_const:
            return a
    return None


def _hard_sigmoid_of(view: _View, name: str) -> str | None:
    """x when `name` is hard_sigmoid(x) = relu6(x + 3) / 6 (single use), else None."""
    if not view.single_use(name):
        return None
    hs = view.made_by(name, "HardSigmoid")
    if hs is not None:
        if _close(hs.attr("alpha", 0.2), 1 / 6, 1e-4) and _close(hs.attr("beta", 0.5), 0.5):
            return hs.inputs[0]
        return None
    node = view.made_by(name, "Div", "Mul")
    if node is None:
        return None
    want = 6.0 if node.op_type == "Div" else 1 / 6
    if _close(view.scalar(node.inputs[1]), want, 1e-4):
        return _relu6_of_x_plus_3(view, node.inputs[0])
    if node.op_type == "Mul" and _close(view.scalar(node.inputs[0]), want, 1e-4):
        return _relu6_of_x_plus_3(view, node.inputs[1])
    return None


def fuse_hard_swish(og: OnnxGraph) -> None:
    view = _View(og)
    for node in list(og.nodes):
        if not view.alive(node) or node.domain:
            continue
        x = None
        if node.op_type == "Mul":  # x * hard_sigmoid(x)
            a, b = node.inputs[:2]
            if _hard_sigmoid_of(view, b) == a:
                x = a
            elif _hard_sigmoid_of(view, a) == b:
                x = b
        if x is None and node.op_type in ("Div", "Mul"):  # (x * relu6(x + 3)) / 6
            want = 6.0 if node.op_type == "Div" else 1 / 6
            if _close(view.scalar(node.inputs[1]), want, 1e-4):
                inner = view.made_by(node.inputs[0], "Mul")
                if inner is not None and view.single_use(node.inputs[0]):
                    a, b = inner.inputs[:2]
                    if _relu6_of_x_plus_3(view, b) == a:
                        x = a
                    elif _relu6_of_x_plus_3(view, a) == b:
                        x = b
        if x is None:
            continue
        view.replace(node, Node("HardSwish", f"{node.name}/hard_swish", [x], [node.outputs[0]]))
    view.commit()


# ------------------------------------------------------------------ GELU

def fuse_gelu(og: OnnxGraph) -> None:
    view = _View(og)
    sqrt2 = math.sqrt(2.0)
    for erf in list(og.nodes):
        if erf.op_type != "Erf" or erf.domain or not view.alive(erf):
            continue
        scaled = erf.inputs[0]
        pre = view.made_by(scaled, "Div", "Mul")
        if pre is None or not view.single_use(scaled):
            continue
        want = sqrt2 if pre.op_type == "Div" else 1 / sqrt2
        if not _close(view.scalar(pre.inputs[1]), want, 1e-3):
            continue
        x = pre.inputs[0]
        uses = view.consumers.get(erf.outputs[0], [])
        if len(uses) != 1 or not view.single_use(erf.outputs[0]):
            continue
        add = uses[0]
        if add.op_type != "Add" or not _close(view.scalar(view.other(add, erf.outputs[0])), 1.0):
            continue
        out = _gelu_output(view, x, add.outputs[0])
        if out is None:
            continue
        last = view.producer[out]
        view.replace(last, Node("Gelu", f"{erf.name}/gelu", [x], [out], {"approximate": "none"}))
    view.commit()


def _cube_of(view: _View, name: str) -> str | None:
    """x when `name` is x**3 (Pow(x, 3), x * (x * x) or (x * x) * x), single use."""
    if not view.single_use(name):
        return None
    node = view.made_by(name, "Pow", "Mul")
    if node is None:
        return None
    if node.op_type == "Pow":
        return node.inputs[0] if _close(view.scalar(node.inputs[1]), 3.0, 1e-6) else None
    a, b = node.inputs[:2]
    for x, sq in ((a, b), (b, a)):
        square = view.made_by(sq, "Mul")
        if square is not None and view.single_use(sq) and square.inputs[:2] == [x, x]:
            return x
    return None


def fuse_gelu_tanh(og: OnnxGraph) -> None:
    view = _View(og)
    beta, kappa = math.sqrt(2.0 / math.pi), 0.044715
    for tanh in list(og.nodes):
        if tanh.op_type != "Tanh" or tanh.domain or not view.alive(tanh):
            continue
        arg = tanh.inputs[0]
        scale = view.made_by(arg, "Mul")
        if scale is None or not view.single_use(arg):
            continue
        inner = next((view.other(scale, c) for c in scale.inputs[:2]
                      if _close(view.scalar(c), beta, 1e-4)), None)
        add = view.made_by(inner, "Add")
        if add is None or not view.single_use(inner):  # type: ignore[arg-type]
            continue
        x = None
        for a, b in ((add.inputs[0], add.inputs[1]), (add.inputs[1], add.inputs[0])):
            term = view.made_by(b, "Mul")
            if term is None or not view.single_use(b):
                continue
            cube = next((view.other(term, c) for c in term.inputs[:2]
                         if _close(view.scalar(c), kappa, 1e-4)), None)
            if cube is not None and _cube_of(view, cube) == a:
                x = a
        uses = view.consumers.get(tanh.outputs[0], [])
        if x is None or len(uses) != 1 or not view.single_use(tanh.outputs[0]):
            continue
        one = uses[0]
        if one.op_type != "Add" or not _close(view.scalar(view.other(one, tanh.outputs[0])), 1.0):
            continue
        out = _gelu_output(view, x, one.outputs[0])
        if out is None:
            continue
        last = view.producer[out]
        view.replace(last, Node("Gelu", f"{tanh.name}/gelu", [x], [out], {"approximate": "tanh"}))
    view.commit()


def _gelu_output(view: _View, x: str, one_plus_erf: str) -> str | None:
    """The value holding 0.5 * x * one_plus_erf, for the orders exporters write it in."""
    if not view.single_use(one_plus_erf):
        return None
    mul = view.consumers[one_plus_erf][0]
    if mul.op_type != "Mul":
        return None
    other = view.other(mul, one_plus_erf)
    if other == x:  # (x * (1 + erf)) * 0.5
        uses = view.consumers.get(mul.outputs[0], [])
        if len(uses) == 1 and view.single_use(mul.outputs[0]) and uses[0].op_type == "Mul" \
                and _close(view.scalar(view.other(uses[0], mul.outputs[0])), 0.5):
            return uses[0].outputs[0]
        return None
    half = view.made_by(other, "Mul")
    if half is not None and view.single_use(other):  # (x * 0.5) * (1 + erf)
        if view.other(half, x) is not None and _close(view.scalar(view.other(half, x)), 0.5):
            return mul.outputs[0]
        return None
    if _close(view.scalar(other), 0.5):  # x * ((1 + erf) * 0.5)
        uses = view.consumers.get(mul.outputs[0], [])
        if len(uses) == 1 and view.single_use(mul.outputs[0]) and uses[0].op_type == "Mul" \
                and view.other(uses[0], mul.outputs[0]) == x:
            return uses[0].outputs[0]
    return None


# ------------------------------------------------------------------ a / sqrt(b)

def div_by_sqrt(og: OnnxGraph) -> None:
    view = _View(og)
    for div in list(og.nodes):
        if div.op_type != "Div" or div.domain:
            continue
        denom = div.inputs[1]
        sqrt = view.made_by(denom, "Sqrt")
        if sqrt is None or not view.single_use(denom):
            continue
        inv = og.fresh(f"{denom}/rsqrt")
        og.values[inv] = ValueInfo(og.values[denom].shape, og.values[denom].dtype)
        view.replace(sqrt, Node("Rsqrt", f"{sqrt.name}/rsqrt", [sqrt.inputs[0]], [inv],
                                domain=INTERNAL_DOMAIN))
        view.replace(div, Node("Mul", div.name, [div.inputs[0], inv], [div.outputs[0]]))
    view.commit()
