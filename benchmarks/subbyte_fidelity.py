"""Sub-byte post-training fidelity: round to nearest (rtn) vs GPTQ, JSON out (issue 15).

    python benchmarks/subbyte_fidelity.py > fidelity.json
    python benchmarks/subbyte_fidelity.py --models mp_iris_landmark --samples 32 --no-digits

Two parts, same host, same LiteRT, every export by `sdk.export(..., weight_method=m)`:

digits  The project's digits CNN (`sdk.examples.digits_cnn`, trained here, seed 0): test-set
        accuracy of the float model and of int4 / ternary / int2 exports (int8 activations,
        first and last layer int8 as the schemes do) with weight_method "rtn" and "gptq";
        plus the output SQNR against float, top-1 agreement, size and the GPTQ time.
models  Real pretrained models from the corpus (benchmarks/corpus, `make corpus` fetches them
        into ~/.cache/edgesdk/corpus): calibration and held-out inputs from the corpus' own
        recipes, the float file run in its own runtime (LiteRT / onnxruntime) as reference;
        per export the worst output's SQNR (dB) over the held-out samples, and the median over
        the models per scheme and method.

--qat  Quantisation-aware training rows for the digits CNN (method "qat"): `sdk.qat.prepare`
        on the same float Keras model, `--qat-epochs` of `model.fit` on the training digits,
        `sdk.export` of the trained model; besides the measures above, the exported file's
        top-1 agreement with the QAT Keras model it came from (`qat_model_agreement`).

Bars (issue 15): digits ternary / int2 with GPTQ within 3 points of float, int4 within 1 point,
ternary with QAT within 2 points;
real models int4 (int8 activations) median worst-output SQNR >= 20 dB, ternary / int2 with GPTQ
>= 12 dB. The JSON says for each whether it was met. 2-bit convolutions are edgesdk custom ops:
those files run with the edgesdk delegate. OpenBLAS is held to one thread (on a loaded 2-core
host its threads made the small GPTQ matrix work 10x slower); set OPENBLAS_NUM_THREADS to change.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import json
import sys
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

SCHEMES = ("int4", "ternary", "int2")
METHODS = ("rtn", "gptq")
WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
DEFAULT_MODELS = ("mp_face_detection_short_range", "mp_palm_detection_lite",
                  "mp_iris_landmark", "mp_hand_landmark_lite", "oww_embedding")
BARS = {"digits_points_below_float": {"int4": 1.0, "ternary": 3.0, "int2": 3.0},
        "digits_qat_points_below_float": {"ternary": 2.0},
        "models_median_worst_sqnr_db": {"int4": 20.0, "ternary": 12.0, "int2": 12.0}}


def _export(model: Any, scheme: str, method: str | None, cal: Any, val: Any, out: Path,
            **kwargs: Any) -> Any:
    import sdk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sdk.export(model, scheme, calibration=cal, validation=val, output=out,
                          weight_method=method, per_layer=False, report=False, **kwargs)


def weight_types(path: Path) -> list[str]:
    """The weight type of every weighted op in the written file (layer names from ONNX do not
    say the op type, so the file is read)."""
    from sdk.converters.tflite import read_tflite

    model = read_tflite(path)
    return [op.inputs[1].dtype.name for op in model.main.operators
            if (op.type in WEIGHTED or (op.custom_code or "").startswith("EDGE_"))
            and len(op.inputs) > 1 and op.inputs[1] is not None]


def _delegates(result: Any) -> list[Any] | None:
    if not result.custom_ops:
        return None
    from sdk.run.delegate import load_delegate

    return [load_delegate()]


# ---------------------------------------------------------------------------- digits
def digits_part(work: Path, qat_epochs: int = 0) -> dict[str, Any]:
    import tensorflow as tf

    from sdk.examples import digits, digits_cnn
    from sdk.run.runner import LiteRTRunner

    data = digits()
    keras_model = digits_cnn(data)
    float_path = work / "digits_float.tflite"
    float_path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras_model).convert())

    def predict(path: Path, delegates: list[Any] | None = None) -> np.ndarray:
        runner = LiteRTRunner(path.read_bytes(), delegates=delegates)
        return np.concatenate([runner.invoke([data.x_test[i:i + 1]])[0]
                               for i in range(len(data.x_test))])

    ref = predict(float_path)
    float_acc = float((ref.argmax(1) == data.y_test).mean())
    rows: list[dict[str, Any]] = []
    for scheme in SCHEMES:
        for method in METHODS:
            start = time.perf_counter()
            r = _export(float_path, scheme, method, data.x_train, data.x_test,
                        work / f"digits_{scheme}_{method}.tflite")
            seconds = time.perf_counter() - start
            out = predict(r.path, _delegates(r))
            err = float(((out - ref) ** 2).sum())
            rows.append({
                "scheme": scheme, "method": method,
                "accuracy": round(float((out.argmax(1) == data.y_test).mean()), 4),
                "points_below_float": round(100 * (float_acc - float(
                    (out.argmax(1) == data.y_test).mean())), 2),
                "top1_agreement": round(float((out.argmax(1) == ref.argmax(1)).mean()), 4),
                "sqnr_db": round(10 * float(np.log10((ref ** 2).sum() / err)), 2) if err
                else None,
                "size_bytes": r.size_bytes, "export_s": round(seconds, 2),
                "gptq_s": r.timings.get("gptq"), "custom_ops": sorted(r.custom_ops)})
            print(f"digits {scheme:8s} {method:5s} acc {rows[-1]['accuracy']:.4f} "
                  f"sqnr {rows[-1]['sqnr_db']} ({seconds:.1f} s)", file=sys.stderr, flush=True)
    for scheme in SCHEMES if qat_epochs else ():
        rows.append(qat_row(keras_model, data, scheme, qat_epochs, work, ref, float_acc,
                            predict))
    bars = {}
    for scheme in SCHEMES:
        gptq = next(r for r in rows if r["scheme"] == scheme and r["method"] == "gptq")
        bar = BARS["digits_points_below_float"][scheme]
        bars[scheme] = {"bar_points": bar, "gptq_points_below_float": gptq["points_below_float"],
                        "met": gptq["points_below_float"] <= bar}
    for scheme, bar in BARS["digits_qat_points_below_float"].items() if qat_epochs else ():
        qat = next(r for r in rows if r["scheme"] == scheme and r["method"] == "qat")
        bars[f"{scheme}_qat"] = {"bar_points": bar,
                                 "qat_points_below_float": qat["points_below_float"],
                                 "met": qat["points_below_float"] <= bar}
    return {"test_samples": len(data.x_test), "calibration_samples": len(data.x_train),
            "float_accuracy": round(float_acc, 4), "qat_epochs": qat_epochs, "exports": rows,
            "bars": bars}


def qat_row(keras_model: Any, data: Any, scheme: str, epochs: int, work: Path,
            ref: np.ndarray, float_acc: float, predict: Any) -> dict[str, Any]:
    """QAT of the digits CNN for `scheme`: prepare, fine-tune, export, measure."""
    import tensorflow as tf

    import sdk

    tf.keras.utils.set_random_seed(0)
    start = time.perf_counter()
    qat = sdk.qat.prepare(keras_model, scheme, calibration=data.x_train[:256])
    qat.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
                loss="sparse_categorical_crossentropy")
    qat.fit(data.x_train, data.y_train, batch_size=64, epochs=epochs, verbose=0, shuffle=True)
    train_s = time.perf_counter() - start
    qat_pred = qat.predict(data.x_test, verbose=0).argmax(1)
    start = time.perf_counter()
    r = _export(qat, scheme, None, data.x_train, data.x_test,
                work / f"digits_{scheme}_qat.tflite")
    seconds = time.perf_counter() - start
    out = predict(r.path, _delegates(r))
    err = float(((out - ref) ** 2).sum())
    acc = float((out.argmax(1) == data.y_test).mean())
    row = {"scheme": scheme, "method": "qat", "accuracy": round(acc, 4),
           "points_below_float": round(100 * (float_acc - acc), 2),
           "top1_agreement": round(float((out.argmax(1) == ref.argmax(1)).mean()), 4),
           "sqnr_db": round(10 * float(np.log10((ref ** 2).sum() / err)), 2) if err else None,
           "size_bytes": r.size_bytes, "export_s": round(seconds, 2),
           "qat_epochs": epochs, "qat_train_s": round(train_s, 2),
           "qat_model_agreement": round(float((out.argmax(1) == qat_pred).mean()), 4),
           "custom_ops": sorted(r.custom_ops)}
    print(f"digits {scheme:8s} qat   acc {row['accuracy']:.4f} agreement with the QAT model "
          f"{row['qat_model_agreement']:.4f} ({train_s:.1f} s training)", file=sys.stderr,
          flush=True)
    return row


# ---------------------------------------------------------------------------- real models
class _Runner:
    """The corpus' LiteRT runner (float I/O), with the edgesdk delegate when the file needs it."""

    def __new__(cls, model: bytes, input_order: list[str], delegates: list[Any] | None) -> Any:
        from ai_edge_litert.interpreter import Interpreter
        from corpus.measure import LiteRTRunner

        if not delegates:
            return LiteRTRunner(model, input_order)
        runner = object.__new__(LiteRTRunner)  # its __call__, with our interpreter
        runner.it = Interpreter(model_content=model, num_threads=1,
                                experimental_delegates=delegates)
        runner.it.allocate_tensors()
        runner.ins = runner.it.get_input_details()
        runner.outs = runner.it.get_output_details()
        runner.names = [d["name"] for d in runner.outs]
        runner.order = list(input_order)
        return runner


def model_part(name: str, samples: int, work: Path) -> dict[str, Any]:
    from corpus.inputs import Context, make_samples, model_inputs
    from corpus.manifest import cache_dir, load_manifest, select
    from corpus.measure import LiteRTRunner, OrtRunner, _image_hw, quiet, score, stacked

    (model,) = select(load_manifest(), [name])
    root = cache_dir()
    path = model.path(root)
    if not path.is_file():
        return {"model": name, "error": f"not in the corpus cache {root}: run `make corpus`"}
    by_name = {m.name: m for m in load_manifest()}
    ctx = Context(model_path=lambda n: by_name[n].path(root))
    descs = model_inputs(model, path)
    cal = make_samples(model, path, samples, 1, ctx)
    val = make_samples(model, path, max(8, samples // 4), 2, ctx)
    order = [d.name for d in descs]
    hw = _image_hw(model, descs)
    with quiet():
        ref_runner = OrtRunner(str(path)) if model.format == "onnx" else \
            LiteRTRunner(path.read_bytes(), order)
    ref = [ref_runner(s) for s in val]
    out: dict[str, Any] = {"model": name, "kind": model.kind, "format": model.format,
                           "file_bytes": path.stat().st_size, "calibration_samples": len(cal),
                           "held_out_samples": len(val), "exports": []}
    try:  # the ceiling: the same activations with INT8 weights
        with quiet():
            r8 = _export(str(path), "int8", None, stacked(cal, descs), stacked(val, descs),
                         work / f"{name}_int8.tflite",
                         input_shapes=dict(model.input_shapes) or None)
            res8 = score("edgesdk", model, hw, ref_runner.names, ref,
                         _Runner(r8.path.read_bytes(), order, None), val)
        out["int8_worst_sqnr_db"] = round(res8.worst_sqnr_db, 2)
    except Exception as exc:
        out["int8_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    for scheme in SCHEMES:
        for method in METHODS:
            row: dict[str, Any] = {"scheme": scheme, "method": method}
            start = time.perf_counter()
            try:
                with quiet():
                    r = _export(str(path), scheme, method, stacked(cal, descs),
                                stacked(val, descs), work / f"{name}_{scheme}_{method}.tflite",
                                input_shapes=dict(model.input_shapes) or None)
                    runner = _Runner(r.path.read_bytes(), order, _delegates(r))
                res = score("edgesdk", model, hw, ref_runner.names, ref, runner, val)
                weighted = weight_types(r.path)
                sub = sum(1 for t in weighted if t in ("INT4", "INT2"))
                row.update(worst_sqnr_db=round(res.worst_sqnr_db, 2),
                           outputs_sqnr_db=[round(o.sqnr_db, 2) for o in res.outputs],
                           size_bytes=r.size_bytes, export_s=round(time.perf_counter() - start, 2),
                           gptq_s=r.timings.get("gptq"), subbyte_layers=sub,
                           weighted_layers=len(weighted),
                           custom_ops=sorted(r.custom_ops))
            except Exception as exc:  # one failed export is a result, not the end of the run
                row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
            out["exports"].append(row)
            print(f"{name:32s} {scheme:8s} {method:5s} worst {row.get('worst_sqnr_db')} dB "
                  f"({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)
    return out


def mixed_part(name: str, samples: int, work: Path) -> dict[str, Any]:
    """--mixed: all-INT4 and all-ternary (round to nearest) beside `sdk.export(..., "mixed",
    budget_bytes=)` at all-INT4's size and at half of it (at all-ternary's size where half is
    under the smallest mixed model), worst-output SQNR scored as in `model_part` on held-out
    samples that no export validated on (mixed chooses by its exports' validation)."""
    from corpus.inputs import Context, make_samples, model_inputs
    from corpus.manifest import cache_dir, load_manifest, select
    from corpus.measure import LiteRTRunner, OrtRunner, _image_hw, quiet, score, stacked

    (model,) = select(load_manifest(), [name])
    root = cache_dir()
    path = model.path(root)
    if not path.is_file():
        return {"model": name, "error": f"not in the corpus cache {root}: run `make corpus`"}
    by_name = {m.name: m for m in load_manifest()}
    ctx = Context(model_path=lambda n: by_name[n].path(root))
    descs = model_inputs(model, path)
    cal = make_samples(model, path, samples, 1, ctx)
    val = make_samples(model, path, max(8, samples // 4), 2, ctx)
    # what the exports validate on (and mixed chooses by): a third set, not the scored one
    select_set = make_samples(model, path, max(8, samples // 4), 3, ctx)
    order = [d.name for d in descs]
    hw = _image_hw(model, descs)
    with quiet():
        ref_runner = OrtRunner(str(path)) if model.format == "onnx" else \
            LiteRTRunner(path.read_bytes(), order)
    ref = [ref_runner(s) for s in val]
    shapes = dict(model.input_shapes) or None
    out: dict[str, Any] = {"model": name, "kind": model.kind, "calibration_samples": len(cal),
                           "held_out_samples": len(val), "rows": []}

    def run(label: str, scheme: str, **kw: Any) -> dict[str, Any]:
        start = time.perf_counter()
        row: dict[str, Any] = {"label": label, "scheme": scheme}
        try:
            with quiet():
                r = _export(str(path), scheme, "rtn", stacked(cal, descs),
                            stacked(select_set, descs), work / f"{name}_{label}.tflite",
                            input_shapes=shapes, **kw)
                runner = _Runner(r.path.read_bytes(), order, _delegates(r))
            res = score("edgesdk", model, hw, ref_runner.names, ref, runner, val)
            row.update(size_bytes=r.size_bytes, worst_sqnr_db=round(res.worst_sqnr_db, 2),
                       export_s=round(time.perf_counter() - start, 2))
            if r.mixed is not None:
                row["budget_bytes"] = kw["budget_bytes"]
                row["mixed"] = r.mixed.to_dict()
                counts: dict[str, int] = {}
                for f in r.mixed.chosen_point.bits.values():
                    counts[f] = counts.get(f, 0) + 1
                row["layers_by_format"] = counts
                row["front_ascii"] = r.mixed.lines()
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        out["rows"].append(row)
        print(f"{name:32s} {label:16s} {row.get('size_bytes')} B worst "
              f"{row.get('worst_sqnr_db')} dB ({time.perf_counter() - start:.1f} s)",
              file=sys.stderr, flush=True)
        return row

    int4 = run("int4", "int4")
    tern = run("ternary", "ternary")
    if "size_bytes" not in int4:
        return out
    m4 = run("mixed@int4", "mixed", budget_bytes=int4["size_bytes"])
    half = run("mixed@int4/2", "mixed", budget_bytes=int4["size_bytes"] // 2)
    out["beats_int4_at_its_size"] = (m4.get("worst_sqnr_db", -1e9) > int4["worst_sqnr_db"])
    if "error" in half and "size_bytes" in tern:
        half = run("mixed@ternary", "mixed", budget_bytes=tern["size_bytes"])
    if "size_bytes" in tern:
        out["beats_ternary_at_half_int4"] = half.get("worst_sqnr_db", -1e9) > \
            tern["worst_sqnr_db"] and half.get("label") == "mixed@int4/2"
        out["beats_ternary_at_its_size"] = half.get("worst_sqnr_db", -1e9) > \
            tern["worst_sqnr_db"]
    return out


def summarise(models: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for scheme in SCHEMES:
        for method in METHODS:
            vals = [e["worst_sqnr_db"] for m in models for e in m.get("exports", [])
                    if e["scheme"] == scheme and e["method"] == method and "worst_sqnr_db" in e]
            summary[f"{scheme}/{method}"] = {
                "median_worst_sqnr_db": round(median(vals), 2) if vals else None,
                "models": len(vals)}
    int8 = [m["int8_worst_sqnr_db"] for m in models if "int8_worst_sqnr_db" in m]
    summary["int8/default"] = {"median_worst_sqnr_db": round(median(int8), 2) if int8 else None,
                               "models": len(int8)}
    bars = {}
    for scheme in SCHEMES:
        got = summary[f"{scheme}/gptq"]["median_worst_sqnr_db"]
        bar = BARS["models_median_worst_sqnr_db"][scheme]
        bars[scheme] = {"bar_db": bar, "gptq_median_worst_sqnr_db": got,
                        "rtn_median_worst_sqnr_db": summary[f"{scheme}/rtn"][
                            "median_worst_sqnr_db"],
                        "met": got is not None and got >= bar}
    summary["bars"] = bars
    return summary


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("edgesdk", "ai-edge-litert", "tensorflow", "onnxruntime", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(DEFAULT_MODELS),
                   help="corpus model names, comma-separated ('' for none)")
    p.add_argument("--samples", type=int, default=64, help="calibration samples per model")
    p.add_argument("--no-digits", action="store_true")
    p.add_argument("--json-out", type=Path, default=None)
    p.add_argument("--qat", action="store_true",
                   help="add the digits CNN's quantisation-aware training rows (method qat)")
    p.add_argument("--qat-epochs", type=int, default=4, help="QAT fine-tuning epochs")
    p.add_argument("--mixed", action="store_true",
                   help="only mixed precision under a budget on --models (issue 15): all-int4 "
                        "and all-ternary beside mixed at their sizes (round to nearest)")
    args = p.parse_args(argv)
    report: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "cpu": cpu_name(),
        "cores": os.cpu_count(), "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "versions": versions()}
    with tempfile.TemporaryDirectory(prefix="subbyte_fidelity_") as tmp:
        work = Path(tmp)
        if not args.no_digits:
            report["digits"] = digits_part(work, args.qat_epochs if args.qat else 0)
        models = [m for m in args.models.split(",") if m]
        report["models"] = []
        if args.mixed:
            for m in models:
                try:
                    report["models"].append(mixed_part(m, args.samples, work))
                except Exception as exc:
                    report["models"].append({"model": m, "error": f"{type(exc).__name__}: {exc}"})
                if args.json_out:
                    args.json_out.parent.mkdir(parents=True, exist_ok=True)
                    args.json_out.write_text(json.dumps(report, indent=1) + "\n")
            print(json.dumps(report, indent=1))
            return 0
        for m in models:
            try:
                report["models"].append(model_part(m, args.samples, work))
            except Exception as exc:  # e.g. the corpus manifest mid-edit: the others still run
                report["models"].append({"model": m, "error": f"{type(exc).__name__}: {exc}"})
            if args.json_out:  # so far: a stopped run keeps what it measured
                args.json_out.parent.mkdir(parents=True, exist_ok=True)
                args.json_out.write_text(json.dumps({"partial": True, **report}, indent=1))
        report["summary"] = summarise(report["models"])
    text = json.dumps(report, indent=1)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
