"""The statistics of a decomposed LayerNorm: the ops an INT8 export keeps in float by default.

Exporters (PyTorch, Paddle2ONNX, TensorFlow) write LayerNorm as element-wise ops:

    m = MEAN(x)  d = x - m  v = MEAN(d * d)  r = RSQRT(v + eps)  n = d * r   (then * g + b)

(TensorFlow: v = MEAN(SQUARED_DIFFERENCE(x, m))). In int8 every one of these tensors is rounded.
Two of those roundings are unlike a layer's usual noise: r (one 1/std per row) multiplies the
whole row, so its error is a gain error on every element, and its int8 range must hold 0 (a range
[0, max]: a third to a half of the codes unused) and clips every row quieter than the quietest
calibration row; and d is rounded once as d and again as n. ONNX Runtime's QDQ quantiser leaves
these ops (ReduceMean, Sub, Pow, Sqrt, Div) in float and quantises the LayerNorm's input and its
normalised output only. Measured on openWakeWord's hey_jarvis head (two LayerNorms, 64 held-out
samples): the logit's error 0.089 rms with int8 statistics, 0.049 with them in float (0.048 in
ONNX Runtime's QDQ model), 0.056 with them in 16x8.

The affine tail (`* g + b`, g and b constants, each op the only reader of its input) runs in
float with them (`affine_tail`): in int8 the normalised row was rounded three times, as n,
n * g and n * g + b (as ONNX Runtime's QDQ model does: a QDQ pair on each), each rounding
independent noise of about the same size; in float it is rounded once, where the tail ends (a
fused ReLU rides along). hey_jarvis, 256 held-out samples in 32 sets of 8: the logit's error
0.043 -> 0.036 rms (ONNX Runtime 0.046), the median over the sets of the output's SQNR 27.1 ->
30.4 dB (ONNX Runtime 28.9).

`statistics_ops` finds each such chain from its RSQRT; the rewrite (`int8._Rewrite`) runs those
ops in float, each saying why. The ops carry no weights (g and b are stored float: 4 bytes per
channel instead of 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sdk.converters.ir import Graph, Operator, Tensor

#: why each op of the statistics runs in float (the report's fallbacks)
REASON = ("LayerNorm statistics kept in float: its 1/std (one value per row, int8 range [0, max]) "
          "scales the whole row, so its rounding is a gain error on every element, and the "
          "centred row would be rounded twice (ONNX Runtime's QDQ leaves these ops float too); "
          "its affine tail (* g + b) too, so the normalised row is rounded once, at its end")
#: ops that square the centred row: MUL(d, d), SQUARE(d), SQUARED_DIFFERENCE(x, m)
_SQUARES = frozenset({"MUL", "SQUARE", "SQUARED_DIFFERENCE"})


@dataclass
class LayerNormStats:
    """One decomposed LayerNorm's statistics: its RSQRT and the ops from the row mean to the
    normalising MUL and its affine tail (in graph order)."""

    rsqrt: Operator
    ops: list[Operator]

    def describe(self) -> str:
        return f"LayerNorm statistics around {self.rsqrt.name or self.rsqrt.label}"


def _single_reduce(op: Operator | None) -> bool:
    return op is not None and op.type in ("MEAN", "SUM") and bool(op.inputs) \
        and op.inputs[0] is not None and not op.inputs[0].is_constant


def statistics_ops(g: Graph) -> list[LayerNormStats]:
    """Every decomposed LayerNorm in `g` (the patterns of the module docstring)."""
    producers: Mapping[Tensor, Operator] = g.producers()
    consumers = g.consumers()
    order = {id(op): k for k, op in enumerate(g.operators)}
    found: list[LayerNormStats] = []
    for r in g.operators:
        if r.type != "RSQRT" or not r.inputs or r.inputs[0] is None:
            continue
        chain: list[Operator] = [r]
        v = producers.get(r.inputs[0])
        if v is not None and v.type == "ADD" and any(t is not None and t.is_constant
                                                     for t in v.inputs):
            chain.append(v)  # + eps
            v = producers.get(next(t for t in v.inputs if t is not None and not t.is_constant))
        if not _single_reduce(v):
            continue
        assert v is not None
        chain.append(v)
        sq = producers.get(v.inputs[0])
        if sq is None or sq.type not in _SQUARES:
            continue
        chain.append(sq)
        centred: Tensor | None = None
        if sq.type == "MUL":
            a, b = [*sq.inputs, None, None][:2]
            if a is None or a is not b:
                continue
            centred = a
        elif sq.type == "SQUARE":
            centred = sq.inputs[0]
        if centred is not None:  # d = x - m, m = MEAN(x)
            sub = producers.get(centred)
            if sub is None or sub.type != "SUB":
                continue
            m = producers.get(sub.inputs[1]) if len(sub.inputs) > 1 and sub.inputs[1] is not None \
                else None
            if not _single_reduce(m) or m.inputs[0] is not sub.inputs[0]:  # type: ignore[union-attr]
                continue
            chain += [sub, m]  # type: ignore[list-item]
        else:  # SQUARED_DIFFERENCE(x, m)
            m = producers.get(sq.inputs[1]) if len(sq.inputs) > 1 and sq.inputs[1] is not None \
                else None
            if not _single_reduce(m) or m.inputs[0] is not sq.inputs[0]:  # type: ignore[union-attr]
                continue
            chain.append(m)  # type: ignore[arg-type]
        # the normalising products: r times the centred row (or times the row, TensorFlow)
        products = [user for user in consumers.get(r.outputs[0], [])
                    if user.type == "MUL" and user not in chain]
        chain += products
        for product in products:
            chain += affine_tail(product, consumers)
        found.append(LayerNormStats(r, sorted(chain, key=lambda op: order[id(op)])))
    return found


def _const_operand(op: Operator, x: Tensor) -> bool:
    """`op` is a binary op of `x` and a constant."""
    others = [t for t in op.inputs if t is not x]
    return len(op.inputs) == 2 and len(others) == 1 and others[0] is not None \
        and others[0].is_constant


def affine_tail(product: Operator, consumers: Mapping[Tensor, list[Operator]]
                ) -> list[Operator]:
    """The LayerNorm's affine tail after its normalising product: a MUL by a constant (g),
    then an ADD of a constant (b), each the only reader of its input (either may be absent;
    a fused activation rides along). In float the normalised row is rounded once, at the
    tail's output, instead of three times (n, n * g, n * g + b)."""
    tail: list[Operator] = []
    x = product.outputs[0] if product.outputs else None
    for kind in ("MUL", "ADD"):
        users = consumers.get(x, []) if x is not None else []
        if len(users) != 1 or users[0].type != kind or not _const_operand(users[0], x):
            continue
        tail.append(users[0])
        x = users[0].outputs[0] if users[0].outputs else None
    return tail


#: range margin on each decomposed LayerNorm's int8 input and output, as a fraction of the
#: calibrated range's width (`widen_ranges`; the default since 2026-12-07: hey_jarvis's corpus
#: row 24.9 -> 41.8 dB, `benchmarks/results/corpus-2026-12-07.md`); 0: off
RANGE_MARGIN = 0.1


def boundary(stats: LayerNormStats, g: Graph) -> tuple[list[Tensor], list[Tensor]]:
    """The tensors where a LayerNorm's float statistics meet int8: its input (the row the
    statistics read, produced outside the chain) and its outputs (read outside the chain, or
    graph outputs: the end of the affine tail, a fused ReLU included)."""
    inside = {id(op) for op in stats.ops}
    made = {id(t) for op in stats.ops for t in op.outputs if t is not None}
    consumers = g.consumers()
    outs = {id(t) for t in g.outputs}
    ins: list[Tensor] = []
    for op in stats.ops:
        if op.type in ("MEAN", "SUM") and op.inputs and op.inputs[0] is not None \
                and id(op.inputs[0]) not in made and op.inputs[0] not in ins:
            ins.append(op.inputs[0])
    ends = [t for op in stats.ops for t in op.outputs if t is not None
            and (id(t) in outs or any(id(u) not in inside for u in consumers.get(t, [])))]
    return ins, ends


def widen_ranges(g: Graph, ranges: dict[Tensor, tuple[float, float]], margin: float
                 ) -> dict[Tensor, str]:
    """Widen the int8 range of every decomposed LayerNorm's input and output by `margin` times
    the calibrated width (at each end that is not 0: a ReLU's lower end stays 0), in place;
    returns a note per widened tensor (the report's range notes).

    Why (openWakeWord's hey_jarvis, `benchmarks/results/corpus-2026-12-07.md`): the held-out
    samples that decide a score's SQNR are those beyond the calibration samples, and there the
    LayerNorms' input and output are clipped at the calibrated max (3-13% of held-out samples
    per tensor with 32 calibration samples). A clipped element is the row's largest deviation,
    so the clip shifts the row's mean and variance too; on the decisive held-out sample of the
    corpus set, clipping made -0.068 of the logit's -0.059 error (no clip: -0.005). The margin
    costs a step `1 + 2 * margin` times coarser on those tensors."""
    if margin < 0:
        raise ValueError(f"LayerNorm range margin must be >= 0, not {margin}")
    notes: dict[Tensor, str] = {}
    if margin == 0:
        return notes
    for stats in statistics_ops(g):
        ins, ends = boundary(stats, g)
        for t in (*ins, *ends):
            if t not in ranges:
                continue
            lo, hi = ranges[t]
            width = hi - lo
            ranges[t] = (lo - margin * width if lo < 0 else lo,
                         hi + margin * width if hi > 0 else hi)
            notes[t] = (f"LayerNorm {'input' if t in ins else 'output'}: range widened by "
                        f"{margin:.0%} of its calibrated width at each non-zero end (held-out "
                        "rows beyond calibration are clipped there otherwise)")
    return notes


__all__ = ["RANGE_MARGIN", "REASON", "LayerNormStats", "affine_tail", "boundary",
           "statistics_ops", "widen_ranges"]
