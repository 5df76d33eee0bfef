"""SshDevice against real OpenSSH sshd processes on loopback (emulated aarch64 boards)."""

from __future__ import annotations

import os
import platform
import subprocess
import threading
import time
from pathlib import Path

import pytest
from device_helpers import processes

from sdk.devices import (
    DeviceAuthError,
    DeviceConnectionError,
    DeviceStorageError,
    DeviceTimeoutError,
    SshDevice,
    TransferError,
    open_device,
)
from sdk.devices.emulated import EmulatedBoard

ROOT = Path(__file__).resolve().parent.parent
NASTY = "my model; touch PWNED $(touch PWNED2) `touch PWNED3` 'q' \"d\" & | > < *.tflite"


@pytest.fixture
def board_device(emulated_board):
    with open_device(emulated_board.device_config()) as device:
        yield device
        device.cleanup()


def test_info_says_what_is_emulated(board_device):
    info = board_device.info()
    assert isinstance(board_device, SshDevice)
    assert info.abi == "arm64-v8a"           # what we build for it
    assert info.kernel_arch == platform.machine()  # what the kernel really is: this host's
    assert "qemu-aarch64" in (info.emulated or "")


def test_arm_binary_runs_through_exec_prefix(board_device):
    binary = ROOT / "build" / "aarch64" / "edge_native_tests"
    remote = board_device.push(binary, "bin/edge_native_tests", mode=0o755)
    result = board_device.run([remote], native=True)
    assert "arch=aarch64" in result.stdout and "0 failed" in result.stdout
    # without the prefix a kernel of another architecture cannot execute it: the emulation is
    # not hidden (an aarch64 host runs it natively)
    plain = board_device.run([remote], check=False)
    assert (plain.exit_code == 0) == (platform.machine() == "aarch64"), plain


def test_push_pull_metacharacters(board_device, tmp_path):
    src = tmp_path / NASTY
    src.write_bytes(os.urandom(100_000))
    remote = board_device.push(src)
    assert Path(remote).read_bytes() == src.read_bytes()  # the board's disk is this host's
    (tmp_path / "back").mkdir()
    back = board_device.pull(remote, tmp_path / "back")
    assert back.read_bytes() == src.read_bytes() and back.name == NASTY
    assert board_device.shell("printf", "%s", "$(id) ;|&").stdout == "$(id) ;|&"
    for where in (Path(board_device.workdir), Path.home(), tmp_path):
        assert not list(where.glob("PWNED*"))


def test_exit_codes_and_timeout_kill(board_device):
    result = board_device.run(["sh", "-c", "echo o; echo e >&2; exit 7"], check=False)
    assert (result.exit_code, result.stdout, result.stderr) == (7, "o\n", "e\n")
    with pytest.raises(DeviceTimeoutError, match="killed"):
        board_device.run(["sh", "-c", "sleep 41; : edgesdk-timeout-marker"], timeout=1.0)
    assert board_device.shell("echo", "still here").stdout == "still here\n"
    assert not processes("edgesdk-timeout-marker")


def test_unknown_host_key_refused_then_accepted_when_asked(emulated_board, tmp_path):
    known = tmp_path / "known_hosts"
    config = emulated_board.device_config(known_hosts=str(known))
    with pytest.raises(DeviceAuthError, match=r"not trusted.*accept_new_host_key"):
        open_device(config)
    assert not known.exists()
    with open_device(config.replace(accept_new_host_key=True)) as device:
        assert device.shell("echo", "hi").stdout == "hi\n"
    recorded = known.read_text()
    assert f"[127.0.0.1]:{emulated_board.port} ssh-ed25519 " in recorded
    with open_device(config) as device:  # recorded now: no flag needed
        assert device.shell("true").ok


def test_changed_host_key_is_refused_even_when_accepting(emulated_board, tmp_path):
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, data = other.with_suffix(".pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{emulated_board.port} {kind} {data}\n")
    config = emulated_board.device_config(known_hosts=str(known), accept_new_host_key=True)
    with pytest.raises(DeviceAuthError, match="CHANGED"):
        open_device(config)


def test_wrong_key_is_an_auth_error(emulated_board, tmp_path):
    key = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    with pytest.raises(DeviceAuthError, match="refused our keys"):
        open_device(emulated_board.device_config(identity_file=str(key)))


def test_ssh_config_alias_and_jump_host(emulated_board, tmp_path):
    with EmulatedBoard(arch="armv7", root=tmp_path / "inner") as inner:
        known = tmp_path / "known_hosts"
        known.write_text(emulated_board.host_key_line() + inner.host_key_line())
        ssh_config = tmp_path / "ssh_config"
        ssh_config.write_text(
            f"Host jumpbox\n  HostName 127.0.0.1\n  Port {emulated_board.port}\n"
            f"  User {emulated_board.user}\n  IdentityFile {emulated_board.client_key}\n"
            f"  UserKnownHostsFile {known}\n"
            f"Host inner\n  HostName 127.0.0.1\n  Port {inner.port}\n  User {inner.user}\n"
            f"  IdentityFile {inner.client_key}\n  ProxyJump jumpbox\n")
        base = inner.device_config(known_hosts=str(known), ssh_config=str(ssh_config),
                                   identity_file=None)
        # a Host alias with ProxyJump, from the ssh config file
        with open_device(base.replace(address="inner")) as device:
            assert device.shell("echo", "via jump").stdout == "via jump\n"
        # and a jump host named in our own config
        with open_device(base.replace(address="inner", jump="jumpbox")) as device:
            assert device.shell("true").ok
        # the jump is really used: with the jump box unreachable, the inner board is too
        bad = ssh_config.read_text().replace(f"Port {emulated_board.port}", "Port 1")
        ssh_config.write_text(bad)
        with pytest.raises(DeviceConnectionError):
            open_device(base.replace(address="inner", retries=0))


def test_link_drop_mid_push_is_retried(emulated_board, board_device, tmp_path):
    src = tmp_path / "weights.bin"
    src.write_bytes(os.urandom(6_000_000))
    dropped = []

    def progress(done, total):
        if done > 1_000_000 and not dropped:
            dropped.append(emulated_board.drop_connections())

    remote = board_device.push(src, progress=progress)
    assert dropped and dropped[0] >= 1
    assert Path(remote).read_bytes() == src.read_bytes()
    board_device.shell("true")  # the next command removes the failed attempt's temp file
    assert not [n for n in os.listdir(board_device.workdir) if ".edgesdk-tmp-" in n]


def test_device_gone_during_push_fails_cleanly_and_recovers(emulated_board, board_device,
                                                            tmp_path):
    src = tmp_path / "model.bin"
    src.write_bytes(os.urandom(4_000_000))

    def progress(done, total):
        if done > 500_000:
            emulated_board.drop_connections()

    with pytest.raises(DeviceConnectionError, match=r"failed after 3 attempt\(s\)"):
        board_device.push(src, progress=progress)
    final = Path(board_device.workdir) / "model.bin"
    assert not final.exists()
    assert board_device.push(src) == str(final)  # usable again
    assert final.read_bytes() == src.read_bytes()
    assert not [n for n in os.listdir(board_device.workdir) if ".edgesdk-tmp-" in n]


def test_device_gone_during_run_kills_orphans_and_recovers(emulated_board, board_device):
    marker = "edgesdk-run-drop-marker"
    stop = threading.Event()

    def dropper():
        while not stop.is_set():
            if processes(marker):
                emulated_board.drop_connections()
            time.sleep(0.05)

    thread = threading.Thread(target=dropper, daemon=True)
    thread.start()
    try:
        with pytest.raises(DeviceConnectionError, match=r"failed after 3 attempt\(s\)"):
            board_device.run(["sh", "-c", f"sleep 40; : {marker}"], timeout=60, retries=2)
    finally:
        stop.set()
        thread.join()
    assert board_device.shell("echo", "back").stdout == "back\n"
    assert not processes(marker)  # the orphaned runs were killed when the link came back


def test_full_disk_is_a_clear_error(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1_500_000))
    with EmulatedBoard(root=tmp_path / "b", storage_bytes=1 << 20) as board, \
            open_device(board.device_config()) as device:
        with pytest.raises(DeviceStorageError, match=r"no room for big\.bin"):
            device.push(big)
        # the transport's own failure (a real ENOSPC from the tmpfs) is recognised too
        with pytest.raises(TransferError):
            device._upload(big, f"{device.workdir}/direct", None)
        with pytest.raises(DeviceStorageError, match=r"storage full|no room"):
            device.push(big, "again.bin")
        assert not device.exists(f"{device.workdir}/big.bin")


def test_board_without_sftp_copies_with_cat(tmp_path):
    src = tmp_path / "w.bin"
    src.write_bytes(os.urandom(150_000))
    with EmulatedBoard(root=tmp_path / "b", sftp=False) as board, \
            open_device(board.device_config()) as device:
        remote = device.push(src)
        assert Path(remote).read_bytes() == src.read_bytes()
        assert device.pull(remote, tmp_path / "back.bin").read_bytes() == src.read_bytes()
        device.cleanup(everything=True)  # the workdir itself goes; the device stays usable
        assert not Path(device.workdir).exists()
        assert device.run(["pwd"]).stdout.strip() == device.workdir
