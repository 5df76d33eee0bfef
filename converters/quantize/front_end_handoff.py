"""The layers that read a float signal-processing front end's output run 16x8.

A front end that computes a LOG's or SQRT's input from the model inputs (an STFT as a
convolution, power, magnitude, mel) stays float by default (`int8.keep_log_front_ends`): one
int8 scale rounds a spectrum's quiet bins to 0. Its output, the magnitude or log spectrum, is
then handed to the network, and the first layers read it in int8: the same 60+ dB of dynamic
range in 255 steps. Measured on silero_vad_16k_op15 (32 calibration chunks, 8 held-out): the
float magnitude spectrum rounded to int8 is at 30.6 dB before any learned layer; after the
encoder's first convolution and ReLU 26.3 dB, after four 19.3 dB, and the speech probability at
21.6 dB. With the first encoder convolution 16x8 (int16 activations: the spectrum in 65,535
steps; int8 weights, LiteRT's builtin kernels) the speech probability is 28.7 dB (the state
output 28.0 -> 32.1), for 688 bytes. The speech probability is one value per chunk, so 8
held-out chunks make a noisy figure; over 64 held-out chunks the worst output goes 28.3 ->
32.7 dB (silero 16k / v6) and 25.0 -> 27.5 dB (oww_silero_vad_v4: a log spectrum centred by
its running mean, a subtraction that cancels most of the value). The cost is time: LiteRT runs
int16 convolutions in its reference kernels, not XNNPACK (silero 16k: 0.47 -> 0.97 ms per
32 ms chunk, 1 thread, on a loaded host). A float first convolution instead reads 24.7 dB at
+145 KB: its int8 output is rounded again.

`handoff_layers` finds, for every float front end, the ops that read its output up to and
including the first weighted layer on each path (CONV_2D, FULLY_CONNECTED, ...): data movement
and element-wise arithmetic in between (a mean subtracted, frames sliced and stacked) carry the
spectrum's range too. A path stops at an op with a fixed output scale (LOGISTIC, TANH), at one
without an int8 kernel (it stays float) and after `MAX_HANDOFF_OPS` ops. `plan_16x8` gives those
layers 16x8 unless the user or the plan chose their precision.
"""

from __future__ import annotations

from collections.abc import Mapping

from sdk.converters.ir import Graph, Model, Operator
from sdk.converters.quantize.int8 import (
    LOG_LIKE,
    SIGNAL_FRONT_END_OPS,
    SIGNAL_OPS,
    input_cone,
)
from sdk.converters.quantize.int16x8 import widen_layers
from sdk.converters.quantize.plan import PrecisionPlan, layer_name
from sdk.converters.quantize.rules import OP_RULES, WEIGHTED

#: the most ops a hand-off region may hold per front end (the weighted layers included)
MAX_HANDOFF_OPS = 32

REASON = ("reads the output of a float signal-processing front end ({front}): 16x8 (int16 "
          "activations, int8 weights), as the spectrum's quiet bins need more than 255 steps "
          "(silero_vad_16k_op15: speech probability 21.6 dB with its first convolution int8, "
          "28.7 dB with it 16x8)")


def _signal(op: Operator) -> bool:
    return op.type in SIGNAL_OPS \
        and op.attrs.get("fused_activation_function", "NONE") in (None, "NONE")


def float_front_ends(g: Graph) -> list[tuple[Operator, list[Operator]]]:
    """Each LOG / SQRT whose input the model inputs compute through a signal-processing front
    end that the INT8 rewrite keeps float (`int8.keep_log_front_ends`), with that front end:
    at most `SIGNAL_FRONT_END_OPS` ops, all signal processing (`int8.SIGNAL_OPS`, no fused
    activation) and one of them a linear transform (a weighted op: an STFT, a filter bank).
    A network's LayerNorm close to the input (magika: one-hot bytes, a dense layer, GELU, then
    the variance's SQRT) is not one: its front end holds activations."""
    producers = {id(t): op for op in g.operators for t in op.outputs}
    inputs = {id(t) for t in g.inputs}
    found = []
    for op in g.operators:
        if op.type not in LOG_LIKE:
            continue
        cone = input_cone(op, producers, inputs, SIGNAL_FRONT_END_OPS)
        if cone is None or not all(_signal(c) for c in cone) \
                or not any(c.type in WEIGHTED or c.type == "BATCH_MATMUL" for c in cone):
            continue
        found.append((op, cone))
    return found


def handoff_layers(g: Graph) -> dict[str, str]:
    """The layers (names) that read a float front end's output, up to and including the first
    weighted layer on each path, each with the LOG / SQRT whose front end it reads."""
    consumers = g.consumers()
    front_ends = float_front_ends(g)
    front: set[int] = set()
    for log_op, cone in front_ends:
        front.add(id(log_op))
        front.update(id(c) for c in cone)
    out: dict[str, str] = {}
    for log_op, cone in front_ends:
        frontier = [t for op in (log_op, *cone) for t in op.outputs
                    if any(id(u) not in front for u in consumers.get(t, []))]
        seen: set[int] = set()
        while frontier and len(seen) < MAX_HANDOFF_OPS:
            t = frontier.pop()
            for user in consumers.get(t, []):
                if id(user) in front or id(user) in seen:
                    continue
                rule = OP_RULES.get(user.type)
                if rule is None or rule.kind not in ("compute", "same_scale"):
                    continue  # float, or a fixed output scale: the path ends
                seen.add(id(user))
                out.setdefault(layer_name(user), layer_name(log_op))
                if user.type not in WEIGHTED and user.type != "BATCH_MATMUL":
                    frontier.extend(user.outputs)
    return out


def plan_16x8(model: Model, plan: PrecisionPlan,
              user_layers: Mapping[str, object] | None = None) -> tuple[PrecisionPlan, list[str]]:
    """`plan` with the layers that read a float front end's output (`handoff_layers`) at 16x8,
    and one note per layer. Layers the user chose, or that the plan does not give plain int8,
    keep theirs; a layer with an op that has no int16 kernel stays as it is."""
    g = model.main
    layers_found = handoff_layers(g)
    if not layers_found:
        return plan, []
    by_layer: dict[str, list[Operator]] = {}
    for op in g.operators:
        if layer_name(op) in layers_found:
            by_layer.setdefault(layer_name(op), []).append(op)
    return widen_layers(plan, ((name, by_layer.get(name, []), REASON.format(front=front))
                               for name, front in layers_found.items()), user_layers)


__all__ = ["MAX_HANDOFF_OPS", "REASON", "float_front_ends", "handoff_layers", "plan_16x8"]
