"""INT8 export of an ONNX model built with onnx.helper (NCHW, dynamic batch, as PyTorch
writes it), checked against onnxruntime's float outputs in stock LiteRT."""

from __future__ import annotations

import numpy as np

import sdk
from sdk.converters.ir import DType
from sdk.converters.tflite import read_tflite
from sdk.run.runner import LiteRTRunner

from conftest import requires_onnx
from onnx_testing import run_onnx
from test_onnx_models import small_cnn

pytestmark = requires_onnx


def test_onnx_cnn_int8(tmp_path) -> None:
    model = small_cnn()
    x = np.random.default_rng(0).uniform(-1, 1, (160, 3, 16, 16)).astype(np.float32)
    path = tmp_path / "cnn.onnx"
    path.write_bytes(model.SerializeToString())
    res = sdk.export(path, "int8", calibration=x[:128], validation=x[128:],
                     output=tmp_path / "cnn_int8.tflite")
    assert res.source == "onnx: cnn" and not res.fallbacks
    assert res.inputs[0].shape == (1, 3, 16, 16)  # the ONNX layout is kept at the boundary
    ops = res.op_counts
    assert ops["CONV_2D"] == 2 and ops["DEPTHWISE_CONV_2D"] == 1
    assert ops["FULLY_CONNECTED"] == 2 and ops["SOFTMAX"] == 1
    # every op between the edge QUANTIZE / DEQUANTIZE runs on int8
    for op in read_tflite(res.path).main.operators:
        if op.type not in ("QUANTIZE", "DEQUANTIZE"):
            assert all(t.dtype is not DType.FLOAT32 for t in (*op.inputs, *op.outputs)
                       if t is not None), op.type
    want = run_onnx(model, {"x": x[128:]})[0]
    for reference in (False, True):
        runner = LiteRTRunner(res.path.read_bytes(), reference=reference)
        got = np.concatenate([runner.invoke([x[i:i + 1]])[0] for i in range(128, 160)])
        assert (got.argmax(1) == want.argmax(1)).mean() >= 0.95
        assert np.abs(got - want).max() < 0.05
    assert res.fidelity.outputs[0].sqnr_db > 30
    # the same through a ModelProto and the CLI's --input-shape for a batch of 2
    res2 = sdk.export(model, calibration=x[:64], output=tmp_path / "b2.tflite",
                      input_shapes={None: (2, 3, 16, 16)}, per_layer=False)
    assert res2.inputs[0].shape == (2, 3, 16, 16)
    assert res2.fidelity.outputs[0].top1_agreement >= 0.95
