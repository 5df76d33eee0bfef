"""If with a constant condition whose taken branch computes on model inputs: the branch is
inlined into the main graph (what voice-activity exports such as silero-vad need: the condition
is computed from shapes or a fixed sample rate, the branch holds the network).

An If whose inputs and outer reads are all constant is folded by `control` instead; an If whose
condition depends on an input stays unsupported. The branch's nodes are checked and folded
like the main graph's (the caller queues them); their number counts against
`LoadBudget.max_graph_items` with the main graph's.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sdk.base.errors import ModelFormatError
from sdk.converters.onnx import control
from sdk.converters.onnx.graph import Node, ValueInfo


def refusal(node: Node, nodes: list[Node], values: Mapping[str, ValueInfo]) -> str:
    """Why an If whose condition is not a constant is refused: the model inputs it depends on,
    and what to do."""
    producers = {o: n for n in nodes for o in n.outputs if o}
    seen: set[str] = set()
    inputs: list[str] = []
    todo = [node.inputs[0]] if node.inputs and node.inputs[0] else []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        producer = producers.get(name)
        if producer is not None:
            todo.extend(n for n in producer.inputs if n)
        elif (v := values.get(name)) is not None and not v.is_const:
            inputs.append(name)
    on = f"model input(s) {sorted(inputs)}" if inputs else "a model input"
    return (f"its condition is not a constant (it depends on {on}): a branch is only taken when "
            "the condition folds to a constant; fix that input (a sample rate, a mode flag) by "
            "storing it as an initializer of the same name")


def constant_condition(node: Node, values: Mapping[str, ValueInfo], label: str = ""
                       ) -> bool | None:
    """The condition of an If node when it is a constant that is not folded with the node
    (some outer read of a branch is not constant); None otherwise."""
    if node.op_type != "If" or node.domain or node.proto is None or not node.inputs:
        return None
    cond = values.get(node.inputs[0]) if node.inputs[0] else None
    if cond is None or cond.const is None:
        return None
    if control.outer_values_constant(node, values):
        return None  # folded whole by control.run
    arr = np.asarray(cond.const)
    if arr.size != 1:
        raise ModelFormatError(f"node {node.name!r} (If): the condition must hold one value, "
                               f"not {arr.size}", path=label)
    return bool(arr.reshape(-1)[0])


def inline(node: Node, taken: bool, values: dict[str, ValueInfo], label: str,
           index: int) -> list[Node]:
    """The nodes that replace If `node` (its `taken` branch): branch initializers become
    constants in `values`, and an Identity per output gives the If's outputs their values."""
    from onnx import helper, numpy_helper

    from sdk.converters.onnx.fold import topological

    key = "then_branch" if taken else "else_branch"
    graph = next((a.g for a in node.proto.attribute if a.name == key and a.HasField("g")), None)
    if graph is None:
        raise ModelFormatError(f"node {node.name!r} (If) has no {key!r} graph", path=label)
    if len(graph.output) != len(node.outputs):
        raise ModelFormatError(f"node {node.name!r} (If): the {key} makes {len(graph.output)} "
                               f"outputs for {len(node.outputs)}", path=label)
    made = {t.name for t in graph.initializer} | {o for n in graph.node for o in n.output if o}
    shadowed = sorted(made & set(values))
    if shadowed:
        raise ModelFormatError(f"node {node.name!r} (If): its {key} redefines "
                               f"{shadowed[:3]}, which the outer graph already defines",
                               path=label)
    for t in graph.initializer:
        try:
            values[t.name] = ValueInfo.constant(numpy_helper.to_array(t))
        except Exception as exc:
            raise ModelFormatError(f"node {node.name!r} (If): {key} initializer {t.name!r} "
                                   f"is corrupt: {exc}", path=label) from exc
    protos = topological(list(graph.node), set(values), label)
    nodes = []
    for k, proto in enumerate(protos):
        n = Node.from_proto(proto, index + k)
        n.name = f"{node.name}/{n.name}"
        nodes.append(n)
    for k, (inner, outer) in enumerate(zip(graph.output, node.outputs, strict=True)):
        if not outer:
            continue
        proto = helper.make_node("Identity", [inner.name], [outer],
                                 name=f"{node.name}/{key}_out{k}")
        nodes.append(Node.from_proto(proto, 0))
    return nodes


def expand(node: Node, values: dict[str, ValueInfo], label: str, index: int) -> list[Node] | None:
    """`inline` when `node` is an If with a constant condition that is not folded whole."""
    taken = constant_condition(node, values, label)
    if taken is None:
        return None
    return inline(node, taken, values, label, index)


__all__ = ["constant_condition", "expand", "inline", "refusal"]
