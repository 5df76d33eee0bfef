#!/usr/bin/env python3
"""What edgesdk's on-device Python runners share (litert_runner.py, rknn_lite_runner.py).

Pushed beside them as `edgesdk_runner_common.py` and loaded by path (`load_common` in each
runner): the report line, the arguments every runner takes, peak memory, the timing rule and
the saved outputs. Self-contained like the runners: the board's own Python 3.7+, no edgesdk.
"""

import argparse
import json
import os
import platform
import sys
import time

MARK = "EDGESDK_RESULT "


def emit(result, code=0):
    """Print the report line and exit."""
    sys.stdout.write(MARK + json.dumps(result) + "\n")
    sys.stdout.flush()
    sys.exit(code)


def fail(message, **extra):
    """Report an error (`kind` names what failed) and exit 3."""
    result = {"error": message}
    result.update(extra)
    emit(result, 3)


def peak_rss_bytes():
    """This process's peak RSS. /proc's VmHWM belongs to this program alone (exec starts it
    anew); getrusage's ru_maxrss survives exec, so after a fork from a big parent it reports
    the parent's: it is only the fallback where there is no /proc."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(kb) * (1 if sys.platform == "darwin" else 1024)
    except Exception:
        return None


def parser():
    """The arguments every runner takes; a runner adds its own."""
    p = argparse.ArgumentParser()
    p.add_argument("model", nargs="?")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--inputs", default="")
    p.add_argument("--outputs-dir", default="")
    p.add_argument("--min-duration", type=float, default=0.0,
                   help="time runs until both --runs runs and this many seconds are done")
    p.add_argument("--check", action="store_true")
    return p


def base_result(runner):
    """The report's first fields: the runner and the machine and Python it really ran on."""
    return {"runner": runner, "machine": platform.machine(),
            "python": platform.python_version(), "executable": sys.executable}


def timed_runs(invoke, runs, min_duration):
    """(per-run ms, seconds in all). MLPerf-style: at least `runs` runs AND at least
    `min_duration` seconds of them."""
    latencies = []
    runs, min_duration = max(runs, 0), max(min_duration, 0.0)
    begun = time.perf_counter()
    while len(latencies) < runs or time.perf_counter() - begun < min_duration:
        started = time.perf_counter()
        invoke()
        latencies.append((time.perf_counter() - started) * 1e3)
    return latencies, time.perf_counter() - begun


def save_outputs(np, sample_outputs, samples, outputs_dir):
    """Every sample's outputs (`sample_outputs(i)`: one array per model output), each output's
    samples stacked on axis 0 and saved as out_<k>.npy in `outputs_dir`; returns the paths."""
    collected = []
    for i in range(samples):
        for k, array in enumerate(sample_outputs(i)):
            if k == len(collected):
                collected.append([])
            collected[k].append(np.asarray(array))
    paths = []
    for k, parts in enumerate(collected):
        path = os.path.join(outputs_dir, f"out_{k}.npy")
        np.save(path, np.concatenate(parts, axis=0))
        paths.append(path)
    return paths
