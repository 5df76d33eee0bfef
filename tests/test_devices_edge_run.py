"""`.edge` models through edge-run: Arm code on the emulated phone and board (under qemu), x86 on
this host; the runner's report parsed; the benchmark_model log parser."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import pytest
from edge_helpers import act, q

import sdk
from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
from sdk.devices.runners.benchmark_model import parse_benchmark_output


def pool_model() -> Model:
    """float image -> QUANTIZE -> ADD(const) -> HARD_SWISH -> MAX_POOL -> SOFTMAX -> DEQUANTIZE."""
    rng = np.random.default_rng(1)
    g = Graph(name="pool")
    x = g.add_tensor(act("image", (1, 8, 8, 6), None, dtype=DType.FLOAT32))
    xq = g.add_tensor(act("image_q", (1, 8, 8, 6), 0.02, -3))
    c = g.add_tensor(Tensor("bias", (1, 1, 1, 6), DType.INT8, quant=q(0.01, 2),
                            data=rng.integers(-128, 128, (1, 1, 1, 6), dtype=np.int8)))
    s = g.add_tensor(act("sum", (1, 8, 8, 6), 0.025, -1))
    h = g.add_tensor(act("hswish", (1, 8, 8, 6), 0.02, -100))
    p = g.add_tensor(act("pool", (1, 4, 4, 6), 0.02, -100))
    sm = g.add_tensor(act("probs_q", (1, 4, 4, 6), 1 / 256, -128))
    out = g.add_tensor(act("probs", (1, 4, 4, 6), None, dtype=DType.FLOAT32))
    g.operators = [
        Operator("QUANTIZE", [x], [xq]),
        Operator("ADD", [xq, c], [s], {"fused_activation_function": "NONE"}),
        Operator("HARD_SWISH", [s], [h]),
        Operator("MAX_POOL_2D", [h], [p], {"padding": "VALID", "stride_w": 2, "stride_h": 2,
                                           "filter_width": 2, "filter_height": 2,
                                           "fused_activation_function": "NONE"}),
        Operator("SOFTMAX", [p], [sm], {"beta": 1.0}),
        Operator("DEQUANTIZE", [sm], [out]),
    ]
    g.inputs, g.outputs = [x], [out]
    return Model(graphs=[g])


@pytest.fixture(scope="module")
def edge_model(tmp_path_factory) -> Path:
    from sdk.converters.edge import write_edge

    path = tmp_path_factory.mktemp("edge") / "pool model.edge"
    write_edge(pool_model(), path)
    return path


@pytest.fixture(params=["phone", "board"])
def arm_device(request, emulated_phone, emulated_board, tmp_path):
    if request.param == "phone":
        return emulated_phone.device_config(adb_key=str(tmp_path / "adbkey"))
    return emulated_board.device_config()


@pytest.mark.qemu
def test_edge_model_on_emulated_arm_devices(arm_device, edge_model):
    profile = sdk.profile(edge_model, arm_device, runs=3, warmup=1, threads=1)
    assert profile.runner == "edge-run" and profile.machine == "aarch64"  # Arm code ran
    assert profile.device.emulated and any("emulator" in n for n in profile.notes)
    assert not any(f"{platform.machine()} code" in n for n in profile.notes)
    assert "dotprod" in profile.isa  # qemu -cpu max has it; edge-run says what it detected
    assert profile.latency.runs == 3 and profile.latency.p50_ms is not None
    assert [layer.op for layer in profile.per_layer] == [
        "QUANTIZE", "ADD", "HARD_SWISH", "MAX_POOL_2D", "SOFTMAX", "DEQUANTIZE"]
    assert all(layer.kernel for layer in profile.per_layer)
    assert profile.peak_memory_bytes > 0 and profile.threads == 1
    # the same outputs on aarch64 (qemu) as on this host's own edge-run
    x = np.random.default_rng(2).uniform(-2, 2, (3, 8, 8, 6)).astype(np.float32)
    validation = sdk.validate(edge_model, arm_device, x)
    assert validation.samples == 3 and validation.exact, validation.outputs
    assert validation.machine == "aarch64" and platform.machine() in validation.reference


def test_edge_model_locally(edge_model):
    profile = sdk.profile(edge_model, "local", runs=5, warmup=1)
    assert profile.machine == platform.machine() and profile.emulated is None
    assert profile.notes == ()
    # edge-run's CPU time of its timed runs (timed_cpu_ms) over the runs, carried through
    assert profile.cpu_ms is not None and profile.cpu_ms > 0
    assert profile.cpu_ms == profile.to_dict()["cpu_ms"]
    assert type(profile).from_dict(profile.to_dict()).cpu_ms == profile.cpu_ms


def test_benchmark_model_log_parser():
    running = "Running benchmark for at least {} iterations and at least {} seconds but " \
              "terminate if exceeding 150 seconds."
    table = [["[node type]", "[start]", "[first]", "[avg ms]", "[%]", "[cdf%]", "[mem KB]",
              "[times called]", "[Name]"],
             ["CONV_2D", "0.000", "0.120", "0.110", "60.000%", "60.000%", "0.000", "1",
              "[conv1]"],
             ["FULLY_CONNECTED", "0.110", "0.080", "0.070", "40.000%", "100.000%", "0.000",
              "1", "[fc1]"]]
    log = "\n".join([
        "STARTING!", "Graph: [/data/local/tmp/m.tflite]", "Initialized session in 12.5ms.",
        running.format(1, 0.5),
        "count=9 first=8711 curr=5162 min=5162 max=8711 avg=5814.7 std=1147 p5=5162 "
        "median=5196 p95=8711", "",
        running.format(50, 1),
        "count=50 first=5216 curr=4978 min=4908 max=6861 avg=5374.3 std=400 p5=4962 "
        "median=5189 p95=6862", "",
        "Inference timings in us: Init: 12500, First inference: 8711, Warmup (avg): 5814.7, "
        "Inference (avg): 5374.3",
        "Memory footprint delta from the start of the tool (MB): init=5.5 overall=12.25",
        "Operator-wise Profiling Info for Regular Benchmark Runs:",
        "============================== Run Order ==============================",
        *("\t" + "\t".join(f"{cell:>12}" for cell in row) for row in table), "",
        "============================== Top by Computation Time =============================="])
    parsed = parse_benchmark_output(log)
    assert parsed["init_ms"] == 12.5 and parsed["first_run_ms"] == 8.711
    assert parsed["stats"]["mean"] == pytest.approx(5.3743)
    assert parsed["stats"]["p50"] == pytest.approx(5.189) and parsed["stats"]["count"] == 50
    assert parsed["peak_memory_bytes"] == int(12.25 * 1024 * 1024)
    assert [(x.name, x.op, x.mean_ms) for x in parsed["layers"]] == [
        ("conv1", "CONV_2D", 0.110), ("fc1", "FULLY_CONNECTED", 0.070)]
    assert parse_benchmark_output("Segmentation fault") == {}
