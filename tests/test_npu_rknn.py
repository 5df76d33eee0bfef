"""Rockchip RKNN targets: rknn-toolkit2 in its own cached virtual environment, driven over a JSON
subprocess protocol; its x86 simulator against LiteRT (issue 18).

Tests that need the toolchain skip, with the command that installs it, when it is missing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from npu_support import build_classifier, images

from sdk.base.errors import ToolchainError
from sdk.cli import main
from sdk.converters.targets import compile_for_target
from sdk.converters.targets.report import NPU
from sdk.converters.targets.rknn import placement
from sdk.converters.targets.toolchain import find_toolchain, install_toolchain
from sdk.target_export import export_for_target

from conftest import requires_tf


def _installed() -> str | None:
    try:
        find_toolchain("rknn")
        return None
    except ToolchainError as exc:
        return str(exc)


_missing = _installed()
requires_rknn = pytest.mark.skipif(_missing is not None, reason=f"{_missing}")


@pytest.fixture
def no_toolchains(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "toolchains"
    monkeypatch.setenv("EDGESDK_TOOLCHAINS", str(root))
    return root


def test_missing_toolchain_names_the_install_command(no_toolchains, tmp_path) -> None:
    model = build_classifier(tmp_path / "m.tflite")
    with pytest.raises(ToolchainError, match=r"install it with: edgesdk toolchain install rknn$"):
        compile_for_target(model, "rk3588")


def test_broken_toolchain_names_the_reinstall_command(no_toolchains, tmp_path) -> None:
    model = build_classifier(tmp_path / "m.tflite")
    venv = no_toolchains / "rknn"
    venv.mkdir(parents=True)  # an install that never finished its marker
    with pytest.raises(ToolchainError, match=r"broken .*edgesdk toolchain install rknn --force"):
        compile_for_target(model, "rk3588")
    (venv / "edgesdk-toolchain.json").write_text(json.dumps({"version": "2.5.0"}))
    with pytest.raises(ToolchainError, match=r"bin/python is missing.*--force"):
        compile_for_target(model, "rk3588")
    # a Python that runs but cannot answer (here: exits at once without a reply)
    (venv / "bin").mkdir()
    os.symlink("/bin/false", venv / "bin" / "python")
    with pytest.raises(ToolchainError, match=r"did not answer.*--force"):
        compile_for_target(model, "rk3588")
    with pytest.raises(ToolchainError, match="--force"):
        find_toolchain("rknn", verify=True)


def test_failed_install_leaves_nothing_behind(no_toolchains) -> None:
    with pytest.raises(ToolchainError, match="create a virtual environment"):
        install_toolchain("rknn", python="/nonexistent/python3")
    assert not no_toolchains.exists() or list(no_toolchains.iterdir()) == []


def test_toolchain_status_command(no_toolchains, capsys) -> None:
    assert main(["toolchain", "status", "rknn"]) == 1
    out = capsys.readouterr().out
    assert "edgesdk toolchain install rknn" in out and str(no_toolchains) in out


def test_layer_table_parsing() -> None:
    """The table rknn-toolkit2 2.5.0 prints while building (verbose), as it looks in its log."""
    log = "\n".join([
        "D RKNN: [05:22:06.223] " + "-" * 40,
        "D RKNN: [05:22:06.223]      Network Layer Information Table",
        "D RKNN: [05:22:06.223] " + "-" * 40,
        "D RKNN: [05:22:06.223] ID   OpType    DataType Target InputShape  OutputShape  "
        "Cycles(DDR/NPU/Total)  RW(KB)  FullName",
        "D RKNN: [05:22:06.223] " + "-" * 40,
        "D RKNN: [05:22:06.223] 0    InputOperator  INT8  NPU  \\  (1,1,8,8)  0/0/0  0  "
        "InputOperator:x",
        "D RKNN: [05:22:06.223] 1    ConvClip  INT8  NPU  (1,1,8,8),(16,1,3,3),(16)  (1,16,8,8)"
        "  155/576/576  2  Conv:stem",
        "D RKNN: [05:22:06.223] 2    ConvRelu  INT8  NPU  (1,16,8,8),(1,16,3,3),(16)  "
        "(1,16,8,8)  115/576/576  1  Conv:dw",
        "D RKNN: [05:22:06.223] 3    Reshape  INT8  CPU  (1,16,8,8),(2)  (1,1024)  0/0/0  0  "
        "Reshape:flat",
        "D RKNN: [05:22:06.223] 4    OutputOperator  INT8  CPU  (1,1024)  \\  0/0/0  0  "
        "OutputOperator:y",
        "D RKNN: [05:22:06.223] " + "-" * 40,
    ])
    layers, notes = placement(log)
    assert [(x.op_type, x.placement, x.macs, x.cycles) for x in layers] == [
        ("ConvClip", NPU, 16 * 64 * 9, 576), ("ConvRelu", NPU, 16 * 64 * 9, 576),
        ("Reshape", "CPU", 0, 0)]
    assert "Reshape on the CPU" in layers[2].reason and notes == []
    assert placement("no table here")[0] == []


@requires_rknn
@pytest.mark.slow
def test_rknn_compile_and_simulator_agree_with_litert(tmp_path) -> None:
    model = build_classifier(tmp_path / "m.tflite")
    result = export_for_target(model, target="rk3588", calibration=images(96),
                               output=tmp_path / "m_int8.tflite", input_type="int8",
                               output_type="int8")
    report = result.target
    assert report.compiled_path.exists() and report.compiled_path.suffix == ".rknn"
    assert report.npu_mac_share == 1.0, report.summary()
    assert any(layer.op_type.startswith("Conv") for layer in report.npu_layers)
    sim = report.simulator
    assert sim is not None and sim.samples > 0
    assert sim.outputs[0].sqnr_db > 20 and sim.outputs[0].top1_agreement >= 0.9, report.summary()
    assert json.loads(result.report_path.read_text())["target"]["simulator"]["samples"] > 0


@requires_rknn
@requires_tf
@pytest.mark.slow
def test_rknn_digits_models(digits_keras, digits_data, tmp_path) -> None:
    from sdk.examples import digits_mobilenet

    for name, keras_model in (("cnn", digits_keras),
                              ("mobilenet", digits_mobilenet(digits_data))):
        result = export_for_target(keras_model, target="rk3566",
                                   calibration=digits_data.x_train[:256],
                                   validation=digits_data.x_test[:64],
                                   output=tmp_path / f"{name}.tflite", input_type="int8",
                                   output_type="int8", per_layer=False)
        report = result.target
        assert report.npu_mac_share == 1.0, report.summary()
        out = report.simulator.outputs[0]
        assert out.sqnr_db > 20 and out.top1_agreement >= 0.95, report.summary()
