"""benchmarks/contention.py's measuring parts, without models: the CPU time of an edge-run child
comes from that child's own rusage (wait4), its init time is taken out, and the little-core
cgroup throttles a thread it is given and lets it go again."""

from __future__ import annotations

import stat
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def contention() -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import contention as module
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return module


def fake_edge_run(tmp_path: Path, busy_s: float, init_ms: float) -> Path:
    """An executable that burns `busy_s` of CPU and prints edge-run's JSON fields."""
    exe = tmp_path / "fake-edge-run"
    report = {"init_ms": init_ms, "latency_ms": {"p50": 1.5}}
    exe.write_text(f"#!{sys.executable}\n"
                   "import json, time\n"
                   f"end = time.process_time() + {busy_s}\n"
                   "while time.process_time() < end:\n"
                   "    pass\n"
                   f"print(json.dumps({report!r}))\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def test_edge_run_cpu_time_is_the_childs_own(tmp_path: Path) -> None:
    bench = contention()
    exe = fake_edge_run(tmp_path, busy_s=0.3, init_ms=0.0)
    timing = bench.time_edge_run(str(exe), tmp_path / "model.edge", threads=1, runs=9, warmup=0)
    assert timing.p50_ms == 1.5
    # 300 ms of CPU (plus the interpreter's start) over 1 + 0 + 9 inferences: >= 30 ms each.
    # Reading this process's CPU clock instead, or the children's totals, would give ~0.
    assert 30 <= timing.cpu_ms < 200, timing


def test_edge_run_init_time_is_taken_out(tmp_path: Path) -> None:
    bench = contention()
    exe = fake_edge_run(tmp_path, busy_s=0.3, init_ms=250.0)
    timing = bench.time_edge_run(str(exe), tmp_path / "model.edge", threads=1, runs=9, warmup=0)
    assert timing.cpu_ms < 25, timing  # (300 + start - 250) / 10


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

