"""Inputs read as sizes or attributes (a Reshape's shape, Pad's pads, a Slice's starts) that are
computed at run time: the error names the node, the input, the node that makes it and the model
inputs it comes from, and says what would fix it (constant_inputs for a setting)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import requires_onnx


def _model(nodes: list, inputs: dict, inits: dict | None = None) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    ins = [helper.make_tensor_value_info(n, t, s) for n, (t, s) in inputs.items()]
    graph = helper.make_graph(
        nodes, "computed", ins, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]
                             ).SerializeToString()


@requires_onnx
def test_reshape_to_a_size_computed_from_the_data_names_input_and_origin() -> None:
    from onnx import TensorProto, helper

    from sdk.base.errors import ConversionError
    from sdk.converters.onnx import read_onnx

    nodes = [helper.make_node("ReduceMax", ["x"], ["m"], axes=[1], keepdims=0),
             helper.make_node("Cast", ["m"], ["n"], to=TensorProto.INT64),
             helper.make_node("Concat", ["one", "n"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape_by_max")]
    data = _model(nodes, {"x": (TensorProto.FLOAT, [2, 6])},
                  {"one": np.array([1], np.int64)})
    with pytest.raises(ConversionError) as info:
        read_onnx(data)
    message = str(info.value)
    assert "'reshape_by_max' (Reshape): its output shape is not static: it depends on input 1 " \
        "('shape')" in message
    assert "node 'Concat_2' (Concat) from model input(s) ['x']" in message
    assert "computed from the data" in message


@requires_onnx
def test_a_size_computed_from_a_setting_input_points_at_constant_inputs() -> None:
    from onnx import TensorProto, helper

    from sdk.base.errors import ConversionError
    from sdk.converters.onnx import read_onnx
    from sdk.converters.tflite import to_tflite_bytes

    nodes = [helper.make_node("Div", ["rate", "k"], ["frames"]),
             helper.make_node("Reshape", ["frames", "minus1"], ["n"]),
             helper.make_node("Concat", ["one", "n"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["y"], name="frame")]
    inputs = {"x": (TensorProto.FLOAT, [1, 4, 8]), "rate": (TensorProto.INT64, [])}
    data = _model(nodes, inputs, {"k": np.array(500, np.int64),
                                  "minus1": np.array([1], np.int64),
                                  "one": np.array([1], np.int64)})
    with pytest.raises(ConversionError, match=r"fix \['rate'\] with "
                                              r"constant_inputs=\{'rate': <value>\}"):
        read_onnx(data)
    ir = read_onnx(data, constant_inputs={"rate": 16000})
    assert tuple(ir.main.outputs[0].shape) == (1, 32)
    assert to_tflite_bytes(ir)


@requires_onnx
def test_a_pad_value_computed_at_run_time_names_the_value_and_its_producer() -> None:
    from onnx import TensorProto, helper

    from sdk.base.errors import UnsupportedOpError
    from sdk.converters.onnx import read_onnx

    nodes = [helper.make_node("ReduceMean", ["x"], ["fill"], keepdims=0, name="mean_fill"),
             helper.make_node("Pad", ["x", "pads", "fill"], ["y"], name="pad_by_mean")]
    data = _model(nodes, {"x": (TensorProto.FLOAT, [1, 4])},
                  {"pads": np.array([0, 1, 0, 1], np.int64)})
    with pytest.raises(UnsupportedOpError, match=r"pad_by_mean.*the pad value must be a "
                                                 r"constant .*\('fill' is made by node "
                                                 r"'mean_fill' \(ReduceMean\) from model "
                                                 r"input\(s\) \['x'\]\)"):
        read_onnx(data)
