"""Folding Loop and If: our own small interpreter, so that every step is budgeted.

The onnx reference evaluator runs a Loop for as many iterations as its trip count says (10^12
is a valid int64) and evaluates its body with no size checks. Here a Loop with constant inputs
runs node by node through the same `Folder` as the main graph (attribute checks, output sizes
checked before each node runs, the folding byte budget), and iterations x body nodes count
against `LoadBudget.max_loop_iterations` before the first iteration when the trip count is known
and as they run when only the condition ends the loop. A Loop with neither a trip count nor a
condition never ends and is refused. If with a constant condition runs the chosen branch the
same way.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sdk.base.errors import ConversionError, ModelFormatError
from sdk.converters.onnx.graph import Node, ValueInfo
from sdk.converters.onnx.order import topological
from sdk.converters.onnx.validate import check_node

if TYPE_CHECKING:
    from sdk.converters.onnx.fold import Folder


def subgraphs(proto: Any) -> list[Any]:
    """The GraphProtos held in a NodeProto's attributes."""
    out = []
    for a in proto.attribute:
        if a.HasField("g"):
            out.append(a.g)
        out.extend(a.graphs)
    return out


def has_subgraphs(node: Node) -> bool:
    return node.proto is not None and bool(subgraphs(node.proto))


def outer_names(graph: Any) -> set[str]:
    """Names a graph (or the subgraphs in it) reads but does not define: outer-scope values."""
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    used: set[str] = set()
    for n in graph.node:
        used.update(n.input)
        for g in subgraphs(n):
            used.update(outer_names(g))
        defined.update(n.output)
    used.update(o.name for o in graph.output)
    return used - defined


def outer_values_constant(node: Node, scope: Mapping[str, ValueInfo]) -> bool:
    for g in subgraphs(node.proto):
        for name in outer_names(g):
            v = scope.get(name)
            if v is None or not v.is_const:
                return False
    return True


def body_size(graph: Any) -> int:
    """Nodes in a graph, counting those of nested subgraphs too (at least 1)."""
    return max(1, sum(1 + sum(body_size(g) for g in subgraphs(n)) for n in graph.node))


def run(folder: Folder, node: Node, ins: list[ValueInfo | None],
        scope: Mapping[str, ValueInfo]) -> list[Any]:
    if node.op_type == "If":
        return _run_if(folder, node, ins, scope)
    return _run_loop(folder, node, ins, scope)


def _scalar(folder: Folder, node: Node, value: ValueInfo | None, what: str) -> Any:
    arr = None if value is None else value.const
    if arr is None:
        return None
    arr = np.asarray(arr)
    if arr.size != 1:
        raise ModelFormatError(f"node {node.name!r} ({node.op_type}): {what} must hold one "
                               f"value, not {arr.size}", path=folder.label)
    return arr.reshape(-1)[0]


def _graph_attr(folder: Folder, node: Node, key: str) -> Any:
    for a in node.proto.attribute:
        if a.name == key and a.HasField("g"):
            return a.g
    raise ModelFormatError(f"node {node.name!r} ({node.op_type}) has no {key!r} graph",
                           path=folder.label)


def _run_if(folder: Folder, node: Node, ins: list[ValueInfo | None],
            scope: Mapping[str, ValueInfo]) -> list[Any]:
    cond = _scalar(folder, node, ins[0] if ins else None, "the condition")
    if cond is None:
        raise ModelFormatError(f"node {node.name!r} (If) has no condition", path=folder.label)
    branch = _graph_attr(folder, node, "then_branch" if bool(cond) else "else_branch")
    folder.spend_loop_steps(node, body_size(branch))
    return run_graph(folder, node, prepare(folder, node, branch, [], scope), {}, scope)


def _run_loop(folder: Folder, node: Node, ins: list[ValueInfo | None],
              scope: Mapping[str, ValueInfo]) -> list[Any]:
    body = _graph_attr(folder, node, "body")
    limit = folder.budget.max_loop_iterations
    trip = _scalar(folder, node, ins[0] if ins else None, "the trip count")
    cond = _scalar(folder, node, ins[1] if len(ins) > 1 else None, "the condition")
    if trip is None and cond is None:
        raise ModelFormatError(f"node {node.name!r} (Loop) has neither a trip count nor a "
                               "condition: it never ends", path=folder.label)
    if trip is not None and not isinstance(trip, (np.integer, int)):
        raise ModelFormatError(f"node {node.name!r} (Loop): the trip count must be an integer, "
                               f"not {np.asarray(trip).dtype}", path=folder.label)
    trips = None if trip is None else int(trip)
    steps = body_size(body)
    if trips is not None and trips * steps > limit - folder.loop_steps:
        raise ModelFormatError(
            f"node {node.name!r} (Loop): {trips:,} iterations of a {steps}-node body, over the "
            f"limit of {limit:,} loop steps (LoadBudget.max_loop_iterations)",
            path=folder.label)
    carried = [v.const if v is not None else None for v in ins[2:]]
    if len(body.input) != 2 + len(carried) or len(body.output) < 1 + len(carried):
        raise ModelFormatError(
            f"node {node.name!r} (Loop): the body takes {len(body.input)} inputs and makes "
            f"{len(body.output)} outputs for {len(carried)} loop-carried values",
            path=folder.label)
    n_scan = len(body.output) - 1 - len(carried)
    prepared = prepare(folder, node, body, [i.name for i in body.input], scope)
    scans: list[list[Any]] = [[] for _ in range(n_scan)]
    i = 0
    while (trips is None or i < trips) and (cond is None or bool(cond)):
        folder.spend_loop_steps(node, steps)
        env = {body.input[0].name: np.array(i, np.int64),
               body.input[1].name: np.array(True if cond is None else bool(cond))}
        env.update({inp.name: v for inp, v in zip(body.input[2:], carried, strict=True)})
        outs = run_graph(folder, node, prepared, env, scope)
        cond = np.asarray(outs[0]).reshape(-1)[0] if np.asarray(outs[0]).size == 1 else None
        if cond is None:
            raise ModelFormatError(f"node {node.name!r} (Loop): the body's condition output is "
                                   "not one value", path=folder.label)
        carried = outs[1:1 + len(carried)]
        for k, s in enumerate(outs[1 + len(carried):]):
            scans[k].append(np.asarray(s))
        i += 1
    stacked = []
    for k, parts in enumerate(scans):
        try:
            stacked.append(np.stack(parts) if parts else np.zeros((0,), np.float32))
        except ValueError as exc:
            raise ModelFormatError(f"node {node.name!r} (Loop): scan output {k} changes shape "
                                   f"between iterations", path=folder.label) from exc
    return [*carried, *stacked]


@dataclass
class Body:
    """A subgraph made ready to run many times: nodes decoded and sorted, initializers read."""

    graph: Any
    nodes: list[Node]
    initializers: dict[str, ValueInfo]


def prepare(folder: Folder, owner: Node, graph: Any, feeds: list[str],
            scope: Mapping[str, ValueInfo]) -> Body:
    from onnx import numpy_helper

    inits: dict[str, ValueInfo] = {}
    for t in graph.initializer:
        try:
            inits[t.name] = ValueInfo.constant(numpy_helper.to_array(t))
        except Exception as exc:
            raise ModelFormatError(f"node {owner.name!r} ({owner.op_type}): subgraph "
                                   f"initializer {t.name!r} is corrupt: {exc}",
                                   path=folder.label) from exc
    available = set(feeds) | set(inits) | (outer_names(graph) & set(scope))
    nodes = []
    for k, proto in enumerate(topological(list(graph.node), available, folder.label)):
        node = Node.from_proto(proto, k)
        node.name = f"{owner.name}/{node.name}"
        nodes.append(node)
    return Body(graph, nodes, inits)


def run_graph(folder: Folder, owner: Node, body: Body, env: Mapping[str, Any],
              scope: Mapping[str, ValueInfo]) -> list[Any]:
    """Evaluate a subgraph of constants: `env` feeds its inputs, `scope` its outer reads."""
    local: dict[str, ValueInfo] = dict(body.initializers)
    local.update((n, ValueInfo.constant(np.asarray(v))) for n, v in env.items())
    values: ChainMap[str, ValueInfo] = ChainMap(local, scope)  # type: ignore[arg-type]
    for node in body.nodes:
        ins = [values.get(n) if n else None for n in node.inputs]
        missing = [n for n, v in zip(node.inputs, ins, strict=True) if n and v is None]
        if missing:
            raise ConversionError(f"{folder.label}: node {node.name!r} ({node.op_type}) reads "
                                  f"{missing}, which have no value")
        check_node(node, [v.shape if v is not None else None for v in ins], folder.label)
        folded = folder.try_fold(node, ins, values)
        if folded is None:
            raise ConversionError(f"{folder.label}: node {node.name!r} ({node.op_type}) in the "
                                  f"body of {owner.name!r} is not constant: {owner.op_type} is "
                                  "only converted when it can be folded")
        for name, arr in zip(node.outputs, folded, strict=False):
            if name:
                local[name] = ValueInfo.constant(arr)
    return [_lookup(folder, owner, values, o.name) for o in body.graph.output]


def _lookup(folder: Folder, owner: Node, values: Mapping[str, ValueInfo], name: str) -> Any:
    v = values.get(name)
    if v is None or v.const is None:
        raise ModelFormatError(f"node {owner.name!r} ({owner.op_type}): subgraph output "
                               f"{name!r} is never computed", path=folder.label)
    return v.const

