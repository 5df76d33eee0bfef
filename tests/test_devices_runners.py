"""Runner plumbing the farm leans on: the LiteRT Python check asked once per device session,
content-addressed model paths (same-named models never overwrite each other), the timed-run
count taken from the runner's own output (benchmark_model with --min_secs), and the remote run
directories of a validation removed after it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from farm_support import build_mlp

import sdk
from sdk.devices import DeviceConfig, LocalDevice, RunnerConfig, open_device
from sdk.devices.runners import litert


def _logging_python(path: Path, log: Path) -> Path:
    """A device 'Python' that logs its arguments, then is this host's Python."""
    path.write_text(f"#!/bin/sh\necho \"$*\" >> '{log}'\nexec '{sys.executable}' \"$@\"\n")
    path.chmod(0o755)
    return path


def _checks(log: Path) -> int:
    return sum("--check" in line for line in log.read_text().splitlines())


def test_litert_check_is_asked_once_per_device_session(tmp_path, monkeypatch):
    log = tmp_path / "python.log"
    log.touch()
    python = _logging_python(tmp_path / "python", log)
    model = build_mlp(tmp_path / "mlp.tflite", sizes=(8, 4))
    config = DeviceConfig(name="here", transport="local", workdir=str(tmp_path / "work"),
                          runner=RunnerConfig(python=str(python)))
    with open_device(config) as dev:
        for _ in range(3):
            p = sdk.profile(model, dev, runs=2, warmup=0, layers=False)
            assert p.runner == "litert-python" and p.latency.runs == 2
        runs = len(log.read_text().splitlines())
        assert _checks(log) == 1 and runs == 4        # one check, three jobs
        # a new session (the link reopened: the device may have rebooted) asks again
        dev.close()
        dev.connect()
        sdk.profile(model, dev, runs=2, warmup=0, layers=False)
        assert _checks(log) == 2
        # so does another runner script (another edgesdk version pushed it)
        monkeypatch.setattr(litert, "script_sha256", lambda: "0" * 64)
        sdk.profile(model, dev, runs=2, warmup=0, layers=False)
        assert _checks(log) == 3
        sdk.profile(model, dev, runs=2, warmup=0, layers=False)
        assert _checks(log) == 3


def test_same_named_models_get_their_own_paths(tmp_path):
    a = build_mlp((tmp_path / "a").mkdir() or tmp_path / "a" / "mlp.tflite", seed=0,
                  sizes=(8, 4))
    b = build_mlp((tmp_path / "b").mkdir() or tmp_path / "b" / "mlp.tflite", seed=1,
                  sizes=(8, 4))
    assert a.read_bytes() != b.read_bytes()
    dev = LocalDevice(DeviceConfig(name="here", transport="local",
                                   workdir=str(tmp_path / "work")))
    with dev:
        dep_a = sdk.deploy(a, dev)
        dep_b = sdk.deploy(b, dev)
        assert dep_a.remote_model != dep_b.remote_model
        assert Path(dep_a.remote_model).name == Path(dep_b.remote_model).name == "mlp.tflite"
        assert dep_a.remote_model.endswith(f"/models/{dep_a.sha256[:16]}/mlp.tflite")
        # deploying b did not touch a's file: a's deployment still runs a
        assert Path(dep_a.remote_model).read_bytes() == a.read_bytes()
        assert Path(dep_b.remote_model).read_bytes() == b.read_bytes()
        x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
        assert sdk.validate(a, dev, x).exact and sdk.validate(b, dev, x).exact
        # the same bytes go to the same path and are not sent again
        mtime = os.stat(dep_a.remote_model).st_mtime_ns
        assert sdk.deploy(a, dev).remote_model == dep_a.remote_model
        assert os.stat(dep_a.remote_model).st_mtime_ns == mtime
        # a validation leaves no run directory (inputs, outputs) behind on the device
        assert not [n for n in os.listdir(dev.workdir) if n.startswith("run-")]


#: what TFLite's benchmark_model prints with --num_runs=50 --min_secs=1 on a fast model: it
#: keeps running past 50 until the second is up (here 73 runs)
BENCHMARK_LOG = """\
STARTING!
Log parameter values verbosely: [0]
Min num runs: [50]
Min runs duration (seconds): [1]
Graph: [{model}]
Loaded model {model}
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
The input model file size (MB): 0.01
Initialized session in 3.21ms.
Running benchmark for at least 1 iterations and at least 0 seconds but terminate if exceeding 150 seconds.
count=1 curr=2210

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=73 first=14200 curr=13650 min=13390 max=15120 avg=13698.6 std=310 p5=13410 median=13660 p95=14390

Inference timings in us: Init: 3210, First inference: 2210, Warmup (avg): 2210, Inference (avg): 13698.6
Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
Memory footprint delta from the start of the tool (MB): init=3.5 overall=9.75
"""  # noqa: E501


def test_benchmark_model_run_count_comes_from_its_output(tmp_path):
    model = build_mlp(tmp_path / "mlp.tflite", sizes=(8, 4))
    fake = tmp_path / "benchmark_model"
    (tmp_path / "log.txt").write_text(BENCHMARK_LOG.format(model=model))
    fake.write_text(f"#!/bin/sh\ncat '{tmp_path / 'log.txt'}'\n")
    fake.chmod(0o755)
    config = DeviceConfig(name="phone-ish", transport="local", workdir=str(tmp_path / "work"),
                          runner=RunnerConfig(benchmark_model=f"device:{fake}"))
    # (this host has a Python, so ask for the phones' runner by name)
    p = sdk.profile(model, config, runs=50, warmup=1, min_duration_s=1.0,
                    runner="benchmark_model")
    assert p.runner == "benchmark_model"
    assert p.latency.runs == 73                       # not the 50 asked for
    assert p.latency.mean_ms == pytest.approx(13.6986)
    assert p.latency.p50_ms == pytest.approx(13.66)
    assert p.timed_s == pytest.approx(73 * 0.0136986)  # >= the 1 s asked for
    assert p.init_ms == pytest.approx(3.21) and p.peak_memory_bytes == int(9.75 * 2 ** 20)


def test_a_deployment_lists_every_file_its_runner_uses(tmp_path):
    """The LiteRT runner is two files on the device (the script and runner_common.py, which it
    imports from beside it); the deployment lists both, and both are there."""
    model = build_mlp(tmp_path / "mlp.tflite", sizes=(8, 4))
    config = DeviceConfig(name="here", transport="local", workdir=str(tmp_path / "work"))
    with sdk.deploy(model, config) as dep:
        assert [Path(f).name for f in dep.files] == [
            "edgesdk_litert_runner.py", "edgesdk_runner_common.py", "mlp.tflite"]
        assert all(Path(f).is_file() for f in dep.files)
