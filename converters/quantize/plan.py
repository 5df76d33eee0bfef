"""The precision plan: which precision each layer gets.

A scheme ("int8", later "int4", "ternary", "int2", mixed precision from sensitivity) is a function
that looks at the float model and returns a `PrecisionPlan`: a default `LayerPrecision` plus
per-layer overrides keyed by the layer's name (the operator's label, see `layer_name`). The INT8
graph rewrite reads the plan per operator, so a scheme that keeps the first and last layer at
INT8 and puts INT4 weights elsewhere needs no change to the rewrite: only a new weight format
(`weights.register_weight_format`) and a scheme (`register_scheme`).

Users can pass overrides to `sdk.export(..., precision={"<layer>": "float32"})`; layer names are
the ones the export report lists.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sdk.converters.ir import Model, Operator

#: activation precisions the rewrite knows; "int16" is TFLite's 16x8 scheme (int16 activations,
#: int8 weights, `int16x8`); "float32" keeps an op in float (DEQUANTIZE/QUANTIZE around it)
ACTIVATION_PRECISIONS = ("int8", "int16", "float32")
#: spellings of the 16x8 scheme as a layer precision (`precision={layer: "int16x8"}`)
INT16X8_NAMES = ("int16x8", "16x8", "int16")


@dataclass(frozen=True)
class LayerPrecision:
    """Precision of one layer: its weights' format and its activations' type."""

    weights: str = "int8"
    activations: str = "int8"

    @property
    def is_float(self) -> bool:
        """Float activations (the op runs in float; see `is_hybrid` for quantised weights)."""
        return self.activations == "float32"

    @property
    def is_hybrid(self) -> bool:
        """Float activations with quantised weights: LiteRT's dynamic-range ("hybrid") kernels
        quantise the activations at run time."""
        return self.activations == "float32" and self.weights != "float32"

    @property
    def is_int16(self) -> bool:
        """16x8: int16 activations (symmetric, zero point 0) with int8 weights."""
        return self.activations == "int16"

    def describe(self) -> str:
        """"int8", "int16x8", "float32", or "<weights>/<activations>" when they differ
        ("int4/int8")."""
        if self.is_float and not self.is_hybrid:
            return "float32"
        if self.is_int16 and self.weights == "int8":
            return "int16x8"
        if self.weights == self.activations:
            return self.activations
        return f"{self.weights}/{self.activations}"


FLOAT = LayerPrecision(weights="float32", activations="float32")
INT8 = LayerPrecision()
#: INT8 weights with float activations: LiteRT's dynamic-range ("hybrid") kernels
HYBRID_INT8 = LayerPrecision(weights="int8", activations="float32")
INT16X8 = LayerPrecision(weights="int8", activations="int16")


@dataclass
class PrecisionPlan:
    """Default precision plus per-layer overrides (exact names or fnmatch patterns)."""

    scheme: str = "int8"
    default: LayerPrecision = INT8
    layers: dict[str, LayerPrecision] = field(default_factory=dict)
    #: free-form notes a scheme records (why a layer was kept at higher precision, ...)
    notes: dict[str, str] = field(default_factory=dict)
    #: layer name -> `row_split.RowSplit`: some of its output channels in another weight format
    row_splits: dict[str, Any] = field(default_factory=dict)
    #: a weighted layer the INT8 rewrite keeps off int8 activations (a LOG front end) takes
    #: INT8 weights with float activations (`HYBRID_INT8`) instead of float weights
    #: (`int8._Rewrite.hybrid_float_kept`); the INT4 scheme sets it
    hybrid_kept: bool = False

    def for_op(self, op: Operator) -> LayerPrecision:
        name = layer_name(op)
        if name in self.layers:
            return self.layers[name]
        for pattern, precision in self.layers.items():
            if any(ch in pattern for ch in "*?[") and fnmatch.fnmatchcase(name, pattern):
                return precision
        return self.default

    def with_overrides(self, overrides: Mapping[str, LayerPrecision | str] | None) -> PrecisionPlan:
        if not overrides:
            return self
        layers = dict(self.layers)
        for name, value in overrides.items():
            layers[name] = parse_precision(value)
        return replace(self, layers=layers)


def parse_precision(value: LayerPrecision | str) -> LayerPrecision:
    if isinstance(value, LayerPrecision):
        return value
    if value in ("float32", "float", "fp32"):
        return FLOAT
    if value in INT16X8_NAMES:
        return INT16X8
    if value in ACTIVATION_PRECISIONS:
        return LayerPrecision(weights=value, activations=value)
    if "/" in value:  # what `describe` writes: "int4/float32"
        weights, _, activations = value.partition("/")
        if activations not in ACTIVATION_PRECISIONS:
            raise ValueError(f"precision {value!r}: activations must be one of "
                             f"{ACTIVATION_PRECISIONS}")
        return LayerPrecision(weights=weights, activations=activations)
    # "w4a8" / "int4" style weight-only spellings are for schemes that register those formats
    return LayerPrecision(weights=value, activations="int8")


def layer_name(op: Operator) -> str:
    """The name reports and plans use for a layer: the op's own name, else its type and the
    first part of its first output's name (TensorFlow joins fused names with ';')."""
    if op.name:
        return op.name
    out = op.outputs[0].name.split(";")[0] if op.outputs else "?"
    return f"{op.type}:{out}"


# ---------------------------------------------------------------------------- schemes
#: `builder(model, **options)` -> plan; options come from `sdk.export(..., scheme_options=...)`
#: (and `activations=`); a builder rejects options it does not know with a ValueError.
SchemeBuilder = Callable[..., PrecisionPlan]
SCHEMES: dict[str, SchemeBuilder] = {}


def register_scheme(name: str, builder: SchemeBuilder) -> SchemeBuilder:
    """Make `sdk.export(model, name)` available: `builder(model, **options)` returns the plan."""
    SCHEMES[name] = builder
    return builder


def plan_for(scheme: str, model: Model, options: Mapping[str, Any] | None = None,
             ) -> PrecisionPlan:
    try:
        builder = SCHEMES[scheme]
    except KeyError:
        raise ValueError(f"unknown quantisation scheme {scheme!r}; available: "
                         f"{', '.join(sorted(SCHEMES))}") from None
    return builder(model, **dict(options or {}))


def _int8_plan(model: Model, activations: str = "int8") -> PrecisionPlan:
    if activations == "float32":  # dynamic range: int8 weights, float activations
        return PrecisionPlan(scheme="int8", default=LayerPrecision("int8", "float32"))
    if activations != "int8":
        raise ValueError(f"activations must be 'int8' or 'float32', not {activations!r}")
    return PrecisionPlan(scheme="int8", default=INT8)


register_scheme("int8", _int8_plan)
