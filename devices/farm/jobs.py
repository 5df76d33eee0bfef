"""What the farm runs: models (identified by content), settings, jobs = (model, board, settings).

A job's key is a hash of the model's SHA-256, the board's name and measurement-relevant config
(runner, delegates, ABI, exec prefix, environment) and the settings: the results database
answers "is this done?" by key, so a killed run resumes where it stopped and a changed setting
is measured afresh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.devices.base import sha256_file
from sdk.devices.farm.inventory import BoardConfig

#: Precisions in the order reports list them.
PRECISIONS = ("float32", "float16", "int8", "int4", "int2", "ternary")


@dataclass(frozen=True)
class Fidelity:
    """How close a quantised model is to its float original (from its export report, or
    measured on the host against a reference model)."""

    min_sqnr_db: float | None
    top1_agreement: float | None
    source: str


@dataclass(frozen=True)
class ModelInfo:
    """A model file as the farm knows it."""

    path: str
    name: str
    sha256: str
    size_bytes: int
    format: str                  #: "tflite", "edge"
    precision: str               #: float32, int8, int4, int2, ternary (weights of GEMM/conv ops)
    scheme: str | None = None    #: the export scheme, when an export report is beside it
    fidelity: Fidelity | None = None

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], *,
                  reference: str | os.PathLike[str] | None = None) -> ModelInfo:
        from sdk.devices.errors import RunnerError

        file = Path(path)
        if not file.is_file():
            raise RunnerError(f"no such model file: {file}")
        scheme, fidelity = _export_report(file)
        precision = scheme if scheme in PRECISIONS else weight_precision(file)
        if fidelity is None and reference is not None and Path(reference).resolve() != \
                file.resolve():
            fidelity = host_fidelity(file, reference)
        return cls(path=str(file.resolve()), name=file.name, sha256=sha256_file(file),
                   size_bytes=file.stat().st_size, format=file.suffix.lstrip(".").lower(),
                   precision=precision, scheme=scheme, fidelity=fidelity)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelInfo:
        d = dict(d)
        if d.get("fidelity") is not None:
            d["fidelity"] = Fidelity(**d["fidelity"])
        return cls(**d)


def export_report_path(model: Path) -> Path:
    """Where `sdk.export` writes a model's JSON report (`sdk.exporter.report_path_for`, which
    this layer may not import): <stem>.report.json beside a .tflite, <name>.report.json beside
    any other format, so m.tflite and m.edge never read each other's report."""
    if model.suffix.lower() == ".tflite":
        return model.with_name(model.stem + ".report.json")
    return model.with_name(model.name + ".report.json")


def _export_report(model: Path) -> tuple[str | None, Fidelity | None]:
    """(scheme, fidelity) from the report that `sdk.export` wrote beside the model."""
    report = export_report_path(model)
    if not report.is_file():
        return None, None
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        return None, None
    scheme = data.get("scheme") if isinstance(data.get("scheme"), str) else None
    fid = data.get("fidelity")
    if not isinstance(fid, dict) or not fid.get("outputs"):
        return scheme, None
    from sdk.run.fidelity import FidelityReport

    report_obj = FidelityReport.from_dict(fid)
    return scheme, Fidelity(min_sqnr_db=float(report_obj.min_sqnr_db),
                            top1_agreement=report_obj.top1_agreement,
                            source=f"export report ({report_obj.samples} samples, "
                                   f"{report_obj.source})")


def weight_precision(model: Path) -> str:
    """The narrowest weight type of the model's GEMM/conv operators (INT2 weights holding only
    -1, 0, +1 are "ternary")."""
    if model.suffix.lower() == ".edge":
        return edge_precision(model)
    if model.suffix.lower() != ".tflite":
        return "unknown"
    from sdk.converters import DType, read_tflite

    try:
        ir = read_tflite(str(model))
    except Exception:
        return "unknown"
    found: set[str] = set()
    for op in ir.all_operators():
        if op.type not in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV",
                           "BATCH_MATMUL") and not op.type.startswith("CUSTOM"):
            continue
        for t in op.inputs[1:2]:
            if t is None or not t.is_constant:
                continue
            if t.dtype == DType.INT2:
                values = t.data if not isinstance(t.data, bytes) else None
                ternary = values is not None and set(map(int, set(values.ravel().tolist()))) <= \
                    {-1, 0, 1}
                found.add("ternary" if ternary else "int2")
            elif t.dtype == DType.INT4:
                found.add("int4")
            elif t.dtype in (DType.INT8, DType.UINT8):
                found.add("int8")
            elif t.dtype == DType.FLOAT16:
                found.add("float16")
            elif t.dtype == DType.FLOAT32:
                found.add("float32")
    for precision in ("ternary", "int2", "int4", "int8", "float16", "float32"):
        if precision in found:
            return precision
    return "float32"


#: .edge metadata weight types -> precision names, narrowest first
_EDGE_WEIGHTS = (("ternary", "ternary"), ("int2", "int2"), ("int4", "int4"), ("int8", "int8"),
                 ("float16", "float16"), ("float32", "float32"))


def edge_precision(model: Path) -> str:
    """A .edge model's precision from its metadata: the export recipe's scheme (its first
    field, e.g. "ternary; activations=int8; ..."), else the narrowest per-layer weight type."""
    from sdk.converters import read_edge

    try:
        meta = read_edge(str(model)).metadata
    except Exception:
        return "unknown"
    scheme = meta.quantization_recipe.split(";")[0].strip().lower()
    if scheme in PRECISIONS:
        return scheme
    found = " ".join(str(layer.get("weight_dtype", "")).lower() for layer in meta.layers)
    for key, precision in _EDGE_WEIGHTS:
        if key in found:
            return precision
    return "unknown"


def host_fidelity(model: str | os.PathLike[str], reference: str | os.PathLike[str], *,
                  samples: int = 32, seed: int = 0) -> Fidelity:
    """SQNR and top-1 agreement of `model` against a float `reference` on this host (LiteRT),
    over seeded random normal inputs (say so in reports: not a validation set)."""
    import numpy as np

    from sdk.run.fidelity import compare_outputs
    from sdk.run.runner import LiteRTRunner

    ref = LiteRTRunner(Path(reference).read_bytes())
    test = LiteRTRunner(Path(model).read_bytes())
    rng = np.random.default_rng(seed)
    ref_outs: list[list[np.ndarray]] = [[] for _ in ref.outputs]
    test_outs: list[list[np.ndarray]] = [[] for _ in test.outputs]
    for _ in range(samples):
        feeds = [rng.standard_normal([max(int(d), 1) for d in x.shape]).astype(np.float32)
                 for x in ref.inputs]
        for acc, out in zip(ref_outs, ref.invoke(feeds), strict=True):
            acc.append(out)
        for acc, out in zip(test_outs, test.invoke(feeds), strict=True):
            acc.append(out)
    results = [compare_outputs(d.name, np.concatenate(r), np.concatenate(t),
                               outputs=len(ref.outputs))
               for d, r, t in zip(ref.outputs, ref_outs, test_outs, strict=True)]
    top1 = [r.top1_agreement for r in results if r.top1_agreement is not None]
    return Fidelity(min_sqnr_db=float(min(r.sqnr_db for r in results)),
                    top1_agreement=min(top1) if top1 else None,
                    source=f"host LiteRT vs {Path(reference).name}, {samples} random inputs")


#: what a job does: time the model (`sdk.profile`) or compare its outputs with the host's
#: (`sdk.validate`)
PROFILE, VALIDATE = "profile", "validate"
JOB_KINDS = (PROFILE, VALIDATE)


@dataclass(frozen=True)
class JobSettings:
    """How one job measures. `layers`: also time each operator alone. Validation jobs
    (`kind="validate"`) use `threads` and `inputs` (the input set's SHA-256) only."""

    runs: int = 50
    warmup: int = 5
    min_duration_s: float = 1.0
    threads: int | None = None
    cpus: str | None = None
    layers: bool = False
    kind: str = PROFILE
    inputs: str | None = None

    @classmethod
    def validation(cls, *, inputs: str, threads: int | None = None) -> JobSettings:
        return cls(runs=0, warmup=0, min_duration_s=0.0, threads=threads, cpus=None,
                   layers=False, kind=VALIDATE, inputs=inputs)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.kind == PROFILE:
            # profile jobs keep the keys (and so the job keys) they had before validation
            # jobs existed: databases of earlier versions still resume
            del out["kind"], out["inputs"]
        return out


@dataclass(frozen=True)
class InputSet:
    """Validation inputs, saved once as an .npz the farm's jobs read (and Dask sends to the
    workers as bytes). `sha256` is the file's, and the file's bytes depend on the arrays only,
    so the same inputs make the same job keys."""

    path: str
    sha256: str
    samples: int
    source: str                  #: "inputs.npy", "random (seed 0)", ...

    @classmethod
    def save(cls, inputs: Any, folder: str | os.PathLike[str], *, source: str) -> InputSet:
        """Store `inputs` (an array, a list of arrays, or {input name: array}; samples on axis
        0) as `folder/<sha256[:16]>.npz`."""
        import io
        import zipfile

        import numpy as np

        from sdk.base.fileio import atomic_write_bytes

        if isinstance(inputs, dict):
            named = [(f"name:{k}", np.asarray(v)) for k, v in inputs.items()]
        elif isinstance(inputs, list | tuple):
            named = [(f"pos:{i}", np.asarray(v)) for i, v in enumerate(inputs)]
        else:
            named = [("pos:0", np.asarray(inputs))]
        if not named:
            raise ValueError("no validation inputs")
        samples = {int(a.shape[0]) if a.ndim else 1 for _, a in named}
        buffer = io.BytesIO()
        # a fixed time stamp: the same arrays give the same bytes (np.savez stamps "now")
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for name, array in named:
                info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
                with archive.open(info, "w", force_zip64=True) as handle:
                    np.lib.format.write_array(handle, np.ascontiguousarray(array),
                                              allow_pickle=False)
        data = buffer.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        path = Path(folder) / f"{digest[:16]}.npz"
        if not (path.is_file() and sha256_file(path) == digest):
            atomic_write_bytes(path, data)
        return cls(path=str(path.resolve()), sha256=digest, samples=max(samples),
                   source=source)

    @staticmethod
    def load(path: str | os.PathLike[str]) -> Any:
        """The inputs as saved: an array, a list of arrays or a {name: array} dict."""
        import numpy as np

        with np.load(path, allow_pickle=False) as npz:
            entries = {k: npz[k] for k in npz.files}
        if all(k.startswith("name:") for k in entries):
            return {k[len("name:"):]: v for k, v in entries.items()}
        ordered = sorted(entries, key=lambda k: int(k.partition(":")[2]))
        arrays = [entries[k] for k in ordered]
        return arrays[0] if len(arrays) == 1 else arrays

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Job:
    """One model on one board with one set of settings."""

    model: ModelInfo
    board: str
    settings: JobSettings
    board_fingerprint: str = ""
    timeout_s: float = 600.0
    #: a label for progress displays
    label: str = field(default="", compare=False)
    #: validation jobs: the inputs (their SHA-256 is in the settings, hence in the key)
    inputs: InputSet | None = None

    @property
    def kind(self) -> str:
        return self.settings.kind

    @property
    def key(self) -> str:
        return job_key(self.model.sha256, self.board, self.settings, self.board_fingerprint)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.to_dict(), "board": self.board,
                "settings": self.settings.to_dict(), "board_fingerprint": self.board_fingerprint,
                "timeout_s": self.timeout_s, "key": self.key,
                "inputs": self.inputs.to_dict() if self.inputs else None}


def board_fingerprint(board: BoardConfig) -> str:
    """What about a board changes its measurements (not its address: a board that moved to
    another IP is the same board)."""
    d = board.device
    data = {"abi": d.abi, "exec_prefix": list(d.exec_prefix), "env": dict(d.env),
            "runner": dataclasses.asdict(d.runner),
            "delegates": [[x.path, x.name, dict(x.options)] for x in d.delegates]}
    return _digest(data)[:16]


def job_key(model_sha256: str, board: str, settings: JobSettings, fingerprint: str) -> str:
    return _digest({"model": model_sha256, "board": board, "settings": settings.to_dict(),
                    "fingerprint": fingerprint})[:32]


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
