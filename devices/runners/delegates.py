"""The TFLite delegates a model needs on a device.

* Our own delegate, for models with edgesdk custom ops (EDGE_*: ternary / 2-bit layers that stock
  LiteRT cannot run): the build for the device's ABI is pushed beside the runner. It comes from
  the one lookup of sdk.base.artifacts (the wheel carries every ABI's); when there is none such
  models stop with an error naming where it looked instead of failing inside LiteRT.
* NPU vendors' external delegates named in the device config (`delegates = [{ path = ...,
  options = {...} }]`): already on the device, passed to the runner with their options.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from pathlib import Path

from sdk.base.artifacts import find_artifact
from sdk.devices.base import Device
from sdk.devices.errors import RunnerError
from sdk.devices.runners.base import StageProgress, check_binary_abi


def custom_ops(model: Path) -> list[str]:
    """Names of the custom operators a .tflite model uses."""
    from sdk.converters import tflite_schema as schema

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


#: custom ops of ours carry this prefix (EDGE_CONV_INT2, ...); others (e.g. LiteRT's own
#: TFLite_Detection_PostProcess) are LiteRT's business
EDGE_CUSTOM_PREFIX = "EDGE_"


def edgesdk_delegate(abi: str) -> Path:
    """Our delegate library for `abi`, the static device build, from the one lookup
    (sdk.base.artifacts: $EDGESDK_BIN_DIR, the wheel, a checkout's build folders)."""
    return find_artifact("delegate", abi)


def delegates_for(device: Device, model: Path, progress: StageProgress | None = None, *,
                  runner_abi: str | None = None) -> list[tuple[str, Mapping[str, str]]]:
    """(device path, options) of every delegate to load for `model` on `device`.

    `runner_abi` is the ABI of the process that loads the delegate when it differs from the
    device's (this host's x86_64 Python on an emulated Arm board): the library must match it.
    """
    out: list[tuple[str, Mapping[str, str]]] = []
    ours = [op for op in custom_ops(model) if op.startswith(EDGE_CUSTOM_PREFIX)]
    if ours:
        abi = runner_abi or device.abi or "unknown"
        try:
            library = edgesdk_delegate(abi)
        except Exception as exc:
            raise RunnerError(f"{model.name} uses custom ops {', '.join(ours)} that only the "
                              f"edgesdk delegate runs, and no delegate for {abi} is available: "
                              f"{exc}", device=device.name) from exc
        check_binary_abi(library, device, "the edgesdk delegate", abi=abi)
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
    npu = device.config.npu
    if npu is not None and npu.uses_delegate:
        # with fallback = "cpu" a missing library is the runner's to report (it cannot load
        # it, warns, and runs on the CPU); with "error" it stops here, naming the path
        if npu.fallback == "error" and not device.exists(npu.delegate):
            raise RunnerError(f"the {npu.label} NPU delegate {npu.delegate} (the device "
                              "config's npu.delegate) is not on the device",
                              device=device.name)
        out.append((npu.delegate, npu.options))
    return out


def cpu_fallback_delegates(device: Device) -> list[str]:
    """Device paths of delegates that may fall back to the CPU (with a warning) when they
    cannot be loaded: the NPU stack's, unless its config says `fallback = "error"`."""
    npu = device.config.npu
    if npu is not None and npu.uses_delegate and npu.fallback == "cpu":
        return [npu.delegate]
    return []


def placement_notes(raw: Mapping[str, object]) -> tuple[str, ...]:
    """Profile notes from the litert-python runner's delegate placement (which nodes the
    configured delegates claimed, from the interpreter's node list) and its warnings."""
    notes: list[str] = []
    placement = raw.get("placement")
    if isinstance(placement, Mapping):
        names = ", ".join(posixpath.basename(str(d)) for d in raw.get("delegates") or ())
        claimed = [f"{n['op']}#{n['index']}" for n in placement.get("claimed") or ()]
        cpu = [f"{n['op']}#{n['index']}" for n in placement.get("cpu") or ()]
        text = (f"delegates {names} claimed {len(claimed)} of {placement.get('nodes')} nodes"
                + (f" ({', '.join(claimed)})" if claimed else "")
                + (f"; on the CPU: {', '.join(cpu)}" if cpu else "; none on the CPU"))
        if not placement.get("exact"):
            text += " (XNNPACK could not be turned off: some may be XNNPACK's)"
        notes.append(text)
    notes += [f"warning: {w}" for w in raw.get("warnings") or ()]
    return tuple(notes)
