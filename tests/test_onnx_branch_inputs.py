"""ONNX `If` whose condition is not a constant (issue 12's voice-activity and wake-word nets).

- A setting input (silero-vad's `sr`, an int64 sample rate) selects the branch: without
  `constant_inputs` the refusal names the input and the option; with it the If folds and the
  converted model has no such input (read_onnx, load_model and sdk.export).
- A condition computed from the data (openWakeWord's hey_jarvis: score >= 0.5 runs a verifier
  net) becomes both branches and a select, matching onnxruntime on both sides of the threshold.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import requires_onnx
from onnx_testing import convert_and_compare, random, run_onnx, run_tflite


def _sample_rate_model() -> object:
    """y = sr == 16000 ? Conv(x, w16) : Conv(x, w8), state passed through; like silero-vad."""
    from onnx import TensorProto, helper, numpy_helper

    w16, w8 = random((4, 1, 3), seed=1), random((4, 1, 5), seed=2)
    then = helper.make_graph(
        [helper.make_node("Conv", ["x", "w16"], ["y16"], pads=[1, 1])], "sr16", [],
        [helper.make_tensor_value_info("y16", TensorProto.FLOAT, [1, 4, 32])],
        [numpy_helper.from_array(w16, "w16")])
    other = helper.make_graph(
        [helper.make_node("Conv", ["x", "w8"], ["y8"], pads=[2, 2])], "sr8", [],
        [helper.make_tensor_value_info("y8", TensorProto.FLOAT, [1, 4, 32])],
        [numpy_helper.from_array(w8, "w8")])
    nodes = [helper.make_node("Equal", ["sr", "k16000"], ["is16"]),
             helper.make_node("If", ["is16"], ["c"], then_branch=then, else_branch=other),
             helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(
        nodes, "vad_like",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 32]),
         helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 32])],
        [numpy_helper.from_array(np.array(16000, np.int64), "k16000")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@requires_onnx
def test_if_on_a_setting_input_names_the_input_and_constant_inputs() -> None:
    from sdk.base.errors import UnsupportedOpError
    from sdk.converters.onnx import read_onnx

    with pytest.raises(UnsupportedOpError) as info:
        read_onnx(_sample_rate_model().SerializeToString())
    message = str(info.value)
    assert "['sr']" in message and "constant_inputs={'sr': <value>}" in message


@requires_onnx
@pytest.mark.parametrize("rate", [16000, 8000])
def test_constant_inputs_fold_the_branch_the_value_selects(rate: int) -> None:
    from sdk.converters.onnx import read_onnx
    from sdk.converters.tflite import to_tflite_bytes

    model = _sample_rate_model()
    x = random((1, 1, 32), seed=3)
    expected = run_onnx(model, {"x": x, "sr": np.array(rate, np.int64)})[0]
    ir = read_onnx(model.SerializeToString(), constant_inputs={"sr": rate})
    assert [t.name for t in ir.main.inputs] == ["x"]
    got = run_tflite(to_tflite_bytes(ir), {"x": x})[0]
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)


@requires_onnx
def test_constant_inputs_are_checked() -> None:
    from sdk.base.errors import ConversionError
    from sdk.converters.onnx import read_onnx

    data = _sample_rate_model().SerializeToString()
    with pytest.raises(ConversionError, match="'rate', which is not a model input"):
        read_onnx(data, constant_inputs={"rate": 16000})
    with pytest.raises(ConversionError, match="not a whole number"):
        read_onnx(data, constant_inputs={"sr": 16000.5})
    with pytest.raises(ConversionError, match=r"shape \[2\], but the input is declared \[\]"):
        read_onnx(data, constant_inputs={"sr": [16000, 8000]})
    with pytest.raises(ConversionError, match="both constant_inputs and input_shapes"):
        read_onnx(data, {"sr": ()}, constant_inputs={"sr": 16000})


@requires_onnx
def test_export_takes_constant_inputs(tmp_path: object) -> None:
    import sdk
    from sdk.converters.frontends import load_model

    model = _sample_rate_model()
    loaded = load_model(model, constant_inputs={"sr": 8000})
    assert [t.name for t in loaded.model.main.inputs] == ["x"]
    assert any("constant_inputs" in n and "sr=8000" in n for n in loaded.notes)
    cal = random((12, 1, 1, 32), seed=4)
    result = sdk.export(model.SerializeToString(), "int8", calibration=cal, report=False,
                        output=f"{tmp_path}/vad.tflite", constant_inputs={"sr": 16000})
    assert [t.name for t in result.inputs] == ["x"]
    assert any("sr=16000" in n for n in result.notes)  # the report says what was fixed
    assert result.fidelity.outputs[0].sqnr_db > 25


@requires_onnx
def test_constant_inputs_refused_for_tflite() -> None:
    from sdk.base.errors import ConversionError
    from sdk.converters.frontends import load_model

    with pytest.raises(ConversionError, match="constant_inputs applies to ONNX models"):
        load_model("model.tflite", constant_inputs={"sr": 16000})


def _score_gated_model() -> object:
    """p = sigmoid(x @ w1); y = p >= 0.5 ? sigmoid(relu(x @ w2) @ w3) : p (hey_jarvis)."""
    from onnx import TensorProto, helper, numpy_helper

    then = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w2"], ["h"]),
         helper.make_node("Relu", ["h"], ["hr"]),
         helper.make_node("MatMul", ["hr", "w3"], ["v"]),
         helper.make_node("Sigmoid", ["v"], ["p2"])], "verifier", [],
        [helper.make_tensor_value_info("p2", TensorProto.FLOAT, [1, 1])])
    other = helper.make_graph(
        [helper.make_node("Identity", ["p"], ["p1"])], "pass", [],
        [helper.make_tensor_value_info("p1", TensorProto.FLOAT, [1, 1])])
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["s"]),
             helper.make_node("Sigmoid", ["s"], ["p"]),
             helper.make_node("GreaterOrEqual", ["p", "half"], ["fire"]),
             helper.make_node("Cast", ["fire"], ["cond"], to=TensorProto.BOOL),
             helper.make_node("If", ["cond"], ["y"], then_branch=then, else_branch=other)]
    inits = {"w1": random((8, 1), seed=5), "w2": random((8, 6), seed=6),
             "w3": random((6, 1), seed=7), "half": np.array(0.5, np.float32)}
    graph = helper.make_graph(
        nodes, "gated", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@requires_onnx
def test_if_on_the_data_becomes_both_branches_and_a_select() -> None:
    model = _score_gated_model()
    w1 = random((8, 1), seed=5)[:, 0]
    fired = 0
    for seed in range(8):
        x = random((1, 8), seed=10 + seed)
        fired += float(x[0] @ w1) >= 0.0
        ir = convert_and_compare(model, {"x": x}, atol=1e-5, rtol=1e-5)
    assert 0 < fired < 8  # both branches were taken by onnxruntime
    ops = ir.main.operators
    assert "SELECT_V2" in {op.type for op in ops}
    # both branches end in a sigmoid: one LOGISTIC after the select makes the output
    last = next(op for op in ops if ir.main.outputs[0] in op.outputs)
    assert last.type == "LOGISTIC"
    select = next(op for op in ops if op.type == "SELECT_V2")
    assert last.name != select.name  # layers are planned and reported by name


@requires_onnx
def test_if_on_the_data_needs_branches_of_one_shape() -> None:
    from onnx import TensorProto, helper, numpy_helper

    from sdk.base.errors import ConversionError
    from sdk.converters.onnx import read_onnx

    then = helper.make_graph([helper.make_node("Identity", ["x"], ["a"])], "t", [],
                             [helper.make_tensor_value_info("a", TensorProto.FLOAT, None)])
    other = helper.make_graph([helper.make_node("ReduceSum", ["x"], ["b"], keepdims=0)], "e",
                              [], [helper.make_tensor_value_info("b", TensorProto.FLOAT, None)])
    nodes = [helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
             helper.make_node("Greater", ["m", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)]
    graph = helper.make_graph(
        nodes, "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(0.0, np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(ConversionError, match=r"then_branch makes shape \[1, 4\] and the "
                                              r"else_branch \[\]"):
        read_onnx(model.SerializeToString())
