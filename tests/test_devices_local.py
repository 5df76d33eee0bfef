"""The Device interface on LocalDevice: the push/pull/shell/run/cleanup every transport shares."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest
from device_helpers import processes

from sdk.devices import (
    DeviceCommandError,
    DeviceConfig,
    DeviceTimeoutError,
    LocalDevice,
    TransferError,
    open_device,
)

from conftest import host_cpu_flags

NASTY = "my model; touch PWNED $(touch PWNED2) `touch PWNED3` 'q' \"d\" & | > < *.tflite"


@pytest.fixture
def local(tmp_path):
    device = LocalDevice(DeviceConfig(name="local", transport="local",
                                      workdir=str(tmp_path / "device")))
    with device:
        yield device


def test_info_describes_this_host(local):
    info = local.info()
    assert info.transport == "local" and info.kernel_arch == platform.machine()
    abis = {"x86_64": "x86_64", "aarch64": "arm64-v8a", "armv7l": "armeabi-v7a"}
    assert info.abi == abis.get(platform.machine(), info.abi)
    assert info.cores and info.cores >= 1 and info.mem_total_bytes and info.emulated is None
    # this host's features, whatever they are (AVX2 only, AVX-512, AMX, NEON ...)
    assert info.cpu_features and set(info.cpu_features) == host_cpu_flags()


def test_push_verifies_renames_and_skips_identical(local, tmp_path):
    src = tmp_path / "model.bin"
    src.write_bytes(os.urandom(300_000))
    calls = []
    remote = local.push(src, progress=lambda done, total: calls.append((done, total)))
    assert remote == f"{local.workdir}/model.bin"
    assert Path(remote).read_bytes() == src.read_bytes()
    assert calls[-1] == (300_000, 300_000)
    mtime = os.stat(remote).st_mtime_ns
    local.push(src)  # identical: not sent again
    assert os.stat(remote).st_mtime_ns == mtime
    src.write_bytes(b"changed")
    local.push(src)
    assert Path(remote).read_bytes() == b"changed"
    assert not [n for n in os.listdir(local.workdir) if ".edgesdk-tmp-" in n]


def test_metacharacters_reach_the_device_intact(local, tmp_path):
    src = tmp_path / NASTY
    src.write_bytes(b"weights")
    remote = local.push(src)
    assert remote.endswith(NASTY) and Path(remote).read_bytes() == b"weights"
    out = local.shell("cat", remote).stdout
    assert out == "weights"
    back = local.pull(remote, tmp_path / "back" / NASTY)
    assert back.read_bytes() == b"weights"
    assert local.shell("echo", "$HOME", "; ls").stdout == "$HOME ; ls\n"
    for cwd in (tmp_path, local.workdir, os.getcwd()):
        assert not any(n.startswith("PWNED") for n in os.listdir(cwd))


def test_run_reports_exit_codes_and_stderr(local):
    result = local.run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    with pytest.raises(DeviceCommandError, match="exit code 3: err") as info:
        local.run(["sh", "-c", "echo err >&2; exit 3"])
    assert info.value.exit_code == 3
    with pytest.raises(DeviceCommandError, match="command not found"):
        local.run(["edgesdk-no-such-program"])


def test_run_timeout_kills_the_process(local):
    marker = f"{local.workdir}/still-running"
    with pytest.raises(DeviceTimeoutError, match="killed") as info:
        local.run(["sh", "-c", f"sleep 0.5; sleep 30; touch {marker}"], timeout=1.5)
    assert info.value.timeout == 1.5
    # nothing of the run is left: no sleep of ours, no marker
    assert not processes("sleep 30; touch") and not os.path.exists(marker)
    assert local.shell("echo", "ok").stdout == "ok\n"  # usable again


def test_pull_missing_file_is_a_clear_error(local, tmp_path):
    with pytest.raises(TransferError, match="no such file on the device"):
        local.pull("absent.bin", tmp_path)
    with pytest.raises(TransferError, match="no such local file"):
        local.push(tmp_path / "absent.bin")


def test_cleanup_removes_what_we_pushed(local, tmp_path):
    keep = os.path.join(local.workdir, "not-ours")
    open(keep, "w").close()
    src = tmp_path / "a.bin"
    src.write_bytes(b"a")
    remote = local.push(src)
    run_dir = local.make_run_dir()
    removed = local.cleanup()
    assert remote in removed and run_dir in removed
    assert not os.path.exists(remote) and not os.path.exists(run_dir) and os.path.exists(keep)


def test_open_device_local():
    with open_device("local") as device:
        assert isinstance(device, LocalDevice)
        assert device.shell("uname", "-m").stdout.strip() == platform.machine()
