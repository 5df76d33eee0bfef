"""Whole models: .edge (ternary / int2 / int4 / int8) in edge-run versus the same model INT8
and FP32 in LiteRT + XNNPACK. One run, one host; ratios printed as JSON.

    python benchmarks/edge_models.py [--quick] [--threads 1,2] [--output edge_models.json]

Models (random weights: speed does not depend on them):
  * resnet-like: ResNet-18 topology (7x7/2 stem, max pool, 4 stages of 2 basic blocks with
    1x1 projections, global average pool, 1000-way FC) at 160x160x3;
  * mobilenet-like: Keras' MobileNetV2 (width 1.0, weights=None) at 160x160x3.
Both are converted by TensorFlow's own converter to FP32 and to full-integer INT8 (random
calibration data). The INT8 model is read into the IR and written as .edge unchanged ("int8").

Sub-byte variants. Issue 4 builds the real quantiser; until then this benchmark makes sub-byte
weights with a simple, documented function of its own (`requantize_weights`): every CONV_2D and
FULLY_CONNECTED except the first convolution (3 input channels) gets its int8 weights
dequantised and re-quantised per output channel, symmetric, zero point 0:
  int4:    scale = max|w| / 7,          q = clip(round(w / scale), -8, 7)
  int2:    scale = max|w| / 2,          q = clip(round(w / scale), -2, 1)
  ternary: scale = mean|w| (absmean),   q = clip(round(w / scale), -1, 1)
and the int32 bias is re-expressed in the new scale. Depthwise convolutions stay int8 (the
kernel library's depthwise kernel is int8). Accuracy is not the point here (weights are random).

Timing: edge-run (`--runs`, `--warmup`, `--threads`; the p50 of its timed runs) and LiteRT's
Python interpreter with XNNPACK (default delegate) and the same thread count (p50 of timed
invokes), in `--rounds` interleaved rounds (every implementation once per round, so drift from
other processes hits all of them alike); each figure is the median over the rounds of the
round's p50. Ratios are LiteRT time / .edge time (above 1: .edge is faster). On one thread the
CPU time per run is reported too (`cpu_ms`: LiteRT's thread CPU time per invoke; edge-run's
`timed_cpu_ms`, its process CPU clock read just before and after its timed runs, over the runs;
null with the reason in `cpu_unmeasured` for an edge-run built before it reported that) and
`speedup_cpu` gives the ratios of those (null where a side was not measured): on a shared host
a process that waits for a core loses wall time but not CPU time, so these ratios hold when the
wall-time ones are noise.
`speedup_min` compares the fastest run of all rounds (`min_ms`): the run least disturbed by
other processes, the other figure that means something on a loaded host.

`--litert-isa avx2` measures an AVX2-class host (Haswell .. Zen 3) on a newer x86 CPU: LiteRT's
XNNPACK is restricted to its AVX2 kernels (litert_isa.py) and edge-run to ours
(EDGE_KERNEL_ISA=avx2); the JSON names the XNNPACK micro-kernels chosen, checked against the
level, and every .edge layer's kernel. `--litert-isa avx512vnni` measures an AVX-512 VNNI host
without AMX (Ice Lake, Zen 4) on a Sapphire Rapids-class CPU, where "native" XNNPACK runs its
AMX tiles (`..._16x64c4__avx512amx`) and our best tier is still AVX-512 VNNI.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import litert_isa
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from sdk.base import native
from sdk.converters.edge import write_edge
from sdk.converters.ir import DType, Model, QuantParams, Tensor
from sdk.converters.tflite import read_tflite
from sdk.run.litert import backend

SCHEMES = ("int8", "int4", "int2", "ternary")


# ---------------------------------------------------------------- models
def resnet_like(size: int) -> Any:
    import tensorflow as tf

    layers = tf.keras.layers
    x_in = tf.keras.Input((size, size, 3), name="image")
    x = layers.Conv2D(64, 7, strides=2, padding="same", use_bias=False)(x_in)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    for stage, filters in enumerate((64, 128, 256, 512)):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            shortcut = x
            y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
            y = layers.BatchNormalization()(y)
            y = layers.ReLU()(y)
            y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
            y = layers.BatchNormalization()(y)
            if stride != 1 or shortcut.shape[-1] != filters:
                shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(shortcut)
                shortcut = layers.BatchNormalization()(shortcut)
            x = layers.ReLU()(layers.Add()([y, shortcut]))
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(1000, name="logits")(x)
    return tf.keras.Model(x_in, out, name="resnet_like")


def mobilenet_like(size: int) -> Any:
    import tensorflow as tf

    return tf.keras.applications.MobileNetV2(input_shape=(size, size, 3), weights=None,
                                             classifier_activation=None)


def _randomize_batchnorm(model: Any, rng: np.random.Generator) -> None:
    """Fresh BN layers are identities; give them plausible statistics (random weights)."""
    import tensorflow as tf

    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                               rng.normal(0, 0.1, beta.shape).astype(np.float32),
                               rng.normal(0, 0.1, mean.shape).astype(np.float32),
                               rng.uniform(0.5, 1.5, var.shape).astype(np.float32)])


def convert(model: Any, size: int, int8: bool, rng: np.random.Generator) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        samples = [rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32) for _ in range(8)]
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([s] for s in samples)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return conv.convert()


# ---------------------------------------------------------------- sub-byte weights
LEVELS = {"int4": (-8, 7), "int2": (-2, 1), "ternary": (-1, 1)}


def requantize_weights(model: Model, scheme: str) -> tuple[Model, int]:
    """`model` (int8 IR) with CONV_2D / FULLY_CONNECTED weights re-quantised to `scheme` (see
    the module docstring); the first convolution and depthwise layers stay int8. Returns the
    model (changed in place) and the number of layers changed."""
    lo, hi = LEVELS[scheme]
    dtype = DType.INT4 if scheme == "int4" else DType.INT2
    changed = 0
    for op in model.main.operators:
        if op.type not in ("CONV_2D", "FULLY_CONNECTED"):
            continue
        x, w = op.inputs[0], op.inputs[1]
        if w is None or w.quant is None or x is None or x.quant is None:
            continue
        if op.type == "CONV_2D" and w.shape[-1] <= 3:
            continue  # the stem sees raw pixels: kept int8, as low-bit networks do
        q = w.numpy().astype(np.float64)
        n = q.shape[0]
        scale_old = np.broadcast_to(w.quant.scale, (n,)).astype(np.float64)
        real = q * scale_old.reshape((n,) + (1,) * (q.ndim - 1))
        flat = np.abs(real.reshape(n, -1))
        if scheme == "ternary":
            scale = flat.mean(axis=1)
        else:
            scale = flat.max(axis=1) / (7 if scheme == "int4" else 2)
        scale = np.where(scale > 0, scale, 1e-8).astype(np.float32)
        new_q = np.clip(np.round(real / scale.reshape((n,) + (1,) * (q.ndim - 1))), lo, hi)
        new_w = Tensor(w.name, w.shape, dtype, data=new_q.astype(np.int8),
                       quant=QuantParams.per_channel(scale, axis=0))
        op.inputs[1] = new_w
        b = op.inputs[2] if len(op.inputs) > 2 else None
        if b is not None and b.is_constant:
            s_in = float(x.quant.scale[0])
            real_b = b.numpy().astype(np.float64) * float(s_in) * scale_old
            bias_scale = (s_in * scale.astype(np.float64)).astype(np.float32)
            op.inputs[2] = Tensor(b.name, b.shape, DType.INT32,
                                  data=np.round(real_b / bias_scale).astype(np.int32),
                                  quant=QuantParams.per_channel(bias_scale, axis=0))
        changed += 1
    model.main.prune()
    return model, changed


# ---------------------------------------------------------------- timing
def time_litert(model: bytes, threads: int, runs: int, warmup: int) -> dict[str, float]:
    """p50 / mean / min wall ms of `runs` invokes; `cpu_ms`: this thread's CPU time per invoke
    (all of it on one thread, where XNNPACK runs on the calling thread)."""
    interp = backend().interpreter(model_content=model, num_threads=threads)
    interp.allocate_tensors()
    for d in interp.get_input_details():
        if d["dtype"] == np.int8:
            x = np.random.default_rng(0).integers(-128, 128, d["shape"], dtype=np.int8)
        else:
            x = np.random.default_rng(0).uniform(-1, 1, d["shape"]).astype(np.float32)
        interp.set_tensor(d["index"], x)
    for _ in range(warmup):
        interp.invoke()
    times = []
    c0 = time.thread_time()
    for _ in range(runs):
        t0 = time.perf_counter()
        interp.invoke()
        times.append((time.perf_counter() - t0) * 1000)
    cpu = (time.thread_time() - c0) * 1000 / runs
    return {"p50_ms": float(np.median(times)), "mean_ms": float(np.mean(times)),
            "min_ms": float(np.min(times)), "cpu_ms": cpu}


NO_TIMED_CPU = "edge-run reports no timed_cpu_ms (built before it did): CPU time not measured"


def edge_run_cpu_ms(report: dict[str, Any], runs: int) -> tuple[float | None, str | None]:
    """edge-run's CPU time per timed run from its JSON `report`: its `timed_cpu_ms` (the process
    CPU clock, all threads, read just before and after the timed runs) over `runs`; else None
    and the reason. Never the child's rusage: less a wall-clock init_ms it went negative on a
    loaded host (contention.py, 467fe45), and the difference of two children's rusage, clamped
    at 0, hid the same error here."""
    timed = report.get("timed_cpu_ms")
    if timed is None:
        return None, NO_TIMED_CPU
    if timed < 0:  # a clock difference cannot be: say so rather than report it
        return None, f"edge-run reported timed_cpu_ms {timed} < 0"
    return float(timed) / runs, None


def time_edge(path: Path, threads: int, runs: int, warmup: int,
              exe: Path | None = None) -> dict[str, Any]:
    """One edge-run of `path` (`exe`, default the build's): p50 / mean / min wall ms of its timed
    runs and `cpu_ms`, its CPU time per timed run (`edge_run_cpu_ms`; None with the reason in
    `cpu_unmeasured`)."""
    if exe is None:
        exe = native.edge_run_path("x86_64" if platform.machine() == "x86_64" else "arm64-v8a")
    out = subprocess.run([str(exe), str(path), "--runs", str(runs), "--warmup", str(warmup),
                          "--threads", str(threads), "--json"], capture_output=True,
                         text=True, check=True)
    report = json.loads(out.stdout)
    lat = report["latency_ms"]
    kernels = sorted({layer["kernel"] for layer in report["layers"]
                      if layer["op"] in ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D")})
    cpu_ms, unmeasured = edge_run_cpu_ms(report, runs)
    row = {"p50_ms": lat["p50"], "mean_ms": lat["mean"], "min_ms": lat["min"], "cpu_ms": cpu_ms,
           "init_ms": report["init_ms"], "peak_rss_kb": report["peak_rss_kb"],
           "arena_bytes": report["arena_bytes"], "kernels": kernels}
    if unmeasured is not None:
        row["cpu_unmeasured"] = unmeasured
    return row


def _median_of_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One implementation's rounds: numbers are the median over rounds (each round's p50 ...),
    the rest is the first round's; `p50_ms_rounds` keeps every round's p50."""
    out = dict(rounds[0])
    for key, value in rounds[0].items():
        if isinstance(value, bool) or not (value is None or isinstance(value, (int, float))):
            continue  # the first round's
        values = [r.get(key) for r in rounds]
        # a figure some round did not measure (cpu_ms of an old edge-run): none over the rounds
        out[key] = None if None in values else float(np.median(values))
    out["min_ms"] = float(min(r["min_ms"] for r in rounds))  # the fastest run of all rounds
    out["p50_ms_rounds"] = [round(r["p50_ms"], 4) for r in rounds]
    return out


def bench_model(name: str, keras_model: Any, size: int, threads: list[int], runs: int,
                warmup: int, workdir: Path, rounds: int = 1) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    _randomize_batchnorm(keras_model, rng)
    fp32 = convert(keras_model, size, False, rng)
    int8 = convert(keras_model, size, True, rng)
    row: dict[str, Any] = {"model": name, "input": [1, size, size, 3],
                           "sizes_bytes": {"litert_fp32": len(fp32), "litert_int8": len(int8)},
                           "threads": {}}
    edge_files = {}
    for scheme in SCHEMES:
        ir = read_tflite(int8)
        changed = 0
        if scheme != "int8":
            ir, changed = requantize_weights(ir, scheme)
        path = workdir / f"{name}_{scheme}.edge"
        write_edge(ir, path, recipe=scheme if scheme == "int8" else f"{scheme} (benchmark)")
        edge_files[scheme] = path
        row["sizes_bytes"][f"edge_{scheme}"] = path.stat().st_size
        row.setdefault("sub_byte_layers", {})[scheme] = changed
    for t in threads:
        by_impl: dict[str, list[dict[str, Any]]] = {}
        for _ in range(rounds):
            by_impl.setdefault("litert_fp32_xnnpack", []).append(
                time_litert(fp32, t, runs, warmup))
            by_impl.setdefault("litert_int8_xnnpack", []).append(
                time_litert(int8, t, runs, warmup))
            for scheme, path in edge_files.items():
                by_impl.setdefault(f"edge_{scheme}", []).append(time_edge(path, t, runs, warmup))
        res: dict[str, Any] = {k: _median_of_rounds(v) for k, v in by_impl.items()}
        for key, label in (("p50_ms", "speedup"), ("min_ms", "speedup_min"),
                           ("cpu_ms", "speedup_cpu")):
            if key == "cpu_ms" and t != 1:
                continue  # CPU time is latency only on one thread
            ratios: dict[str, float | None] = {}
            for scheme in SCHEMES:
                e = res[f"edge_{scheme}"][key]
                for ref in ("int8", "fp32"):
                    r = res[f"litert_{ref}_xnnpack"][key]
                    # null where a side was not measured (an edge-run without timed_cpu_ms)
                    ratios[f"edge_{scheme}_vs_litert_{ref}"] = (
                        None if r is None or not e else round(r / e, 3))
            measured = [v for s in SCHEMES
                        if (v := ratios[f"edge_{s}_vs_litert_int8"]) is not None]
            ratios["best_edge_vs_litert_int8"] = max(measured) if measured else None
            res[label] = ratios
        row["threads"][str(t)] = res
    return row


def emit_report(report: Any, output: str | None, indent: int = 2) -> int:
    """Print a benchmark's JSON report and write it to `output` when given (this file's
    main and the benchmarks that import it: contention.py, layer_ratios.py); the exit code."""
    text = json.dumps(report, indent=indent)
    print(text)
    if output:
        Path(output).write_text(text + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small inputs, few runs")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds; figures are medians over them")
    parser.add_argument("--models", default="resnet-like,mobilenet-like")
    parser.add_argument("--output", help="also write the JSON here")
    parser.add_argument("--litert-isa", default="native", choices=("native", *litert_isa.LEVELS),
                        help="run XNNPACK and edge-run at this x86 level (litert_isa.py)")
    args = parser.parse_args(argv)
    restriction = litert_isa.select_isa(args.litert_isa)
    size = 96 if args.quick else 160
    runs = args.runs or (5 if args.quick else 30)
    warmup = args.warmup or (2 if args.quick else 5)
    threads = [int(t) for t in args.threads.split(",")]
    from sdk.base.native import cpu_features

    report: dict[str, Any] = {
        "host": {"machine": platform.machine(), "python": platform.python_version(),
                 "cpu_features": sorted(k for k, v in cpu_features().items() if v is True),
                 "cpus": os.cpu_count(), "litert": backend().version},
        "runs": runs, "warmup": warmup, "rounds": args.rounds, "models": [],
    }
    builders = {"resnet-like": resnet_like, "mobilenet-like": mobilenet_like}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            print(f"# {name} ...", file=sys.stderr)
            report["models"].append(bench_model(name, builders[name](size), size, threads, runs,
                                                warmup, Path(tmp), rounds=args.rounds))
    report["litert_isa"] = asdict(restriction) if restriction else "native"
    report["xnnpack_kernels"] = litert_isa.kernels_report(args.litert_isa)
    return emit_report(report, args.output)


if __name__ == "__main__":
    sys.exit(main())
