"""A score output (LOGISTIC / TANH returned by the model) reaches every int8 output code, even
when the calibration data never produced a positive logit.

mp_hand_landmark_full's hand-presence flag, calibrated on images without a clear hand, saw
logits up to -0.2: its int8 input range ended at 0, so the exported flag could never exceed 0.5
(a float 0.86 came out as exactly 0.5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sdk
from sdk.converters.quantize.score_ranges import REACH, returned_tensors

pytest.importorskip("onnx")
from onnx import helper

from onnx_testing import make_model, random, run_tflite

W = random((16, 2), seed=1, scale=0.25)
BIAS = -2.0


def _head(gate: bool = False) -> bytes:
    """x [1, 16] -> MatMul -> Add -> Sigmoid -> y (gate: y multiplies the logits, so the
    sigmoid is a gate inside the model, not its output)."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["z"]),
             helper.make_node("Sigmoid", ["z"], ["s"])]
    if gate:
        nodes.append(helper.make_node("Mul", ["z", "s"], ["y"]))
    else:
        nodes.append(helper.make_node("Reshape", ["s", "shape"], ["y"]))
    inits = {"w": W, "b": np.full((2,), BIAS, np.float32)}
    if not gate:
        inits["shape"] = np.array([1, 2], np.int64)
    return make_model(nodes, {"x": [1, 16]}, ["y"], inits).SerializeToString()


def _with_logit(x: np.ndarray, logit: float | None) -> np.ndarray:
    """`x` [N, 16] moved along w (the first logit's weights) so that its first logit is
    `logit` (None: at most -0.5)."""
    w = W[:, 0].astype(np.float64)
    now = x.astype(np.float64) @ w + BIAS
    target = np.minimum(now, -0.5) if logit is None else np.full_like(now, logit)
    return (x + np.outer(target - now, w / (w @ w))).astype(np.float32)


def _calibration() -> np.ndarray:
    """Samples whose first logit never exceeds -0.5 (no positive score seen)."""
    return _with_logit(random((64, 16), seed=2), None)[:, None, :]


def test_a_score_above_what_calibration_saw_is_not_clamped(tmp_path: Path) -> None:
    out = tmp_path / "head.tflite"
    result = sdk.export(_head(), "int8", calibration=_calibration(), output=out)
    cal = _calibration()[:, 0]
    # a calibration sample moved to a positive logit, the one that stays furthest inside the
    # calibrated input range
    moved = _with_logit(cal, 2.0)
    x = moved[int(np.argmin(np.abs(moved).max(axis=1)))][None, :]
    assert np.abs(x).max() < np.abs(cal).max()
    expected = 1.0 / (1.0 + np.exp(-2.0))  # 0.88
    got = run_tflite(out.read_bytes(), {"x": x})[0].reshape(-1)[0]
    assert abs(got - expected) < 0.02, (got, expected)  # before: exactly 0.5
    assert any("every int8 output code is reachable" in n for n in result.notes), result.notes


def test_a_side_that_calibration_reached_keeps_its_range(tmp_path: Path) -> None:
    # scores on both sides of 0.5, the largest logit (~2) short of the last code's 5.54
    x = random((64, 1, 16), seed=2, scale=2.5)
    logits = x[:48, 0] @ W + BIAS  # the calibration part (the last 20% validate)
    assert (logits > 0).sum() >= 8 and 0 < logits.max() < 4
    result = sdk.export(_head(), "int8", calibration=x, output=tmp_path / "head.tflite")
    assert not any("every int8 output code is reachable" in n for n in result.notes)


def test_a_gate_inside_the_model_keeps_its_calibrated_range(tmp_path: Path) -> None:
    result = sdk.export(_head(gate=True), "int8", calibration=_calibration(),
                        output=tmp_path / "gate.tflite")
    assert not any("every int8 output code is reachable" in n for n in result.notes)


def test_a_user_chosen_precision_is_left_alone(tmp_path: Path) -> None:
    result = sdk.export(_head(), "int8", calibration=_calibration(),
                        output=tmp_path / "head.tflite", precision={"*Sigmoid*": "int8",
                                                                     "LOGISTIC*": "int8"})
    assert not any("every int8 output code is reachable" in n for n in result.notes)


def test_the_reach_covers_the_first_and_last_output_codes() -> None:
    lo, hi = REACH["LOGISTIC"]
    sig = 1.0 / (1.0 + np.exp(-np.array([lo, hi])))
    # int8 LOGISTIC: scale 1/256, zero point -128: codes 0 .. 255 / 256
    assert np.rint(sig * 256).tolist() == [0.0, 255.0]
    lo, hi = REACH["TANH"]
    # int8 TANH: scale 1/128, zero point 0: -1 .. 127 / 128
    assert np.rint(np.tanh([lo, hi]) * 128).tolist() == [-128.0, 127.0]


def test_returned_tensors_walk_back_through_reshapes() -> None:
    from sdk.converters.onnx import read_onnx

    model = read_onnx(_head())
    g = model.main
    sigmoid = next(op for op in g.operators if op.type == "LOGISTIC")
    assert id(sigmoid.outputs[0]) in returned_tensors(g)
    gate = read_onnx(_head(gate=True)).main
    sigmoid = next(op for op in gate.operators if op.type == "LOGISTIC")
    assert id(sigmoid.outputs[0]) not in returned_tensors(gate)
