"""Fuzz `read_onnx` (atheris): only EdgeSDKError may escape. See tests/fuzz/README.md.

The seeds are small models built with onnx.helper that convert cleanly and between them use
what the importer does: constant folding of shape subgraphs (Shape, Gather, Concat, Range,
ConstantOfShape, Expand), Loop and If folding, Conv (grouped, transposed, with BatchNorm),
pools, Resize, DepthToSpace / SpaceToDepth, LayerNorm, Gemm / MatMul, data movement.
"""

from __future__ import annotations

from typing import Any

import harness

with harness.instrumented("sdk"):
    import numpy as np

    from sdk.converters.onnx import read_onnx

OPSET = 17


def _model(nodes: list[Any], inputs: dict[str, list[int]], outputs: list[str],
           inits: dict[str, np.ndarray] | None = None, opset: int = OPSET) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, "seed",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model.SerializeToString()


def _loop_body() -> Any:
    from onnx import TensorProto, helper

    return helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Cast", ["i"], ["fi"], to=TensorProto.FLOAT),
         helper.make_node("Add", ["acc_in", "fi"], ["acc_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [1])])


def seeds() -> dict[str, bytes]:
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    f32 = np.float32
    w = rng.standard_normal((4, 3, 3, 3)).astype(f32)
    out: dict[str, bytes] = {}
    out["conv_relu"] = _model(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[1, 1]),
         helper.make_node("Relu", ["c"], ["y"])],
        {"x": [1, 3, 8, 8]}, ["y"], {"w": w, "b": np.zeros(4, f32)})
    out["shape_subgraph"] = _model(
        [helper.make_node("Shape", ["x"], ["s"]),
         helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
         helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
         helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
         helper.make_node("Reshape", ["x", "shape"], ["flat"]),
         helper.make_node("Gemm", ["flat", "fw", "fb"], ["y"], transB=1)],
        {"x": [1, 2, 4, 4]}, ["y"],
        {"zero": np.array(0, np.int64), "axes0": np.array([0], np.int64),
         "minus1": np.array([-1], np.int64), "fw": rng.standard_normal((5, 32)).astype(f32),
         "fb": np.zeros(5, f32)})
    out["constant_of_shape"] = _model(
        [helper.make_node("ConstantOfShape", ["shape"], ["c"],
                          value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])),
         helper.make_node("Range", ["r0", "r1", "r2"], ["r"]),
         helper.make_node("Cast", ["r"], ["rf"], to=TensorProto.FLOAT),
         helper.make_node("Expand", ["rf", "shape"], ["e"]),
         helper.make_node("Add", ["x", "c"], ["a"]),
         helper.make_node("Mul", ["a", "e"], ["y"])],
        {"x": [2, 3]}, ["y"],
        {"shape": np.array([2, 3], np.int64), "r0": np.array(0, np.int64),
         "r1": np.array(3, np.int64), "r2": np.array(1, np.int64)})
    out["loop_if"] = _model(
        [helper.make_node("Loop", ["trip", "", "acc0"], ["acc"], body=_loop_body()),
         helper.make_node("If", ["flag"], ["picked"],
                          then_branch=helper.make_graph(
                              [helper.make_node("Identity", ["acc"], ["t"])], "then", [],
                              [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1])]),
                          else_branch=helper.make_graph(
                              [helper.make_node("Neg", ["acc"], ["e"])], "else", [],
                              [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1])])),
         helper.make_node("Add", ["x", "picked"], ["y"])],
        {"x": [1, 4]}, ["y"],
        {"trip": np.array(5, np.int64), "acc0": np.zeros(1, f32), "flag": np.array(True)})
    out["pools"] = _model(
        [helper.make_node("MaxPool", ["x"], ["m"], kernel_shape=[3, 3], strides=[2, 2],
                          pads=[1, 1, 1, 1]),
         helper.make_node("AveragePool", ["m"], ["a"], kernel_shape=[2, 2],
                          pads=[0, 0, 1, 1], count_include_pad=1),
         helper.make_node("GlobalAveragePool", ["a"], ["y"])],
        {"x": [1, 2, 9, 9]}, ["y"])
    out["resize_depth"] = _model(
        [helper.make_node("Resize", ["x", "", "scales"], ["r"], mode="nearest"),
         helper.make_node("SpaceToDepth", ["r"], ["s"], blocksize=2),
         helper.make_node("DepthToSpace", ["s"], ["y"], blocksize=2, mode="CRD")],
        {"x": [1, 4, 4, 4]}, ["y"], {"scales": np.array([1, 1, 2, 2], f32)})
    out["grouped_bn"] = _model(
        [helper.make_node("Conv", ["x", "gw"], ["c"], group=2, pads=[1, 1, 1, 1]),
         helper.make_node("BatchNormalization", ["c", "g", "bb", "mu", "var"], ["n"]),
         helper.make_node("ConvTranspose", ["n", "tw"], ["y"], strides=[2, 2])],
        {"x": [1, 4, 6, 6]}, ["y"],
        {"gw": rng.standard_normal((4, 2, 3, 3)).astype(f32), "g": np.ones(4, f32),
         "bb": np.zeros(4, f32), "mu": np.zeros(4, f32), "var": np.ones(4, f32),
         "tw": rng.standard_normal((4, 2, 2, 2)).astype(f32)})
    out["layernorm_attention"] = _model(
        [helper.make_node("LayerNormalization", ["x", "ls", "lb"], ["n"], axis=-1),
         helper.make_node("MatMul", ["n", "q"], ["h"]),
         helper.make_node("Softmax", ["h"], ["p"], axis=-1),
         helper.make_node("Transpose", ["p"], ["y"], perm=[0, 2, 1])],
        {"x": [1, 4, 8]}, ["y"],
        {"ls": np.ones(8, f32), "lb": np.zeros(8, f32),
         "q": rng.standard_normal((8, 8)).astype(f32)})
    out["data_movement"] = _model(
        [helper.make_node("Split", ["x", "sizes"], ["a", "b"], axis=1),
         helper.make_node("Slice", ["a", "st", "en", "ax"], ["s"]),
         helper.make_node("Pad", ["s", "pads"], ["p"], mode="reflect"),
         helper.make_node("Tile", ["b", "reps"], ["t"]),
         helper.make_node("Concat", ["p", "t"], ["c"], axis=1),
         helper.make_node("Flatten", ["c"], ["y"], axis=1)],
        {"x": [1, 4, 4, 4]}, ["y"],
        {"sizes": np.array([2, 2], np.int64), "st": np.array([0, 1], np.int64),
         "en": np.array([4, 3], np.int64), "ax": np.array([2, 3], np.int64),
         "pads": np.array([0, 0, 0, 1, 0, 0, 0, 1], np.int64),
         "reps": np.array([1, 2, 1, 1], np.int64)})
    return out


def test_one_input(data: bytes) -> None:
    harness.expect_project_errors(read_onnx, data)


if __name__ == "__main__":
    harness.main(test_one_input, seeds)
