"""Fake quantisers for QAT (TensorFlow ops; imported only by `sdk.converters.qat.layers`).

Every weight quantiser works on a kernel laid out as [K, C] (C output channels, the axis the
exporter's per-channel scales follow) and returns (codes, scales per channel) as float32
tensors; the layer's forward pass uses codes * scales with a straight-through estimator, and
`sdk.converters.qat.export` writes exactly those products into the deployable model, so the
exporter finds the weights already on their grid.

- ``int8``: symmetric [-127, 127], scale = absolute max / 127 (the exporter's INT8 rule; no
  learned parameter: the export reproduces it exactly).
- ``int4`` [-8, 7], ``int4-narrow`` [-7, 7], ``int2`` [-2, 1]: LSQ (Esser et al. 2020) learned
  step sizes, one per output channel, gradient scaled by 1 / sqrt(K * qmax).
- ``ternary`` / ``ternary-median``: BitNet b1.58: gamma = mean |w| (median |w|) per channel,
  q = clip(round(w / gamma), -1, 1), scale refitted by least squares for that pattern (mean |w|
  over q != 0), as the exporter's ternary format computes it; ``ternary-bitnet``: gamma itself.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

#: weight format -> (qmin, qmax) of the LSQ formats
LSQ_FORMATS = {"int4": (-8, 7), "int4-narrow": (-7, 7), "int2": (-2, 1)}
TERNARY_FORMATS = ("ternary", "ternary-median", "ternary-bitnet")
WEIGHT_FORMATS = ("int8", *LSQ_FORMATS, *TERNARY_FORMATS)
#: activations: TFLite's asymmetric int8
ACT_QMIN, ACT_QMAX = -128, 127


def round_ste(x: Any) -> Any:
    """round(x) forward, identity backward."""
    return x + tf.stop_gradient(tf.round(x) - x)


def grad_scale(x: Any, g: float) -> Any:
    """x forward, gradient times g backward (LSQ's step-size gradient scale)."""
    return x * g + tf.stop_gradient(x - x * g)


def _positive(s: Any) -> Any:
    return tf.where(s > 0, s, tf.ones_like(s))


def int8_weights(w: Any) -> tuple[Any, Any]:
    s = tf.stop_gradient(_positive(tf.reduce_max(tf.abs(w), axis=0) / 127.0))
    return tf.clip_by_value(round_ste(w / s), -127.0, 127.0), s


def lsq_weights(w: Any, step: Any, qmin: int, qmax: int) -> tuple[Any, Any]:
    k = int(w.shape[0])
    s = grad_scale(tf.abs(step) + 1e-8, 1.0 / float((k * qmax) ** 0.5))
    return tf.clip_by_value(round_ste(w / s), float(qmin), float(qmax)), s


def _median(a: Any) -> Any:
    k = int(a.shape[0])
    ordered = tf.sort(a, axis=0)
    if k % 2:
        return ordered[k // 2]
    return 0.5 * (ordered[k // 2 - 1] + ordered[k // 2])


def ternary_weights(w: Any, fmt: str) -> tuple[Any, Any]:
    """BitNet b1.58 ternary codes and scales; the codes' gradient is straight-through."""
    a = tf.abs(tf.stop_gradient(w))
    mean = tf.reduce_mean(a, axis=0)
    gamma = _median(a) if fmt == "ternary-median" else mean
    gamma = tf.where(gamma > 0, gamma, mean)
    gamma = _positive(gamma)
    q_hard = tf.clip_by_value(tf.round(tf.stop_gradient(w) / gamma), -1.0, 1.0)
    if fmt == "ternary-bitnet":
        s = gamma
    else:
        nonzero = tf.reduce_sum(tf.abs(q_hard), axis=0)
        fitted = tf.reduce_sum(a * tf.abs(q_hard), axis=0) / tf.maximum(nonzero, 1.0)
        s = tf.where(nonzero > 0, fitted, gamma)
    # straight-through: forward q_hard, backward d(w / s) (clipped to the ternary range)
    soft = tf.clip_by_value(w / s, -1.5, 1.5)
    return soft + tf.stop_gradient(q_hard - soft), s


def quantize_weights(w: Any, fmt: str, step: Any = None) -> tuple[Any, Any]:
    """(codes, scales) of a [K, C] kernel in weight format `fmt`."""
    if fmt == "int8":
        return int8_weights(w)
    if fmt in LSQ_FORMATS:
        qmin, qmax = LSQ_FORMATS[fmt]
        return lsq_weights(w, step, qmin, qmax)
    if fmt in TERNARY_FORMATS:
        return ternary_weights(w, fmt)
    raise ValueError(f"no QAT quantiser for weight format {fmt!r}; known: {WEIGHT_FORMATS}")


def affine(lo: Any, hi: Any) -> tuple[Any, Any]:
    """TFLite's int8 (scale, zero point) for [lo, hi] (`ranges.affine_params`, in TF)."""
    lo, hi = tf.minimum(lo, 0.0), tf.maximum(hi, 0.0)
    scale = tf.maximum((hi - lo) / float(ACT_QMAX - ACT_QMIN), 1e-8)
    zero = tf.clip_by_value(tf.round(ACT_QMIN - lo / scale), ACT_QMIN, ACT_QMAX)
    return scale, zero


def fake_quant_activations(x: Any, lo: Any, hi: Any) -> Any:
    """x on the int8 grid of [lo, hi]; gradient straight-through inside the range, 0 outside."""
    scale, zero = affine(lo, hi)
    q = tf.clip_by_value(round_ste(x / scale) + zero, float(ACT_QMIN), float(ACT_QMAX))
    return (q - zero) * scale
