"""`sdk.validate(model, device, inputs)`: the device's outputs against the host's.

The same inputs (quantised on the host when the model takes integers, so both sides see the same
bytes) run on the device and on this host; every output is compared: exact match, max abs
error, SQNR, top-1 agreement. The host reference for .tflite is LiteRT with the kernels the
device runner uses (XNNPACK unless the device config turns it off); for .edge it is this host's
edge-run.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sdk.devices.base import Device
from sdk.devices.config import DeviceConfig
from sdk.devices.deploy import Deployment, deployed
from sdk.devices.errors import RunnerError
from sdk.devices.local import LocalDevice
from sdk.devices.results import Validation, compare_output, honesty_notes
from sdk.devices.runners.base import RunnerReport, RunRequest, StageProgress
from sdk.devices.runners.delegates import placement_notes
from sdk.run.edge import ModelInputError

Inputs = np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray]


def _arrange(inputs: Inputs, names: list[str], shapes: list[tuple[int, ...]]
             ) -> list[np.ndarray]:
    """One array per model input, samples on axis 0 (a ModelInputError, a ValueError, naming
    what does not fit)."""
    if isinstance(inputs, Mapping):
        missing = [n for n in names if n not in inputs]
        if missing:
            raise ModelInputError(f"inputs lack {missing}; the model's inputs are {names}")
        arrays = [np.asarray(inputs[n]) for n in names]
    elif isinstance(inputs, np.ndarray):
        arrays = [inputs]
    else:
        arrays = [np.asarray(a) for a in inputs]
    if len(arrays) != len(names):
        raise ModelInputError(f"the model has {len(names)} input(s) {names}, {len(arrays)} "
                              "given")
    out = []
    for name, shape, array in zip(names, shapes, arrays, strict=True):
        per_sample = tuple(shape[1:])
        if array.shape == per_sample:
            array = array[None]
        if tuple(array.shape[1:]) != per_sample:
            raise ModelInputError(f"input {name!r}: expected (N, "
                                  f"{', '.join(map(str, per_sample))}) samples, got shape "
                                  f"{array.shape}")
        out.append(array)
    if len({a.shape[0] for a in out}) != 1:
        raise ModelInputError("every input needs the same number of samples, not "
                              f"{[a.shape[0] for a in out]}")
    return out


def _host_reference_tflite(model: Path, arrays: list[np.ndarray], xnnpack: bool,
                           threads: int | None) -> tuple[list[np.ndarray], Any, str]:
    from sdk.run.litert import backend
    from sdk.run.runner import LiteRTRunner

    runner = LiteRTRunner(model.read_bytes(), reference=not xnnpack, num_threads=threads)
    prepared = [d.from_float(a) if a.dtype != d.dtype else a
                for d, a in zip(runner.inputs, arrays, strict=True)]
    outputs: list[list[np.ndarray]] = [[] for _ in runner.outputs]
    for i in range(prepared[0].shape[0]):
        for k, out in enumerate(runner.invoke([p[i:i + 1] for p in prepared], float_io=False)):
            outputs[k].append(out)
    lite = backend()
    what = f"this host's {lite.name} {lite.version} " + (
        "(XNNPACK)" if xnnpack else "(builtin kernels, no XNNPACK)")
    return [np.concatenate(o, axis=0) for o in outputs], (runner, prepared), what


def _run_on_device(dep: Deployment, prepared: list[np.ndarray], threads: int | None,
                   timeout: float | None, progress: StageProgress | None
                   ) -> tuple[list[np.ndarray], RunnerReport]:
    dev, runner = dep.device, dep.runner
    if not runner.returns_outputs:
        raise RunnerError(f"{runner.name} cannot return outputs; validating needs runner.python"
                          " (litert-python) or edge-run", device=dev.name)
    run_dir = dev.make_run_dir()
    try:
        return _run_in(dep, run_dir, prepared, threads, timeout, progress)
    finally:  # many validations on one device (a farm) must not fill its disk
        dev.remove_run_dir(run_dir)


def _run_in(dep: Deployment, run_dir: str, prepared: list[np.ndarray], threads: int | None,
            timeout: float | None, progress: StageProgress | None
            ) -> tuple[list[np.ndarray], RunnerReport]:
    dev, runner = dep.device, dep.runner
    samples = prepared[0].shape[0]
    with tempfile.TemporaryDirectory(prefix="edgesdk-validate-") as tmp:
        local = Path(tmp)
        if runner.batched_inputs:
            groups = [[(f"in_{k}.npy", a) for k, a in enumerate(prepared)]]
        else:
            groups = [[(f"in_{k}_s{i}.npy", a[i:i + 1]) for k, a in enumerate(prepared)]
                      for i in range(samples)]
        outputs: list[list[np.ndarray]] = []
        report: RunnerReport | None = None
        for g, group in enumerate(groups):
            remote_inputs = []
            for name, array in group:
                np.save(local / name, array)
                remote_inputs.append(dev.push(local / name, posixpath.join(run_dir, name)))
            out_dir = posixpath.join(run_dir, f"out_{g}")
            dev.mkdir(out_dir)
            report = runner.run(RunRequest(model=dep.remote_model, runs=0, warmup=0,
                                           threads=threads, inputs=tuple(remote_inputs),
                                           outputs_dir=out_dir, timeout=timeout))
            if not report.outputs:
                raise RunnerError(f"{runner.name} wrote no outputs", device=dev.name)
            arrays = []
            for j, remote in enumerate(report.outputs):
                arrays.append(np.load(dev.pull(remote, local / f"out_{g}_{j}.npy")))
            outputs.append(arrays)
            if progress:
                progress("validate", g + 1, len(groups))
    assert report is not None
    merged = [np.concatenate([o[k] for o in outputs], axis=0) for k in range(len(outputs[0]))]
    return merged, report


def validate(model: str | os.PathLike[str], device: str | DeviceConfig | Device,
             inputs: Inputs, *, runner: str | None = None, threads: int | None = None,
             timeout: float | None = None, config: Any = None,
             progress: StageProgress | None = None) -> Validation:
    """Run `inputs` through `model` on `device` and on this host; compare every output.

    inputs: an array (one model input), a list of arrays or a {name: array} dict; samples on
    axis 0 (a single sample may omit it). Float inputs for an integer model input are quantised
    with the model's input scale and zero point on the host, so both sides run the same bytes.
    """
    path = Path(model)
    if path.suffix.lower() == ".tflite":
        from sdk.run.runner import LiteRTRunner

        probe = LiteRTRunner(path.read_bytes())
        names = [d.name for d in probe.inputs]
        shapes = [d.shape for d in probe.inputs]
        arrays = _arrange(inputs, names, shapes)
        with deployed(path, device, runner=runner, config=config, progress=progress) as dep:
            xnnpack = dep.device.config.runner.xnnpack
            host, (ref, prepared), reference = _host_reference_tflite(path, arrays, xnnpack,
                                                                      threads)
            device_out, report = _run_on_device(dep, prepared, threads, timeout, progress)
            info = dep.device.info()
        details = ref.outputs
        comparisons = tuple(
            compare_output(d.name, dev_arr.astype(h.dtype, copy=False).reshape(h.shape), h,
                           scale=d.scale, zero_point=d.zero_point, outputs=len(details))
            for d, dev_arr, h in zip(details, device_out, host, strict=True))
    elif path.suffix.lower() == ".edge":
        comparisons, report, info, reference, arrays = _validate_edge(
            path, device, inputs, runner, threads, timeout, config, progress)
    elif path.suffix.lower() == ".rknn":
        comparisons, report, info, reference, arrays = _validate_rknn(
            path, device, inputs, runner, threads, timeout, config, progress)
    else:
        raise RunnerError(f"cannot validate {path.suffix or 'suffix-less'} models; edgesdk "
                          "validates .tflite, .edge and .rknn")
    return Validation(model=str(path), device=info, runner=report.runner,
                      runtime=report.runtime, machine=report.machine, reference=reference,
                      samples=int(arrays[0].shape[0]), outputs=comparisons,
                      emulated=info.emulated,
                      notes=honesty_notes(info, report.machine, report.runner)
                      # an NPU delegate that failed to load or claimed nothing: the outputs
                      # are the CPU's, and the validation says so (issue 18)
                      + tuple(n for n in placement_notes(report.raw)
                              if n.startswith("warning:")))


def _validate_rknn(path: Path, device: Any, inputs: Inputs, runner: str | None,
                   threads: int | None, timeout: float | None, config: Any,
                   progress: StageProgress | None) -> tuple[Any, RunnerReport, Any, str, Any]:
    """.rknn (Rockchip NPU, RKNNLite on the board): the reference is this host's LiteRT running
    the INT8 .tflite the .rknn was compiled from (named by the compile report beside it).
    RKNNLite returns float32 outputs: integer outputs of the .tflite are compared after
    quantising the board's with the output's own scale and zero point."""
    from sdk.devices.runners.rknn_lite import compile_report
    from sdk.run.runner import LiteRTRunner

    found = compile_report(path)
    if found is None or not found[1].is_file():
        raise RunnerError(f"{path.name}: validating a .rknn needs the INT8 .tflite it was "
                          "compiled from and the compile report naming it, beside it (as "
                          "`edgesdk export --target rk...` leaves them)")
    source = found[1]
    probe = LiteRTRunner(source.read_bytes())
    arrays = _arrange(inputs, [d.name for d in probe.inputs], [d.shape for d in probe.inputs])
    with deployed(path, device, runner=runner, config=config, progress=progress) as dep:
        host, (ref, prepared), reference = _host_reference_tflite(source, arrays, True, threads)
        device_out, report = _run_on_device(dep, prepared, threads, timeout, progress)
        info = dep.device.info()
    comparisons = []
    for d, dev_arr, h in zip(ref.outputs, device_out, host, strict=True):
        dev_arr = dev_arr.reshape(h.shape)
        if np.issubdtype(h.dtype, np.integer) and d.scale:
            limits = np.iinfo(h.dtype)
            dev_arr = np.clip(np.round(dev_arr / d.scale + d.zero_point), limits.min,
                              limits.max)
        comparisons.append(compare_output(d.name, dev_arr.astype(h.dtype), h, scale=d.scale,
                                          zero_point=d.zero_point, outputs=len(ref.outputs)))
    return (tuple(comparisons), report, info,
            f"{reference} running {source.name} (what the .rknn was compiled from)", arrays)


def _validate_edge(path: Path, device: Any, inputs: Inputs, runner: str | None,
                   threads: int | None, timeout: float | None, config: Any,
                   progress: StageProgress | None) -> tuple[Any, RunnerReport, Any, str, Any]:
    """.edge: this host's edge-run (x86_64) is the reference."""
    # a private workdir: validations running at once (a farm) must not clean up each other's
    # host edge-run and model
    workdir = tempfile.mkdtemp(prefix="edgesdk-host-reference-")
    with LocalDevice(DeviceConfig(name="host", transport="local", workdir=workdir)) as host_dev, \
            deployed(path, host_dev) as host_dep:
        probe = host_dep.runner.run(RunRequest(model=host_dep.remote_model, runs=0, warmup=0))
        details = probe.raw.get("inputs") or []
        names = [d["name"] for d in details]
        shapes = [tuple(int(x) for x in d["shape"]) for d in details]
        arrays = _arrange(inputs, names, shapes)
        prepared = [a.astype(np.dtype(str(d["dtype"]).lower()), copy=False) for a, d in
                    zip(arrays, details, strict=True)]
        host_out, host_report = _run_on_device(host_dep, prepared, threads, timeout, None)
        with deployed(path, device, runner=runner, config=config, progress=progress) as dep:
            device_out, report = _run_on_device(dep, prepared, threads, timeout, progress)
            info = dep.device.info()
        host_dev.cleanup(everything=True)
    out_details = report.raw.get("outputs") or [{} for _ in host_out]
    comparisons = tuple(
        compare_output(str(d.get("name", f"output_{k}")), dev_arr.reshape(h.shape), h,
                       outputs=len(host_out))
        for k, (d, dev_arr, h) in enumerate(zip(out_details, device_out, host_out,
                                                strict=True)))
    reference = f"this host's {host_report.runtime} ({host_report.machine})"
    return comparisons, report, info, reference, arrays
