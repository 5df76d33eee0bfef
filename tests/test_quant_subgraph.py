"""The sub-model that computes some tensors (converters/quantize/subgraph.py), the one cut that
GPTQ's sequential inputs, the stem's Hessians and the output heads' inputs run in LiteRT, and
the operators an output depends on (the precision planner's and fidelity warnings' walk)."""

from __future__ import annotations

import numpy as np

from sdk.converters.ir import DType, Graph, Model, Operator, SignatureDef, Tensor
from sdk.converters.quantize.subgraph import computing, upstream_ops
from sdk.converters.tflite import serialize
from sdk.run.runner import LiteRTRunner

ACT = {"fused_activation_function": "NONE"}


def _model() -> tuple[Model, dict[str, Tensor]]:
    """x -> ADD 1 -> a -> MUL a*a -> b -> ADD 2 -> y (returned), and beside it x -> MUL 3 -> side
    (returned): two branches, so a cut that keeps too much or too little shows."""
    g = Graph(name="main")
    t = {n: g.add_tensor(Tensor(n, (1, 4), DType.FLOAT32)) for n in ("x", "a", "b", "y", "side")}
    g.operators = [
        Operator("ADD", [t["x"], g.constant("one", np.ones((1, 4), np.float32))], [t["a"]],
                 dict(ACT), name="add_one"),
        Operator("MUL", [t["x"], g.constant("three", np.full((1, 4), 3, np.float32))],
                 [t["side"]], dict(ACT), name="times_three"),
        Operator("MUL", [t["a"], t["a"]], [t["b"]], dict(ACT), name="square"),
        Operator("ADD", [t["b"], g.constant("two", np.full((1, 4), 2, np.float32))], [t["y"]],
                 dict(ACT), name="add_two"),
    ]
    g.inputs, g.outputs = [t["x"]], [t["y"], t["side"]]
    body = Graph(name="body")  # stands for a control-flow op's body: kept by the cut
    model = Model([g, body], description="two branches", metadata={"note": b"kept"},
                  signatures=[SignatureDef("serving", 0, {"x": t["x"]}, {"y": t["y"]})])
    return model, t


def test_the_cut_keeps_what_computes_the_tensors_and_only_that() -> None:
    model, t = _model()
    ops_before, tensors_before = list(model.main.operators), list(model.main.tensors)
    cut = computing(model, [t["b"], t["a"], t["b"]])
    g = cut.main
    assert [op.name for op in g.operators] == ["add_one", "square"]
    assert g.outputs == [t["b"], t["a"]]  # in the order asked, named once
    assert g.inputs == [t["x"]]
    names = {x.name for x in g.tensors}
    assert names == {"x", "one", "a", "b"}  # not the other branch's, not what follows b
    assert cut.graphs[1] is model.graphs[1] and cut.metadata == {"note": b"kept"}
    assert cut.signatures == [] and cut.description == "two branches"
    # the model itself is unchanged
    assert model.main.operators == ops_before and model.main.tensors == tensors_before
    assert model.main.outputs == [t["y"], t["side"]] and len(model.signatures) == 1


def test_the_cut_runs_and_gives_the_inner_values() -> None:
    model, t = _model()
    x = np.array([[0.5, -1.0, 2.0, -3.0]], np.float32)
    data, _ = serialize(computing(model, [t["side"], t["b"]]))
    side, b = LiteRTRunner(data, reference=True).invoke([x])
    np.testing.assert_allclose(side, 3 * x)
    np.testing.assert_allclose(b, (x + 1) ** 2)


def test_an_input_computes_nothing() -> None:
    model, t = _model()
    cut = computing(model, [t["x"]])
    assert cut.main.operators == [] and cut.main.outputs == [t["x"]]


def test_upstream_ops_are_what_an_output_depends_on() -> None:
    model, t = _model()
    assert [op.name for op in upstream_ops(model, t["y"])] == ["add_two", "square", "add_one"]
    assert [op.name for op in upstream_ops(model, t["side"])] == ["times_three"]
    assert upstream_ops(model, t["x"]) == []


def test_a_graph_keeps_the_tensors_it_references_in_a_new_list() -> None:
    """Graph.keep_referenced_tensors (prune's last step, and the upstream cache's cut, which
    shares the model's graph's tensor list): storage order kept, unreferenced tensors dropped,
    referenced but unregistered ones appended, the old list left as it was."""
    import copy

    model, t = _model()
    g = model.main
    extra = Tensor("unregistered", (1, 4), DType.FLOAT32)
    cut = copy.copy(g)
    cut.operators = [op for op in g.operators if op.name in ("add_one", "square")]
    cut.operators.append(Operator("ADD", [t["b"], t["b"]], [extra], dict(ACT), name="twice"))
    cut.inputs, cut.outputs = [t["x"]], [extra]
    before = list(g.tensors)
    cut.keep_referenced_tensors()
    assert [x.name for x in cut.tensors] == ["x", "a", "b", "one", "unregistered"]
    assert g.tensors == before and cut.tensors is not g.tensors
