"""The LiteRT Python runner: pushed to a device that has Python, run there, prints one JSON line.

Self-contained on purpose (the device has only Python, numpy and a LiteRT interpreter, not
edgesdk): it imports nothing from the SDK.

    python3 litert_runner.py --model m.tflite --runs 50 --warmup 5 --min-duration 1.0

Measurement (MLPerf-style): `--warmup` untimed runs first, then timed runs until BOTH at least
`--runs` runs and at least `--min-duration` seconds are done. Inputs are seeded random values
in each input's dtype (the same on every device). With `--layers FILE`, FILE is a bundle of
single-operator models (see `sdk.devices.profiling.layer_bundle`): each is timed alone in its
own interpreter, which gives a per-layer breakdown where LiteRT's Python API has no op profiler.

Exit codes: 0 ok, 2 bad arguments, 3 no LiteRT interpreter, 4 the model does not load or run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import struct
import sys
import time

EXIT_NO_RUNTIME = 3
EXIT_MODEL = 4


def _fail(code: int, message: str) -> None:
    print(json.dumps({"error": message, "exit_code": code}))
    sys.stdout.flush()
    sys.exit(code)


def _interpreter_class(backend: str):
    """(Interpreter class, load_delegate, backend description)."""
    order = [backend] if backend != "auto" else ["ai_edge_litert", "tflite_runtime", "tensorflow"]
    errors = []
    for name in order:
        try:
            if name == "ai_edge_litert":
                from importlib.metadata import version

                from ai_edge_litert import interpreter as mod

                described = f"ai_edge_litert {version('ai-edge-litert')}"
                return mod.Interpreter, mod.load_delegate, described
            if name == "tflite_runtime":
                from tflite_runtime import interpreter as mod
                return mod.Interpreter, mod.load_delegate, "tflite_runtime"
            if name == "tensorflow":
                import tensorflow as tf
                return tf.lite.Interpreter, tf.lite.experimental.load_delegate, \
                    f"tensorflow {tf.__version__}"
            errors.append(f"{name}: unknown backend")
        except Exception as exc:  # report why each backend is unusable
            errors.append(f"{name}: {exc}")
    _fail(EXIT_NO_RUNTIME, "no LiteRT interpreter: " + "; ".join(errors))
    raise AssertionError


def _make(cls, load_delegate, *, path=None, content=None, threads=None, xnnpack=True,
          delegates=()):
    kwargs = {}
    if threads:
        kwargs["num_threads"] = threads
    if delegates:
        kwargs["experimental_delegates"] = [load_delegate(p, o) for p, o in delegates]
    if not xnnpack:
        try:
            from ai_edge_litert.interpreter import OpResolverType
            kwargs["experimental_op_resolver_type"] = \
                OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        except ImportError:
            pass
    if path is not None:
        kwargs["model_path"] = path
    else:
        kwargs["model_content"] = content
    interpreter = cls(**kwargs)
    interpreter.allocate_tensors()
    return interpreter


def _random_inputs(interpreter, rng):
    import numpy as np

    out = []
    for detail in interpreter.get_input_details():
        dtype = np.dtype(detail["dtype"])
        shape = [max(int(d), 1) for d in detail["shape"]]
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            lo, hi = max(int(info.min), -128), min(int(info.max), 127)
            value = rng.integers(lo, hi + 1, size=shape).astype(dtype)
        elif dtype == np.bool_:
            value = rng.integers(0, 2, size=shape).astype(np.bool_)
        else:
            value = rng.standard_normal(shape).astype(dtype)
        out.append((detail["index"], value))
    return out


def _timed(interpreter, inputs, runs, warmup, min_duration):
    clock = time.perf_counter
    for index, value in inputs:
        interpreter.set_tensor(index, value)
    warm = []
    for _ in range(warmup):
        started = clock()
        interpreter.invoke()
        warm.append((clock() - started) * 1e3)
    latencies = []
    begun = clock()
    while len(latencies) < runs or clock() - begun < min_duration:
        started = clock()
        interpreter.invoke()
        latencies.append((clock() - started) * 1e3)
    return warm, latencies, clock() - begun


#: at most this many latencies are printed (evenly spaced in run order); stats use all of them
MAX_SAMPLES = 2000


def _stats(latencies):
    xs = sorted(latencies)
    n = len(xs)

    def pct(q):
        pos = (n - 1) * q / 100.0
        lo = int(pos)
        hi = min(lo + 1, n - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

    mean = sum(xs) / n
    std = (sum((x - mean) ** 2 for x in xs) / n) ** 0.5
    return {"count": n, "mean_ms": mean, "std_ms": std, "min_ms": xs[0], "p50_ms": pct(50),
            "p90_ms": pct(90), "p99_ms": pct(99), "max_ms": xs[-1]}


def _peak_rss_bytes():
    try:
        import resource
        # Linux and Android report kilobytes, macOS bytes
        scale = 1 if sys.platform == "darwin" else 1024
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale
    except Exception:
        return None


def _read_bundle(path):
    """A layer bundle: b"EDGELAYR", u32 header length, JSON header, then the models."""
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:8] != b"EDGELAYR":
        _fail(2, f"{path} is not a layer bundle")
    (length,) = struct.unpack("<I", data[8:12])
    header = json.loads(data[12:12 + length].decode("utf-8"))
    base = 12 + length
    for entry in header["layers"]:
        start = base + entry["offset"]
        yield entry, data[start:start + entry["size"]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--min-duration", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--no-xnnpack", action="store_true")
    parser.add_argument("--delegate", action="append", default=[],
                        help="PATH or PATH;key=value;key=value")
    parser.add_argument("--layers", default=None, help="a layer bundle to time op by op")
    parser.add_argument("--layer-runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    try:
        import numpy as np
    except ImportError as exc:
        _fail(EXIT_NO_RUNTIME, f"numpy is not installed: {exc}")
    cls, load_delegate, backend = _interpreter_class(args.backend)
    delegates = []
    for spec in args.delegate:
        path, *options = spec.split(";")
        delegates.append((path, dict(o.split("=", 1) for o in options if "=" in o)))
    xnnpack = not args.no_xnnpack
    try:
        started = time.perf_counter()
        interpreter = _make(cls, load_delegate, path=args.model, threads=args.threads or None,
                            xnnpack=xnnpack, delegates=delegates)
        init_ms = (time.perf_counter() - started) * 1e3
        rng = np.random.default_rng(args.seed)
        inputs = _random_inputs(interpreter, rng)
        for index, value in inputs:
            interpreter.set_tensor(index, value)
        started = time.perf_counter()
        interpreter.invoke()
        first_ms = (time.perf_counter() - started) * 1e3
        warm, latencies, duration = _timed(interpreter, inputs, max(args.runs, 1),
                                           max(args.warmup, 0), max(args.min_duration, 0.0))
    except SystemExit:
        raise
    except Exception as exc:  # the host gets the interpreter's message
        _fail(EXIT_MODEL, f"{type(exc).__name__}: {exc}")
    layers = []
    if args.layers:
        for entry, content in _read_bundle(args.layers):
            try:
                sub = _make(cls, load_delegate, content=content, threads=args.threads or None,
                            xnnpack=xnnpack, delegates=delegates)
                _, times, _ = _timed(sub, _random_inputs(sub, rng), args.layer_runs,
                                     min(args.warmup, 3), 0.0)
                times.sort()
                layers.append({**entry, "ms": times[len(times) // 2], "error": None})
            except Exception as exc:  # one op that fails alone is reported
                layers.append({**entry, "ms": None, "error": f"{type(exc).__name__}: {exc}"})
            for key in ("offset", "size"):
                layers[-1].pop(key, None)
    print(json.dumps({
        "backend": backend,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "pid": os.getpid(),
        "xnnpack": xnnpack,
        "delegates": [p for p, _ in delegates],
        "threads": args.threads or None,
        "init_ms": init_ms,
        "first_run_ms": first_ms,
        "warmup_ms": warm,
        "stats": _stats(latencies),
        "latencies_ms": latencies if len(latencies) <= MAX_SAMPLES else
        [latencies[i * len(latencies) // MAX_SAMPLES] for i in range(MAX_SAMPLES)],
        "duration_s": duration,
        "peak_rss_bytes": _peak_rss_bytes(),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else None,
        "layers": layers,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
