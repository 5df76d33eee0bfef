"""Calibration speed and memory on a corpus model (issue 12: "export of a 3M-parameter model with
200 calibration samples stays under 30 s").

    python benchmarks/calibration_speed.py --model ppocr_v4_rec --samples 200
    python benchmarks/calibration_speed.py --model basic_pitch_tflite --samples 32 --stage export
    python benchmarks/calibration_speed.py --model ppocr_v4_rec --samples 20 --profile cal.prof

Prints one JSON object: the model, its parameter count, the samples, the seconds calibration
(`--stage calibrate`, the default) or the whole `sdk.export` (`--stage export`, with its per-stage
timings) took, and the CPU seconds (user + system, every thread: on a shared host the wall time
follows the load, given beside it), the interpreter invocations, and the peak RSS of the stage
(VmHWM from /proc/self/status, reset through /proc/self/clear_refs just before the stage so that
what the set-up held is `rss_before_mb`; null where the reset is not allowed). The corpus
models must be fetched first (`make corpus`; docs/real-models.md).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus.measure import stacked
from corpus.prepared import prepare

from sdk.base.host import cpu_name


def vm_kib(field: str) -> int:
    """A /proc/self/status field (VmHWM, VmRSS) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def parameters(model: Any) -> int:
    """Elements of the constant float tensors (weights) of the main graph."""
    from sdk.converters.quantize.method_default import float_weights

    return float_weights(model)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="ppocr_v4_rec", help="corpus model name")
    ap.add_argument("--samples", type=int, default=200, help="calibration samples")
    ap.add_argument("--stage", choices=("calibrate", "export"), default="calibrate")
    ap.add_argument("--method", default="mse", help="calibration method (export's default)")
    ap.add_argument("--kernels", choices=("builtin", "xnnpack"), default="builtin",
                    help="calibrate(kernels=): where the float model runs (export: patched in, "
                         "sdk.export does not take it)")
    ap.add_argument("--profile", help="write a cProfile of the stage here")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import sdk
    from sdk.base.samples import as_samples
    from sdk.converters.frontends import load_model
    from sdk.converters.quantize.calibrate import calibrate
    from sdk.exporter import input_specs

    prep = prepare(args.model)
    model, path = prep.model, prep.path
    cal = prep.samples(args.samples, args.seed)
    shapes = dict(model.input_shapes) or None
    loaded = load_model(str(path), input_shapes=shapes)
    calibration = stacked(cal, prep.descs)
    samples = as_samples(calibration, input_specs(loaded.model), max_samples=None)

    invocations = [0]
    from sdk.run.runner import LiteRTRunner

    original = LiteRTRunner.invoke

    def counted(self: LiteRTRunner, *a: Any, **k: Any) -> Any:
        invocations[0] += 1
        return original(self, *a, **k)

    LiteRTRunner.invoke = counted  # type: ignore[method-assign]
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    result: dict[str, Any] = {}
    reset = reset_peak()
    rss_before = vm_kib("VmRSS")
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    if args.kernels != "builtin":
        import functools

        import sdk.exporter

        sdk.exporter.calibrate = functools.partial(calibrate, kernels=args.kernels)
    if args.stage == "calibrate":
        cal_result = calibrate(loaded.model, samples, args.method, kernels=args.kernels)
        result["tensors"] = len(cal_result.ranges)
    else:
        out = sdk.export(str(path), "int8", calibration=calibration, input_shapes=shapes,
                         output=f"/tmp/calibration_speed_{os.getpid()}.tflite", report=False,
                         method=args.method)
        result["timings"] = out.timings
        result["worst_sqnr_db"] = (min(o.sqnr_db for o in out.fidelity.outputs)
                                   if out.fidelity is not None else None)
        Path(out.path).unlink(missing_ok=True)
    seconds = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    report = {
        "model": args.model, "stage": args.stage, "method": args.method,
        "kernels": args.kernels,
        "params": parameters(loaded.model), "samples": len(samples),
        "sample_shape": [list(a.shape[1:]) for a in samples.arrays],
        "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
        "load_average": os.getloadavg()[0], "invocations": invocations[0],
        "peak_rss_mb": round(vm_kib("VmHWM") / 1024, 1) if reset else None,
        "rss_before_mb": round(rss_before / 1024, 1),
        "cpu": cpu_name(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        **result,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
