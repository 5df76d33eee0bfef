"""Profile a model on a device: latency statistics, init time, peak memory, per-layer times, and
the device's state (governor, temperature) before and after.

    from sdk.devices import open_device
    from sdk.devices.profiling import profile
    with open_device("ssh:pi@rpi4") as dev:
        p = profile("model.tflite", dev, runs=100, warmup=10, min_duration_s=2.0, cpus="big")
        print(p.latency.p50_ms, p.governor, p.temperature_c)

Runner: for `.tflite`, the LiteRT Python runner (`litert_runner.py`, pushed next to the model and
run with the device's Python: `runner.python` in the device config, else `python3`; this
Python on the local host). Per-layer
times come from timing each operator alone in a model of its own (`layers=True`), since LiteRT's
Python API has no op profiler; they say so (`layer_method`).

`cpus` pins the runner with taskset: a list ("4-7"), or "big" / "little" for the cores with the
highest / lowest maximum frequency (read from cpufreq; unpinned, with a note, where unreadable).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import struct
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.devices.base import Device, sha256_file
from sdk.devices.config import DeviceConfig
from sdk.devices.errors import DeviceCommandError, RunnerError
from sdk.devices.info import DeviceInfo, ThermalState

RUNNER_SCRIPT = Path(__file__).with_name("litert_runner.py")
#: exit codes of litert_runner.py
_EXIT_NO_RUNTIME, _EXIT_MODEL = 3, 4


@dataclass(frozen=True)
class LatencyStats:
    """Latency of the timed runs, milliseconds."""

    count: int
    mean_ms: float
    std_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def from_samples(cls, samples: Sequence[float]) -> LatencyStats:
        if not samples:
            raise ValueError("no latency samples")
        xs = sorted(float(x) for x in samples)
        n = len(xs)
        mean = sum(xs) / n
        std = math.sqrt(sum((x - mean) ** 2 for x in xs) / n)
        return cls(count=n, mean_ms=mean, std_ms=std, min_ms=xs[0], p50_ms=percentile(xs, 50),
                   p90_ms=percentile(xs, 90), p99_ms=percentile(xs, 99), max_ms=xs[-1])


def percentile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of already sorted values (numpy's default method)."""
    if not sorted_xs:
        raise ValueError("no values")
    pos = (len(sorted_xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


@dataclass(frozen=True)
class LayerTiming:
    """One operator's time (median of its runs), milliseconds; None when it failed alone."""

    index: int
    name: str
    op: str
    time_ms: float | None
    error: str | None = None


@dataclass(frozen=True)
class Profile:
    """What `profile()` measured on one device."""

    model: str                       #: the host path
    model_sha256: str
    device: str                      #: device name
    runner: str                      #: "litert-python"
    backend: str                     #: "ai_edge_litert 2.3.0"
    latency: LatencyStats
    #: the timed runs in order (at most 2000, evenly spaced, when there were more; `latency`
    #: is computed over all of them)
    latencies_ms: tuple[float, ...]
    warmup_ms: tuple[float, ...]
    init_ms: float                   #: interpreter creation + allocation
    first_run_ms: float
    duration_s: float                #: wall time of the timed runs
    peak_rss_bytes: int | None
    threads: int | None
    cpus: str | None                 #: the taskset list asked for (None: not pinned)
    #: the kernels that ran: "xnnpack" / "builtin" / delegate names, with the device's ISA
    kernels: tuple[str, ...]
    layers: tuple[LayerTiming, ...] = ()
    layer_method: str | None = None  #: how layer times were taken
    settings: Mapping[str, Any] = field(default_factory=dict)  #: runs, warmup, min_duration_s
    device_info: DeviceInfo | None = None
    state_before: ThermalState = field(default_factory=ThermalState)
    state_after: ThermalState = field(default_factory=ThermalState)
    notes: tuple[str, ...] = ()
    #: the CPUs the runner was allowed to run on, as it saw them (None: unknown)
    cpu_affinity: tuple[int, ...] | None = None

    @property
    def governor(self) -> str | None:
        return self.state_before.governor or self.state_after.governor

    @property
    def temperature_c(self) -> float | None:
        """The hottest zone after the runs (before, where after is unreadable)."""
        after = self.state_after.max_temperature_c
        return after if after is not None else self.state_before.max_temperature_c

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["device_info"] = self.device_info.to_dict() if self.device_info else None
        out["governor"] = self.governor
        out["temperature_c"] = self.temperature_c
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Profile:
        d = dict(d)
        d.pop("governor", None)
        d.pop("temperature_c", None)
        info = d.get("device_info")
        if info is not None:
            info = dict(info)
            info["state"] = ThermalState(**info.get("state", {}))
            for key in ("cpu_features", "max_freqs_khz"):
                info[key] = tuple(info.get(key) or ())
            d["device_info"] = DeviceInfo(**info)
        d["latency"] = LatencyStats(**d["latency"])
        d["layers"] = tuple(LayerTiming(**x) for x in d.get("layers") or ())
        for key in ("state_before", "state_after"):
            d[key] = ThermalState(**(d.get(key) or {}))
        for key in ("latencies_ms", "warmup_ms", "kernels", "notes"):
            d[key] = tuple(d.get(key) or ())
        if d.get("cpu_affinity") is not None:
            d["cpu_affinity"] = tuple(d["cpu_affinity"])
        return cls(**d)


# ---------------------------------------------------------------------------- pinning
def resolve_cpus(cpus: str | None, info: DeviceInfo | None) -> tuple[str | None, str | None]:
    """(taskset list, note): "big"/"little" become the cores with the highest/lowest max freq."""
    if cpus is None or cpus.strip() == "":
        return None, None
    kind = cpus.strip().lower()
    if kind not in ("big", "little"):
        return cpus.strip(), None
    freqs = list(info.max_freqs_khz) if info else []
    if not freqs or len(set(freqs)) == 1:
        why = "cpufreq unreadable" if not freqs else "all cores have the same max frequency"
        return None, f"cpus={kind!r} not applied: {why}; runs were not pinned"
    target = max(freqs) if kind == "big" else min(freqs)
    return ",".join(str(i) for i, f in enumerate(freqs) if f == target), None


# ---------------------------------------------------------------------------- layer bundle
def layer_bundle(model: str | os.PathLike[str]) -> bytes:
    """Every operator of the model's main graph as a model of its own, in one file.

    Format (read by litert_runner.py): b"EDGELAYR", u32 little-endian length of a JSON header
    {"layers": [{"index", "name", "op", "offset", "size"}]}, the header, then the models.
    Operators LiteRT cannot run alone (control flow, variables) are left out.
    """
    from sdk.converters.ir import Graph, Model
    from sdk.converters.tflite.reader import read_tflite
    from sdk.converters.tflite.writer import to_tflite_bytes

    source = read_tflite(os.fspath(model))
    graph = source.main
    entries, blobs, offset = [], [], 0
    for index, op in enumerate(graph.operators):
        if op.type in ("WHILE", "IF", "CALL_ONCE", "ASSIGN_VARIABLE", "READ_VARIABLE",
                       "VAR_HANDLE") or any(t is not None and t.is_variable for t in op.inputs):
            continue
        inputs = [t for t in op.inputs if t is not None and not t.is_constant]
        if not inputs:
            continue
        tensors = list(dict.fromkeys([*(t for t in op.inputs if t is not None), *op.outputs]))
        sub = Graph(name=f"layer{index}", tensors=tensors, operators=[op], inputs=inputs,
                    outputs=list(op.outputs))
        try:
            blob = to_tflite_bytes(Model(graphs=[sub], description=f"{op.type} {op.name}"))
        except Exception:  # an op the writer cannot isolate is left out
            continue
        # TFLite operators have no names: the output tensor's is what Netron shows
        name = op.name or (op.outputs[0].name if op.outputs else "") or f"{op.type}_{index}"
        entries.append({"index": index, "name": name, "op": op.type,
                        "offset": offset, "size": len(blob)})
        blobs.append(blob)
        offset += len(blob)
    header = json.dumps({"layers": entries}).encode("utf-8")
    return b"EDGELAYR" + struct.pack("<I", len(header)) + header + b"".join(blobs)


# ---------------------------------------------------------------------------- profile
def profile(model: str | os.PathLike[str], device: Device | DeviceConfig | str, *,
            runs: int = 50, warmup: int = 5, min_duration_s: float = 0.0,
            threads: int | None = None, cpus: str | None = None, layers: bool = False,
            layer_runs: int = 20, timeout: float | None = None, seed: int = 0) -> Profile:
    """Run `model` on `device` and measure it (see the module docstring).

    `device` may be an open `Device` (left open) or anything `open_device` takes (opened and
    closed here). `timeout` bounds the runner (default: the device config's); past it the runner
    is killed and DeviceTimeoutError raised.
    """
    from sdk.devices import open_device

    if not isinstance(device, Device):
        with open_device(device) as dev:
            return profile(model, dev, runs=runs, warmup=warmup, min_duration_s=min_duration_s,
                           threads=threads, cpus=cpus, layers=layers, layer_runs=layer_runs,
                           timeout=timeout, seed=seed)
    path = Path(model)
    if not path.is_file():
        raise RunnerError(f"no such model file: {path}", device=device.name)
    if path.suffix.lower() != ".tflite":
        raise RunnerError(f"{path.name}: only .tflite models have a runner here (the LiteRT "
                          "Python runner); .edge models need edge-run", device=device.name)
    if runs < 1 or warmup < 0 or min_duration_s < 0:
        raise ValueError("runs must be >= 1, warmup and min_duration_s >= 0")
    config = device.config
    info = device.info()
    threads = threads if threads is not None else config.threads
    taskset, note = resolve_cpus(cpus if cpus is not None else config.cpus, info)
    notes = [note] if note else []
    digest = sha256_file(path)
    # models are stored by content, so two files with the same name never collide
    remote_model = device.push(path, f"models/{digest[:16]}/{path.name}")
    runner = device.push(RUNNER_SCRIPT, "runners/litert_runner.py")
    # the host's own runner is this Python (it has LiteRT: the SDK needs it)
    python = config.runner.python or (sys.executable if device.transport == "local" else "python3")
    argv: list[str] = [python, runner, "--model", remote_model, "--runs", str(runs),
                       "--warmup", str(warmup), "--min-duration", repr(float(min_duration_s)),
                       "--seed", str(seed)]
    if threads:
        argv += ["--threads", str(threads)]
    if config.runner.litert_backend:
        argv += ["--backend", config.runner.litert_backend]
    if not config.runner.xnnpack:
        argv.append("--no-xnnpack")
    for delegate in config.delegates:
        argv += ["--delegate", ";".join([delegate.path, *(f"{k}={v}" for k, v in
                                                         delegate.options.items())])]
    if layers:
        bundle = layer_bundle(path)
        bundle_name = f"models/{digest[:16]}/{path.stem}.layers"
        local = _cache_file(bundle, f"{digest[:16]}-{path.stem}.layers")
        argv += ["--layers", device.push(local, bundle_name), "--layer-runs", str(layer_runs)]
    before = device.thermal_state()
    result = device.run(argv, timeout=timeout, cpus=taskset, check=False)
    after = device.thermal_state()
    data = _parse_runner_output(result.stdout)
    if result.exit_code != 0 or data is None or "error" in data:
        message = (data or {}).get("error") or (result.stderr.strip() or result.stdout.strip())
        if result.exit_code == 127:
            raise RunnerError(f"no Python at {python!r} on the device; set runner.python in "
                              "the device config", device=device.name, command=result.command)
        if result.exit_code in (_EXIT_NO_RUNTIME, _EXIT_MODEL):
            raise RunnerError(str(message)[-2000:], device=device.name, command=result.command)
        raise DeviceCommandError(f"runner failed (exit code {result.exit_code}): "
                                 f"{str(message)[-2000:]}", device=device.name,
                                 command=result.command, exit_code=result.exit_code,
                                 stdout=result.stdout, stderr=result.stderr)
    kernel = "builtin" if not data.get("xnnpack", True) else "xnnpack"
    isa = info.abi or info.kernel_arch or "?"
    kernels = [f"litert-{kernel} ({isa})",
               *(f"delegate {d.name or d.path}" for d in config.delegates)]
    latencies = tuple(float(x) for x in data["latencies_ms"])
    stats = (LatencyStats(**data["stats"]) if isinstance(data.get("stats"), dict)
             else LatencyStats.from_samples(latencies))
    return Profile(
        model=str(path), model_sha256=digest, device=device.name, runner="litert-python",
        backend=str(data.get("backend", "")), latency=stats,
        latencies_ms=latencies, warmup_ms=tuple(float(x) for x in data.get("warmup_ms", [])),
        init_ms=float(data["init_ms"]), first_run_ms=float(data["first_run_ms"]),
        duration_s=float(data["duration_s"]), peak_rss_bytes=data.get("peak_rss_bytes"),
        threads=threads, cpus=taskset, kernels=tuple(kernels),
        layers=tuple(LayerTiming(int(x["index"]), str(x["name"]), str(x["op"]),
                                 None if x.get("ms") is None else float(x["ms"]), x.get("error"))
                     for x in data.get("layers", [])),
        layer_method="isolated-op: each operator timed alone in its own interpreter (median)"
        if layers else None,
        settings={"runs": runs, "warmup": warmup, "min_duration_s": float(min_duration_s),
                  "seed": seed, "xnnpack": bool(data.get("xnnpack", True))},
        device_info=info, state_before=before, state_after=after, notes=tuple(notes),
        cpu_affinity=None if data.get("affinity") is None else tuple(data["affinity"]))


def _parse_runner_output(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def _cache_file(data: bytes, name: str) -> Path:
    """A host file holding `data` (content-addressed under the user's cache dir)."""
    from sdk.fileio import atomic_write_bytes

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgesdk" / "layers"
    path = base / f"{hashlib.sha256(data).hexdigest()[:16]}-{name}"
    if not path.exists():
        atomic_write_bytes(path, data)
    return path


__all__ = ["LatencyStats", "LayerTiming", "Profile", "layer_bundle", "percentile", "profile",
           "resolve_cpus"]
