"""Per-layer latencies for `sdk.export(model, "mixed", budget_ms=...)`.

By default each uniform probe of the search (all-INT8, all-INT4, all-2-bit, all-ternary) is
profiled on this host (`sdk.profile(file, "local")`: per-layer times from the runner, the
LiteRT Python runner timing each operator alone for a .tflite, edge-run's op profile for an
.edge file), cached by the file's SHA-256 and this host's CPU
(~/.cache/edgesdk/mixed-latency/). Or the caller passes a per-layer table measured elsewhere
(a device): a `LatencyTable`, its dict, or its JSON file (`LatencyTable.to_json`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sdk.base.fileio import atomic_write_text
from sdk.base.host import cpu_name
from sdk.converters.quantize.mixed import LayerProfiler
from sdk.converters.quantize.mixed_latency import LatencyTable, read_table
from sdk.converters.quantize.planner import Attempt

#: timed runs per probe (each operator alone, so a small model's probe takes about a second)
RUNS = 20
WARMUP = 3


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgesdk" / \
        "mixed-latency"


class HostProfiler:
    """A `LayerProfiler` that profiles each export on this host, cached."""

    def __init__(self, suffix: str = ".tflite", runs: int = RUNS, warmup: int = WARMUP,
                 cache: Path | None = None) -> None:
        self.suffix, self.runs, self.warmup = suffix, runs, warmup
        self.cache = cache or cache_dir()
        self.cpu = cpu_name()
        self.source = f"this host ({self.cpu}), per-layer profile, {runs} runs"
        self.hits = 0

    def __call__(self, attempt: Attempt, label: str) -> Sequence[tuple[str, float]]:
        data: bytes = attempt.payload.data
        key = hashlib.sha256(data + self.cpu.encode() + str(self.runs).encode()).hexdigest()
        path = self.cache / f"{key[:24]}.json"
        if path.is_file():
            self.hits += 1
            return [(str(op), float(ms)) for op, ms in json.loads(path.read_text())["layers"]]
        from sdk.devices.profile import profile

        with tempfile.TemporaryDirectory() as tmp:
            model = Path(tmp) / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', label)}{self.suffix}"
            model.write_bytes(data)
            prof = profile(model, "local", runs=self.runs, warmup=self.warmup, layers=True)
        layers = [(t.op, float(t.mean_ms if t.mean_ms is not None else float("nan")))
                  for t in prof.per_layer or ()]
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"cpu": self.cpu, "runner": prof.runner,
                                            "label": label, "layers": layers}))
        return layers


def latency_source(latency_profile: Any, suffix: str) -> LatencyTable | LayerProfiler:
    """What `sdk.export(..., latency_profile=)` names: None (this host, profiled), a
    LatencyTable, its dict or a path to its JSON."""
    if latency_profile is None:
        return HostProfiler(suffix)
    if isinstance(latency_profile, LatencyTable):
        return latency_profile
    if isinstance(latency_profile, Mapping):
        return LatencyTable.from_dict(latency_profile, source="latency_profile (dict)")
    return read_table(latency_profile)


__all__ = ["HostProfiler", "cache_dir", "latency_source"]
