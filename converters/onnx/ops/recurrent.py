"""LSTM, GRU and RNN, unrolled over the fixed sequence length the shapes give.

Each becomes ops that LiteRT's builtin kernels run and the INT8 quantiser handles: one
FULLY_CONNECTED projects every time step's input at once ([T * B, I] -> [T * B, gates * H],
both biases folded in where the maths allows), SPLIT cuts it into steps, and each step is a
FULLY_CONNECTED of the hidden state plus LOGISTIC / TANH / MUL / ADD / SUB; Y and Y_h / Y_c are
CONCATENATIONs of the steps' states. Initial states are ordinary tensors (model inputs or
constants), so a single-step model with state in and out (voice-activity nets) works too.

Supported: forward, reverse and bidirectional; layout 0 and 1; initial states absent or given;
sequence_lens absent (or all equal to T); GRU's linear_before_reset 0 and 1. Refused with an
UnsupportedOpError naming the attribute: activations other than the defaults, clip,
input_forget, varying sequence_lens. LSTM peepholes (P) are MUL + ADD on the gates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sdk.converters.ir import Tensor
from sdk.converters.onnx import layout
from sdk.converters.onnx.graph import Node
from sdk.converters.onnx.lowering import Lowering
from sdk.converters.onnx.ops.matmul import fully_connected
from sdk.converters.onnx.registry import handles

#: gate count and default activations (per direction) of each op
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
_DEFAULT_ACTIVATIONS = {"LSTM": ["sigmoid", "tanh", "tanh"], "GRU": ["sigmoid", "tanh"],
                        "RNN": ["tanh"]}


@dataclass
class _Direction:
    """One direction's weights (ONNX gate order) and initial states."""

    w: np.ndarray  # [gates * H, I]
    r: np.ndarray  # [gates * H, H]
    wb: np.ndarray  # [gates * H]
    rb: np.ndarray  # [gates * H]
    h0: Tensor | None  # [B, H]; None: zeros
    c0: Tensor | None  # [B, H] (LSTM); None: zeros
    reverse: bool
    peep: np.ndarray | None = None  # LSTM's P [3 * H] (i, o, f); None: absent or zeros


class _Lazy:
    """A tensor made when first asked for."""

    def __init__(self, make: Callable[[], Tensor]):
        self._make = make
        self._tensor: Tensor | None = None

    def get(self) -> Tensor:
        if self._tensor is None:
            self._tensor = self._make()
        return self._tensor


class _Emitter:
    """Small IR helpers for the unrolled cell (tensors of one node, named after it)."""

    def __init__(self, ctx: Lowering, base: str):
        self.ctx = ctx
        self.base = base

    def op(self, op_type: str, inputs: list[Tensor], shape: tuple[int, ...], tag: str,
           **attrs: object) -> Tensor:
        out = self.ctx.new(f"{self.base}/{tag}", shape)
        self.ctx.emit(op_type, list(inputs), [out], **attrs)
        return out

    def unary(self, op_type: str, x: Tensor, tag: str) -> Tensor:
        return self.op(op_type, [x], tuple(x.shape), tag)

    def binary(self, op_type: str, a: Tensor, b: Tensor, tag: str) -> Tensor:
        shape = tuple(np.broadcast_shapes(tuple(a.shape), tuple(b.shape)))
        return self.op(op_type, [a, b], shape, tag, fused_activation_function="NONE")

    def fc(self, x: Tensor, w: np.ndarray, b: np.ndarray | None, tag: str) -> Tensor:
        shape = (*x.shape[:-1], w.shape[0])
        return fully_connected(self.ctx, x, w, b, shape, f"{self.base}/{tag}")

    def weights(self, w: np.ndarray, tag: str) -> _Lazy:
        """A weight constant that every step's FULLY_CONNECTED reads (stored once, made on
        first use: a single step from a zero state has no recurrent term)."""
        return _Lazy(lambda: self.ctx.constant(f"{self.base}/{tag}", w.astype(np.float32)))

    def fc_shared(self, x: Tensor, lazy: _Lazy, b: np.ndarray | None, tag: str) -> Tensor:
        """FULLY_CONNECTED with a shared weight tensor; the bias (absent when zero: an int8
        bias takes each step's input scale, so it is never shared) is the step's own."""
        w = lazy.get()
        out = self.ctx.new(f"{self.base}/{tag}", (*x.shape[:-1], int(w.shape[0])))
        bias = None if b is None or not np.any(b) else self.ctx.constant(
            f"{self.base}/{tag}/bias", b.astype(np.float32))
        self.ctx.emit("FULLY_CONNECTED", [x, w, bias], [out], fused_activation_function="NONE",
                      weights_format="DEFAULT", keep_num_dims=False,
                      asymmetric_quantize_inputs=False)
        return out

    def split(self, x: Tensor, axis: int, n: int, tag: str) -> list[Tensor]:
        if n == 1:
            return [x]
        shape = list(x.shape)
        shape[axis] //= n
        outs = [self.ctx.new(f"{self.base}/{tag}{k}", tuple(shape)) for k in range(n)]
        self.ctx.emit("SPLIT", [self.ctx.int32(f"{self.base}/{tag}_axis", axis), x], outs,
                      num_splits=n)
        return outs

    def concat(self, parts: list[Tensor], axis: int, tag: str) -> Tensor:
        if len(parts) == 1:
            return parts[0]
        shape = list(parts[0].shape)
        shape[axis] = sum(int(p.shape[axis]) for p in parts)
        return self.op("CONCATENATION", parts, tuple(shape), tag, axis=axis,
                       fused_activation_function="NONE")

    def reshape(self, x: Tensor, shape: tuple[int, ...], tag: str) -> Tensor:
        return self.ctx.reshape(x, shape, base=f"{self.base}/{tag}")


def _check_attrs(ctx: Lowering, node: Node, directions: int) -> None:
    op = node.op_type
    acts = node.attr("activations")
    if acts is not None:
        names = [str(a).lower() for a in acts]
        if names != _DEFAULT_ACTIVATIONS[op] * directions:
            raise ctx.unsupported(f"attribute activations={list(acts)}: only the defaults "
                                  f"({_DEFAULT_ACTIVATIONS[op]} per direction) are converted")
    for key in ("activation_alpha", "activation_beta"):
        if node.attr(key):
            raise ctx.unsupported(f"attribute {key} (only the default activations are "
                                  "converted)")
    if node.attr("clip") is not None:
        raise ctx.unsupported(f"attribute clip={node.attr('clip')} (cell clipping is not "
                              "converted)")
    if op == "LSTM" and int(node.attr("input_forget", 0)):
        raise ctx.unsupported("attribute input_forget=1 (coupled input and forget gates is not "
                              "converted)")
    if int(node.attr("layout", 0)) not in (0, 1):
        raise ctx.unsupported(f"attribute layout={node.attr('layout')} (0 or 1)")


def _state(ctx: Lowering, name: str | None, d: int, layout_: int, em: _Emitter,
           tag: str) -> Tensor | None:
    """Direction `d`'s initial state [B, H] (None when absent or all zeros)."""
    if name is None:
        return None
    value = ctx.const(name)
    if value is not None and not np.any(value):
        return None
    shape = ctx.shape(name)  # [D, B, H] (layout 0) or [B, D, H] (layout 1)
    t = ctx.tensor(name, layout.identity(3))
    axis = 0 if layout_ == 0 else 1
    part = em.split(t, axis, shape[axis], f"{tag}_dir")[d]
    batch = shape[1] if layout_ == 0 else shape[0]
    return em.reshape(part, (batch, shape[2]), f"{tag}{d}")


@handles("LSTM", "GRU", "RNN")
def _recurrent(ctx: Lowering, node: Node) -> None:
    op = node.op_type
    gates = _GATES[op]
    direction = str(node.attr("direction", "forward"))
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ctx.unsupported(f"attribute direction={direction!r}")
    n_dir = 2 if direction == "bidirectional" else 1
    _check_attrs(ctx, node, n_dir)
    layout_ = int(node.attr("layout", 0))
    x_name = node.inputs[0]
    w = ctx.require_const(node.input(1), "W")
    r = ctx.require_const(node.input(2), "R")
    b = ctx.const(node.input(3)) if node.input(3) else None
    if node.input(3) and b is None:
        raise ctx.unsupported("B (the biases) must be a constant")
    if not np.issubdtype(ctx.info(x_name).dtype, np.floating):
        raise ctx.unsupported(f"input X of element type {ctx.info(x_name).dtype} (floats only)")
    x_shape = ctx.shape(x_name)
    if len(x_shape) != 3 or w.ndim != 3 or r.ndim != 3:
        raise ctx.unsupported(f"X {list(x_shape)}, W {list(w.shape)} and R {list(r.shape)} "
                              "must each have rank 3")
    steps, batch = (x_shape[0], x_shape[1]) if layout_ == 0 else (x_shape[1], x_shape[0])
    hidden = int(node.attr("hidden_size", r.shape[-1]))
    if w.shape[:2] != (n_dir, gates * hidden) or r.shape != (n_dir, gates * hidden, hidden) \
            or w.shape[2] != x_shape[2]:
        raise ctx.unsupported(f"W {list(w.shape)} / R {list(r.shape)} do not match "
                              f"{n_dir} direction(s), hidden_size {hidden}, input size "
                              f"{x_shape[2]}")
    if b is not None and b.shape != (n_dir, 2 * gates * hidden):
        raise ctx.unsupported(f"B has the shape {list(b.shape)}, not "
                              f"{[n_dir, 2 * gates * hidden]}")
    state_shape = [n_dir, batch, hidden] if layout_ == 0 else [batch, n_dir, hidden]
    for k, what in ((5, "initial_h"), (6, "initial_c")):
        name = node.input(k)
        if name is not None and list(ctx.shape(name)) != state_shape:
            raise ctx.unsupported(f"{what} has the shape {list(ctx.shape(name))}, not "
                                  f"{state_shape}")
    seq = node.input(4)
    if seq is not None:
        lens = ctx.const(seq)
        if lens is None or np.any(np.asarray(lens) != steps):
            raise ctx.unsupported("input sequence_lens: only absent, or constant and equal to "
                                  f"the sequence length {steps}, is converted")
    peep = ctx.const(node.input(7)) if op == "LSTM" and node.input(7) else None
    if op == "LSTM" and node.input(7) and peep is None:
        raise ctx.unsupported("input P (peepholes) must be a constant")
    if peep is not None and peep.shape != (n_dir, 3 * hidden):
        raise ctx.unsupported(f"input P has the shape {list(peep.shape)}, not "
                              f"{[n_dir, 3 * hidden]}")
    if steps < 1 or batch < 1:
        raise ctx.unsupported(f"sequence length {steps} and batch {batch} must be at least 1")
    per_step = {"LSTM": 24, "GRU": 26, "RNN": 8}[op]  # IR tensors and ops, a bound
    if ctx.items + steps * n_dir * per_step > ctx.budget.max_graph_items:
        raise ctx.unsupported(
            f"unrolled over {steps:,} steps x {n_dir} direction(s) it would make over "
            f"{ctx.budget.max_graph_items:,} tensors and operators, the limit "
            "(LoadBudget.max_graph_items); shorten the sequence with input_shapes")
    ctx.check_alloc("unrolled recurrent weights", int(w.nbytes + r.nbytes) * 2)
    em = _Emitter(ctx, node.outputs[0] or node.name)

    # every step's input, time-major: [T * B, I]
    x = ctx.tensor(x_name, layout.identity(3))
    if layout_ == 1:
        tm = em.op("TRANSPOSE", [x, ctx.int32(f"{em.base}/time_major", (1, 0, 2))],
                   (steps, batch, x_shape[2]), "x_time_major")
    else:
        tm = x
    x2 = em.reshape(tm, (steps * batch, x_shape[2]), "x_rows")

    dirs = []
    for d in range(n_dir):
        bias = np.zeros(2 * gates * hidden, np.float32) if b is None else b[d].astype(np.float32)
        dirs.append(_Direction(
            w[d].astype(np.float32), r[d].astype(np.float32), bias[:gates * hidden],
            bias[gates * hidden:],
            _state(ctx, node.input(5), d, layout_, em, "h0"),
            _state(ctx, node.input(6), d, layout_, em, "c0") if op == "LSTM" else None,
            reverse=direction == "reverse" or d == 1,
            peep=peep[d].astype(np.float32) if peep is not None and np.any(peep[d]) else None))

    hs_all: list[list[Tensor]] = []
    last_h: list[Tensor] = []
    last_c: list[Tensor] = []
    for d, dr in enumerate(dirs):
        tag = f"d{d}"
        cell = {"LSTM": _lstm_steps, "GRU": _gru_steps, "RNN": _rnn_steps}[op]
        hs, h, c = cell(em, node, dr, x2, steps, batch, hidden, tag)
        hs_all.append(hs)
        last_h.append(h)
        if c is not None:
            last_c.append(c)

    def stack(states: list[Tensor], tag: str) -> Tensor:
        # [D, B, H] (layout 0) or [B, D, H] (layout 1)
        if layout_ == 0:
            parts = [em.reshape(s, (1, batch, hidden), f"{tag}{k}") for k, s in enumerate(states)]
            return em.concat(parts, 0, tag)
        parts = [em.reshape(s, (batch, 1, hidden), f"{tag}{k}") for k, s in enumerate(states)]
        return em.concat(parts, 1, tag)

    if node.output_used(0):
        per_dir = []
        for d, hs in enumerate(hs_all):
            if layout_ == 0:  # Y [T, D, B, H]
                parts = [em.reshape(h, (1, 1, batch, hidden), f"y{d}_{t}")
                         for t, h in enumerate(hs)]
                per_dir.append(em.concat(parts, 0, f"y{d}"))
            else:  # Y [B, T, D, H]
                parts = [em.reshape(h, (batch, 1, 1, hidden), f"y{d}_{t}")
                         for t, h in enumerate(hs)]
                per_dir.append(em.concat(parts, 1, f"y{d}"))
        y = em.concat(per_dir, 1 if layout_ == 0 else 2, "y")
        ctx.define(node.outputs[0], y, layout.identity(4))
    if node.output_used(1):
        ctx.define(node.outputs[1], stack(last_h, "y_h"), layout.identity(3))
    if op == "LSTM" and node.output_used(2):
        ctx.define(node.outputs[2], stack(last_c, "y_c"), layout.identity(3))


def _order(dr: _Direction, steps: int) -> list[int]:
    return list(range(steps - 1, -1, -1)) if dr.reverse else list(range(steps))


def _projected(em: _Emitter, x2: Tensor, w: np.ndarray, b: np.ndarray, steps: int,
               batch: int, tag: str) -> list[Tensor]:
    """x_t W^T + b for every step t: one FULLY_CONNECTED, then SPLIT into [B, n] per step."""
    n = w.shape[0]
    proj = em.fc(x2, w, b, f"{tag}_xw")
    if steps == 1:
        return [proj]
    parts = em.split(em.reshape(proj, (steps, batch * n), f"{tag}_xw_steps"), 0, steps,
                     f"{tag}_xw_t")
    return [em.reshape(p, (batch, n), f"{tag}_x{t}") for t, p in enumerate(parts)]


def _lstm_steps(em: _Emitter, node: Node, dr: _Direction, x2: Tensor, steps: int, batch: int,
                hidden: int, tag: str) -> tuple[list[Tensor], Tensor, Tensor]:
    xs = _projected(em, x2, dr.w, dr.wb + dr.rb, steps, batch, tag)
    r = em.weights(dr.r, f"{tag}_r")
    peep = np.zeros(3 * hidden, np.float32) if dr.peep is None else dr.peep
    peep_i, peep_o, peep_f = (em.weights(peep[k * hidden:(k + 1) * hidden], f"{tag}_p{k}")
                              for k in range(3))
    h, c = dr.h0, dr.c0
    hs: list[Tensor | None] = [None] * steps
    for t in _order(dr, steps):
        s = f"{tag}_t{t}"
        g = xs[t] if h is None else em.binary("ADD", xs[t], em.fc_shared(h, r, None, f"{s}_hr"),
                                              f"{s}_gates")
        gi, go, gf, gc = em.split(g, 1, 4, f"{s}_gate")  # ONNX order: i, o, f, c
        if dr.peep is not None and c is not None:  # i += P_i * c, f += P_f * c
            gi = em.binary("ADD", gi, em.binary("MUL", c, peep_i.get(), f"{s}_pi"), f"{s}_gi")
            gf = em.binary("ADD", gf, em.binary("MUL", c, peep_f.get(), f"{s}_pf"), f"{s}_gf")
        i = em.unary("LOGISTIC", gi, f"{s}_i")
        cand = em.unary("TANH", gc, f"{s}_cand")
        ic = em.binary("MUL", i, cand, f"{s}_ic")
        if c is None:
            c = ic
        else:
            f = em.unary("LOGISTIC", gf, f"{s}_f")
            c = em.binary("ADD", em.binary("MUL", f, c, f"{s}_fc"), ic, f"{s}_c")
        if dr.peep is not None:  # o += P_o * c (the new cell state)
            go = em.binary("ADD", go, em.binary("MUL", c, peep_o.get(), f"{s}_po"), f"{s}_go")
        o = em.unary("LOGISTIC", go, f"{s}_o")
        h = em.binary("MUL", o, em.unary("TANH", c, f"{s}_tanh_c"), f"{s}_h")
        hs[t] = h
    assert h is not None and c is not None
    return [v for v in hs if v is not None], h, c


def _gru_steps(em: _Emitter, node: Node, dr: _Direction, x2: Tensor, steps: int, batch: int,
               hidden: int, tag: str) -> tuple[list[Tensor], Tensor, None]:
    lbr = int(node.attr("linear_before_reset", 0))
    hh = hidden
    # z and r take both biases; the candidate takes Rb inside (r * (h R^T + Rb)) when
    # linear_before_reset, else it is outside the reset and folds into the input projection
    xzr = _projected(em, x2, dr.w[:2 * hh], dr.wb[:2 * hh] + dr.rb[:2 * hh], steps, batch,
                     f"{tag}_zr")
    xh = _projected(em, x2, dr.w[2 * hh:], dr.wb[2 * hh:] + (0 if lbr else dr.rb[2 * hh:]),
                    steps, batch, f"{tag}_n")
    rh_bias = dr.rb[2 * hh:]
    r_zr = em.weights(dr.r[:2 * hh], f"{tag}_r_zr")
    r_n = em.weights(dr.r[2 * hh:], f"{tag}_r_n")
    h = dr.h0
    hs: list[Tensor | None] = [None] * steps
    for t in _order(dr, steps):
        s = f"{tag}_t{t}"
        g = xzr[t] if h is None else em.binary(
            "ADD", xzr[t], em.fc_shared(h, r_zr, None, f"{s}_hr"), f"{s}_zr")
        gz, gr = em.split(g, 1, 2, f"{s}_gate")
        z = em.unary("LOGISTIC", gz, f"{s}_z")
        rg = em.unary("LOGISTIC", gr, f"{s}_r")
        if h is None:
            pre = xh[t] if not lbr or not np.any(rh_bias) else em.binary(
                "ADD", xh[t], em.binary("MUL", rg, em.ctx.constant(f"{em.base}/{s}_rb",
                                                                   rh_bias), f"{s}_rrb"),
                f"{s}_pre")
        elif lbr:
            rec = em.fc_shared(h, r_n, rh_bias, f"{s}_hn")
            pre = em.binary("ADD", xh[t], em.binary("MUL", rg, rec, f"{s}_rrec"), f"{s}_pre")
        else:
            rec = em.fc_shared(em.binary("MUL", rg, h, f"{s}_rh"), r_n, None, f"{s}_hn")
            pre = em.binary("ADD", xh[t], rec, f"{s}_pre")
        n = em.unary("TANH", pre, f"{s}_n")
        if h is None:  # h = (1 - z) * n
            h = em.binary("SUB", n, em.binary("MUL", z, n, f"{s}_zn"), f"{s}_h")
        else:  # h = n + z * (h - n)
            h = em.binary("ADD", n, em.binary("MUL", z, em.binary("SUB", h, n, f"{s}_hmn"),
                                              f"{s}_zd"), f"{s}_h")
        hs[t] = h
    assert h is not None
    return [v for v in hs if v is not None], h, None


def _rnn_steps(em: _Emitter, node: Node, dr: _Direction, x2: Tensor, steps: int, batch: int,
               hidden: int, tag: str) -> tuple[list[Tensor], Tensor, None]:
    xs = _projected(em, x2, dr.w, dr.wb + dr.rb, steps, batch, tag)
    r = em.weights(dr.r, f"{tag}_r")
    h = dr.h0
    hs: list[Tensor | None] = [None] * steps
    for t in _order(dr, steps):
        s = f"{tag}_t{t}"
        pre = xs[t] if h is None else em.binary("ADD", xs[t],
                                                em.fc_shared(h, r, None, f"{s}_hr"), f"{s}_pre")
        h = em.unary("TANH", pre, f"{s}_h")
        hs[t] = h
    assert h is not None
    return [v for v in hs if v is not None], h, None
