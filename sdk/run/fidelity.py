"""How close a model's outputs are to a reference's: the metrics and the report they fill.

Per model output: SQNR (10 log10 of signal energy over error energy, in dB), cosine similarity,
max and mean absolute error, and top-1 agreement (argmax over the last axis, for outputs with more
than one class). Per layer: one `LayerFidelity` row per layer output.

This module holds only the measures and the report types, so both the converters (export's
fidelity report, the precision planner, the NPU targets) and the devices (the farm's validation
jobs) can use them. The walk that fills a report from a float and a quantised model (run in
LiteRT, tensors matched through the rewrite's tensor map) is converter work:
`sdk.converters.quantize.fidelity`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sdk.base.tables import format_table, from_jsonable, jsonable


@dataclass
class OutputFidelity:
    name: str
    sqnr_db: float
    cosine: float
    max_abs_error: float
    mean_abs_error: float
    #: share of samples whose argmax (last axis) agrees; None for single-value outputs
    top1_agreement: float | None


@dataclass
class LayerFidelity:
    name: str
    op_type: str
    precision: str
    tensor: str
    sqnr_db: float
    #: why this layer's SQNR reads low on purpose (e.g. logits clipped far below the maximum)
    note: str = ""


@dataclass
class FidelityReport:
    samples: int
    #: where the samples came from (validation data, or which part of the calibration data)
    source: str
    outputs: list[OutputFidelity]
    layers: list[LayerFidelity] = field(default_factory=list)
    #: kernels that produced the output metrics / the per-layer metrics
    kernels: str = "LiteRT default (XNNPACK)"
    layer_kernels: str = "LiteRT builtin kernels, intermediate tensors preserved"
    notes: list[str] = field(default_factory=list)
    #: loud warnings: outputs under LOW_SQNR_DB and the layer that loses most on their way
    warnings: list[str] = field(default_factory=list)

    @property
    def min_sqnr_db(self) -> float:
        return min((o.sqnr_db for o in self.outputs), default=math.inf)

    @property
    def top1_agreement(self) -> float | None:
        values = [o.top1_agreement for o in self.outputs if o.top1_agreement is not None]
        return min(values) if values else None

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FidelityReport:
        d = from_jsonable(d)
        return cls(samples=d["samples"], source=d["source"],
                   outputs=[OutputFidelity(**o) for o in d["outputs"]],
                   layers=[LayerFidelity(**x) for x in d.get("layers", [])],
                   kernels=d.get("kernels", ""), layer_kernels=d.get("layer_kernels", ""),
                   notes=list(d.get("notes", [])), warnings=list(d.get("warnings", [])))

    def table(self, max_layers: int | None = None) -> str:
        """Human-readable tables: outputs, then layers (worst first when truncated)."""
        lines = [f"WARNING: {w}" for w in self.warnings]
        lines.append(f"fidelity on {self.samples} samples ({self.source}); {self.kernels}")
        header = ("output", "SQNR dB", "cosine", "max |err|", "mean |err|", "top-1 agree")
        rows = [(o.name, _db(o.sqnr_db), f"{o.cosine:.6f}", f"{o.max_abs_error:.4g}",
                 f"{o.mean_abs_error:.4g}",
                 "-" if o.top1_agreement is None else f"{100 * o.top1_agreement:.2f}%")
                for o in self.outputs]
        lines += format_table(header, rows)
        if self.layers:
            layers = self.layers
            if max_layers is not None and len(layers) > max_layers:
                layers = sorted(layers, key=lambda x: x.sqnr_db)[:max_layers]
                lines.append(f"per-layer SQNR, {max_layers} worst of {len(self.layers)} "
                             f"({self.layer_kernels}):")
            else:
                lines.append(f"per-layer SQNR ({self.layer_kernels}):")
            rows = [(x.name, x.op_type, x.precision, _db(x.sqnr_db) + ("*" if x.note else ""))
                    for x in layers]
            lines += format_table(("layer", "op", "precision", "SQNR dB"), rows)
            marked = {x.note for x in layers if x.note}
            lines += [f"  * {n}" for n in sorted(marked)]
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"WARNING: {w}" for w in self.warnings]  # again, after a long layer table
        return "\n".join(lines)


def _db(x: float) -> str:
    return "exact" if math.isinf(x) and x > 0 else f"{x:.2f}"


# ---------------------------------------------------------------------------- metrics
def sqnr_db(signal_energy: float, noise_energy: float) -> float:
    if noise_energy <= 0:
        return math.inf
    if signal_energy <= 0:
        return -math.inf
    return 10.0 * math.log10(signal_energy / noise_energy)


def compare_outputs(name: str, ref: np.ndarray, test: np.ndarray) -> OutputFidelity:
    f = ref.astype(np.float64).reshape(ref.shape[0], -1) if ref.ndim else ref.reshape(1, 1)
    q = test.astype(np.float64).reshape(f.shape)
    err = q - f
    noise = float((err ** 2).sum())
    norms = np.linalg.norm(f, axis=1) * np.linalg.norm(q, axis=1)
    dots = (f * q).sum(axis=1)
    cos = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0),
                   np.where(np.linalg.norm(f, axis=1) == np.linalg.norm(q, axis=1), 1.0, 0.0))
    top1 = None
    if ref.ndim >= 2 and ref.shape[-1] > 1:
        top1 = float((ref.argmax(axis=-1) == test.argmax(axis=-1)).mean())
    return OutputFidelity(name, sqnr_db(float((f ** 2).sum()), noise), float(cos.mean()),
                          float(np.abs(err).max()) if err.size else 0.0,
                          float(np.abs(err).mean()) if err.size else 0.0, top1)


# ---------------------------------------------------------------------------- never silent
#: an output under this SQNR is a loud warning in the report, the CLI and Python's warnings
LOW_SQNR_DB = 15.0


class FidelityWarning(UserWarning):
    """An exported model's output is far from the float model's."""
