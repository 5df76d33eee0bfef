"""Quantisers: calibration, the precision plan, weight formats and the full-integer INT8 rewrite.

Pieces and how later schemes plug in:
- `plan`: `PrecisionPlan` / `LayerPrecision` per layer; `register_scheme(name, builder)` makes
  `sdk.export(model, name)` work.
- `weights`: `WeightFormat` registry (`register_weight_format`): INT8 per-channel here;
  `lowbit`: INT4 (per-channel and block-wise), ternary, 2-bit.
- `subbyte`: the ``int4`` / ``ternary`` / ``int2`` schemes (which layers get which format).
- `rules`: what each TFLite builtin needs in int8 (`register_op_rule` for more ops).
- `data` + `calibrate`: calibration samples from any source; min/max, percentile or MSE ranges.
- `int8`: the graph rewrite (`quantize_int8`), the same for every scheme whose activations are
  int8, and for 16x8 layers (`int16x8`: the ``int16x8`` scheme, which ops LiteRT runs in int16).
"""

# lowbit and subbyte register the sub-byte weight formats and the int4 / ternary / int2 schemes
from sdk.base.samples import ImageFolder, InputSpec, SampleSet, as_samples
from sdk.converters.quantize import lowbit, subbyte  # noqa: F401
from sdk.converters.quantize.calibrate import Calibration, calibrate
from sdk.converters.quantize.int8 import LayerReport, QuantizedModel, quantize_int8
from sdk.converters.quantize.plan import (
    SCHEMES,
    LayerPrecision,
    PrecisionPlan,
    layer_name,
    plan_for,
    register_scheme,
)
from sdk.converters.quantize.ranges import METHODS
from sdk.converters.quantize.rules import OP_RULES, OpRule, register_op_rule, supported_int8_ops
from sdk.converters.quantize.weights import WEIGHT_FORMATS, WeightFormat, register_weight_format

__all__ = [
    "METHODS",
    "OP_RULES",
    "SCHEMES",
    "WEIGHT_FORMATS",
    "Calibration",
    "ImageFolder",
    "InputSpec",
    "LayerPrecision",
    "LayerReport",
    "OpRule",
    "PrecisionPlan",
    "QuantizedModel",
    "SampleSet",
    "WeightFormat",
    "as_samples",
    "calibrate",
    "layer_name",
    "plan_for",
    "quantize_int8",
    "register_op_rule",
    "register_scheme",
    "register_weight_format",
    "supported_int8_ops",
]
