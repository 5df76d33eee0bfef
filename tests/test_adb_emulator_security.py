"""Issue 13, hole 1 (and the adbkey part of hole 9): attacks on the emulated ADB phone.

Each test reproduces an attack that worked before the fix, against a running emulator (with
Debian's real `adb` where a stock client matters): new keys accepted without being asked, a
shell that reads the host's /etc/shadow through /proc/$PPID/root and writes into the host, a
push through a symlink made inside the sandbox landing outside it, a phone listening on every
interface without a word, an 0644 private key reused silently.
"""

from __future__ import annotations

import errno
import os
import shlex
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from test_devices_adb import _wait_state, adb_client  # noqa: F401 - a fixture, used by name

from sdk.devices import TransferError, open_device
from sdk.devices.adb import AdbKeyWarning, ensure_adb_key
from sdk.devices.emulated import EmulatedPhone
from sdk.devices.emulated.adb_sandbox import Sandbox
from sdk.devices.emulated.adbd import main as adbd_main
from sdk.devices.errors import EmulatorError

MARK = f"edgesdk-h1-{os.getpid()}"


@pytest.fixture(scope="module")
def phone(tmp_path_factory):
    root = tmp_path_factory.mktemp("secure-phone")
    with EmulatedPhone(root=root / "phone", host_key=root / "adbkey",
                       expose_python=False) as phone:
        yield phone


@pytest.fixture
def device(phone):
    with open_device(phone.device_config()) as device:
        yield device


def _sh(device, script: str):  # type: ignore[no-untyped-def]
    return device.run(["sh", "-c", script], check=False)


def _host_shadow_line() -> str:
    """The first line of this host's /etc/shadow (what an escape would print)."""
    return Path("/etc/shadow").read_text().splitlines()[0]


# ---------------------------------------------------------------------------- keys
def test_unknown_key_is_refused_until_authorised(adb_client, tmp_path):  # noqa: F811
    adb = adb_client
    with EmulatedPhone(root=tmp_path / "phone", expose_python=False) as phone:
        keys_before = phone.keys_file.read_text()
        adb("connect", phone.address, check=False)
        # before: accepted at once ("device"), the key appended to adb_keys
        _wait_state(adb, phone.address, "unauthorized")
        result = adb("-s", phone.address, "shell", "id", check=False)
        assert result.returncode != 0 and "unauthorized" in result.stdout + result.stderr
        assert phone.keys_file.read_text() == keys_before
        # the emulator says which key it refused and exactly how to authorise it
        out = phone.root / "adbd.out"
        for _ in range(50):
            if "refused the unknown ADB key" in out.read_text():
                break
            time.sleep(0.1)
        text = out.read_text()
        public = adb.public_key.read_text().split()[0]
        assert "refused the unknown ADB key SHA256:" in text and "--authorize-key" in text
        command = next(line.strip() for line in text.splitlines()
                       if line.strip().startswith("echo ") and public in line)
        assert shlex.split(command)[-1] == str(phone.keys_file)
        # doing what it says lets the waiting connection through
        subprocess.run(["sh", "-c", command], check=True)
        _wait_state(adb, phone.address, "device")
        assert adb("-s", phone.address, "shell", "echo", "in").stdout == "in\n"


def test_authorised_keys_file_and_authorize_key_option(tmp_path):
    good, other = ensure_adb_key(tmp_path / "good"), ensure_adb_key(tmp_path / "other")
    keys = tmp_path / "adb_keys"
    keys.write_text("# authorised hosts\n")
    with EmulatedPhone(root=tmp_path / "phone", expose_python=False,
                       authorized_keys_files=[keys]) as phone:
        config = phone.device_config().replace(adb_key=str(good), connect_timeout=1.5)
        with pytest.raises(Exception, match="allow USB debugging"):
            open_device(config)
        keys.write_text(keys.read_text() + (tmp_path / "good.pub").read_text())  # read live
        with open_device(config.replace(connect_timeout=10.0)) as device:
            assert device.shell("echo", "ok").stdout == "ok\n"
        phone.authorize_key(tmp_path / "other.pub")
        with open_device(config.replace(adb_key=str(other))) as device:
            assert device.shell("echo", "ok").stdout == "ok\n"


# ---------------------------------------------------------------------------- the shell
def test_shell_cannot_read_the_host_through_proc(device):
    shadow = _host_shadow_line()
    for script in ("cat /proc/$PPID/root/etc/shadow", "cat /proc/1/root/etc/shadow",
                   "cat /etc/shadow", "for p in /proc/[0-9]*; do cat $p/root/etc/shadow; done",
                   "cat /proc/1/environ"):
        result = _sh(device, script)
        assert shadow not in result.stdout, script  # before: the host's shadow file
        assert "EDGESDK" not in result.stdout and "PATH=" not in result.stdout, script
    assert _sh(device, "id -u; id -G").stdout.split() == ["65534", "65534"]  # before: 0
    assert "NoNewPrivs:\t1" in _sh(device, "cat /proc/self/status").stdout
    # its /proc is the phone's pid namespace: no host process is visible (this test's, init's)
    pids = _sh(device, "ls /proc").stdout.split()
    assert str(os.getpid()) not in pids and "1" not in pids
    assert len([p for p in pids if p.isdigit()]) < 10


def test_shell_cannot_write_to_the_host(device, tmp_path):
    targets = [Path("/tmp") / f"{MARK}-tmp", Path("/dev/shm") / f"{MARK}-shm",
               tmp_path / f"{MARK}-mine"]
    script = "; ".join(f"echo pwned > /proc/$PPID/root{t}; echo pwned > /proc/1/root{t}; "
                       f"echo pwned > {t}" for t in targets)
    _sh(device, script + "; touch /etc/pwned /usr/pwned /dev/pwned")
    for target in targets:
        assert not target.exists(), target  # before: /tmp and /dev/shm were the host's
    assert not Path("/etc/pwned").exists() and not Path("/usr/pwned").exists()
    assert not Path("/dev/pwned").exists()
    devices = set(_sh(device, "ls /dev").stdout.split())
    assert devices <= {"null", "zero", "full", "random", "urandom", "shm", "fd", "stdin",
                       "stdout", "stderr"}  # before: the host's /dev (disks, /dev/mem...)
    mounts = _sh(device, "cat /proc/mounts").stdout.splitlines()
    for line in mounts:
        point, options = line.split()[1], line.split()[3].split(",")
        if point in ("/usr", "/etc", "/sys", "/bin", "/lib", "/system") or \
                point.startswith(("/sys/", "/usr/", "/etc/")):
            assert "ro" in options, line


def test_the_phone_still_works_as_nobody(device, phone, tmp_path):
    src = tmp_path / "w.bin"
    src.write_bytes(os.urandom(100_000))
    remote = device.push(src)
    assert phone.host_path(remote).stat().st_uid == 65534  # pushed as the shell's user
    result = _sh(device, f"sha256sum {shlex.quote(remote)}; rm {shlex.quote(remote)}")
    assert result.exit_code == 0 and not phone.host_path(remote).exists()
    assert _sh(device, "echo x > /sdcard/f && cat /sdcard/f && echo y > /dev/null").stdout \
        == "x\n"


# ---------------------------------------------------------------------------- sync paths
def test_push_through_a_symlink_stays_inside(adb_client, phone, tmp_path):  # noqa: F811
    adb = adb_client
    phone.authorize_key(adb.public_key)
    adb("connect", phone.address)
    _wait_state(adb, phone.address, "device")
    s = ["-s", phone.address]
    base = "/data/local/tmp"
    adb(*s, "shell", f"rm -rf {base}/h1; mkdir -p {base}/h1/real && cd {base}/h1 && "
                     "ln -s /dev/shm lnk && ln -s / top && ln -s ../../../../../.. up && "
                     "ln -s /etc/shadow shadow && ln -s real inside")
    src = tmp_path / "f"
    src.write_bytes(b"payload")
    escapes = {f"{base}/h1/lnk/{MARK}": Path("/dev/shm") / MARK,  # before: landed here
               f"{base}/h1/top/etc/{MARK}": Path("/etc") / MARK,
               f"{base}/h1/up/usr/{MARK}": Path("/usr") / MARK}
    for remote, host in escapes.items():
        result = adb(*s, "push", str(src), remote, check=False)
        assert result.returncode != 0, remote
        assert "Read-only file system" in result.stdout + result.stderr, remote
        assert not host.exists(), host
    # "/" and ".." stop at the sandbox's root: its own /tmp, never the host's
    for remote in (f"{base}/h1/top/tmp/{MARK}", f"{base}/h1/up/tmp/{MARK}"):
        adb(*s, "push", str(src), remote)
        assert phone.host_path(f"/tmp/{MARK}").read_bytes() == b"payload"
        assert not (Path("/tmp") / MARK).exists()
    # where a symlink resolves inside writable storage, it is followed as on a phone
    adb(*s, "push", str(src), f"{base}/h1/inside/ok")
    assert phone.host_path(f"{base}/h1/real/ok").read_bytes() == b"payload"
    # pulls and listings resolve inside the sandbox and as the shell's user too
    shadow = _host_shadow_line()
    for remote in (f"{base}/h1/shadow", "/etc/shadow", "/proc/1/environ"):
        into = tmp_path / "pulled" / remote.replace("/", "_")
        into.parent.mkdir(exist_ok=True)
        adb(*s, "pull", remote, str(into), check=False)
        got = [f.read_bytes() for f in [into, *into.rglob("*")] if f.is_file()]
        # before: the host's shadow file, and the environment of the host's init
        assert not [g for g in got if shadow.encode() in g or b"PATH=" in g], remote
    assert adb(*s, "shell", "ls /data/local/tmp/h1/real").stdout == "ok\n"


def test_sync_races_are_refused(device, phone, tmp_path):
    """The last component swapped for a symlink after the walk: O_EXCL/O_NOFOLLOW refuse it."""
    sandbox = Sandbox(phone.sandbox, {})
    try:
        _sh(device, "mkdir -p /data/local/tmp/race && ln -sfn /etc /data/local/tmp/race/l")
        with sandbox.resolve("/data/local/tmp/race/l", follow_last=False) as where:
            assert where.path == "/data/local/tmp/race/l" and where.name == "l"
            with pytest.raises(OSError) as info:
                os.open(where.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=where.dir_fd)
            assert info.value.errno == errno.ELOOP
        with sandbox.resolve("/data/local/tmp/race/l/passwd") as where:
            assert where.path == "/etc/passwd"  # resolved inside the root: the check sees /etc
        with sandbox.resolve("/../../../../data/../../tmp") as where:
            assert where.path == "/tmp"
    finally:
        sandbox.close()


# ---------------------------------------------------------------------------- listening
def test_non_loopback_listen_needs_allow_remote(tmp_path, capsys):
    with pytest.raises(EmulatorError, match=r"'0\.0\.0\.0' is not a loopback"):
        EmulatedPhone(root=tmp_path / "p", host="0.0.0.0")  # before: started on every interface
    assert adbd_main(["--root", str(tmp_path), "--host", "0.0.0.0", "--no-mounts"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
    from sdk.cli import main

    assert main(["emulate", "adb", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "not a loopback address" in capsys.readouterr().err
    assert main(["emulate", "adb", "--port", "0", "--authorize-key",
                 str(tmp_path / "nope.pub")]) == 2
    assert "--authorize-key" in capsys.readouterr().err
    (tmp_path / "junk.pub").write_text("not a key\n")
    with pytest.raises(EmulatorError, match=r"junk\.pub: not an ADB public key"):
        EmulatedPhone(root=tmp_path / "p").authorize_key(tmp_path / "junk.pub")


def test_allow_remote_warns(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "sdk", "emulate", "adb", "--host", "0.0.0.0",
                             "--allow-remote", "--port", "0", "--no-python", "--sandbox",
                             str(tmp_path / "s")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        assert any("on 0.0.0.0:" in line for line in lines), lines
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    errors = proc.stderr.read()
    assert "WARNING" in errors and "reachable from other machines" in errors


# ---------------------------------------------------------------------------- hole 9: adbkey
def test_world_readable_adbkey_is_fixed_and_said(phone, tmp_path):
    key = ensure_adb_key(tmp_path / "adbkey")
    os.chmod(key, 0o644)
    with pytest.warns(AdbKeyWarning, match=r"adbkey had mode 0644.*now 0600"):
        config = phone.device_config(adb_key=str(key))  # ensure_adb_key runs here first
    assert key.stat().st_mode & 0o777 == 0o600
    os.chmod(key, 0o640)
    with pytest.warns(AdbKeyWarning, match="mode 0640"), open_device(config) as device:
        assert device.shell("echo", "ok").stdout == "ok\n"
    assert key.stat().st_mode & 0o777 == 0o600
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a 0600 key: not a word
        ensure_adb_key(key)


def test_read_only_push_is_still_a_clear_error(device, tmp_path):
    src = tmp_path / "x"
    src.write_bytes(b"x")
    with pytest.raises(TransferError, match="read-only"):
        device.push(src, "/system/x")
