"""The sub-model that computes some tensors of a model.

Several quantisation steps need the float values of inner tensors on the calibration samples and
get them by running, in LiteRT, the model cut down to what computes those tensors: GPTQ's
sequential inputs (`gptq`), the stem's layer outputs (`stem`) and the output heads' inputs
(`head_rounding`). `computing` is that cut, made one way for all of them. `upstream_ops` lists
the operators an output depends on (the precision planner's and the fidelity warnings' layers
on the way to an output).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from sdk.converters.ir import Model, Operator, Tensor


def computing(model: Model, tensors: Sequence[Tensor]) -> Model:
    """`model` with its main graph cut down to the operators that compute `tensors`, which
    become its outputs, in their order (a tensor named twice is returned once). The cut shares
    its tensors and operators with `model` (which is left unchanged); the other graphs (the
    bodies of control-flow operators) and the metadata are kept, the signatures dropped (they
    name the old outputs). A tensor that is a graph input or a constant computes nothing: it is
    returned as it is."""
    graph = model.main
    wanted: list[Tensor] = []
    for t in tensors:
        if all(t is not w for w in wanted):
            wanted.append(t)
    sub = copy.copy(graph)
    sub.operators, sub.tensors = list(graph.operators), list(graph.tensors)
    sub.inputs, sub.outputs = list(graph.inputs), wanted
    sub.prune()
    cut = copy.copy(model)
    cut.graphs = [sub if g is graph else g for g in model.graphs]
    cut.signatures = []
    return cut


def upstream_ops(model: Model, output: Tensor) -> list[Operator]:
    """The operators of the main graph that `output` depends on, each once, from `output` back
    (depth first)."""
    producers = model.main.producers()
    seen: dict[int, Operator] = {}
    stack = [output]
    while stack:
        t = stack.pop()
        op = producers.get(t)
        if op is None or id(op) in seen:
            continue
        seen[id(op)] = op
        stack.extend(x for x in op.inputs if x is not None and not x.is_constant)
    return list(seen.values())
