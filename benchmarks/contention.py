"""Contention: how much slower edge-run and LiteRT (XNNPACK) get when another process keeps a
core busy, and on a simulated big.LITTLE CPU. One run, one host; JSON on stdout.

    python benchmarks/contention.py [--quick] [--threads 1,2] [--rounds 5]
                                    [--edge-run PATH[,PATH...]] [--output contention.json]

Models: the .edge files of benchmarks/edge_models.py (ResNet-like and MobileNet-like, int8 and
the schemes of --schemes), built once into --workdir and reused, so that two runs (an old and
a new edge-run, say) time the same files. LiteRT runs the same INT8 .tflite in this process
(`num_threads`, XNNPACK); edge-run runs as a subprocess (`--threads`, p50 of its runs).

Conditions, measured in the same rounds (each round starts every condition afresh, in turn):
  * idle:      nothing else started by us;
  * busy:      one competing process spinning (`while True: pass`, SCHED_OTHER, not pinned);
  * busy-pin0: the same process pinned to CPU 0 of our CPU set, while our threads may run on
    any: the core it shares runs whichever of our threads lands there at about half speed;
  * little:    a simulated big.LITTLE CPU, where a cgroup-v1 `cpu` controller is writable
    (root): one thread of the engine is throttled to half a CPU (cfs quota 1 ms per 2 ms
    period, the group's weight at its maximum) while the others run free: the worker its
    pool created last, or the only thread of a 1-thread run. It runs at full speed half the
    time rather than at half speed all the time, as a little core would; both make its share
    late. Where no such cgroup is found the condition is left out and the JSON says so
    (`little_core`).
The figure per cell is the median over the rounds of each round's p50; the slowdown is that
median under a condition over the idle median. Above 1: slower. The bar of issue 17: with one
busy process, our 2-thread slowdown <= LiteRT's.

Beside it, each engine's own CPU time per inference (`median_cpu_ms`, all its threads, spinning
included: what a battery pays) and its ratio to the p50 (`cpu_per_wall`): both engines read a
process CPU clock in their own process just before and after the timed runs (LiteRT here,
edge-run its `timed_cpu_ms`), a difference of one monotonic clock, never negative, with no load
time and no time spent waiting for a core in it. An edge-run that reports no `timed_cpu_ms`
(built before it did) gives null there and the reason in `cpu_unmeasured`. (Before, edge-run's
figure was its whole rusage less its wall-clock `init_ms`: on a loaded host the load waited for
a core, init_ms outgrew the CPU it stood for, and the difference went negative.)

Other processes of the host are not ours to stop: the JSON records the load average before
and after, and the CPU model. On a shared host, `--nice -20` (root) runs the benchmark, its
edge-run children and its competitor at one raised priority, so that the host's other load
weighs little beside the condition under test (the competitor is a peer at the same priority).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import edge_models
import numpy as np

CONDITIONS = ("idle", "busy", "busy-pin0", "little")
SPINNER = "while True:\n    pass\n"
CPU_CGROUP = Path("/sys/fs/cgroup/cpu")  # cgroup v1 `cpu` controller


class LittleCore:
    """A cgroup (v1 `cpu`) that gives its threads half a CPU: 1 ms of every 2 ms. Threads are
    added one by one (`tasks` takes thread ids) and moved back to the root group on exit."""

    def __init__(self) -> None:
        self.path = CPU_CGROUP / f"edgesdk-little-{os.getpid()}"
        self.tids: list[int] = []

    @staticmethod
    def available() -> bool:
        return (CPU_CGROUP / "cpu.cfs_quota_us").exists() and os.access(CPU_CGROUP, os.W_OK)

    def __enter__(self) -> LittleCore:
        self.path.mkdir(exist_ok=True)
        (self.path / "cpu.cfs_period_us").write_text("2000")
        (self.path / "cpu.cfs_quota_us").write_text("1000")
        # The most weight a group can have: only the quota limits it, not the other groups of
        # a loaded host (with the default 1024 it got a tenth of a CPU at load 22, not half).
        (self.path / "cpu.shares").write_text("262144")
        return self

    def add(self, tid: int) -> None:
        (self.path / "tasks").write_text(str(tid))
        self.tids.append(tid)

    def __exit__(self, *exc: object) -> None:
        for tid in self.tids:
            with contextlib.suppress(OSError):  # the thread is gone
                (CPU_CGROUP / "tasks").write_text(str(tid))
        self.tids.clear()
        self.path.rmdir()


def thread_ids(pid: int | str = "self") -> set[int]:
    try:
        return {int(t) for t in os.listdir(f"/proc/{pid}/task")}
    except OSError:
        return set()


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor()
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def build_models(names: list[str], schemes: list[str], size: int,
                 workdir: Path) -> dict[str, dict[str, Path]]:
    """{model: {"tflite": int8 .tflite, scheme: .edge}} in workdir, built once."""
    from sdk.converters.edge import write_edge
    from sdk.converters.tflite import read_tflite

    builders = {"resnet-like": edge_models.resnet_like,
                "mobilenet-like": edge_models.mobilenet_like}
    workdir.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, Path]] = {}
    for name in names:
        tfl = workdir / f"{name}_{size}_int8.tflite"
        paths = {"tflite": tfl}
        for scheme in schemes:
            paths[scheme] = workdir / f"{name}_{size}_{scheme}.edge"
        files[name] = paths
        if all(p.exists() for p in paths.values()):
            continue
        print(f"# building {name} at {size}x{size} ...", file=sys.stderr)
        rng = np.random.default_rng(0)
        model = builders[name](size)
        edge_models._randomize_batchnorm(model, rng)
        int8 = edge_models.convert(model, size, True, rng)
        tfl.write_bytes(int8)
        for scheme in schemes:
            ir = read_tflite(int8)
            if scheme != "int8":
                ir, _ = edge_models.requantize_weights(ir, scheme)
            recipe = scheme if scheme == "int8" else f"{scheme} (benchmark)"
            write_edge(ir, paths[scheme], recipe=recipe)
    return files


class Competitor:
    """One spinning Python process, pinned to one CPU or not; stopped on exit."""

    def __init__(self, pin_cpu: int | None) -> None:
        self.pin_cpu = pin_cpu
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Competitor:
        pin = self.pin_cpu

        def setup() -> None:
            if pin is not None:
                os.sched_setaffinity(0, {pin})

        self.proc = subprocess.Popen([sys.executable, "-c", SPINNER], preexec_fn=setup)
        time.sleep(0.3)  # let it start spinning
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


def competitor(condition: str, cpus: list[int]) -> Competitor | None:
    if condition == "idle":
        return None
    return Competitor(cpus[0] if condition == "busy-pin0" else None)


@dataclass
class Timing:
    """One cell of one round: p50 latency and the CPU time one inference cost (all threads,
    spinning included: what a phone pays in battery), both in ms; cpu_ms None where the engine
    did not measure it (`cpu_unmeasured` says why)."""

    p50_ms: float
    cpu_ms: float | None
    cpu_unmeasured: str | None = None


def throttle_last_thread(proc: subprocess.Popen[str], threads: int, little: LittleCore) -> None:
    """Puts the edge-run child's last thread in `little` as soon as it exists: the process
    itself for 1 thread, else the first worker its pool starts (within its model load, before
    its warm-up runs end); RuntimeError when the process ends first."""
    if threads == 1:
        little.add(proc.pid)
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        workers = sorted(thread_ids(proc.pid) - {proc.pid})
        if workers:
            little.add(workers[-1])
            return
        time.sleep(0.0002)
    raise RuntimeError("edge-run started no worker thread in time to throttle it")


def time_edge_run(exe: str, path: Path, threads: int, runs: int, warmup: int,
                  little: LittleCore | None = None) -> Timing:
    """edge-run as a child; the CPU time per inference is its `timed_cpu_ms` (its process CPU
    clock around its timed runs, all threads) over `runs`. Not the child's rusage less its
    init_ms: that subtracts a wall time from a CPU time, and went negative on a loaded host."""
    proc = subprocess.Popen([exe, str(path), "--runs", str(runs), "--warmup", str(warmup),
                             "--threads", str(threads), "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    if little is not None:
        throttle_last_thread(proc, threads, little)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{exe} {path} failed ({proc.returncode}): {stderr.strip()[-500:]}")
    report = json.loads(stdout)
    return Timing(float(report["latency_ms"]["p50"]), *edge_models.edge_run_cpu_ms(report, runs))


class LiteRT:
    """A LiteRT interpreter (XNNPACK) kept across rounds."""

    def __init__(self, model: bytes, threads: int) -> None:
        import threading

        from sdk.run.litert import backend

        before = thread_ids()
        self.interp = backend().interpreter(model_content=model, num_threads=threads)
        self.interp.allocate_tensors()
        for d in self.interp.get_input_details():
            x = np.random.default_rng(0).integers(-128, 128, d["shape"], dtype=np.int8)
            self.interp.set_tensor(d["index"], x.astype(d["dtype"]))
        self.interp.invoke()  # XNNPACK's workers exist after the first invoke
        workers = sorted(thread_ids() - before)
        # The thread "little" throttles: the last worker started, or (1 thread) the caller.
        self.last_thread = workers[-1] if threads > 1 and workers else threading.get_native_id()

    def p50(self, runs: int, warmup: int) -> Timing:
        """p50 of `runs` invokes; CPU time per invoke from this process's CPU clock (all its
        threads: XNNPACK's workers, spinning included) over the timed runs."""
        for _ in range(warmup):
            self.interp.invoke()
        times = []
        cpu0 = time.process_time()
        for _ in range(runs):
            t0 = time.perf_counter()
            self.interp.invoke()
            times.append((time.perf_counter() - t0) * 1000)
        cpu_ms = (time.process_time() - cpu0) * 1000 / runs
        return Timing(float(np.median(times)), cpu_ms)


def summarize(timings: dict[str, list[Timing]]) -> dict[str, Any]:
    """One engine's cell from its per-round timings under each condition (idle first): median
    p50s, slowdowns, and the median CPU time per inference with its ratio to the median p50,
    null under a condition where a round did not measure CPU time (`cpu_unmeasured`: why)."""
    conditions = list(timings)
    med = {c: statistics.median(x.p50_ms for x in timings[c]) for c in conditions}
    cpu: dict[str, float | None] = {}
    unmeasured: dict[str, str] = {}
    for c in conditions:
        reasons = [x.cpu_unmeasured or "no CPU time" for x in timings[c] if x.cpu_ms is None]
        if reasons:
            cpu[c] = None
            unmeasured[c] = reasons[0]
        else:
            cpu[c] = statistics.median(x.cpu_ms for x in timings[c] if x.cpu_ms is not None)
    cell: dict[str, Any] = {
        "median_p50_ms": {c: round(v, 3) for c, v in med.items()},
        "rounds_p50_ms": {c: [round(x.p50_ms, 3) for x in timings[c]] for c in conditions},
        "slowdown": {c: round(med[c] / med[conditions[0]], 3) for c in conditions[1:]},
        # CPU time per inference (all threads) and its ratio to the p50 wall time: about
        # `threads` when every thread computes or spins the whole time.
        "median_cpu_ms": {c: None if v is None else round(v, 3) for c, v in cpu.items()},
        "cpu_per_wall": {c: None if v is None else round(v / med[c], 2) for c, v in cpu.items()},
    }
    if unmeasured:
        cell["cpu_unmeasured"] = unmeasured
    return cell


def cgroup_cpu_max_writable() -> bool:
    path = Path("/sys/fs/cgroup/cpu.max")
    return path.exists() and os.access(path, os.W_OK)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="96x96 inputs, few runs")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (median over them)")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per cell and round")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--models", default="resnet-like,mobilenet-like")
    parser.add_argument("--schemes", default="int8", help="the .edge files timed (edge_models)")
    parser.add_argument("--edge-run", default="",
                        help="edge-run binaries to compare, comma-separated (label=PATH or "
                             "PATH); default: the one sdk.base.native finds")
    parser.add_argument("--workdir", default=str(Path.home() / ".cache/edgesdk/contention"),
                        help="where the models are built once and reused")
    parser.add_argument("--nice", type=int, default=0,
                        help="niceness increment for this process and its children (root for <0)")
    parser.add_argument("--output", help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.nice:
        os.nice(args.nice)
    size = 96 if args.quick else 160
    rounds = args.rounds or (3 if args.quick else 5)
    runs = args.runs or (10 if args.quick else 30)
    warmup = args.warmup or (2 if args.quick else 5)
    threads = [int(t) for t in args.threads.split(",")]
    schemes = args.schemes.split(",")
    names = args.models.split(",")

    binaries: dict[str, str] = {}
    for item in filter(None, args.edge_run.split(",")):
        label, _, path = item.rpartition("=")
        binaries[label or "edge"] = path
    if not binaries:
        from sdk.base import native

        arch = "x86_64" if platform.machine() == "x86_64" else "arm64-v8a"
        binaries["edge"] = str(native.edge_run_path(arch))

    files = build_models(names, schemes, size, Path(args.workdir))
    cpus = sorted(os.sched_getaffinity(0))
    litert = {(m, t): LiteRT(files[m]["tflite"].read_bytes(), t) for m in names for t in threads}
    load_before = os.getloadavg()

    # samples[(engine, model, threads, condition)] = per-round timings
    samples: dict[tuple[str, str, int, str], list[Timing]] = {}
    little_core = LittleCore.available()
    conditions = CONDITIONS if little_core else CONDITIONS[:-1]
    for r in range(rounds):
        print(f"# round {r + 1}/{rounds}", file=sys.stderr)
        for condition in conditions:
            comp = competitor(condition, cpus)
            if comp is not None:
                comp.__enter__()
            try:
                for m in names:
                    for t in threads:
                        key = ("litert_int8", m, t, condition)
                        if condition == "little":
                            with LittleCore() as little:
                                little.add(litert[(m, t)].last_thread)
                                timing = litert[(m, t)].p50(runs, warmup)
                        else:
                            timing = litert[(m, t)].p50(runs, warmup)
                        samples.setdefault(key, []).append(timing)
                        for label, exe in binaries.items():
                            for scheme in schemes:
                                key = (f"{label}_{scheme}", m, t, condition)
                                if condition == "little":
                                    with LittleCore() as little:
                                        timing = time_edge_run(exe, files[m][scheme], t, runs,
                                                               warmup, little)
                                else:
                                    timing = time_edge_run(exe, files[m][scheme], t, runs,
                                                           warmup)
                                samples.setdefault(key, []).append(timing)
            finally:
                if comp is not None:
                    comp.__exit__()

    engines = sorted({k[0] for k in samples})
    results: dict[str, Any] = {}
    for m in names:
        for t in threads:
            cell: dict[str, Any] = {}
            for e in engines:
                cell[e] = summarize({c: samples[(e, m, t, c)] for c in conditions})
            results.setdefault(m, {})[str(t)] = cell

    bar: dict[str, Any] = {}
    if 2 in threads:
        for m in names:
            lite = results[m]["2"]["litert_int8"]["slowdown"]["busy"]
            for e in engines:
                if e == "litert_int8":
                    continue
                ours = results[m]["2"][e]["slowdown"]["busy"]
                bar[f"{m}/{e}"] = {"ours_busy_slowdown": ours, "litert_busy_slowdown": lite,
                                   "met": ours <= lite}
    report = {
        "host": {"cpu": cpu_model(), "machine": platform.machine(), "cpus": cpus,
                 "loadavg_before": [round(x, 2) for x in load_before],
                 "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                 "cgroup_cpu_max_writable": cgroup_cpu_max_writable(),
                 "little_core": (f"{CPU_CGROUP} (cgroup v1 cpu): one thread at 1 ms per 2 ms"
                                 if little_core else "no writable cgroup-v1 cpu controller: "
                                 "condition left out")},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "niceness": os.nice(0),
        "size": size, "rounds": rounds, "runs": runs, "warmup": warmup,
        "edge_run": binaries, "conditions": list(conditions),
        "results": results,
        "bar_2_threads_busy": bar,
    }
    return edge_models.emit_report(report, args.output)


if __name__ == "__main__":
    sys.exit(main())
