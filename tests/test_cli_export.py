"""`edgesdk export`: the command line over sdk.export."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sdk.cli import main

from conftest import requires_tf

pytestmark = requires_tf


@pytest.fixture(scope="module")
def calibration_npy(digits_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "cal.npy"
    np.save(path, digits_data.x_train[:200])
    return path


def test_export_command_prints_report(digits_float_tflite, calibration_npy, tmp_path,
                                      capsys) -> None:
    out = tmp_path / "digits_int8.tflite"
    rc = main(["export", str(digits_float_tflite), "-c", str(calibration_npy), "-o", str(out),
               "--method", "minmax"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert out.exists() and (tmp_path / "digits_int8.report.json").exists()
    assert "SQNR dB" in captured.out and "top-1 agree" in captured.out
    assert "per-layer SQNR" in captured.out and "CONV_2D" in captured.out
    # progress goes to stderr (not a terminal here: one line per stage)
    assert "calibrating" in captured.err and "validating" in captured.err


def test_export_command_json_and_io_types(digits_float_tflite, calibration_npy, tmp_path,
                                          capsys) -> None:
    out = tmp_path / "io.tflite"
    rc = main(["export", str(digits_float_tflite), "int8", "-c", str(calibration_npy), "-o",
               str(out), "--input-type", "int8", "--output-type", "uint8", "--json", "-q"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    report = json.loads(captured.out)
    assert report["inputs"][0]["dtype"] == "int8" and report["outputs"][0]["dtype"] == "uint8"
    assert report["fidelity"]["outputs"][0]["top1_agreement"] >= 0.98
    assert captured.err == ""


def test_export_command_image_folder(digits_float_tflite, digits_data, tmp_path,
                                     capsys) -> None:
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(digits_data.x_train[:40]):
        # 16x16 RGB files: the command resizes and converts them to the model's 8x8 gray
        big = np.kron(img[..., 0], np.ones((2, 2)))
        rgb = np.repeat(np.round(big * 255).astype(np.uint8)[..., None], 3, axis=2)
        Image.fromarray(rgb, "RGB").save(folder / f"{i}.png")
    out = tmp_path / "img.tflite"
    rc = main(["export", str(digits_float_tflite), "-c", str(folder), "-o", str(out),
               "--resize", "area", "--channels", "gray", "-q"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "images in" in captured.out and out.exists()


def test_export_command_errors(digits_float_tflite, tmp_path, capsys) -> None:
    out = tmp_path / "x.tflite"
    assert main(["export", str(digits_float_tflite), "-o", str(out), "-q"]) == 3  # bad input
    assert "calibration data is required" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nope.onnx"), "-c", "synthetic", "-q"]) == 3
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer at all")
    assert main(["export", str(bad), "-c", "synthetic", "-o", str(out), "-q"]) == 3
    assert "not a TFLite model" in capsys.readouterr().err
    assert not out.exists()
