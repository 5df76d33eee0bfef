"""`sdk.profile(model, device)`: latency, memory and what ran, measured on the device."""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

from sdk.base.errors import UsageError
from sdk.devices.base import Device
from sdk.devices.config import DeviceConfig
from sdk.devices.deploy import deployed
from sdk.devices.errors import RunnerError
from sdk.devices.info import DeviceInfo
from sdk.devices.npu import NpuConfig, NpuPlacement, npu_notes, placement_from_runner
from sdk.devices.results import LatencyStats, Profile, honesty_notes
from sdk.devices.runners.base import RunnerReport, RunRequest, StageProgress
from sdk.devices.runners.delegates import custom_ops, placement_notes


def resolve_cpus(cpus: str | None, info: DeviceInfo) -> tuple[str | None, str | None]:
    """(taskset list, note): "big" / "little" become the cores with the highest / lowest
    maximum frequency (cpufreq); where those cannot be told apart the run is not pinned and the
    note says why. Any other value is a CPU list, returned as it is."""
    if cpus is None or not cpus.strip():
        return None, None
    kind = cpus.strip().lower()
    if kind not in ("big", "little"):
        return cpus.strip(), None
    freqs = list(info.max_freqs_khz)
    if not freqs or len(set(freqs)) == 1:
        why = "cpufreq is unreadable" if not freqs else "every core has the same max frequency"
        return None, f"cpus={kind!r} not applied ({why}): the runs were not pinned"
    target = max(freqs) if kind == "big" else min(freqs)
    return ",".join(str(i) for i, f in enumerate(freqs) if f == target), None


def timed_runs(report: RunnerReport, requested: int) -> int:
    """How many timed runs the runner did: its samples, else what it says it did (a runner
    with a minimum duration may do more than asked), else the number asked for."""
    if report.latencies_ms:
        return len(report.latencies_ms)
    return report.timed_runs if report.timed_runs is not None else requested


def timed_seconds(report: RunnerReport, runs: int) -> float:
    """Seconds the timed runs took (their sum; mean x runs when the runner gave only stats)."""
    if report.latencies_ms:
        return sum(report.latencies_ms) / 1e3
    mean = report.latency_stats_ms.get("mean")
    return float(mean) * timed_runs(report, runs) / 1e3 if mean is not None else 0.0


def latency_of(report: RunnerReport, runs: int, device: str) -> LatencyStats:
    """The latency statistics of a runner's report (`runs`: the runs requested)."""
    if report.latencies_ms:
        return LatencyStats.from_samples(report.latencies_ms)
    if report.latency_stats_ms.get("mean") is not None:
        return LatencyStats.from_stats(report.latency_stats_ms, timed_runs(report, runs))
    raise RunnerError(f"{report.runner} reported no latencies", device=device)


def profile(model: str | os.PathLike[str], device: str | DeviceConfig | Device, *,
            runs: int = 50, warmup: int = 5, threads: int | None = None,
            cpus: str | None = None, runner: str | None = None, layers: bool = True,
            timeout: float | None = None, config: Any = None,
            progress: StageProgress | None = None, min_duration_s: float = 0.0) -> Profile:
    """Deploy `model` to `device` and time it there.

    runs / warmup: timed and untimed invocations after the first one (which is reported on its
    own, as is the interpreter's initialisation). min_duration_s: keep timing until at least
    `runs` runs AND this many seconds are done (MLPerf-style; runners that cannot are run again
    with more runs). threads: interpreter threads (default: the device config's, else the
    runtime's). cpus: pin to these CPUs ("4-7", or "big" / "little": the fastest / slowest
    cores; default: the device config's `cpus`). layers: per-layer times where the runner
    measures them (edge-run, benchmark_model; litert-python times each operator alone, see
    sdk.devices.runners.layers). The Profile says which runner, runtime, machine and kernels
    ran, and whether the device is emulated.
    """
    if runs < 1:  # UsageError is a ValueError: `edgesdk profile --runs 0` exits 2
        raise UsageError(f"runs must be >= 1, not {runs}")
    if warmup < 0:
        raise UsageError(f"warmup must be >= 0, not {warmup}")
    if min_duration_s < 0:
        raise UsageError(f"min_duration_s must be >= 0, not {min_duration_s}")
    with deployed(model, device, runner=runner, config=config, progress=progress) as dep:
        dev = dep.device
        info = dev.info()
        before = dev.thermal_state()
        pin, pin_note = resolve_cpus(cpus or dev.config.cpus, info)
        if progress:
            progress("run", 0, 1)
        request = RunRequest(model=dep.remote_model, runs=runs, warmup=warmup, threads=threads,
                             cpus=pin, profile_layers=layers, timeout=timeout,
                             min_duration_s=min_duration_s)
        report = dep.runner.run(request)
        timed = timed_seconds(report, runs)
        for _ in range(4):  # bounded: a run's speed varies, so check and go again if short
            if dep.runner.handles_min_duration or timed >= min_duration_s:
                break
            # run again with enough runs to fill the minimum duration (20% to spare)
            runs = max(runs + 1, math.ceil(runs * min_duration_s / max(timed, 1e-6) * 1.2))
            report = dep.runner.run(dataclasses.replace(request, runs=runs))
            timed = timed_seconds(report, runs)
        short_note = () if dep.runner.handles_min_duration or timed >= min_duration_s else (
            f"the timed runs add up to {timed:.3f} s, short of the {min_duration_s:g} s minimum "
            f"after 5 tries ({runs} runs; the device's speed kept changing): p50/p90 rest on "
            f"fewer runs than asked",)
        if progress:
            progress("run", 1, 1)
        after = dev.thermal_state()
    latency = latency_of(report, runs, dev.name)
    return Profile(
        model=str(dep.model), model_sha256=dep.sha256, device=info, runner=report.runner,
        runtime=report.runtime, machine=report.machine, kernels=report.kernels, isa=report.isa,
        threads=report.threads or threads, cpus=pin, warmup=warmup, latency=latency,
        init_ms=report.init_ms, first_run_ms=report.first_run_ms,
        peak_memory_bytes=report.peak_memory_bytes, per_layer=report.per_layer,
        cpu_ms=report.cpu_ms, state_before=before, state_after=after, delegates=report.delegates,
        emulated=info.emulated,
        notes=honesty_notes(info, report.machine, report.runner) + ((pin_note,) if pin_note
                                                                    else ())
        + placement_notes(report.raw) + npu_notes(dev.config.npu, custom_ops(dep.model))
        + short_note,
        latencies_ms=report.latencies_ms, npu=npu_placement(report, dev.config.npu))


def npu_placement(report: RunnerReport, npu: NpuConfig | None) -> NpuPlacement | None:
    """What the NPU took: the runner's own placement (RKNNLite's, from the compile report),
    else the delegates' nodes in the litert-python runner's report."""
    placement = report.raw.get("npu_placement")
    if isinstance(placement, dict):
        return NpuPlacement.from_dict(placement)
    return placement_from_runner(report.raw, npu)
