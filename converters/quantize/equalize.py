"""Cross-layer equalisation of per-channel activation outliers (Nagel et al., "Data-Free
Quantization Through Weight Equalization and Bias Correction", ICCV 2019), driven by calibrated
activation ranges.

A per-tensor int8 activation has one scale for all its channels. When one channel of a layer's
output spans +-290 and the others +-2 (MediaPipe's BlazeFace has such depthwise outputs), the
others are left with ~1 bit. Where layer A's output feeds only layer B, and nothing between them
is non-linear (or only ReLU, which commutes with a positive scale), output channel c of A can be
divided by s_c (A's weights and bias) and input channel c of B multiplied by s_c (B's weights):
the float function is unchanged.

- B a DEPTHWISE_CONV_2D: its weights are quantised per channel, so multiplying a channel costs
  nothing: s_c = a_c / (geometric mean of a) makes every channel of A's output the same range.
- B a CONV_2D / FULLY_CONNECTED: B's weights are quantised per output channel over all its input
  channels, so a large s_c would crowd out B's other inputs. s_c = sqrt(a_c / w_c) (a_c: A's
  output range, w_c: the range of B's weights on input c) balances the two: Nagel's equalisation
  with the calibrated activation range in place of A's weight range.

A's own weights are per-channel too, so dividing them by s_c costs nothing. Scales are powers
of two within [1 / MAX_SCALE, MAX_SCALE], and a pair is kept only when its output is
`MIN_GAIN` times more even than before (max over median of the channel ranges).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from sdk.base.samples import SampleSet
from sdk.converters.ir import DType, Model, Operator, Tensor
from sdk.converters.quantize.plan import layer_name
from sdk.converters.tflite import serialize

#: calibration samples the per-channel ranges are measured on
EQUALIZE_SAMPLES = 64
MAX_SCALE = 1e3
#: a pair is equalised only when max / median of A's channel ranges drops by this factor
MIN_GAIN = 2.0
#: ops whose output channels can be rescaled (weights and bias), with the weight's output axis
_PRODUCERS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}
#: fused activations that commute with a positive per-channel scale
_HOMOGENEOUS = {None, "NONE", "RELU"}


@dataclass
class EqualizedPair:
    producer: str
    consumer: str
    #: max / median of the producer's output channel ranges, before and after
    spread_before: float
    spread_after: float


@dataclass
class Equalization:
    model: Model
    pairs: list[EqualizedPair] = field(default_factory=list)

    def describe(self) -> list[str]:
        return [f"{p.producer} -> {p.consumer}: channel range spread {p.spread_before:.0f}x -> "
                f"{p.spread_after:.1f}x" for p in self.pairs]


def candidate_pairs(model: Model) -> list[tuple[Operator, Operator]]:
    """(A, B): A's single output feeds only B's activation input, A's activation commutes with
    a positive scale, both have constant float32 weights with matching channel counts."""
    g = model.main
    consumers = g.consumers()
    outputs = {id(t) for t in g.outputs}
    pairs = []
    for a in g.operators:
        if a.type not in _PRODUCERS or len(a.outputs) != 1 or not _float_weights(a):
            continue
        if a.attrs.get("fused_activation_function") not in _HOMOGENEOUS:
            continue
        y = a.outputs[0]
        users = consumers.get(y, [])
        if id(y) in outputs or len(users) != 1:
            continue
        b = users[0]
        if b.type not in _PRODUCERS or not _float_weights(b) or b.inputs[0] is not y \
                or any(t is y for t in b.inputs[1:]):
            continue
        channels = _out_weight(a).shape[_PRODUCERS[a.type]]
        if y.shape and y.shape[-1] != channels:
            continue
        if _in_channels(b) != channels:
            continue
        pairs.append((a, b))
    return pairs


def _float_weights(op: Operator) -> bool:
    if len(op.inputs) < 2 or op.inputs[1] is None:
        return False
    w = op.inputs[1]
    bias = op.inputs[2] if len(op.inputs) > 2 else None
    return w.is_constant and w.dtype is DType.FLOAT32 and (
        bias is None or (bias.is_constant and bias.dtype is DType.FLOAT32))


def _out_weight(op: Operator) -> np.ndarray:
    w = op.inputs[1]
    assert w is not None
    return w.numpy()


def _in_channels(op: Operator) -> int:
    w = _out_weight(op)
    if op.type == "CONV_2D":
        return int(w.shape[3])
    if op.type == "FULLY_CONNECTED":
        return int(w.shape[1])
    # DEPTHWISE_CONV_2D [1, H, W, C * M]: the input channel count is its input's last axis
    x = op.inputs[0]
    return int(x.shape[-1]) if x is not None and x.shape else -1


def channel_absmax(model: Model, tensors: list[Tensor], samples: SampleSet) -> dict[Tensor,
                                                                                    np.ndarray]:
    """Per-channel (last axis) absolute maxima of `tensors` over `samples` (float model run in
    LiteRT's builtin kernels). Only `tensors` are read: the model is run with them made graph
    outputs, not with every intermediate tensor preserved (the same builtin kernels, so the same
    values, without keeping the ~300 other tensors of each run)."""
    from sdk.run.runner import LiteRTRunner

    g = model.main
    outputs = g.outputs
    present = {id(t) for t in outputs}
    g.outputs = [*outputs, *(t for t in tensors if id(t) not in present)]
    try:
        data, maps = serialize(model)
    finally:
        g.outputs = outputs
    runner = LiteRTRunner(data, reference=True)
    position = {d.index: k for k, d in enumerate(runner.outputs)}
    read = [(t, position[maps[0][t]]) for t in tensors if t in maps[0]
            and maps[0][t] in position]
    found: dict[Tensor, np.ndarray] = {}
    for _, outs in runner.run(samples):
        for t, k in read:
            v = np.abs(outs[k].astype(np.float64))
            v = np.where(np.isfinite(v), v, 0.0)
            m = v.reshape(-1, v.shape[-1]).max(axis=0)
            found[t] = m if t not in found else np.maximum(found[t], m)
    return found


def _spread(r: np.ndarray) -> float:
    live = r[r > 0]
    return float(live.max() / np.median(live)) if live.size else 1.0


def equalize(model: Model, samples: SampleSet) -> Equalization:
    """A copy of `model` with its producer/consumer pairs equalised (the input is untouched)."""
    model = copy.deepcopy(model)
    pairs = candidate_pairs(model)
    if not pairs:
        return Equalization(model)
    ranges = channel_absmax(model, [a.outputs[0] for a, _ in pairs],
                            samples.subset(slice(0, EQUALIZE_SAMPLES)))
    g = model.main
    done = []
    for a, b in pairs:
        r = ranges.get(a.outputs[0])
        if r is None or not (r > 0).any():
            continue
        live = r > 0
        if b.type == "DEPTHWISE_CONV_2D":
            target = float(np.exp(np.log(r[live]).mean()))
            s = np.where(live, r / target, 1.0)
        else:
            wb = np.moveaxis(np.abs(_out_weight(b)), 3 if b.type == "CONV_2D" else 1, 0)
            w = wb.reshape(wb.shape[0], -1).max(axis=1)
            ok = live & (w > 0)
            s = np.where(ok, np.sqrt(np.where(ok, r, 1.0) / np.where(ok, w, 1.0)), 1.0)
            if ok.any():
                s = np.where(ok, s / float(np.exp(np.log(s[ok]).mean())), 1.0)
        # powers of two: scaling is exact in float (the float model computes bit for bit the
        # same up to the order of additions), and tiny differences in the measured ranges
        # (batched or not) do not change the model
        s = np.exp2(np.round(np.log2(np.clip(s, 1.0 / MAX_SCALE, MAX_SCALE))))
        before, after = _spread(r), _spread(r / s)
        if after * MIN_GAIN > before:
            continue
        _scale_outputs(g, a, 1.0 / s)
        _scale_inputs(g, b, s)
        done.append(EqualizedPair(layer_name(a), layer_name(b), before, after))
    g.prune()
    return Equalization(model, done)


def _replace(g, op: Operator, i: int, data: np.ndarray) -> None:
    t = op.inputs[i]
    assert t is not None
    op.inputs[i] = g.constant(t.name, data.astype(np.float32), DType.FLOAT32)


def _scale_outputs(g, op: Operator, f: np.ndarray) -> None:
    axis = _PRODUCERS[op.type]
    w = _out_weight(op).astype(np.float64)
    shape = [1] * w.ndim
    shape[axis] = -1
    _replace(g, op, 1, w * f.reshape(shape))
    if len(op.inputs) > 2 and op.inputs[2] is not None:
        _replace(g, op, 2, op.inputs[2].numpy().astype(np.float64) * f)


def _scale_inputs(g, op: Operator, s: np.ndarray) -> None:
    w = _out_weight(op).astype(np.float64)
    if op.type == "CONV_2D":
        w = w * s.reshape(1, 1, 1, -1)
    elif op.type == "FULLY_CONNECTED":
        w = w * s.reshape(1, -1)
    else:  # DEPTHWISE_CONV_2D: output channel k reads input channel k // multiplier
        multiplier = w.shape[3] // s.size
        w = w * np.repeat(s, multiplier).reshape(1, 1, 1, -1)
    _replace(g, op, 1, w)
