"""The TFLite delegates a model needs on a device.

* Our own delegate, for models with edgesdk custom ops (ternary / 2-bit layers that stock LiteRT
  cannot run): the build for the device's ABI is pushed beside the runner. It comes from
  `sdk.native.delegate_path(abi)` (issue 4); until that exists such models stop with a clear
  error instead of failing inside LiteRT.
* NPU vendors' external delegates named in the device config (`delegates = [{ path = ...,
  options = {...} }]`): already on the device, passed to the runner with their options.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from pathlib import Path

from sdk.devices.base import Device
from sdk.devices.errors import RunnerError
from sdk.devices.runners.base import StageProgress, check_binary_abi


def custom_ops(model: Path) -> list[str]:
    """Names of the custom operators a .tflite model uses."""
    from sdk.converters.tflite.schema import schema

    buf = model.read_bytes()
    try:
        root = schema.Model.GetRootAs(buf, 0)
        names = []
        for i in range(root.OperatorCodesLength()):
            code = root.OperatorCodes(i).CustomCode()
            if code:
                names.append(code.decode("utf-8", "replace"))
    except Exception:  # a broken file is LiteRT's to report, in its words
        return []
    return sorted(set(names))


def edgesdk_delegate(abi: str) -> Path:
    """Our delegate library for `abi` (issue 4 provides `sdk.native.delegate_path`)."""
    from sdk import native

    finder = getattr(native, "delegate_path", None)
    if finder is None:
        raise RunnerError("the edgesdk delegate (for edgesdk custom ops) is not part of this "
                          "build yet")
    return Path(finder(abi))


def delegates_for(device: Device, model: Path, progress: StageProgress | None = None
                  ) -> list[tuple[str, Mapping[str, str]]]:
    """(device path, options) of every delegate to load for `model` on `device`."""
    out: list[tuple[str, Mapping[str, str]]] = []
    ours = custom_ops(model)
    if ours:
        abi = device.abi or "unknown"
        try:
            library = edgesdk_delegate(abi)
        except Exception as exc:
            raise RunnerError(f"{model.name} uses custom ops {', '.join(ours)} that only the "
                              f"edgesdk delegate runs, and no delegate for {abi} is available: "
                              f"{exc}", device=device.name) from exc
        check_binary_abi(library, device, "the edgesdk delegate")
        remote = device.push(library, posixpath.join(device.workdir, "bin", library.name),
                             progress=(lambda d, t: progress("push delegate", d, t))
                             if progress else None)
        out.append((remote, {}))
    for delegate in device.config.delegates:
        if not device.exists(delegate.path):
            label = f"delegate {delegate.name!r}" if delegate.name else "delegate"
            raise RunnerError(f"{label} {delegate.path} (from the device config) is not on the "
                              "device", device=device.name)
        out.append((delegate.path, delegate.options))
    return out
