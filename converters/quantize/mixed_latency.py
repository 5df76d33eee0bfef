"""Mixed precision under a latency budget: ``sdk.export(model, "mixed", budget_ms=...)``.

The latency of a mix is estimated from a per-layer table: each weighted layer's time at each
format it may take, plus the time of everything else (`LatencyTable`). The table comes from
per-layer profiles of the search's uniform probes (all-INT8, all-INT4, all-2-bit, all-ternary),
each file profiled once: layer L's time at format F is its time in the probe that gave it F.
Where the profile is measured (this host by default, `sdk.profile(..., "local")`; or a device's)
is the caller's (the face's) business: this module gets `(op type, ms)` per operator in file
order and matches the weighted ones to the model's weighted layers in order. A table measured
elsewhere (a device) is read from JSON (`LatencyTable.to_json` / `read_table`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sdk.base.errors import EdgeSDKError
from sdk.converters.quantize.rules import OP_RULES

#: what a profile entry of a weighted layer can be called: the builtin op, or an edgesdk custom
#: op (2-bit convolutions: EDGE_...)
CUSTOM_PREFIX = "EDGE_"


class LatencyTableError(EdgeSDKError):
    """A per-layer profile that does not match the model's weighted layers, or a table that
    lacks a layer / format the search needs (names the file, layer and format)."""


@dataclass
class LatencyTable:
    """Per-layer milliseconds: `layers[layer][format]`, `other_ms` for every op not weighted
    (taken from the all-INT8 probe's profile), and where it was measured."""

    layers: dict[str, dict[str, float]] = field(default_factory=dict)
    other_ms: float = 0.0
    source: str = ""

    def estimate_ms(self, bits: Mapping[str, str]) -> float:
        total = self.other_ms
        for name, fmt in bits.items():
            per = self.layers.get(name)
            if per is None or fmt not in per:
                raise LatencyTableError(f"latency table ({self.source}) has no time for layer "
                                        f"{name!r} at {fmt}")
            total += per[fmt]
        return total

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "") -> LatencyTable:
        try:
            layers = {str(k): {str(f): float(ms) for f, ms in v.items()}
                      for k, v in d["layers"].items()}
            own = str(d.get("source") or "")
            return cls(layers, float(d.get("other_ms", 0.0)),
                       f"{own} ({source})" if own and source else own or source)
        except (KeyError, AttributeError, TypeError, ValueError) as exc:
            raise LatencyTableError(f"latency table {source or '(dict)'}: expected "
                                    f"{{'layers': {{layer: {{format: ms}}}}, 'other_ms': ms}}: "
                                    f"{exc}") from exc


def read_table(path: str | os.PathLike[str]) -> LatencyTable:
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise LatencyTableError(f"latency table {p}: {exc}") from exc
    return LatencyTable.from_dict(d, source=str(p))


def is_weighted(op_type: str, types: Collection[str] | None = None) -> bool:
    """A profile entry of a weighted layer: an op of `types` (the model's weighted layers'
    types; default: every op with a weight input) or an edgesdk custom op."""
    if op_type.startswith(CUSTOM_PREFIX):
        return True
    if types is not None:
        return op_type in types
    return op_type in OP_RULES and OP_RULES[op_type].weight is not None


def add_probe(table: LatencyTable, bits: Mapping[str, str], order: Sequence[tuple[str, str]],
              profile: Sequence[tuple[str, float]], label: str) -> None:
    """Enter one probe's per-operator profile (op type, ms; file order) into `table`: the
    weighted entries, in order, are the layers `order` ((name, op type): the model's weighted
    layers, in order) at the formats `bits` gives them. The all-INT8 probe (every layer int8)
    also sets `other_ms`."""
    types = {t for _, t in order}
    weighted = [(op, ms) for op, ms in profile if is_weighted(op, types)]
    if len(weighted) != len(order):
        raise LatencyTableError(
            f"per-layer profile of {label}: {len(weighted)} weighted operators, the model has "
            f"{len(order)} weighted layers (ops: {', '.join(sorted({o for o, _ in weighted}))})")
    times: dict[str, float] = {}  # ops that share a layer name (moved together) add up
    for (name, _), (_, ms) in zip(order, weighted, strict=True):
        if not math.isfinite(ms):
            raise LatencyTableError(f"per-layer profile of {label}: no time for {name!r}")
        times[name] = times.get(name, 0.0) + float(ms)
    for name, ms in times.items():
        table.layers.setdefault(name, {})[bits[name]] = ms
    if all(bits[n] == "int8" for n, _ in order):
        table.other_ms = float(sum(ms for op, ms in profile if not is_weighted(op, types)))


def fill_missing(table: LatencyTable, formats: Mapping[str, Sequence[str]],
                 same_kernel: Mapping[str, str] | None = None) -> list[str]:
    """A layer format no probe gave it (a pinned first / last layer below INT8) takes the time
    of the same layer at the format of the same bit width it was measured at, else at INT8;
    returns a note per layer so filled. `same_kernel`: formats that run another's kernel
    (the same storage and ops, other scale values: INT4 with absmax scales) take its time
    without a note."""
    notes = []
    for name, fmts in formats.items():
        have = table.layers.setdefault(name, {})
        for f in fmts:
            if f in have:
                continue
            twin = (same_kernel or {}).get(f)
            if twin is not None and twin in have:
                have[f] = have[twin]
                continue
            if "int8" not in have:
                raise LatencyTableError(f"latency table ({table.source}) has no time for layer "
                                        f"{name!r} at int8")
            same = [g for g in have if _width(g) == _width(f)]
            have[f] = have[same[0]] if same else have["int8"]
            notes.append(f"{name} at {f}: not profiled, its time at "
                         f"{same[0] if same else 'int8'} taken")
    return notes


def _width(fmt: str) -> int:
    # "int8/float32": INT8 weights with float activations (mixed.HYBRID)
    return 8 if fmt.startswith("int8") else 4 if fmt.startswith("int4") else 2


def greedy_ms(names: Sequence[str], formats: Mapping[str, Sequence[str]],
              losses: Mapping[str, Mapping[str, float]], table: LatencyTable,
              target_ms: float, pinned: Sequence[str] = ()) -> dict[str, str] | None:
    """Bits per layer from all-INT8 under a latency target: the move (a layer to a format of
    less estimated time) that adds the least estimated error per millisecond saved, until the
    estimate is within `target_ms` (None: the fastest mix is not)."""
    bits = {n: "int8" for n in names}
    now = table.estimate_ms(bits)
    while now > target_ms:
        best: tuple[float, str, str, float] | None = None
        for n in names:
            if n in pinned:
                continue
            t0, l0 = table.layers[n][bits[n]], losses[n][bits[n]]
            for f in formats[n]:
                saved = t0 - table.layers[n][f]
                if saved <= 0:
                    continue
                rate = (losses[n][f] - l0) / saved
                if best is None or rate < best[0]:
                    best = (rate, n, f, saved)
        if best is None:
            return None
        _, n, f, saved = best
        bits[n] = f
        now -= saved
    return bits


__all__ = ["LatencyTable", "LatencyTableError", "add_probe", "fill_missing", "greedy_ms",
           "is_weighted", "read_table"]
