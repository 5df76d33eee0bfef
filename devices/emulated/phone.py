"""An emulated Android phone: our ADB daemon on a TCP port, a sandbox for its file system.

    with EmulatedPhone(arch="aarch64") as phone:
        device = open_device(phone.device_config())     # our AdbDevice (adb-shell)
        # or Debian's adb:  adb connect 127.0.0.1:<phone.port>

What is real: the ADB protocol (framing, RSA authentication, streams, shell v1/v2, sync), the
Linux kernel running the commands, qemu-user executing Arm machine code. What is emulated: the
phone itself — its `/system` is a few files (`getprop`, `build.prop` with Android-like
properties), the rest of its userland is this host's, seen read-only through a chroot, and Arm
ELF programs are started through qemu by an LD_PRELOAD shim (no binfmt_misc here).
`getprop ro.kernel.qemu` is 1 and `ro.edgesdk.emulator` says how it runs, so profiles of an
emulated phone say so.

The daemon runs in a private mount namespace and as the init of its own pid namespace
(`unshare -m -p -f`; as non-root, with a user namespace), so its bind mounts, its /proc and its
optional tmpfs /data (`storage_bytes`) never touch the host. Started as root, its shells and
sync services run as nobody (see `adb_sandbox` and docs/security.md).

Keys are authorised explicitly: the phone trusts the keys in its adb_keys file — the ones given
as `authorized_keys` / `authorize_key()`, the key it makes for its own host side (`host_key`,
which `device_config()` uses), and the key a `device_config(adb_key=...)` names (the phone's
owner handing out a config is authorising that key). Any other key is refused, and the daemon
prints how to authorise it. It listens on loopback unless `allow_remote=True`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from sdk.devices.adb import adb_key_path, adb_public_key
from sdk.devices.config import DeviceConfig, RunnerConfig
from sdk.devices.emulated.adb_proto import ProtocolError, parse_adb_public_key
from sdk.devices.emulated.adbd import is_loopback
from sdk.devices.emulated.board import _descendants
from sdk.devices.emulated.qemu import ARCHS, qemu_command
from sdk.devices.errors import EmulatorError

_GETPROP = """#!/bin/sh
# getprop of the edgesdk emulated phone: the properties live in /system/build.prop
props=/system/build.prop
if [ $# -eq 0 ]; then
  awk -F= '/^[^#]/ && NF >= 2 { k = $1; sub(/^[^=]*=/, ""); printf "[%s]: [%s]\\n", k, $0 }' \\
    "$props"
else
  v=$(awk -F= -v k="$1" '$1 == k { sub(/^[^=]*=/, ""); print; exit }' "$props")
  if [ -z "$v" ] && [ $# -ge 2 ]; then v=$2; fi
  printf '%s\\n' "$v"
fi
"""


def build_shim(cache: Path | None = None) -> Path:
    """Compile the exec shim (once per source version) and return the .so path."""
    source = Path(__file__).with_name("exec_shim.c")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    cache = cache or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgesdk"
    target = cache / f"libedgesdk_exec-{digest}.so"
    if target.exists():
        return target
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        raise EmulatorError("the emulated phone builds a small exec shim and needs a C compiler "
                            "(apt-get install build-essential)")
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    result = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(tmp),
                             str(source), "-ldl"], capture_output=True, text=True)
    if result.returncode != 0:
        raise EmulatorError(f"cannot build the exec shim: {result.stderr.strip()[-1000:]}")
    os.replace(tmp, target)
    return target


def default_props(arch: str, serial: str, cpu: str | None) -> dict[str, str]:
    spec = ARCHS[arch]
    abilist = {"aarch64": "arm64-v8a,armeabi-v7a,armeabi", "armv7": "armeabi-v7a,armeabi",
               "x86_64": "x86_64"}[arch]
    emulator = f"{' '.join(qemu_command(arch, cpu)) or 'native'} (user mode) on x86_64"
    return {
        "ro.product.manufacturer": "edgesdk",
        "ro.product.brand": "edgesdk",
        "ro.product.model": f"Emulated phone ({arch})",
        "ro.product.name": f"edgesdk_emu_{arch}",
        "ro.product.device": f"emu_{arch}",
        "ro.product.cpu.abi": spec.abi,
        "ro.product.cpu.abilist": abilist,
        "ro.build.version.release": "14",
        "ro.build.version.sdk": "34",
        "ro.build.type": "userdebug",
        "ro.serialno": serial,
        "ro.hardware": "edgesdk_emu",
        "ro.kernel.qemu": "1",
        "ro.edgesdk.emulator": emulator,
        "ro.debuggable": "1",
    }


class EmulatedPhone:
    """Start with `with` or `start()`; `device_config()` reaches it; `stop()` ends it."""

    def __init__(self, *, arch: str = "aarch64", cpu: str | None = None,
                 serial: str | None = None, root: str | os.PathLike[str] | None = None,
                 host: str = "127.0.0.1", port: int = 0, auth: bool = True,
                 authorized_keys: list[str] | None = None,
                 authorized_keys_files: list[str | os.PathLike[str]] | None = None,
                 storage_bytes: int | None = None, expose_python: bool = True,
                 expose: list[str] | None = None, props: Mapping[str, str] | None = None,
                 host_key: str | os.PathLike[str] | None = None, allow_remote: bool = False):
        if arch not in ARCHS:
            raise EmulatorError(f"unknown arch {arch!r}; emulated phones are {sorted(ARCHS)}")
        if not allow_remote and not is_loopback(host):
            raise EmulatorError(f"the emulated phone listens on loopback only; {host!r} is not "
                                "a loopback address (pass allow_remote=True / --allow-remote "
                                "to mean it)")
        self.allow_remote = allow_remote
        self.arch = arch
        self.cpu = cpu
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.auth = auth
        self.authorized_keys = [_checked_key(text, "authorized_keys") for text in
                                authorized_keys or []]
        #: more authorised-keys files, read by the daemon at every connection (not written)
        self.authorized_keys_files = [Path(f).expanduser() for f in authorized_keys_files or []]
        self.storage_bytes = storage_bytes
        self._own_root = root is None
        self.root = Path(root) if root is not None else Path(
            tempfile.mkdtemp(prefix=f"edgesdk-phone-{arch}-"))
        self.serial = serial or f"emulator-edgesdk-{arch}"
        self.expose = list(expose or [])
        self.python: str | None = None
        if expose_python:
            # the .tflite runner needs a Python with LiteRT; the phone borrows this host's,
            # and the runner reports that it ran as x86_64
            self.python = sys.executable
            self.expose += sorted({sys.prefix, os.path.realpath(sys.base_prefix)})
        self.props = default_props(arch, self.serial, cpu)
        self.props.update(props or {})
        #: the host side's ADB key for device_config(), authorised on this phone (default: one
        #: made for it in the phone's directory)
        self.host_key = str(host_key) if host_key is not None else str(self.root / "host-adbkey")
        self._proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None

    # ------------------------------------------------------------------ files
    @property
    def sandbox(self) -> Path:
        return self.root / "sandbox"

    @property
    def keys_file(self) -> Path:
        return self.root / "adb_keys"

    @property
    def log_file(self) -> Path:
        return self.root / "adbd.log"

    def host_path(self, device_path: str) -> Path:
        """Where a phone path lives on this host (not for a tmpfs /data: that is private)."""
        return self.sandbox / device_path.lstrip("/")

    def _prepare(self) -> None:
        system = self.sandbox / "system"
        for sub in ("system/bin", "system/lib64", "data/local/tmp", "tmp", "sdcard"):
            (self.sandbox / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.sandbox / "tmp", 0o1777)
        sh = system / "bin" / "sh"
        if not sh.is_symlink():
            sh.symlink_to("/bin/sh")
        getprop = system / "bin" / "getprop"
        getprop.write_text(_GETPROP)
        getprop.chmod(0o755)
        (system / "build.prop").write_text(
            "".join(f"{k}={v}\n" for k, v in self.props.items()))
        shutil.copyfile(build_shim(), system / "lib64" / "libedgesdk_exec.so")
        os.chmod(self.sandbox / "sdcard", 0o1777)
        keys = [*self.authorized_keys, adb_public_key(Path(self.host_key))]
        self.keys_file.write_text("".join(k + "\n" for k in keys))
        os.chmod(self.keys_file, 0o644)

    # ------------------------------------------------------------------ keys
    def authorize_key(self, key: str | os.PathLike[str]) -> str:
        """Authorise a host key on this phone (the daemon reads the file at every connection):
        a public key file (`adbkey.pub`), a private key (its `.pub`; a missing key is created),
        or the key text itself. Returns the public key text."""
        text = str(key).strip()
        try:
            parse_adb_public_key(text)
        except ProtocolError:
            path = Path(text).expanduser()
            if path.suffix == ".pub" or _looks_public(path):
                try:
                    text = _checked_key(path.read_text(), str(path))
                except OSError as exc:
                    raise EmulatorError(f"cannot read the ADB public key {path}: "
                                        f"{exc.strerror}") from exc
            else:
                text = adb_public_key(path)
        if text not in self.authorized_keys:
            self.authorized_keys.append(text)
        if self.running:  # started: the daemon reads its keys file at every connection
            known = self.keys_file.read_text().splitlines()
            if text not in known:
                with open(self.keys_file, "a") as handle:
                    handle.write(text + "\n")
        return text

    # ------------------------------------------------------------------ life cycle
    def start(self) -> EmulatedPhone:
        if shutil.which("unshare") is None or shutil.which("chroot") is None:
            raise EmulatorError("the emulated phone needs util-linux's unshare and chroot")
        self._prepare()
        ready = self.root / "ready.json"
        ready.unlink(missing_ok=True)
        # a private mount namespace, and a pid namespace of which the daemon is the init (its
        # shells see a /proc of the phone's processes only; all die with it)
        command = [
            "unshare", "-m", "-p", "-f", "--kill-child", "--propagation", "private",
            *(["-r"] if os.getuid() else []),
            sys.executable, "-m", "sdk.devices.emulated.adbd",
            "--root", str(self.sandbox), "--host", self.host, "--port", str(self.requested_port),
            "--serial", self.serial, "--adb-keys", str(self.keys_file),
            "--ready-file", str(ready), "--log-file", str(self.log_file),
            "--parent", str(os.getpid()),
        ]
        for path in self.authorized_keys_files:
            command += ["--adb-keys", str(path)]
        if self.allow_remote:
            command.append("--allow-remote")
        if not self.auth:
            command.append("--no-auth")
        if self.storage_bytes:
            command += ["--storage-bytes", str(int(self.storage_bytes))]
        for path in self.expose:
            command += ["--expose", path]
        qemu = qemu_command(self.arch, self.cpu)
        if self.arch == "aarch64":
            command += ["--qemu-aarch64", " ".join(qemu),
                        "--qemu-arm", " ".join(qemu_command("armv7"))]
        elif self.arch == "armv7":
            command += ["--qemu-arm", " ".join(qemu)]
        out = open(self.root / "adbd.out", "wb")  # noqa: SIM115 - the daemon writes to it
        self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                      start_new_session=True, cwd=str(self.root))
        out.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if ready.exists():
                info = json.loads(ready.read_text())
                self.port, self.pid = int(info["port"]), int(info["pid"])
                return self
            if self._proc.poll() is not None:
                break
            time.sleep(0.02)
        text = (self.root / "adbd.out").read_text(errors="replace")[-2000:]
        self.stop()
        raise EmulatorError(f"the emulated phone did not start: {text.strip() or 'timeout'}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            descendants = _descendants(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
            for pid in descendants:  # shells run in sessions of their own
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def drop_connections(self) -> None:
        """Cut every open connection (the cable pulled); the phone stays up."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGUSR1)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> EmulatedPhone:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ how to reach it
    @property
    def abi(self) -> str:
        return ARCHS[self.arch].abi

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def device_config(self, name: str | None = None, **changes: object) -> DeviceConfig:
        """A config that reaches this phone with `host_key`, or with the `adb_key` given in
        `changes` (None: the default ~/.config/edgesdk/adbkey), which this authorises on the
        phone (creating the key if missing): the phone's owner hands the config out."""
        if self.port is None:
            raise EmulatorError("the emulated phone is not started")
        config = DeviceConfig(
            name=name or f"phone-{self.arch}", transport="adb",
            address=f"tcp:{self.host}:{self.port}", abi=self.abi,
            workdir="/data/local/tmp/edgesdk", adb_key=self.host_key,
            runner=RunnerConfig(python=self.python), retries=2, connect_timeout=10.0,
            description=f"emulated {self.arch} phone: edgesdk's ADB daemon, Arm binaries "
                        "through qemu-user; Python runners are this host's Python")
        config = config.replace(**changes) if changes else config
        if self.auth:
            self.authorize_key(adb_key_path(config))
        return config


def _looks_public(path: Path) -> bool:
    """Whether the file at `path` holds an ADB public key (not a PEM private key)."""
    try:
        parse_adb_public_key(path.read_text(errors="replace"))
    except (OSError, ProtocolError):
        return False
    return True


def _checked_key(text: str, where: str) -> str:
    """`text` stripped, when it is an ADB public key; EmulatorError naming `where` if not."""
    text = text.strip()
    try:
        parse_adb_public_key(text)
    except ProtocolError as exc:
        raise EmulatorError(f"{where}: not an ADB public key ({exc})") from None
    return text
