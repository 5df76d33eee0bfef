"""`benchmark_model`: TensorFlow Lite's benchmark tool, supplied by the user, for phones.

Phones have no Python, so .tflite models run through the `benchmark_model` binary built for the
phone's ABI (the device config's `runner.benchmark_model`: a host path we push, or
`device:/path`). It reports statistics, not every run, and cannot return outputs: `validate`
needs a Python runner.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sdk.devices.base import CommandResult
from sdk.devices.errors import RunnerError
from sdk.devices.runners.base import (
    LayerTime,
    Runner,
    RunnerReport,
    RunRequest,
    StageProgress,
)
from sdk.devices.runners.delegates import delegates_for

_NUM = r"([0-9.]+(?:e[+-]?[0-9]+)?)"
_TIMINGS = re.compile(rf"Inference timings in us: Init: {_NUM}, First inference: {_NUM}, "
                      rf"Warmup \(avg\): {_NUM}, Inference \(avg\): {_NUM}")
_COUNT = re.compile(rf"count=(\d+) first={_NUM} curr={_NUM} min={_NUM} max={_NUM} avg={_NUM} "
                    rf"std={_NUM}(?: p5={_NUM} median={_NUM} p95={_NUM})?")
_MEMORY = re.compile(rf"(?:Peak memory footprint|Memory footprint delta from the start of the "
                     rf"tool) \(MB\): init={_NUM} overall={_NUM}")
_MEMORY_MONITOR = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring: "
                             rf"{_NUM}")
_RUN_ORDER = "Operator-wise Profiling Info for Regular Benchmark Runs"


def parse_benchmark_output(text: str) -> dict[str, Any]:
    """The numbers of a benchmark_model log (times in ms, memory in bytes)."""
    out: dict[str, Any] = {}
    timings = _TIMINGS.search(text)
    if timings:
        init, first, _warm, avg = (float(x) for x in timings.groups())
        out.update(init_ms=init / 1e3, first_run_ms=first / 1e3, mean_ms=avg / 1e3)
    counts = _COUNT.findall(text)
    if counts:  # the last one is the timed runs (the first is the warmup)
        c = counts[-1]
        stats = {"count": float(c[0]), "min": float(c[3]) / 1e3, "max": float(c[4]) / 1e3,
                 "mean": float(c[5]) / 1e3, "std": float(c[6]) / 1e3}
        if c[8]:
            stats["p50"] = float(c[8]) / 1e3
        out["stats"] = stats
    memory = _MEMORY.search(text)
    monitor = _MEMORY_MONITOR.search(text)
    if monitor:
        out["peak_memory_bytes"] = int(float(monitor.group(1)) * 1024 * 1024)
    elif memory:
        out["peak_memory_bytes"] = int(float(memory.group(2)) * 1024 * 1024)
    layers = []
    at = text.find(_RUN_ORDER)
    if at >= 0:
        columns: list[str] = []
        for line in text[at:].splitlines()[1:]:
            if "Top by Computation Time" in line or "Summary by node type" in line:
                break
            cells = [c.strip() for c in line.strip().split("\t") if c.strip()]
            if cells and cells[0] == "[node type]":
                columns = cells
                continue
            if not columns or len(cells) != len(columns):
                continue
            row = dict(zip(columns, cells, strict=True))
            try:
                layers.append(LayerTime(row.get("[Name]", "").strip("[]"), row["[node type]"],
                                        float(row["[avg ms]"])))
            except (KeyError, ValueError):
                continue
    if layers:
        out["layers"] = layers
    delegated = re.search(r"Replacing (\d+) out of (\d+) node\(s\) with delegate \(([^)]+)\)",
                          text)
    if delegated:
        out["delegated"] = f"{delegated.group(1)}/{delegated.group(2)} nodes to " \
                           f"{delegated.group(3)}"
    return out


class BenchmarkModelRunner(Runner):
    name = "benchmark_model"
    suffixes = (".tflite",)
    returns_outputs = False
    handles_min_duration = True  # --min_secs: at least num_runs runs and min_secs seconds

    def __init__(self, device: Any):
        super().__init__(device)
        self.remote: str | None = None
        self._delegate_args: list[str] = []

    def prepare(self, progress: StageProgress | None = None) -> list[str]:
        spec = self.device.config.runner.benchmark_model
        if not spec:
            raise RunnerError("no benchmark_model configured (runner.benchmark_model)",
                              device=self.device.name)
        remote, local = self.configured_binary("benchmark_model", spec)
        self.remote = remote or self.push_binary(local, "benchmark_model", progress)
        return [self.remote]

    def prepare_model(self, local_model: Path, progress: StageProgress | None = None) -> None:
        self._delegate_args = []
        delegates = delegates_for(self.device, local_model, progress)
        if len(delegates) > 1:
            raise RunnerError("benchmark_model loads one external delegate; the device config "
                              "and the model need " + str(len(delegates)), device=self.device.name)
        for path, options in delegates:
            self._delegate_args.append(f"--external_delegate_path={path}")
            if options:
                self._delegate_args.append("--external_delegate_options=" + ";".join(
                    f"{k}:{v}" for k, v in options.items()))

    def code_files(self) -> list[str]:
        """The external delegate library (benchmark_model itself is argv[0])."""
        mark = "--external_delegate_path="
        return [a[len(mark):] for a in self._delegate_args if a.startswith(mark)]

    def command(self, request: RunRequest) -> tuple[list[str], bool]:
        if self.remote is None:
            self.prepare()
        assert self.remote is not None
        argv = [self.remote, f"--graph={request.model}", f"--num_runs={request.runs}",
                f"--warmup_runs={request.warmup}", f"--min_secs={request.min_duration_s:g}",
                "--warmup_min_secs=0", "--report_peak_memory_footprint=true"]
        threads = request.threads or self.device.config.threads
        if threads:
            argv.append(f"--num_threads={threads}")
        if request.profile_layers:
            argv.append("--enable_op_profiling=true")
        if not self.device.config.runner.xnnpack:
            argv.append("--use_xnnpack=false")
        argv += self._delegate_args
        return argv, True

    def parse(self, result: CommandResult, request: RunRequest) -> RunnerReport:
        text = result.stdout + "\n" + result.stderr
        data = parse_benchmark_output(text)
        if result.exit_code != 0 or "mean_ms" not in data:
            tail = text.strip()[-800:]
            raise RunnerError(f"benchmark_model failed (exit code {result.exit_code}): {tail}",
                              device=self.device.name, command=result.command)
        stats = data.get("stats", {"mean": data["mean_ms"]})
        kernels = "XNNPACK" if self.device.config.runner.xnnpack else "LiteRT builtin kernels"
        if data.get("delegated"):
            kernels += f"; delegated {data['delegated']}"
        return RunnerReport(
            runner=self.name, runtime="TFLite benchmark_model", machine=self.device.abi,
            kernels=kernels, isa=(), threads=request.threads or self.device.config.threads,
            init_ms=data.get("init_ms"), first_run_ms=data.get("first_run_ms"),
            latency_stats_ms={k: v for k, v in stats.items() if k != "count"},
            # --min_secs: it keeps going past --num_runs until the seconds are up
            timed_runs=int(stats["count"]) if "count" in stats else None,
            peak_memory_bytes=data.get("peak_memory_bytes"),
            per_layer=tuple(data["layers"]) if data.get("layers") else None,
            raw={"parsed": json.loads(json.dumps(
                {k: v for k, v in data.items() if k != "layers"}))})
