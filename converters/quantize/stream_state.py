"""Recurrent state that a streaming model carries between calls: its int8 range gets a margin.

A voice-activity net is called on 32 ms chunks and hands its LSTM state back (silero-vad: input
`state` -> output `stateN`; openWakeWord's silero v4: `c` -> `cn`). The cell state integrates
over the stream (c_t = f * c_{t-1} + i * g: nothing bounds it but the gates), so the chunks a
calibration sees do not reach what a longer or louder stream does, and every value beyond the
calibrated range is clipped, in the state read and in the state written back. Measured on
silero_vad_16k_op15 (32 calibration chunks, 32 held-out chunks of another stream): the held-out
cell state reached |c| = 13.3 against 9.9 calibrated; 20 of 4096 values (0.5%) were clipped and
made 91% of the state output's error (17.7 dB; 25.8 dB without them).

`state_tensors` finds the tensors that carry such a state: a model input and a model output of
the same shape where the output is computed from the input through ops that neither weigh nor
bound it (no weighted layer, no LOGISTIC / TANH / SOFTMAX: the hidden state h = o * tanh(c) is
bounded and keeps its range), and where the path is gated: a MUL on it takes its other operand
from a LOGISTIC (the forget gate f in c_t = f * c_{t-1} + ...; GRU's update gate z). Without the
gate a path is a residual connection (y = x + block(x) of a network whose input and output have
one shape), not a state.

What the INT8 export does with them, by default (TFLite's own LSTM quantisation keeps the cell
state in int16 for the same reason): the layers that write them, and the TANH that reads the
cell state, run 16x8 (`plan_16x8`: int16 activations, int8 weights, LiteRT's builtin kernels),
and their int16 ranges are `STATE_MARGIN` times the calibrated ones (`widen`: 65,535 levels
make the margin free). A margin in int8 is not free: one step 1.5x coarser on openWakeWord's
silero v4 cell state cost its hidden-state output 3.5 dB, so int8 ranges are left as they are.
Measured (32 calibration chunks, 8 held-out): silero_vad_16k_op15 worst output 17.5 -> 21.4 dB
(stateN 17.5 -> 27.0), oww_silero_vad_v4 19.0 -> 27.4 dB (cn 21.1 -> 43.2).
"""

from __future__ import annotations

from collections.abc import Mapping

from sdk.converters.ir import Graph, Model, Operator, Tensor
from sdk.converters.quantize.int16x8 import widen_layers
from sdk.converters.quantize.plan import PrecisionPlan, layer_name
from sdk.converters.quantize.rules import OP_RULES, WEIGHTED

#: the factor a streamed state's calibrated int16 range is widened by (the held-out cell state
#: of silero_vad_16k_op15 reached 1.34x the calibrated extreme; in int16 the step stays ~1e-3)
STATE_MARGIN = 4.0
#: why the layers that carry a streamed state run 16x8 (the plan's notes, the export's notes)
REASON = ("carries a recurrent state between calls (an LSTM cell state): 16x8, as TFLite "
          "quantises an LSTM's cell state in int16; a streamed state drifts beyond the "
          "calibrated range, and int8 has no room for a margin")
#: why an LSTM / GRU layer runs 16x8
CELL_REASON = ("a recurrent cell (LSTM / GRU) sums its state into itself every step: 16x8, as "
               "TFLite quantises an LSTM's cell state in int16; int8 rounds the state anew at "
               "every step (oww_hey_mycroft's two Keras LSTMs: 19.8 dB in int8, 34.5 dB 16x8)")


def _carries(op: Operator) -> bool:
    """Whether a state passes through `op` unbounded and unweighted."""
    if op.type in WEIGHTED or op.type == "BATCH_MATMUL":
        return False
    rule = OP_RULES.get(op.type)
    return rule is not None and rule.kind in ("compute", "same_scale")


#: ops a gate's value passes through unchanged between its LOGISTIC and the MUL that applies it
_GATE_MOVES = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "SLICE",
                         "STRIDED_SLICE", "SPLIT", "SPLIT_V", "GATHER", "UNPACK"})


def _from_gate(t: Tensor, producers: Mapping[Tensor, Operator], depth: int = 6) -> bool:
    """Whether `t` is a LOGISTIC's output, directly or moved by `_GATE_MOVES` ops."""
    op = producers.get(t)
    while op is not None and depth > 0:
        if op.type == "LOGISTIC":
            return True
        if op.type not in _GATE_MOVES or not op.inputs or op.inputs[0] is None:
            return False
        op = producers.get(op.inputs[0])
        depth -= 1
    return False


def _gated(path: dict[int, Tensor], producers: Mapping[Tensor, Operator]) -> bool:
    """Whether a MUL on `path` multiplies it by a gate (an operand off the path from a
    LOGISTIC)."""
    for t in path.values():
        op = producers.get(t)
        if op is None or op.type != "MUL":
            continue
        if any(x is not None and id(x) not in path and _from_gate(x, producers)
               for x in op.inputs):
            return True
    return False


def state_tensors(g: Graph) -> set[Tensor]:
    """The tensors on a gated carrying path (`_carries`, `_gated`) from a model input to a
    model output of the same shape, both ends included."""
    consumers = g.consumers()
    producers = g.producers()
    out: set[Tensor] = set()
    outputs = [t for t in g.outputs if not t.is_constant]
    for src in g.inputs:
        ends = [t for t in outputs if tuple(t.shape) == tuple(src.shape) and t is not src]
        if not ends:
            continue
        # forward: what the input reaches through carrying ops
        reach: set[int] = {id(src)}
        frontier = [src]
        while frontier:
            t = frontier.pop()
            for op in consumers.get(t, []):
                if not _carries(op):
                    continue
                for o in op.outputs:
                    if id(o) not in reach:
                        reach.add(id(o))
                        frontier.append(o)
        for end in ends:
            if id(end) not in reach:
                continue
            # backward from the output, inside what the input reaches
            path: dict[int, Tensor] = {id(end): end}
            back = [end]
            while back:
                t = back.pop()
                op = producers.get(t)
                if op is None or not _carries(op):
                    continue
                for x in op.inputs:
                    if x is not None and not x.is_constant and id(x) in reach \
                            and id(x) not in path:
                        path[id(x)] = x
                        back.append(x)
            if _gated(path, producers):
                out.update(path.values())
    return out


def widen(g: Graph, ranges: Mapping[Tensor, tuple[float, float]]
          ) -> tuple[dict[Tensor, tuple[float, float]], list[str]]:
    """`ranges` with every streamed-state tensor's range times `STATE_MARGIN`, and the names of
    the tensors widened."""
    state = state_tensors(g)
    new = dict(ranges)
    names = []
    for t in state:
        if t in new:
            lo, hi = new[t]
            new[t] = (lo * STATE_MARGIN, hi * STATE_MARGIN)
            names.append(t.name)
    return new, sorted(names)


def recurrent_layers(g: Graph) -> set[str]:
    """The layers (ops sharing one layer name: an imported LSTM / GRU node unrolled) that sum a
    state into itself from step to step: an ADD reading a MUL of the same layer that reads an
    earlier ADD of that layer (c_t = f * c_{t-1} + i * g; GRU: h_t = z * h_{t-1} + ...)."""
    producers = g.producers()
    found: set[str] = set()
    for add in g.operators:
        if add.type != "ADD":
            continue
        name = layer_name(add)
        for x in add.inputs:
            mul = producers.get(x) if x is not None else None
            if mul is None or mul.type != "MUL" or layer_name(mul) != name:
                continue
            if any(y is not None and (p := producers.get(y)) is not None and p.type == "ADD"
                   and p is not add and layer_name(p) == name for y in mul.inputs):
                found.add(name)
    return found


def plan_16x8(model: Model, plan: PrecisionPlan,
              user_layers: Mapping[str, object] | None = None) -> tuple[PrecisionPlan, list[str]]:
    """`plan` with the layers that write a streamed state (and the TANH that reads it) at 16x8,
    and one note per layer. Layers the user chose, or that the plan does not give plain int8,
    keep theirs; an op without an int16 kernel stays as it is."""
    g = model.main
    state = state_tensors(g)
    cells = recurrent_layers(g)
    if not state and not cells:
        return plan, []
    producers = g.producers()
    consumers = g.consumers()
    ops: list[tuple[Operator, str]] = []
    for t in state:
        if t in producers:
            ops.append((producers[t], REASON))
        ops += [(u, REASON) for u in consumers.get(t, []) if u.type == "TANH"]
    ops += [(op, CELL_REASON) for op in g.operators if layer_name(op) in cells]
    return widen_layers(plan, ((layer_name(op), [op], why) for op, why in ops), user_layers)


__all__ = ["CELL_REASON", "REASON", "STATE_MARGIN", "plan_16x8", "recurrent_layers",
           "state_tensors", "widen"]
