""".edge against TFLite + the edgesdk delegate, bit for bit (issue 5): the same model exported by
`sdk.export(..., format="edge")` and by `sdk.export(..., format="tflite")` gives identical
outputs in the .edge runtime and in LiteRT with our delegate (LiteRT's builtin kernels for the
nodes the delegate leaves: those are what the .edge runtime reproduces; XNNPACK's int8 kernels
requantise in float and match neither), with 1 and 2 threads on both sides.

Models: the digits CNN (conftest) in int8 / int4 / int2 / ternary, where int2 and ternary
convolutions are edgesdk custom ops in the .tflite file; and ONNX models built with onnx.helper
(the importer's CNN, a MobileNetV3 block with squeeze-excite, and a CNN whose depthwise layer
has a channel count that is not a multiple of 8, with depth multiplier 1 and 2, so LiteRT's
leftover-channel rounding is exercised) in the same four schemes, NCHW and NHWC at the
boundary."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from edge_helpers import SCHEMES, export_pair

from sdk.results import ExportResult
from sdk.run import EdgeModel, Interpreter

from conftest import requires_onnx, requires_tf

#: the .edge kernel each scheme's layers run (XNNPACK-style names; ternary weights are 2-bit
#: fields and run the qc2w kernels, docs/kernels.md)
WEIGHT_KERNELS = {"int8": "qc8w", "int4": "qc4w", "int2": "qc2w", "ternary": "qc2w"}
THREADS = (1, 2)


def assert_same_outputs(tfl: ExportResult, edge: ExportResult, x: np.ndarray,
                        weighted_nodes: int) -> None:
    scheme = tfl.scheme
    assert bool(tfl.custom_ops) == (scheme in ("int2", "ternary")), tfl.custom_ops
    for threads in THREADS:
        ours = EdgeModel(edge.path, threads=threads)
        litert = Interpreter(tfl.path, xnnpack=False, num_threads=threads)
        # every FC / conv / depthwise node runs on the delegate's kernels
        assert litert.report is not None and len(litert.report.claimed) == weighted_nodes
        if scheme != "int8":
            assert any(WEIGHT_KERNELS[scheme] in k for k in ours.kernels()), ours.kernels()
        for i in range(len(x)):
            a = ours.run(x[i:i + 1])
            b = litert.run(x[i:i + 1])
            for mine, theirs in zip(a, b, strict=True):
                assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
                assert np.array_equal(mine, theirs), (
                    f"{scheme}, {threads} threads, sample {i}: "
                    f"{np.count_nonzero(mine != theirs)} of {mine.size} values differ")


# ---------------------------------------------------------------------------- digits CNN
@requires_tf
@pytest.mark.parametrize("scheme", SCHEMES)
def test_digits_cnn_edge_equals_tflite_with_delegate(digits_export_pairs, digits_data,
                                                     scheme) -> None:
    tfl, edge = digits_export_pairs[scheme]
    if scheme != "int8":  # the scheme's layers (dw2, pw2, conv3, fc1) are sub-byte
        assert sum(p.startswith(scheme) for p in tfl.precision.values()) == 4, tfl.precision
    assert_same_outputs(tfl, edge, digits_data.x_test[:200], weighted_nodes=6)


# ---------------------------------------------------------------------------- ONNX models
def depthwise_tail_cnn(multiplier: int) -> Any:
    """Conv 3->12, depthwise 3x3 stride 2 (12 x `multiplier` channels: 4 or 8 left over after
    LiteRT's blocks of 8), ReLU6, pointwise, GlobalAveragePool (a MEAN over 20 channels),
    Gemm; input [1, 3, 9, 9]."""
    from onnx_testing import make_model
    from test_onnx_models import node, w

    c = 12
    nodes = [node("Conv", ["x", "c1", "b1"], "a", pads=[1, 1, 1, 1]), node("Relu", ["a"], "ar"),
             node("Conv", ["ar", "dw", "db"], "d", group=c, pads=[1, 1, 1, 1], strides=[2, 2]),
             node("Clip", ["d", "zero", "six"], "dr"),
             node("Conv", ["dr", "pw", "pb"], "p"), node("Relu", ["p"], "pr"),
             node("GlobalAveragePool", ["pr"], "g"), node("Flatten", ["g"], "f"),
             node("Gemm", ["f", "fw", "fb"], "y", transB=1)]
    inits = {"c1": w(c, 3, 3, 3), "b1": w(c, seed=2),
             "dw": w(c * multiplier, 1, 3, 3, seed=3, scale=0.6), "db": w(c * multiplier, seed=4),
             "pw": w(20, c * multiplier, 1, 1, seed=5), "pb": w(20, seed=6),
             "fw": w(10, 20, seed=7), "fb": w(10, seed=8),
             "zero": np.array(0, np.float32), "six": np.array(6, np.float32)}
    return make_model(nodes, {"x": [1, 3, 9, 9]}, ["y"], inits, opset=13)


def _onnx_models() -> dict[str, tuple[Any, tuple[int, ...], int]]:
    """name -> (ModelProto, NCHW input shape without the batch, weighted nodes)."""
    from test_onnx_models import mobilenet_v3_block, small_cnn

    return {"cnn": (small_cnn(), (3, 16, 16), 5),
            "mobilenet_v3_block": (mobilenet_v3_block(), (8, 10, 10), 5),
            "depthwise_tail": (depthwise_tail_cnn(1), (3, 9, 9), 4),
            "depthwise_tail_x2": (depthwise_tail_cnn(2), (3, 9, 9), 4)}


ONNX_CASES = [(name, scheme, layout) for name in ("cnn", "mobilenet_v3_block", "depthwise_tail",
                                                  "depthwise_tail_x2")
              for scheme in SCHEMES for layout in ("nchw", "nhwc")
              if layout == "nchw" or name.startswith("depthwise_tail")]


@requires_onnx
@pytest.mark.parametrize(("name", "scheme", "layout"), ONNX_CASES)
def test_onnx_model_edge_equals_tflite_with_delegate(name, scheme, layout, tmp_path) -> None:
    model, shape, weighted = _onnx_models()[name]
    x = np.random.default_rng(0).uniform(-1, 1, (48, *shape)).astype(np.float32)
    if layout == "nhwc":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    # all layers in the scheme (no INT8 first/last), so the depthwise layers are sub-byte too
    options = None if scheme == "int8" else {"keep_first": False, "keep_last": False}
    tfl, edge = export_pair(model, scheme, tmp_path, name, x[:32], validation=x[32:],
                            io_layout=layout, scheme_options=options)
    assert ("TRANSPOSE" in tfl.op_counts) == (layout == "nchw")
    assert_same_outputs(tfl, edge, x[32:], weighted_nodes=weighted)
