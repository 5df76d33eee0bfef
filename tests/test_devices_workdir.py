"""Issue 13, hole 3: work directories another user made first, swapped files, planted pid files.

Each test plays the other user: it pre-creates the workdir (owned by `nobody`, as a symbolic
link, or mode 0777), changes a pushed file on the device, or plants a pid file, and shows that
edgesdk refuses instead of running or killing what the other user chose. Local runs and SSH
boards (a real sshd on loopback) both.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sdk.devices import DeviceConfig, LocalDevice, open_device
from sdk.devices.errors import FileChangedError, UnsafeWorkdirError

NOBODY = 65534
as_root = pytest.mark.skipif(os.getuid() != 0, reason="giving a directory to another user "
                                                      "needs root")


def _local(workdir: Path | None) -> LocalDevice:
    return LocalDevice(DeviceConfig(name="victim", transport="local",
                                    workdir=None if workdir is None else str(workdir)))


def _attacker_dir(path: Path, how: str) -> None:
    """Make `path` the way another user would, with a runner script of theirs in it."""
    if how == "symlink":
        target = path.with_name(path.name + "-target")
        target.mkdir(mode=0o700)
        path.symlink_to(target)
    else:
        path.mkdir()
        path.chmod(0o777)
        if how == "nobody":
            os.chown(path, NOBODY, NOBODY)
            path.chmod(0o755)
    (path / "evil.sh").write_text("touch PWNED\n")


def _ways() -> list[object]:
    return [pytest.param("nobody", marks=as_root), "symlink", "world-writable"]


# ---------------------------------------------------------------------------- local runs
def test_local_default_workdir_is_made_private(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    with _local(None) as device:
        assert device.workdir == str(tmp_path / f"edgesdk-local-{os.getuid()}")
        info = os.lstat(device.workdir)
        assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
        assert info.st_uid == os.getuid()
        assert device.run(["pwd"]).stdout.strip() == device.workdir


@pytest.mark.parametrize("how", _ways())
def test_local_refuses_a_workdir_another_user_made(tmp_path, monkeypatch, how):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    workdir = tmp_path / f"edgesdk-local-{os.getuid()}"  # the default name, taken first
    _attacker_dir(workdir, how)
    device = _local(None)
    with pytest.raises(UnsafeWorkdirError) as info:
        device.connect()
    error = info.value
    assert error.path == str(workdir) and error.device == "victim"
    assert "device victim" in str(error) and str(workdir) in str(error)
    assert f"owner uid {NOBODY if how == 'nobody' else os.getuid()}" in str(error)
    assert {"nobody": "drwxr-xr-x", "symlink": "lrwxrwxrwx",
            "world-writable": "drwxrwxrwx"}[how] in str(error)
    # and the device stays unusable there: nothing is pushed into it, nothing runs in it
    src = tmp_path / "model.bin"
    src.write_bytes(b"weights")
    device._connected = True  # even past connect(), every command checks the directory first
    with pytest.raises(UnsafeWorkdirError):
        device.push(src)
    with pytest.raises(UnsafeWorkdirError):
        device.run(["sh", "evil.sh"])
    assert sorted(os.listdir(workdir)) == ["evil.sh"]
    assert not list(tmp_path.rglob("PWNED"))


def test_local_refuses_a_workdir_made_unsafe_after_connecting(tmp_path):
    workdir = tmp_path / "work"
    with _local(workdir) as device:
        assert device.run(["true"]).ok
        workdir.chmod(0o777)  # someone loosens it while we hold the device
        with pytest.raises(UnsafeWorkdirError, match="writable by group or others"):
            device.run(["true"])
        workdir.chmod(0o700)
        assert device.run(["true"]).ok


def test_local_swapped_script_is_not_run(tmp_path):
    script = tmp_path / "runner.sh"
    script.write_text("echo honest\n")
    with _local(tmp_path / "work") as device:
        remote = device.push(script, "bin/runner.sh", mode=0o755)
        assert device.run([remote]).stdout == "honest\n"
        # the other user's swap: same name, their code
        Path(remote).write_text(f"touch {tmp_path}/PWNED\n")
        with pytest.raises(FileChangedError, match=r"runner\.sh changed on the device") as info:
            device.run([remote])
        assert info.value.path == remote and info.value.device == "victim"
        # a script handed to an interpreter is checked too when the runner names it
        with pytest.raises(FileChangedError):
            device.run(["sh", remote], verify=[remote])
        assert not (tmp_path / "PWNED").exists()
        device.push(script, "bin/runner.sh", mode=0o755)  # pushed again: runs again
        assert device.run([remote]).stdout == "honest\n"


def test_planted_pid_file_does_not_kill_another_process(tmp_path):
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                              start_new_session=True)
    try:
        with _local(tmp_path / "work") as device:
            pidfile = f"{device.workdir}/.run-0123456789ab.pid"
            Path(pidfile).write_text(f"{victim.pid}\n")
            device._kill(pidfile)                 # a timed-out run's kill
            device._orphans.add(pidfile)          # a dropped link's orphan
            Path(pidfile).write_text(f"{victim.pid}\n")
            device.shell("true")
            assert victim.poll() is None          # the pid is not our run: left alone
            # while our own runs are still killed on timeout (pid checked to be the runner)
            marker = "edgesdk-workdir-timeout-marker"
            with pytest.raises(Exception, match="killed"):
                device.run(["sh", "-c", f"sleep 30; : {marker}"], timeout=0.5)
            from device_helpers import processes
            assert not processes(marker)
    finally:
        victim.kill()
        victim.wait()


# ---------------------------------------------------------------------------- SSH boards
def test_board_default_workdir_is_per_user_and_private(emulated_board):
    config = emulated_board.device_config(workdir=None)
    with open_device(config) as device:
        expected = emulated_board.tmpdir / f"edgesdk-{os.getuid()}"
        assert device.workdir == str(expected)
        info = os.lstat(expected)
        assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()
        assert device.run(["pwd"]).stdout.strip() == str(expected)
        device.cleanup(everything=True)
    # filled in on first use too, when the device was opened without connecting
    device = open_device(config, connect=False)
    try:
        assert device.run(["pwd"]).stdout.strip() == str(expected)
        device.cleanup(everything=True)
    finally:
        device.close()


@pytest.mark.parametrize("how", _ways())
def test_board_refuses_a_default_workdir_another_user_made(emulated_board, how):
    workdir = emulated_board.tmpdir / f"edgesdk-{os.getuid()}"
    subprocess.run(["rm", "-rf", str(workdir), f"{workdir}-target"], check=True)
    _attacker_dir(workdir, how)
    try:
        with pytest.raises(UnsafeWorkdirError) as info:
            open_device(emulated_board.device_config(name="victim-board", workdir=None))
        error = info.value
        assert error.path == str(workdir) and "device victim-board" in str(error)
        assert f"owner uid {NOBODY if how == 'nobody' else os.getuid()}" in str(error)
        assert sorted(os.listdir(workdir)) == ["evil.sh"]
    finally:
        subprocess.run(["rm", "-rf", str(workdir), f"{workdir}-target"], check=True)


def test_board_swapped_binary_is_not_run(emulated_board, tmp_path):
    script = tmp_path / "runner.sh"
    script.write_text("#!/bin/sh\necho honest\n")
    with open_device(emulated_board.device_config(workdir=str(tmp_path / "w"))) as device:
        remote = device.push(script, "bin/runner.sh", mode=0o755)
        assert device.run([remote]).stdout == "honest\n"
        Path(remote).write_text(f"#!/bin/sh\ntouch {tmp_path}/PWNED\n")
        with pytest.raises(FileChangedError, match="changed on the device"):
            device.run([remote])
        assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("how", _ways())
def test_board_refuses_a_configured_workdir_another_user_made(emulated_board, tmp_path, how):
    workdir = tmp_path / "shared"
    _attacker_dir(workdir, how)
    config = emulated_board.device_config(name="victim-board", workdir=str(workdir))
    with pytest.raises(UnsafeWorkdirError, match=r"device victim-board.*refusing the work "
                                                 r"directory") as info:
        open_device(config)
    assert info.value.path == str(workdir)
    assert info.value.mode == {"nobody": "drwxr-xr-x", "symlink": "lrwxrwxrwx",
                               "world-writable": "drwxrwxrwx"}[how]
    assert sorted(os.listdir(workdir)) == ["evil.sh"]
