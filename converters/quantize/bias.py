"""Empirical bias correction: measure, layer by layer, the mean error each quantised layer's
output channels carry and fold its negative into the int32 bias.

Weight rounding and upstream activation rounding shift the mean of every output channel; the
analytic correction in the rewrite removes the part due to this layer's weight rounding given the
float input means. The empirical one measures the whole shift: it runs the float and the
quantised model side by side (LiteRT builtin kernels, intermediates preserved) and, for each
weighted layer in execution order, subtracts the mean of (quantised - float) per output channel.
The layers are corrected one at a time, each measured after the corrections before it (as
Nagel et al.'s data-free quantisation does); correcting all at once from one measurement
over-corrects, measurably.

Only elements whose float value is well inside the output's int8 range count: where a fused ReLU
or the range clips, the output does not move with the bias, and a clipped mean would be a false
"error" (SOFTMAX logits are clipped far below their maximum on purpose).

Cost: one run of both models over the samples per weighted layer; `sdk.export` makes it opt-in.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sdk.base.samples import SampleSet
from sdk.converters.ir import DType, Model, Operator
from sdk.converters.quantize.int8 import QuantizedModel
from sdk.converters.quantize.rules import OP_RULES, WEIGHTED
from sdk.converters.tflite import serialize
from sdk.converters.tflite.custom_ops import custom_ops_in, lower_for_litert

INT32_MAX = 2**31 - 1
#: elements whose float value lies within this many output steps of the int8 range's ends are
#: not measured (their quantised value may be clipped)
MARGIN_STEPS = 4
#: the correction is undone where it leaves the worst output's error power this much higher
#: (about 0.2 dB) than before it, on its own samples
REFUSE_RATIO = 1.05


def correctable_layers(float_model: Model, quantized: QuantizedModel
                       ) -> list[tuple[Operator, Operator]]:
    """(float op, quantised op) pairs of weighted layers with an int32 bias and int8 output."""
    pairs = []
    for op in float_model.main.operators:
        qop = quantized.op_map.get(op)
        if op.type not in WEIGHTED or qop is None:
            continue
        rule = OP_RULES[op.type]
        if rule.bias is None or rule.bias >= len(qop.inputs):
            continue
        bias = qop.inputs[rule.bias]
        out = qop.outputs[0]
        if bias is None or bias.dtype is not DType.INT32 or bias.quant is None:
            continue
        if out.dtype is not DType.INT8 or out.quant is None:
            continue
        pairs.append((op, qop))
    return pairs


def _worst_output_error(float_bytes: bytes, quantized: QuantizedModel,
                        samples: SampleSet) -> float:
    """The quantised model's worst output error power / signal power against the float model
    on `samples` (LiteRT builtin kernels)."""
    from sdk.run.runner import LiteRTRunner

    lowered = lower_for_litert(quantized.model)
    delegates = None
    if custom_ops_in(lowered):
        from sdk.run.delegate import load_delegate

        delegates = [load_delegate()]
    ref = LiteRTRunner(float_bytes, reference=True).outputs_for(samples)
    got = LiteRTRunner(serialize(lowered)[0], reference=True,
                       delegates=delegates).outputs_for(samples)
    worst = 0.0
    for f, q in zip(ref, got, strict=True):
        f64 = np.asarray(f, np.float64)
        noise = float(((np.asarray(q, np.float64).reshape(f64.shape) - f64) ** 2).sum())
        worst = max(worst, noise / max(float((f64 ** 2).sum()), 1e-30))
    return worst


def empirical_bias_correction(float_model: Model, quantized: QuantizedModel, samples: SampleSet,
                              progress: Callable[[str, int, int], None] | None = None,
                              notes: list[str] | None = None) -> int:
    """Correct the biases of `quantized.model` in place; returns how many layers changed.

    Refused (the biases restored, a note in `notes`) where the corrected model's worst output
    is further from the float model's than before on the very samples it was measured on
    (by more than REFUSE_RATIO): mp_palm_detection_full went from 11.8 to 1.8 dB."""
    from sdk.run.runner import paired_runners

    float_bytes, float_maps = serialize(float_model)
    layers = correctable_layers(float_model, quantized)
    before = _worst_output_error(float_bytes, quantized, samples) if layers else 0.0
    original = [(b, b.data) for _, qop in layers
                if (b := qop.inputs[OP_RULES[qop.type].bias or 0]) is not None]
    changed = 0
    for k, (fop, qop) in enumerate(layers):
        if progress is not None:
            progress("bias correction", k, len(layers))
        # what LiteRT can run: sub-byte layouts it lacks become edgesdk custom ops, run by the
        # edgesdk delegate (the lowered model shares the tensors, so the index maps hold)
        lowered = lower_for_litert(quantized.model)
        quant_bytes, quant_maps = serialize(lowered)
        delegates = None
        if custom_ops_in(lowered):
            from sdk.run.delegate import load_delegate

            delegates = [load_delegate()]
        float_run, quant_run = paired_runners(float_bytes, quant_bytes, samples,
                                              delegates=delegates)
        ft, qt = fop.outputs[0], qop.outputs[0]
        fi, qi = float_maps[0][ft], quant_maps[0][qt]
        assert qt.quant is not None
        scale, zp = float(qt.quant.scale[0]), int(qt.quant.zero_point[0])
        lo, hi = (-128 - zp) * scale, (127 - zp) * scale
        total = np.zeros(qt.shape[-1])
        count = np.zeros(qt.shape[-1])
        for _ in zip(float_run.run(samples), quant_run.run(samples), strict=True):
            f = float_run.tensor(fi).astype(np.float64)
            q = qt.quant.dequantize(quant_run.tensor(qi)).astype(np.float64).reshape(f.shape)
            # select on the float value only (selecting on the noisy one biases the mean), with a
            # margin of a few steps so the quantised value is rarely clipped
            inside = (f > lo + MARGIN_STEPS * scale) & (f < hi - MARGIN_STEPS * scale)
            channels = f.shape[-1]
            total += np.where(inside, q - f, 0.0).reshape(-1, channels).sum(axis=0)
            count += inside.reshape(-1, channels).sum(axis=0)
        error = np.where(count > 0, total / np.maximum(count, 1), 0.0)
        rule = OP_RULES[qop.type]
        assert rule.bias is not None
        bias = qop.inputs[rule.bias]
        assert bias is not None and bias.quant is not None
        step = bias.quant.scale.astype(np.float64)
        if step.size == 1:
            step = np.full(error.size, step[0])
        shift = np.round(error / step)
        if np.any(shift):
            new = np.clip(bias.numpy().astype(np.float64) - shift, -INT32_MAX, INT32_MAX)
            bias.data = new.astype(np.int32)
            changed += 1
    if progress is not None:
        progress("bias correction", len(layers), len(layers))
    if changed:
        after = _worst_output_error(float_bytes, quantized, samples)
        if after > before * REFUSE_RATIO:
            for b, data in original:
                b.data = data
            if notes is not None:
                notes.append(
                    "bias_correction='empirical' refused: on its own "
                    f"{len(samples)} samples the worst output went from "
                    f"{_db(before):.1f} to {_db(after):.1f} dB SQNR; the analytic correction "
                    "is kept")
            return 0
    return changed


def _db(ratio: float) -> float:
    return -10.0 * float(np.log10(max(ratio, 1e-30)))
