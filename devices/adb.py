"""`AdbDevice`: an Android phone through adb-shell (the `[devices]` extra); no adb server needed.

* USB through libusb1 (`adb:SERIAL`, or `adb` when exactly one phone is attached), TCP through a
  socket (`adb:tcp:HOST:PORT`, or `adb:HOST:PORT` as `adb devices` prints TCP serials).
* Our RSA key is created on first use (`~/.config/edgesdk/adbkey`, mode 0600, and `adbkey.pub`);
  the phone asks its user once to allow it. An existing private key that others may read (or
  write) is made 0600 again, with an `AdbKeyWarning` that says so.
* An adb server holding the phone (it claims the USB interface) is named in the error, with the
  fix (`adb kill-server`).

Exit codes: the `shell:` service (v1, all Android versions) returns no exit code and merges
stderr into stdout, so every script runs as `sh -c SCRIPT 2>ERRFILE` followed by a marker line
with `$?` and the saved stderr.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import secrets
import socket
import stat
import time
import warnings
from pathlib import Path
from typing import Any

from sdk.devices.base import CommandResult, Device, Progress, quote
from sdk.devices.config import DeviceConfig, config_dir
from sdk.devices.errors import (
    DeviceAuthError,
    DeviceConnectionError,
    DeviceError,
    DeviceNotFoundError,
    DeviceTimeoutError,
    TransferError,
)

_TCP_SERIAL = re.compile(r"^(?P<host>[\w.\-]+|\[[0-9a-fA-F:]+\]):(?P<port>\d+)$")


def _adb_shell() -> Any:
    try:
        import adb_shell
    except ImportError as exc:  # pragma: no cover - only without the extra
        raise DeviceError("Android devices need adb-shell: pip install 'edgesdk[devices]'") from exc
    return adb_shell


def adb_key_path(config: DeviceConfig | None = None) -> Path:
    """Our ADB private key (the public one is beside it, `.pub`)."""
    if config is not None and config.adb_key:
        return Path(config.adb_key).expanduser()
    return config_dir() / "adbkey"


class AdbKeyWarning(UserWarning):
    """Our ADB private key was readable or writable by others: its mode was fixed to 0600."""


def ensure_adb_key(path: Path) -> Path:
    """Create an RSA key pair at `path` (mode 0600) unless one exists; returns `path`. An
    existing key with group/other permission bits is set to 0600 (with an AdbKeyWarning):
    anyone who read it could connect to every phone that allowed it."""
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            try:
                os.chmod(path, 0o600)
            except OSError as exc:
                raise DeviceAuthError(f"the ADB private key {path} has mode {mode:04o} (others "
                                      f"may read it) and cannot be made 0600: "
                                      f"{exc.strerror}") from exc
            warnings.warn(f"the ADB private key {path} had mode {mode:04o}, so other users "
                          "could read it and connect to every phone that allowed it; its mode "
                          "is now 0600 (if others could read it, make a new key and revoke "
                          "the old one on the phones)", AdbKeyWarning, stacklevel=2)
        return path
    from adb_shell.auth.keygen import keygen

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    old = os.umask(0o077)
    try:
        keygen(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    os.chmod(path.with_name(path.name + ".pub"), 0o644)
    return path


def adb_public_key(path: Path) -> str:
    """The public key ("BASE64 user@host") of the private key at `path` (created if missing),
    from `path.pub`, which is written from the private key when absent."""
    ensure_adb_key(path)
    public = path.with_name(path.name + ".pub")
    if not public.exists():
        from adb_shell.auth.keygen import write_public_keyfile

        write_public_keyfile(str(path), str(public))
        os.chmod(public, 0o644)
    return public.read_text().strip()


def usb_serials() -> list[str]:
    """Serial numbers of the ADB phones on USB (libusb; empty when USB is not accessible)."""
    _adb_shell()
    try:
        from adb_shell.transport.usb_transport import UsbTransport
    except ImportError:  # pragma: no cover - libusb1 missing
        return []
    try:
        return [dev.serial_number for dev in UsbTransport.find_all_adb_devices()]
    except Exception:
        return []


def choose_serial(available: list[str], wanted: str | None, *, device: str) -> str:
    """The serial to open: `wanted` when attached, or the only phone; clear errors otherwise."""
    if wanted:
        if wanted not in available:
            listing = ", ".join(available) or "none"
            raise DeviceNotFoundError(f"phone {wanted} is not attached over USB (attached: "
                                      f"{listing})", device=device)
        return wanted
    if not available:
        raise DeviceNotFoundError(
            "no Android phone found on USB: check the cable, that USB debugging is on, and "
            "that no adb server holds the phone (`adb kill-server`); phones over Wi-Fi are "
            "adb:tcp:HOST:PORT", device=device)
    if len(available) > 1:
        raise DeviceNotFoundError(
            f"{len(available)} phones are attached ({', '.join(available)}); name one: "
            + " or ".join(f"adb:{s}" for s in available[:2]), device=device)
    return available[0]


class AdbDevice(Device):
    """An Android phone (or our emulated one)."""

    transport = "adb"

    def __init__(self, config: DeviceConfig):
        if config.transport != "adb":
            raise ValueError(f"not an adb device: {config.device_string}")
        super().__init__(config)
        self._adb: Any = None
        self.serial: str | None = None

    def default_workdir(self) -> str:
        return "/data/local/tmp/edgesdk"

    def _tcp(self) -> tuple[str, int] | None:
        tcp = self.config.adb_tcp()
        if tcp is None and self.config.address:
            match = _TCP_SERIAL.match(self.config.address)
            if match:
                tcp = match.group("host").strip("[]"), int(match.group("port"))
        return tcp

    # ------------------------------------------------------------------ connection
    def _connect(self) -> None:
        adb_shell = _adb_shell()
        from adb_shell.adb_device import AdbDevice as AdbShellDevice
        from adb_shell.adb_device import AdbDeviceUsb
        from adb_shell.auth.sign_pythonrsa import PythonRSASigner

        key = ensure_adb_key(adb_key_path(self.config))
        signer = PythonRSASigner.FromRSAKeyPath(str(key))
        tcp = self._tcp()
        timeout = self.config.connect_timeout
        if tcp is not None:
            self.serial = f"{tcp[0]}:{tcp[1]}"
            adb = AdbShellDevice(_tcp_transport(tcp[0], tcp[1]),
                                 default_transport_timeout_s=timeout)
            where = f"{tcp[0]}:{tcp[1]}"
        else:
            self.serial = choose_serial(usb_serials(), self.config.address or None,
                                        device=self.name)
            try:
                adb = AdbDeviceUsb(serial=self.serial, default_transport_timeout_s=timeout)
            except Exception as exc:
                raise DeviceConnectionError(f"cannot open phone {self.serial} over USB: {exc}",
                                            device=self.name) from exc
            where = f"USB {self.serial}"
        exc_mod = adb_shell.exceptions
        try:
            adb.connect(rsa_keys=[signer], auth_timeout_s=timeout, read_timeout_s=timeout,
                        transport_timeout_s=timeout)
        except exc_mod.DeviceAuthError as exc:
            raise DeviceAuthError(f"{where} requires authentication: {exc}",
                                  device=self.name) from exc
        except (exc_mod.TcpTimeoutException, exc_mod.AdbTimeoutError) as exc:
            adb.close()
            if tcp is not None and _port_open(*tcp):
                raise DeviceAuthError(
                    f"{where} did not accept our key within {timeout:g} s: unlock the phone and "
                    f"allow USB debugging for the key {key}.pub", device=self.name) from exc
            raise DeviceConnectionError(f"cannot connect to {where}: timeout",
                                        device=self.name) from exc
        except (OSError, exc_mod.UsbReadFailedError, exc_mod.UsbWriteFailedError,
                exc_mod.InvalidResponseError, exc_mod.InvalidCommandError) as exc:
            adb.close()
            hint = ""
            if "busy" in str(exc).lower() or "access" in str(exc).lower():
                hint = " (is an adb server holding it? run `adb kill-server`)"
            raise DeviceConnectionError(f"cannot connect to {where}: {exc}{hint}",
                                        device=self.name) from exc
        self._adb = adb
        self._raw(f"mkdir -p {quote(self.workdir)}", timeout)

    def _disconnect(self) -> None:
        adb, self._adb = self._adb, None
        if adb is not None:
            with contextlib.suppress(Exception):
                adb.close()

    # ------------------------------------------------------------------ commands
    def _raw(self, command: str, timeout: float | None) -> bytes:
        adb_shell = _adb_shell()
        exc_mod = adb_shell.exceptions
        if self._adb is None:
            raise DeviceConnectionError("not connected", device=self.name)
        limit = 10.0 * 24 * 3600 if timeout is None else timeout
        try:
            return self._adb.shell(command, timeout_s=limit, read_timeout_s=limit,
                                   transport_timeout_s=limit + 5, decode=False)
        except exc_mod.AdbTimeoutError as exc:
            self._mark_broken()
            raise DeviceTimeoutError(f"no result after {timeout:g} s", device=self.name,
                                     command=command[:200], timeout=timeout) from exc
        except exc_mod.TcpTimeoutException as exc:
            self._mark_broken()
            if timeout is not None:
                raise DeviceTimeoutError(f"no result after {timeout:g} s", device=self.name,
                                         command=command[:200], timeout=timeout) from exc
            raise DeviceConnectionError(f"link lost: {exc}", device=self.name,
                                        command=command[:200]) from exc
        except (OSError, exc_mod.UsbReadFailedError, exc_mod.UsbWriteFailedError,
                exc_mod.InvalidResponseError, exc_mod.InvalidCommandError,
                exc_mod.AdbConnectionError, exc_mod.InvalidChecksumError) as exc:
            self._mark_broken()
            raise DeviceConnectionError(f"link lost: {type(exc).__name__}: {exc}",
                                        device=self.name, command=command[:200]) from exc

    def _mark_broken(self) -> None:
        """After a timeout or a drop the ADB stream state is unknown: reconnect next time."""
        self._disconnect()
        self._connected = False

    def _exec(self, script: str, timeout: float | None) -> CommandResult:
        started = time.monotonic()
        mark = f"@@edgesdk-rc-{secrets.token_hex(6)}:"
        # beside the workdir, not in it: cleanup(everything=True) removes the workdir
        errfile = posixpath.join(posixpath.dirname(self.workdir) or "/",
                                 f".edgesdk-stderr-{secrets.token_hex(6)}")
        wrapped = (f"sh -c {quote(script)} 2>{quote(errfile)}; rc=$?; "
                   f"printf '\\n%s%d\\n' {quote(mark)} \"$rc\"; "
                   f"cat {quote(errfile)} 2>/dev/null; rm -f {quote(errfile)}")
        output = self._raw(wrapped, timeout)
        at = output.rfind(b"\n" + mark.encode())
        if at < 0:
            self._mark_broken()
            raise DeviceConnectionError("the shell ended without reporting an exit code "
                                        "(link lost?)", device=self.name, command=script[:200])
        stdout = output[:at]
        rest = output[at + 1 + len(mark):]
        code_text, _, stderr = rest.partition(b"\n")
        try:
            code = int(code_text)
        except ValueError:
            code = 255
        return CommandResult(script, code, stdout.decode("utf-8", "replace"),
                             stderr.decode("utf-8", "replace"), time.monotonic() - started)

    # ------------------------------------------------------------------ files
    def _sync_errors(self, what: str, remote: str, call: Any) -> None:
        adb_shell = _adb_shell()
        exc_mod = adb_shell.exceptions
        if self._adb is None:
            raise DeviceConnectionError("not connected", device=self.name)
        command = f"{what} {remote}"
        try:
            call()
        except (exc_mod.PushFailedError, exc_mod.AdbCommandFailureException) as exc:
            raise TransferError(f"the phone refused: {exc}", device=self.name,
                                command=command) from exc
        except exc_mod.DevicePathInvalidError as exc:
            raise TransferError(f"invalid device path: {exc}", device=self.name,
                                command=command) from exc
        except (OSError, exc_mod.UsbReadFailedError, exc_mod.UsbWriteFailedError,
                exc_mod.InvalidResponseError, exc_mod.InvalidCommandError,
                exc_mod.TcpTimeoutException, exc_mod.AdbTimeoutError,
                exc_mod.AdbConnectionError, exc_mod.InvalidChecksumError, struct_error()) as exc:
            self._mark_broken()
            if isinstance(exc, OSError) and exc.errno == 28 and what == "pull":
                raise TransferError(f"no space left on this host: {exc}", device=self.name,
                                    command=command) from exc
            raise DeviceConnectionError(f"link lost during {what}: {type(exc).__name__}: {exc}",
                                        device=self.name, command=command) from exc

    def _upload(self, local: Path, remote: str, progress: Progress | None) -> None:
        callback = _Counter(progress) if progress else None
        self._sync_errors("push", remote, lambda: self._adb.push(
            str(local), remote, st_mode=0o100644, mtime=int(time.time()),
            progress_callback=callback, transport_timeout_s=self.config.connect_timeout + 50,
            read_timeout_s=self.config.connect_timeout + 50))

    def _download(self, remote: str, local: Path, progress: Progress | None) -> None:
        callback = _Counter(progress) if progress else None
        self._sync_errors("pull", remote, lambda: self._adb.pull(
            remote, str(local), progress_callback=callback,
            transport_timeout_s=self.config.connect_timeout + 50,
            read_timeout_s=self.config.connect_timeout + 50))


class _Counter:
    """adb-shell reports each chunk's size; Device progress wants the running total."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.done = 0

    def __call__(self, _path: object, chunk: int, total: int) -> None:
        self.done += chunk
        self.progress(min(self.done, total), total)


def _tcp_transport(host: str, port: int) -> Any:
    """adb-shell's TCP transport, except that a closed socket is an error at once.

    adb-shell's own treats recv() == b"" as "no data yet" and spins until its read timeout, so a
    phone that went away would look like a command that never ends.
    """
    from adb_shell.transport.tcp_transport import TcpTransport

    class _Transport(TcpTransport):  # type: ignore[misc]
        def bulk_read(self, numbytes: int, transport_timeout_s: float | None) -> bytes:
            data = super().bulk_read(numbytes, transport_timeout_s)
            if not data and numbytes:
                raise ConnectionResetError(f"{host}:{port} closed the connection")
            return bytes(data)

    return _Transport(host, port)


def struct_error() -> type[Exception]:
    import struct

    return struct.error


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), 2):
            return True
    except OSError:
        return False
