"""ONNX inputs whose dimensions are written as -1 (dim_value -1, what Paddle's exporter writes)
are dynamic, like dim_param: `input_shapes` fixes them, and an open batch becomes 1. A
dim_value of 0 stays a real (empty) size."""

from __future__ import annotations

import pytest

from conftest import requires_onnx
from onnx_testing import convert_and_compare, random


def _paddle_style_model(dims: list[int]) -> object:
    """Conv + Relu + ReduceMean over an input declared with `dims` (-1 for dynamic), as
    Paddle's exporter writes it (dim_value -1, no dim_param)."""
    from onnx import TensorProto, helper, numpy_helper

    w = random((4, 3, 3, 3), seed=1, scale=0.3)
    b = random((4,), seed=2)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("ReduceMean", ["r"], ["y"], axes=[2, 3], keepdims=0)]
    graph = helper.make_graph(nodes, "paddle_like", [x], [y],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == dims
    return model


@requires_onnx
def test_minus_one_dims_are_fixed_by_input_shapes() -> None:
    model = _paddle_style_model([-1, 3, -1, -1])
    x = random((2, 3, 10, 12), seed=3)
    ir = convert_and_compare(model, {"x": x}, input_shapes={"x": (2, 3, 10, 12)})
    assert tuple(ir.main.inputs[0].shape) == (2, 3, 10, 12)


@requires_onnx
def test_minus_one_batch_alone_becomes_one() -> None:
    model = _paddle_style_model([-1, 3, 8, 8])
    convert_and_compare(model, {"x": random((1, 3, 8, 8), seed=4)})


@requires_onnx
def test_other_negative_dims_are_dynamic_and_zero_stays_a_size() -> None:
    from sdk.base.errors import ConversionError
    from sdk.converters.onnx import read_onnx

    ir = read_onnx(_paddle_style_model([1, 3, -7, -1]).SerializeToString(), [1, 3, 6, 5])
    assert tuple(ir.main.inputs[0].shape) == (1, 3, 6, 5)
    # 0 is a real (empty) size in ONNX, as onnxruntime takes it: not a dynamic dimension
    with pytest.raises(ConversionError, match="fixed size 0 on axis 2"):
        read_onnx(_paddle_style_model([1, 3, 0, 5]).SerializeToString(), [1, 3, 6, 5])


@requires_onnx
def test_minus_one_spatial_dims_left_open_name_the_fix() -> None:
    from sdk.base.errors import ConversionError
    from sdk.converters.onnx import read_onnx

    model = _paddle_style_model([-1, 3, -1, -1])
    with pytest.raises(ConversionError, match=r"dynamic dimensions \[\?, 3, \?, \?\]"):
        read_onnx(model.SerializeToString())


@requires_onnx
def test_fixed_dims_still_checked() -> None:
    from sdk.base.errors import ConversionError
    from sdk.converters.onnx import read_onnx

    model = _paddle_style_model([-1, 3, 8, 8])
    with pytest.raises(ConversionError, match="fixed size 8 on axis 2"):
        read_onnx(model.SerializeToString(), {"x": (1, 3, 9, 8)})
