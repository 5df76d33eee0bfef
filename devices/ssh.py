"""`SshDevice`: a board over SSH, through asyncssh (the `[devices]` extra).

* Keys: the config's `identity_file`, else the SSH agent and ~/.ssh/id_* (asyncssh's defaults).
* `~/.ssh/config` (or the config's `ssh_config`) is read: Host aliases, HostName, Port, User,
  IdentityFile, ProxyJump all apply. A jump host can also be given as `jump = "user@host:port"`.
* Host keys are checked against known_hosts. An unknown key is refused unless the user asked
  to accept it (`accept_new_host_key`); it is then recorded. A key that differs from the recorded
  one is always refused.
* Files go over SFTP; boards without an SFTP server get `cat > file` over an exec channel.
* `UserKnownHostsFile none` in the ssh config turns host-key checking off in asyncssh, and a
  known_hosts of /dev/null records nothing: either is warned about (HostKeyWarning, naming the
  device).
* The default workdir is `${TMPDIR:-/tmp}/edgesdk-<uid>` of the board's user, private (0700)
  and checked before every command (see `sdk.devices.base`).

asyncssh is asynchronous; `SshDevice` is not: it drives one shared event loop in a daemon thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import warnings
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from sdk.devices.base import CommandResult, Device, Progress
from sdk.devices.config import DeviceConfig, split_user_host_port
from sdk.devices.errors import (
    DeviceAuthError,
    DeviceConnectionError,
    DeviceError,
    DeviceStorageError,
    DeviceTimeoutError,
    HostKeyWarning,
    TransferError,
)

T = TypeVar("T")


def _asyncssh() -> Any:
    try:
        import asyncssh
    except ImportError as exc:  # pragma: no cover - only without the extra
        raise DeviceError("SSH devices need asyncssh: pip install 'edgesdk[devices]'") from exc
    return asyncssh


class _LoopThread:
    """One asyncio loop in a daemon thread, shared by every SshDevice of the process."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def run(cls, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        with cls._lock:
            if cls._loop is None or cls._loop.is_closed():
                loop = asyncio.new_event_loop()
                loop.set_exception_handler(_quiet_link_errors)
                threading.Thread(target=loop.run_forever, name="edgesdk-ssh", daemon=True).start()
                cls._loop = loop
            loop = cls._loop
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        return future.result(timeout)


class SshDevice(Device):
    """A Linux board reached over SSH."""

    transport = "ssh"

    def __init__(self, config: DeviceConfig):
        if config.transport != "ssh":
            raise ValueError(f"not an ssh device: {config.device_string}")
        super().__init__(config)
        self._conn: Any = None
        self._jump: Any = None
        self._sftp: Any = None
        self._sftp_missing = False

    def default_workdir(self) -> str:
        # per user: a shared /tmp/edgesdk lets whoever made it first swap what we run
        return "{tmp}/edgesdk-{uid}"

    # ------------------------------------------------------------------ connection
    def _ssh_config_paths(self) -> list[str] | tuple[()]:
        if self.config.ssh_config:
            return [os.path.expanduser(self.config.ssh_config)]
        return ()  # asyncssh's default: ~/.ssh/config when it exists

    def _options(self) -> dict[str, Any]:
        user, host, port = self.config.ssh_target()
        options: dict[str, Any] = {"host": host, "config": self._ssh_config_paths(),
                                   "connect_timeout": self.config.connect_timeout,
                                   "keepalive_interval": 15, "keepalive_count_max": 3}
        if port is not None:
            options["port"] = port
        if user:
            options["username"] = user
        if self.config.identity_file:
            options["client_keys"] = [os.path.expanduser(self.config.identity_file)]
        if self.config.known_hosts:
            path = os.path.expanduser(self.config.known_hosts)
            # a known_hosts file that does not exist yet trusts nobody
            options["known_hosts"] = path if os.path.exists(path) else b""
        return options

    def _connect(self) -> None:
        _LoopThread.run(self._aconnect())
        self._sftp = None

    async def _aconnect(self) -> None:
        asyncssh = _asyncssh()
        options = self._options()
        where = f"{options['host']}:{options.get('port', 22)}"
        try:
            if self.config.jump:
                self._jump = await self._connect_jump(options)
                options["tunnel"] = self._jump
            await self._warn_unchecked_host_keys(options)
            try:
                self._conn = await asyncssh.connect(**options)
            except asyncssh.HostKeyNotVerifiable as exc:
                if not self.config.accept_new_host_key:
                    raise DeviceAuthError(
                        f"host key of {where} is not trusted: {exc.reason}. Check it and "
                        "connect once with accept_new_host_key = true (CLI: "
                        "--accept-new-host-key) to record it", device=self.name) from exc
                await self._accept_new_host_key(options)
                self._conn = await asyncssh.connect(**options)
        except DeviceError:
            await self._aclose()
            raise
        except asyncssh.PermissionDenied as exc:
            await self._aclose()
            raise DeviceAuthError(f"{where} refused our keys ({exc.reason}); give an "
                                  "identity_file or load the key into the agent",
                                  device=self.name) from exc
        except asyncssh.HostKeyNotVerifiable as exc:
            await self._aclose()
            raise DeviceAuthError(f"host key of {where} does not verify: {exc.reason}",
                                  device=self.name) from exc
        except (OSError, asyncio.TimeoutError, asyncssh.Error) as exc:
            await self._aclose()
            raise DeviceConnectionError(f"cannot connect to {where}: {_reason(exc)}",
                                        device=self.name) from exc

    async def _warn_unchecked_host_keys(self, options: dict[str, Any]) -> None:
        """Warn when the settings in force do not check the host key: `UserKnownHostsFile
        none` in the ssh config (asyncssh then accepts any key) or a known_hosts of /dev/null
        (nothing recorded: every key is unknown, a change is never noticed)."""
        if self.config.known_hosts:
            files: Any = [os.path.expanduser(self.config.known_hosts)]
        else:
            asyncssh = _asyncssh()
            resolved = await asyncssh.SSHClientConnectionOptions.construct(
                **{k: v for k, v in options.items() if k not in ("tunnel", "client_keys")},
                client_keys=None)
            files = resolved.known_hosts
        if files is None:
            warnings.warn(f"device {self.name!r}: the ssh config sets UserKnownHostsFile none, "
                          "so the host key of the board is NOT checked (any machine that "
                          "answers at its address is trusted); name a known_hosts file in the "
                          "device config to check it", HostKeyWarning, stacklevel=2)
        elif isinstance(files, list | tuple) and files and all(
                isinstance(f, str) and os.path.realpath(os.path.expanduser(f)) == os.devnull
                for f in files):
            warnings.warn(f"device {self.name!r}: known_hosts is {os.devnull}, so no host key "
                          "is recorded: every key is unknown and a changed one goes "
                          "unnoticed; name a real known_hosts file", HostKeyWarning,
                          stacklevel=2)

    async def _connect_jump(self, options: dict[str, Any]) -> Any:
        asyncssh = _asyncssh()
        user, host, port = split_user_host_port(self.config.jump or "", device=self.name)
        jump = {k: v for k, v in options.items() if k in ("config", "connect_timeout",
                                                           "client_keys", "known_hosts")}
        jump["host"] = host
        if port is not None:
            jump["port"] = port
        if user:
            jump["username"] = user
        try:
            return await asyncssh.connect(**jump)
        except asyncssh.HostKeyNotVerifiable as exc:
            raise DeviceAuthError(f"host key of jump host {self.config.jump} is not trusted: "
                                  f"{exc.reason}", device=self.name) from exc
        except asyncssh.PermissionDenied as exc:
            raise DeviceAuthError(f"jump host {self.config.jump} refused our keys",
                                  device=self.name) from exc
        except (OSError, asyncio.TimeoutError, asyncssh.Error) as exc:
            raise DeviceConnectionError(f"cannot connect to jump host {self.config.jump}: "
                                        f"{_reason(exc)}", device=self.name) from exc

    async def _accept_new_host_key(self, options: dict[str, Any]) -> None:
        """Record the server's key in known_hosts, unless a different key is recorded there."""
        asyncssh = _asyncssh()
        resolved = await asyncssh.SSHClientConnectionOptions.construct(
            **{k: v for k, v in options.items() if k != "tunnel"})
        host, port = resolved.host, resolved.port
        alias = resolved.host_key_alias or host
        files = resolved.known_hosts
        path = Path(os.path.expanduser(
            self.config.known_hosts or (files[0] if isinstance(files, list) and files
                                        and isinstance(files[0], str)
                                        else "~/.ssh/known_hosts")))
        key = await asyncssh.get_server_host_key(
            host, port, tunnel=options.get("tunnel", ()), config=options["config"])
        if key is None:
            raise DeviceAuthError(f"{host}:{port} presented no host key", device=self.name)
        if path.exists():
            known = asyncssh.read_known_hosts(str(path)).match(alias, host, port)[0]
            if known and all(k.public_data != key.public_data for k in known):
                raise DeviceAuthError(
                    f"host key of {host}:{port} CHANGED: {path} records a different key. "
                    "This may be an attack; remove the old entry only if you know why it "
                    "changed", device=self.name)
        pattern = alias if port == 22 else f"[{alias}]:{port}"
        line = f"{pattern} {key.export_public_key('openssh').decode().strip()}\n"
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as handle:
            handle.write(line)
        options["known_hosts"] = str(path)

    def _disconnect(self) -> None:
        with contextlib.suppress(Exception):
            _LoopThread.run(self._aclose(), timeout=10)

    async def _aclose(self) -> None:
        for name in ("_sftp", "_conn", "_jump"):
            obj = getattr(self, name)
            setattr(self, name, None)
            if obj is None:
                continue
            try:
                obj.exit() if name == "_sftp" else obj.close()
                if name != "_sftp":
                    await asyncio.wait_for(obj.wait_closed(), 5)
            except Exception:
                pass

    def _require(self) -> Any:
        if self._conn is None:
            raise DeviceConnectionError("not connected", device=self.name)
        return self._conn

    # ------------------------------------------------------------------ commands
    def _exec(self, script: str, timeout: float | None) -> CommandResult:
        started = time.monotonic()
        conn = self._require()

        async def go() -> Any:
            asyncssh = _asyncssh()
            try:
                return await conn.run(script, check=False, timeout=timeout, encoding="utf-8",
                                      errors="replace", stdin=asyncssh.DEVNULL)
            except asyncssh.TimeoutError as exc:
                raise DeviceTimeoutError(f"no result after {timeout:g} s", device=self.name,
                                         command=script[:200], timeout=timeout) from exc
            except (OSError, asyncssh.Error) as exc:
                raise DeviceConnectionError(f"link lost: {_reason(exc)}", device=self.name,
                                            command=script[:200]) from exc

        proc = _LoopThread.run(go())
        code = proc.exit_status
        if code is None or code < 0:
            if not proc.exit_signal:
                raise DeviceConnectionError("link lost: the command ended without an exit "
                                            "status", device=self.name, command=script[:200])
            code = 128 + _signal_number(proc.exit_signal[0])
        return CommandResult(script, code, proc.stdout or "", proc.stderr or "",
                             time.monotonic() - started)

    # ------------------------------------------------------------------ files
    async def _sftp_client(self) -> Any:
        if self._sftp is None and not self._sftp_missing:
            asyncssh = _asyncssh()
            try:
                self._sftp = await self._require().start_sftp_client()
            except asyncssh.ChannelOpenError:
                self._sftp_missing = True
        return self._sftp

    def _upload(self, local: Path, remote: str, progress: Progress | None) -> None:
        self._transfer("push", local, remote, progress)

    def _download(self, remote: str, local: Path, progress: Progress | None) -> None:
        self._transfer("pull", local, remote, progress)

    def _transfer(self, kind: str, local: Path, remote: str, progress: Progress | None) -> None:
        command = f"{kind} {remote}"

        def handler(_src: bytes, _dst: bytes, done: int, total: int) -> None:
            if progress:
                progress(done, total)

        async def go() -> None:
            asyncssh = _asyncssh()
            try:
                sftp = await self._sftp_client()
                if sftp is None:
                    await self._cat_transfer(kind, local, remote, progress)
                elif kind == "push":
                    await sftp.put(str(local), remote, progress_handler=handler)
                else:
                    await sftp.get(remote, str(local), progress_handler=handler)
            except asyncssh.SFTPNoSpaceOnFilesystem as exc:
                raise DeviceStorageError(f"no space left on device: {exc.reason}",
                                         device=self.name, command=command) from exc
            except asyncssh.SFTPError as exc:
                raise TransferError(f"SFTP error: {exc.reason}", device=self.name,
                                    command=command) from exc
            except (OSError, asyncssh.Error) as exc:
                if isinstance(exc, OSError) and exc.errno == 28:
                    raise DeviceStorageError(str(exc), device=self.name,
                                             command=command) from exc
                raise DeviceConnectionError(f"link lost during {kind}: {_reason(exc)}",
                                            device=self.name, command=command) from exc

        _LoopThread.run(go())

    async def _cat_transfer(self, kind: str, local: Path, remote: str,
                            progress: Progress | None) -> None:
        """Copy without SFTP (dropbear, busybox boards): `cat` over an exec channel."""
        from sdk.devices.base import quote

        conn = self._require()
        if kind == "push":
            data = local.read_bytes()
            proc = await conn.run(f"cat > {quote(remote)}", input=data, encoding=None,
                                  check=False)
            if proc.exit_status != 0:
                raise TransferError(f"cat > {remote} failed: "
                                    f"{(proc.stderr or b'').decode(errors='replace')}",
                                    device=self.name, command=f"push {remote}")
        else:
            proc = await conn.run(f"cat {quote(remote)}", encoding=None, check=False)
            if proc.exit_status != 0:
                raise TransferError(f"cat {remote} failed", device=self.name,
                                    command=f"pull {remote}")
            local.write_bytes(proc.stdout)
            data = proc.stdout
        if progress:
            progress(len(data), len(data))


def _quiet_link_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Drop asyncssh's leftover tasks that died with the link (SFTP runs requests in parallel
    tasks; when the link drops, the ones nobody awaited any more end with ConnectionLost).

    The error itself reached the caller as DeviceConnectionError. Reporting the leftovers would
    format tracebacks from inside garbage collection, which on CPython 3.11 can re-enter
    `ast.parse` and corrupt its recursion check ("AST constructor recursion depth mismatch").
    """
    exc = context.get("exception")
    if isinstance(exc, (OSError, _asyncssh().Error)):
        return
    loop.default_exception_handler(context)


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


def _signal_number(name: str | None) -> int:
    import signal

    if not name:
        return 0
    try:
        return int(signal.Signals[f"SIG{name}" if not name.startswith("SIG") else name])
    except KeyError:
        return 0
