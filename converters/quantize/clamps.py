"""The input interval a clamp with a constant lets through, followed back through LEAKY_RELU.

Keras nets clip their activations with a constant after the activation (openWakeWord's
embedding: LEAKY_RELU(alpha 0.2) then MAXIMUM(x, -0.4), twenty times). Values below the clamp
come out as the clamp, so the tensor before it needs no int8 codes for them, and neither does
the convolution output before the LEAKY_RELU below -0.4 / 0.2 = -2: calibrated at [-7.7, 6.9]
there, its step was 1.6 times coarser than the interval [-2, 6.9] that reaches the output.
`clamp_intervals` gives, per tensor read only by such a chain, the interval it can change the
chain's output in; calibration clips the tensor's range to it (as it does for RELU6's input),
and says so in its notes.
"""

from __future__ import annotations

import math

import numpy as np

from sdk.converters.ir import Graph, Operator, Tensor


def _scalar(t: Tensor | None) -> float | None:
    if t is None or not t.is_constant:
        return None
    data = np.asarray(t.numpy())
    if data.size != 1 or not np.isfinite(data).all():
        return None
    return float(data.reshape(-1)[0])


def _through(op: Operator, x: Tensor, out_interval: tuple[float, float] | None
             ) -> tuple[float, float] | None:
    """The interval of `x` (an input of `op`) that can change `op`'s output."""
    if op.type in ("MAXIMUM", "MINIMUM") and len(op.inputs) == 2:
        other = op.inputs[1] if op.inputs[0] is x else op.inputs[0]
        c = _scalar(other)
        if c is None or other is x:
            return None
        return (c, math.inf) if op.type == "MAXIMUM" else (-math.inf, c)
    if op.type == "LEAKY_RELU" and out_interval is not None:
        alpha = float(op.attrs.get("alpha", 0.2) or 0.0)
        lo, hi = out_interval
        if alpha <= 0.0 or lo >= 0.0 or not math.isfinite(lo):
            return None
        return (lo / alpha, hi)
    return None


def clamp_intervals(g: Graph) -> dict[int, tuple[float, float]]:
    """id(tensor) -> the interval that can reach its only consumer's output, for tensors read
    by one MAXIMUM / MINIMUM with a constant, or by one LEAKY_RELU whose output is such a
    tensor; model outputs are left out."""
    consumers = g.consumers()
    outputs = {id(t) for t in g.outputs}
    found: dict[int, tuple[float, float]] = {}
    for op in reversed(g.operators):
        for x in op.inputs:
            if x is None or x.is_constant or id(x) in outputs or id(x) in found:
                continue
            users = consumers.get(x, [])
            if len(users) != 1 or users[0] is not op:
                continue
            out = op.outputs[0] if op.outputs else None
            interval = _through(op, x, found.get(id(out)) if out is not None else None)
            if interval is not None:
                found[id(x)] = interval
    return found


__all__ = ["clamp_intervals"]
