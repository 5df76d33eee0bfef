"""Issue 12 (ddddocr_rec: 78.5 MB INT8 vs 54 MB float): ops that read one float weight tensor,
as every step of an unrolled LSTM / GRU / RNN reads its recurrent weights, read ONE quantised
copy in the INT8 file, not one per step."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from test_onnx_recurrent import recurrent_model

from conftest import requires_onnx
from onnx_testing import random


def _int8_weights(data: bytes, rows: int, cols: int) -> list[Any]:
    from sdk.converters import DType, read_tflite

    model = read_tflite(data)
    return [t for t in model.main.tensors if t.is_constant and t.dtype is DType.INT8
            and tuple(t.shape) == (rows, cols)]


@requires_onnx
@pytest.mark.parametrize("op,gates", [("LSTM", 4), ("GRU", 3), ("RNN", 1)])
def test_unrolled_recurrent_weights_are_quantised_once(op: str, gates: int,
                                                       tmp_path: Any) -> None:
    import sdk

    steps, hidden = 12, 48
    model = recurrent_model(op, steps=steps, batch=1, size=8, hidden=hidden,
                            direction="bidirectional")
    path = tmp_path / "rnn.onnx"
    path.write_bytes(model.SerializeToString())
    calib = [{"X": random((steps, 1, 8), 100 + k)} for k in range(16)]
    out = tmp_path / "rnn.tflite"
    sdk.export(str(path), "int8", calibration=calib, output=str(out), report=False)
    data = out.read_bytes()
    # the recurrent weights R: [gates * hidden, hidden] per direction (GRU splits its candidate
    # gate's rows off: [2 * hidden, hidden] and [hidden, hidden])
    rows = 2 * hidden if op == "GRU" else gates * hidden
    shared = _int8_weights(data, rows, hidden)
    assert len(shared) == 2, [(t.name, t.shape) for t in shared]   # one per direction
    # per-step copies alone would take 2 * steps * rows * hidden bytes
    assert len(data) < 2 * steps * rows * hidden, len(data)


@requires_onnx
def test_shared_weights_still_compute_each_step(tmp_path: Any) -> None:
    """Two FULLY_CONNECTED ops reading one weight tensor with different inputs: one int8 weight
    buffer, both outputs still match float."""
    import onnx
    from onnx import helper

    import sdk

    from onnx_testing import make_model, run_tflite

    w = random((24, 16), 3, 0.3)
    nodes = [helper.make_node("MatMul", ["a", "W"], ["ya"]),
             helper.make_node("MatMul", ["b", "W"], ["yb"])]
    model = make_model(nodes, {"a": [4, 24], "b": [4, 24]}, ["ya", "yb"], {"W": w}, opset=14)
    assert isinstance(model, onnx.ModelProto)
    calib = [{"a": random((4, 24), 10 + k), "b": 3 * random((4, 24), 50 + k)}
             for k in range(16)]
    out = tmp_path / "two.tflite"
    sdk.export(model, "int8", calibration=calib, output=str(out), report=False)
    data = out.read_bytes()
    assert len(_int8_weights(data, 16, 24)) == 1
    feeds = {"a": random((4, 24), 99), "b": 3 * random((4, 24), 98)}
    got = run_tflite(data, feeds)
    for ref, y in zip((feeds["a"] @ w, feeds["b"] @ w), got, strict=True):
        err = float(np.sum((ref - y) ** 2)) / float(np.sum(ref ** 2))
        assert err < 1e-2, err
