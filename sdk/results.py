"""Typed results of the SDK's operations (dataclasses; `to_dict()` gives JSON-ready data)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.base.tables import Section, Table, jsonable, render_plain
from sdk.run.fidelity import FidelityReport


@dataclass(frozen=True)
class TensorInfo:
    """A model input or output as a caller feeds or reads it."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    #: quantisation of an int8/uint8 tensor: real = scale * (q - zero_point)
    scale: float | None = None
    zero_point: int | None = None


@dataclass(frozen=True)
class CalibrationInfo:
    method: str
    samples: int
    source: str
    synthetic: bool = False
    #: "none", "analytic" or "empirical"
    bias_correction: str = "none"


@dataclass
class ExportResult:
    """What `sdk.export` produced."""

    path: Path
    format: str
    scheme: str
    size_bytes: int
    float_size_bytes: int
    op_counts: dict[str, int]
    #: layer name -> precision ("int8", "float32", ...)
    precision: dict[str, str]
    #: layers kept in float -> why
    fallbacks: dict[str, str]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    calibration: CalibrationInfo
    fidelity: FidelityReport | None
    #: seconds per stage: load, calibrate, quantize, encode, validate, write, total
    timings: dict[str, float]
    source: str = ""
    report_path: Path | None = None
    notes: list[str] = field(default_factory=list)
    #: layer -> why the scheme gave it the precision it has (kept at int8, custom op, ...)
    precision_notes: dict[str, str] = field(default_factory=dict)
    #: edgesdk custom ops in the file (code -> count): the file needs the edgesdk delegate
    custom_ops: dict[str, int] = field(default_factory=dict)
    #: export(target=...): the NPU compiler's report (`sdk.converters.targets.NpuReport`)
    target: Any = None
    #: bytes of the file the export started from (None for in-memory models): the size a
    #: user compares with; float_size_bytes is the float graph after import
    input_size_bytes: int | None = None
    #: export(target_sqnr=...): the precision planner's report (what was kept wider, why, the
    #: SQNR before / after per output, bytes and latency; `sdk.converters.quantize.planner`)
    planner: Any = None
    #: export(scheme="mixed", budget_bytes=...): every point tried, the front, the bits chosen
    #: (`sdk.converters.quantize.mixed.MixedReport`)
    mixed: Any = None

    @property
    def compression(self) -> float:
        return self.float_size_bytes / self.size_bytes if self.size_bytes else 0.0

    def size_comparison(self) -> str:
        """The written size against the input file and against the float graph."""
        graph = (f"{self.size_bytes / max(self.float_size_bytes, 1):.0%} of the float graph's "
                 f"{self.float_size_bytes:,} bytes")
        if self.input_size_bytes is None:
            return graph + " (the input was an in-memory model)"
        name = self.source.partition(": ")[2] or "the input"
        return (f"{self.size_bytes / max(self.input_size_bytes, 1):.0%} of the input file's "
                f"{self.input_size_bytes:,} bytes ({name}), {graph}")

    def to_dict(self) -> dict[str, Any]:
        return jsonable({
            "path": str(self.path),
            "format": self.format,
            "scheme": self.scheme,
            "source": self.source,
            "size_bytes": self.size_bytes,
            "float_size_bytes": self.float_size_bytes,
            "input_size_bytes": self.input_size_bytes,
            "op_counts": self.op_counts,
            "precision": self.precision,
            "fallbacks": self.fallbacks,
            "inputs": [vars(t) | {"shape": list(t.shape)} for t in self.inputs],
            "outputs": [vars(t) | {"shape": list(t.shape)} for t in self.outputs],
            "calibration": vars(self.calibration),
            "fidelity": self.fidelity.to_dict() if self.fidelity else None,
            "timings": self.timings,
            "notes": self.notes,
            "precision_notes": self.precision_notes,
            "custom_ops": self.custom_ops,
            "target": self.target.to_dict() if self.target is not None else None,
            "planner": self.planner.to_dict() if self.planner is not None else None,
            "mixed": self.mixed.to_dict() if self.mixed is not None else None,
        })

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def summary(self, max_layers: int | None = 20) -> str:
        """The report `edgesdk export` prints."""
        return render_plain(self.sections(max_layers))

    def sections(self, max_layers: int | None = 20) -> list[Section]:
        """`summary()`'s lines and tables, for a renderer of its own (the `edgesdk` command)."""
        cal = self.calibration
        out: list[Section] = [
            f"wrote {self.path} ({self.format}, {self.scheme}): {self.size_bytes:,} bytes, "
            + self.size_comparison(),
            f"calibration: {cal.method} on {cal.samples} samples ({cal.source}); "
            f"bias correction: {cal.bias_correction}",
            "ops: " + ", ".join(f"{k} x{v}" for k, v in self.op_counts.items()),
        ]
        io_rows = [("input", t.name, str(list(t.shape)), t.dtype, _q(t)) for t in self.inputs]
        io_rows += [("output", t.name, str(list(t.shape)), t.dtype, _q(t)) for t in self.outputs]
        out.append(Table(None, ("", "tensor", "shape", "type", "quantisation"), io_rows))
        if self.precision_notes:
            out.append(f"{self.scheme} plan:")
            out += [f"  {name}: {why}" for name, why in self.precision_notes.items()]
        if self.custom_ops:
            out.append("edgesdk custom ops (run with sdk.run.Interpreter, or load the "
                       "edgesdk delegate): "
                       + ", ".join(f"{k} x{v}" for k, v in self.custom_ops.items()))
        if self.fallbacks:
            out.append(f"{len(self.fallbacks)} layer(s) kept in float:")
            out += [f"  {name}: {why}" for name, why in self.fallbacks.items()]
        if self.planner is not None:
            out.append("precision planner (target_sqnr):")
            out += self.planner.lines()
        if self.mixed is not None:
            out.append("mixed precision under a byte budget:")
            out += self.mixed.lines()
        shown: list[str] = []
        if self.fidelity is not None:
            out += self.fidelity.sections(max_layers)
            shown = self.fidelity.notes
        out += [f"note: {n}" for n in self.notes if n not in shown]  # each note printed once
        if self.target is not None:
            out.append(self.target.summary(max_layers))
        timing = ", ".join(f"{k} {v:.2f}s" for k, v in self.timings.items())
        out.append(f"time: {timing}")
        if self.report_path is not None:
            out.append(f"report: {self.report_path}")
        return out


def _q(t: TensorInfo) -> str:
    if t.scale is None:
        return "-"
    return f"scale {t.scale:.6g}, zero point {t.zero_point}"
