"""Ethos-U rewrites that keep an op on the NPU (converters/targets/vela_rewrites.py): for each,
Vela leaves the op on the CPU without it and takes it with it, and the report names it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from sdk.converters.targets import compile_for_target
from sdk.converters.targets.report import CPU, NPU
from sdk.converters.tflite import read_tflite
from sdk.target_export import export_for_target

requires_vela = pytest.mark.skipif(importlib.util.find_spec("ethosu") is None,
                                   reason="ethos-u-vela not installed")


def _long_signal_model(path: Path, width: int = 8192) -> Path:
    """A float 1-D model: CONV_2D 1x1 (8, ReLU) on (1, 1, width, 1) -> MEAN over axes 1, 2 (a
    global average over `width`, more than Vela's 4096) -> FULLY_CONNECTED 10."""
    from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
    from sdk.converters.tflite.writer import write_tflite

    rng = np.random.default_rng(0)
    g = Graph(name="main")
    x = g.add_tensor(Tensor("signal", (1, 1, width, 1), DType.FLOAT32))
    w = g.constant("conv/weights", rng.standard_normal((8, 1, 1, 1)).astype(np.float32))
    b = g.constant("conv/bias", (0.1 * rng.standard_normal(8)).astype(np.float32))
    c = g.add_tensor(Tensor("conv", (1, 1, width, 8), DType.FLOAT32))
    g.operators.append(Operator("CONV_2D", [x, w, b], [c], attrs={
        "padding": "SAME", "stride_w": 1, "stride_h": 1, "fused_activation_function": "RELU",
        "dilation_w_factor": 1, "dilation_h_factor": 1}))
    axes = g.constant("gap/axes", np.array([1, 2], np.int32))
    p = g.add_tensor(Tensor("gap", (1, 8), DType.FLOAT32))
    g.operators.append(Operator("MEAN", [c, axes], [p], attrs={"keep_dims": False}))
    fw = g.constant("fc/weights", (rng.standard_normal((10, 8)) / 3).astype(np.float32))
    fb = g.constant("fc/bias", np.zeros(10, np.float32))
    logits = g.add_tensor(Tensor("logits", (1, 10), DType.FLOAT32))
    g.operators.append(Operator("FULLY_CONNECTED", [p, fw, fb], [logits],
                                attrs={"fused_activation_function": "NONE"}))
    g.inputs, g.outputs = [x], [logits]
    write_tflite(Model(graphs=[g]), path)
    return path


@requires_vela
def test_wide_mean_moves_from_cpu_to_npu_and_is_reported(tmp_path) -> None:
    model = _long_signal_model(tmp_path / "signal.tflite")
    calibration = np.random.default_rng(1).random((32, 1, 8192, 1), dtype=np.float32)
    result = export_for_target(model, target="ethos-u55-128", calibration=calibration,
                               output=tmp_path / "signal_int8.tflite", input_type="int8",
                               output_type="int8")
    report = result.target
    # the rewritten INT8 model: a RESHAPE feeds the MEAN, which Vela now places on the NPU
    assert read_tflite(result.path).op_counts()["RESHAPE"] == 1
    placement = {layer.tensor: layer.placement for layer in report.layers}
    assert placement["gap"] == NPU and report.cpu_layers == []
    [rewrite] = report.rewrites
    assert (rewrite.op_type, rewrite.node, rewrite.applied) == ("MEAN", "MEAN:gap", True)
    assert "Reduced axis is too large" in rewrite.vela_reason
    assert "(1, 8192) reshaped to (2, 4096)" in rewrite.action
    assert rewrite.placement_after == NPU and rewrite.max_steps <= 1
    assert rewrite.sqnr_db > 40.0
    assert "rewritten: MEAN:gap (MEAN) was on the CPU" in report.summary()
    saved = json.loads(result.report_path.read_text())["target"]
    assert saved["rewrites"][0]["node"] == "MEAN:gap" and saved["cpu_ops"] == 0


@requires_vela
def test_wide_mean_without_the_rewrite_is_left_on_the_cpu(tmp_path) -> None:
    """The same INT8 model compiled as exported (no rewrite): Vela refuses the MEAN."""
    model = _long_signal_model(tmp_path / "signal.tflite")
    calibration = np.random.default_rng(1).random((32, 1, 8192, 1), dtype=np.float32)
    import sdk

    result = sdk.export(model, calibration=calibration, output=tmp_path / "plain_int8.tflite",
                        input_type="int8", output_type="int8")
    report = compile_for_target(result.path, "ethos-u55-128")
    assert [(c.op_type, c.tensor) for c in report.cpu_layers] == [("MEAN", "gap")]
    assert report.cpu_layers[0].placement == CPU
    assert "Reduced axis is too large" in report.cpu_layers[0].reason


def _depth_to_space_model(path: Path) -> Path:
    """A float CNN: CONV_2D 1x1 (16, ReLU) on 8x8x1 -> DEPTH_TO_SPACE 2 -> (1, 16, 16, 4), the
    upsampling head of MediaPipe's full-range face detector."""
    from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
    from sdk.converters.tflite.writer import write_tflite

    rng = np.random.default_rng(0)
    g = Graph(name="main")
    x = g.add_tensor(Tensor("image", (1, 8, 8, 1), DType.FLOAT32))
    w = g.constant("conv/weights", rng.standard_normal((16, 1, 1, 1)).astype(np.float32))
    b = g.constant("conv/bias", (0.1 * rng.standard_normal(16)).astype(np.float32))
    c = g.add_tensor(Tensor("conv", (1, 8, 8, 16), DType.FLOAT32))
    g.operators.append(Operator("CONV_2D", [x, w, b], [c], attrs={
        "padding": "SAME", "stride_w": 1, "stride_h": 1, "fused_activation_function": "RELU",
        "dilation_w_factor": 1, "dilation_h_factor": 1}))
    y = g.add_tensor(Tensor("upsampled", (1, 16, 16, 4), DType.FLOAT32))
    g.operators.append(Operator("DEPTH_TO_SPACE", [c], [y], attrs={"block_size": 2}))
    g.inputs, g.outputs = [x], [y]
    write_tflite(Model(graphs=[g]), path)
    return path


@requires_vela
def test_depth_to_space_moves_from_cpu_to_npu_bit_exact(tmp_path) -> None:
    import sdk

    model = _depth_to_space_model(tmp_path / "d2s.tflite")
    images = np.random.default_rng(1).random((32, 8, 8, 1), dtype=np.float32)
    args = {"calibration": images, "input_type": "int8", "output_type": "int8"}
    plain = sdk.export(model, output=tmp_path / "plain_int8.tflite", **args)
    before = compile_for_target(plain.path, "ethos-u55-128")
    assert [(c.op_type, c.tensor) for c in before.cpu_layers] == [("DEPTH_TO_SPACE", "upsampled")]
    assert "Unsupported opType" in before.cpu_layers[0].reason

    result = export_for_target(model, target="ethos-u55-128",
                               output=tmp_path / "d2s_int8.tflite", **args)
    report = result.target
    assert report.cpu_layers == []
    assert {layer.tensor: layer.placement for layer in report.layers}["upsampled"] == NPU
    counts = read_tflite(result.path).op_counts()
    assert "DEPTH_TO_SPACE" not in counts and counts["TRANSPOSE_CONV"] == 1
    [rewrite] = report.rewrites
    assert (rewrite.op_type, rewrite.node, rewrite.applied) == (
        "DEPTH_TO_SPACE", "DEPTH_TO_SPACE:upsampled", True)
    assert rewrite.vela_reason == "DEPTH_TO_SPACE: Unsupported opType"
    assert rewrite.max_steps == 0 and rewrite.sqnr_db == float("inf")
    assert "rewritten: DEPTH_TO_SPACE:upsampled" in report.summary()


def test_refused_when_outputs_move_more_than_one_step(tmp_path, monkeypatch) -> None:
    """A rewrite whose LiteRT outputs move by more than one int8 step is not kept."""
    import sdk.converters.targets.vela_rewrites as vr

    monkeypatch.setattr(vr, "_difference", lambda ref, new, model: (3, 12.0))
    monkeypatch.setattr(vr, "_run", lambda model_bytes, samples: [])
    from sdk.converters.targets.report import NpuLayer

    data = _long_signal_model(tmp_path / "m.tflite").read_bytes()
    layer = NpuLayer(name="MEAN:gap", op_type="MEAN", placement=CPU, tensor="gap",
                     reason="MEAN: Reduced axis is too large")
    outcome = vr.rewrite_cpu_ops(data, [layer], samples=[])
    assert outcome.model is None
    [rewrite] = outcome.rewrites
    assert not rewrite.applied and rewrite.action.startswith("refused (3 int8 steps > 1)")
