"""Arm Ethos-U targets: INT8 export then Vela (the [npu] extra), with its placement, per-layer
cycle estimates and reasons for CPU fallbacks (issue 18)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from npu_support import build_classifier, images

from sdk.base.errors import ConversionError, ToolchainError
from sdk.cli import main
from sdk.converters.targets import compile_for_target, parse_target
from sdk.converters.targets.report import CPU, NPU
from sdk.converters.tflite import read_tflite
from sdk.target_export import export_for_target

from conftest import requires_tf

requires_vela = pytest.mark.skipif(importlib.util.find_spec("ethosu") is None,
                                   reason="needs Vela: pip install 'edgesdk[npu]'")
WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _export(tmp_path: Path, head: str, target: str = "ethos-u55-128"):
    model = build_classifier(tmp_path / f"{head.lower()}.tflite", head=head)
    return export_for_target(model, target=target, calibration=images(),
                             output=tmp_path / f"{head.lower()}_int8.tflite",
                             input_type="int8", output_type="int8")


@requires_vela
def test_unsupported_op_is_named_with_vela_reason(tmp_path) -> None:
    result = _export(tmp_path, "LOG_SOFTMAX")
    report = result.target
    cpu = report.cpu_layers
    assert [(c.op_type, c.tensor) for c in cpu] == [("LOG_SOFTMAX", "probs")]
    assert "Unsupported opType" in cpu[0].reason
    assert {layer.op_type for layer in report.npu_layers} >= {"CONV_2D", "FULLY_CONNECTED"}
    assert report.npu_mac_share == 1.0
    assert "LOG_SOFTMAX:probs: LOG_SOFTMAX: Unsupported opType" in result.summary()
    # Vela's output: the NPU part is one ethos-u custom op, LOG_SOFTMAX stays a TFLite op
    compiled = read_tflite(report.compiled_path)
    kinds = [(op.type, op.custom_code) for op in compiled.main.operators]
    assert ("CUSTOM", "ethos-u") in kinds and ("LOG_SOFTMAX", None) in kinds
    saved = json.loads(result.report_path.read_text())["target"]
    assert saved["cpu_ops"] == 1 and saved["layers"][-1]["placement"] == CPU


@requires_vela
@pytest.mark.parametrize("target", ["ethos-u55-64", "ethos-u65-256", "ethos-u85-256"])
def test_supported_model_is_all_npu_with_per_layer_cycles(tmp_path, target) -> None:
    report = _export(tmp_path, "SOFTMAX", target).target
    assert report.cpu_layers == [] and report.npu_mac_share == 1.0
    assert report.config["accelerator"] == target
    for layer in report.layers:
        if layer.op_type in WEIGHTED:
            assert layer.placement == NPU and layer.macs > 0 and layer.cycles, layer
    # every cycle Vela counted is attributed to one of the model's layers
    assert report.cycles_total == sum(layer.cycles or 0 for layer in report.layers)
    assert report.inference_time_s and report.inference_time_s > 0
    assert report.sram_bytes and report.sram_bytes > 0


@requires_vela
def test_cli_target_prints_placement(tmp_path, capsys) -> None:
    import numpy as np

    model = build_classifier(tmp_path / "m.tflite", head="LOG_SOFTMAX")
    np.save(tmp_path / "cal.npy", images())
    out = tmp_path / "m_int8.tflite"
    rc = main(["export", str(model), "-c", str(tmp_path / "cal.npy"), "-o", str(out),
               "--target", "ethos-u55-256", "-q"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "target ethos-u55-256 (vela" in captured.out
    assert "3 on the NPU, 1 on the CPU" in captured.out
    assert (tmp_path / "m_int8_vela.tflite").exists()
    # --target defaults the model's I/O to int8: no QUANTIZE/DEQUANTIZE left for the CPU
    report = json.loads((tmp_path / "m_int8.report.json").read_text())
    assert report["inputs"][0]["dtype"] == "int8"


def test_unknown_target_and_wrong_scheme_fail_before_any_work(tmp_path) -> None:
    with pytest.raises(ConversionError, match="known targets: ethos-u55-32"):
        export_for_target(tmp_path / "missing.tflite", target="ethos-u99")
    with pytest.raises(ConversionError, match="full-integer INT8"):
        export_for_target(tmp_path / "missing.tflite", "int4", target="ethos-u55-128")
    with pytest.raises(ConversionError, match=r"reads \.tflite, not format 'edge'"):
        export_for_target(tmp_path / "missing.tflite", target="rk3588",
                          output=tmp_path / "m.edge")
    assert parse_target("RK3588").compiler == "rknn"


def test_missing_vela_names_the_install_command(tmp_path, monkeypatch) -> None:
    import sdk.converters.targets.vela as vela

    real = importlib.util.find_spec
    monkeypatch.setattr(vela.importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("ethosu") else real(name, *a))
    model = build_classifier(tmp_path / "m.tflite")
    with pytest.raises(ToolchainError, match=r"pip install 'edgesdk\[npu\]'"):
        compile_for_target(model, "ethos-u55-128")


@requires_vela
@requires_tf
@pytest.mark.slow
def test_digits_cnn_and_mobilenet_compile_all_macs_on_npu(digits_keras, digits_data,
                                                          tmp_path) -> None:
    from sdk.examples import digits_mobilenet

    for name, model in (("cnn", digits_keras), ("mobilenet", digits_mobilenet(digits_data))):
        result = export_for_target(model, target="ethos-u55-128",
                                   calibration=digits_data.x_train[:256],
                                   output=tmp_path / f"{name}.tflite", input_type="int8",
                                   output_type="int8", per_layer=False)
        report = result.target
        assert report.npu_mac_share == 1.0, report.summary()
        assert report.cpu_layers == [], report.summary()
        weighted = [layer for layer in report.layers if layer.op_type in WEIGHTED]
        assert len(weighted) >= 4
        assert all(layer.cycles for layer in weighted), report.summary()
        assert report.cycles_total == sum(layer.cycles or 0 for layer in report.layers)


@requires_vela
def test_sdk_export_target_argument(tmp_path) -> None:
    import sdk

    model = build_classifier(tmp_path / "m.tflite", head="LOG_SOFTMAX")
    result = sdk.export(model, "int8", calibration=images(), output=tmp_path / "m_int8.tflite",
                        target="ethos-u85-128")
    report = result.target
    assert report.target == "ethos-u85-128" and report.compiled_path.exists()
    # float model I/O: QUANTIZE / DEQUANTIZE at the edges stay on the CPU, and the report says
    # how to avoid them
    assert {layer.op_type for layer in report.cpu_layers} >= {"LOG_SOFTMAX"}
    assert any("input_type='int8'" in note for note in report.notes)
