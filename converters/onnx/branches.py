"""If with a constant condition whose taken branch computes on model inputs: the branch is
inlined into the main graph (what voice-activity exports such as silero-vad need: the condition
is computed from shapes or a fixed sample rate, the branch holds the network).

An If whose inputs and outer reads are all constant is folded by `control` instead. An If whose
condition is computed at run time:
- from a model input that is a setting (an integer or boolean input: a sample rate, a mode
  flag) is refused, naming the input and the fix, `constant_inputs={name: value}`;
- from the data (float inputs: a wake-word head whose score >= 0.5 runs a verifier net) becomes
  both branches, computed every time, and a SELECT_V2 per output (`select`): TFLite's builtin
  ops have no branches. Both branches must make outputs of the same shapes.
The branch's nodes are checked and folded like the main graph's (the caller queues them); their
number counts against `LoadBudget.max_graph_items` with the main graph's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sdk.base.errors import ConversionError, ModelFormatError
from sdk.converters.onnx import control
from sdk.converters.onnx.graph import Node, ValueInfo
from sdk.converters.onnx.order import topological


def condition_inputs(node: Node, producers: Mapping[str, Node],
                     values: Mapping[str, ValueInfo]) -> list[str]:
    """The model inputs the condition of If `node` is computed from."""
    return model_inputs_of(node.inputs[0] if node.inputs else None, producers, values)


def runtime_origin(name: str, producers: Mapping[str, Node],
                   values: Mapping[str, ValueInfo]) -> str:
    """Where a value that is not a constant comes from, for errors: its producer and the model
    inputs it is computed from."""
    producer = producers.get(name)
    inputs = model_inputs_of(name, producers, values)
    made = f"made by node {producer.name!r} ({producer.op_type})" if producer is not None \
        else "a model input"
    return made + (f" from model input(s) {inputs}" if inputs and producer is not None else "")


def model_inputs_of(name: str | None, producers: Mapping[str, Node],
                    values: Mapping[str, ValueInfo]) -> list[str]:
    """The model inputs (values with no producer that are not constants) `name` depends on."""
    seen: set[str] = set()
    inputs: list[str] = []
    todo = [name] if name else []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        producer = producers.get(name)
        if producer is not None:
            todo.extend(n for n in producer.inputs if n)
            if producer.proto is not None:  # outer values a subgraph of the producer reads
                todo.extend(n for g in control.subgraphs(producer.proto)
                            for n in control.outer_names(g))
        elif (v := values.get(name)) is not None and not v.is_const:
            inputs.append(name)
    return sorted(inputs)


def settings(inputs: list[str], values: Mapping[str, ValueInfo]) -> list[str]:
    """The inputs among `inputs` that hold settings (integers or booleans), not data."""
    return [n for n in inputs if (v := values.get(n)) is not None and v.dtype.kind in "iub"]


def refusal(node: Node, nodes: list[Node] | Mapping[str, Node],
            values: Mapping[str, ValueInfo]) -> str:
    """Why an If whose condition is not a constant is refused: the model inputs it depends on,
    and what to do."""
    producers = nodes if isinstance(nodes, Mapping) else {
        o: n for n in nodes for o in n.outputs if o}
    inputs = condition_inputs(node, producers, values)
    fixed = settings(inputs, values) or inputs
    if not fixed:
        return ("its condition is not a constant: a branch is only taken when the condition "
                "folds to a constant")
    example = ", ".join(f"{n!r}: <value>" for n in fixed)
    return (f"its condition is not a constant (it depends on model input(s) {inputs}); fix "
            f"{'that input' if len(fixed) == 1 else 'those inputs'} to the value you run with, "
            f"constant_inputs={{{example}}} (sdk.export / read_onnx / load_model), and the If "
            "folds to the branch that value selects")


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


def _branch(node: Node, key: str, label: str) -> tuple[Any, set[str]]:
    """Branch `key` ("then_branch" / "else_branch") of If `node`, checked to make as many outputs
    as the If, and the names of the values it makes (its initializers and node outputs)."""
    graph = next((a.g for a in node.proto.attribute if a.name == key and a.HasField("g")), None)
    if graph is None:
        raise ModelFormatError(f"node {node.name!r} (If) has no {key!r} graph", path=label)
    if len(graph.output) != len(node.outputs):
        raise ModelFormatError(f"node {node.name!r} (If): the {key} makes {len(graph.output)} "
                               f"outputs for {len(node.outputs)}", path=label)
    made = {t.name for t in graph.initializer} | {o for n in graph.node for o in n.output if o}
    return graph, made


def inline(node: Node, taken: bool, values: dict[str, ValueInfo], label: str,
           index: int) -> list[Node]:
    """The nodes that replace If `node` (its `taken` branch): branch initializers become
    constants in `values`, and an Identity per output gives the If's outputs their values."""
    from onnx import helper, numpy_helper

    key = "then_branch" if taken else "else_branch"
    graph, made = _branch(node, key, label)
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


def runtime_condition(node: Node, values: Mapping[str, ValueInfo],
                      producers: Mapping[str, Node]) -> bool:
    """True for an If (default domain) whose condition is computed at run time from data only
    (no integer or boolean model input in its ancestry): what `select` converts."""
    if node.op_type != "If" or node.domain or node.proto is None or not node.inputs:
        return False
    cond = values.get(node.inputs[0]) if node.inputs[0] else None
    if cond is None or cond.is_const:
        return False
    return not settings(condition_inputs(node, producers, values), values)


@dataclass(frozen=True)
class SelectCheck:
    """The branch outputs one SELECT_V2 picks between: they must have the same shape."""

    if_name: str
    output: str
    then_value: str
    else_value: str

    def check(self, values: Mapping[str, ValueInfo], label: str) -> None:
        a, b = values.get(self.then_value), values.get(self.else_value)
        if a is not None and b is not None and a.shape != b.shape:
            raise ConversionError(
                f"{label}: node {self.if_name!r} (If): its condition is computed at run time, "
                f"so both branches are converted and a select picks output {self.output!r}; "
                f"but the then_branch makes shape {list(a.shape)} and the else_branch "
                f"{list(b.shape)}, and a static graph has one shape per value: export the "
                "model with the branch you need taken (or both branches padded to one shape)")


def select(node: Node, values: dict[str, ValueInfo], label: str, index: int
           ) -> tuple[list[Node], list[SelectCheck]]:
    """The nodes that replace an If with a run-time condition: both branches (their values
    renamed apart), the condition reshaped to a scalar, and a Where per output."""
    from onnx import helper

    cond = values[node.inputs[0]]
    if int(np.prod(cond.shape, dtype=np.int64)) != 1:
        raise ModelFormatError(f"node {node.name!r} (If): the condition must hold one value, "
                               f"not shape {list(cond.shape)}", path=label)
    made: list[Node] = []
    outs: dict[str, list[str]] = {}
    for key in ("then_branch", "else_branch"):
        nodes, names = _inline_renamed(node, key, values, label, index + len(made))
        made += nodes
        outs[key] = names
    shape_name = f"{node.name}/cond_shape"
    values[shape_name] = ValueInfo.constant(np.zeros((0,), np.int64))
    scalar = f"{node.name}/cond"
    made.append(Node.from_proto(helper.make_node("Reshape", [node.inputs[0], shape_name],
                                                 [scalar], name=scalar), index + len(made)))
    checks = []
    for k, outer in enumerate(node.outputs):
        if not outer:
            continue
        then_v, else_v = outs["then_branch"][k], outs["else_branch"][k]
        proto = helper.make_node("Where", [scalar, then_v, else_v], [outer],
                                 name=f"{node.name}/select{k}")
        made.append(Node.from_proto(proto, index + len(made)))
        checks.append(SelectCheck(node.name, outer, then_v, else_v))
    return made, checks


def _inline_renamed(node: Node, key: str, values: dict[str, ValueInfo], label: str,
                    index: int) -> tuple[list[Node], list[str]]:
    """Branch `key` of If `node` as main-graph nodes, every value it makes renamed
    `<if>/<key>/<name>` (the two branches may use the same names); its output value names."""
    from onnx import NodeProto, numpy_helper

    graph, made = _branch(node, key, label)
    rename = {name: f"{node.name}/{key}/{name}" for name in made}
    for t in graph.initializer:
        try:
            values[rename[t.name]] = ValueInfo.constant(numpy_helper.to_array(t))
        except Exception as exc:
            raise ModelFormatError(f"node {node.name!r} (If): {key} initializer {t.name!r} "
                                   f"is corrupt: {exc}", path=label) from exc
    protos = []
    for p in graph.node:
        q = NodeProto()
        q.CopyFrom(p)
        _rename_reads(q, rename)
        q.output[:] = [rename.get(o, o) for o in q.output]
        protos.append(q)
    nodes = []
    for k, proto in enumerate(topological(protos, set(values), label)):
        n = Node.from_proto(proto, index + k)
        n.name = f"{node.name}/{key}/{n.name or n.op_type}"
        nodes.append(n)
    return nodes, [rename.get(o.name, o.name) for o in graph.output]


def _rename_reads(proto: object, rename: Mapping[str, str]) -> None:
    """Rename the values a node (and the subgraphs in it) reads."""
    proto.input[:] = [rename.get(i, i) for i in proto.input]  # type: ignore[attr-defined]
    for g in control.subgraphs(proto):
        for n in g.node:
            _rename_reads(n, rename)
        for o in g.output:
            o.name = rename.get(o.name, o.name)


__all__ = ["SelectCheck", "condition_inputs", "constant_condition", "expand", "inline",
           "model_inputs_of", "refusal", "runtime_condition", "runtime_origin", "select",
           "settings"]
