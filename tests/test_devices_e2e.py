"""End to end: the digits CNN exported to INT8, deployed to the emulated phone and the emulated
aarch64 board, profiled and validated; and every fault a user can meet, as a clear error."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

import pytest

import sdk
from sdk.base.artifacts import host_abi
from sdk.devices import (
    DelegateConfig,
    DeviceStorageError,
    DeviceTimeoutError,
    RunnerConfig,
    RunnerError,
    open_device,
)
from sdk.devices.emulated import EmulatedPhone
from sdk.devices.runners.litert_runner import ISA_FLAGS

from conftest import host_cpu_flags

ROOT = Path(__file__).resolve().parent.parent
NASTY = "digits model; touch PWNED $(touch PWNED2) 'q' & |.tflite"

pytestmark = pytest.mark.tf  # the model comes from TensorFlow


@pytest.fixture(params=["phone", "board"])
def emulated_device(request, emulated_phone, emulated_board, tmp_path):
    if request.param == "phone":
        return emulated_phone.device_config(adb_key=str(tmp_path / "adbkey"))
    return emulated_board.device_config()


def test_profile_and_validate_on_emulated_devices(emulated_device, digits_int8_tflite,
                                                  digits_data):
    stages = []
    profile = sdk.profile(digits_int8_tflite, emulated_device, runs=10, warmup=2,
                          progress=lambda stage, done, total: stages.append(stage))
    assert isinstance(profile, sdk.Profile)
    assert profile.device.abi == "arm64-v8a" and profile.device.emulated
    assert profile.runner == "litert-python" and "ai_edge_litert" in profile.runtime
    # what really ran: this host's Python, said plainly
    assert profile.machine == platform.machine()
    assert any(f"{platform.machine()} code" in note for note in profile.notes)
    lat = profile.latency
    assert lat.runs == 10 and len(profile.latencies_ms) == 10
    assert lat.min_ms <= lat.p50_ms <= lat.p90_ms <= lat.p99_ms <= lat.max_ms
    assert profile.init_ms > 0 and profile.first_run_ms > 0
    assert 10 << 20 < profile.peak_memory_bytes < 1 << 30
    # the SIMD features the runner saw are this host's (its Python ran the model), not a fixed
    # list: an AVX2-only, an AVX-512 or an AMX machine each reports its own
    assert "XNNPACK" in profile.kernels
    assert profile.isa and set(profile.isa) == set(ISA_FLAGS) & host_cpu_flags()
    assert any(s.startswith("push") for s in stages) and "run" in stages
    assert '"runner": "litert-python"' in profile.to_json()

    validation = sdk.validate(digits_int8_tflite, emulated_device, digits_data.x_test[:48])
    assert isinstance(validation, sdk.Validation)
    assert validation.samples == 48
    assert validation.exact and validation.sqnr_db == float("inf")
    assert validation.top1_agreement == 1.0 and validation.max_abs_error == 0.0
    assert validation.passed()


def test_local_device_is_real_hardware(digits_int8_tflite, digits_data):
    profile = sdk.profile(digits_int8_tflite, "local", runs=5, warmup=1)
    assert profile.emulated is None and profile.notes == ()
    assert profile.machine == platform.machine() == profile.device.kernel_arch
    validation = sdk.validate(digits_int8_tflite, "local", digits_data.x_test[:8])
    assert validation.exact


def test_python_runner_times_until_the_minimum_wall_time(digits_int8_tflite):
    """The on-device Python runner's rule (MLPerf's): at least `--runs` runs AND at least
    `--min-duration` seconds of wall time in the timed loop. The sum of the per-run latencies
    may be far smaller on a loaded host (the process is descheduled between invokes), so the
    rule is checked on the loop's wall time, which the runner reports as duration_s."""
    import json
    import subprocess
    import sys

    from sdk.devices.runners.litert_runner import MARK

    out = subprocess.run(
        [sys.executable, "-m", "sdk.devices.runners.litert_runner", str(digits_int8_tflite),
         "--runs", "3", "--warmup", "1", "--min-duration", "0.2"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    result = json.loads(next(line for line in out.splitlines()
                             if line.startswith(MARK))[len(MARK):])
    assert result["min_duration_s"] == 0.2
    assert result["duration_s"] >= 0.2
    assert len(result["latencies_ms"]) >= 3
    # every timed run lies inside the loop
    assert sum(result["latencies_ms"]) / 1e3 <= result["duration_s"]


def test_deploy_verifies_and_skips_identical_files(emulated_board, digits_int8_tflite):
    with sdk.deploy(digits_int8_tflite, emulated_board.device_config()) as deployment:
        assert deployment.runner.name == "litert-python"
        remote = Path(deployment.remote_model)
        assert remote.read_bytes() == digits_int8_tflite.read_bytes()
        first = remote.stat().st_mtime_ns
    with sdk.deploy(digits_int8_tflite, emulated_board.device_config()) as deployment:
        assert Path(deployment.remote_model).stat().st_mtime_ns == first  # not sent again
        assert deployment.files[-1] == deployment.remote_model


def test_model_path_with_shell_metacharacters(emulated_phone, digits_int8_tflite, tmp_path,
                                              digits_data):
    nasty = tmp_path / NASTY
    shutil.copyfile(digits_int8_tflite, nasty)
    config = emulated_phone.device_config(adb_key=str(tmp_path / "k"))
    validation = sdk.validate(nasty, config, digits_data.x_test[:4])
    assert validation.exact
    with open_device(config) as device:
        from sdk.devices.base import sha256_file

        folder = f"{device.workdir}/models/{sha256_file(nasty)[:16]}"
        names = device.listdir(folder) + device.listdir(f"{device.workdir}/models")
        assert NASTY in names and not [n for n in names if n.startswith("PWNED")]
    assert not list(tmp_path.glob("PWNED*")) and not list(Path.cwd().glob("PWNED*"))


# ---------------------------------------------------------------------------- faults
def test_missing_runner(emulated_board, tmp_path, digits_int8_tflite):
    config = emulated_board.device_config(runner=RunnerConfig(python="/opt/no/python3"))
    with pytest.raises(RunnerError, match=r"no runner for \.tflite.*/opt/no/python3: not found"
                                          r".*runner\.python"):
        sdk.deploy(digits_int8_tflite, config)
    # a phone has no Python of its own: without benchmark_model there is nothing to run
    with EmulatedPhone(root=tmp_path / "p", expose_python=False) as phone, \
            pytest.raises(RunnerError, match=r"runner\.benchmark_model"):
        sdk.profile(digits_int8_tflite, phone.device_config(adb_key=str(tmp_path / "k")))


def test_wrong_abi(emulated_board, emulated_phone, tmp_path, digits_int8_tflite):
    # this host's build, offered to the arm64-v8a emulated devices
    abi = host_abi()
    if abi in (None, "arm64-v8a"):
        pytest.skip(f"this host ({platform.machine()}) builds for the emulated devices' ABI "
                    "(arm64-v8a) or for none edgesdk knows: no wrong-ABI binary to offer")
    host_binary = ROOT / "build" / "host" / "edge_native_tests"
    edge_model = tmp_path / "m.edge"
    edge_model.write_bytes(b"not really")
    board = emulated_board.device_config(runner=RunnerConfig(edge_run=str(host_binary)))
    with pytest.raises(RunnerError, match=rf"wrong ABI: edge-run .* built for {abi}, but the "
                                          r"device's ABI is arm64-v8a"):
        sdk.deploy(edge_model, board)
    phone = emulated_phone.device_config(adb_key=str(tmp_path / "k"),
                                         runner=RunnerConfig(benchmark_model=str(host_binary)))
    with pytest.raises(RunnerError, match="wrong ABI: benchmark_model"):
        sdk.deploy(digits_int8_tflite, phone)
    # an ABI edgesdk builds no edge-run for
    from sdk.devices.runners.edge_run import local_edge_run

    with pytest.raises(RunnerError, match="no edge-run build for mips"):
        local_edge_run("mips")


def test_npu_delegate_from_the_config(emulated_board, tmp_path, digits_int8_tflite):
    missing = emulated_board.device_config(
        delegates=(DelegateConfig(path="/usr/lib/libvx_delegate.so", name="vx"),))
    with pytest.raises(RunnerError, match=r"delegate 'vx' /usr/lib/libvx_delegate\.so .* is "
                                          "not on the device"):
        sdk.profile(digits_int8_tflite, missing, runs=1)
    bogus = tmp_path / "libbogus_delegate.so"
    bogus.write_bytes(b"not a shared library")
    broken = emulated_board.device_config(
        delegates=(DelegateConfig(path=str(bogus), name="bogus", options={"k": "v"}),))
    with pytest.raises(RunnerError, match=r"cannot load delegate .*libbogus_delegate\.so"):
        sdk.profile(digits_int8_tflite, broken, runs=1)


def test_command_timeout(emulated_board, digits_int8_tflite):
    with pytest.raises(DeviceTimeoutError, match="killed"):
        sdk.profile(digits_int8_tflite, emulated_board.device_config(), runs=50_000_000,
                    warmup=0, timeout=4)
    with open_device(emulated_board.device_config()) as device:  # and the board is fine
        assert device.shell("echo", "ok").stdout == "ok\n"


def test_full_disk(tmp_path, digits_int8_tflite):
    from sdk.devices.runners.litert import SCRIPT
    from sdk.devices.runners.python_script import COMMON

    # room for the runner (its files in 4 KiB pages, and 8 KiB for what its Python writes),
    # not for the model
    runner = sum(-(-f.stat().st_size // 4096) * 4096 for f in (SCRIPT, COMMON)) + (8 << 10)
    assert runner + (4 << 10) < digits_int8_tflite.stat().st_size
    with EmulatedPhone(root=tmp_path / "p", storage_bytes=runner) as phone, \
            pytest.raises(DeviceStorageError, match="no room for"):
        sdk.deploy(digits_int8_tflite, phone.device_config(adb_key=str(tmp_path / "k")))


def test_model_file_errors(emulated_board, tmp_path):
    with pytest.raises(sdk.devices.TransferError, match="no such model file"):
        sdk.deploy(tmp_path / "absent.tflite", emulated_board.device_config())
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    with pytest.raises(sdk.devices.TransferError, match="export other formats first"):
        sdk.deploy(onnx, emulated_board.device_config())
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(os.urandom(64))
    with pytest.raises(RunnerError, match="LiteRT cannot load"):
        sdk.profile(broken, emulated_board.device_config(), runs=1)


def test_models_with_edgesdk_custom_ops_get_the_delegate(emulated_board, tmp_path):
    from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
    from sdk.converters.tflite import write_tflite
    from sdk.devices.runners.delegates import custom_ops, edgesdk_delegate

    g = Graph(name="main")
    x = g.add_tensor(Tensor("x", (1, 4), DType.FLOAT32))
    y = g.add_tensor(Tensor("y", (1, 4), DType.FLOAT32))
    g.operators = [Operator("CUSTOM", [x], [y], custom_code="EDGE_CONV_INT2")]
    g.inputs, g.outputs = [x], [y]
    model = tmp_path / "custom.tflite"
    write_tflite(Model(graphs=[g]), model)
    assert custom_ops(model) == ["EDGE_CONV_INT2"]
    try:  # the board's runner is this host's Python: it needs the delegate of this host's ABI
        library = edgesdk_delegate(host_abi() or platform.machine())
    except Exception:  # issue 4's delegate is not on main (or not built): a clear error
        with pytest.raises(RunnerError, match=r"uses custom ops EDGE_CONV_INT2 that only the "
                                              r"edgesdk delegate runs"):
            sdk.deploy(model, emulated_board.device_config())
        return
    with sdk.deploy(model, emulated_board.device_config()) as deployment:
        pushed = Path(deployment.device.workdir) / "bin" / library.name
        assert pushed.read_bytes() == library.read_bytes()
