"""`sdk.deploy(model, device)`: the model and its runner on the device, verified."""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.devices import open_device
from sdk.devices.base import Device, sha256_file
from sdk.devices.config import DeviceConfig
from sdk.devices.errors import TransferError
from sdk.devices.runners.base import Runner, StageProgress
from sdk.devices.runners.select import select_runner

MODEL_SUFFIXES = (".tflite", ".edge", ".rknn")


@dataclass
class Deployment:
    """A model on a device with the runner that will execute it."""

    device: Device
    model: Path                         #: local file
    remote_model: str                   #: its path on the device
    runner: Runner
    files: tuple[str, ...]              #: everything on the device this deployment uses
    sha256: str = ""
    owns_device: bool = field(default=False, repr=False)

    def close(self) -> None:
        """Close the device connection if `deploy` opened it."""
        if self.owns_device:
            self.device.close()

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> dict[str, Any]:
        return {"device": self.device.name, "model": str(self.model),
                "remote_model": self.remote_model, "runner": self.runner.name,
                "files": list(self.files), "sha256": self.sha256}


def _check_model(model: str | os.PathLike[str]) -> Path:
    path = Path(model)
    if not path.is_file():
        raise TransferError(f"no such model file: {path}")
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise TransferError(f"{path.name}: edgesdk deploys {' and '.join(MODEL_SUFFIXES)} "
                            "models (export other formats first with sdk.export)")
    return path


def deploy(model: str | os.PathLike[str], device: str | DeviceConfig | Device, *,
           runner: str | None = None, config: Any = None,
           progress: StageProgress | None = None) -> Deployment:
    """Push `model` and what runs it to `device`; files already there are not sent again.

    `device` is a device string (`adb:SERIAL`, `ssh:user@host`, `local`, a config name), a
    DeviceConfig or an open Device. `runner` forces one (edge-run, litert-python,
    benchmark_model). Close the returned Deployment (or use `with`) to release a connection
    that `deploy` opened.
    """
    path = _check_model(model)
    owns = not isinstance(device, Device)
    dev = open_device(device, config=config)
    try:
        chosen = select_runner(dev, path, prefer=runner)
        files = chosen.prepare(progress)
        chosen.prepare_model(path, progress)
        digest = sha256_file(path)
        remote = dev.push(path, remote_model_path(dev, path.name, digest),
                          progress=(lambda d, t: progress(f"push {path.name}", d, t))
                          if progress else None)
    except BaseException:
        if owns:
            dev.close()
        raise
    return Deployment(dev, path, remote, chosen, (*files, remote), digest, owns)


def remote_model_path(device: Device, name: str, sha256: str) -> str:
    """Where a model goes on the device: `models/<sha256[:16]>/<name>`, addressed by content,
    so two different models of the same file name never overwrite each other (two jobs at once
    on one board), while the same bytes land on the same path (and are not sent again)."""
    return posixpath.join(device.workdir, "models", sha256[:16], name)


@contextlib.contextmanager
def deployed(model: str | os.PathLike[str], device: str | DeviceConfig | Device, *,
             runner: str | None = None, config: Any = None,
             progress: StageProgress | None = None) -> Iterator[Deployment]:
    deployment = deploy(model, device, runner=runner, config=config, progress=progress)
    try:
        yield deployment
    finally:
        deployment.close()
