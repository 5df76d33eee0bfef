"""`edge-run`: our static runner for `.edge` models, one build per ABI.

The binaries come from `sdk.base.native.edge_run_path(abi)` (issue 5: `make` builds x86_64, and the
aarch64 and armv7 cross builds) or from the device config's `runner.edge_run`. A binary of the
wrong ABI is refused before it is pushed. edge-run pins itself (`--cpus`), reports the
architecture and CPU features it detected, the kernel of every layer, and per-layer times.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

from sdk.base.artifacts import ABIS, find_artifact
from sdk.base.errors import NativeBuildError
from sdk.devices.base import CommandResult
from sdk.devices.errors import RunnerError
from sdk.devices.runners.base import (
    LayerTime,
    Runner,
    RunnerReport,
    RunRequest,
    StageProgress,
    parse_marked_json,
)

#: ABIs edgesdk builds edge-run for
EDGE_RUN_ABIS = ABIS


def local_edge_run(abi: str) -> Path:
    """The wheel's (or checkout's, or $EDGESDK_BIN_DIR's) edge-run for `abi`, from the one lookup
    (sdk.base.artifacts); RunnerError naming where it looked when there is none."""
    if abi not in EDGE_RUN_ABIS:
        raise RunnerError(f"wrong ABI: no edge-run build for {abi}; edgesdk builds edge-run "
                          f"for {', '.join(EDGE_RUN_ABIS)}")
    try:
        return find_artifact("edge-run", abi)
    except NativeBuildError as exc:
        raise RunnerError(str(exc)) from exc


class EdgeRunRunner(Runner):
    name = "edge-run"
    suffixes = (".edge",)
    #: edge-run takes one sample per invocation
    batched_inputs = False
    pins_itself = True

    def __init__(self, device: Any):
        super().__init__(device)
        self.remote: str | None = None

    def prepare(self, progress: StageProgress | None = None) -> list[str]:
        configured = self.device.config.runner.edge_run
        abi = self.device.abi or "unknown"
        remote = None
        if configured:
            remote, local = self.configured_binary("edge_run", configured)
        else:
            try:
                local = local_edge_run(abi)
            except RunnerError as exc:
                raise RunnerError(str(exc), device=self.device.name) from None
        self.remote = remote or self.push_binary(local, "edge-run", progress)
        return [self.remote]

    def command(self, request: RunRequest) -> tuple[list[str], bool]:
        if self.remote is None:
            self.prepare()
        assert self.remote is not None
        argv = [self.remote, request.model, "--json", "--runs", str(request.runs),
                "--warmup", str(request.warmup)]
        threads = request.threads or self.device.config.threads
        if threads:
            argv += ["--threads", str(threads)]
        if request.cpus:
            argv += ["--cpus", request.cpus]
        if request.inputs:
            argv += ["--inputs", ",".join(request.inputs)]
        if request.outputs_dir:
            argv += ["--outputs", posixpath.join(request.outputs_dir, "out.npy")]
        if request.profile_layers:
            argv.append("--profile-layers")
        return argv, True

    def parse(self, result: CommandResult, request: RunRequest) -> RunnerReport:
        data = parse_marked_json(result, "", self.name, self.device)
        layers = data.get("layers") or []
        kernels = []
        for layer in layers:
            kernel = layer.get("kernel")
            if kernel and kernel not in kernels:
                kernels.append(kernel)
        per_layer = tuple(LayerTime(layer.get("label") or f"#{layer.get('index')}",
                                    layer.get("op", ""), layer.get("mean_ms"),
                                    layer.get("kernel", ""))
                          for layer in layers) if request.profile_layers else None
        peak = data.get("peak_rss_kb")
        runs = data.get("runs")
        timed_cpu = data.get("timed_cpu_ms")  # absent from an edge-run built before stop 29
        cpu_ms = (float(timed_cpu) / runs if isinstance(runs, int) and runs > 0
                  and isinstance(timed_cpu, (int, float)) and timed_cpu >= 0 else None)
        return RunnerReport(
            runner=self.name, runtime=f"edge-run (.edge {data.get('format_version', '?')})",
            machine=data.get("arch"), kernels=", ".join(kernels) or "edge kernels",
            isa=tuple(data.get("cpu_features") or ()), threads=data.get("threads"),
            init_ms=data.get("init_ms"), first_run_ms=data.get("first_run_ms"),
            latency_stats_ms={k: float(v) for k, v in (data.get("latency_ms") or {}).items()
                              if v is not None},
            timed_runs=int(data["runs"]) if isinstance(data.get("runs"), int) else None,
            peak_memory_bytes=int(peak) * 1024 if peak else None, per_layer=per_layer,
            outputs=tuple(o["path"] for o in data.get("outputs") or () if o.get("path")),
            raw=data, cpu_ms=cpu_ms)
