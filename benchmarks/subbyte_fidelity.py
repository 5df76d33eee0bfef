"""Sub-byte post-training fidelity: round to nearest (rtn) vs GPTQ vs AdaRound, and
ai-edge-quantizer's int4 / 2-bit recipes beside them; JSON out (issue 15).

    python benchmarks/subbyte_fidelity.py > fidelity.json
    python benchmarks/subbyte_fidelity.py --models mp_iris_landmark --samples 32 --no-digits
    python benchmarks/subbyte_fidelity.py --models oww_embedding --no-digits --peers \
        --schemes int4 --methods rtn,adaround
    python benchmarks/subbyte_fidelity.py --models fast-subset --no-digits --json-out a.json
    python benchmarks/subbyte_fidelity.py --merge a.json b.json --json-out all.json

`--models fast-subset` is the measured set by rule: the corpus' fast subset (tests/test_corpus.py:
the smallest cached model of each kind, vision and audio), smallest file first. Medians count
the exports that have a sub-byte layer (a model the schemes leave all INT8 is not a sub-byte
figure). `--merge` summarises several runs' JSON (e.g. one model per run) together.

Two parts, same host, same LiteRT, every export by `sdk.export(..., weight_method=m)`:

digits  The project's digits CNN (`sdk.examples.digits_cnn`, trained here, seed 0): test-set
        accuracy of the float model and of int4 / ternary / int2 exports (int8 activations,
        first and last layer int8 as the schemes do) with weight_method "rtn", "gptq" and
        "adaround"; plus the output SQNR against float, top-1 agreement, size and the
        method's time.
models  Real pretrained models from the corpus (benchmarks/corpus, `make corpus` fetches them
        into ~/.cache/edgesdk/corpus): calibration and held-out inputs from the corpus' own
        recipes (`corpus_case`, which --mixed uses too), the float file run in its own runtime
        (LiteRT / onnxruntime) as reference; per export the worst output's SQNR (dB) over the
        held-out samples, sub-byte layers per op type, and the median over the models per
        scheme and method.

--peers ai-edge-quantizer (its recipes, read from its installed `recipe.py`) on the same float
        model (ONNX models: the float graph edgesdk imports, written as .tflite) and samples:
        its static_wi8_ai8 recipe with the weights' num_bits set to 4 (int4 weights, int8
        activations: beside our int4 rows), dynamic_wi4_afp32 (its int4 recipe) and
        dynamic_wi2c_afp32 (its 2-bit recipe), both with float activations, beside edgesdk's
        int4 / int2 exports with activations="float32" (`--peer-methods`). Per file: the
        weighted layers it made sub-byte, by op type (what it skips), size, worst SQNR.
--qat  Quantisation-aware training rows for the digits CNN (method "qat"): `sdk.qat.prepare`
        on the same float Keras model, `--qat-epochs` of `model.fit` on the training digits,
        `sdk.export` of the trained model; besides the measures above, the exported file's
        top-1 agreement with the QAT Keras model it came from (`qat_model_agreement`).
--mixed Mixed precision under a byte budget (issue 15; round to nearest): all-int4, all-ternary
        and all-2-bit beside `sdk.export(..., "mixed", budget_bytes=)` at int4's, half of
        int4's and ternary's sizes; with --peers also ai-edge-quantizer's dynamic_wi4_afp32 and
        dynamic_wi2c_afp32 files (weight-only, float activations) and mixed (int8 activations)
        at each one's size, layers quantised and worst SQNR side by side
        (--mixed-peers-only: only those rows).

Bars (issue 15): digits ternary / int2 with GPTQ within 3 points of float, int4 within 1 point,
ternary with QAT within 2 points;
real models int4 (int8 activations) median worst-output SQNR >= 20 dB, ternary / int2 with GPTQ
>= 12 dB (the JSON says for each whether it was met, and by which of gptq / adaround); against
ai-edge-quantizer more layers quantised and a higher SQNR at the same or smaller size
(`summary.vs_ai_edge_quantizer`). 2-bit convolutions are edgesdk custom ops:
those files run with the edgesdk delegate. OpenBLAS is held to one thread (on a loaded 2-core
host its threads made the small GPTQ matrix work 10x slower); set OPENBLAS_NUM_THREADS to change.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import json
import math
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from sdk.base.host import cpu_name, package_versions

#: the packages whose versions the report records
VERSIONS = ("edgesdk", "ai-edge-litert", "ai-edge-quantizer", "tensorflow", "onnxruntime", "numpy")

sys.path.insert(0, str(Path(__file__).resolve().parent))

SCHEMES = ("int4", "ternary", "int2")
METHODS = ("rtn", "gptq", "adaround")
#: the methods that choose codes from the layers' calibration inputs (the bars are theirs)
SOLVED = ("gptq", "adaround")
WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
DEFAULT_MODELS = ("mp_face_detection_short_range", "mp_palm_detection_lite",
                  "mp_iris_landmark", "mp_hand_landmark_lite", "oww_embedding")
#: `--models fast-subset`: the measured set by rule (fixed before measuring): the corpus' fast
#: subset (tests/test_corpus.py: the smallest cached model of each kind, vision and audio), in
#: order of file size; a model counts in a median where its export has a sub-byte layer
FAST_SUBSET = "fast-subset"
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


def weight_types(path: Path, with_ops: bool = False) -> list[Any]:
    """The weight type of every weighted op in the written file (layer names from ONNX do not
    say the op type, so the file is read); `with_ops`: (op type, weight type) pairs. A weight
    that reaches its op through a DEQUANTIZE (weight-only recipes) counts as the stored type."""
    from sdk.converters.tflite import read_tflite

    model = read_tflite(path)
    made_by = {op.outputs[0]: op for op in model.main.operators
               if op.type == "DEQUANTIZE" and op.outputs and op.inputs}
    out: list[Any] = []
    for op in model.main.operators:
        custom = op.custom_code or ""
        if not (op.type in WEIGHTED or custom.startswith("EDGE_")) or len(op.inputs) < 2 \
                or op.inputs[1] is None:
            continue
        w = op.inputs[1]
        if w in made_by:
            w = made_by[w].inputs[0]
        name = w.dtype.name
        out.append((custom or op.type, name) if with_ops else name)
    return out


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
                "method_s": r.timings.get(method), "custom_ops": sorted(r.custom_ops)})
            print(f"digits {scheme:8s} {method:5s} acc {rows[-1]['accuracy']:.4f} "
                  f"sqnr {rows[-1]['sqnr_db']} ({seconds:.1f} s)", file=sys.stderr, flush=True)
    for scheme in SCHEMES if qat_epochs else ():
        rows.append(qat_row(keras_model, data, scheme, qat_epochs, work, ref, float_acc,
                            predict))
    bars = {}
    for scheme in SCHEMES:
        bar = BARS["digits_points_below_float"][scheme]
        entry: dict[str, Any] = {"bar_points": bar}
        for method in SOLVED:
            got = next(r for r in rows if r["scheme"] == scheme and r["method"] == method)
            entry[f"{method}_points_below_float"] = got["points_below_float"]
        entry["met_by"] = [m for m in SOLVED if entry[f"{m}_points_below_float"] <= bar]
        entry["met"] = bool(entry["met_by"])
        bars[scheme] = entry
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
@dataclass
class CorpusCase:
    """One corpus model set up for scoring: its inputs (calibration, held-out, and optionally a
    third set exports validate on), the float reference outputs on the held-out samples."""

    name: str
    model: Any
    path: Path
    descs: list[Any]
    cal: list[dict[str, np.ndarray]]
    val: list[dict[str, np.ndarray]]
    select: list[dict[str, np.ndarray]] | None
    order: list[str]
    hw: tuple[int, int] | None
    ref_runner: Any
    ref: list[list[np.ndarray]]

    @property
    def shapes(self) -> dict[str, Any] | None:
        return dict(self.model.input_shapes) or None

    def stacked(self, samples: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        from corpus.measure import stacked

        return stacked(samples, self.descs)

    def score(self, model_bytes: bytes, delegates: list[Any] | None = None) -> Any:
        """The corpus' score of a quantised .tflite on the held-out samples."""
        from corpus.measure import LiteRTRunner, score

        return score("edgesdk", self.model, self.hw, self.ref_runner.names, self.ref,
                     LiteRTRunner(model_bytes, self.order, delegates), self.val)


def corpus_case(name: str, samples: int, select_set: bool = False,
                select_samples: int | None = None,
                scored_samples: int | None = None, cal_seed: int = 1) -> CorpusCase | str:
    """The corpus model `name` with `samples` calibration inputs (seed `cal_seed`, 1: another
    seed is another draw of the recipe's inputs; 2 and 3 are the sets below), max(8, samples /
    4) (or `scored_samples`) held-out ones (seed 2) and, with `select_set`, as many (or
    `select_samples`) for the exports to validate on (seed 3); or why not. Each set is
    `Prepared.with_phrase`'s: a wake-word head's are half its recipe's sound, half its phrase
    spoken (stop 27; before, all its recipe's, on which the heads score 1e-5 - 0.08), so its
    mixed search chooses, and every export calibrates, on outputs that fire as well."""
    from corpus.manifest import cache_dir
    from corpus.measure import LiteRTRunner, OrtRunner, _image_hw, quiet
    from corpus.prepared import prepare

    root = cache_dir()
    prep = prepare(name, root)
    model, path = prep.model, prep.path
    if not path.is_file():
        return f"not in the corpus cache {root}: run `make corpus`"
    descs, order = prep.descs, prep.order
    held = max(8, samples // 4)
    cal = prep.with_phrase(samples, cal_seed)
    val = prep.with_phrase(scored_samples or held, 2)
    sel = prep.with_phrase(select_samples or held, 3) if select_set else None
    with quiet():
        ref_runner = OrtRunner(str(path)) if model.format == "onnx" else \
            LiteRTRunner(path.read_bytes(), order)
    return CorpusCase(name, model, path, descs, cal, val, sel, order,
                      _image_hw(model, descs), ref_runner, [ref_runner(s) for s in val])


def espeak_version() -> str | None:
    """espeak-ng's version line (the spoken held-out clips depend on it), None without it."""
    import shutil
    import subprocess

    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    return subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()


def layer_counts(path: Path | bytes) -> dict[str, list[int]]:
    """{op type: [layers with sub-byte weights, weighted layers]} of a written .tflite."""
    counts: dict[str, list[int]] = {}
    for op_type, dtype in weight_types(path, with_ops=True):
        c = counts.setdefault(op_type, [0, 0])
        c[0] += dtype in ("INT4", "INT2")
        c[1] += 1
    return counts


def model_part(name: str, samples: int, work: Path, schemes: tuple[str, ...] = SCHEMES,
               methods: tuple[str, ...] = METHODS, peers: bool = False,
               peer_methods: tuple[str, ...] = ("adaround",), int8: bool = True,
               on_row: Any = None, cal_seed: int = 1) -> dict[str, Any]:
    """One model's rows; `on_row(part)` after each export (so a stopped run keeps them)."""
    from corpus.measure import quiet

    case = corpus_case(name, samples, cal_seed=cal_seed)
    if isinstance(case, str):
        return {"model": name, "error": case}
    model, path = case.model, case.path
    cal, val = case.stacked(case.cal), case.stacked(case.val)
    out: dict[str, Any] = {"model": name, "kind": model.kind, "format": model.format,
                           "file_bytes": path.stat().st_size,
                           "calibration_samples": len(case.cal),
                           "held_out_samples": len(case.val), "exports": []}
    if "phrase" in model.input:
        out["spoken_phrase"] = {"phrase": model.input["phrase"], "espeak_ng": espeak_version(),
                                "calibration": len(case.cal) // 2, "held_out": len(case.val) // 2}
    if cal_seed != 1:
        out["calibration_seed"] = cal_seed
    try:  # the ceiling: the same activations with INT8 weights
        if not int8:
            raise _Skipped
        with quiet():
            r8 = _export(str(path), "int8", None, cal, val, work / f"{name}_int8.tflite",
                         input_shapes=case.shapes)
            res8 = case.score(r8.path.read_bytes())
        out["int8_worst_sqnr_db"] = round(res8.worst_sqnr_db, 2)
    except _Skipped:
        pass
    except Exception as exc:
        out["int8_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    for scheme in schemes:
        for method in methods:
            out["exports"].append(ours_row(case, scheme, method, work))
            if on_row is not None:
                on_row(out)
    if peers:
        out["peers"] = peer_rows(case, work, peer_methods)
    return out


class _Skipped(Exception):
    """The INT8 ceiling not asked for (--no-int8)."""


def ours_row(case: CorpusCase, scheme: str, method: str, work: Path,
             activations: str = "int8") -> dict[str, Any]:
    """One edgesdk export of `case`, scored: worst-output SQNR, size, layers by op type."""
    from corpus.measure import quiet

    row: dict[str, Any] = {"scheme": scheme, "method": method}
    if os.environ.get("EDGESDK_CODE_STATE"):  # which code measured the row (e.g. a commit)
        row["code"] = os.environ["EDGESDK_CODE_STATE"]
    if activations != "int8":
        row["activations"] = activations
    start = time.perf_counter()
    try:
        with quiet():
            r = _export(str(case.path), scheme, method, case.stacked(case.cal),
                        case.stacked(case.val),
                        work / f"{case.name}_{scheme}_{method}_{activations}.tflite",
                        input_shapes=case.shapes, activations=activations)
            res = case.score(r.path.read_bytes(), _delegates(r))
        counts = layer_counts(r.path)
        row.update(worst_sqnr_db=round(res.worst_sqnr_db, 2),
                   outputs_sqnr_db=[round(o.sqnr_db, 2) for o in res.outputs],
                   size_bytes=r.size_bytes, export_s=round(time.perf_counter() - start, 2),
                   method_s=r.timings.get(method),
                   subbyte_layers=sum(c[0] for c in counts.values()),
                   weighted_layers=sum(c[1] for c in counts.values()),
                   layers_by_op=counts, custom_ops=sorted(r.custom_ops))
        # auto (and the sub-byte default): its whole-model check, each candidate's figure and
        # the one kept; and which method a weight_method=None export ran
        row.update({k: n for n in r.notes for k, mark in (("check", "whole-model check"),
                    ("default", "weight_method not given")) if mark in n})
    except Exception as exc:  # one failed export is a result, not the end of the run
        row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    print(f"{case.name:32s} {scheme:8s} {method:8s} {activations:7s} worst "
          f"{row.get('worst_sqnr_db')} dB {row.get('size_bytes')} B "
          f"({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)
    return row


#: ai-edge-quantizer's recipes beside ours: (label, recipe, bits, activations, our scheme)
PEER_RECIPES = (
    ("aeq static_wi8_ai8 with 4-bit weights", "static_w4a8", 4, "int8", "int4"),
    ("aeq dynamic_wi4_afp32", "dynamic_wi4_afp32", 4, "float32", "int4"),
    ("aeq dynamic_wi2c_afp32", "dynamic_wi2c_afp32", 2, "float32", "int2"),
)


def float_tflite(case: CorpusCase) -> bytes:
    """The float .tflite ai-edge-quantizer starts from: the corpus file itself, or (ONNX) the
    float model edgesdk imports, written as .tflite (the same graph every export starts from)."""
    if case.model.format == "tflite":
        return case.path.read_bytes()
    from sdk.converters.frontends import load_model
    from sdk.converters.tflite import serialize

    loaded = load_model(str(case.path), input_shapes=case.shapes)
    return serialize(loaded.model)[0]


def aeq_quantize(source: bytes, recipe_name: str, case: CorpusCase) -> bytes:
    """ai-edge-quantizer with one of its recipes (static ones calibrated on `case.cal`); its
    `static_wi8_ai8` recipe with the weights' num_bits set to 4 is its int4 / int8-activation
    model (it has no named recipe for that)."""
    import copy

    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe
    from corpus.measure import quiet, with_signature

    if not Interpreter(model_content=source).get_signature_list():
        source = with_signature(source)
    if recipe_name == "static_w4a8":
        rc = copy.deepcopy(recipe.static_wi8_ai8())
        rc[0]["op_config"]["weight_tensor_config"]["num_bits"] = 4
    else:
        rc = getattr(recipe, recipe_name)()
    q = quantizer.Quantizer(source)
    q.load_quantization_recipe(rc)
    with quiet():
        if not recipe_name.startswith("static"):
            return bytes(q.quantize().quantized_model)
        it = Interpreter(model_content=source)
        key = next(iter(it.get_signature_list()))
        details = it.get_signature_runner(key).get_input_details()
        by_tensor = {d["name"]: n for n, d in details.items()}
        names = list(details)
        data = []
        for sample in case.cal:
            feed = {}
            for i, d in enumerate(case.descs):
                feed[by_tensor.get(d.name, names[i] if i < len(names) else d.name)] = \
                    sample[d.name]
            data.append(feed)
        return bytes(q.quantize(q.calibrate({key: data})).quantized_model)


def peer_file_row(case: CorpusCase, source: bytes, recipe_name: str, work: Path,
                  row: dict[str, Any]) -> None:
    """ai-edge-quantizer's `recipe_name` on `source`, written to `work` and scored on `case`'s
    samples, into `row`: worst SQNR (None where the file computes the float model, -99 where
    LiteRT gives NaN, with a note), size, sub-byte / weighted layers, time; or `error`."""
    start = time.perf_counter()
    try:
        data = aeq_quantize(source, recipe_name, case)
        path = work / f"{case.name}_{recipe_name}.tflite"
        path.write_bytes(data)
        counts = layer_counts(path)
        res = case.score(data)
        worst: float | None = round(res.worst_sqnr_db, 2)
        if res.worst_sqnr_db == float("inf"):  # the float model back: nothing quantised
            worst = None
            row["note"] = "outputs identical to the float model's: no layer quantised"
        elif not np.isfinite(res.worst_sqnr_db):
            worst = -99.0
            row["note"] = "its outputs are NaN in LiteRT"
        row.update(worst_sqnr_db=worst, size_bytes=len(data),
                   subbyte_layers=sum(c[0] for c in counts.values()),
                   weighted_layers=sum(c[1] for c in counts.values()),
                   layers_by_op=counts, export_s=round(time.perf_counter() - start, 2))
    except Exception as exc:
        row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"


def peer_rows(case: CorpusCase, work: Path, methods: tuple[str, ...]) -> list[dict[str, Any]]:
    """ai-edge-quantizer's int4 and 2-bit recipes on the same float model and samples, each
    beside edgesdk's export at the same weight bits and activation precision: the main table's
    exports for its int8-activation recipe, exports with each of `methods` for its
    float-activation (dynamic range) ones."""
    rows: list[dict[str, Any]] = []
    try:
        source = float_tflite(case)
    except Exception as exc:
        return [{"error": f"float .tflite: {type(exc).__name__}: {str(exc)[:300]}"}]
    for label, recipe_name, bits, acts, scheme in PEER_RECIPES:
        row: dict[str, Any] = {"tool": "ai-edge-quantizer", "label": label,
                               "recipe": recipe_name, "weight_bits": bits, "activations": acts}
        peer_file_row(case, source, recipe_name, work, row)
        print(f"{case.name:32s} {label:40s} worst {row.get('worst_sqnr_db')} dB "
              f"{row.get('size_bytes')} B subbyte {row.get('layers_by_op')}", file=sys.stderr,
              flush=True)
        rows.append(row)
        if acts != "int8":  # the int8-activation rows are in the main table already
            for method in methods:
                rows.append({"tool": "edgesdk", "beside": recipe_name,
                             **ours_row(case, scheme, method, work, acts)})
    return rows


#: --mixed --peers: ai-edge-quantizer's weight-only recipes that mixed is measured at the size of
MIXED_PEER_RECIPES = (("aeq dynamic_wi4_afp32", "dynamic_wi4_afp32"),
                      ("aeq dynamic_wi2c_afp32", "dynamic_wi2c_afp32"))


#: --mixed-budgets: the budgets mixed is measured at (all-int4's size, half of it, all-ternary's)
MIXED_BUDGETS = ("int4", "half", "ternary")


def mixed_part(name: str, samples: int, work: Path, peers: bool = False,
               mixed_only: bool = False, select_samples: int | None = None,
               budgets: tuple[str, ...] = MIXED_BUDGETS,
               scored_samples: int | None = None, float_acts: bool = False,
               every_only: bool = False, search_cap: dict[str, Any] | None = None,
               method: str = "rtn") -> dict[str, Any]:
    """--mixed: all-INT4 and all-ternary (round to nearest) beside `sdk.export(..., "mixed",
    budget_bytes=)` at all-INT4's size, at half of it (an error row where half is under the
    smallest mixed model) and at all-ternary's size, worst-output SQNR scored as in
    `model_part` on held-out samples that no export validated on (mixed chooses by its
    exports' validation); and the all-2-bit floor, each non-mixed file's bytes by what they
    hold (`byte_breakdown`). Every row says its sub-byte / weighted layers. `peers`:
    ai-edge-quantizer's int4 and 2-bit weight-only recipes (`MIXED_PEER_RECIPES`, on the
    float .tflite, scored the same way) and mixed at each of their file sizes (`mixed_only`:
    only those, not the int4 / ternary rows). `select_samples`: how many held-out inputs the
    exports validate on and mixed chooses by (default as many as are scored). `budgets`: which
    of `MIXED_BUDGETS` mixed is measured at (a large model: int4 alone). `float_acts`: beside
    the peers' files, mixed with float activations too (`mixed_peer_rows`). `every_only`: beside
    the peers' files only the every-layer-INT4 rows (`every_int4_rows`), no mixed search.
    `search_cap`: `MixedOptions.max_exports` / `max_seconds` for every mixed search (a large
    model on a small host); each mixed row's JSON says where its search stopped (`capped`).
    `method`: every export's weight method (rtn: MSE-searched scales; minmax: each channel's
    absolute maximum, as ai-edge-quantizer's recipes)."""
    from corpus.measure import quiet

    from sdk.converters.quantize.file_bytes import byte_breakdown

    case = corpus_case(name, samples, select_set=True, select_samples=select_samples,
                       scored_samples=scored_samples)
    if isinstance(case, str):
        return {"model": name, "error": case}
    assert case.select is not None
    out: dict[str, Any] = {"model": name, "kind": case.model.kind, "weight_method": method,
                           "calibration_samples": len(case.cal),
                           "held_out_samples": len(case.val),
                           "selection_samples": len(case.select), "rows": []}

    def run(label: str, scheme: str, **kw: Any) -> dict[str, Any]:
        start = time.perf_counter()
        row: dict[str, Any] = {"label": label, "scheme": scheme}
        if scheme == "mixed" and search_cap:
            kw["scheme_options"] = {**search_cap, **kw.get("scheme_options", {})}
        try:
            with quiet():
                # what the exports validate on (and mixed chooses by): not the scored set
                r = _export(str(case.path), scheme, method, case.stacked(case.cal),
                            case.stacked(case.select), work / f"{name}_{label}.tflite",
                            input_shapes=case.shapes, **kw)
                res = case.score(r.path.read_bytes(), _delegates(r))
            row.update(size_bytes=r.size_bytes, worst_sqnr_db=round(res.worst_sqnr_db, 2),
                       export_s=round(time.perf_counter() - start, 2))
            counts = layer_counts(r.path)
            row.update(subbyte_layers=sum(c[0] for c in counts.values()),
                       weighted_layers=sum(c[1] for c in counts.values()), layers_by_op=counts)
            if r.mixed is None:  # where the bytes go (the floor of mixed precision)
                row["bytes"] = byte_breakdown(r.path).to_dict()
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

    if peers:
        def peer_run(label: str, scheme: str, **kw: Any) -> dict[str, Any]:
            if every_only and scheme == "mixed":
                return {"label": label, "skipped": "--mixed-every-int4-only"}
            return run(label, scheme, **kw)

        mixed_peer_rows(case, work, out, peer_run, float_acts)
    if mixed_only:
        return out
    int4 = run("int4", "int4")
    # the ternary row and the all-2-bit floor only where a budget reads them: at all-INT4's
    # size alone (a large model) they are ~15 of ddddocr_rec's 30 minutes, beside no bar
    tern = run("ternary", "ternary") if {"half", "ternary"} & set(budgets) else {}
    if {"half", "ternary"} & set(budgets):  # the smallest file mixed can make: all 2-bit
        run("all-int2", "int2", scheme_options={"keep_first": False, "keep_last": False})
    if "size_bytes" not in int4:
        return out
    if "int4" in budgets:
        m4 = run("mixed@int4", "mixed", budget_bytes=int4["size_bytes"])
        out["beats_int4_at_its_size"] = (m4.get("worst_sqnr_db", -1e9) >
                                         int4["worst_sqnr_db"])
    half: dict[str, Any] = {}
    if "half" in budgets:
        half = run("mixed@int4/2", "mixed", budget_bytes=int4["size_bytes"] // 2)
    if "size_bytes" in tern and "ternary" in budgets:  # whether or not half fits
        at_tern = run("mixed@ternary", "mixed", budget_bytes=tern["size_bytes"])
        if half:
            out["beats_ternary_at_half_int4"] = half.get("worst_sqnr_db", -1e9) > \
                tern["worst_sqnr_db"]
        out["beats_ternary_at_its_size"] = at_tern.get("worst_sqnr_db", -1e9) > \
            tern["worst_sqnr_db"]
    return out


def mixed_peer_rows(case: CorpusCase, work: Path, out: dict[str, Any], run: Any,
                    float_acts: bool = False) -> None:
    """ai-edge-quantizer's recipes of `MIXED_PEER_RECIPES` on `case` (rows in `out["peers"]`:
    size, worst SQNR on the scored samples, sub-byte / weighted layers), each followed by
    edgesdk mixed at its file's size (`run`'s row, label "mixed@<recipe>"; int8 activations)
    and, with `float_acts`, mixed with float activations as its recipes have (label
    "mixed-afp32@<recipe>": weight-only, like for like)."""
    out["peers"] = []
    by_size: dict[int, dict[str, Any]] = {}
    try:
        source = float_tflite(case)
    except Exception as exc:
        out["peers"].append({"error": f"float .tflite: {type(exc).__name__}: {str(exc)[:300]}"})
        return
    for label, recipe_name in MIXED_PEER_RECIPES:
        row: dict[str, Any] = {"tool": "ai-edge-quantizer", "label": label,
                               "recipe": recipe_name}
        peer_file_row(case, source, recipe_name, work, row)
        print(f"{case.name:32s} {label:24s} {row.get('size_bytes')} B worst "
              f"{row.get('worst_sqnr_db')} dB subbyte {row.get('subbyte_layers')} of "
              f"{row.get('weighted_layers')}", file=sys.stderr, flush=True)
        out["peers"].append(row)
        if "size_bytes" in row:
            # one search per size (MediaPipe's float16 files come back unquantised from both
            # recipes, the same bytes)
            ours = by_size.get(row["size_bytes"]) or run(
                f"mixed@{recipe_name}", "mixed", budget_bytes=row["size_bytes"])
            by_size[row["size_bytes"]] = ours
            if "worst_sqnr_db" in ours:
                theirs = row["worst_sqnr_db"] if row["worst_sqnr_db"] is not None else math.inf
                row["mixed_more_layers"] = ours["subbyte_layers"] > row["subbyte_layers"]
                row["mixed_higher_sqnr_same_or_smaller"] = (
                    ours["worst_sqnr_db"] > theirs and ours["size_bytes"] <= row["size_bytes"])
            if float_acts:  # like for like: its recipe keeps activations float, so does this mix
                key = -row["size_bytes"]
                ours_f = by_size.get(key) or run(
                    f"mixed-afp32@{recipe_name}", "mixed", budget_bytes=row["size_bytes"],
                    scheme_options={"activations": "float32"})
                by_size[key] = ours_f
                if "worst_sqnr_db" in ours_f:
                    theirs = row["worst_sqnr_db"] if row["worst_sqnr_db"] is not None \
                        else math.inf
                    row["mixed_afp32_higher_sqnr_same_or_smaller"] = (
                        ours_f["worst_sqnr_db"] > theirs
                        and ours_f["size_bytes"] <= row["size_bytes"])
            if "wi4" in recipe_name:  # like for like on layers: every one INT4, as its file
                every_int4_rows(row, run, float_acts)


#: the int4 scheme with every weighted layer INT4 where the format is legal (no first / last
#: layer kept, no weight-SQNR floor): the row beside ai-edge-quantizer's int4 file that counts
#: as many sub-byte layers as it can
EVERY_INT4 = {"keep_first": False, "keep_last": False, "sqnr_floor_db": -1e9}


def every_int4_rows(row: dict[str, Any], run: Any, float_acts: bool) -> None:
    """Beside ai-edge-quantizer's int4 file (`row`): edgesdk's int4 scheme with every weighted
    layer INT4 (`EVERY_INT4`; int8 activations, and with `float_acts` float ones, like its
    recipe), and whether it has more sub-byte layers and a higher SQNR at the same or smaller
    size: "more layers quantised" where mixed keeps a layer INT8 because it measures best."""
    theirs = row["worst_sqnr_db"] if row["worst_sqnr_db"] is not None else math.inf
    for acts in ("int8",) + (("float32",) if float_acts else ()):
        tag = "every-int4" if acts == "int8" else "every-int4-afp32"
        ours = run(f"{tag}@{row['recipe']}", "int4",
                   scheme_options={**EVERY_INT4, "activations": acts})
        if "worst_sqnr_db" in ours:
            row[f"{tag}_more_layers"] = ours["subbyte_layers"] > row["subbyte_layers"]
            row[f"{tag}_as_many_layers"] = ours["subbyte_layers"] >= row["subbyte_layers"]
            row[f"{tag}_higher_sqnr_same_or_smaller"] = (
                ours["worst_sqnr_db"] > theirs and ours["size_bytes"] <= row["size_bytes"])


def summarise(models: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per scheme and method over the models whose export has a sub-byte layer (one
    without is the INT8 model: it says nothing of sub-byte rounding), with the median export
    time."""
    summary: dict[str, Any] = {}
    for scheme in SCHEMES:
        for method in METHODS:
            rows = [(m["model"], e) for m in models for e in m.get("exports", [])
                    if e["scheme"] == scheme and e["method"] == method and "worst_sqnr_db" in e
                    and e.get("subbyte_layers", 1) > 0]
            vals = [e["worst_sqnr_db"] for _, e in rows]
            secs = [e["export_s"] for _, e in rows if "export_s" in e]
            summary[f"{scheme}/{method}"] = {
                "median_worst_sqnr_db": round(median(vals), 2) if vals else None,
                "models": len(vals), "model_names": [n for n, _ in rows],
                "median_export_s": round(median(secs), 1) if secs else None}
    int8 = [m["int8_worst_sqnr_db"] for m in models if "int8_worst_sqnr_db" in m]
    summary["int8/default"] = {"median_worst_sqnr_db": round(median(int8), 2) if int8 else None,
                               "models": len(int8)}
    bars = {}
    for scheme in SCHEMES:
        bar = BARS["models_median_worst_sqnr_db"][scheme]
        entry: dict[str, Any] = {"bar_db": bar, "rtn_median_worst_sqnr_db": summary[
            f"{scheme}/rtn"]["median_worst_sqnr_db"]}
        met = []
        for method in SOLVED:
            got = summary[f"{scheme}/{method}"]["median_worst_sqnr_db"]
            entry[f"{method}_median_worst_sqnr_db"] = got
            if got is not None and got >= bar:
                met.append(method)
        entry["met"] = bool(met)
        entry["met_by"] = met
        bars[scheme] = entry
    summary["bars"] = bars
    peers = [dict(model=m["model"], **p) for m in models for p in m.get("peers", [])]
    if peers:
        summary["vs_ai_edge_quantizer"] = peer_summary(models)
    return summary


def peer_summary(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model and ai-edge-quantizer recipe: its worst SQNR, size and sub-byte layers beside
    edgesdk's best export at the same weight bits and activations (the main table's int8-
    activation rows for its static recipe), and whether ours quantised more layers and scored
    higher at the same or a smaller size."""
    out = []
    for m in models:
        peers = m.get("peers", [])
        for p in peers:
            if p.get("tool") != "ai-edge-quantizer":
                continue
            if "size_bytes" not in p:  # its quantiser failed, or LiteRT refused its file
                out.append({"model": m["model"], "recipe": p.get("label"),
                            "aeq_error": p.get("error")})
                continue
            scheme = {4: "int4", 2: "int2"}[p["weight_bits"]]
            if p["activations"] == "int8":
                ours = [e for e in m.get("exports", []) if e["scheme"] == scheme
                        and "worst_sqnr_db" in e]
            else:
                ours = [e for e in peers if e.get("tool") == "edgesdk"
                        and e.get("beside") == p["recipe"] and "worst_sqnr_db" in e]
            fits = [e for e in ours if e["size_bytes"] <= p["size_bytes"]]
            best = max(fits or ours, key=lambda e: e["worst_sqnr_db"], default=None)
            row = {"model": m["model"], "recipe": p["label"],
                   "aeq_worst_sqnr_db": p["worst_sqnr_db"], "aeq_size_bytes": p["size_bytes"],
                   "aeq_subbyte_layers": p["subbyte_layers"],
                   "aeq_weighted_layers": p["weighted_layers"]}
            if p["worst_sqnr_db"] is None:
                row["aeq_note"] = p.get("note")
            if best is not None:
                aeq_sqnr = p["worst_sqnr_db"] if p["worst_sqnr_db"] is not None else float("inf")
                row.update(ours_method=best["method"], ours_worst_sqnr_db=best["worst_sqnr_db"],
                           ours_size_bytes=best["size_bytes"],
                           ours_subbyte_layers=best["subbyte_layers"],
                           more_layers=best["subbyte_layers"] > p["subbyte_layers"],
                           higher_sqnr_same_or_smaller=best["worst_sqnr_db"] > aeq_sqnr
                           and best["size_bytes"] <= p["size_bytes"])
            out.append(row)
    return out


def fast_subset() -> list[str]:
    """The corpus' fast subset (`FAST_SUBSET`), smallest file first."""
    from corpus.manifest import cache_dir, load_manifest, smallest_per_kind

    root = cache_dir()
    chosen = smallest_per_kind(load_manifest(), root)
    return [m.name for m in sorted(chosen, key=lambda m: m.path(root).stat().st_size)]


def merge(paths: list[Path], out: Path | None) -> int:
    """One report from several runs' JSON (their models in the order given), summarised."""
    runs = [json.loads(p.read_text()) for p in paths]
    report = {k: v for k, v in runs[0].items() if k not in ("models", "summary", "partial")}
    report["merged_from"] = [str(p) for p in paths]
    by_name: dict[str, dict[str, Any]] = {}
    for m in (m for r in runs for m in r.get("models", [])):
        if m["model"] in by_name:  # the same model in runs of other schemes / methods
            have = by_name[m["model"]]
            have.setdefault("exports", []).extend(m.get("exports", []))
            for k, v in m.items():
                have.setdefault(k, v)
        else:
            by_name[m["model"]] = dict(m, exports=list(m.get("exports", [])))
    report["models"] = list(by_name.values())
    report["summary"] = summarise(report["models"])
    text = json.dumps(report, indent=1)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    print(text)
    return 0


def search_cap(args: argparse.Namespace) -> dict[str, Any]:
    """The mixed searches' cap from --mixed-max-exports / --mixed-max-seconds ({}: none)."""
    cap: dict[str, Any] = {}
    if args.mixed_max_exports is not None:
        cap["max_exports"] = args.mixed_max_exports
    if args.mixed_max_seconds is not None:
        cap["max_seconds"] = args.mixed_max_seconds
    for flag in args.mixed_on:  # MixedOptions switched on (absmax_plans, check_calibration)
        cap[flag] = True
    return cap


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(DEFAULT_MODELS),
                   help="corpus model names, comma-separated ('' for none)")
    p.add_argument("--samples", type=int, default=64, help="calibration samples per model")
    p.add_argument("--cal-seed", type=int, default=1,
                   help="the recipes' seed for the calibration inputs (1; another seed: another "
                        "draw, e.g. 4: 2 and 3 are the scored and selection sets)")
    p.add_argument("--no-digits", action="store_true")
    p.add_argument("--no-int8", action="store_true",
                   help="skip the INT8 ceiling row (e.g. a run of other methods merged later)")
    p.add_argument("--schemes", default=",".join(SCHEMES), help="sub-byte schemes to export")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"weight methods to export ({', '.join(METHODS)})")
    p.add_argument("--peers", action="store_true",
                   help="also ai-edge-quantizer's int4 and 2-bit recipes on the same models and "
                        "samples, each beside edgesdk's export at the same bits and activations")
    p.add_argument("--peer-methods", default="adaround",
                   help="edgesdk's methods beside ai-edge-quantizer's float-activation recipes")
    p.add_argument("--json-out", type=Path, default=None)
    p.add_argument("--merge", type=Path, nargs="+", default=None,
                   help="no exports: merge these JSON outputs (one model per run, say) and "
                        "summarise them together")
    p.add_argument("--qat", action="store_true",
                   help="add the digits CNN's quantisation-aware training rows (method qat)")
    p.add_argument("--qat-epochs", type=int, default=4, help="QAT fine-tuning epochs")
    p.add_argument("--mixed", action="store_true",
                   help="only mixed precision under a budget on --models (issue 15): all-int4 "
                        "and all-ternary beside mixed at their sizes (round to nearest)")
    p.add_argument("--select-samples", type=int, default=None,
                   help="with --mixed: held-out inputs (seed 3) the exports validate on and "
                        "mixed chooses by (default: as many as are scored, max(8, samples / 4))")
    p.add_argument("--scored-samples", type=int, default=None,
                   help="with --mixed: held-out inputs (seed 2) every file is scored on "
                        "(default max(8, samples / 4))")
    p.add_argument("--mixed-budgets", default=",".join(MIXED_BUDGETS),
                   help="with --mixed: the budgets mixed is measured at, of "
                        f"{', '.join(MIXED_BUDGETS)} (a large model: int4)")
    p.add_argument("--mixed-float-acts", action="store_true",
                   help="with --mixed --peers: also mixed with float activations (weight-only, "
                        "as ai-edge-quantizer's recipes) at their files' sizes")
    p.add_argument("--mixed-every-int4-only", action="store_true",
                   help="with --mixed --peers --mixed-peers-only: beside the peers' int4 files "
                        "only edgesdk's int4 scheme with every layer INT4, no mixed search")
    p.add_argument("--mixed-max-exports", type=int, default=None,
                   help="with --mixed: cap each mixed search at this many exports after its "
                        "uniform probes (MixedOptions.max_exports; default: no cap)")
    p.add_argument("--mixed-max-seconds", type=float, default=None,
                   help="with --mixed: no mixed search starts an export after this many "
                        "seconds (MixedOptions.max_seconds; the probes always run)")
    p.add_argument("--mixed-on", default=[], action="append",
                   choices=("absmax_plans", "check_calibration"),
                   help="with --mixed: switch this MixedOptions flag on in every mixed search "
                        "(repeatable)")
    p.add_argument("--mixed-method", default="rtn",
                   help="with --mixed: every export's weight method (rtn: MSE-searched scales; "
                        "minmax: each channel's absolute maximum, as ai-edge-quantizer's)")
    p.add_argument("--mixed-peers-only", action="store_true",
                   help="with --mixed --peers: only ai-edge-quantizer's int4 / 2-bit files and "
                        "mixed at their sizes")
    args = p.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.json_out)
    report: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "cpu": cpu_name(),
        "cores": os.cpu_count(), "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "versions": package_versions(VERSIONS)}
    with tempfile.TemporaryDirectory(prefix="subbyte_fidelity_") as tmp:
        work = Path(tmp)
        if not args.no_digits:
            report["digits"] = digits_part(work, args.qat_epochs if args.qat else 0)
        models = fast_subset() if args.models == FAST_SUBSET else \
            [m for m in args.models.split(",") if m]
        report["models"] = []
        if args.mixed:
            for m in models:
                try:
                    report["models"].append(mixed_part(
                        m, args.samples, work, args.peers, args.mixed_peers_only,
                        args.select_samples, tuple(args.mixed_budgets.split(",")),
                        args.scored_samples, args.mixed_float_acts,
                        args.mixed_every_int4_only, search_cap(args), args.mixed_method))
                except Exception as exc:
                    report["models"].append({"model": m, "error": f"{type(exc).__name__}: {exc}"})
                if args.json_out:
                    args.json_out.parent.mkdir(parents=True, exist_ok=True)
                    args.json_out.write_text(json.dumps(report, indent=1) + "\n")
            print(json.dumps(report, indent=1))
            return 0
        def partial(current: dict[str, Any] | None = None) -> None:
            if args.json_out:  # so far: a stopped run keeps what it measured
                done = report["models"] + ([current] if current is not None else [])
                args.json_out.parent.mkdir(parents=True, exist_ok=True)
                args.json_out.write_text(json.dumps({"partial": True, **report,
                                                     "models": done}, indent=1))

        for m in models:
            try:
                report["models"].append(model_part(
                    m, args.samples, work, tuple(args.schemes.split(",")),
                    tuple(args.methods.split(",")), args.peers,
                    tuple(args.peer_methods.split(",")), int8=not args.no_int8,
                    on_row=partial, cal_seed=args.cal_seed))
            except Exception as exc:  # e.g. the corpus manifest mid-edit: the others still run
                report["models"].append({"model": m, "error": f"{type(exc).__name__}: {exc}"})
            partial()
        report["summary"] = summarise(report["models"])
    text = json.dumps(report, indent=1)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
