"""How close a model's outputs are to a reference's: the metrics and the report they fill.

Per model output: SQNR (10 log10 of signal energy over error energy, in dB), max and mean
absolute error and, for outputs that hold class scores (`output_kind`: not landmarks, maps or
single values), cosine similarity and top-1 agreement; the report says which kind each output
was taken for and why. Per layer: one `LayerFidelity` row per layer output.

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

from sdk.base.tables import Section, Table, from_jsonable, jsonable, render_plain

#: what a model output holds, which decides the metrics that mean something for it
CLASS_SCORES, VECTOR, MAP, SCALAR = "class scores", "vector", "map", "scalar"
#: the metrics reports show for each kind (SQNR and max/mean |err| always)
KIND_METRICS = {CLASS_SCORES: "SQNR, |err|, cosine, top-1", VECTOR: "SQNR, |err|",
                MAP: "SQNR, |err|", SCALAR: "SQNR, |err|"}
#: a vector output is taken for class scores (logits) without being a probability
#: distribution only when it is the model's one output and has at least this many entries
MIN_LOGITS = 5
#: at most this many rows of scores per sample are a batch (a [2, 10] output), not a map
MAX_BATCH = 16


@dataclass(frozen=True)
class OutputKind:
    kind: str
    #: why, as reports print it
    reason: str
    #: entries of the last axis: top-1 compares the argmax of each row of that many
    row: int = 1


def output_kind(ref: np.ndarray, *, outputs: int = 1) -> OutputKind:
    """What an output holds (samples on axis 0), from its shape and values, and so which
    metrics mean something for it: top-1 agreement and cosine only for class scores.

    - scalar: one value per sample (a [1, 1] score or flag);
    - class scores: rows along the last axis (at most MAX_BATCH of them per sample) that are
      probability distributions (non-negative, summing to 1; also per pixel of a map), or, for
      the model's only output, rows of at least MIN_LOGITS entries (logits);
    - map: other outputs with two or more dimensions other than 1 per sample (an image, a
      detection grid such as [2016, 18], heatmaps, a landmark table such as [21, 3]);
    - vector: other one-dimensional outputs (landmarks, boxes, embeddings beside other
      outputs): their argmax and direction say nothing.
    """
    dims = [int(d) for d in ref.shape[1:] if d != 1] if ref.ndim else []
    count = int(np.prod(dims)) if dims else 1
    if count <= 1:
        return OutputKind(SCALAR, "one value per sample")
    row = int(ref.shape[-1])
    lead = count // row if row > 1 else count
    shape = "x".join(map(str, dims))
    rows = ref.astype(np.float64).reshape(-1, row) if row > 1 else None
    if rows is not None and rows.size and rows.min() >= -1e-6 and \
            np.allclose(rows.sum(axis=1), 1.0, atol=1e-2):
        what = f"{row} probabilities" + (f" in {lead} rows" if lead > 1 else "")
        return OutputKind(CLASS_SCORES, f"{what} per sample", row)
    if row > 1 and lead <= MAX_BATCH and outputs == 1 and row >= MIN_LOGITS:
        what = f"{row} scores" + (f" in {lead} rows" if lead > 1 else "")
        return OutputKind(CLASS_SCORES, f"the model's only output, {what} per sample, taken "
                          "for logits", row)
    if len(dims) >= 2:
        return OutputKind(MAP, f"{shape} values per sample")
    return OutputKind(VECTOR, f"{count} values per sample"
                      + (f", one of {outputs} outputs" if outputs > 1 else "")
                      + ", not probabilities: landmarks, boxes, per-anchor scores or an "
                        "embedding, as far as the shape tells")


@dataclass
class OutputFidelity:
    name: str
    sqnr_db: float
    #: mean cosine similarity per sample (measured always; reports show it for class scores)
    cosine: float
    max_abs_error: float
    mean_abs_error: float
    #: share of samples whose argmax agrees; None where the output is not class scores
    top1_agreement: float | None
    #: `output_kind`: "class scores", "vector", "map" or "scalar" ("" in older reports)
    kind: str = ""
    #: why that kind (reports say which metrics were chosen and why)
    kind_reason: str = ""

    @property
    def class_scores(self) -> bool:
        return self.kind == CLASS_SCORES or (not self.kind and self.top1_agreement is not None)


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
        return render_plain(self.sections(max_layers))

    def sections(self, max_layers: int | None = None) -> list[Section]:
        """`table()`'s lines and tables, for a renderer of its own (the `edgesdk` command)."""
        out: list[Section] = [f"WARNING: {w}" for w in self.warnings]
        out.append(f"fidelity on {self.samples} samples ({self.source}); {self.kernels}")
        header = ("output", "kind", "SQNR dB", "cosine", "max |err|", "mean |err|",
                  "top-1 agree")
        rows = [(o.name, o.kind or "-", _db(o.sqnr_db),
                 f"{o.cosine:.6f}" if o.class_scores else "-", f"{o.max_abs_error:.4g}",
                 f"{o.mean_abs_error:.4g}",
                 "-" if o.top1_agreement is None else f"{100 * o.top1_agreement:.2f}%")
                for o in self.outputs]
        out.append(Table(None, header, rows))
        out += [f"  {o.name}: {o.kind} ({o.kind_reason}): {KIND_METRICS[o.kind]}"
                for o in self.outputs if o.kind in KIND_METRICS]
        if self.layers:
            layers = self.layers
            if max_layers is not None and len(layers) > max_layers:
                layers = sorted(layers, key=lambda x: x.sqnr_db)[:max_layers]
                title = (f"per-layer SQNR, {max_layers} worst of {len(self.layers)} "
                         f"({self.layer_kernels}):")
            else:
                title = f"per-layer SQNR ({self.layer_kernels}):"
            rows = [(x.name, x.op_type, x.precision, _db(x.sqnr_db) + ("*" if x.note else ""))
                    for x in layers]
            out.append(Table(title, ("layer", "op", "precision", "SQNR dB"), rows))
            marked = {x.note for x in layers if x.note}
            out += [f"  * {n}" for n in sorted(marked)]
        out += [f"note: {n}" for n in self.notes]
        out += [f"WARNING: {w}" for w in self.warnings]  # again, after a long layer table
        return out


def _db(x: float) -> str:
    return "exact" if math.isinf(x) and x > 0 else f"{x:.2f}"


# ---------------------------------------------------------------------------- metrics
def sqnr_db(signal_energy: float, noise_energy: float) -> float:
    """10 log10(signal / noise) in dB. An infinite or NaN error (an int8 LOG of a value that
    rounded to 0 gives -inf) is the worst figure, -inf, never NaN: a NaN would pass every
    `sqnr < threshold` check silently."""
    if math.isnan(noise_energy) or math.isinf(noise_energy):
        return -math.inf
    if noise_energy <= 0:
        return math.inf
    if signal_energy <= 0:
        return -math.inf
    return 10.0 * math.log10(signal_energy / noise_energy)


def compare_outputs(name: str, ref: np.ndarray, test: np.ndarray, *,
                    outputs: int = 1) -> OutputFidelity:
    """One output's metrics (samples on axis 0); `outputs`: how many outputs the model has
    (`output_kind` decides whether top-1 agreement means something here)."""
    f = ref.astype(np.float64).reshape(ref.shape[0], -1) if ref.ndim else ref.reshape(1, 1)
    q = test.astype(np.float64).reshape(f.shape)
    err = q - f
    noise = float((err ** 2).sum())
    norms = np.linalg.norm(f, axis=1) * np.linalg.norm(q, axis=1)
    dots = (f * q).sum(axis=1)
    cos = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0),
                   np.where(np.linalg.norm(f, axis=1) == np.linalg.norm(q, axis=1), 1.0, 0.0))
    kind = output_kind(ref, outputs=outputs)
    top1 = None
    if kind.kind == CLASS_SCORES:
        rows_f, rows_q = f.reshape(-1, kind.row), q.reshape(-1, kind.row)
        top1 = float((rows_f.argmax(axis=1) == rows_q.argmax(axis=1)).mean())
    return OutputFidelity(name, sqnr_db(float((f ** 2).sum()), noise), float(cos.mean()),
                          float(np.abs(err).max()) if err.size else 0.0,
                          float(np.abs(err).mean()) if err.size else 0.0, top1,
                          kind.kind, kind.reason)


# ---------------------------------------------------------------------------- never silent
#: an output under this SQNR is a loud warning in the report, the CLI and Python's warnings
LOW_SQNR_DB = 15.0


class FidelityWarning(UserWarning):
    """An exported model's output is far from the float model's."""
