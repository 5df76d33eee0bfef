"""The `Device` interface: push, pull, shell, run and clean up, the same on every transport.

A transport (ADB, SSH, the local host) supplies five primitives: connect, disconnect, execute a
shell script, upload a file to an exact path and download one. Everything a user relies on is
built once, here, on top of them:

* `push()` sends to a temporary name beside the target, checks the SHA-256 on the device, and only
  then renames it into place; a file that is already there with the same checksum is not sent.
  A dropped link is retried (reconnecting) a bounded number of times; no partial file is ever
  left under the final name.
* `shell(*argv)` quotes every argument, so paths with spaces or `;$()'` reach the device intact.
* `run(argv, timeout=)` records the remote PID; past the timeout the remote process is killed.
* `cleanup()` removes what this session pushed.

The work directory is private: created mode 0700 and checked at the start of every command
(a directory, not a symbolic link, owned by the device user, not writable by group or others);
anything else is refused with `UnsafeWorkdirError` before a file is written or a program runs
there. A file this session pushed is checksummed on the device right before it is run (in the
same shell command that runs it), and a pid file feeds `kill` only for a process that carries
the run's own id in its environment.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import secrets
import shlex
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from sdk.base.fileio import sha256_file
from sdk.devices.config import DeviceConfig, check_env
from sdk.devices.errors import (
    DeviceAuthError,
    DeviceCommandError,
    DeviceConnectionError,
    DeviceError,
    DeviceStorageError,
    DeviceTimeoutError,
    FileChangedError,
    TransferError,
    UnsafeWorkdirError,
)
from sdk.devices.info import PROBE_SCRIPT, STATE_SCRIPT, DeviceInfo, ThermalState, parse_probe
from sdk.devices.info import parse_state as _parse_state
from sdk.devices.info import split_sections as _split_sections

#: progress(bytes_done, bytes_total)
Progress = Callable[[int, int], None]
T = TypeVar("T")

#: Files being pushed carry this in their name until verified and renamed.
TEMP_MARK = ".edgesdk-tmp-"


@dataclass(frozen=True)
class CommandResult:
    """What a command did on the device."""

    command: str
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def check(self, device: str | None = None) -> CommandResult:
        """Raise DeviceCommandError unless the exit code is 0."""
        if self.exit_code != 0:
            detail = (self.stderr.strip() or self.stdout.strip())[-2000:]
            what = "command not found" if self.exit_code == 127 else f"exit code {self.exit_code}"
            raise DeviceCommandError(what + (f": {detail}" if detail else ""), device=device,
                                     command=self.command, exit_code=self.exit_code,
                                     stdout=self.stdout, stderr=self.stderr)
        return self


def quote(arg: str | os.PathLike[str]) -> str:
    """POSIX-shell quoting (works in Android's mksh/toybox sh, dash, bash, busybox ash)."""
    return shlex.quote(os.fspath(arg))


def join_command(argv: Iterable[str | os.PathLike[str]]) -> str:
    return " ".join(quote(a) for a in argv)


class Device(ABC):
    """A phone, a board or this host. Use as a context manager, or call `close()`."""

    transport: ClassVar[str]

    def __init__(self, config: DeviceConfig):
        self.config = config
        self.name = config.name
        self._workdir = (config.workdir or self.default_workdir()).rstrip("/") or "/"
        self._workdir_settled = not any(k in self._workdir for k in _WORKDIR_KEYS)
        self._digests: dict[str, str] = {}  # device path -> SHA-256 of what we pushed there
        self._info: DeviceInfo | None = None
        self._pushed: list[str] = []        # final paths pushed this session
        self._made_dirs: list[str] = []     # run directories made this session
        self._stale: set[str] = set()       # temp files and pid files still to remove
        self._orphans: set[str] = set()     # pid files of runs whose link dropped: kill them
        self._lock = threading.RLock()
        self._connected = False
        self._connecting = False  # inside _connect(): the workdir is not filled in yet
        #: set by the board farm: runs are tagged with it (their pid file's name and the
        #: EDGESDK_RUN_TAG variable), so `kill_tagged` finds what a killed farm left running
        self.run_tag: str | None = None
        #: what runners learnt about the device in this session (e.g. which Python has
        #: LiteRT); cleared whenever the link is (re)opened, since the device may have
        #: rebooted or changed in between
        self.session_facts: dict[Hashable, Any] = {}

    @property
    def workdir(self) -> str:
        """Where our files go. `{uid}` and `{tmp}` in it (the device user's uid and its
        ${TMPDIR:-/tmp}) are filled in from the device: asking before that connects."""
        if not self._workdir_settled and not self._connecting:
            self.connect()
        return self._workdir

    # ------------------------------------------------------------------ transport primitives
    @abstractmethod
    def default_workdir(self) -> str:
        """Where our files go when the config names no workdir."""

    @abstractmethod
    def _connect(self) -> None:
        """Open the link; raise DeviceConnectionError / DeviceAuthError."""

    @abstractmethod
    def _disconnect(self) -> None:
        """Close the link (never raises)."""

    @abstractmethod
    def _exec(self, script: str, timeout: float | None) -> CommandResult:
        """Run a POSIX shell script. Raise DeviceTimeoutError past `timeout` and
        DeviceConnectionError when the link drops."""

    @abstractmethod
    def _upload(self, local: Path, remote: str, progress: Progress | None) -> None:
        """Copy a local file to exactly `remote` (its directory exists)."""

    @abstractmethod
    def _download(self, remote: str, local: Path, progress: Progress | None) -> None:
        """Copy `remote` to the local path `local`."""

    # ------------------------------------------------------------------ life cycle
    def connect(self) -> Device:
        with self._lock:
            if not self._connected:
                self.session_facts.clear()
                self._connecting = True
                try:
                    self._connect()
                finally:
                    self._connecting = False
                self._connected = True
                try:
                    if not self._workdir_settled:
                        self._settle_workdir()
                    self._check_workdir_result(
                        self._exec(_workdir_guard(self._workdir) + "; echo ok", 60.0))
                except BaseException:
                    self.close()
                    raise
        return self

    def _settle_workdir(self) -> None:
        """Fill `{uid}` / `{tmp}` in the workdir from the device (one round trip)."""
        result = self._exec("printf 'uid:%s\\n' \"$(id -u)\"; "
                            "printf 'tmp:%s\\n' \"${TMPDIR:-/tmp}\"", 60.0)
        lines = result.stdout.split("\n")
        uid = lines[0][4:] if lines and lines[0].startswith("uid:") else ""
        tmp = lines[1][4:] if len(lines) > 2 and lines[1].startswith("tmp:") else ""
        if not uid.isdigit() or not tmp.startswith("/") or len(lines) != 3 or lines[2]:
            raise DeviceCommandError(
                f"cannot tell the device user's uid and temporary directory for the workdir "
                f"{self._workdir} (id -u / $TMPDIR gave {result.stdout[-200:]!r})",
                device=self.name, command="id -u")
        self._workdir = (self._workdir.replace("{uid}", uid)
                        .replace("{tmp}", tmp.rstrip("/") or "/")).rstrip("/") or "/"
        self._workdir_settled = True

    def _check_workdir_result(self, result: CommandResult) -> CommandResult:
        """Raise UnsafeWorkdirError when a script stopped at the workdir guard."""
        if result.exit_code != _UNSAFE_EXIT:
            return result
        found = [line for line in result.stderr.splitlines() if line.startswith(_UNSAFE_MARK)]
        if not found:
            return result
        why, owner, mode, me = (found[-1][len(_UNSAFE_MARK):].split(":") + ["?"] * 4)[:4]
        reason = {"symlink": "is a symbolic link", "missing": "is not a directory (or cannot "
                  "be created)", "owner": f"is owned by uid {owner}, not by the device user "
                  f"(uid {me})", "writable": "is writable by group or others"}.get(why, why)
        raise UnsafeWorkdirError(
            f"refusing the work directory {self._workdir}: it {reason} (owner uid {owner}, "
            f"mode {mode}). Whoever controls it could swap what we run. Remove it, or make it "
            "a directory of the device user with mode 0700, or set another workdir",
            device=self.name, command=result.command[:200], path=self._workdir, owner=owner,
            mode=mode)

    def close(self) -> None:
        with self._lock:
            if self._connected:
                self._disconnect()
                self._connected = False

    def __enter__(self) -> Device:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def _reconnect(self) -> None:
        with self._lock:
            self._disconnect()
            self._connected = False
            self.session_facts.clear()
            self._connect()
            self._connected = True

    def _with_retries(self, what: str, operation: Callable[[], T], *,
                      retries: int | None = None, on_retry: Callable[[], None] | None = None) -> T:
        """Run `operation`; on a dropped link reconnect and try again, `retries` times at most."""
        retries = self.config.retries if retries is None else retries
        last: DeviceConnectionError | None = None
        for attempt in range(retries + 1):
            try:
                if attempt:
                    time.sleep(min(0.25 * 2 ** (attempt - 1), 2.0))
                    self._reconnect()
                    if on_retry is not None:
                        on_retry()
                else:
                    self.connect()
                return operation()
            except DeviceAuthError:
                raise
            except DeviceConnectionError as exc:
                last = exc
                with self._lock:  # the next use reconnects
                    self._disconnect()
                    self._connected = False
        assert last is not None
        raise DeviceConnectionError(
            f"{what} failed after {retries + 1} attempt(s); last error: {_bare(last)}",
            device=self.name) from last

    # ------------------------------------------------------------------ commands
    def script(self, script: str, *, timeout: float | None = None, check: bool = True,
               retries: int = 0) -> CommandResult:
        """Run a shell script as written (no quoting: build it with `quote()`)."""
        def once() -> CommandResult:
            return self._exec_tidy(script, timeout)

        result = self._with_retries(f"command {script[:80]!r}", once, retries=retries)
        result = CommandResult(script, result.exit_code, result.stdout, result.stderr,
                               result.duration_s)
        return result.check(self.name) if check else result

    def shell(self, *argv: str | os.PathLike[str], timeout: float | None = None,
              check: bool = True, retries: int = 0) -> CommandResult:
        """Run one command; every argument is quoted, so nothing in it is interpreted."""
        if not argv:
            raise ValueError("shell() needs a command")
        return self.script(join_command(argv), timeout=timeout, check=check, retries=retries)

    def run(self, argv: Sequence[str | os.PathLike[str]], *, timeout: float | None = None,
            cwd: str | None = None, env: Mapping[str, str] | None = None, native: bool = False,
            cpus: str | None = None, check: bool = True, retries: int = 0,
            verify: Iterable[str] = ()) -> CommandResult:
        """Run a program with a time limit; past it the remote process is killed.

        `native=True` marks a binary built for the device's ABI: the config's `exec_prefix`
        (e.g. qemu on an emulated board) goes in front. `cpus` pins it (taskset). A dropped link
        kills the remote process once the device is back, and is retried `retries` times.

        `argv[0]` and the files in `verify` (scripts, libraries the program loads), when this
        session pushed them, are checksummed on the device in the same shell command, right
        before the program starts: a file that changed is not run (FileChangedError).
        """
        if env:
            check_env(env, device=self.name, field="run env")
        timeout = self.config.timeout if timeout is None else timeout
        token = secrets.token_hex(6)
        tag = _run_tag(self.run_tag) if self.run_tag else None
        pidfile = posixpath.join(self.workdir, f".run-{tag}-{token}.pid" if tag
                                 else f".run-{token}.pid")
        prefix: list[str] = []
        merged_env = {**self.config.env, **(env or {}), **({RUN_TAG_ENV: tag} if tag else {})}
        if merged_env:
            prefix += ["env", *(f"{k}={v}" for k, v in merged_env.items())]
        if cpus:
            prefix += ["taskset", "-c", cpus]
        if native:
            prefix += list(self.config.exec_prefix)
        command = join_command([*prefix, *argv])
        # the workdir guard (in front of every script) made and checked the workdir
        enter = f"cd {quote(cwd or self.workdir)}"
        checked = [p for p in dict.fromkeys([os.fspath(argv[0]), *verify]) if p in self._digests]
        checks = "".join(
            f" && {{ [ \"$( {_sha256_cmd(path)} )\" = {self._digests[path]} ] || "
            f"{{ echo {_CHANGED_MARK}{i} >&2; exit {_CHANGED_EXIT}; }}; }}"
            for i, path in enumerate(checked))
        # the pid is written by a shell that already has the run id in its environment (it
        # was exec'd with it), so a kill at any moment after finds the id at /proc/<pid>
        script = (f"{enter}{checks} && {RUN_ID_ENV}={token} && export {RUN_ID_ENV} && "
                  f"exec sh -c 'echo $$ > \"$0\" && exec \"$@\"' {quote(pidfile)} {command}")
        started = time.monotonic()

        def once() -> CommandResult:
            try:
                return self._exec_tidy(script, timeout)
            except DeviceTimeoutError:
                self._kill(pidfile)
                raise DeviceTimeoutError(
                    f"no result after {timeout:g} s; the process was killed", device=self.name,
                    command=command, timeout=timeout) from None
            except DeviceConnectionError:
                # the process may live on: the next script on this device kills it first
                self._orphans.add(pidfile)
                raise

        result = self._with_retries(f"run {command[:120]!r}", once, retries=retries)
        self._stale.add(pidfile)
        if result.exit_code == _CHANGED_EXIT:
            for line in result.stderr.splitlines():
                index = line[len(_CHANGED_MARK):] if line.startswith(_CHANGED_MARK) else ""
                if index.isdigit() and int(index) < len(checked):
                    path = checked[int(index)]
                    raise FileChangedError(
                        f"{path} changed on the device since it was pushed (its SHA-256 is "
                        f"no longer {self._digests[path][:16]}...): not run",
                        device=self.name, command=command[:200], path=path)
        result = CommandResult(command, result.exit_code, result.stdout, result.stderr,
                               time.monotonic() - started)
        return result.check(self.name) if check else result

    def kill_tagged(self, tag: str) -> int:
        """Kill the runs started under `run_tag == tag` that are still running (left by a
        process that was killed, or whose link dropped) and remove their pid files; returns
        how many were killed. A pid is killed only when its process carries
        EDGESDK_RUN_TAG=tag in its environment (/proc; a reused pid is left alone)."""
        tag = _run_tag(tag)
        files = quote(posixpath.join(self.workdir, f".run-{tag}-")) + "*.pid"
        mark = quote(f"{RUN_TAG_ENV}={tag}")
        script = (
            f"n=0; for f in {files}; do if [ -f \"$f\" ] && [ ! -L \"$f\" ]; then "
            "p=$(cat \"$f\" 2>/dev/null); case \"$p\" in ''|*[!0-9]*) ;; *) "
            f"if tr '\\000' '\\n' < /proc/$p/environ 2>/dev/null | grep -qx {mark}; then "
            "kill -9 -- -$p 2>/dev/null || kill -9 $p 2>/dev/null; n=$((n+1)); fi;; esac; fi; "
            "rm -f \"$f\"; done; echo killed:$n")
        result = self.script(script, check=False, retries=self.config.retries)
        found = [x for x in result.stdout.split() if x.startswith("killed:")]
        return int(found[-1][7:]) if found and found[-1][7:].isdigit() else 0

    def _kill(self, pidfile: str) -> None:
        """Kill the process (group) whose PID is in `pidfile` on the device; best effort."""
        script = (f"{_workdir_guard(self.workdir)}; {_kill_script(pidfile)}; "
                  f"rm -f {quote(pidfile)}")
        try:
            self._with_retries("kill", lambda: self._exec(script, 30.0))
        except DeviceError:
            self._stale.add(pidfile)

    def _exec_tidy(self, script: str, timeout: float | None) -> CommandResult:
        """`_exec`, prefixed with killing orphaned runs and removing stale temp files; those
        lists are cleared only once a command got through."""
        stale, orphans = set(self._stale), set(self._orphans)
        head = [_kill_script(pidfile) for pidfile in sorted(orphans)]
        if stale or orphans:
            head.append(f"rm -f {join_command(sorted(stale | orphans))} 2>/dev/null")
        guard = _workdir_guard(self.workdir)
        result = self._check_workdir_result(self._exec("; ".join([guard, *head, script]),
                                                       timeout))
        self._stale -= stale
        self._orphans -= orphans
        return result

    # ------------------------------------------------------------------ files
    def remote_sha256(self, remote: str, *, retries: int | None = None) -> str | None:
        """SHA-256 of a device file, or None when it does not exist."""
        result = self.script(
            f"if [ -f {quote(remote)} ]; then {_sha256_cmd(remote)}; else echo missing; fi",
            check=False, retries=self.config.retries if retries is None else retries)
        text = result.stdout.strip().splitlines()
        value = text[-1].strip() if text else ""
        if value == "missing":
            return None
        if len(value) != 64 or result.exit_code != 0:
            raise DeviceCommandError(
                "cannot compute SHA-256 on the device (no sha256sum?): "
                f"{(result.stderr or result.stdout).strip()[-300:]}",
                device=self.name, command=f"sha256sum {remote}")
        return value

    def exists(self, remote: str) -> bool:
        return self.script(f"[ -e {quote(remote)} ]", check=False).exit_code == 0

    def listdir(self, remote: str) -> list[str]:
        result = self.script(f"ls -1a {quote(remote)}", check=True)
        return [x for x in result.stdout.splitlines() if x not in (".", "..", "")]

    def mkdir(self, remote: str) -> None:
        self.script(f"mkdir -p {quote(remote)}", retries=self.config.retries)

    def remove(self, *remote: str) -> None:
        if remote:
            self.script(f"rm -rf {join_command(remote)}", retries=self.config.retries)
            for path in list(self._digests):
                if any(path == r or path.startswith(r.rstrip("/") + "/") for r in remote):
                    del self._digests[path]

    def free_bytes(self, remote_dir: str) -> int | None:
        """Free space where `remote_dir` lives (df), or None when df cannot tell."""
        result = self.script(f"df -Pk {quote(remote_dir)} 2>/dev/null | tail -n 1", check=False)
        return _df_free(result.stdout.strip())

    def remote_path(self, name: str) -> str:
        """`name` inside this device's workdir (absolute names are returned as they are)."""
        return name if name.startswith("/") else posixpath.join(self.workdir, name)

    def push(self, local: str | os.PathLike[str], remote: str | None = None, *,
             mode: int = 0o644, progress: Progress | None = None, force: bool = False) -> str:
        """Copy a file to the device; returns its device path (default: workdir/basename).

        Sent to a temporary name, checksum-verified, then renamed; skipped when the device
        already holds the same bytes (unless `force`).
        """
        local = Path(local)
        if not local.is_file():
            raise TransferError(f"no such local file: {local}", device=self.name,
                                command="push")
        remote = self.remote_path(remote or local.name)
        if remote.endswith("/"):
            remote = posixpath.join(remote, local.name)
        size = local.stat().st_size
        digest = sha256_file(local)
        directory = posixpath.dirname(remote) or "/"
        self.connect()
        self._remember(remote)
        # one round trip: make the directory, checksum what is there (and fix its mode when it
        # is already ours), report free space
        qd, qf = quote(directory), quote(remote)
        survey = self.script(
            f"mkdir -p {qd} 2>/dev/null; "
            f"if [ -d {qd} ] && [ -w {qd} ]; then echo dir:ok; else echo dir:fail; fi; "
            f"if [ -f {qf} ]; then s=$( {_sha256_cmd(remote)} ); else s=missing; fi; "
            f"echo sha:$s; "
            + ("" if force else f"if [ \"$s\" = {digest} ]; then chmod {mode:o} {qf}; fi; ")
            + f"echo df:$(df -Pk {qd} 2>/dev/null | tail -n 1)",
            check=False, retries=self.config.retries)
        fields = dict(line.split(":", 1) for line in survey.stdout.splitlines() if ":" in line)
        if fields.get("dir") != "ok":
            detail = survey.stderr.strip()[-300:]
            raise TransferError(f"cannot write to {directory} on the device (read-only or no "
                                f"permission){': ' + detail if detail else ''}",
                                device=self.name, command=f"push {remote}")
        if not force and fields.get("sha", "").strip() == digest:
            self._digests[remote] = digest
            if progress:
                progress(size, size)
            return remote
        free = _df_free(fields.get("df", ""))
        if free is not None and free < size:
            raise DeviceStorageError(
                f"no room for {local.name} ({size} bytes) in {directory}: {free} bytes free",
                device=self.name, command=f"push {local} {remote}")

        def attempt() -> None:
            # a fresh name each attempt: a failed attempt's temp file is removed by the next
            # command (the stale list), which must not catch this attempt's file
            temp = posixpath.join(directory, f".{posixpath.basename(remote)}{TEMP_MARK}"
                                             f"{secrets.token_hex(4)}")
            qt = quote(temp)
            try:
                try:
                    self._upload(local, temp, progress)
                except TransferError as exc:
                    self._diagnose_transfer(exc, directory, size)
                    raise
                # verify and rename in one round trip
                done = self.script(
                    f"s=$( {_sha256_cmd(temp)} ); if [ \"$s\" = {digest} ]; then "
                    f"chmod {mode:o} {qt} && mv -f {qt} {qf} && echo renamed; "
                    f"else echo \"mismatch:$s\"; fi", check=False)
                if "renamed" not in done.stdout:
                    got = done.stdout.strip().partition("mismatch:")[2][:16] or "?"
                    raise TransferError(f"checksum mismatch after upload of {local} (sent "
                                        f"{digest[:16]}, device has {got}) "
                                        f"{done.stderr.strip()[-200:]}", device=self.name,
                                        command=f"push {remote}")
            except BaseException:
                self._stale.add(temp)
                raise

        self._digests.pop(remote, None)
        try:
            self._with_retries(f"push {local.name} -> {remote}", attempt)
        except DeviceError:
            self._cleanup_stale_quietly()
            raise
        self._digests[remote] = digest
        return remote

    def _diagnose_transfer(self, exc: TransferError, directory: str, size: int) -> None:
        text = str(exc).lower()
        if isinstance(exc, DeviceStorageError):
            return
        if "no space" in text or "enospc" in text or "disk full" in text or "quota" in text:
            raise DeviceStorageError(f"device storage full in {directory}: {_bare(exc)}",
                                     device=self.name, command=exc.command) from exc
        try:
            free = self.free_bytes(directory)
        except DeviceError:
            return
        if free is not None and free < size:
            raise DeviceStorageError(
                f"device storage full in {directory} ({free} bytes free, {size} needed): "
                f"{_bare(exc)}", device=self.name, command=exc.command) from exc

    def _cleanup_stale_quietly(self) -> None:
        if not self._stale:
            return
        with contextlib.suppress(DeviceError):
            self.script("true", retries=0)  # carries the stale rm

    def pull(self, remote: str, local: str | os.PathLike[str], *,
             progress: Progress | None = None) -> Path:
        """Copy a device file here; written to a temp name, verified, then renamed."""
        remote = self.remote_path(remote)
        local = Path(local)
        if local.is_dir():
            local = local / posixpath.basename(remote)
        local.parent.mkdir(parents=True, exist_ok=True)
        digest = self.remote_sha256(remote)
        if digest is None:
            raise TransferError(f"no such file on the device: {remote}", device=self.name,
                                command=f"pull {remote}")
        temp = local.with_name(f".{local.name}{TEMP_MARK}{secrets.token_hex(4)}")

        def attempt() -> None:
            try:
                self._download(remote, temp, progress)
                if sha256_file(temp) != digest:
                    raise TransferError(f"checksum mismatch after download of {remote}",
                                        device=self.name, command=f"pull {remote}")
            except BaseException:
                temp.unlink(missing_ok=True)
                raise

        self._with_retries(f"pull {remote}", attempt)
        os.replace(temp, local)
        return local

    def _remember(self, remote: str) -> None:
        if remote not in self._pushed:
            self._pushed.append(remote)

    def make_run_dir(self) -> str:
        """A fresh directory for one run's inputs and outputs (removed by cleanup())."""
        path = posixpath.join(self.workdir, f"run-{time.strftime('%Y%m%d-%H%M%S')}-"
                                            f"{secrets.token_hex(3)}")
        self.mkdir(path)
        self._made_dirs.append(path)
        return path

    def remove_run_dir(self, path: str) -> None:
        """Remove a directory from `make_run_dir` now (best effort: else `cleanup()` does)."""
        try:
            self.remove(path)
        except DeviceError:
            return
        with contextlib.suppress(ValueError):
            self._made_dirs.remove(path)

    def cleanup(self, *, everything: bool = False) -> list[str]:
        """Remove what this session pushed (and its run directories); returns the paths.

        `everything=True` removes the whole workdir (only use it when the workdir is ours).
        """
        paths = [self.workdir] if everything else [*self._pushed, *self._made_dirs,
                                                   *sorted(self._stale)]
        if paths:
            self.remove(*paths)
        self._pushed.clear()
        self._made_dirs.clear()
        self._stale.clear()
        return paths

    # ------------------------------------------------------------------ information
    def info(self, *, refresh: bool = False) -> DeviceInfo:
        """ABI, CPU, cores and frequencies, memory, OS, model, governor and temperatures."""
        if self._info is None or refresh:
            result = self.script(PROBE_SCRIPT, check=False, retries=self.config.retries,
                                 timeout=60)
            self._info = parse_probe(result.stdout, name=self.name, transport=self.transport,
                                     config_abi=self.config.abi,
                                     exec_prefix=self.config.exec_prefix)
        return self._info

    def thermal_state(self) -> ThermalState:
        result = self.script(STATE_SCRIPT, check=False, timeout=30)
        return _parse_state(_split_sections(result.stdout))

    @property
    def abi(self) -> str | None:
        return self.config.abi or self.info().abi

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "transport": self.transport, "workdir": self._workdir,
                "device_string": self.config.device_string}


def _sha256_cmd(remote: str) -> str:
    """Shell that prints the SHA-256 of `remote` (coreutils/busybox, or Android's toybox).

    The file is read on stdin: given as an argument, a name with a backslash or a newline makes
    sha256sum escape its output line (`\\<hash>  name`), and a name starting with `-` is
    an option."""
    q = quote(remote)
    return f"(sha256sum < {q} || toybox sha256sum < {q}) 2>/dev/null | cut -d ' ' -f 1"


def _df_free(line: str) -> int | None:
    """Free bytes from one `df -Pk` line (None when it cannot be read)."""
    fields = line.split()
    try:
        return int(fields[3]) * 1024
    except (IndexError, ValueError):
        return None


#: placeholders a workdir may hold: the device user's uid and ${TMPDIR:-/tmp}
_WORKDIR_KEYS = ("{uid}", "{tmp}")
#: a script stopped by the workdir guard exits with this, the marker line on stderr says why
_UNSAFE_EXIT = 97
_UNSAFE_MARK = "@@edgesdk-unsafe-workdir:"
#: a run stopped because a file changed since it was pushed (marker: the file's index)
_CHANGED_EXIT = 96
_CHANGED_MARK = "@@edgesdk-file-changed:"
#: every run's process carries its own id in this variable: a pid is killed only when its
#: process has it (a pid file never makes us kill some other process)
RUN_ID_ENV = "EDGESDK_RUN_ID"


def _workdir_guard(workdir: str) -> str:
    """Shell that makes the workdir when missing (mode 0700) and stops the script (exit 97, a
    marker line on stderr) unless it is a directory, not a symbolic link, owned by the device
    user and not writable by group or others. Every script we send starts with it; when the
    directory is there and fine it costs one `ls` (test's -O checks the owner)."""
    qd = quote(workdir)
    return (
        f"_ed={qd}; [ -d \"$_ed\" ] || (umask 077; mkdir -p \"$_ed\") 2>/dev/null; _ew=; "
        "set -f; if [ -L \"$_ed\" ]; then _ew=symlink; elif [ ! -d \"$_ed\" ]; then "
        "_ew=missing; elif [ ! -O \"$_ed\" ]; then _ew=owner; else "
        "set -- $(ls -ldn \"$_ed\" 2>/dev/null); "
        "case \"$1\" in ?????w*|????????w*) _ew=writable;; esac; fi; "
        "if [ -n \"$_ew\" ]; then set -- $(ls -ldn \"$_ed\" 2>/dev/null); "
        f"echo \"{_UNSAFE_MARK}$_ew:${{3:-?}}:${{1:-?}}:$(id -u)\" >&2; exit {_UNSAFE_EXIT}; fi; "
        "set +f; set --")


def _run_id(pidfile: str) -> str:
    """The run id in a pid file's name (`.run-[TAG-]ID.pid`)."""
    return posixpath.basename(pidfile)[:-len(".pid")].rsplit("-", 1)[-1]


#: the variable that tags a run's process (see `Device.run_tag`)
RUN_TAG_ENV = "EDGESDK_RUN_TAG"


def _run_tag(tag: str) -> str:
    if not tag or len(tag) > 64 or not all(c.isascii() and c.isalnum() for c in tag):
        raise ValueError(f"a run tag is 1-64 ASCII letters and digits, got {tag!r}")
    return tag


def _kill_script(pidfile: str) -> str:
    """Shell that kills the process group (or process) whose PID `pidfile` holds: only a
    regular file (not a link) is read, only a number is taken, and only a process whose
    environment carries this run's id is killed (never a reused pid or a planted one)."""
    qp, mark = quote(pidfile), quote(f"{RUN_ID_ENV}={_run_id(pidfile)}")
    return (f"if [ -f {qp} ] && [ ! -L {qp} ]; then p=$(cat {qp} 2>/dev/null); "
            "case \"$p\" in ''|*[!0-9]*) ;; *) "
            f"if tr '\\000' '\\n' < /proc/$p/environ 2>/dev/null | grep -qx {mark}; then "
            "kill -9 -- -$p 2>/dev/null || kill -9 $p 2>/dev/null; fi;; esac; fi")


def _bare(exc: BaseException) -> str:
    """An error's message without the 'device X, command Y:' prefix we add."""
    text = str(exc)
    if isinstance(exc, DeviceError) and exc.device and text.startswith(f"device {exc.device}"):
        _, sep, rest = text.partition(": ")
        return rest if sep else text
    return text
