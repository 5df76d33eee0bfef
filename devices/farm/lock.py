"""One farm run at a time per results database: an exclusive lock file beside it.

Two runs writing one database at once would each measure every job and record it twice. A run
therefore holds `flock(LOCK_EX)` on `<database>.lock` from before it reads what is done until
its last result is committed; a second run (another process, or another call in this one)
fails at once with `FarmBusyError`, naming the run that holds the lock, its pid, host and
command.

The kernel drops a `flock` when its holder dies (SIGKILL included), so a stale lock never
blocks: the next run takes it over and learns who held it (`RunLock.previous`), because a
holder that exits cleanly empties the file and one that was killed leaves its record there.
The lock file is never removed (removing it would let two processes lock two different files
of the same name). It serialises runs on one host, and across hosts only where the file
system's `flock` reaches other hosts (local disks do not; NFSv4 does).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sdk.base.errors import EdgeSDKError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) a database's run lock."""

    pid: int
    host: str
    run_id: int | None
    started: float
    command: str

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started))
        run = f"run {self.run_id}" if self.run_id is not None else "a run (starting)"
        return f"{run}, pid {self.pid} on host {self.host}, since {when}: {self.command}"

    @classmethod
    def parse(cls, text: str) -> LockHolder | None:
        try:
            data: dict[str, Any] = json.loads(text)
            return cls(pid=int(data["pid"]), host=str(data["host"]),
                       run_id=None if data.get("run_id") is None else int(data["run_id"]),
                       started=float(data["started"]), command=str(data["command"]))
        except (ValueError, KeyError, TypeError):
            return None


class FarmBusyError(EdgeSDKError):
    """Another run holds the results database: names the database and who holds it."""

    def __init__(self, database: Path, holder: LockHolder | None):
        who = holder.describe() if holder else "a process that has not said who it is yet"
        super().__init__(f"farm database {database} is in use by {who}; wait for that run to "
                         "finish or stop it (a run that was killed frees the database by "
                         "itself), or give this run another database (--db)")
        self.database = database
        self.holder = holder


class RunLock:
    """The run lock of one results database. `acquire()` raises `FarmBusyError` when held."""

    def __init__(self, database: str | os.PathLike[str]):
        self.database = Path(database)
        self.path = self.database.with_name(self.database.name + ".lock")
        self.holder: LockHolder | None = None
        #: who held the lock before and was killed holding it (None: it was free)
        self.previous: LockHolder | None = None
        self._fd: int | None = None

    def acquire(self, *, run_id: int | None = None) -> RunLock:
        if fcntl is None:  # pragma: no cover - Windows
            raise EdgeSDKError("farm runs need POSIX file locks (fcntl.flock)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise EdgeSDKError(f"cannot open the run lock {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = LockHolder.parse(_read(fd))
            os.close(fd)
            raise FarmBusyError(self.database, holder) from None
        except OSError as exc:
            os.close(fd)
            raise EdgeSDKError(f"cannot lock {self.path}: {exc.strerror}") from exc
        self._fd = fd
        self.previous = LockHolder.parse(_read(fd))
        self.holder = LockHolder(pid=os.getpid(), host=socket.gethostname(), run_id=run_id,
                                 started=time.time(), command=" ".join(sys.argv)[:500])
        self._write()
        return self

    def set_run(self, run_id: int) -> None:
        """Name the run that holds the lock (once the database gave it an id)."""
        if self.holder is not None:
            self.holder = LockHolder(**{**asdict(self.holder), "run_id": run_id})
            self._write()

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # a clean exit leaves no holder behind
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        self.holder = None

    def _write(self) -> None:
        assert self._fd is not None and self.holder is not None
        data = json.dumps(asdict(self.holder)).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        os.fsync(self._fd)

    def __enter__(self) -> RunLock:
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 65536, 0).decode("utf-8", "replace")
    except OSError:
        return ""
