"""`edgesdk export --constant-input NAME=VALUE`: an ONNX input that is a setting (silero-vad's
sample rate) fixed from the command line; without it the error names the input and the option."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_onnx_branch_inputs import _sample_rate_model

from conftest import requires_onnx
from onnx_testing import random

pytestmark = requires_onnx


@pytest.fixture()
def vad_like(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "vad.onnx"
    model.write_bytes(_sample_rate_model().SerializeToString())
    cal = tmp_path / "cal.npy"
    np.save(cal, random((12, 1, 1, 32), seed=4))
    return model, cal


def test_constant_input_option_folds_the_setting(vad_like: tuple[Path, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from sdk.cli import main

    model, cal = vad_like
    out = tmp_path / "vad_int8.tflite"
    assert main(["export", str(model), "-c", str(cal), "-o", str(out), "--json",
                 "--constant-input", "sr=16000"]) == 0
    assert out.is_file()
    report = json.loads(capsys.readouterr().out)
    assert [i["name"] for i in report["inputs"]] == ["x"]


def test_without_the_option_the_error_names_input_and_option(
        vad_like: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sdk.cli import main

    model, cal = vad_like
    out = tmp_path / "vad_int8.tflite"
    assert main(["export", str(model), "-c", str(cal), "-o", str(out)]) != 0
    assert "constant_inputs={'sr': <value>}" in capsys.readouterr().err
    assert main(["export", str(model), "-c", str(cal), "-o", str(out),
                 "--constant-input", "sr=fast"]) == 3
    assert "'fast' is not a number" in capsys.readouterr().err
