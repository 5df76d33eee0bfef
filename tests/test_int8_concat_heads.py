"""Detector heads that concatenate tensors of very different ranges (YOLOv8: box coordinates in
pixels next to sigmoid class scores). Issue 12, class 1: the CONCATENATION took the LOGISTIC's
fixed 1/256 scale and clamped every box to 0.996; and one int8 scale cannot hold 0..320 and 0..1
at once, so such an output tail stays float."""

from __future__ import annotations

import numpy as np
import pytest

import sdk
from sdk.converters.tflite import read_tflite

from conftest import requires_onnx
from onnx_testing import make_model, run_onnx

pytestmark = requires_onnx

BOXES, CLASSES, SIDE = 4, 6, 8


def _yolo_head(pixels: float = 320.0):
    """Conv -> ReLU -> x pixels (boxes) and Conv -> Sigmoid (scores), concatenated on channels
    into [1, 10, 64], as YOLOv8's export writes its output."""
    from onnx import helper

    rng = np.random.default_rng(0)
    inits = {
        "wb": (rng.standard_normal((BOXES, 3, 1, 1)) * 0.5).astype(np.float32),
        "bb": np.full(BOXES, 0.5, np.float32),
        "ws": (rng.standard_normal((CLASSES, 3, 1, 1)) * 2.0).astype(np.float32),
        "bs": np.full(CLASSES, -1.0, np.float32),
        "px": np.array(pixels, np.float32),
        "shape_b": np.array([1, BOXES, SIDE * SIDE], np.int64),
        "shape_s": np.array([1, CLASSES, SIDE * SIDE], np.int64),
    }
    nodes = [
        helper.make_node("Conv", ["x", "wb", "bb"], ["cb"]),
        helper.make_node("Relu", ["cb"], ["rb"]),
        helper.make_node("Mul", ["rb", "px"], ["boxes4"]),
        helper.make_node("Reshape", ["boxes4", "shape_b"], ["boxes"]),
        helper.make_node("Conv", ["x", "ws", "bs"], ["cs"]),
        helper.make_node("Sigmoid", ["cs"], ["scores4"]),
        helper.make_node("Reshape", ["scores4", "shape_s"], ["scores"]),
        helper.make_node("Concat", ["boxes", "scores"], ["out"], axis=1),
    ]
    return make_model(nodes, {"x": [1, 3, SIDE, SIDE]}, ["out"], inits)


def _data(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 3, SIDE, SIDE)).astype(np.float32)


def _sqnr(f: np.ndarray, q: np.ndarray) -> float:
    noise = float(((f.astype(np.float64) - q) ** 2).sum())
    return float("inf") if noise == 0 else 10 * np.log10(float((f.astype(np.float64) ** 2).sum())
                                                         / noise)


def _run(path, x: np.ndarray) -> np.ndarray:
    from sdk.run.runner import LiteRTRunner

    runner = LiteRTRunner(path.read_bytes())
    return np.concatenate([runner.invoke([x[i:i + 1]])[0] for i in range(len(x))])


@pytest.fixture(scope="module")
def head():
    model = _yolo_head()
    cal, val = _data(96, 1), _data(16, 2)
    ref = np.concatenate([run_onnx(model, {"x": val[i:i + 1]})[0] for i in range(len(val))])
    return model, cal, val, ref


def test_concat_of_boxes_and_scores_keeps_both(head, tmp_path) -> None:
    model, cal, val, ref = head
    res = sdk.export(model, "int8", calibration=cal, validation=val,
                     output=tmp_path / "head.tflite", per_layer=False)
    got = _run(res.path, val)
    # boxes are not clamped to the scores' 0.996 (the bug: every box read 0.996)
    assert got[:, :BOXES].max() > 100
    assert _sqnr(ref[:, :BOXES], got[:, :BOXES]) > 30
    # the scores keep their own scale: a shared 0..320 scale would leave them ~2 bits
    assert _sqnr(ref[:, BOXES:], got[:, BOXES:]) > 30
    # the tail that joins them is float, and the report says why
    concat = [name for name, why in res.fallbacks.items() if "ranges differ" in why]
    assert concat and any(name.startswith("CONCATENATION") or "Concat" in name
                          for name in concat), res.fallbacks
    ops = read_tflite(res.path).main.operators
    concat_ops = [op for op in ops if op.type == "CONCATENATION"]
    assert concat_ops and all(t.dtype.name == "FLOAT32" for t in concat_ops[0].inputs)
    # each input keeps its own scale: the scores LOGISTIC's 1/256 (no requantisation)
    logistic = next(op for op in ops if op.type == "LOGISTIC")
    assert abs(float(logistic.outputs[0].quant.scale[0]) - 1 / 256) < 1e-9


def test_int8_output_requantises_the_fixed_scale_input(head, tmp_path) -> None:
    """With int8 outputs the concatenation stays int8 (one scale by definition): the scores are
    requantised from LOGISTIC's 1/256 into the concatenation's scale (an int8 -> int8
    QUANTIZE), never the boxes clamped into the scores' scale."""
    model, cal, val, _ = head
    res = sdk.export(model, "int8", calibration=cal, validation=val, output_type="int8",
                     output=tmp_path / "head_int8.tflite", per_layer=False)
    ops = read_tflite(res.path).main.operators
    concat = next(op for op in ops if op.type == "CONCATENATION")
    out_scale = float(concat.outputs[0].quant.scale[0])
    assert out_scale > 1.0  # ~320 / 255, not 1/256
    requant = [op for op in ops if op.type == "QUANTIZE" and op.inputs[0].dtype.name == "INT8"]
    assert requant, "the LOGISTIC output must be requantised into the concatenation's scale"
    assert any(abs(float(op.inputs[0].quant.scale[0]) - 1 / 256) < 1e-9 for op in requant)
    assert not any("ranges differ" in why for why in res.fallbacks.values())
    assert res.fidelity.outputs[0].sqnr_db > 30


def test_same_scale_op_after_logistic_still_shares_its_scale(tmp_path) -> None:
    """A RESHAPE of a sigmoid holds the same values: it keeps the fixed 1/256 scale (no
    requantisation where none is needed)."""
    from onnx import helper

    rng = np.random.default_rng(3)
    inits = {"w": (rng.standard_normal((CLASSES, 3, 1, 1)) * 2).astype(np.float32),
             "shape": np.array([1, CLASSES * SIDE * SIDE], np.int64)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("Sigmoid", ["c"], ["s"]),
             helper.make_node("Reshape", ["s", "shape"], ["out"])]
    model = make_model(nodes, {"x": [1, 3, SIDE, SIDE]}, ["out"], inits)
    res = sdk.export(model, "int8", calibration=_data(64, 4), output=tmp_path / "s.tflite",
                     output_type="int8", per_layer=False)
    ops = read_tflite(res.path).main.operators
    reshape = next(op for op in ops if op.type == "RESHAPE")
    assert abs(float(reshape.outputs[0].quant.scale[0]) - 1 / 256) < 1e-9
    assert not [op for op in ops if op.type == "QUANTIZE" and op.inputs[0].dtype.name == "INT8"]
