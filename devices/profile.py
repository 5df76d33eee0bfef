"""`sdk.profile(model, device)`: latency, memory and what ran, measured on the device."""

from __future__ import annotations

import os
from typing import Any

from sdk.devices.base import Device
from sdk.devices.config import DeviceConfig
from sdk.devices.deploy import deployed
from sdk.devices.errors import RunnerError
from sdk.devices.results import LatencyStats, Profile, honesty_notes
from sdk.devices.runners.base import RunRequest, StageProgress


def profile(model: str | os.PathLike[str], device: str | DeviceConfig | Device, *,
            runs: int = 50, warmup: int = 5, threads: int | None = None,
            cpus: str | None = None, runner: str | None = None, layers: bool = True,
            timeout: float | None = None, config: Any = None,
            progress: StageProgress | None = None) -> Profile:
    """Deploy `model` to `device` and time it there.

    runs / warmup: timed and untimed invocations after the first one (which is reported on its
    own, as is the interpreter's initialisation). threads: interpreter threads (default: the
    device config's, else the runtime's). cpus: pin to these CPUs ("4-7"; default: the device
    config's `cpus`). layers: per-layer times where the runner measures them (edge-run,
    benchmark_model). The Profile says which runner, runtime, machine and kernels ran, and
    whether the device is emulated.
    """
    if runs < 1:
        raise ValueError("runs must be >= 1")
    if warmup < 0:
        raise ValueError("warmup must be >= 0")
    with deployed(model, device, runner=runner, config=config, progress=progress) as dep:
        dev = dep.device
        info = dev.info()
        before = dev.thermal_state()
        pin = cpus or dev.config.cpus
        if progress:
            progress("run", 0, 1)
        report = dep.runner.run(RunRequest(
            model=dep.remote_model, runs=runs, warmup=warmup, threads=threads, cpus=pin,
            profile_layers=layers, timeout=timeout))
        if progress:
            progress("run", 1, 1)
        after = dev.thermal_state()
    if report.latencies_ms:
        latency = LatencyStats.from_samples(report.latencies_ms)
    elif report.latency_stats_ms.get("mean") is not None:
        latency = LatencyStats.from_stats(report.latency_stats_ms, runs)
    else:
        raise RunnerError(f"{report.runner} reported no latencies", device=dev.name)
    return Profile(
        model=str(dep.model), model_sha256=dep.sha256, device=info, runner=report.runner,
        runtime=report.runtime, machine=report.machine, kernels=report.kernels, isa=report.isa,
        threads=report.threads or threads, cpus=pin, warmup=warmup, latency=latency,
        init_ms=report.init_ms, first_run_ms=report.first_run_ms,
        peak_memory_bytes=report.peak_memory_bytes, per_layer=report.per_layer,
        state_before=before, state_after=after, delegates=report.delegates,
        emulated=info.emulated, notes=honesty_notes(info, report.machine, report.runner),
        latencies_ms=report.latencies_ms)
