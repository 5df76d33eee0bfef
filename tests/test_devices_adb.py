"""The emulated phone (our ADB daemon) against Debian's real `adb` client and our AdbDevice."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from device_helpers import processes

from sdk.devices import (
    AdbDevice,
    DeviceAuthError,
    DeviceConnectionError,
    DeviceNotFoundError,
    DeviceStorageError,
    DeviceTimeoutError,
    TransferError,
    open_device,
    parse_device_string,
)
from sdk.devices.adb import choose_serial, ensure_adb_key
from sdk.devices.emulated import EmulatedPhone
from sdk.devices.emulated.adb_proto import (
    A_CNXN,
    A_WRTE,
    Message,
    ProtocolError,
    encode_adb_public_key,
    parse_adb_public_key,
    parse_header,
)

ROOT = Path(__file__).resolve().parent.parent
ARM_TEST = ROOT / "build" / "aarch64" / "edge_native_tests"
NASTY = "my model; touch PWNED $(touch PWNED2) `touch PWNED3` 'q' \"d\" & | > < *.tflite"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def phone_device(emulated_phone, tmp_path):
    with open_device(emulated_phone.device_config(adb_key=str(tmp_path / "adbkey"))) as device:
        yield device
        device.cleanup()


# ---------------------------------------------------------------------------- the protocol
def test_rsa_signature_check_against_adb_shell_signer(tmp_path):
    from adb_shell.auth.keygen import keygen
    from adb_shell.auth.sign_pythonrsa import PythonRSASigner

    keygen(str(tmp_path / "k"))
    signer = PythonRSASigner.FromRSAKeyPath(str(tmp_path / "k"))
    key = parse_adb_public_key((tmp_path / "k.pub").read_text())
    assert key.bits == 2048 and key.exponent == 65537
    token = os.urandom(20)
    signature = signer.Sign(token)
    assert key.verify(token, signature)
    assert not key.verify(os.urandom(20), signature)
    assert not key.verify(token, signature[:-1] + bytes([signature[-1] ^ 1]))
    # our encoder writes the same struct Android (and adb-shell) write
    text = encode_adb_public_key(key.modulus, key.exponent, "x@y")
    assert text.split()[0] == (tmp_path / "k.pub").read_text().split()[0]


def test_protocol_framing_and_bad_input():
    message = Message(A_WRTE, 3, 7, b"hello")
    packed = message.pack()
    assert parse_header(packed[:24]) == (A_WRTE, 3, 7, 5, sum(b"hello"))
    with pytest.raises(ProtocolError, match="bad magic"):
        parse_header(packed[:20] + b"\0\0\0\0")
    with pytest.raises(ProtocolError, match="unknown command"):
        parse_header(Message(0x12345678, 0, 0).pack()[:20]
                     + (0x12345678 ^ 0xFFFFFFFF).to_bytes(4, "little"))
    with pytest.raises(ProtocolError, match="not base64"):
        parse_adb_public_key("!!!! user@host")
    with pytest.raises(ProtocolError, match="does not hold"):
        parse_adb_public_key("AAAAAAAAAAAAAAAA")


def test_garbage_from_a_host_closes_the_connection(emulated_phone):
    with socket.create_connection(("127.0.0.1", emulated_phone.port), 5) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n" + b"x" * 10)
        sock.settimeout(5)
        assert sock.recv(100) == b""  # closed, not hung
    with socket.create_connection(("127.0.0.1", emulated_phone.port), 5) as sock:
        sock.sendall(Message(A_CNXN, 0x01000001, 4096, b"host::\0").pack())
        sock.settimeout(5)
        header = sock.recv(24)
        assert header[:4] == b"AUTH"  # a phone that wants a key


# ---------------------------------------------------------------------------- Debian's adb
@pytest.fixture
def adb_client(tmp_path):
    """Debian's adb with its own server on a private port and its own HOME (its own key)."""
    adb = shutil.which("adb")
    assert adb, "Debian's adb is installed by `make setup`"
    port = _free_port()
    # its own server: -P on every call, and the same port in the environment, so nothing here
    # talks to (or starts) the machine's adb server on 5037 and the phones it holds
    env = dict(os.environ, HOME=str(tmp_path / "home"), ANDROID_SDK_HOME=str(tmp_path / "home"),
               ANDROID_ADB_SERVER_PORT=str(port))
    env.pop("ADB_VENDOR_KEYS", None)
    env.pop("ANDROID_SERIAL", None)
    (tmp_path / "home").mkdir()

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([adb, "-P", str(port), *args], env=env, capture_output=True,
                                text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"adb {' '.join(args)}: {result.returncode} {result.stdout} "
                                 f"{result.stderr}")
        return result

    run("start-server")  # it makes its key: HOME/.android/adbkey(.pub)
    run.public_key = tmp_path / "home" / ".android" / "adbkey.pub"  # type: ignore[attr-defined]
    try:
        yield run
    finally:
        run("kill-server", check=False)


def _wait_state(adb, serial: str, state: str) -> str:
    line = ""
    for _ in range(100):
        out = adb("devices", "-l").stdout
        line = next((x for x in out.splitlines() if x.startswith(serial)), "")
        if f" {state} " in line + " ":
            return line
        time.sleep(0.05)
    raise AssertionError(f"{serial} never became {state}: {line!r}")


def test_real_adb_client(adb_client, tmp_path):
    adb = adb_client
    with EmulatedPhone(root=tmp_path / "phone") as phone:
        phone.authorize_key(adb.public_key)  # explicitly, as adb_keys on a phone
        serial = phone.address
        adb("connect", serial)
        line = _wait_state(adb, serial, "device")
        assert "product:edgesdk_emu_aarch64" in line
        # the phone's own host key and the adb server's, nothing recorded by the daemon
        assert len(phone.keys_file.read_text().splitlines()) == 2
        shell = ["-s", serial, "shell"]
        assert adb(*shell, "echo hi; getprop ro.product.cpu.abi").stdout == "hi\narm64-v8a\n"
        # shell v2: exit codes and stderr come back separately
        result = adb(*shell, "echo out; echo err >&2; exit 3", check=False)
        assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
        # push, pull, the checksum on the phone
        src = tmp_path / "weights.bin"
        src.write_bytes(os.urandom(700_000))  # more than one 64 KiB sync chunk
        adb("-s", serial, "push", str(src), "/data/local/tmp/")
        digest = adb(*shell, "sha256sum /data/local/tmp/weights.bin").stdout.split()[0]
        assert digest == subprocess.run(["sha256sum", str(src)], capture_output=True,
                                        text=True).stdout.split()[0]
        adb("-s", serial, "pull", "/data/local/tmp/weights.bin", str(tmp_path / "back.bin"))
        assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
        # an Arm binary, run as on a phone (qemu behind the scenes)
        adb("-s", serial, "push", str(ARM_TEST), "/data/local/tmp/arm_tests")
        result = adb(*shell, "/data/local/tmp/arm_tests", check=False)
        assert result.returncode == 0 and "arch=aarch64" in result.stdout
        # the phone's /system is read-only
        result = adb("-s", serial, "push", str(src), "/system/bin/x", check=False)
        assert result.returncode != 0 and "Read-only" in result.stdout + result.stderr
        # reconnecting uses the signature path: the key is known now
        adb("disconnect", serial)
        adb("connect", serial)
        _wait_state(adb, serial, "device")
        assert "signature verified" in phone.log_file.read_text()


def test_real_adb_client_unauthorized(adb_client, tmp_path):
    with EmulatedPhone(root=tmp_path / "phone") as phone:
        keys = phone.keys_file.read_text()
        adb_client("connect", phone.address, check=False)
        _wait_state(adb_client, phone.address, "unauthorized")
        assert phone.keys_file.read_text() == keys  # a refused key is never recorded


# ---------------------------------------------------------------------------- AdbDevice
def test_default_key_created_and_authorised(emulated_phone, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    config = emulated_phone.device_config(adb_key=None)  # the phone authorises the default key
    with open_device(config) as device:
        assert isinstance(device, AdbDevice)
        assert device.shell("getprop", "ro.product.cpu.abi").stdout == "arm64-v8a\n"
    key = tmp_path / "config" / "edgesdk" / "adbkey"
    assert key.stat().st_mode & 0o777 == 0o600
    assert (key.parent / "adbkey.pub").read_text().split()[0] in \
        emulated_phone.keys_file.read_text()


def test_preauthorised_key_and_refused_key(tmp_path):
    ensure_adb_key(tmp_path / "good")
    ensure_adb_key(tmp_path / "bad")
    with EmulatedPhone(root=tmp_path / "phone",
                       authorized_keys=[(tmp_path / "good.pub").read_text()]) as phone:
        # .replace(): a config the phone did not hand out (device_config authorises its key)
        with open_device(phone.device_config().replace(adb_key=str(tmp_path / "good"))) as device:
            assert device.shell("echo", "ok").stdout == "ok\n"  # RSA signature verified
        config = phone.device_config().replace(adb_key=str(tmp_path / "bad"), connect_timeout=1.5)
        with pytest.raises(DeviceAuthError, match=r"allow USB debugging.*bad\.pub"):
            open_device(config)
        assert "refused the unknown ADB key" in (phone.root / "adbd.out").read_text()


def test_info_and_exit_codes(phone_device):
    info = phone_device.info()
    assert info.abi == "arm64-v8a" and info.os == "Android 14 (SDK 34)"
    # the emulated phone runs on this host's kernel, its Arm code under qemu
    assert info.kernel_arch == platform.machine() and "qemu-aarch64" in (info.emulated or "")
    result = phone_device.run(["sh", "-c", "echo o; echo e >&2; exit 5"], check=False)
    assert (result.exit_code, result.stdout, result.stderr) == (5, "o\n", "e\n")


def test_arm_binary_runs_like_on_a_phone(phone_device):
    remote = phone_device.push(ARM_TEST, "bin/arm_tests", mode=0o755)
    result = phone_device.run([remote])  # no exec_prefix: the phone runs Arm code itself
    assert "arch=aarch64" in result.stdout and "0 failed" in result.stdout


def test_push_pull_metacharacters(phone_device, emulated_phone, tmp_path):
    src = tmp_path / NASTY
    src.write_bytes(os.urandom(200_000))
    remote = phone_device.push(src)
    assert remote == f"/data/local/tmp/edgesdk/{NASTY}"
    assert emulated_phone.host_path(remote).read_bytes() == src.read_bytes()
    back = phone_device.pull(remote, tmp_path / "back.bin")
    assert back.read_bytes() == src.read_bytes()
    assert phone_device.shell("printf", "%s", "$(id) ;|&").stdout == "$(id) ;|&"
    listing = phone_device.listdir(phone_device.workdir)
    assert NASTY in listing and not [n for n in listing if n.startswith("PWNED")]
    assert not list(tmp_path.glob("PWNED*"))


def test_timeout_kills_the_remote_process(phone_device):
    with pytest.raises(DeviceTimeoutError, match="killed"):
        phone_device.run(["sh", "-c", "sleep 43; : edgesdk-adb-timeout"], timeout=1.0)
    assert phone_device.shell("echo", "again").stdout == "again\n"
    assert not processes("edgesdk-adb-timeout")


def test_read_only_system_is_a_clear_error(phone_device, tmp_path):
    src = tmp_path / "x.bin"
    src.write_bytes(b"x")
    with pytest.raises(TransferError, match=r"cannot write to /system .*read-only"):
        phone_device.push(src, "/system/x.bin")
    # the phone itself says so when asked to write there
    result = phone_device.shell("touch", "/system/x.bin", check=False)
    assert result.exit_code != 0 and "Read-only file system" in result.stderr


def test_link_drop_mid_push_is_retried(emulated_phone, phone_device, tmp_path):
    src = tmp_path / "weights.bin"
    src.write_bytes(os.urandom(3_000_000))
    dropped = []

    def progress(done, total):
        if done > 500_000 and not dropped:
            dropped.append(True)
            emulated_phone.drop_connections()
            time.sleep(0.2)

    remote = phone_device.push(src, progress=progress)
    assert dropped
    assert emulated_phone.host_path(remote).read_bytes() == src.read_bytes()
    phone_device.shell("true")
    assert not [n for n in phone_device.listdir(phone_device.workdir) if ".edgesdk-tmp-" in n]


def test_phone_gone_during_push_and_back(tmp_path):
    src = tmp_path / "model.bin"
    src.write_bytes(os.urandom(2_000_000))
    with EmulatedPhone(root=tmp_path / "phone") as phone, \
            open_device(phone.device_config(adb_key=str(tmp_path / "k"))) as device:
        def progress(done, total):
            if done > 300_000:
                phone.drop_connections()
                time.sleep(0.2)

        with pytest.raises(DeviceConnectionError, match=r"failed after 3 attempt\(s\)"):
            device.push(src, progress=progress)
        assert not phone.host_path(f"{device.workdir}/model.bin").exists()
        remote = device.push(src)  # usable again
        assert phone.host_path(remote).read_bytes() == src.read_bytes()
        assert not [n for n in device.listdir(device.workdir) if ".edgesdk-tmp-" in n]
        # unplugged for good: a clear error, after bounded retries
        phone.stop()
        with pytest.raises(DeviceConnectionError, match=r"failed after 3 attempt\(s\).*cannot "
                                                        "connect"):
            device.shell("true", retries=2)


def test_phone_gone_during_run_kills_orphans(emulated_phone, phone_device):
    marker = "edgesdk-adb-drop-marker"
    stop = threading.Event()

    def dropper():
        while not stop.is_set():
            if processes(marker):
                emulated_phone.drop_connections()
            time.sleep(0.05)

    thread = threading.Thread(target=dropper, daemon=True)
    thread.start()
    try:
        with pytest.raises(DeviceConnectionError, match=r"failed after 2 attempt\(s\)"):
            phone_device.run(["sh", "-c", f"sleep 40; : {marker}"], timeout=60, retries=1)
    finally:
        stop.set()
        thread.join()
    assert phone_device.shell("echo", "back").stdout == "back\n"
    assert not processes(marker)


def test_full_phone_storage(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1_500_000))
    with EmulatedPhone(root=tmp_path / "phone", storage_bytes=1 << 20) as phone, \
            open_device(phone.device_config(adb_key=str(tmp_path / "k"))) as device:
        with pytest.raises(DeviceStorageError, match=r"no room for big\.bin"):
            device.push(big)
        # the phone's own ENOSPC, reported through the sync protocol, is recognised too
        with pytest.raises(TransferError, match="No space left"):
            device._upload(big, f"{device.workdir}/direct.bin", None)
        assert device.free_bytes(device.workdir) > 900_000  # the failed file was removed


def test_phone_selection():
    assert choose_serial(["A1"], None, device="adb") == "A1"
    assert choose_serial(["A1", "B2"], "B2", device="adb") == "B2"
    with pytest.raises(DeviceNotFoundError, match=r"2 phones are attached \(A1, B2\); name one"):
        choose_serial(["A1", "B2"], None, device="adb")
    with pytest.raises(DeviceNotFoundError, match="C3 is not attached"):
        choose_serial(["A1", "B2"], "C3", device="adb:C3")
    with pytest.raises(DeviceNotFoundError, match="no Android phone found on USB"):
        choose_serial([], None, device="adb")


def test_no_phone_on_usb(monkeypatch, tmp_path):
    # The USB listing is stubbed, so the test holds whatever is plugged into this machine (and
    # never opens a real phone); the key is a fresh one, not ~/.android's.
    import sdk.devices.adb as adb_module

    config = parse_device_string("adb").replace(adb_key=str(tmp_path / "adbkey"))
    monkeypatch.setattr(adb_module, "usb_serials", lambda: [])
    with pytest.raises(DeviceNotFoundError, match="no Android phone found on USB"):
        open_device(config)
    monkeypatch.setattr(adb_module, "usb_serials", lambda: ["A1", "B2"])
    with pytest.raises(DeviceNotFoundError, match=r"2 phones are attached \(A1, B2\)"):
        open_device(config)


def test_adb_serial_forms_and_cleanup_everything(emulated_phone, tmp_path):
    # `adb devices` prints TCP phones as HOST:PORT; that works as a serial too
    emulated_phone.authorize_key(tmp_path / "k")
    config = parse_device_string(f"adb:{emulated_phone.address}").replace(
        adb_key=str(tmp_path / "k"), workdir="/data/local/tmp/edgesdk-cleanup")
    with open_device(config) as device:
        src = tmp_path / "a.bin"
        src.write_bytes(b"a")
        device.push(src)
        assert device.cleanup(everything=True) == ["/data/local/tmp/edgesdk-cleanup"]
        assert not emulated_phone.host_path(device.workdir).exists()
        result = device.run(["sh", "-c", "echo err >&2; pwd"], check=False)
        assert (result.stdout.strip(), result.stderr) == (device.workdir, "err\n")
