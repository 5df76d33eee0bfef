"""One corpus model, measured: our export and the peer's, on the same inputs, by the same code.

The float reference is the published file itself: onnxruntime for ONNX, LiteRT (XNNPACK) for
.tflite. Our INT8 file comes from `sdk.export(path, "int8", calibration=..., validation=...)`
as a user would call it (defaults otherwise); the peer is ai-edge-quantizer's
`static_wi8_ai8` recipe for .tflite files and onnxruntime's `quantize_static` (QDQ,
per-channel, int8 weights and activations, MinMax) for ONNX files. Both quantised models run on
the held-out samples (LiteRT with XNNPACK for .tflite results, onnxruntime for QDQ) and are
compared with the float outputs: per output SQNR and cosine over all samples, and the task's
agreement (`tasks.py`).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .inputs import InputDesc, Sample
from .manifest import CorpusModel
from .prepared import prepare
from .protocol import CALIBRATION_SEED, HELDOUT, HELDOUT_SEED
from .tasks import agreement


@dataclass
class OutputStats:
    name: str
    sqnr_db: float
    cosine: float


@dataclass
class QuantResult:
    """One quantiser's result on one model."""

    tool: str
    ok: bool
    error: str | None = None
    #: the stage that failed: import, export, run
    stage: str | None = None
    outputs: list[OutputStats] = field(default_factory=list)
    worst_sqnr_db: float | None = None
    worst_cosine: float | None = None
    task_metric: str | None = None
    task_value: float | None = None
    size_bytes: int | None = None
    export_s: float | None = None
    #: ours: layers kept in float, and the three layers that lose most (per-layer SQNR)
    fallbacks: dict[str, str] = field(default_factory=dict)
    worst_layers: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class ModelResult:
    name: str
    kind: str
    format: str
    exporter: str
    package: str
    version: str
    float_size_bytes: int
    calibration_samples: int
    eval_samples: int
    import_ok: bool
    import_error: str | None
    export_ok: bool
    ours: QuantResult
    peer: QuantResult | None
    seconds: float = 0.0
    #: the float model itself does not run in its runtime (stock LiteRT / onnxruntime)
    reference_error: str | None = None
    #: what the float reference is when not the published file in its runtime
    reference_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))


def _clean(v: Any) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) else (round(v, 4) if math.isfinite(v) else str(v))
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def short_error(exc: BaseException, limit: int = 600) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= limit else text[:limit] + " ..."


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence C-level stdout/stderr (LiteRT and TensorFlow logs) inside the block."""
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


# ------------------------------------------------------------------ runners


class Runner:
    """Runs a model on samples; outputs in the runner's own order with their names."""

    names: list[str]

    def __call__(self, sample: Sample) -> list[np.ndarray]:
        raise NotImplementedError


class OrtRunner(Runner):
    def __init__(self, model: str | bytes):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        self.sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.sess.get_outputs()]
        self.inputs = {i.name for i in self.sess.get_inputs()}

    def __call__(self, sample: Sample) -> list[np.ndarray]:
        feed = {k: v for k, v in sample.items() if k in self.inputs}
        return [np.asarray(o) for o in self.sess.run(None, feed)]


def _key(name: str) -> str:
    base = name.split(":")[0]
    return base[len("serving_default_"):] if base.startswith("serving_default_") else base


class LiteRTRunner(Runner):
    """LiteRT with its default kernels (XNNPACK), and `delegates` where given (the edgesdk
    delegate for a file with its custom ops); int8/int16 I/O is (de)quantised here."""

    def __init__(self, model: bytes, input_order: Sequence[str],
                 delegates: list[Any] | None = None):
        from ai_edge_litert.interpreter import Interpreter

        with quiet():
            self.it = Interpreter(model_content=model, num_threads=1,
                                  experimental_delegates=delegates)
            self.it.allocate_tensors()
        self.ins = self.it.get_input_details()
        self.outs = self.it.get_output_details()
        self.names = [d["name"] for d in self.outs]
        self.order = list(input_order)

    def _source(self, d: dict[str, Any], i: int, sample: Sample) -> np.ndarray:
        for k, v in sample.items():
            if k == d["name"] or _key(k) == _key(d["name"]):
                return v
        return sample[self.order[i]]

    def __call__(self, sample: Sample) -> list[np.ndarray]:
        for i, d in enumerate(self.ins):
            x = np.asarray(self._source(d, i, sample))
            scale, zp = d["quantization"]
            if d["dtype"] in (np.int8, np.uint8, np.int16) and scale:
                info = np.iinfo(d["dtype"])
                x = np.clip(np.rint(x / scale + zp), info.min, info.max)
            self.it.set_tensor(d["index"], x.reshape(d["shape"]).astype(d["dtype"]))
        self.it.invoke()
        out = []
        for d in self.outs:
            y = self.it.get_tensor(d["index"])
            scale, zp = d["quantization"]
            if d["dtype"] in (np.int8, np.uint8, np.int16) and scale:
                y = (y.astype(np.float32) - zp) * scale
            out.append(np.array(y))
        return out


def align(ref_names: list[str], ref_sizes: list[int], names: list[str], sizes: list[int]
          ) -> list[int]:
    """For each reference output, the index of the same output of another runner: the same
    name; else the same name up to a ':N' / 'serving_default_' decoration and the same size;
    else the first unused output of the same size; else the same position."""
    idx: list[int] = []
    for i, (r, size) in enumerate(zip(ref_names, ref_sizes, strict=True)):
        free = [j for j in range(len(names)) if j not in idx]
        hit = ([j for j in free if names[j] == r]
               or [j for j in free if _key(names[j]) == _key(r) and sizes[j] == size]
               or [j for j in free if sizes[j] == size])
        idx.append(hit[0] if hit else i)
    return idx


def compare(ref: list[list[np.ndarray]], got: list[list[np.ndarray]], names: list[str]
            ) -> list[OutputStats]:
    stats = []
    for k, name in enumerate(names):
        r = np.concatenate([np.asarray(s[k], np.float64).ravel() for s in ref])
        g = np.concatenate([np.asarray(s[k], np.float64).ravel() for s in got])
        if r.shape != g.shape:
            raise ValueError(f"output {name!r}: {r.size} values vs {g.size}")
        err = float(np.sum((r - g) ** 2))
        sig = float(np.sum(r ** 2))
        sqnr = math.inf if err == 0 else 10 * math.log10(max(sig, 1e-30) / err)
        denom = float(np.linalg.norm(r) * np.linalg.norm(g))
        cos = 1.0 if denom == 0 and err == 0 else (float(r @ g) / denom if denom else 0.0)
        stats.append(OutputStats(name, sqnr, cos))
    return stats


def score(tool: str, model: CorpusModel, hw: tuple[int, int] | None, ref_names: list[str],
          ref: list[list[np.ndarray]], runner: Runner, samples: list[Sample]) -> QuantResult:
    outs = [runner(s) for s in samples]
    idx = align(ref_names, [o.size for o in ref[0]], runner.names, [o.size for o in outs[0]])
    got = [[out[j] for j in idx] for out in outs]
    stats = compare(ref, got, ref_names)
    res = QuantResult(tool, True, outputs=stats)
    res.worst_sqnr_db = min(s.sqnr_db for s in stats)
    res.worst_cosine = min(s.cosine for s in stats)
    task = agreement(model.task, hw, ref, got)
    if task is not None:
        res.task_metric, res.task_value = task
    return res


# ------------------------------------------------------------------ quantisers


def stacked(samples: list[Sample], descs: list[InputDesc]) -> dict[str, np.ndarray]:
    """Samples as sdk.export takes them: {input: (N, *sample shape)} (batch-1 axis dropped)."""
    out = {}
    for d in descs:
        arr = np.stack([s[d.name] for s in samples])
        if len(d.shape) >= 1 and d.shape[0] == 1:
            arr = arr[:, 0]
        out[d.name] = arr
    return out


def ours(model: CorpusModel, path: Path, descs: list[InputDesc], cal: list[Sample],
         val: list[Sample], work: Path, **options: Any) -> tuple[bytes, Any, float]:
    """(file, sdk.export's result, wall seconds) of our INT8 export of `model` as the corpus
    makes it (the recipe's input shapes and constant inputs), written to `work`; `options`: more
    keywords of `sdk.export` (benchmarks/export_bytes.py, benchmarks/head_bias_reuse.py)."""
    import sdk

    out = work / f"{model.name}_int8.tflite"
    descs = [d for d in descs if d.name not in model.constant_inputs]
    start = time.perf_counter()
    with quiet():
        result = sdk.export(str(path), "int8", calibration=stacked(cal, descs),
                            validation=stacked(val, descs), output=str(out),
                            input_shapes=dict(model.input_shapes) or None, report=False,
                            constant_inputs=dict(model.constant_inputs) or None, **options)
    return out.read_bytes(), result, time.perf_counter() - start


def with_signature(model: bytes) -> bytes:
    """The same .tflite with a `serving_default` signature over the main graph's inputs and
    outputs (named as the tensors are). ai-edge-quantizer refuses files without one, as
    MediaPipe publishes them; this is the smallest patch that lets it run at all."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(model, 0)
    g = m.subgraphs[0]
    sig = schema.SignatureDefT()
    sig.signatureKey = "serving_default"
    sig.subgraphIndex = 0

    def name(i: int) -> str:
        raw = g.tensors[i].name
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    sig.inputs = [schema.TensorMapT(name(i), i) for i in g.inputs]
    sig.outputs = [schema.TensorMapT(name(i), i) for i in g.outputs]
    m.signatureDefs = [sig]
    b = flatbuffers.Builder(len(model) + 4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def aeq(path: Path, descs: list[InputDesc], cal: list[Sample]) -> tuple[bytes, float, bool]:
    """ai-edge-quantizer, static_wi8_ai8; the flag says a signature had to be added."""
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    start = time.perf_counter()
    source = path.read_bytes()
    it = Interpreter(model_content=source)
    patched = not it.get_signature_list()
    if patched:
        source = with_signature(source)
        it = Interpreter(model_content=source)
    key = next(iter(it.get_signature_list()))
    runner = it.get_signature_runner(key)
    by_tensor = {d["name"]: name for name, d in runner.get_input_details().items()}
    q = quantizer.Quantizer(source)
    q.load_quantization_recipe(recipe.static_wi8_ai8())
    data = [{by_tensor.get(d.name, d.name): s[d.name] for d in descs} for s in cal]
    with quiet():
        calibration = q.calibrate({key: data})
        model = bytes(q.quantize(calibration).quantized_model)
    return model, time.perf_counter() - start, patched


def ort_qdq(path: Path, cal: list[Sample], work: Path) -> tuple[bytes, float]:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(cal)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    out = work / "peer_qdq.onnx"
    start = time.perf_counter()
    with quiet():
        quantize_static(str(path), str(out), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8)
    return out.read_bytes(), time.perf_counter() - start


# ------------------------------------------------------------------ one model


def run_model(model: CorpusModel, samples: int, *, peers: bool = True,
              cache: Path | None = None, seed: int = 0, heldout: int = HELDOUT) -> ModelResult:
    start = time.perf_counter()
    prep = prepare(model, cache)
    path, descs, input_order = prep.path, prep.descs, prep.order
    cal = prep.samples(samples, seed + CALIBRATION_SEED)
    if heldout < 1:
        raise ValueError(f"heldout must be at least 1, not {heldout}")
    val = prep.samples(heldout, seed + HELDOUT_SEED)
    hw = _image_hw(model, descs)

    result = ModelResult(model.name, model.kind, model.format, model.exporter, model.package,
                         model.version, path.stat().st_size, len(cal), len(val), False, None,
                         False, QuantResult("edgesdk", False), None)
    # the float reference: the published file in its own runtime (stock LiteRT cannot run
    # files with a publisher's custom ops: then nothing can be compared, but import and
    # export are still tried and reported)
    reference = float_reference(model, path, input_order, val)
    ref, ref_names = reference.outputs, reference.names
    result.reference_error, result.reference_note = reference.error, reference.note
    # import: what sdk.export does first
    try:
        from sdk.converters.frontends import load_model

        with quiet():
            load_model(str(path), input_shapes=dict(model.input_shapes) or None,
                       constant_inputs=dict(model.constant_inputs) or None)
        result.import_ok = True
    except Exception as exc:
        result.import_error = short_error(exc)
        result.ours = QuantResult("edgesdk", False, short_error(exc), "import")

    with tempfile.TemporaryDirectory(prefix="edgesdk-corpus-") as tmp:
        work = Path(tmp)
        if result.import_ok:
            try:
                data, exported, secs = ours(model, path, descs, cal, val, work)
                result.export_ok = True
            except Exception as exc:
                result.ours = QuantResult("edgesdk", False, short_error(exc), "export")
            else:
                try:
                    if result.reference_error:
                        raise RuntimeError("no float reference to compare with: "
                                           + result.reference_error)
                    res = score("edgesdk", model, hw, ref_names, ref,
                                LiteRTRunner(data, input_order), val)
                except Exception as exc:
                    res = QuantResult("edgesdk", False, short_error(exc), "run")
                res.size_bytes, res.export_s = len(data), secs
                res.fallbacks = dict(exported.fallbacks)
                # what the user is told (FidelityWarning: an output under 15 dB, naming the
                # layer that loses most), so the table can show the warning, not assume it
                res.warnings = list(exported.fidelity.warnings) \
                    if exported.fidelity is not None else []
                if exported.fidelity is not None and exported.fidelity.layers:
                    # layers clipped on purpose (a note says why) read low by design
                    plain = [lf for lf in exported.fidelity.layers if not lf.note]
                    worst = sorted(plain, key=lambda lf: lf.sqnr_db)[:3]
                    res.worst_layers = [{"name": lf.name, "op": lf.op_type,
                                         "sqnr_db": lf.sqnr_db, "note": lf.note}
                                        for lf in worst]
                result.ours = res
        if peers:
            result.peer = _peer(model, path, descs, cal, val, work, hw, ref_names, ref,
                                input_order)
    result.seconds = time.perf_counter() - start
    return result


@dataclass
class Reference:
    """The float model's outputs on the held-out samples, or why there are none."""

    outputs: list[list[np.ndarray]]
    names: list[str]
    #: the float model does not run (then `outputs` is empty)
    error: str | None = None
    #: what the reference is when not the published file in its runtime
    note: str | None = None


def float_reference(model: CorpusModel, path: Path, input_order: list[str],
                    val: list[Sample]) -> Reference:
    """The published file in its own runtime (onnxruntime, LiteRT with XNNPACK); where stock
    LiteRT cannot load a .tflite (a publisher's custom ops), our float import of it."""
    try:
        if model.format == "onnx":
            runner: Runner = OrtRunner(str(path))
        else:
            runner = LiteRTRunner(path.read_bytes(), input_order)
        return Reference([runner(s) for s in val], runner.names)
    except Exception as exc:
        error = short_error(exc)
    if model.format == "tflite":  # a publisher's custom ops: our float import, if it runs
        try:
            ref, names = _imported_reference(path, input_order, val)
        except Exception:
            pass
        else:
            return Reference(ref, names, note=(
                "float reference: the imported float model (publisher custom ops rewritten "
                "as builtins), run in LiteRT; the published file does not load there: "
                + error))
    return Reference([], [], error=error)


def _peer(model: CorpusModel, path: Path, descs: list[InputDesc], cal: list[Sample],
          val: list[Sample], work: Path, hw: tuple[int, int] | None, ref_names: list[str],
          ref: list[list[np.ndarray]], input_order: list[str]) -> QuantResult:
    tool = "ai-edge-quantizer" if model.format == "tflite" else "onnxruntime"
    warnings: list[str] = []
    if not ref:
        return QuantResult(tool, False, "not run: the float model does not run here", "reference")
    try:
        if model.format == "tflite":
            data, secs, patched = aeq(path, descs, cal)
            if patched:
                warnings.append("the file has no signature: one was added so that "
                                "ai-edge-quantizer runs at all")
        else:
            data, secs = ort_qdq(path, cal, work)
    except Exception as exc:
        return QuantResult(tool, False, short_error(exc), "export", warnings=warnings)
    try:
        runner: Runner = (LiteRTRunner(data, input_order) if model.format == "tflite"
                          else OrtRunner(data))
        res = score(tool, model, hw, ref_names, ref, runner, val)
    except Exception as exc:
        res = QuantResult(tool, False, short_error(exc), "run")
    res.size_bytes, res.export_s = len(data), secs
    if model.format == "onnx" and b"QuantizeLinear" not in data:
        warnings.append("onnxruntime quantised nothing (no QuantizeLinear in its file): "
                        "its numbers are the float model's")
    res.warnings = warnings
    return res


def _imported_reference(path: Path, input_order: list[str], val: list[Sample]
                        ) -> tuple[list[list[np.ndarray]], list[str]]:
    from sdk.converters.frontends import load_model
    from sdk.converters.tflite import to_tflite_bytes

    with quiet():
        runner = LiteRTRunner(to_tflite_bytes(load_model(str(path)).model), input_order)
    return [runner(s) for s in val], runner.names


def _image_hw(model: CorpusModel, descs: list[InputDesc]) -> tuple[int, int] | None:
    d = descs[0]
    if len(d.shape) != 4:
        return None
    if model.input.get("layout", "nhwc") == "nchw":
        return d.shape[2], d.shape[3]
    return d.shape[1], d.shape[2]


def error_result(model: CorpusModel, message: str) -> dict[str, Any]:
    """What the driver records when the model's subprocess died or timed out."""
    return {"name": model.name, "kind": model.kind, "format": model.format,
            "exporter": model.exporter, "package": model.package, "version": model.version,
            "import_ok": False, "export_ok": False, "import_error": message,
            "ours": {"tool": "edgesdk", "ok": False, "error": message, "stage": "process"},
            "peer": None}


__all__ = ["HELDOUT", "ModelResult", "QuantResult", "Reference", "error_result", "float_reference",
           "run_model"]
