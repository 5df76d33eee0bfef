"""`LocalDevice`: this machine, through the same interface as a phone or a board."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sdk.devices.base import CommandResult, Device, Progress
from sdk.devices.config import DeviceConfig
from sdk.devices.errors import DeviceStorageError, DeviceTimeoutError, TransferError


class LocalDevice(Device):
    """Runs commands with /bin/sh and copies files with the file system."""

    transport = "local"

    def __init__(self, config: DeviceConfig | None = None):
        config = config or DeviceConfig(name="local", transport="local")
        if config.runner.python is None:
            # this Python has LiteRT: it is edgesdk's own core dependency
            config = config.replace(runner=dataclasses.replace(config.runner,
                                                               python=sys.executable))
        super().__init__(config)

    def default_workdir(self) -> str:
        # made mode 0700 and checked (ours, not a link, not writable by others) before every
        # command: $TMPDIR is shared, and another user may have made this name first
        return os.path.join(tempfile.gettempdir(), f"edgesdk-local-{os.getuid()}")

    def _connect(self) -> None:
        pass  # Device.connect makes and checks the workdir

    def _disconnect(self) -> None:
        pass

    def _exec(self, script: str, timeout: float | None) -> CommandResult:
        started = time.monotonic()
        proc = subprocess.Popen(["/bin/sh", "-c", script], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise DeviceTimeoutError(f"no result after {timeout:g} s", device=self.name,
                                     command=script[:200], timeout=timeout) from None
        return CommandResult(script, proc.returncode, out.decode("utf-8", "replace"),
                             err.decode("utf-8", "replace"), time.monotonic() - started)

    def _upload(self, local: Path, remote: str, progress: Progress | None) -> None:
        self._copy(local, Path(remote), progress, f"push {remote}")

    def _download(self, remote: str, local: Path, progress: Progress | None) -> None:
        self._copy(Path(remote), local, progress, f"pull {remote}")

    def _copy(self, src: Path, dst: Path, progress: Progress | None, command: str) -> None:
        total = src.stat().st_size
        done = 0
        try:
            with open(src, "rb") as fin, open(dst, "wb") as fout:
                while block := fin.read(1 << 20):
                    fout.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
        except OSError as exc:
            kind = DeviceStorageError if exc.errno == 28 else TransferError
            raise kind(f"{exc.strerror}: {exc.filename}", device=self.name,
                       command=command) from exc
        shutil.copymode(src, dst)
