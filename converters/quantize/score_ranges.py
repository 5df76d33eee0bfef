"""Score outputs (a LOGISTIC or TANH that is a model output): a score that calibration never
saw cross its midpoint can still cross it.

LiteRT's int8 LOGISTIC writes its output at the fixed scale 1/256 (0 .. 255/256) and TANH at
1/128 (-1 .. 127/128), whatever calibration saw; but its int8 *input* takes the calibrated
range, and the output can only show what that range lets in. A hand-presence flag whose
calibration images held no hand saw logits up to -0.2 only: the input range ended at 0 (it
must contain 0), so every logit above it read as 0 and the quantised flag could never exceed
0.5, whatever the image (mp_hand_landmark_full: a float 0.86 came out as exactly 0.5). The
samples a user calibrates with rarely cover every answer a score can give.

So where such an op stays int8, its output is what the model returns (directly or through
ops that only reshape it), and its calibrated input range ends at 0 on one side (the end is not
data: a range must contain 0), the score could never cross its midpoint (0.5 for LOGISTIC, 0
for TANH), the usual decision threshold. That side is widened to the input whose image is the
last output code on that side: logit(255/256) = 5.54 (or logit(0.25/256) = -6.93) for LOGISTIC,
atanh(127/128) = 2.77 (atanh(-1 + 0.25/128) = -3.47) for TANH. A side that calibration did
reach keeps its range: widening it too cost basic-pitch's note outputs 0.4 dB (27.9 -> 27.4 dB,
one output 36.1 -> 33.2) for no gain on the corpus. Tensors inside the network (an SE block's
gate) keep their calibrated range.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping

from sdk.converters.ir import Graph, Model, Tensor
from sdk.converters.quantize.calibrate import Calibration
from sdk.converters.quantize.plan import PrecisionPlan, layer_name

#: op -> the input interval whose image covers every code of its fixed int8 output
REACH: dict[str, tuple[float, float]] = {
    "LOGISTIC": (math.log(0.25 / 255.75), math.log(255.0)),
    "TANH": (math.atanh(-1.0 + 0.25 / 128), math.atanh(127.0 / 128)),
}
#: ops between a score and the model output that only reshape it
_RESHAPING = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS"})


def returned_tensors(graph: Graph) -> set[int]:
    """ids of the model outputs and of the tensors they show reshaped (walking back through
    RESHAPE / SQUEEZE / EXPAND_DIMS whose output nothing else reads)."""
    producers = {id(t): op for op in graph.operators for t in op.outputs if t is not None}
    consumers = graph.consumers()
    seen: set[int] = set()
    frontier = [t for t in graph.outputs if t is not None]
    while frontier:
        t = frontier.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        op = producers.get(id(t))
        if op is None or op.type not in _RESHAPING or not op.inputs or op.inputs[0] is None:
            continue
        x = op.inputs[0]
        if len(consumers.get(x, [])) == 1 and not x.is_constant:
            frontier.append(x)
    return seen


def _chosen(name: str, user_layers: Mapping[str, object] | None) -> bool:
    """Whether the user's per-layer precisions name this layer (exactly or by pattern)."""
    return any(key == name or fnmatch.fnmatchcase(name, key) for key in (user_layers or {}))


def reach_output_codes(model: Model, plan: PrecisionPlan, cal: Calibration,
                       user_layers: Mapping[str, object] | None = None) -> list[str]:
    """Widen, in `cal.ranges`, the side that ends at 0 of the input range of every int8 score op
    whose output the model returns, so that the scores beyond the midpoint are reachable; one
    note per op widened. Ops the plan keeps
    wider than int8 activations, and layers the user chose a precision for, are left alone."""
    g = model.main
    returned = returned_tensors(g)
    notes = []
    for op in g.operators:
        reach = REACH.get(op.type)
        if reach is None or not op.outputs or id(op.outputs[0]) not in returned:
            continue
        name = layer_name(op)
        precision = plan.for_op(op)
        if _chosen(name, user_layers) or precision.activations != "int8":
            continue
        x: Tensor | None = op.inputs[0] if op.inputs else None
        if x is None or x not in cal.ranges:
            continue
        lo, hi = cal.ranges[x]
        # a side that ends at 0 was never reached: the score could not cross its midpoint
        wide = (min(lo, reach[0]) if lo >= 0 else lo, max(hi, reach[1]) if hi <= 0 else hi)
        if wide == (lo, hi):
            continue
        cal.ranges[x] = wide
        notes.append(f"{name}: {op.type} output {op.outputs[0].name!r} is a model output; its "
                     f"input range widened from [{lo:.3g}, {hi:.3g}] to [{wide[0]:.3g}, "
                     f"{wide[1]:.3g}] so that every int8 output code is reachable (calibration "
                     "never saw the scores cross the midpoint)")
    return notes
