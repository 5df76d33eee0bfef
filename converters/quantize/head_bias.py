"""The output heads' mean shift: the int8 backbone's rounding leaves, in each output channel of
a small output head (a flag, a vector of landmarks), an error whose mean over the samples is not
0; removing it from the head's int32 bias is empirical bias correction (Nagel et al., "Data-Free
Quantization") restricted to the heads.

MediaPipe's hand landmark net (full), calibrated on images without a clear hand: its presence
logit read up to 2.6 too high (the quantised flag above the float on 31 of 48 held-out samples,
on all 6 that were off by > 0.05): false 0.19 / 0.24 read 0.76 / 0.66 once the score's input
range reached every output code (`score_ranges`). No rule on the head's own precision helps
(16x8 flag FC and LOGISTIC: the same 3.7 dB); with the shift removed the flag reads 9.7 dB,
0.45 / 0.33 for those two and 0.74 for a float 0.86. Empirical correction of every layer gives
9.1 dB at 15x the export time (257 s): heads are terminal and read no other head, so one run of
the float and the int8 model measures them all. Maps (a segmentation output) are left alone:
one shift per channel over the landscape selfie's map cost 10.2 -> 9.4 dB.
"""

from __future__ import annotations

import math

import numpy as np

from sdk.base.errors import EdgeSDKError
from sdk.base.samples import SampleSet
from sdk.converters.ir import Model, Operator
from sdk.converters.quantize.bias import INT32_MAX, MARGIN_STEPS, correctable_layers
from sdk.converters.quantize.head_rounding import reaches_output
from sdk.converters.quantize.int8 import QuantizedModel
from sdk.converters.quantize.plan import layer_name
from sdk.converters.quantize.rules import OP_RULES


def vector_heads(model: Model) -> list[Operator]:
    """The weighted layers (FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D) whose output the model
    returns (see `reaches_output`) and holds one value per channel per sample (a flag, a
    vector of landmarks; not a map: a segmentation map's error is not one shift per channel)."""
    g = model.main
    heads = []
    for op in g.operators:
        if op.type not in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D") or not op.outputs:
            continue
        out = op.outputs[0]
        if out is None or not out.shape or math.prod(out.shape[1:-1]) != 1:
            continue
        if reaches_output(g, op):
            heads.append(op)
    return heads


#: a head's output channel is corrected where its mean error is this many standard errors from
#: 0 over the calibration samples (below it the estimate is mostly noise)
SHIFT_T = 2.0


def correct_head_biases(float_model: Model, quantized: QuantizedModel, samples: SampleSet
                        ) -> list[str]:
    """Remove, in the int32 biases of `quantized`'s output heads (`vector_heads`), the mean
    error of each output channel on `samples` (the int8 model against the float one, LiteRT's
    builtin kernels): the shift the backbone's rounding leaves in a head's output. Heads are
    terminal and read no head, so one run of each model measures them all
    (`bias.empirical_bias_correction` runs every layer in turn: 15x the export time on hand
    full). Elements near the ends of the output's int8 range are not counted (they may be
    clipped), as there. Returns one note per head corrected."""
    from sdk.converters.tflite.custom_ops import custom_ops_in, lower_for_litert

    ids = {id(op) for op in vector_heads(float_model)}
    pairs = [(f, q) for f, q in correctable_layers(float_model, quantized) if id(f) in ids]
    if not pairs or len(samples) == 0:
        return []
    lowered = lower_for_litert(quantized.model)
    if custom_ops_in(lowered):  # sub-byte layouts LiteRT lacks: left to the empirical option
        return []
    try:
        sums = _shift_sums(float_model, lowered, pairs, samples)
    except EdgeSDKError as exc:  # a model LiteRT cannot run here: no correction
        return [f"output heads' mean shift: not measured ({exc})"]
    notes = []
    for (f_op, q_op), (count, total, squares) in zip(pairs, sums, strict=True):
        n = np.maximum(count, 1)
        mean = total / n
        stderr = np.sqrt(np.maximum(squares / n - mean ** 2, 0.0) / np.maximum(count - 1, 1))
        shift_real = np.where((count > 1) & (np.abs(mean) > SHIFT_T * stderr), mean, 0.0)
        index = OP_RULES[q_op.type].bias
        assert index is not None  # correctable_layers: a layer with an int32 bias
        bias = q_op.inputs[index]
        assert bias is not None and bias.quant is not None
        step = np.broadcast_to(bias.quant.scale.astype(np.float64), shift_real.shape)
        shift = np.round(shift_real / step)
        if not np.any(shift):
            continue
        bias.data = np.clip(bias.numpy().astype(np.float64) - shift, -INT32_MAX,
                            INT32_MAX).astype(np.int32)
        rms = float(np.sqrt(np.mean(shift_real ** 2)))
        notes.append(f"{layer_name(f_op)}: output head's mean shift removed from its bias "
                     f"({int(np.count_nonzero(shift))} of {shift.size} channels, rms "
                     f"{rms:.3g}; measured on {len(samples)} calibration samples)")
    return notes


def _shift_sums(float_model: Model, lowered: Model, pairs: list[tuple[Operator, Operator]],
                samples: SampleSet) -> list[np.ndarray]:
    """Per head: [3, C] count, sum and sum of squares of (int8 - float) output elements well
    inside the int8 range, over `samples` (one run of each model)."""
    from sdk.converters.tflite import serialize
    from sdk.run.runner import LiteRTRunner

    float_bytes, float_maps = serialize(float_model)
    quant_bytes, quant_maps = serialize(lowered)
    float_run = LiteRTRunner(float_bytes, reference=True, preserve_all_tensors=True)
    quant_run = LiteRTRunner(quant_bytes, reference=True, preserve_all_tensors=True)
    float_run.check_batching(samples)
    quant_run.check_batching(samples)
    float_run.batch_size = quant_run.batch_size = min(float_run.batch_size, quant_run.batch_size)
    sums = [np.zeros((3, q.outputs[0].shape[-1])) for _, q in pairs]  # count, sum, sum of sq
    for _ in zip(float_run.run(samples), quant_run.run(samples), strict=True):
        for (f_op, q_op), acc in zip(pairs, sums, strict=True):
            qt = q_op.outputs[0]
            assert qt.quant is not None
            scale, zp = float(qt.quant.scale[0]), int(qt.quant.zero_point[0])
            lo, hi = (-128 - zp) * scale, (127 - zp) * scale
            f = float_run.tensor(float_maps[0][f_op.outputs[0]]).astype(np.float64)
            q = qt.quant.dequantize(quant_run.tensor(quant_maps[0][qt])).astype(np.float64)
            f, q = f.reshape(-1, acc.shape[1]), q.reshape(-1, acc.shape[1])
            inside = (f > lo + MARGIN_STEPS * scale) & (f < hi - MARGIN_STEPS * scale)
            d = np.where(inside, q - f, 0.0)
            acc += np.stack([inside.sum(axis=0), d.sum(axis=0), (d * d).sum(axis=0)])
    return sums
