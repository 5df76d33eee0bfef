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
from typing import TYPE_CHECKING

import numpy as np

from sdk.base.errors import EdgeSDKError
from sdk.base.samples import SampleSet
from sdk.converters.ir import Model, Operator, Tensor
from sdk.converters.quantize.bias import INT32_MAX, MARGIN_STEPS, correctable_layers
from sdk.converters.quantize.head_rounding import reaches_output
from sdk.converters.quantize.int8 import QuantizedModel
from sdk.converters.quantize.plan import layer_name
from sdk.converters.quantize.rules import OP_RULES

if TYPE_CHECKING:
    from sdk.run.runner import LiteRTRunner


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


class FloatHeads:
    """The float side of the heads' mean shift: the float model's `vector_heads` outputs on the
    calibration samples. One export builds up to 10 times (target_sqnr=) with the same float
    model and samples: it is serialised and run once (per batch size), every build reuses the
    outputs, and the interpreter is let go once they are read."""

    def __init__(self, float_model: Model, samples: SampleSet) -> None:
        self.model, self.samples = float_model, samples
        self._runner: LiteRTRunner | None = None
        self._index: dict[Tensor, int] = {}
        self._batch_size: int | None = None
        self._outputs: dict[int, list[dict[int, np.ndarray]]] = {}
        #: how many times the float model was run over the samples
        self.runs = 0

    def _run(self) -> LiteRTRunner:
        if self._runner is None:
            from sdk.converters.tflite import serialize
            from sdk.run.runner import LiteRTRunner

            data, maps = serialize(self.model)
            run = LiteRTRunner(data, reference=True, preserve_all_tensors=True)
            run.check_batching(self.samples)
            self._runner, self._index = run, maps[0]
        return self._runner

    def batch_size(self) -> int:
        """The samples per run the float model takes (`LiteRTRunner.check_batching`)."""
        if self._batch_size is None:
            self._batch_size = self._run().batch_size
        return self._batch_size

    def outputs(self, batch_size: int) -> list[dict[int, np.ndarray]]:
        """Per run of `batch_size` samples: each vector head's float output, by id of its op."""
        if batch_size not in self._outputs:
            run = self._run()
            run.batch_size = batch_size
            heads = vector_heads(self.model)
            self._outputs[batch_size] = [
                {id(op): run.tensor(self._index[op.outputs[0]]).astype(np.float64)
                 for op in heads}
                for _ in run.run(self.samples)]
            self.runs += 1
            self._runner = None  # its kept tensors: as large as a batch's activations
        return self._outputs[batch_size]


def correct_head_biases(float_model: Model, quantized: QuantizedModel, samples: SampleSet,
                        float_side: FloatHeads | None = None) -> list[str]:
    """Remove, in the int32 biases of `quantized`'s output heads (`vector_heads`), the mean
    error of each output channel on `samples` (the int8 model against the float one, LiteRT's
    builtin kernels): the shift the backbone's rounding leaves in a head's output. Heads are
    terminal and read no head, so one run of each model measures them all
    (`bias.empirical_bias_correction` runs every layer in turn: 15x the export time on hand
    full). Elements near the ends of the output's int8 range are not counted (they may be
    clipped), as there. `float_side`: the float outputs kept from an earlier build of the same
    float model on the same samples (the exporter's, one per export). Returns one note per
    head corrected."""
    from sdk.converters.tflite.custom_ops import custom_ops_in, lower_for_litert

    if float_side is None:
        float_side = FloatHeads(float_model, samples)
    elif float_side.model is not float_model or float_side.samples is not samples:
        raise ValueError("correct_head_biases: float_side was made for another float model or "
                         "other samples")
    ids = {id(op) for op in vector_heads(float_model)}
    pairs = [(f, q) for f, q in correctable_layers(float_model, quantized) if id(f) in ids]
    if not pairs or len(samples) == 0:
        return []
    lowered = lower_for_litert(quantized.model)
    if custom_ops_in(lowered):  # sub-byte layouts LiteRT lacks: left to the empirical option
        return []
    try:
        sums = _shift_sums(float_side, lowered, pairs)
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


def _shift_sums(float_side: FloatHeads, lowered: Model, pairs: list[tuple[Operator, Operator]]
                ) -> list[np.ndarray]:
    """Per head: [3, C] count, sum and sum of squares of (int8 - float) output elements well
    inside the int8 range, over the float side's samples (one run of the int8 model; the float
    one's is `float_side`'s, at the batch size both take)."""
    from sdk.converters.tflite import serialize
    from sdk.run.runner import LiteRTRunner

    samples = float_side.samples
    quant_bytes, quant_maps = serialize(lowered)
    quant_run = LiteRTRunner(quant_bytes, reference=True, preserve_all_tensors=True)
    quant_run.check_batching(samples)
    quant_run.batch_size = min(float_side.batch_size(), quant_run.batch_size)
    floats = float_side.outputs(quant_run.batch_size)
    sums = [np.zeros((3, q.outputs[0].shape[-1])) for _, q in pairs]  # count, sum, sum of sq
    for _, float_out in zip(quant_run.run(samples), floats, strict=True):
        for (f_op, q_op), acc in zip(pairs, sums, strict=True):
            qt = q_op.outputs[0]
            assert qt.quant is not None
            scale, zp = float(qt.quant.scale[0]), int(qt.quant.zero_point[0])
            lo, hi = (-128 - zp) * scale, (127 - zp) * scale
            f = float_out[id(f_op)]
            q = qt.quant.dequantize(quant_run.tensor(quant_maps[0][qt])).astype(np.float64)
            f, q = f.reshape(-1, acc.shape[1]), q.reshape(-1, acc.shape[1])
            inside = (f > lo + MARGIN_STEPS * scale) & (f < hi - MARGIN_STEPS * scale)
            d = np.where(inside, q - f, 0.0)
            acc += np.stack([inside.sum(axis=0), d.sum(axis=0), (d * d).sum(axis=0)])
    return sums
