"""Typed results of `sdk.profile` and `sdk.validate`, with JSON round trips for reports."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sdk.base.tables import jsonable
from sdk.devices.info import DeviceInfo, ThermalState
from sdk.devices.npu import NpuPlacement
from sdk.devices.runners.base import LayerTime


@dataclass(frozen=True)
class LatencyStats:
    """Per-run latency in milliseconds. Percentiles are None when the runner gave no samples
    to compute them from (benchmark_model reports only mean, std, min, max and a median)."""

    runs: int
    mean_ms: float
    std_ms: float | None
    min_ms: float | None
    max_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> LatencyStats:
        if not samples_ms:
            raise ValueError("no latency samples")
        x = np.asarray(samples_ms, np.float64)
        p50, p90, p99 = (float(v) for v in np.percentile(x, [50, 90, 99]))
        return cls(len(x), float(x.mean()), float(x.std()), float(x.min()), float(x.max()),
                   p50, p90, p99)

    @classmethod
    def from_stats(cls, stats: Mapping[str, float], runs: int) -> LatencyStats:
        """From a runner's statistics; `runs`: the timed runs it did (not the runs asked
        for: `sdk.devices.profile.timed_runs`)."""
        get = stats.get
        return cls(runs, float(stats["mean"]), get("std"), get("min"), get("max"), get("p50"),
                   get("p90"), get("p99"))


@dataclass(frozen=True)
class Profile:
    """`sdk.profile()`: how a model ran on a device, and what exactly ran."""

    model: str                          #: the local model file
    model_sha256: str
    device: DeviceInfo
    runner: str                         #: edge-run, litert-python, benchmark_model
    runtime: str
    machine: str | None                 #: the architecture the runner's code executed as
    kernels: str                        #: XNNPACK / builtin / edge kernel names
    isa: tuple[str, ...]                #: SIMD features available to the runner
    threads: int | None
    cpus: str | None
    warmup: int
    latency: LatencyStats
    init_ms: float | None
    first_run_ms: float | None
    peak_memory_bytes: int | None
    per_layer: tuple[LayerTime, ...] | None
    state_before: ThermalState
    state_after: ThermalState
    delegates: tuple[str, ...] = ()
    #: None on real hardware; what really executed the model on an emulated device
    emulated: str | None = None
    notes: tuple[str, ...] = ()
    latencies_ms: tuple[float, ...] = ()
    #: which nodes the board's NPU (delegate or RKNNLite) took; None without one
    npu: NpuPlacement | None = None
    #: CPU time per timed run, all threads (what a battery pays; on a shared core it stays
    #: where wall time grows); None where the runner does not measure it (edge-run does)
    cpu_ms: float | None = None

    @property
    def governor(self) -> str | None:
        return self.state_after.governor or self.state_before.governor

    @property
    def temperature_c(self) -> float | None:
        return self.state_after.max_temperature_c

    @property
    def timed_s(self) -> float:
        """Seconds the timed runs took, all together (runs x mean)."""
        return self.latency.mean_ms * self.latency.runs / 1e3

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["device"] = self.device.to_dict()
        return jsonable(out)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Profile:
        """Inverse of `to_dict` (results databases, reports, results sent between hosts)."""
        from sdk.base.tables import from_jsonable

        d = dict(from_jsonable(dict(d)))
        d["device"] = device_info_from_dict(d["device"])
        d["latency"] = LatencyStats(**d["latency"])
        d["per_layer"] = None if d.get("per_layer") is None else tuple(
            LayerTime(**x) for x in d["per_layer"])
        for key in ("state_before", "state_after"):
            d[key] = ThermalState(**(d.get(key) or {}))
        for key in ("isa", "delegates", "notes", "latencies_ms"):
            d[key] = tuple(d.get(key) or ())
        if d.get("npu") is not None:
            d["npu"] = NpuPlacement.from_dict(d["npu"])
        return cls(**d)

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), indent=2, **kwargs)

    def summary(self) -> str:
        lat = self.latency
        parts = [f"{self.runner} on {self.device.name} ({self.machine or '?'}): "
                 f"mean {lat.mean_ms:.3f} ms"]
        if lat.p50_ms is not None:
            parts.append(f"p50 {lat.p50_ms:.3f}")
        if lat.p99_ms is not None:
            parts.append(f"p99 {lat.p99_ms:.3f}")
        if self.emulated:
            parts.append("EMULATED")
        return ", ".join(parts)


@dataclass(frozen=True)
class OutputComparison:
    """One model output: device versus host reference over every sample."""

    name: str
    dtype: str
    shape: tuple[int, ...]              #: (samples, ...)
    exact: bool                         #: bit-identical
    mismatched: int                     #: elements that differ
    max_abs_error: float                #: in real units (dequantised)
    max_abs_error_raw: float            #: in the stored type's units (int8 steps)
    sqnr_db: float                      #: signal-to-quantisation-noise, inf when exact
    top1_agreement: float | None        #: argmax agreement (class scores only, else None)
    kind: str = ""                      #: `sdk.run.fidelity.output_kind`: class scores, map ...
    kind_reason: str = ""               #: why that kind (which metrics apply)


@dataclass(frozen=True)
class Validation:
    """`sdk.validate()`: the device's outputs against the host's for the same inputs."""

    model: str
    device: DeviceInfo
    runner: str
    runtime: str
    machine: str | None
    reference: str                      #: what computed the host outputs
    samples: int
    outputs: tuple[OutputComparison, ...]
    emulated: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def exact(self) -> bool:
        return all(o.exact for o in self.outputs)

    @property
    def sqnr_db(self) -> float:
        return min(o.sqnr_db for o in self.outputs)

    @property
    def max_abs_error(self) -> float:
        return max(o.max_abs_error for o in self.outputs)

    @property
    def top1_agreement(self) -> float | None:
        values = [o.top1_agreement for o in self.outputs if o.top1_agreement is not None]
        return min(values) if values else None

    def passed(self, *, min_sqnr_db: float = 30.0, min_top1: float = 0.99) -> bool:
        """Exact, or close: SQNR and top-1 agreement at least the given bounds."""
        if self.exact:
            return True
        top1 = self.top1_agreement
        return self.sqnr_db >= min_sqnr_db and (top1 is None or top1 >= min_top1)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["device"] = self.device.to_dict()
        out.update(exact=self.exact, sqnr_db=self.sqnr_db, max_abs_error=self.max_abs_error,
                   top1_agreement=self.top1_agreement)
        return jsonable(out)

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), indent=2, **kwargs)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Validation:
        """Inverse of `to_dict` (the farm's results database, results sent between hosts)."""
        from sdk.base.tables import from_jsonable

        d = dict(from_jsonable(dict(d)))
        for derived in ("exact", "sqnr_db", "max_abs_error", "top1_agreement"):
            d.pop(derived, None)
        d["device"] = device_info_from_dict(d["device"])
        d["outputs"] = tuple(OutputComparison(**{**o, "shape": tuple(o["shape"])})
                             for o in d["outputs"])
        d["notes"] = tuple(d.get("notes") or ())
        return cls(**d)


def device_info_from_dict(d: Mapping[str, Any]) -> DeviceInfo:
    """Inverse of `DeviceInfo.to_dict`."""
    d = dict(d)
    d["state"] = ThermalState(**(d.get("state") or {}))
    for key in ("cpu_features", "max_freqs_khz"):
        d[key] = tuple(d.get(key) or ())
    d["android_props"] = dict(d.get("android_props") or {})
    return DeviceInfo(**d)


def compare_output(name: str, device: np.ndarray, host: np.ndarray, *, scale: float = 0.0,
                   zero_point: int = 0, outputs: int = 1) -> OutputComparison:
    """Compare one output (samples on axis 0); `scale`/`zero_point` dequantise integer data;
    `outputs`: how many outputs the model has (top-1 agreement only for class scores,
    `sdk.run.fidelity.output_kind`)."""
    from sdk.run.fidelity import CLASS_SCORES, output_kind

    if device.shape != host.shape:
        raise ValueError(f"output {name!r}: device shape {device.shape} != host {host.shape}")
    raw_diff = np.abs(device.astype(np.float64) - host.astype(np.float64))
    if np.issubdtype(host.dtype, np.integer) and scale:
        dev_f = (device.astype(np.float64) - zero_point) * scale
        ref_f = (host.astype(np.float64) - zero_point) * scale
    else:
        dev_f, ref_f = device.astype(np.float64), host.astype(np.float64)
    noise = float(np.sum((dev_f - ref_f) ** 2))
    signal = float(np.sum(ref_f ** 2))
    if noise == 0:
        sqnr = math.inf
    elif signal == 0:
        sqnr = -math.inf
    else:
        sqnr = 10.0 * math.log10(signal / noise)
    kind = output_kind(ref_f, outputs=outputs)
    top1 = None
    if kind.kind == CLASS_SCORES:
        rows_dev, rows_ref = dev_f.reshape(-1, kind.row), ref_f.reshape(-1, kind.row)
        top1 = float(np.mean(np.argmax(rows_dev, axis=1) == np.argmax(rows_ref, axis=1)))
    return OutputComparison(
        name=name, dtype=host.dtype.name, shape=tuple(int(d) for d in host.shape),
        exact=bool(np.array_equal(device, host)), mismatched=int(np.count_nonzero(raw_diff)),
        max_abs_error=float(np.max(np.abs(dev_f - ref_f))) if host.size else 0.0,
        max_abs_error_raw=float(raw_diff.max()) if host.size else 0.0, sqnr_db=sqnr,
        top1_agreement=top1, kind=kind.kind, kind_reason=kind.reason)


def honesty_notes(info: DeviceInfo, machine: str | None, runner: str) -> tuple[str, ...]:
    """What a reader of a profile or validation must know about what really ran."""
    from sdk.devices.config import abi_for_arch

    notes = []
    ran_abi = abi_for_arch(machine) if machine else None
    foreign = ran_abi is not None and info.abi is not None and ran_abi != info.abi
    if foreign:
        notes.append(f"{runner} executed {machine} code (the host's interpreter on a loopback "
                     f"or emulated device), not {info.abi}: timings and kernels are this "
                     "host's, not the target's")
    elif info.emulated:
        notes.append(f"emulated device: {info.abi or machine} code ran under {info.emulated}; "
                     "timings are the emulator's, not the target hardware's")
    return tuple(notes)
