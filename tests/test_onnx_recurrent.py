"""ONNX LSTM / GRU / RNN, unrolled into FULLY_CONNECTED + LOGISTIC / TANH / MUL / ADD / SPLIT /
CONCATENATION: float outputs (Y, Y_h, Y_c) equal onnxruntime's in every direction and layout,
with batch > 1, with and without initial states; inside an If whose condition folds to a
constant; refusals name the attribute; INT8 export through sdk.export stays close to float."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import requires_onnx
from onnx_testing import convert_and_compare, random, run_onnx

_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def recurrent_model(op: str, *, steps: int = 5, batch: int = 2, size: int = 6,
                    hidden: int = 8, direction: str = "forward", layout: int = 0,
                    states: bool = False, states_const: bool = False, seed: int = 0,
                    peepholes: bool = False, **attrs: Any) -> Any:
    """One `op` node; X [T, B, I] (layout 0) or [B, T, I]; outputs Y, Y_h (and Y_c)."""
    from onnx import helper

    from onnx_testing import make_model

    d = 2 if direction == "bidirectional" else 1
    g = _GATES[op]
    inits = {"W": random((d, g * hidden, size), seed + 1, 0.4),
             "R": random((d, g * hidden, hidden), seed + 2, 0.4),
             "B": random((d, 2 * g * hidden), seed + 3, 0.3)}
    x_shape = [steps, batch, size] if layout == 0 else [batch, steps, size]
    s_shape = [d, batch, hidden] if layout == 0 else [batch, d, hidden]
    inputs: dict[str, Any] = {"X": x_shape}
    names = ["X", "W", "R", "B", ""]
    if states:
        state_names = ["h0", "c0"] if op == "LSTM" else ["h0"]
        for k, n in enumerate(state_names):
            if states_const:
                inits[n] = random(s_shape, seed + 4 + k, 0.5)
            else:
                inputs[n] = s_shape
        names += state_names
    if peepholes:
        inits["P"] = random((d, 3 * hidden), seed + 6, 0.5)
        names = [*[*names, "", "", ""][:7], "P"]
    outs = ["Y", "Y_h", "Y_c"] if op == "LSTM" else ["Y", "Y_h"]
    node = helper.make_node(op, names, outs, hidden_size=hidden, direction=direction,
                            layout=layout, **attrs)
    return make_model([node], inputs, outs, inits, opset=14)


def feeds_for(model: Any, seed: int = 10) -> dict[str, np.ndarray]:
    out = {}
    for k, vi in enumerate(model.graph.input):
        if vi.name in {i.name for i in model.graph.initializer}:
            continue
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        out[vi.name] = random(shape, seed + k)
    return out


def compare_layout1(op: str, **kwargs: Any) -> Any:
    """onnxruntime has no batch-major (layout 1) recurrent kernels: the reference is the same
    node in layout 0 on transposed inputs, its outputs transposed back."""
    from sdk.converters.onnx import read_onnx
    from sdk.converters.tflite import to_tflite_bytes

    from onnx_testing import run_tflite

    model = recurrent_model(op, layout=1, **kwargs)
    twin = recurrent_model(op, layout=0, **kwargs)
    feeds = feeds_for(model)
    expected = run_onnx(twin, {k: np.swapaxes(v, 0, 1) for k, v in feeds.items()})
    expected = [np.transpose(e, (2, 0, 1, 3)) if e.ndim == 4 else np.swapaxes(e, 0, 1)
                for e in expected]
    ir = read_onnx(model.SerializeToString())
    data = to_tflite_bytes(ir)
    for xnnpack in (True, False):
        got = run_tflite(data, feeds, xnnpack=xnnpack)
        for name, e, g in zip(["Y", "Y_h", "Y_c"], expected, got, strict=False):
            np.testing.assert_allclose(g, e, atol=2e-5, rtol=1e-4, err_msg=name)
    return ir


@requires_onnx
@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("layout", [0, 1])
def test_matches_onnxruntime(op: str, direction: str, layout: int) -> None:
    if layout == 1:
        ir = compare_layout1(op, direction=direction, states=True)
    else:
        model = recurrent_model(op, direction=direction, states=True)
        ir = convert_and_compare(model, feeds_for(model), atol=2e-5)
    ops = {o.type for o in ir.main.operators}
    assert ops <= {"FULLY_CONNECTED", "LOGISTIC", "TANH", "MUL", "ADD", "SUB", "SPLIT",
                   "CONCATENATION", "RESHAPE", "TRANSPOSE"}, ops


@requires_onnx
@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_no_initial_state_and_constant_state(op: str) -> None:
    for kwargs in ({"states": False}, {"states": True, "states_const": True}):
        model = recurrent_model(op, direction="bidirectional", batch=3, **kwargs)
        convert_and_compare(model, feeds_for(model), atol=2e-5)


@requires_onnx
@pytest.mark.parametrize("lbr", [0, 1])
@pytest.mark.parametrize("states", [False, True])
def test_gru_linear_before_reset(lbr: int, states: bool) -> None:
    compare_layout1("GRU", linear_before_reset=lbr, states=states, batch=3)
    model = recurrent_model("GRU", linear_before_reset=lbr, states=states, batch=3)
    convert_and_compare(model, feeds_for(model), atol=2e-5)


@requires_onnx
@pytest.mark.parametrize("states", [False, True])
def test_lstm_peepholes(states: bool) -> None:
    model = recurrent_model("LSTM", direction="bidirectional", states=states, peepholes=True)
    convert_and_compare(model, feeds_for(model), atol=2e-5)


@requires_onnx
def test_default_activations_spelled_out_are_accepted() -> None:
    model = recurrent_model("LSTM", direction="bidirectional",
                            activations=["Sigmoid", "Tanh", "Tanh"] * 2)
    convert_and_compare(model, feeds_for(model), atol=2e-5)


@requires_onnx
@pytest.mark.parametrize("op,attrs,named", [
    ("LSTM", {"clip": 3.0}, "clip"),
    ("GRU", {"activations": ["HardSigmoid", "Tanh"]}, "activations"),
    ("RNN", {"activations": ["Relu"]}, "activations"),
    ("LSTM", {"input_forget": 1}, "input_forget"),
])
def test_unsupported_attributes_are_named(op: str, attrs: dict[str, Any], named: str) -> None:
    from sdk.base.errors import UnsupportedOpError
    from sdk.converters.onnx import read_onnx

    model = recurrent_model(op, **attrs)
    with pytest.raises(UnsupportedOpError, match=named):
        read_onnx(model.SerializeToString())


def _if_wrapped_step(const_condition: bool = True) -> Any:
    """What voice-activity exports look like: an If whose condition is computed from a shape
    (so it folds to a constant) holding a single-step LSTM with state in and out; the other
    branch is a different computation that must not be taken."""
    from onnx import TensorProto, helper, numpy_helper

    hidden, size, batch = 8, 6, 1
    w = random((1, 4 * hidden, size), 1, 0.4)
    r = random((1, 4 * hidden, hidden), 2, 0.4)
    b = random((1, 8 * hidden), 3, 0.3)
    then_nodes = [
        helper.make_node("Unsqueeze", ["x", "axes0"], ["x3"]),
        helper.make_node("LSTM", ["x3", "W", "R", "B", "", "h", "c"], ["", "h_out", "c_out"],
                         hidden_size=hidden),
        helper.make_node("Squeeze", ["h_out", "axes0"], ["h2"]),
        helper.make_node("Sigmoid", ["h2"], ["prob"]),
    ]
    then_g = helper.make_graph(
        then_nodes, "then", [],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
         for n in ("prob", "h_out", "c_out")],
        [numpy_helper.from_array(np.array([0], np.int64), "axes0")])
    else_g = helper.make_graph(
        [helper.make_node("Identity", ["h"], ["h_e"]), helper.make_node("Identity", ["c"],
                                                                          ["c_e"]),
         helper.make_node("Tanh", ["x"], ["t_e"]),
         helper.make_node("ReduceMean", ["t_e"], ["p_e"], axes=[1], keepdims=1),
         helper.make_node("Expand", ["p_e", "shape_e"], ["prob_e"])],
        "else", [],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
         for n in ("prob_e", "h_e", "c_e")],
        [numpy_helper.from_array(np.array([batch, hidden], np.int64), "shape_e")])
    target = size if const_condition else -1
    nodes = [
        helper.make_node("Shape", ["x"], ["xs"]),
        helper.make_node("Gather", ["xs", "one"], ["width"], axis=0),
        helper.make_node("Equal", ["width", "expected"], ["cond"]),
        helper.make_node("If", ["cond"], ["prob", "h_n", "c_n"], then_branch=then_g,
                         else_branch=else_g),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, size]),
              helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, batch, hidden]),
              helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, batch, hidden])]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
               for n in ("prob", "h_n", "c_n")]
    inits = [numpy_helper.from_array(a, n) for n, a in (
        ("W", w), ("R", r), ("B", b), ("one", np.array(1, np.int64)),
        ("expected", np.array(target, np.int64)))]
    graph = helper.make_graph(nodes, "vad_like", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


@requires_onnx
def test_if_with_constant_condition_takes_the_branch() -> None:
    model = _if_wrapped_step()
    feeds = {"x": random((1, 6), 20), "h": random((1, 1, 8), 21, 0.5),
             "c": random((1, 1, 8), 22, 0.5)}
    ir = convert_and_compare(model, feeds, atol=2e-5)
    assert "LOGISTIC" in {o.type for o in ir.main.operators}
    # the other branch, taken when the condition folds the other way
    convert_and_compare(_if_wrapped_step(False), feeds, atol=2e-5)


@requires_onnx
def test_if_with_input_dependent_condition_is_refused() -> None:
    from onnx import TensorProto, helper

    from sdk.base.errors import UnsupportedOpError
    from sdk.converters.onnx import read_onnx

    model = _if_wrapped_step()
    g = model.graph
    g.input.append(helper.make_tensor_value_info("flag", TensorProto.BOOL, []))
    for n in g.node:
        if n.op_type == "If":
            n.input[0] = "flag"
    with pytest.raises(UnsupportedOpError, match=r"If.*condition is not a constant \(it "
                       r"depends on model input\(s\) \['flag'\]\)"):
        read_onnx(model.SerializeToString())


def _sqnr(ref: np.ndarray, got: np.ndarray) -> float:
    noise = float(np.sum((ref.astype(np.float64) - got) ** 2))
    return 10 * np.log10(float(np.sum(ref.astype(np.float64) ** 2)) / max(noise, 1e-30))


@requires_onnx
@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_int8_export_stays_close(op: str, tmp_path: Any) -> None:
    """Every output over 8 held-out sequences: SQNR above 24 dB (measured 27-32 dB)."""
    import sdk

    from onnx_testing import run_tflite

    model = recurrent_model(op, steps=6, batch=1, size=8, hidden=16, direction="bidirectional")
    path = tmp_path / "rnn.onnx"
    path.write_bytes(model.SerializeToString())
    calib = [{"X": random((6, 1, 8), 100 + k)} for k in range(32)]
    out = tmp_path / "rnn.tflite"
    sdk.export(str(path), "int8", calibration=calib, output=str(out))
    data = out.read_bytes()
    refs: list[list[np.ndarray]] = []
    gots: list[list[np.ndarray]] = []
    for k in range(8):
        feeds = {"X": random((6, 1, 8), 500 + k)}
        refs.append(run_onnx(model, feeds))
        gots.append(run_tflite(data, feeds))
    for i in range(len(refs[0])):
        ref = np.concatenate([r[i].ravel() for r in refs])
        got = np.concatenate([g[i].ravel() for g in gots]).astype(np.float32)
        assert _sqnr(ref, got) > 24.0, (i, _sqnr(ref, got))


@requires_onnx
@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_recurrent_weights_are_stored_once(op: str) -> None:
    """Every step's FULLY_CONNECTED reads the same R tensor: the file does not grow by the
    recurrent weights per step (a 256-step LSTM-128 was 69 MB instead of 1.8 MB)."""
    from sdk.converters.onnx import read_onnx

    hidden = 8
    model = recurrent_model(op, steps=12, hidden=hidden, direction="bidirectional", states=True)
    ir = read_onnx(model.SerializeToString())
    big = [t for t in ir.main.tensors if t.is_constant and t.shape[-1:] == (hidden,)
           and len(t.shape) == 2 and t.shape[0] >= hidden]
    per_direction = {"LSTM": 1, "GRU": 2, "RNN": 1}[op]
    assert len(big) == 2 * per_direction, [(t.name, t.shape) for t in big]


@requires_onnx
@pytest.mark.parametrize("change,named", [
    ("h0_shape", "initial_h has the shape"),
    ("w_rank", "must each have rank 3"),
    ("b_shape", "B has the shape"),
])
def test_malformed_nodes_are_named_errors(change: str, named: str) -> None:
    """Mismatched states and weights are errors naming the input, never a broken graph."""
    from onnx import TensorProto, helper, numpy_helper

    from sdk.base.errors import UnsupportedOpError
    from sdk.converters.onnx import read_onnx

    model = recurrent_model("LSTM", states=True)
    g = model.graph
    if change == "h0_shape":
        g.input[1].CopyFrom(helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, 3, 8]))
    else:
        key, arr = ("W", random((32, 6), 1)) if change == "w_rank" else ("B", random((1, 7), 1))
        for k, t in enumerate(g.initializer):
            if t.name == key:
                g.initializer[k].CopyFrom(numpy_helper.from_array(arr, key))
    del g.value_info[:]
    with pytest.raises(UnsupportedOpError, match=named):
        read_onnx(model.SerializeToString())


@requires_onnx
def test_inlined_branch_that_redefines_an_outer_value_is_refused() -> None:
    """A branch may not define a name the outer graph holds (ONNX forbids shadowing); inlined,
    it would silently replace that value."""
    from sdk.base.errors import ModelFormatError
    from sdk.converters.onnx import read_onnx

    model = _if_wrapped_step()
    for n in model.graph.node:
        if n.op_type == "If":
            branch = next(a.g for a in n.attribute if a.name == "then_branch")
            branch.node[0].output[0] = "xs"  # the outer Shape's output
            branch.node[1].input[0] = "xs"
    with pytest.raises(ModelFormatError, match="redefines"):
        read_onnx(model.SerializeToString())


@requires_onnx
def test_inlined_branches_count_against_the_graph_budget() -> None:
    from sdk.base.errors import ModelFormatError
    from sdk.base.limits import LoadBudget
    from sdk.converters.onnx import read_onnx

    model = _if_wrapped_step()
    main_nodes = len(model.graph.node)
    with pytest.raises(ModelFormatError, match="If branches inlined"):
        read_onnx(model.SerializeToString(), budget=LoadBudget(max_graph_items=main_nodes + 2))


@requires_onnx
def test_too_long_a_sequence_is_refused_before_unrolling() -> None:
    from sdk.base.errors import UnsupportedOpError
    from sdk.base.limits import LoadBudget
    from sdk.converters.onnx import read_onnx

    model = recurrent_model("LSTM", steps=400, batch=1, size=2, hidden=2)
    with pytest.raises(UnsupportedOpError, match="unrolled over 400 steps"):
        read_onnx(model.SerializeToString(), budget=LoadBudget(max_graph_items=5000))
    read_onnx(model.SerializeToString(), budget=LoadBudget(max_graph_items=20000))
