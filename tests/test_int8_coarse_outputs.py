"""A sigmoid output whose scores stay far below the int8 kernel's 1/256 step stays float.

Wake-word heads score around 1e-4: LiteRT's int8 LOGISTIC writes at the fixed scale 1/256, so
every score rounded to 0 (0 dB, where ONNX Runtime's QDQ kept 10 dB on the same model).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sdk

pytest.importorskip("onnx")
from onnx import helper

from onnx_testing import make_model, random


def _head(bias: float) -> bytes:
    w = random((16, 4), seed=1, scale=0.2)
    b = np.full((4,), bias, np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["z"]),
             helper.make_node("Sigmoid", ["z"], ["y"])]
    return make_model(nodes, {"x": [1, 16]}, ["y"], {"w": w, "b": b}).SerializeToString()


def test_rare_scores_keep_their_sigmoid_in_float(tmp_path: Path) -> None:
    result = sdk.export(_head(-9.0), "int8", calibration=random((64, 1, 16), seed=2),
                        output=tmp_path / "head.tflite")
    assert min(o.sqnr_db for o in result.fidelity.outputs) > 25.0, result.fidelity
    assert any("LOGISTIC" in n and "kept in float" in n for n in result.notes), result.notes
    assert result.precision_notes


def test_ordinary_scores_stay_int8(tmp_path: Path) -> None:
    result = sdk.export(_head(0.0), "int8", calibration=random((64, 1, 16), seed=2),
                        output=tmp_path / "head.tflite")
    assert not any("kept in float" in n for n in result.notes), result.notes


def test_int8_outputs_asked_for_stay_int8(tmp_path: Path) -> None:
    result = sdk.export(_head(-9.0), "int8", calibration=random((64, 1, 16), seed=2),
                        output=tmp_path / "head.tflite", output_type="int8")
    assert result.outputs[0].dtype == "int8"
    assert not any("kept in float" in n for n in result.notes)
