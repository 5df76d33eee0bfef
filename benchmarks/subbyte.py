"""Sub-byte models: edgesdk (with and without its delegate) vs ai-edge-quantizer, one run.

    python benchmarks/subbyte.py [--quick] > subbyte.json

Two parts, same host, same LiteRT:

quality  The digits CNN (trained here) and one FC layer 1024x1024 exported as float, int8, int4,
         2-bit by edgesdk (several options) and by ai-edge-quantizer's recipes
         (dynamic_wi8_afp32, dynamic_wi4_afp32, dynamic_wi4b32_afp32, dynamic_wi2c_afp32,
         static w4a8 = its static_wi8_ai8 recipe with 4-bit weights), on the same float .tflite
         and data. Every file's outputs on held-out samples are compared with the float model's
         (SQNR dB, accuracy) under XNNPACK and under LiteRT's builtin kernels; files with
         edgesdk custom ops run with the edgesdk delegate. Files without custom ops are also
         run with the delegate (sqnr_db_delegate, delegate_nodes: dynamic-range nodes, float
         activations with quantised weights, are the delegate's since it quantises inputs at run
         time as LiteRT's hybrid kernels do).
speed    The CNN and FC layers (1024x1024 and 4096x4096, batch 1) in LiteRT fp32, int8, int4
         (ours, ai-edge-quantizer's) and 2-bit (ours, its), each with and without the edgesdk
         delegate, 1 and all threads (the physical cores it may run on). Each measurement is
         its own process: median latency of timed invokes after warm-up, and peak RSS (VmHWM)
         above the process's peak before the model was loaded (XNNPACK keeps a repacked copy
         of the weights: that shows here).
         Ratios are against XNNPACK's 2-bit path (ai-edge-quantizer's dynamic_wi2c_afp32),
         against int8 + XNNPACK, and (delegate rows) against the same file in stock LiteRT,
         measured in this run, on the medians and on the fastest runs; each delegate row says
         why the delegate claimed or left each node (its claim rule, cost_rule.h), and
         `bar_delegate_never_slower` checks issue 17's bar over every file.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sdk
from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
from sdk.converters.tflite import read_tflite, to_tflite_bytes
from sdk.run.fidelity import compare_outputs


@contextlib.contextmanager
def quiet():
    with contextlib.redirect_stdout(io.StringIO()):
        yield


# ---------------------------------------------------------------------------- models
def fc_float_model(n: int, seed: int = 0) -> bytes:
    """One FULLY_CONNECTED [n, n] (+ bias, RELU), float, with a signature for the quantisers."""
    from sdk.converters.ir import SignatureDef

    rng = np.random.default_rng(seed)
    g = Graph(name="main")
    x = g.add_tensor(Tensor("x", (1, n), DType.FLOAT32))
    w = g.constant("w", (rng.standard_normal((n, n)) / np.sqrt(n)).astype(np.float32))
    b = g.constant("b", (rng.standard_normal(n) * 0.1).astype(np.float32))
    y = g.add_tensor(Tensor("y", (1, n), DType.FLOAT32))
    g.operators.append(Operator("FULLY_CONNECTED", [x, w, b], [y], name="fc",
                                attrs={"fused_activation_function": "RELU"}))
    g.inputs, g.outputs = [x], [y]
    return to_tflite_bytes(Model([g], signatures=[SignatureDef("serving_default", 0,
                                                               {"x": x}, {"y": y})]))


def digits_float(seed: int) -> tuple[bytes, Any]:
    import tensorflow as tf

    from sdk.examples import digits, digits_cnn

    data = digits()
    with quiet():
        keras = digits_cnn(data, seed=seed)
        return bytes(tf.lite.TFLiteConverter.from_keras_model(keras).convert()), data


# ---------------------------------------------------------------------------- quantisers
def aeq(float_tflite: bytes, name: str, x_cal: np.ndarray) -> bytes:
    from ai_edge_quantizer import quantizer, recipe

    if name == "static_w4a8":
        rc = copy.deepcopy(recipe.static_wi8_ai8())
        rc[0]["op_config"]["weight_tensor_config"]["num_bits"] = 4
    else:
        rc = getattr(recipe, name)()
    q = quantizer.Quantizer(float_tflite)
    q.load_quantization_recipe(rc)
    with quiet():
        if name.startswith("static"):
            sig = read_tflite(float_tflite).signatures[0]
            (input_name,) = sig.inputs
            cal = q.calibrate({sig.key: [{input_name: x[None]} for x in x_cal[:200]]})
            return bytes(q.quantize(cal).quantized_model)
        return bytes(q.quantize().quantized_model)


def ours(float_tflite: bytes, scheme: str, x_cal: np.ndarray, single_layer: bool = False,
         **kwargs: Any) -> tuple[bytes, Any]:
    if single_layer and scheme != "int8":  # the one layer is first and last: quantise it anyway
        options = dict(kwargs.get("scheme_options", {}))
        options.update(keep_first=False, keep_last=False)
        kwargs = {**kwargs, "scheme_options": options}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.tflite"
        result = sdk.export(float_tflite, scheme, calibration=x_cal, validation=x_cal[:8],
                            output=out, per_layer=False, report=False, **kwargs)
        return out.read_bytes(), result


#: (label, quantiser, scheme or recipe, options)
VARIANTS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("int8", "edgesdk", "int8", {}),
    ("int4", "edgesdk", "int4", {}),
    ("int4 all layers", "edgesdk", "int4",
     {"scheme_options": {"keep_first": False, "keep_last": False}}),
    ("int4 dynamic", "edgesdk", "int4",
     {"activations": "float32", "scheme_options": {"keep_first": False, "keep_last": False}}),
    ("int4 dynamic b32", "edgesdk", "int4",
     {"activations": "float32",
      "scheme_options": {"block_size": 32, "keep_first": False, "keep_last": False}}),
    ("ternary", "edgesdk", "ternary", {}),
    ("ternary all layers", "edgesdk", "ternary",
     {"scheme_options": {"keep_first": False, "keep_last": False}}),
    ("ternary stock (no custom ops)", "edgesdk", "ternary", {"scheme_options":
                                                             {"custom_ops": False}}),
    ("int2", "edgesdk", "int2", {}),
    ("int2 all layers", "edgesdk", "int2",
     {"scheme_options": {"keep_first": False, "keep_last": False}}),
    ("aeq dynamic_wi8_afp32", "aeq", "dynamic_wi8_afp32", {}),
    ("aeq dynamic_wi4_afp32", "aeq", "dynamic_wi4_afp32", {}),
    ("aeq dynamic_wi4b32_afp32", "aeq", "dynamic_wi4b32_afp32", {}),
    ("aeq static w4a8", "aeq", "static_w4a8", {}),
    ("aeq dynamic_wi2c_afp32", "aeq", "dynamic_wi2c_afp32", {}),
]


# ---------------------------------------------------------------------------- quality
def outputs(model: bytes, x: np.ndarray, *, xnnpack: bool, delegate: bool) -> np.ndarray:
    """Float outputs (int8 inputs / outputs quantised / dequantised, as callers would)."""
    from sdk.run import load_delegate
    from sdk.run.runner import LiteRTRunner

    runner = LiteRTRunner(model, reference=not xnnpack,
                          delegates=[load_delegate()] if delegate else None)
    return np.concatenate([runner.invoke([x[i:i + 1]])[0] for i in range(len(x))])


def delegate_nodes(model: bytes) -> dict[str, int]:
    """What the edgesdk delegate claims in a file: "OP weights activations" -> count."""
    from sdk.run import Interpreter

    report = Interpreter(model_content=model).report
    out: dict[str, int] = {}
    for c in report.claimed if report else []:
        key = f"{c.op} {c.weights} {c.activations}"
        out[key] = out.get(key, 0) + 1
    return out


def quality(name: str, float_tflite: bytes, x_cal: np.ndarray, x_val: np.ndarray,
            labels: np.ndarray | None, single_layer: bool = False) -> dict[str, Any]:
    ref = outputs(float_tflite, x_val, xnnpack=True, delegate=False)
    rows: dict[str, Any] = {"float": {"size_bytes": len(float_tflite)}}
    if labels is not None:
        rows["float"]["accuracy"] = round(float((ref.argmax(-1) == labels).mean()), 4)
    files: dict[str, bytes] = {"float": float_tflite}
    for label, tool, what, kwargs in VARIANTS:
        try:
            if tool == "aeq":
                data = aeq(float_tflite, what, x_cal)
                custom: dict[str, int] = {}
            else:
                data, result = ours(float_tflite, what, x_cal, single_layer, **kwargs)
                custom = result.custom_ops
        except Exception as exc:  # report, do not hide, a variant that cannot be made
            rows[label] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        files[label] = data
        row: dict[str, Any] = {"size_bytes": len(data), "custom_ops": custom}
        weights = [(op.type, op.inputs[1].dtype.name)
                   for op in read_tflite(data).main.operators
                   if op.type in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "CUSTOM")]
        row["weights"] = [f"{t}:{w}" for t, w in weights]
        runs = [("xnnpack", True, bool(custom)), ("builtin", False, bool(custom))]
        if not custom:
            runs.append(("delegate", True, True))
        for kernels, xnnpack, delegate in runs:
            got = outputs(data, x_val, xnnpack=xnnpack, delegate=delegate)
            fid = compare_outputs("y", ref, got)
            row[f"sqnr_db_{kernels}"] = round(fid.sqnr_db, 2)
            if labels is not None:
                row[f"accuracy_{kernels}"] = round(float((got.argmax(-1) == labels).mean()), 4)
        row["delegate_nodes"] = delegate_nodes(data)
        rows[label] = row
    return {"model": name, "validation_samples": len(x_val), "variants": rows,
            "_files": files}


# ---------------------------------------------------------------------------- speed (worker)
def _vm_hwm_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in its own process: load, warm up, time; peak RSS above the pre-load peak."""
    from sdk.run import Interpreter

    model = Path(spec["model"]).read_bytes()
    x = np.load(spec["input"])
    base = _vm_hwm_kb()
    options = {k: spec[k] for k in ("isa", "claim") if spec.get(k)} if spec["delegate"] else {}
    interp = Interpreter(model_content=model, delegate=spec["delegate"],
                         num_threads=spec["threads"], **options)
    interp.run(x)
    for _ in range(spec["warmup"]):
        interp.run(x)
    times = []
    deadline = time.perf_counter() + spec["seconds"]
    while len(times) < spec["min_runs"] or (time.perf_counter() < deadline
                                            and len(times) < spec["max_runs"]):
        t0 = time.perf_counter()
        interp.run(x)
        times.append(time.perf_counter() - t0)
    report = interp.report
    reasons: dict[str, int] = {}  # the delegate's claim rule, per node: why claimed / left
    for node in [*(report.claimed if report else []), *(report.skipped if report else [])]:
        key = f"{node.op}: {node.reason}" if node.reason else node.op
        reasons[key] = reasons.get(key, 0) + 1
    return {"median_ms": round(1e3 * float(np.median(times)), 4),
            "min_ms": round(1e3 * float(np.min(times)), 4), "runs": len(times),
            "peak_rss_mb": round((_vm_hwm_kb() - base) / 1024, 2),
            "delegate_nodes": len(report.claimed) if report else 0,
            "delegate_left_to_litert": len(report.skipped) if report else 0,
            "claim_reasons": reasons, "kernels": report.kernels() if report else {}}


#: the delegate's options for every delegate run (--isa, --claim); empty: its defaults
DELEGATE_OPTIONS: dict[str, str] = {}


def measure_speed(model: bytes, x: np.ndarray, threads: int, delegate: bool, quick: bool,
                  tmp: Path) -> dict[str, Any]:
    path, inp = tmp / "model.tflite", tmp / "input.npy"
    path.write_bytes(model)
    np.save(inp, x)
    spec = {"model": str(path), "input": str(inp), "threads": threads, "delegate": delegate,
            **DELEGATE_OPTIONS,
            "warmup": 5 if quick else 20, "seconds": 0.5 if quick else 2.0,
            "min_runs": 10 if quick else 30, "max_runs": 2000}
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else
                f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


SPEED_VARIANTS = ["float", "int8", "aeq dynamic_wi8_afp32", "int4", "int4 dynamic",
                  "aeq dynamic_wi4_afp32", "ternary", "int2", "aeq dynamic_wi2c_afp32"]


def speed(name: str, files: dict[str, bytes], x: np.ndarray, threads: list[int],
          quick: bool) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label in SPEED_VARIANTS:
            if label not in files:
                continue
            custom = bool(read_tflite(files[label]).op_counts().get("CUSTOM:EDGE_CONV_INT2") or
                          read_tflite(files[label]).op_counts().get("CUSTOM:EDGE_DWCONV_INT2"))
            for t in threads:
                for delegate in (False, True):
                    if custom and not delegate:
                        continue  # only the delegate runs it
                    key = f"{label} | {'delegate' if delegate else 'litert'} | {t} thread(s)"
                    rows[key] = measure_speed(files[label], x, t, delegate, quick, Path(tmp))
    # ratios within this run
    for t in threads:
        base = rows.get(f"aeq dynamic_wi2c_afp32 | litert | {t} thread(s)", {})
        int8 = rows.get(f"int8 | litert | {t} thread(s)", {})
        for key, row in rows.items():
            if not key.endswith(f"| {t} thread(s)") or "median_ms" not in row:
                continue
            if "median_ms" in base:
                row["speedup_vs_xnnpack_2bit"] = round(base["median_ms"] / row["median_ms"], 2)
            if "median_ms" in int8:
                row["speedup_vs_int8_xnnpack"] = round(int8["median_ms"] / row["median_ms"], 2)
            stock = rows.get(key.replace("| delegate |", "| litert |"), {})
            if "| delegate |" in key and "median_ms" in stock:
                row["speedup_vs_same_file_litert"] = round(stock["median_ms"] /
                                                           row["median_ms"], 2)
                row["speedup_vs_same_file_litert_min"] = round(stock["min_ms"] /
                                                               row["min_ms"], 2)
    return {"model": name, "runs": rows}


def never_slower(speed_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Issue 17's bar: loading the delegate never makes a file slower than stock LiteRT. Per
    file and thread count with both runs: stock / delegate on the medians and on the fastest
    runs (the min is what a noisy shared host disturbs least), and the nodes the delegate
    claimed; `met` when no file on which the delegate claimed nodes is slower by more than
    `tolerance` on both figures. Where it claimed nothing the graph LiteRT runs is the stock one,
    so those cells measure the host's noise (`noise_floor`: their lowest and highest ratio).
    A file and thread count whose delegate run or stock run gave no time (a process that
    failed: `error`) is `unmeasured`, and the bar is not `met` while any is: a file that was
    not timed is not shown to be no slower (custom-op files, which only the delegate runs and
    which have no stock run, are not cells)."""
    tolerance = 0.05
    cells, unmeasured = [], []
    for case in speed_rows:
        for key, row in case["runs"].items():
            if "speedup_vs_same_file_litert" in row:
                cells.append({"model": case["model"], "run": key,
                              "ratio_median": row["speedup_vs_same_file_litert"],
                              "ratio_min": row["speedup_vs_same_file_litert_min"],
                              "delegate_nodes": row["delegate_nodes"]})
                continue
            stock_key = key.replace("| delegate |", "| litert |")
            if "| delegate |" not in key or stock_key not in case["runs"]:
                continue  # a stock row, or a custom-op file (no stock run)
            errors = {side: str(r.get("error", "no time")) for side, r in
                      (("delegate", row), ("litert", case["runs"][stock_key]))
                      if "median_ms" not in r}
            unmeasured.append({"model": case["model"], "run": key, "errors": errors})
    claimed = [c for c in cells if c["delegate_nodes"] > 0]
    same = [c for c in cells if c["delegate_nodes"] == 0]
    slower = [c for c in claimed
              if c["ratio_median"] < 1 - tolerance and c["ratio_min"] < 1 - tolerance]
    noise = [r for c in same for r in (c["ratio_median"], c["ratio_min"])]
    return {"tolerance": tolerance, "cells": cells, "slower": slower,
            "unmeasured": unmeasured, "met": not slower and not unmeasured,
            "noise_floor": [min(noise), max(noise)] if noise else None}


def speed_threads() -> list[int]:
    """The speed part's thread counts: 1 and all, 'all' being the physical cores this process
    may run on (`usable_core_count`, the delegate's and the runtime's default), not the
    machine's: under `taskset -c 0` two threads would only take turns on one CPU."""
    from sdk.base.native import usable_core_count

    return sorted({1, usable_core_count()})


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        print(json.dumps(worker(json.loads(sys.argv[2]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter timings, fewer samples")
    parser.add_argument("--isa", default="", help="the delegate's kernel ISA (default: the "
                        "best this CPU runs); XNNPACK is not restricted by it")
    parser.add_argument("--claim", default="", choices=("", "faster", "all"),
                        help="the delegate's claim policy (default: faster); `all` times our "
                             "kernel on every node it can run: the cost table's measurement")
    parser.add_argument("--fc-only", action="store_true",
                        help="speed of the FC layers only (no digits CNN, no quality part)")
    args = parser.parse_args()
    DELEGATE_OPTIONS.update({k: v for k, v in (("isa", args.isa), ("claim", args.claim)) if v})
    import ai_edge_litert

    threads = speed_threads()
    cores = threads[-1]
    out: dict[str, Any] = {"benchmark": "sub-byte models: edgesdk (+ delegate) vs "
                                        "ai-edge-quantizer", "host": platform.machine(),
                           "cores": cores, "cpu": sdk.cpu_features()}
    from importlib.metadata import version

    out["versions"] = {"ai_edge_litert": ai_edge_litert.__version__,
                       "ai_edge_quantizer": version("ai-edge-quantizer"),
                       "edgesdk": sdk.__version__}
    out["delegate_options"] = dict(DELEGATE_OPTIONS)
    cnn: dict[str, Any] = {}
    if not args.fc_only:
        float_cnn, data = digits_float(seed=0)
        n_val = 200 if args.quick else len(data.x_test)
        cnn = quality("digits_cnn", float_cnn, data.x_train, data.x_test[:n_val],
                      data.y_test[:n_val])
    rng = np.random.default_rng(1)
    fc_cases = []
    for n in (1024, 4096):
        x_fc = rng.standard_normal((300, n)).astype(np.float32)
        fc_float = fc_float_model(n)
        if n == 1024 and not args.fc_only:
            fc_cases.append(quality(f"fc_{n}x{n}", fc_float, x_fc[:200], x_fc[200:], None,
                                    single_layer=True))
        else:  # the big layer is for speed and memory only (its quality equals the small one's)
            files = {"float": fc_float}
            for label, tool, what, kwargs in VARIANTS:
                if label in SPEED_VARIANTS:
                    files[label] = (aeq(fc_float, what, x_fc[:200]) if tool == "aeq"
                                    else ours(fc_float, what, x_fc[:200], True, **kwargs)[0])
            fc_cases.append({"model": f"fc_{n}x{n}", "_files": files})
    out["quality"] = [{k: v for k, v in case.items() if k != "_files"}
                      for case in [cnn, *fc_cases] if "variants" in case]
    out["speed"] = ([] if args.fc_only else
                    [speed(cnn["model"], cnn["_files"], data.x_test[:1], threads, args.quick)])
    for case in fc_cases:
        n = int(case["model"].split("x")[-1])
        x1 = rng.standard_normal((1, n)).astype(np.float32)
        out["speed"].append(speed(case["model"], case["_files"], x1, threads, args.quick))
    out["bar_delegate_never_slower"] = never_slower(out["speed"])
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
