"""INT8 export: edgesdk vs TensorFlow's converter vs ai-edge-quantizer, same models and data.

    python benchmarks/export.py [--quick] > export.json

For each model, the three quantisers get the same float .tflite (TensorFlow's float conversion)
and the same calibration samples; every quantised model is then run in LiteRT (default kernels,
XNNPACK) on the same held-out samples and compared with the float model by the same code
(`sdk.run.fidelity.compare_outputs`). Printed as JSON: export time, size, output SQNR, cosine, max
error, top-1 agreement with float and, where labels exist, accuracy.

- TensorFlow: TFLiteConverter with `representative_dataset`, TFLITE_BUILTINS_INT8, float I/O.
- ai-edge-quantizer: recipe `static_wi8_ai8` (its defaults) on the float .tflite.
- edgesdk: `sdk.export(..., "int8")` with its defaults (method "mse", analytic bias
  correction), with `bias_correction="empirical"`, and with method "minmax" for reference.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sdk
from sdk.converters.frontends import load_model
from sdk.converters.tflite import read_tflite, to_tflite_bytes
from sdk.run.fidelity import compare_outputs
from sdk.run.runner import LiteRTRunner


@contextlib.contextmanager
def quiet():
    """TensorFlow and ai-edge-quantizer print progress to stdout: keep stdout pure JSON."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def run_outputs(model: bytes, x: np.ndarray) -> np.ndarray:
    runner = LiteRTRunner(model)
    return np.concatenate([runner.invoke([x[i:i + 1]])[0] for i in range(len(x))])


def measure(model: bytes, x_val: np.ndarray, ref: np.ndarray, labels: np.ndarray | None,
            seconds: float) -> dict[str, Any]:
    got = run_outputs(model, x_val)
    fid = compare_outputs("output", ref, got)
    row = {"export_s": round(seconds, 3), "size_bytes": len(model),
           "sqnr_db": round(fid.sqnr_db, 2), "cosine": round(fid.cosine, 6),
           "max_abs_error": round(fid.max_abs_error, 5),
           "top1_agreement": None if fid.top1_agreement is None else round(fid.top1_agreement, 4)}
    if labels is not None:
        row["accuracy"] = round(float((got.argmax(-1) == labels).mean()), 4)
    return row


# ---------------------------------------------------------------------------- quantisers
def tf_int8(keras_model: Any, x_cal: np.ndarray) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def representative():
        for x in x_cal:
            yield [x[None]]

    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with quiet():
        return bytes(converter.convert())


def aeq_int8(float_tflite: bytes, x_cal: np.ndarray) -> bytes:
    from ai_edge_quantizer import quantizer, recipe

    model = read_tflite(float_tflite)
    sig = model.signatures[0]
    (input_name,) = sig.inputs
    q = quantizer.Quantizer(float_tflite)
    q.load_quantization_recipe(recipe.static_wi8_ai8())
    with quiet():
        calibration = q.calibrate({sig.key: [{input_name: x[None]} for x in x_cal]})
        return bytes(q.quantize(calibration).quantized_model)


def ours(float_tflite: bytes, x_cal: np.ndarray, **options: Any) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.tflite"
        # validation on the calibration data: the comparison below measures the held-out set
        sdk.export(float_tflite, "int8", calibration=x_cal, validation=x_cal[:8], output=out,
                   per_layer=False, report=False, **options)
        return out.read_bytes()


#: edgesdk variants measured: the defaults, the slower empirical bias correction, plain min/max
OURS = {"edgesdk": {}, "edgesdk_empirical_bc": {"bias_correction": "empirical"},
        "edgesdk_minmax": {"method": "minmax"}}


def timed(fn: Callable[[], bytes]) -> tuple[bytes, float]:
    start = time.perf_counter()
    data = fn()
    return data, time.perf_counter() - start


# ---------------------------------------------------------------------------- models
def digits_case(seed: int, quick: bool) -> dict[str, Any]:
    from sdk.examples import digits, digits_cnn

    data = digits()
    with quiet():
        model = digits_cnn(data, seed=seed)
    n_cal = 200 if quick else len(data.x_train)
    return {"name": "digits_cnn", "keras": model, "x_cal": data.x_train[:n_cal],
            "x_val": data.x_test, "labels": data.y_test,
            "description": "Conv-DWConv-Conv-Conv-FC-FC-Softmax trained on scikit-learn digits; "
                           f"calibration {n_cal} training images, validation {len(data.x_test)} "
                           "test images (accuracy vs labels)"}


def depthwise_case(seed: int, quick: bool) -> dict[str, Any]:
    from sdk.examples import digits, digits_mobilenet

    data = digits()
    with quiet():
        model = digits_mobilenet(data, seed=seed, epochs=12 if quick else 24)
    n_cal = 200 if quick else len(data.x_train)
    return {"name": "digits_mobilenet", "keras": model, "x_cal": data.x_train[:n_cal],
            "x_val": data.x_test, "labels": data.y_test,
            "description": "MobileNet-style Keras net with depthwise convs (residual "
                           "depthwise/BN/hard-swish/pointwise block, strided depthwise x2, GAP, "
                           "dense logits) trained on the digits; calibration "
                           f"{n_cal} training images, validation {len(data.x_test)} test images"}


def onnx_case(seed: int, quick: bool) -> dict[str, Any] | None:
    try:
        from sdk.converters.onnx import read_onnx  # noqa: F401
    except ImportError:
        return None
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from test_onnx_models import small_cnn  # the test suite's onnx.helper model

    proto = small_cnn()
    n = 128 if quick else 512
    x_all = np.random.default_rng(seed).uniform(-1, 1, (n + 256, 3, 16, 16)).astype(np.float32)
    return {"name": "onnx_cnn", "onnx": proto, "x_cal": x_all[:n], "x_val": x_all[n:],
            "labels": None,
            "description": "ONNX CNN built with onnx.helper (NCHW conv/BN/relu/maxpool/"
                           "depthwise/gemm/softmax, random weights) imported by "
                           f"sdk.converters.onnx; {n} calibration / 256 validation uniform random "
                           "inputs (a new draw per seed); TensorFlow's converter cannot read ONNX"}


def bench_case(case: dict[str, Any]) -> dict[str, Any]:
    import tensorflow as tf

    x_cal, x_val, labels = case["x_cal"], case["x_val"], case["labels"]
    if "keras" in case:
        with quiet():
            float_tflite = bytes(tf.lite.TFLiteConverter.from_keras_model(case["keras"]).convert())
    else:
        float_tflite = to_tflite_bytes(load_model(case["onnx"]).model)
    ref = run_outputs(float_tflite, x_val)
    row: dict[str, Any] = {"model": case["name"], "description": case["description"],
                           "calibration_samples": len(x_cal), "validation_samples": len(x_val)}
    row["float"] = {"size_bytes": len(float_tflite)}
    if labels is not None:
        row["float"]["accuracy"] = round(float((ref.argmax(-1) == labels).mean()), 4)
    results: dict[str, Any] = {}
    if "keras" in case:
        data, s = timed(lambda: tf_int8(case["keras"], x_cal))
        results["tensorflow"] = measure(data, x_val, ref, labels, s)
    else:
        results["tensorflow"] = None
    data, s = timed(lambda: aeq_int8(float_tflite, x_cal))
    results["ai_edge_quantizer"] = measure(data, x_val, ref, labels, s)
    for name, options in OURS.items():
        data, s = timed(lambda options=options: ours(float_tflite, x_cal, **options))
        results[name] = measure(data, x_val, ref, labels, s)
    row["int8"] = results
    return row


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean (and worst) of each metric over the seeds."""
    out: dict[str, Any] = {}
    for tool in runs[0]["int8"]:
        rows = [r["int8"][tool] for r in runs if r["int8"][tool] is not None]
        if not rows:
            out[tool] = None
            continue
        summary: dict[str, Any] = {}
        for key in rows[0]:
            values = [row[key] for row in rows if row[key] is not None]
            if values:
                summary[f"mean_{key}"] = round(float(np.mean(values)), 4)
        summary["min_sqnr_db"] = min(row["sqnr_db"] for row in rows)
        out[tool] = summary
    floats = [r["float"].get("accuracy") for r in runs if r["float"].get("accuracy") is not None]
    if floats:
        out["float"] = {"mean_accuracy": round(float(np.mean(floats)), 4)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, one seed")
    parser.add_argument("--seeds", type=int, default=3, help="trained models per case")
    args = parser.parse_args()
    import ai_edge_litert
    import ai_edge_quantizer  # noqa: F401
    import tensorflow as tf

    seeds = range(1 if args.quick else args.seeds)
    models = []
    for make in (digits_case, depthwise_case, onnx_case):
        runs = []
        for seed in seeds:
            case = make(seed, args.quick)
            if case is None:
                break
            runs.append(bench_case(case) | {"seed": seed})
        if runs:
            models.append({"model": runs[0]["model"], "description": runs[0]["description"],
                           "seeds": len(runs), "summary": summarise(runs), "runs": runs})
    from importlib.metadata import version

    print(json.dumps({
        "benchmark": "int8 export: edgesdk vs tensorflow vs ai-edge-quantizer",
        "host": platform.machine(), "python": platform.python_version(),
        "versions": {"tensorflow": tf.__version__,
                     "ai_edge_litert": getattr(ai_edge_litert, "__version__", "?"),
                     "ai_edge_quantizer": version("ai-edge-quantizer"),
                     "edgesdk": sdk.__version__},
        "metrics": "outputs of each int8 model vs the float model on held-out samples, LiteRT "
                   "default kernels (XNNPACK); export_s includes calibration",
        "models": models,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
