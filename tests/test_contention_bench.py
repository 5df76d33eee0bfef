"""benchmarks/contention.py's measuring parts, without models: the CPU time of an edge-run child
is the one it measured around its timed runs (never its rusage less a wall-clock init time,
which went negative on a loaded host), a cell without it says so, and the little-core cgroup
throttles a thread it is given and lets it go again. benchmarks/edge_models.py's edge-run
timing takes the same figure (it took two children's rusage difference, clamped at 0)."""

from __future__ import annotations

import importlib
import stat
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def benchmark(name: str) -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def contention() -> ModuleType:
    return benchmark("contention")


def fake_edge_run(tmp_path: Path, busy_s: float, init_ms: float,
                  timed_cpu_ms: float | None = None) -> Path:
    """An executable that burns `busy_s` of CPU and prints edge-run's JSON fields (without
    `timed_cpu_ms` where it is None, as edge-run did before it measured it)."""
    exe = tmp_path / "fake-edge-run"
    report: dict[str, object] = {
        "init_ms": init_ms, "latency_ms": {"p50": 1.5, "mean": 1.6, "min": 1.4},
        "peak_rss_kb": 1000, "arena_bytes": 64, "layers": [{"op": "CONV_2D", "kernel": "k"}]}
    if timed_cpu_ms is not None:
        report["timed_cpu_ms"] = timed_cpu_ms
    exe.write_text(f"#!{sys.executable}\n"
                   "import json, time\n"
                   f"end = time.process_time() + {busy_s}\n"
                   "while time.process_time() < end:\n"
                   "    pass\n"
                   f"print(json.dumps({report!r}))\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def test_edge_run_cpu_time_is_its_timed_runs_own(tmp_path: Path) -> None:
    # A loaded host: the load waited 250 ms for a core (init_ms is wall time) while the whole
    # process burnt ~50 ms of CPU. The old figure, rusage less init_ms over 1 + 0 + 9
    # inferences, was (50 + start - 250) / 10 < 0; the timed runs measured 90 ms: 10 each.
    bench = contention()
    exe = fake_edge_run(tmp_path, busy_s=0.05, init_ms=250.0, timed_cpu_ms=90.0)
    timing = bench.time_edge_run(str(exe), tmp_path / "model.edge", threads=1, runs=9, warmup=0)
    assert timing.p50_ms == 1.5
    assert timing.cpu_ms == 10.0 and timing.cpu_unmeasured is None, timing


def test_an_edge_run_without_timed_cpu_leaves_it_unmeasured(tmp_path: Path) -> None:
    bench = contention()
    exe = fake_edge_run(tmp_path, busy_s=0.05, init_ms=0.0)
    timing = bench.time_edge_run(str(exe), tmp_path / "model.edge", threads=1, runs=9, warmup=0)
    assert timing.p50_ms == 1.5 and timing.cpu_ms is None
    assert "timed_cpu_ms" in (timing.cpu_unmeasured or ""), timing


def test_edge_models_takes_edge_runs_timed_cpu(tmp_path: Path) -> None:
    # The process burns ~60 ms of CPU outside its timed runs (load, warm-up) and says its 9
    # timed runs took 90 ms: 10 a run. The old figure, the rusage of this run less that of a
    # one-run edge-run (the same 60 ms), clamped at 0, was 0 (and speedup_cpu divided by it).
    bench = benchmark("edge_models")
    exe = fake_edge_run(tmp_path, busy_s=0.06, init_ms=250.0, timed_cpu_ms=90.0)
    row = bench.time_edge(tmp_path / "model.edge", 1, 9, 0, exe=exe)
    assert row["cpu_ms"] == 10.0 and "cpu_unmeasured" not in row, row
    assert (row["p50_ms"], row["mean_ms"], row["min_ms"]) == (1.5, 1.6, 1.4)
    assert row["kernels"] == ["k"]
    old = bench.time_edge(tmp_path / "model.edge", 1, 9, 0, exe=fake_edge_run(tmp_path, 0.0, 0.0))
    assert old["cpu_ms"] is None and "timed_cpu_ms" in old["cpu_unmeasured"], old


def test_edge_models_leaves_an_unmeasured_cpu_ratio_null() -> None:
    bench = benchmark("edge_models")
    rounds = [{"p50_ms": 2.0, "min_ms": 1.0, "cpu_ms": 4.0, "kernels": ["a"]},
              {"p50_ms": 4.0, "min_ms": 2.0, "cpu_ms": None, "kernels": ["a"]}]
    row = bench._median_of_rounds(rounds)
    assert row["p50_ms"] == 3.0 and row["min_ms"] == 1.0 and row["cpu_ms"] is None
    assert row["kernels"] == ["a"] and row["p50_ms_rounds"] == [2.0, 4.0]
    assert bench._median_of_rounds(rounds[:1])["cpu_ms"] == 4.0


def test_a_cell_reports_cpu_only_where_every_round_measured_it() -> None:
    bench = contention()
    T = bench.Timing
    cell = bench.summarize({
        "idle": [T(2.0, 3.0), T(2.0, 5.0), T(4.0, 4.0)],
        "busy": [T(4.0, 2.0), T(4.0, None, "edge-run reports no timed_cpu_ms"), T(6.0, 2.0)]})
    assert cell["median_p50_ms"] == {"idle": 2.0, "busy": 4.0}
    assert cell["slowdown"] == {"busy": 2.0}
    assert cell["median_cpu_ms"] == {"idle": 4.0, "busy": None}
    assert cell["cpu_per_wall"] == {"idle": 2.0, "busy": None}
    assert cell["cpu_unmeasured"] == {"busy": "edge-run reports no timed_cpu_ms"}
    assert "cpu_unmeasured" not in bench.summarize({"idle": [T(1.0, 1.0)]})


def test_a_failing_edge_run_is_an_error(tmp_path: Path) -> None:
    bench = contention()
    exe = tmp_path / "failing"
    exe.write_text(f"#!{sys.executable}\nimport sys\nsys.exit('no such model')\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(RuntimeError, match="no such model"):
        bench.time_edge_run(str(exe), tmp_path / "m.edge", threads=1, runs=1, warmup=0)


def test_little_core_throttles_the_thread_it_is_given() -> None:
    bench = contention()
    if not bench.LittleCore.available():
        pytest.skip("no writable cgroup-v1 cpu controller here (root and /sys/fs/cgroup/cpu "
                    "needed): the benchmark leaves its `little` condition out")
    result: dict[str, float] = {}

    def spin() -> None:
        tid = threading.get_native_id()
        with bench.LittleCore() as little:
            little.add(tid)
            assert str(tid) in (little.path / "tasks").read_text().split()
            wall0, cpu0 = time.monotonic(), time.thread_time()
            while time.monotonic() - wall0 < 0.4:
                pass
            result["share"] = (time.thread_time() - cpu0) / (time.monotonic() - wall0)
        result["released"] = float(not little.path.exists())

    t = threading.Thread(target=spin)
    t.start()
    t.join()
    # Half a CPU at most (1 ms per 2 ms), whatever else the host runs; the group is gone after.
    assert result["share"] < 0.7, result
    assert result["released"] == 1.0

