"""The work done next to a board: health checks and jobs, as plain blocking functions.

The one-host scheduler calls them in threads; on a multi-host farm, Dask workers call them on
the host the board hangs off. Arguments and results are plain dicts (they cross process
boundaries), and no exception escapes: an outcome says what failed and whether that was the
board (`board_fault`) and whether trying again may help (`transient`).

Open devices are pooled per board in the process, so consecutive jobs reuse a link; a device
whose link failed is closed and dropped.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from sdk.base.errors import EdgeSDKError
from sdk.devices.base import Device, sha256_file
from sdk.devices.errors import (
    DeviceAuthError,
    DeviceError,
    DeviceStorageError,
    is_transient,
)
from sdk.devices.farm.inventory import BoardConfig

#: latencies kept per result (a microsecond model timed for seconds runs 10^5 times)
KEEP_SAMPLES = 2000

_lock = threading.Lock()
_idle: dict[str, list[Device]] = {}        # board -> open devices not in use
_busy: dict[str, set[Device]] = {}         # board -> devices in use (abort() closes them)


def _checkout(board: BoardConfig, *, fresh: bool = False) -> Device:
    from sdk.devices import open_device

    with _lock:
        idle = _idle.setdefault(board.name, [])
        stale = idle[:] if fresh else []
        if fresh:
            idle.clear()
        device = None if fresh or not idle else idle.pop()
    for old in stale:
        with contextlib.suppress(Exception):
            old.close()
    if device is None:
        device = open_device(board.device, connect=False)
    with _lock:
        _busy.setdefault(board.name, set()).add(device)
    device.connect()
    return device


def _checkin(board: BoardConfig, device: Device, *, keep: bool) -> None:
    with _lock:
        _busy.get(board.name, set()).discard(device)
        if keep:
            _idle.setdefault(board.name, []).append(device)
            return
    with contextlib.suppress(Exception):
        device.close()


def abort(board_name: str) -> int:
    """Close every open link to a board (a job past its time limit then fails fast)."""
    with _lock:
        devices = list(_busy.get(board_name, ())) + _idle.pop(board_name, [])
    for device in devices:
        with contextlib.suppress(Exception):
            device.close()
    return len(devices)


def close_all() -> None:
    with _lock:
        names = set(_idle) | set(_busy)
    for name in names:
        abort(name)


def where() -> str:
    """Who runs this: the Dask worker's name inside a Dask worker, else host:pid."""
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except (ImportError, ValueError):
        import socket

        return f"{socket.gethostname()}:{os.getpid()}"


def _failure(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, DeviceError):
        transient = is_transient(exc)
        board_fault = transient or isinstance(exc, DeviceAuthError | DeviceStorageError)
        return {"ok": False, "error": str(exc), "error_type": type(exc).__name__,
                "transient": transient, "board_fault": board_fault}
    if isinstance(exc, EdgeSDKError | ValueError):
        return {"ok": False, "error": str(exc), "error_type": type(exc).__name__,
                "transient": False, "board_fault": False}
    tail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
    return {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}\n{tail}",
            "error_type": type(exc).__name__, "transient": False, "board_fault": False}


def check_board(board: dict[str, Any] | BoardConfig, timeout: float = 30.0) -> dict[str, Any]:
    """Health check on a fresh link: the board answers a command, says what it is and how
    warm it is. Returns {"ok", "info", "summary", "governor", "temperature_c", "seconds"} or a
    failure (see module docstring)."""
    board = board if isinstance(board, BoardConfig) else BoardConfig.from_dict(board)
    started = time.monotonic()
    device = None
    try:
        device = _checkout(board, fresh=True)
        echo = device.shell("echo", "edgesdk-health", timeout=timeout)
        if "edgesdk-health" not in echo.stdout:
            raise DeviceError(f"unexpected answer {echo.stdout[:80]!r}", device=board.name,
                              command="echo edgesdk-health")
        info = device.info(refresh=True)
        state = device.thermal_state()
        _checkin(board, device, keep=True)
        return {"ok": True, "info": info.to_dict(), "summary": info.summary(),
                "governor": state.governor, "temperature_c": state.max_temperature_c,
                "seconds": time.monotonic() - started}
    except BaseException as exc:
        if device is not None:
            _checkin(board, device, keep=False)
        if not isinstance(exc, Exception):
            raise
        out = _failure(exc)
        out["board_fault"] = True  # a board that fails its health check is at fault
        out["seconds"] = time.monotonic() - started
        return out


def _local_file(path: Path, sha256: str, name: str, data: bytes | None, what: str,
                cache: str) -> Path:
    """`path` when this host has it with these bytes, else a copy of `data` in the cache (a
    Dask worker on another host)."""
    if path.is_file() and (data is None or sha256_file(path) == sha256):
        return path
    if data is None:
        raise EdgeSDKError(f"{what} {name} is not on this host ({path}) and its bytes were "
                           "not sent")
    from sdk.base.fileio import atomic_write_bytes

    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgesdk" / \
        cache / sha256[:32]
    target = folder / name
    if not (target.is_file() and sha256_file(target) == sha256):
        atomic_write_bytes(target, data)
    return target


def local_model(job: dict[str, Any], model_bytes: bytes | None) -> Path:
    """The job's model as a file on this host: its path when that holds the same bytes, else a
    copy of `model_bytes` in the cache (a Dask worker on another host)."""
    model = job["model"]
    return _local_file(Path(model["path"]), model["sha256"], model["name"], model_bytes,
                       "model", "farm-models")


def local_inputs(job: dict[str, Any], inputs_bytes: bytes | None) -> Path:
    """A validation job's inputs (.npz) as a file on this host (see `local_model`)."""
    inputs = job.get("inputs")
    if not inputs:
        raise EdgeSDKError("a validation job without inputs")
    path = Path(inputs["path"])
    return _local_file(path, inputs["sha256"], path.name, inputs_bytes, "validation inputs",
                       "farm-inputs")


def _profile(model: Path, device: Device, job: dict[str, Any]) -> dict[str, Any]:
    """`sdk.devices.profile.profile`; at most `KEEP_SAMPLES` latencies are kept (evenly spaced
    in run order; the statistics use all of them)."""
    import dataclasses

    from sdk.devices.profile import profile

    settings = job["settings"]
    result = profile(model, device, runs=settings["runs"], warmup=settings["warmup"],
                     min_duration_s=settings["min_duration_s"], threads=settings["threads"],
                     cpus=settings["cpus"], layers=settings["layers"], timeout=job["timeout_s"])
    samples = result.latencies_ms
    if len(samples) > KEEP_SAMPLES:
        samples = tuple(samples[i * len(samples) // KEEP_SAMPLES] for i in range(KEEP_SAMPLES))
        result = dataclasses.replace(result, latencies_ms=samples)
    return {"ok": True, "profile": result.to_dict()}


def _validate(model: Path, device: Device, job: dict[str, Any], inputs: Path
              ) -> dict[str, Any]:
    """`sdk.devices.validate.validate`: the device's outputs against this host's."""
    from sdk.devices.farm.jobs import InputSet
    from sdk.devices.validate import validate

    result = validate(model, device, InputSet.load(inputs), threads=job["settings"]["threads"],
                      timeout=job["timeout_s"])
    return {"ok": True, "validation": result.to_dict()}


def run_tag(job_key: str) -> str:
    """The tag of a job's runs on its board (`Device.run_tag`): the same for every attempt and
    every run of the job, so a new run finds what an earlier one left running."""
    return "farm" + "".join(c for c in job_key if c.isalnum())[:24]


def run_job(board: dict[str, Any] | BoardConfig, job: dict[str, Any],
            model_bytes: bytes | None = None, inputs_bytes: bytes | None = None
            ) -> dict[str, Any]:
    """Run one job on the board, on the pooled open device: a profile (`sdk.profile`) or, for
    `kind = "validate"` jobs, a validation (`sdk.validate`). Returns {"ok": True, "profile":
    {...}} / {"ok": True, "validation": {...}} or a failure (see module docstring)."""
    from sdk.devices.farm.jobs import VALIDATE

    board = board if isinstance(board, BoardConfig) else BoardConfig.from_dict(board)
    started = time.time()
    device = None
    try:
        model = local_model(job, model_bytes)
        validating = job["settings"].get("kind") == VALIDATE
        inputs = local_inputs(job, inputs_bytes) if validating else None
        device = _checkout(board)
        # a run of this job that an earlier (killed) farm process left on the board would load
        # it while we measure: kill it first, by the job's tag
        tag = run_tag(job["key"])
        orphans = device.kill_tagged(tag)
        device.run_tag = tag
        try:
            out = _validate(model, device, job, inputs) if inputs is not None else \
                _profile(model, device, job)
        finally:
            device.run_tag = None
        if orphans:
            out["orphans_killed"] = orphans
        _checkin(board, device, keep=True)
    except BaseException as exc:
        if device is not None:
            keep = isinstance(exc, DeviceError) and not is_transient(exc)
            _checkin(board, device, keep=keep)
        if not isinstance(exc, Exception):
            raise
        out = _failure(exc)
    out["started"], out["finished"] = started, time.time()
    out["executed_by"] = where()
    return out
