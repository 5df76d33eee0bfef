"""Board farm scaling: wall time of one farm run on 1, 2, 4 and 8 emulated boards.

    python benchmarks/farm.py [--work 0.5] [--models 4] [--boards 1,2,4,8] > farm.json

Every board is a real OpenSSH sshd on loopback (an emulated aarch64 board) and every job goes
through the whole farm path: health check, lease, deploy (checksummed pushes), governor and
temperature reads, the run, the result committed to SQLite. Weak scaling: each board profiles
the same `--models` models, so a run on N boards has N times the jobs; with perfect parallelism
its wall time would not change. Parallel efficiency = (jobs/s on N boards) / (N x jobs/s on one).

Per-job device work is fixed and sleep-bound: the boards' "Python" is a stand-in that answers
the LiteRT runner's protocol after sleeping `--work` seconds. This machine has 2 cores; real
device work here would be CPU work competing with the farm itself, while on a real farm it runs
on the boards. So the figure measures the farm (scheduling, SSH, pushes, database), not LiteRT.
`--real` uses the real LiteRT runner instead (CPU-bound on this 2-core host: expect the
efficiency to fall with more boards than cores).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

CHECK = {"runner": "litert-python", "machine": "sleep", "runtime": "sleep-runner",
         "runtime_version": "1"}


def sleep_runner(work: float) -> str:
    """A stand-in for the board's Python: answers edgesdk's LiteRT runner protocol (--check,
    then one run) after sleeping `work` seconds."""
    result = {**CHECK, "python": "-", "numpy": "-", "init_ms": 0.0,
              "first_run_ms": work * 1e3, "latencies_ms": [work * 1e3], "threads": None,
              "xnnpack": True, "delegates": []}
    return "\n".join([
        "#!/bin/sh",
        'for a in "$@"; do',
        f"  if [ \"$a\" = --check ]; then echo 'EDGESDK_RESULT {json.dumps(CHECK)}'; exit 0; fi",
        "done",
        f"sleep {work:g}",
        f"echo 'EDGESDK_RESULT {json.dumps(result)}'", ""])


def run(args: argparse.Namespace) -> dict[str, Any]:
    from farm_support import board_table, mlp_models, write_farm

    from sdk.devices.emulated import EmulatedBoard
    from sdk.devices.farm import Farm

    counts = [int(x) for x in args.boards.split(",")]
    root = Path(tempfile.mkdtemp(prefix="edgesdk-farm-bench-"))
    boards: list[EmulatedBoard] = []
    try:
        with contextlib.redirect_stdout(sys.stderr):  # ai-edge-quantizer prints
            models_all = mlp_models(root / "models")
        base = models_all["int8"]
        models = []
        for i in range(args.models):  # distinct files (distinct jobs), the same network
            path = root / "models" / f"m{i}.tflite"
            path.write_bytes(base.read_bytes() + b"\0" * (16 * (i + 1)))
            models.append(path)
        runner = root / "sleep-python"
        runner.write_text(sleep_runner(args.work))
        runner.chmod(0o755)
        for i in range(max(counts)):
            boards.append(EmulatedBoard(name=f"b{i}", root=root / f"b{i}").start())
        out = []

        def measure(n: int) -> tuple[float, int]:
            extra = {} if args.real else {"runner": {"python": str(runner)}}
            tables = {b.name: {**board_table(b), **extra} for b in boards[:n]}
            farm_file = write_farm(root / f"farm-{n}.toml", tables,
                                   defaults={"runs": 1 if not args.real else 20, "warmup": 0,
                                             "min_duration": 0.0 if not args.real
                                             else args.work},
                                   farm={"database": f"results-{n}.sqlite"})
            started = time.perf_counter()
            result = Farm(farm_file).profile(models, progress=False, fresh=True)
            wall = time.perf_counter() - started
            assert not result.failed, [r.error for r in result.failed]
            return wall, len(result.results)

        measure(1)  # warm-up: imports, first connections, runner pushed to the first board
        for n in counts:
            walls = []
            for _ in range(args.repeat):
                wall, jobs = measure(n)
                walls.append(wall)
            wall = statistics.median(walls)
            out.append({"boards": n, "jobs": jobs, "wall_s": round(wall, 3),
                        "wall_s_all": [round(w, 3) for w in walls],
                        "jobs_per_s": round(jobs / wall, 3)})
        one = out[0]["jobs_per_s"] / out[0]["boards"]
        for row in out:
            row["parallel_efficiency"] = round(row["jobs_per_s"] / (row["boards"] * one), 3)
        return {
            "benchmark": "farm scaling (weak: the same models on every board)",
            "runner": "real LiteRT (CPU-bound on this host)" if args.real else
            f"sleep-bound stand-in, {args.work:g} s of device work per job",
            "per_job_device_work_s": args.work, "models_per_board": args.models,
            "host": {"machine": platform.machine(), "cpus": os.cpu_count(),
                     "python": platform.python_version()},
            "ideal_wall_s": round(args.models * args.work, 3) if not args.real else None,
            "results": out,
        }
    finally:
        for b in boards:
            b.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=float, default=0.5, help="seconds of device work per job")
    parser.add_argument("--models", type=int, default=4, help="models (jobs) per board")
    parser.add_argument("--boards", default="1,2,4,8")
    parser.add_argument("--repeat", type=int, default=3, help="runs per board count (median)")
    parser.add_argument("--real", action="store_true",
                        help="run the real LiteRT runner (min duration = --work) instead")
    args = parser.parse_args()
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
