"""Clip whose min or max is an input (opset 11+) computed at run time: MAXIMUM / MINIMUM with
that value (constant bounds fold, as before) (openWakeWord's
log-mel front end clips at ReduceMax - 80 dB), a clear error naming node and input when the
bound is not one value."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import requires_onnx
from onnx_testing import convert_and_compare, random


def _top_db_model(with_max: bool = False, min_shape: tuple[int, ...] = ()) -> object:
    """y = Clip(x, max(x) - 8 [, max(x) - 1]): a top-dB floor computed at run time."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
             helper.make_node("Sub", ["m", "top"], ["floor"]),
             helper.make_node("Reshape", ["floor", "min_shape"], ["lo"])]
    clip_inputs = ["x", "lo"]
    if with_max:
        nodes.append(helper.make_node("Sub", ["m", "one"], ["hi"]))
        clip_inputs.append("hi")
    nodes.append(helper.make_node("Clip", clip_inputs, ["y"]))
    inits = [numpy_helper.from_array(np.array(8.0, np.float32), "top"),
             numpy_helper.from_array(np.array(1.0, np.float32), "one"),
             numpy_helper.from_array(np.array(min_shape, np.int64), "min_shape")]
    graph = helper.make_graph(
        nodes, "top_db", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@requires_onnx
@pytest.mark.parametrize("with_max", [False, True])
def test_clip_with_runtime_bounds_matches_onnxruntime(with_max: bool) -> None:
    x = random((1, 5, 6), seed=1, scale=5.0)
    ir = convert_and_compare(_top_db_model(with_max), {"x": x})
    ops = [op.type for op in ir.main.operators]
    assert "MAXIMUM" in ops and ("MINIMUM" in ops) == with_max


@requires_onnx
def test_clip_bound_of_shape_one_broadcasts() -> None:
    convert_and_compare(_top_db_model(min_shape=(1,)), {"x": random((1, 5, 6), seed=2)})


@requires_onnx
def test_clip_bound_that_is_not_one_value_names_node_and_input() -> None:
    from onnx import TensorProto, helper

    from sdk.base.errors import EdgeSDKError
    from sdk.converters.onnx import read_onnx

    nodes = [helper.make_node("ReduceMax", ["x"], ["lo"], axes=[1], keepdims=1),
             helper.make_node("Clip", ["x", "lo"], ["y"], name="clip_rows")]
    graph = helper.make_graph(
        nodes, "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(EdgeSDKError, match=r"clip_rows.*input 1 \(min, 'lo'\) must hold one "
                                           r"value, not shape \[3, 1\]"):
        read_onnx(model.SerializeToString())
