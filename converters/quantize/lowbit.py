"""Sub-byte weight formats: INT4, block-wise INT4, ternary (1.58-bit) and 2-bit.

Each format turns float weights plus the per-channel axis TFLite expects for the op into integer
codes, their IR type (held unpacked; the TFLite writer packs them as LiteRT reads them, see
`sdk.converters.tflite.packing`) and `QuantParams`. All are symmetric (zero point 0), one scale
per output channel (or per block of K for the block-wise INT4 variants).

- ``int4`` (``int4-narrow``: [-7, 7], for LiteRT's dynamic-range FULLY_CONNECTED): q in
  [-8, 7], per channel. Scale from the clipping range that minimises each channel's
  squared error (``mse``, the default for sub-byte formats: +2-3 dB over min/max) or the
  absolute maximum (``minmax``, what ai-edge-quantizer does).
- ``int4b16`` / ``int4b32`` / ``int4b64`` / ``int4b128``: block-wise INT4, one scale per block of
  that many K elements per output channel, stored as a FLOAT16 tensor (LiteRT's
  BlockwiseQuantization details). LiteRT runs block-wise INT4 only in FULLY_CONNECTED with float
  activations (see `sdk.converters.tflite.litert_support`).
- ``ternary`` / ``ternary-median``: values in {-1, 0, +1} (IR type INT2), BitNet b1.58's rule:
  gamma = mean(|w|) per output channel (``ternary-median``: the median of |w|),
  q = clip(round(w / gamma), -1, 1). The dequantisation scale is then refitted by least squares
  for that {-1, 0, +1} pattern (mean |w| over the non-zero positions): +0.9 dB on Gaussian
  weights over using gamma itself. ``ternary-bitnet`` keeps gamma as the scale, exactly as
  BitNet's forward pass does.
- ``int2``: the four signed levels {-2, -1, 0, +1} x scale (IR type INT2), the scale searched per
  channel to minimise the squared error (clipping at 10-100 % of the absolute maximum).

Methods ``rtn``, ``gptq`` and ``adaround`` (see `weights`): every format's scale comes from
a per-channel MSE search (int4: 50-100 % of the absolute max; int2: 10-100 %; ternary /
ternary-median: the rounding threshold searched over 2-100 % of the absolute max, BitNet's
absmean threshold among the candidates, each with its least-squares scale; ``ternary-bitnet``
keeps BitNet's gamma, as its name says; block-wise INT4: per block); ``gptq`` then has the codes
chosen by GPTQ (`sdk.converters.quantize.gptq`; per group of K for block-wise INT4, each
group's FLOAT16 scale searched when GPTQ reaches it), ``adaround`` learned by AdaRound
(`sdk.converters.quantize.adaround`; block-wise INT4: each group's scale searched first).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sdk.converters.ir import DType, QuantParams, Tensor
from sdk.converters.quantize.solver import active_solver
from sdk.converters.quantize.weights import (
    MSE_METHODS,
    SOLVER_METHODS,
    QuantizedWeights,
    WeightFormat,
    channel_absmax,
    channel_codes,
    check_method,
    register_weight_format,
    symmetric_per_channel,
)

BLOCK_SIZES = (16, 32, 64, 128)
TERNARY_SCALES = ("absmean", "median")


def _rows(w: np.ndarray, axis: int) -> np.ndarray:
    """Weights as [channels, everything else] float64 (the channel axis first)."""
    moved = np.moveaxis(np.asarray(w, np.float64), axis, 0)
    return moved.reshape(moved.shape[0], -1)


def _from_rows(q: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    moved_shape = (shape[axis], *(d for i, d in enumerate(shape) if i != axis))
    return np.moveaxis(q.reshape(moved_shape), 0, axis)


# ---------------------------------------------------------------------------- INT4
def _int4(w: np.ndarray, axis: int, method: str) -> QuantizedWeights:
    scales, q = symmetric_per_channel(w, axis, 7, method, qmin=-8)
    return QuantizedWeights(q.astype(np.int8), QuantParams.per_channel(scales, axis), DType.INT4)


INT4 = register_weight_format(WeightFormat(
    "int4", DType.INT4, -8, 7, _int4,
    "symmetric per-channel INT4 in [-8, 7], MSE-searched clipping", default_method="mse"))


def _int4_narrow(w: np.ndarray, axis: int, method: str) -> QuantizedWeights:
    scales, q = symmetric_per_channel(w, axis, 7, method)
    return QuantizedWeights(q.astype(np.int8), QuantParams.per_channel(scales, axis), DType.INT4)


# LiteRT's builtin dynamic-range FULLY_CONNECTED computes -8 wrongly (litert_support.py)
INT4_NARROW = register_weight_format(WeightFormat(
    "int4-narrow", DType.INT4, -7, 7, _int4_narrow,
    "symmetric per-channel INT4 in [-7, 7], MSE-searched clipping", default_method="mse"))


def blockwise_int4(w: np.ndarray, block_size: int, method: str = "mse") -> QuantizedWeights:
    """Block-wise INT4 of a [N, K] (FULLY_CONNECTED) weight: one FLOAT16 scale per block of
    `block_size` K elements; K must be a multiple of the block size (LiteRT's rule)."""
    w = np.asarray(w, np.float32)
    if w.ndim != 2:
        raise ValueError(f"block-wise weights must be 2-D [N, K], not {list(w.shape)}")
    n, k = w.shape
    if k % block_size:
        raise ValueError(f"K = {k} is not a multiple of the block size {block_size}")
    solved = _blockwise_gptq(w, block_size) if method in SOLVER_METHODS else None
    if solved is not None:
        scales16, q = solved
    else:
        blocks = w.reshape(n * (k // block_size), block_size)
        scales, q = symmetric_per_channel(
            blocks, 0, 7, "mse" if method in SOLVER_METHODS else method, qmin=-8)
        # LiteRT stores the block scales as FLOAT16: quantise with the scales it will use
        scales16 = _fp16_scales(scales)
        q = np.clip(np.round(blocks / scales16.astype(np.float32)[:, None]), -8, 7)
    scales32 = scales16.astype(np.float32)
    q = np.asarray(q).astype(np.int8).reshape(n, k)
    scale_tensor = Tensor("block_scales", (n, k // block_size), DType.FLOAT16,
                          data=scales16.reshape(n, k // block_size))
    quant = QuantParams(scales32.reshape(n, k // block_size), np.zeros(1, np.int64), axis=0,
                        block_size=block_size,
                        extras={"blockwise": {"scales": scale_tensor, "zero_points": None},
                                "tflite_no_scale": True})
    return QuantizedWeights(q, quant, DType.INT4)


def _fp16_scales(scales: np.ndarray) -> np.ndarray:
    return np.maximum(np.asarray(scales, np.float32), np.float32(6.2e-5)).astype(np.float16)


def _blockwise_gptq(w: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """GPTQ codes per group of `block_size` K elements, each group's FLOAT16 scale MSE-searched
    on its error-updated weights: (scales16 [n * k / block], codes [n, k]), or None."""
    solver = active_solver()
    if solver is None:
        return None

    def group_scale(cols: np.ndarray) -> np.ndarray:
        scales, _ = symmetric_per_channel(cols, 0, 7, "mse", qmin=-8)
        return _fp16_scales(scales).astype(np.float32)

    solved = solver.solve(w, 0, -8, 7, group_size=block_size, group_scale=group_scale)
    if solved is None:
        return None
    scales, q = solved
    return np.asarray(scales, np.float32).astype(np.float16).reshape(-1), q


def _int4_blocks(block_size: int) -> Callable[[np.ndarray, int, str], QuantizedWeights]:
    def quantize(w: np.ndarray, axis: int, method: str) -> QuantizedWeights:
        if axis != 0:
            raise ValueError(f"block-wise INT4 needs the output channels on axis 0, not {axis}")
        return blockwise_int4(w, block_size, method)
    return quantize


for _b in BLOCK_SIZES:
    register_weight_format(WeightFormat(
        f"int4b{_b}", DType.INT4, -8, 7, _int4_blocks(_b),
        f"block-wise INT4, one FLOAT16 scale per {_b} K elements (FULLY_CONNECTED, float "
        "activations)", default_method="mse", block_size=_b))


# ---------------------------------------------------------------------------- ternary
def ternarize(w: np.ndarray, axis: int, scale: str = "absmean", refit: bool = True,
              ) -> tuple[np.ndarray, np.ndarray]:
    """BitNet b1.58 ternary weights: (scales per channel, q in {-1, 0, 1} shaped like w)."""
    if scale not in TERNARY_SCALES:
        raise ValueError(f"ternary scale must be one of {TERNARY_SCALES}, not {scale!r}")
    rows = _rows(w, axis)
    a = np.abs(rows)
    if rows.shape[1] == 0:
        return np.ones(rows.shape[0], np.float32), np.zeros(np.shape(w), np.int8)
    gamma = a.mean(axis=1) if scale == "absmean" else np.median(a, axis=1)
    # all-zero (or median-zero) channels: fall back to the mean, then to 1
    gamma = np.where(gamma > 0, gamma, a.mean(axis=1))
    gamma = np.where(gamma > 0, gamma, 1.0)
    q = np.clip(np.round(rows / gamma[:, None]), -1, 1)
    scales = gamma
    if refit:
        nonzero = np.count_nonzero(q, axis=1)
        fitted = (a * (q != 0)).sum(axis=1) / np.maximum(nonzero, 1)
        scales = np.where(nonzero > 0, fitted, gamma)
    return scales.astype(np.float32), _from_rows(q, np.shape(w), axis).astype(np.int8)


def ternary_mse(w: np.ndarray, axis: int, steps: int = 99) -> tuple[np.ndarray, np.ndarray]:
    """Ternary weights with the rounding threshold searched per channel for the least squared
    error: candidates t = 2-100 % of the absolute max and BitNet's absmean gamma; q =
    clip(round(w / t), -1, 1), scale = mean |w| over q != 0 (least squares for that pattern)."""
    rows = _rows(w, axis)
    a = np.abs(rows)
    best_scale, best_q = ternarize(w, axis, "absmean", True)
    best_rows = _rows(best_q, axis)
    energy = (a ** 2).sum(axis=1)

    def error(scale: np.ndarray, nz: np.ndarray) -> np.ndarray:
        # ||w - s q||^2 with s = mean |w| over nz: energy - s^2 * count
        return energy - scale ** 2 * nz.sum(axis=1)

    best_err = error(best_scale.astype(np.float64), best_rows != 0)
    absmax = a.max(axis=1) if a.shape[1] else np.zeros(a.shape[0])
    for f in np.linspace(0.02, 1.0, steps):
        t = np.where(absmax > 0, absmax * f, 1.0)
        nz = a >= t[:, None] / 2
        count = nz.sum(axis=1)
        scale = np.where(count > 0, (a * nz).sum(axis=1) / np.maximum(count, 1), 1.0)
        err = error(scale, nz)
        better = (err < best_err - 1e-12 * energy) & (count > 0)
        if better.any():
            best_err = np.where(better, err, best_err)
            best_scale = np.where(better, scale, best_scale)
            best_rows = np.where(better[:, None], np.sign(rows) * nz, best_rows)
    return (best_scale.astype(np.float32),
            _from_rows(best_rows, np.shape(w), axis).astype(np.int8))


def _ternary(scale: str, refit: bool) -> Callable[[np.ndarray, int, str], QuantizedWeights]:
    def quantize(w: np.ndarray, axis: int, method: str) -> QuantizedWeights:
        if method not in TERNARY_SCALES:
            check_method(method)
        if method in MSE_METHODS and refit:
            scales, q = ternary_mse(w, axis)
        else:
            scales, q = ternarize(w, axis, scale, refit)
        if method in SOLVER_METHODS:
            scales, q = channel_codes(w, axis, scales, -1, 1, method, refit=refit)
            q = np.asarray(q).astype(np.int8)
        return QuantizedWeights(q, QuantParams.per_channel(scales, axis), DType.INT2)
    return quantize


TERNARY = register_weight_format(WeightFormat(
    "ternary", DType.INT2, -1, 1, _ternary("absmean", True),
    "ternary {-1, 0, +1} (BitNet b1.58 absmean threshold, least-squares scale), stored as INT2",
    default_method="absmean"))
register_weight_format(WeightFormat(
    "ternary-median", DType.INT2, -1, 1, _ternary("median", True),
    "ternary {-1, 0, +1} (median of |w| threshold, least-squares scale), stored as INT2",
    default_method="median"))
register_weight_format(WeightFormat(
    "ternary-bitnet", DType.INT2, -1, 1, _ternary("absmean", False),
    "ternary {-1, 0, +1} with BitNet b1.58's absmean as the scale itself, stored as INT2",
    default_method="absmean"))


# ---------------------------------------------------------------------------- 2-bit
def int2_levels(w: np.ndarray, axis: int, steps: int = 91) -> tuple[np.ndarray, np.ndarray]:
    """2-bit weights q in {-2, -1, 0, 1}: (scales per channel, q shaped like w), the scale
    searched per channel over clipping ranges of 10-100 % of the absolute maximum."""
    rows = _rows(w, axis)
    absmax = channel_absmax(np.asarray(w, np.float32), axis).astype(np.float64)
    best_scale = np.where(absmax > 0, absmax / 2, 1.0)
    best_err = np.full(rows.shape[0], np.inf)
    for f in np.linspace(0.1, 1.0, steps):
        scale = np.where(absmax > 0, absmax * f / 2, 1.0)
        q = np.clip(np.round(rows / scale[:, None]), -2, 1)
        err = ((q * scale[:, None] - rows) ** 2).sum(axis=1)
        better = err < best_err
        best_scale = np.where(better, scale, best_scale)
        best_err = np.where(better, err, best_err)
    q = np.clip(np.round(rows / best_scale[:, None]), -2, 1)
    return best_scale.astype(np.float32), _from_rows(q, np.shape(w), axis).astype(np.int8)


def _int2(w: np.ndarray, axis: int, method: str) -> QuantizedWeights:
    check_method(method)
    scales, q = int2_levels(w, axis)
    if method in SOLVER_METHODS:
        scales, q = channel_codes(w, axis, scales, -2, 1, method)
        q = np.asarray(q).astype(np.int8)
    return QuantizedWeights(q, QuantParams.per_channel(scales, axis), DType.INT2)


INT2 = register_weight_format(WeightFormat(
    "int2", DType.INT2, -2, 1, _int2,
    "2-bit {-2, -1, 0, +1} x per-channel scale, MSE-searched clipping", default_method="mse"))


def weight_sqnr_db(w: np.ndarray, result: QuantizedWeights) -> float:
    """SQNR (dB) of quantised weights against the float ones."""
    w = np.asarray(w, np.float64)
    deq = result.quant.dequantize(result.values).astype(np.float64)
    signal = float((w ** 2).sum())
    noise = float(((w - deq.reshape(w.shape)) ** 2).sum())
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * float(np.log10(signal / noise))


__all__ = ["BLOCK_SIZES", "INT2", "INT4", "TERNARY", "TERNARY_SCALES", "blockwise_int4",
           "int2_levels", "ternarize", "ternary_mse", "weight_sqnr_db"]
