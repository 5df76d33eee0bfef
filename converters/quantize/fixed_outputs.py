"""Model outputs that a fixed-scale int8 kernel would flatten: keep that last op in float.

LiteRT's int8 LOGISTIC, SOFTMAX and TANH write their output with a scale fixed by the kernel
(1/256, 1/256, 1/128), whatever values the model really produces. A wake-word head whose sigmoid
scores live around 1e-4, or a detector's calibrated scores that never pass 0.03, then come out as
one or two codes: the output reads 0 and its SQNR is 0 dB, while ONNX Runtime's QDQ (which gives
the sigmoid output its own calibrated scale) keeps 10 dB. When such an op's output is a model
output, its calibrated values span fewer than `MIN_CODES` of the kernel's codes, and the caller
asked for float outputs anyway, the op runs in float (a DEQUANTIZE before it; the cost is one
float element-wise op at the end of the graph), and the report says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from sdk.converters.ir import Model, Tensor
from sdk.converters.quantize.calibrate import Calibration
from sdk.converters.quantize.plan import FLOAT, PrecisionPlan, layer_name
from sdk.converters.quantize.ranges import estimate_range
from sdk.converters.quantize.rules import OP_RULES

#: fewer distinct int8 codes than this over the calibrated output range: keep the op in float
MIN_CODES = 16


def keep_coarse_outputs_float(model: Model, plan: PrecisionPlan, cal: Calibration,
                              user_layers: Mapping[str, object] | None = None, *,
                              percentile: float = 99.99) -> tuple[PrecisionPlan, list[str]]:
    """The plan with such output ops kept float, and one note per op kept.

    The input of an op kept float loses the range calibration narrowed for the int8 kernel
    (a LOGISTIC input clipped where the 1/256 output cannot tell values apart): `cal.ranges` is
    updated in place with the input's own range."""
    ranges: Mapping[Tensor, tuple[float, float]] = cal.ranges
    g = model.main
    outputs = {id(t) for t in g.outputs}
    layers = dict(plan.layers)
    notes = dict(plan.notes)
    kept = []
    for op in g.operators:
        rule = OP_RULES.get(op.type)
        if rule is None or rule.kind != "fixed" or rule.fixed_output is None:
            continue
        out = op.outputs[0] if op.outputs else None
        if out is None or id(out) not in outputs or out not in ranges:
            continue
        name = layer_name(op)
        if name in (user_layers or {}) or plan.for_op(op) == FLOAT:
            continue  # the user chose, or it is float already
        lo, hi = ranges[out]
        scale = rule.fixed_output[0]
        codes = (hi - lo) / scale
        if codes >= MIN_CODES:
            continue
        why = (f"{op.type} output {out.name!r} spans {codes:.1f} of the int8 kernel's codes "
               f"(calibrated [{lo:.3g}, {hi:.3g}] at its fixed scale {scale:g}): kept in float "
               "so the output is not rounded to a few levels")
        layers[name] = FLOAT
        notes[name] = why
        kept.append(f"{name}: {why}")
        x = op.inputs[0] if op.inputs else None
        if x is not None and x in cal.notes and x in cal.stats:
            cal.ranges[x] = estimate_range(cal.stats[x], cal.method, percentile=percentile)
            del cal.notes[x]
    if not kept:
        return plan, []
    return replace(plan, layers=layers, notes=notes), kept
