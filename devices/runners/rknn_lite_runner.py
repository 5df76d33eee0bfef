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
What it shares with the other runners is runner_common.py, pushed beside it as
edgesdk_runner_common.py.
"""

import sys
import time

try:  # pushed beside this script: its folder is sys.path[0]
    import edgesdk_runner_common as common
except ImportError:  # run from a checkout: python -m sdk.devices.runners.rknn_lite_runner
    from sdk.devices.runners import runner_common as common

MARK = common.MARK
emit, fail, peak_rss_bytes = common.emit, common.fail, common.peak_rss_bytes


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
    parser = common.parser()
    parser.add_argument("--core-mask", type=int, default=0)
    args = parser.parse_args()

    result = common.base_result("rknn-lite")
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
    if args.outputs_dir:  # sample 0 ran above, timed as the first run
        result["outputs"] = common.save_outputs(np, lambda i: run(i) if i else first, samples,
                                                args.outputs_dir)
    for _ in range(max(args.warmup, 0)):
        run(0)
    min_duration = max(args.min_duration, 0.0)
    latencies, duration_s = common.timed_runs(lambda: run(0), args.runs, min_duration)
    rknn.release()
    result.update(samples=samples, core_mask=args.core_mask, init_ms=init_ms,
                  first_run_ms=first_ms, warmup=args.warmup, latencies_ms=latencies,
                  duration_s=duration_s, min_duration_s=min_duration,
                  peak_rss_bytes=peak_rss_bytes(), baseline_rss_bytes=baseline)
    emit(result)


if __name__ == "__main__":
    main()
