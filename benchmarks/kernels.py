"""Benchmark the native low-bit kernels against stock LiteRT (XNNPACK) on this host; JSON out.

    flock /tmp/edgesdk-heavy.lock .venv/bin/python benchmarks/kernels.py [--quick] [--markdown]

Layers: fully connected K = N in {1024, 4096}, M in {1, 8, 64}; conv layers of a ResNet-18-like
and a MobileNet-like network (3x3, 1x1, depthwise). Ours: int8, int4, ternary and 2-bit weights
(sdk.kernels, best ISA of this CPU). Theirs, single-layer .tflite models in stock LiteRT with
XNNPACK: fp32, int8 full-integer, and the 4-bit / 2-bit weight paths ai-edge-quantizer writes
(recipes dynamic_wi4_afp32, dynamic_wi2c_afp32). Every layer runs with 1 thread and with all
the physical cores this process may run on (the runtime's default thread count). Times are
medians of interleaved rounds (the same rounds for every implementation of a layer, so drift
from other processes hits all of them alike); ratios are theirs / ours (> 1: ours is faster).
Weight traffic is packed weight bytes / time, next to this machine's read bandwidth measured in
the same run (DRAM and last-level-cache sized buffers). Ours is timed by a C++ loop
(plan.benchmark), LiteRT by invoke() in a Python loop (~0.5 us overhead per call, measured).
Never asserted by tests: timing on shared machines is noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import litert_isa
import numpy as np

from sdk import kernels, layer_models
from sdk.base import native
from sdk.kernels import Quant

OURS = ("int8", "int4", "ternary", "int2")
THEIRS = ("fp32", "int8", "wi4", "wi2c")


@dataclass
class Layer:
    name: str
    kind: str  # "fc", "conv", "dwconv"
    shape: dict[str, Any]
    macs: int


@dataclass
class Result:
    layer: str
    impl: str  # "ours:ternary", "xnnpack:int8", ...
    threads: int
    time_ms: float | None
    weight_bytes: int | None = None
    weight_gbps: float | None = None
    kernel: str | None = None
    error: str | None = None


@dataclass
class Report:
    host: dict[str, Any]
    bandwidth_gbps: dict[str, float]
    results: list[Result] = field(default_factory=list)
    ratios: list[dict[str, Any]] = field(default_factory=list)


# ------------------------------------------------------------------------------------ layers
def fc_layers(quick: bool) -> list[Layer]:
    sizes = (1024,) if quick else (1024, 4096)
    batches = (1, 8) if quick else (1, 8, 64)
    return [Layer(f"fc{k}x{k}_m{m}", "fc", {"k": k, "n": k, "m": m}, m * k * k)
            for k in sizes for m in batches]


def conv_layers(quick: bool) -> list[Layer]:
    # (name, h, w, cin, cout, kernel, stride); batch 1, SAME padding
    convs = [
        ("resnet18_conv2_3x3_56x56x64", 56, 56, 64, 64, 3, 1),
        ("resnet18_conv3_3x3_28x28x128", 28, 28, 128, 128, 3, 1),
        ("resnet18_conv4_3x3_14x14x256", 14, 14, 256, 256, 3, 1),
        ("resnet18_conv5_3x3_7x7x512", 7, 7, 512, 512, 3, 1),
        ("mobilenet_pw_112x112x32_64", 112, 112, 32, 64, 1, 1),
        ("mobilenet_pw_28x28x256_256", 28, 28, 256, 256, 1, 1),
        ("mobilenet_pw_7x7x1024_1024", 7, 7, 1024, 1024, 1, 1),
        # the MobileNet-like model of edge_models.py (160x160 input): its small-K 1x1 layers
        # (issue 17's gap; edge_conv_bench's mnl_pw_ rows) and three depthwise layers
        ("mnl_pw_80x80x32_16", 80, 80, 32, 16, 1, 1),
        ("mnl_pw_80x80x16_96", 80, 80, 16, 96, 1, 1),
        ("mnl_pw_40x40x96_24", 40, 40, 96, 24, 1, 1),
        ("mnl_pw_40x40x24_144", 40, 40, 24, 144, 1, 1),
        ("mnl_pw_40x40x144_24", 40, 40, 144, 24, 1, 1),
        ("mnl_pw_10x10x64_384", 10, 10, 64, 384, 1, 1),
        ("mnl_pw_10x10x384_64", 10, 10, 384, 64, 1, 1),
    ]
    dws = [("mobilenet_dw_3x3_112x112x32", 112, 112, 32, 3, 1),
           ("mobilenet_dw_3x3_14x14x512", 14, 14, 512, 3, 1),
           ("mnl_dw_3x3_80x80x32", 80, 80, 32, 3, 1),
           ("mnl_dw_3x3s2_80x80x96", 80, 80, 96, 3, 2),
           ("mnl_dw_3x3_40x40x144", 40, 40, 144, 3, 1)]
    if quick:
        convs = convs[1:2] + convs[5:6]
        dws = dws[1:2]
    out = []
    for name, h, w, cin, cout, k, s in convs:
        oh, ow = -(-h // s), -(-w // s)
        out.append(Layer(name, "conv", {"h": h, "w": w, "cin": cin, "cout": cout, "k": k,
                                        "stride": s}, oh * ow * cout * k * k * cin))
    for name, h, w, c, k, s in dws:
        oh, ow = -(-h // s), -(-w // s)
        out.append(Layer(name, "dwconv", {"h": h, "w": w, "c": c, "k": k, "stride": s},
                         oh * ow * c * k * k))
    return out


# ------------------------------------------------------------------------------------ timing
class Timer:
    """Interleaved rounds: each round times every candidate once (a batch of calls sized to
    ~`batch_s` seconds); the result per candidate is the median over rounds, per call."""

    def __init__(self, rounds: int, batch_s: float) -> None:
        self.rounds = rounds
        self.batch_s = batch_s

    def run(self, candidates: dict[str, Callable[[int], float]]) -> dict[str, float]:
        # candidate(n) runs n calls and returns their total seconds
        sizes = {}
        for name, fn in candidates.items():
            fn(2)  # warm-up
            one = max(fn(3) / 3, 1e-7)
            sizes[name] = max(1, int(self.batch_s / one))
        samples: dict[str, list[float]] = {name: [] for name in candidates}
        for _ in range(self.rounds):
            for name, fn in candidates.items():
                samples[name].append(fn(sizes[name]) / sizes[name])
        return {name: float(np.median(v)) for name, v in samples.items()}


def _ours_runner(plan: Any, x: np.ndarray, pool: Any) -> Callable[[int], float]:
    def run(n: int) -> float:
        return float(sum(plan.native.benchmark(x, n, pool)))
    return run


def _litert_runner(model: bytes, x: np.ndarray, threads: int) -> Callable[[int], float]:
    it = layer_models.interpreter(model, kernels="xnnpack", num_threads=threads)
    it.set_tensor(it.get_input_details()[0]["index"], x)

    def run(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            it.invoke()
        return time.perf_counter() - t0
    return run


def _quantize(float_model: bytes, recipe_name: str) -> bytes:
    from ai_edge_quantizer import quantizer, recipe

    rec = getattr(recipe, recipe_name)()
    with open(os.devnull, "w") as devnull:  # the quantiser prints progress
        stdout, sys.stdout = sys.stdout, devnull
        try:
            result = quantizer.Quantizer(float_model, rec).quantize()
        finally:
            sys.stdout = stdout
    return bytes(result.quantized_model)


# ------------------------------------------------------------------------------------ layers
def _weights(rng: np.random.Generator, weight_type: str, n: int, k: int) -> np.ndarray:
    lo, hi = kernels.VALUE_RANGES[weight_type]
    return rng.integers(lo, hi + 1, (n, k)).astype(np.int8)


def build(layer: Layer, rng: np.random.Generator) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ours, theirs): name -> (plan or model, input) for one layer."""
    s = layer.shape
    q_in, q_out = Quant(0.05, 3), Quant(0.2, -4)
    ours: dict[str, Any] = {}
    theirs: dict[str, Any] = {}
    if layer.kind == "fc":
        m, k, n = s["m"], s["k"], s["n"]
        x8 = rng.integers(-128, 128, (m, k)).astype(np.int8)
        xf = rng.standard_normal((m, k)).astype(np.float32)
        wf = (rng.standard_normal((n, k)) * 0.05).astype(np.float32)
        bias = rng.integers(-1000, 1000, n).astype(np.int32)
        scales = np.full(n, 0.01, np.float32)
        for wt in OURS:
            packed = kernels.pack(_weights(rng, wt, n, k), wt, scales)
            ours[wt] = (kernels.FullyConnected(packed, input=q_in, output=q_out, bias=bias),
                        x8, packed.nbytes)
        fmodel = layer_models.float_fully_connected(wf, None, batch=m)
        theirs["fp32"] = (fmodel, xf, n * k * 4)
        theirs["int8"] = (layer_models.int8_fully_connected(
            _weights(rng, "int8", n, k), scales, bias, batch=m, input_scale=q_in.scale,
            input_zero_point=q_in.zero_point, output_scale=q_out.scale,
            output_zero_point=q_out.zero_point), x8, n * k)
        theirs["wi4"] = (lambda fm=fmodel: _quantize(fm, "dynamic_wi4_afp32"), xf, n * k // 2)
        theirs["wi2c"] = (lambda fm=fmodel: _quantize(fm, "dynamic_wi2c_afp32"), xf, n * k // 4)
    elif layer.kind == "conv":
        h, w, cin, cout, k, st = s["h"], s["w"], s["cin"], s["cout"], s["k"], s["stride"]
        shape = (1, h, w, cin)
        x8 = rng.integers(-128, 128, shape).astype(np.int8)
        xf = rng.standard_normal(shape).astype(np.float32)
        bias = rng.integers(-1000, 1000, cout).astype(np.int32)
        scales = np.full(cout, 0.01, np.float32)
        for wt in OURS:
            packed = kernels.pack(_weights(rng, wt, cout, k * k * cin), wt, scales)
            ours[wt] = (kernels.Conv2D(packed, input_shape=shape, kernel=k, strides=st,
                                       padding="same", input=q_in, output=q_out, bias=bias),
                        x8, packed.nbytes)
        wf = (rng.standard_normal((cout, k, k, cin)) * 0.05).astype(np.float32)
        fmodel = layer_models.float_conv2d(wf, np.zeros(cout, np.float32), input_shape=shape,
                                           strides=(st, st))
        theirs["fp32"] = (fmodel, xf, wf.size * 4)
        theirs["int8"] = (layer_models.int8_conv2d(
            _weights(rng, "int8", cout, k * k * cin).reshape(cout, k, k, cin), scales, bias,
            input_shape=shape, strides=(st, st), input_scale=q_in.scale,
            input_zero_point=q_in.zero_point, output_scale=q_out.scale,
            output_zero_point=q_out.zero_point), x8, wf.size)
        theirs["wi4"] = (lambda fm=fmodel: _quantize(fm, "dynamic_wi4_afp32"), xf, wf.size // 2)
        theirs["wi2c"] = (lambda fm=fmodel: _quantize(fm, "dynamic_wi2c_afp32"), xf, wf.size // 4)
    else:  # depthwise: int8 only on our side
        h, w, c, k, st = s["h"], s["w"], s["c"], s["k"], s["stride"]
        shape = (1, h, w, c)
        x8 = rng.integers(-128, 128, shape).astype(np.int8)
        xf = rng.standard_normal(shape).astype(np.float32)
        filt = _weights(rng, "int8", k * k, c).reshape(k, k, c)
        scales = np.full(c, 0.01, np.float32)
        bias = rng.integers(-1000, 1000, c).astype(np.int32)
        ours["int8"] = (kernels.DepthwiseConv2D(filt, scales, input_shape=shape, strides=st,
                                                padding="same", input=q_in, output=q_out,
                                                bias=bias), x8, filt.size)
        wf = (rng.standard_normal((k, k, c)) * 0.05).astype(np.float32)
        theirs["fp32"] = (layer_models.float_depthwise_conv2d(
            wf, np.zeros(c, np.float32), input_shape=shape, strides=(st, st)), xf, wf.size * 4)
        theirs["int8"] = (layer_models.int8_depthwise_conv2d(
            filt, scales, bias, input_shape=shape, strides=(st, st), input_scale=q_in.scale,
            input_zero_point=q_in.zero_point, output_scale=q_out.scale,
            output_zero_point=q_out.zero_point), x8, filt.size)
    return ours, theirs


def bench_layer(layer: Layer, threads: int, timer: Timer, rng: np.random.Generator,
                pool: Any) -> list[Result]:
    ours, theirs = build(layer, rng)
    candidates: dict[str, Callable[[int], float]] = {}
    meta: dict[str, tuple[int, str | None]] = {}
    results: list[Result] = []
    for wt, (plan, x, nbytes) in ours.items():
        candidates[f"ours:{wt}"] = _ours_runner(plan, x, pool)
        name = plan.kernel_name(x.shape[0]) if layer.kind == "fc" else plan.kernel_name
        meta[f"ours:{wt}"] = (nbytes, name)
    for name, (model, x, nbytes) in theirs.items():
        key = f"xnnpack:{name}"
        try:
            content = model() if callable(model) else model
            candidates[key] = _litert_runner(content, x, threads)
            meta[key] = (nbytes, None)
        except Exception as exc:  # a recipe or XNNPACK may not support the layer: say so
            results.append(Result(layer.name, key, threads, None,
                                  error=f"{type(exc).__name__}: {str(exc)[:200]}"))
    for key, t in timer.run(candidates).items():
        nbytes, kname = meta[key]
        results.append(Result(layer.name, key, threads, t * 1e3, nbytes, nbytes / t / 1e9, kname))
    return results


def ratios(results: list[Result]) -> list[dict[str, Any]]:
    out = []
    by = {(r.layer, r.threads, r.impl): r for r in results if r.time_ms}
    for (layer, threads, impl), r in sorted(by.items()):
        if not impl.startswith("ours:"):
            continue
        row: dict[str, Any] = {"layer": layer, "threads": threads, "ours": impl[5:],
                               "time_ms": round(r.time_ms, 4)}
        for theirs in THEIRS:
            t = by.get((layer, threads, f"xnnpack:{theirs}"))
            row[f"speedup_vs_xnnpack_{theirs}"] = round(t.time_ms / r.time_ms, 3) if t else None
        out.append(row)
    return out


def host_info(threads: list[int]) -> dict[str, Any]:
    from sdk.run.litert import backend

    be = backend()
    feats = native.cpu_features()
    return {
        "machine": platform.machine(), "python": platform.python_version(),
        "cpu_features": [k for k, v in feats.items() if v is True],
        "physical_cores": native.physical_core_count(),
        "usable_cores": native.usable_core_count(), "threads": threads,
        "isa": kernels.resolve_isa(),  # honours $EDGE_KERNEL_ISA, as the plans do
        # every tier this binary carries and whether this CPU runs it (avxvnni / i8mm are built
        # on x86 / aarch64 everywhere but run only where CPUID / HWCAP say so: docs/kernels.md)
        "kernel_isas": {isa: isa in kernels.available_isas() for isa in kernels.built_isas()},
        "litert": f"{be.name} {be.version}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def markdown(report: Report) -> str:
    """A README table: per layer and thread count, our time per weight type and the ratio to
    XNNPACK's best matching path."""
    rows = ["| layer | threads | XNNPACK fp32 / int8 / wi4 / wi2c (ms) | ours int8 / int4 / "
            "ternary / int2 (ms) | ternary vs int8, wi4, wi2c | int8 vs int8 |",
            "|---|---|---|---|---|---|"]
    by = {(r.layer, r.threads, r.impl): r for r in report.results}

    def t(layer: str, th: int, impl: str) -> str:
        r = by.get((layer, th, impl))
        return "-" if r is None or r.time_ms is None else f"{r.time_ms:.3f}"

    def ratio(layer: str, th: int, a: str, b: str) -> str:
        ra, rb = by.get((layer, th, a)), by.get((layer, th, b))
        if not ra or not rb or not ra.time_ms or not rb.time_ms:
            return "-"
        return f"{rb.time_ms / ra.time_ms:.2f}x"

    layers = list(dict.fromkeys(r.layer for r in report.results))
    for layer in layers:
        for th in report.host["threads"]:
            theirs = " / ".join(t(layer, th, f"xnnpack:{x}") for x in THEIRS)
            ours = " / ".join(t(layer, th, f"ours:{x}") for x in OURS)
            tern = ", ".join(ratio(layer, th, "ours:ternary", f"xnnpack:{x}")
                             for x in ("int8", "wi4", "wi2c"))
            rows.append(f"| {layer} | {th} | {theirs} | {ours} | {tern} | "
                        f"{ratio(layer, th, 'ours:int8', 'xnnpack:int8')} |")
    return "\n".join(rows)


def thread_counts(spec: str) -> list[int]:
    """The thread counts of a --threads list, 'all' being the physical cores this process may
    run on (`usable_core_count`: under `taskset -c 0` one, as the runtime's pools take), not
    the machine's: threads beyond them only take turns on a CPU."""
    cores = native.usable_core_count()
    return sorted({cores if t == "all" else int(t) for t in spec.split(",")})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a few small layers (smoke run)")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    ap.add_argument("--batch-ms", type=float, default=20.0, help="time per candidate per round")
    ap.add_argument("--threads", default="1,all",
                    help="comma list; 'all' = the physical cores this process may run on")
    ap.add_argument("--only", default="", help="run layers whose name contains this")
    ap.add_argument("--output", help="also write the JSON here")
    ap.add_argument("--markdown", action="store_true", help="print a README table on stderr")
    ap.add_argument("--litert-isa", default="native", choices=("native", *litert_isa.LEVELS),
                    help="run XNNPACK and our kernels at this x86 level (litert_isa.py)")
    args = ap.parse_args(argv)
    restriction = litert_isa.select_isa(args.litert_isa)

    threads = thread_counts(args.threads)
    n = native.load()
    pools = {th: kernels.ThreadPool(th) for th in threads}
    bw = {}
    for th in threads:
        bw[f"dram_{th}t"] = round(n.read_bandwidth_gbps(512 << 20, 3, pools[th].native), 1)
        bw[f"l3_8MB_{th}t"] = round(n.read_bandwidth_gbps(8 << 20, 10, pools[th].native), 1)
    report = Report(host_info(threads), bw)
    timer = Timer(args.rounds, args.batch_ms / 1e3)
    rng = np.random.default_rng(0)
    layers = [x for x in fc_layers(args.quick) + conv_layers(args.quick) if args.only in x.name]
    for layer in layers:
        for th in threads:
            print(f"# {layer.name} threads={th}", file=sys.stderr, flush=True)
            report.results.extend(bench_layer(layer, th, timer, rng, pools[th].native))
    report.ratios = ratios(report.results)
    report.host["litert_isa"] = asdict(restriction) if restriction else "native"
    report.host["xnnpack_kernels"] = litert_isa.kernels_report(args.litert_isa)
    text = json.dumps(asdict(report), indent=1)
    print(text)
    if args.output:
        from sdk.base.fileio import atomic_write_bytes

        atomic_write_bytes(args.output, text.encode())
    if args.markdown:
        print(markdown(report), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
