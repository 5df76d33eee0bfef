#!/usr/bin/env python3
"""edgesdk's on-device RKNN runner: pushed to a Rockchip board and run by its own Python with
rknn-toolkit-lite2 (`from rknnlite.api import RKNNLite`).

    python3 edgesdk_rknn_runner.py MODEL.rknn --inputs a.npy[,b.npy] [--runs N] [--warmup N]
        [--core-mask N] [--outputs-dir DIR] [--min-duration S] [--check]

Prints one line `EDGESDK_RESULT {json}`: the machine and Python, the RKNNLite version (or that
it is edgesdk's stand-in), load + init_runtime time (the NPU's setup), the first inference
apart from the steady-state ones, peak RSS. With --outputs-dir every sample (axis 0 of the
inputs) is run once and the outputs saved as out_<i>.npy. Failures print
`EDGESDK_RESULT {"error": ...}` and exit 3. RKNNLite has no input query: inputs are given.
"""

import argparse
import json
import os
import platform
import sys
import time

MARK = "EDGESDK_RESULT "


def emit(result, code=0):
    sys.stdout.write(MARK + json.dumps(result) + "\n")
    sys.stdout.flush()
    sys.exit(code)


def fail(message, **extra):
    result = {"error": message}
    result.update(extra)
    emit(result, 3)


def peak_rss_bytes():
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def load_rknnlite():
    try:
        from rknnlite.api import RKNNLite
    except Exception as exc:
        fail(f"rknn-toolkit-lite2 is not importable in {sys.executable}: {exc} (install "
             "Rockchip's rknn_toolkit_lite2 wheel for this Python, and librknnrt.so)",
             kind="missing-runtime")
    if getattr(RKNNLite, "EDGESDK_STAND_IN", False):
        import rknnlite

        return RKNNLite, "rknnlite stand-in (edgesdk; LiteRT on the CPU, no NPU)", \
            getattr(rknnlite, "__version__", "unknown")
    try:
        from importlib.metadata import version
        found = version("rknn-toolkit-lite2")
    except Exception:
        found = "unknown"
    return RKNNLite, "rknnlite", found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--core-mask", type=int, default=0)
    parser.add_argument("--inputs", default="")
    parser.add_argument("--outputs-dir", default="")
    parser.add_argument("--min-duration", type=float, default=0.0)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()

    result = {"runner": "rknn-lite", "machine": platform.machine(),
              "python": platform.python_version(), "executable": sys.executable}
    rknn_class, runtime, version = load_rknnlite()
    result.update(runtime=runtime, runtime_version=version)
    if args.check:
        emit(result)
    try:
        import numpy as np
    except Exception as exc:
        fail(f"numpy is missing in {sys.executable}: {exc}", kind="missing-runtime")
    result["numpy"] = np.__version__
    if not args.model or not args.inputs:
        fail("a model and --inputs are needed")
    arrays = [np.load(p) for p in args.inputs.split(",")]
    samples = int(arrays[0].shape[0])

    baseline = peak_rss_bytes()
    rknn = rknn_class(verbose=False)
    started = time.perf_counter()
    ret = rknn.load_rknn(args.model)
    if ret != 0:
        fail(f"RKNNLite.load_rknn({args.model}) returned {ret}", kind="model")
    ret = rknn.init_runtime(core_mask=args.core_mask)
    if ret != 0:
        rknn.release()
        fail(f"RKNNLite.init_runtime(core_mask={args.core_mask}) returned {ret}: the NPU driver "
             "or librknnrt.so is missing or does not match the model's platform", kind="npu")
    init_ms = (time.perf_counter() - started) * 1e3

    def run(i):
        out = rknn.inference(inputs=[a[i:i + 1] for a in arrays])
        if out is None:
            rknn.release()
            fail(f"RKNNLite.inference failed on sample {i}", kind="inference")
        return out

    started = time.perf_counter()
    first = run(0)
    first_ms = (time.perf_counter() - started) * 1e3
    if args.outputs_dir:
        collected = [[np.asarray(o)] for o in first]
        for i in range(1, samples):
            for k, o in enumerate(run(i)):
                collected[k].append(np.asarray(o))
        paths = []
        for k, parts in enumerate(collected):
            path = os.path.join(args.outputs_dir, f"out_{k}.npy")
            np.save(path, np.concatenate(parts, axis=0))
            paths.append(path)
        result["outputs"] = paths
    for _ in range(max(args.warmup, 0)):
        run(0)
    latencies = []
    begun = time.perf_counter()
    while len(latencies) < max(args.runs, 0) or time.perf_counter() - begun < args.min_duration:
        started = time.perf_counter()
        run(0)
        latencies.append((time.perf_counter() - started) * 1e3)
    rknn.release()
    result.update(samples=samples, core_mask=args.core_mask, init_ms=init_ms,
                  first_run_ms=first_ms, warmup=args.warmup, latencies_ms=latencies,
                  peak_rss_bytes=peak_rss_bytes(), baseline_rss_bytes=baseline)
    emit(result)


if __name__ == "__main__":
    main()
