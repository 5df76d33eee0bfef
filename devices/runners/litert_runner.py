#!/usr/bin/env python3
# ruff: noqa: B905 - runs on boards with Python 3.7+, where zip() has no strict=
"""edgesdk's on-device LiteRT runner: pushed to a device and run by its own Python.

    python3 edgesdk_litert_runner.py MODEL.tflite [--runs N] [--warmup N] [--threads N]
        [--inputs a.npy,b.npy] [--outputs-dir DIR] [--delegate LIB [--delegate-options JSON]]
        [--no-xnnpack] [--backend ai_edge_litert|tflite_runtime|tensorflow] [--check]

Prints one line `EDGESDK_RESULT {json}`: the machine and Python it really ran on, the LiteRT
backend and version, init / first-run / per-run times, peak RSS, the CPU's SIMD features.
With --inputs (one .npy per model input, samples on axis 0) every sample is run once and the
outputs are saved as out_<i>.npy (samples on axis 0). Failures print `EDGESDK_RESULT
{"error": ...}` and exit 3.

Self-contained on purpose (numpy and a LiteRT interpreter only; Python 3.7+): boards have their
own Python, not edgesdk. What it shares with the other runners is runner_common.py, pushed
beside it as edgesdk_runner_common.py.
"""

import json
import sys
import time

try:  # pushed beside this script: its folder is sys.path[0]
    import edgesdk_runner_common as common
except ImportError:  # run from a checkout: python -m sdk.devices.runners.litert_runner
    from sdk.devices.runners import runner_common as common

MARK = common.MARK
emit, fail, peak_rss_bytes = common.emit, common.fail, common.peak_rss_bytes
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vnni",
             "avx_vnni", "amx_int8", "neon", "asimd", "asimddp", "asimdhp", "i8mm", "sve",
             "sve2", "vfpv4", "idiva")


def cpu_isa():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("flags", "features"):
                    have = set(value.split())
                    return [f for f in ISA_FLAGS if f in have]
    except OSError:
        pass
    return []


def find_backend(wanted):
    """(module, version) of the first installed backend, without importing it."""
    import importlib.util

    try:
        from importlib.metadata import version as dist_version
    except ImportError:  # Python 3.7
        dist_version = None
    dists = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime",
             "tensorflow": "tensorflow"}
    for name in [wanted] if wanted else list(dists):
        if name in dists and importlib.util.find_spec(name) is not None:
            version = "unknown"
            for dist in (dists[name], dists[name] + "-cpu"):
                try:
                    version = dist_version(dist) if dist_version else "unknown"
                    break
                except Exception:
                    continue
            return name, version
    return None


def load_backend(wanted):
    names = [wanted] if wanted else ["ai_edge_litert", "tflite_runtime", "tensorflow"]
    errors = []
    for name in names:
        try:
            if name == "ai_edge_litert":
                import ai_edge_litert
                from ai_edge_litert import interpreter as mod
                version = getattr(ai_edge_litert, "__version__", "unknown")
                return name, version, mod.Interpreter, mod.load_delegate, \
                    getattr(mod, "OpResolverType", None)
            if name == "tflite_runtime":
                import tflite_runtime
                from tflite_runtime import interpreter as mod
                version = getattr(tflite_runtime, "__version__", "unknown")
                return name, version, mod.Interpreter, mod.load_delegate, \
                    getattr(mod, "OpResolverType", None)
            if name == "tensorflow":
                import tensorflow as tf
                return name, tf.__version__, tf.lite.Interpreter, \
                    tf.lite.experimental.load_delegate, \
                    getattr(tf.lite.experimental, "OpResolverType", None)
            errors.append(name + ": unknown backend")
        except Exception as exc:  # ImportError, or numpy ABI errors of old wheels
            errors.append(f"{name}: {exc}")
    fail(f"no LiteRT interpreter in this Python ({sys.executable}): {'; '.join(errors)}",
         kind="missing-runtime")


def read_layer_bundle(path):
    """(entry, model bytes) per operator of a bundle written by sdk.devices.runners.layers."""
    import struct

    with open(path, "rb") as handle:
        data = handle.read()
    if data[:8] != b"EDGELAYR":
        fail(f"{path} is not a layer bundle", kind="input")
    (length,) = struct.unpack("<I", data[8:12])
    header = json.loads(data[12:12 + length].decode("utf-8"))
    base = 12 + length
    for entry in header["layers"]:
        start = base + entry["offset"]
        yield entry, data[start:start + entry["size"]]


def time_layers(args, kwargs, interpreter_class, load_delegate, np):
    """Each operator alone in an interpreter of its own (LiteRT's Python API has no op
    profiler): mean of --layer-runs runs after a short warm-up, on seeded random inputs."""
    rng = np.random.default_rng(1)
    out = []
    for entry, content in read_layer_bundle(args.layers):
        layer = {"index": entry["index"], "name": entry["name"], "op": entry["op"]}
        try:
            sub_kwargs = dict(kwargs)
            sub_kwargs.pop("model_path", None)
            sub_kwargs["model_content"] = content
            if args.delegate:  # a delegate instance belongs to one interpreter
                sub_kwargs["experimental_delegates"] = [
                    load_delegate(p, json.loads(o) if o else {}) for p, o in
                    zip(args.delegate, args.delegate_options + [""] * len(args.delegate))]
            sub = interpreter_class(**sub_kwargs)
            sub.allocate_tensors()
            for detail in sub.get_input_details():
                dtype = np.dtype(detail["dtype"])
                shape = tuple(max(int(d), 1) for d in detail["shape"])
                if np.issubdtype(dtype, np.integer):
                    value = rng.integers(-128, 128, shape).astype(dtype)
                else:
                    value = rng.standard_normal(shape).astype(dtype)
                sub.set_tensor(detail["index"], value)
            for _ in range(min(max(args.warmup, 1), 3)):
                sub.invoke()
            times = []
            for _ in range(max(args.layer_runs, 1)):
                started = time.perf_counter()
                sub.invoke()
                times.append((time.perf_counter() - started) * 1e3)
            layer["mean_ms"] = sum(times) / len(times)
        except Exception as exc:  # an operator that cannot run alone is reported, not fatal
            layer["mean_ms"] = None
            layer["error"] = f"{type(exc).__name__}: {exc}"
        out.append(layer)
    return out


def delegate_placement(args, kwargs, interpreter_class, load_delegate, resolvers):
    """Which of the model's nodes the configured delegates claimed. LiteRT's Python API lists
    every node, the original ones and one DELEGATE node per partition a delegate took; a
    DELEGATE node claims the original nodes between its inputs and its outputs (walked back
    from its outputs). The model is loaded again with only these delegates (XNNPACK off where
    the backend allows it), so that every DELEGATE node is theirs."""
    sub = dict(kwargs)
    sub["experimental_delegates"] = [
        load_delegate(p, {str(k): str(v) for k, v in json.loads(o).items()} if o else {})
        for p, o in zip(args.delegate, args.delegate_options + [""] * len(args.delegate))]
    exact = resolvers is not None
    if exact:
        sub["experimental_op_resolver_type"] = resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = interpreter_class(**sub)
    interp.allocate_tensors()
    nodes = interp._get_ops_details()
    original = [n for n in nodes if n["op_name"] != "DELEGATE"]
    producer = {int(t): n for n in original for t in n["outputs"]}
    claimed = {}
    for node in nodes:
        if node["op_name"] != "DELEGATE":
            continue
        bounds = {int(t) for t in node["inputs"]}
        todo = [int(t) for t in node["outputs"]]
        while todo:
            tensor = todo.pop()
            if tensor in bounds or tensor not in producer:
                continue
            inner = producer[tensor]
            if inner["index"] in claimed:
                continue
            claimed[inner["index"]] = int(node["index"])
            todo += [int(t) for t in inner["inputs"] if int(t) >= 0]
    return {"exact": exact, "nodes": len(original),
            "claimed": [{"index": int(n["index"]), "op": n["op_name"]} for n in original
                        if n["index"] in claimed],
            "cpu": [{"index": int(n["index"]), "op": n["op_name"]} for n in original
                    if n["index"] not in claimed]}


def main():
    parser = common.parser()
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--delegate", action="append", default=[])
    parser.add_argument("--delegate-options", action="append", default=[])
    parser.add_argument("--cpu-fallback", action="append", default=[],
                        help="a --delegate that may fail to load: run on the CPU with a warning")
    parser.add_argument("--no-xnnpack", action="store_true")
    parser.add_argument("--backend", default="")
    parser.add_argument("--layers", default="",
                        help="a layer bundle (one model per operator) to time op by op")
    parser.add_argument("--layer-runs", type=int, default=10)
    args = parser.parse_args()

    result = common.base_result("litert-python")
    result["isa"] = cpu_isa()
    if args.check:  # cheap: is a backend installed? (importing one takes a second or more)
        found = find_backend(args.backend)
        if found is None:
            fail(f"no LiteRT interpreter in this Python ({sys.executable}): none of "
                 "ai_edge_litert, tflite_runtime, tensorflow is installed",
                 kind="missing-runtime")
        result.update(runtime=found[0], runtime_version=found[1])
        emit(result)
    baseline = peak_rss_bytes()
    try:
        import numpy as np
    except Exception as exc:
        fail(f"numpy is missing in {sys.executable}: {exc}", kind="missing-runtime")
    name, version, interpreter_class, load_delegate, resolvers = load_backend(args.backend)
    result.update(runtime=name, runtime_version=version, numpy=np.__version__)
    if not args.model:
        fail("no model given")

    delegates, delegate_names, fallback, loaded_options = [], [], [], []
    for i, path in enumerate(args.delegate):
        options = {}
        raw_options = args.delegate_options[i] if i < len(args.delegate_options) else ""
        if raw_options:
            options = {str(k): str(v) for k, v in json.loads(raw_options).items()}
        try:
            delegates.append(load_delegate(path, options))
        except Exception as exc:
            if path not in args.cpu_fallback:
                fail(f"cannot load delegate {path}: {exc}", kind="delegate")
            # an NPU delegate that may fall back: run on the CPU, and say so
            fallback.append({"delegate": path, "error": f"{type(exc).__name__}: {exc}"})
            continue
        delegate_names.append(path)
        loaded_options.append(raw_options)
    args.delegate, args.delegate_options = delegate_names, loaded_options

    kwargs = {"model_path": args.model}
    if args.threads:
        kwargs["num_threads"] = args.threads
    if delegates:
        kwargs["experimental_delegates"] = delegates
    if args.no_xnnpack:
        if resolvers is None:
            fail(f"{name} {version} cannot turn XNNPACK off", kind="option")
        kwargs["experimental_op_resolver_type"] = resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    started = time.perf_counter()
    try:
        interp = interpreter_class(**kwargs)
        interp.allocate_tensors()
    except Exception as exc:
        fail(f"LiteRT cannot load {args.model}: {exc}", kind="model")
    init_ms = (time.perf_counter() - started) * 1e3
    inputs = interp.get_input_details()
    outputs = interp.get_output_details()

    if args.inputs:
        arrays = [np.load(p) for p in args.inputs.split(",")]
        if len(arrays) != len(inputs):
            fail(f"the model has {len(inputs)} inputs, {len(arrays)} .npy files given",
                 kind="input")
        samples = int(arrays[0].shape[0])
        for detail, array in zip(inputs, arrays):
            want = tuple(int(d) for d in detail["shape"][1:])
            if tuple(array.shape[1:]) != want or array.dtype != detail["dtype"]:
                fail(f"input {detail['name']!r} wants {np.dtype(detail['dtype']).name} "
                     f"{list(want)} per sample, got {array.dtype.name} {list(array.shape[1:])}",
                     kind="input")
    else:
        rng = np.random.default_rng(0)
        arrays = []
        for detail in inputs:
            dtype = np.dtype(detail["dtype"])
            shape = tuple(int(d) for d in detail["shape"])
            if np.issubdtype(dtype, np.integer):
                info = np.iinfo(dtype)
                arrays.append(rng.integers(info.min, int(info.max) + 1, shape).astype(dtype))
            else:
                arrays.append(rng.standard_normal(shape).astype(dtype))
        samples = 1

    def feed(i):
        for detail, array in zip(inputs, arrays):
            interp.set_tensor(detail["index"], array[i:i + 1])

    feed(0)
    started = time.perf_counter()
    interp.invoke()
    first_ms = (time.perf_counter() - started) * 1e3

    def sample_outputs(i):  # sample 0 ran above, timed as the first run
        if i:
            feed(i)
            interp.invoke()
        return [interp.get_tensor(detail["index"]).copy() for detail in outputs]

    if args.inputs and args.outputs_dir:
        result["outputs"] = common.save_outputs(np, sample_outputs, samples, args.outputs_dir)
        feed(0)

    for _ in range(max(args.warmup, 0)):
        interp.invoke()
    min_duration = max(args.min_duration, 0.0)
    latencies, duration_s = common.timed_runs(interp.invoke, args.runs, min_duration)
    layers = time_layers(args, kwargs, interpreter_class, load_delegate, np) \
        if args.layers else None
    peak_rss = peak_rss_bytes()  # before the placement check's second interpreter
    placement, warnings, nodes = None, [], None
    for item in fallback:
        warnings.append(f"cannot load the NPU delegate {item['delegate']} ({item['error']}): "
                        "the model ran on the CPU")
    if fallback and not delegates:
        try:
            ops = [n for n in interp._get_ops_details() if n["op_name"] != "DELEGATE"]
            nodes = {"count": len(ops),
                     "names": [f"{n['op_name']}#{int(n['index'])}" for n in ops]}
        except Exception:  # an old backend without the node list
            nodes = None
    if delegates:
        try:
            placement = delegate_placement(args, kwargs, interpreter_class, load_delegate,
                                           resolvers)
        except Exception as exc:
            warnings.append(f"which nodes the delegates claimed is unknown: {exc}")
        if placement is not None and not placement["claimed"]:
            warnings.append(f"the delegate(s) {', '.join(delegate_names)} claimed none of the "
                            f"model's {placement['nodes']} nodes: it all ran on the CPU")

    result.update(
        samples=samples, threads=args.threads or None, xnnpack=not args.no_xnnpack,
        delegates=delegate_names, placement=placement, warnings=warnings, fallback=fallback,
        nodes=None if nodes is None else nodes["count"],
        node_names=None if nodes is None else nodes["names"],
        init_ms=init_ms, first_run_ms=first_ms,
        warmup=args.warmup, latencies_ms=latencies, duration_s=duration_s,
        min_duration_s=min_duration, layers=layers, peak_rss_bytes=peak_rss,
        baseline_rss_bytes=baseline,
        inputs=[{"name": d["name"], "dtype": np.dtype(d["dtype"]).name,
                 "shape": [int(x) for x in d["shape"]]} for d in inputs],
        output_details=[{"name": d["name"], "dtype": np.dtype(d["dtype"]).name,
                         "shape": [int(x) for x in d["shape"]]} for d in outputs])
    emit(result)


if __name__ == "__main__":
    main()
