"""Shape subgraphs of older exports fold with the ops of the model's own opset (issue 12):
PyTorch 1.9's opset-12 Shape -> Gather -> Unsqueeze(axes attribute) -> Concat -> Reshape chain
(ddddocr's CRNN) and opset-12 Squeeze with negative attribute axes; ops whose ONNX schema has
no shape inference (GreaterOrEqual, LessOrEqual: defined as functions) get the broadcast shape."""

from __future__ import annotations

import numpy as np

from conftest import requires_onnx
from onnx_testing import convert_and_compare, random


def _reshape_chain_model(opset: int) -> object:
    """x [1, C, H, W] (H, W dynamic) -> [1, C * H, W] through a shape subgraph, then Squeeze a
    size-1 axis given as a negative attribute axis: what PyTorch 1.9 wrote at opset 12."""
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [numpy_helper.from_array(np.array(0, np.int64), "i0"),
             numpy_helper.from_array(np.array(3, np.int64), "i3"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
             numpy_helper.from_array(random((1, 4, 1, 1), seed=5), "k")]
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
             helper.make_node("Gather", ["s", "i3"], ["w"], axis=0),
             helper.make_node("Unsqueeze", ["n"], ["n1"], axes=[0]),
             helper.make_node("Unsqueeze", ["w"], ["w1"], axes=[-1]),
             helper.make_node("Concat", ["n1", "minus1", "w1"], ["shape"], axis=0),
             helper.make_node("Mul", ["x", "k"], ["xk"]),
             helper.make_node("Reshape", ["xk", "shape"], ["r"]),
             helper.make_node("Unsqueeze", ["r"], ["r4"], axes=[-2]),
             helper.make_node("Squeeze", ["r4"], ["y"], axes=[-2])]
    graph = helper.make_graph(nodes, "chain", [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@requires_onnx
def test_opset12_unsqueeze_and_squeeze_attribute_axes_fold_and_convert() -> None:
    model = _reshape_chain_model(12)
    x = random((1, 4, 6, 10), seed=1)
    ir = convert_and_compare(model, {"x": x}, input_shapes={"x": (1, 4, 6, 10)})
    assert tuple(ir.main.outputs[0].shape) == (1, 24, 10)
    ops = {op.type for op in ir.main.operators}
    assert "GATHER" not in ops and "SHAPE" not in ops  # the shape subgraph folded away


@requires_onnx
def test_opset12_constant_unsqueeze_folds_with_its_own_opset() -> None:
    """The folder itself: an opset-12 Unsqueeze of a constant (axes an attribute)."""
    from onnx import helper

    from sdk.base.limits import default_budget
    from sdk.converters.onnx.fold import Folder
    from sdk.converters.onnx.graph import Node, ValueInfo

    node = Node.from_proto(helper.make_node("Unsqueeze", ["a"], ["b"], axes=[0, -1]), 0)
    folder = Folder(12, "<test>", default_budget())
    out = folder.fold_node(node, [ValueInfo.constant(np.array([2, 3], np.int64))], {})
    assert out[0].shape == (1, 2, 1) and out[0].tolist() == [[[2], [3]]]


@requires_onnx
def test_comparisons_without_schema_inference_get_static_shapes() -> None:
    """GreaterOrEqual / LessOrEqual (opset 12+) on a run-time value: ONNX's schema has no
    shape inference for them; the output shape is the broadcast of the inputs'."""
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Sigmoid", ["x"], ["p"]),
             helper.make_node("GreaterOrEqual", ["p", "half"], ["ge"]),
             helper.make_node("LessOrEqual", ["p", "quarter"], ["le"]),
             helper.make_node("Or", ["ge", "le"], ["either"]),
             helper.make_node("Where", ["either", "p", "zero"], ["y"])]
    inits = [numpy_helper.from_array(np.array(0.5, np.float32), "half"),
             numpy_helper.from_array(np.array([0.25], np.float32), "quarter"),
             numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    model = helper.make_model(helper.make_graph(nodes, "cmp", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 13)])
    convert_and_compare(model, {"x": random((2, 5), seed=2, scale=2.0)})
