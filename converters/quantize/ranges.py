"""Activation range estimation: from observed values to the float range [lo, hi] an int8 tensor
covers, and from that range to TFLite's affine parameters.

An asymmetric int8 tensor represents real = scale * (q - zero_point), q in [-128, 127]. Its range
must contain 0 exactly (padding and ReLU produce exact zeros, and TFLite kernels pad with the
zero point), so every range is widened to include 0 and the zero point is rounded to an integer
after the scale is fixed ("nudging").

Methods (per tensor):
- ``minmax``: the smallest and largest value seen over all calibration samples.
- ``percentile``: the given percentiles of the value distribution (clips rare outliers).
- ``mse``: the range that minimises the expected squared quantisation error over the observed
  distribution: clipping error of values outside [lo, hi] plus uniform rounding noise
  scale^2 / 12 for values inside (exact zeros are representable and cost nothing). Searched on a
  histogram with prefix sums, so every candidate costs O(1).

Statistics are gathered in two passes over the calibration data: the first finds each tensor's
min / max (all ``minmax`` needs), the second fills a fixed-range histogram for the other methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sdk.converters.ir import QuantParams

METHODS = ("minmax", "percentile", "mse")
HISTOGRAM_BINS = 2048
#: the smallest activation scale written. A tensor calibrated to a range of ~1e-12 (a layer
#: that BatchNorm left nearly dead) would otherwise get a scale of ~1e-14, and LiteRT refuses to
#: prepare its producer: a fused RELU6's bound 6 / scale overflows int32
#: (`no_integer_overflow_from_quantization`). At 1e-8 such a bound is ~6e8 and values that small
#: are below float32's resolution next to the O(1) values around them.
MIN_ACTIVATION_SCALE = 1e-8


@dataclass
class TensorStats:
    """What calibration observed for one tensor."""

    min: float = np.inf
    max: float = -np.inf
    count: int = 0
    zeros: int = 0
    #: histogram over [hist_lo, hist_hi] (second pass); None until filled
    hist: np.ndarray | None = None
    hist_lo: float = 0.0
    hist_hi: float = 0.0
    #: per-channel (last axis) running sum of values, for bias correction
    channel_sum: np.ndarray | None = field(default=None, repr=False)
    #: smallest row maximum along the last axis (for SOFTMAX inputs), +inf until observed
    min_row_max: float = np.inf
    #: length of the last axis when rows are tracked
    row_length: int = 0

    def observe(self, x: np.ndarray, channels: bool = False, rows: bool = False) -> None:
        """First pass: min, max, count, exact zeros (and per-channel sums / row maxima when
        asked)."""
        if x.size == 0:
            return
        x = np.asarray(x, np.float32)
        finite = np.isfinite(x)
        if not finite.all():
            x = x[finite]
            if x.size == 0:
                return
        self.add_values(float(x.min()), float(x.max()), int(x.size),
                        int(np.count_nonzero(x == 0)))
        self.observe_last_axis(x, channels, rows)

    def add_values(self, lo: float, hi: float, count: int, zeros: int) -> None:
        """`count` more finite values, from `lo` to `hi`, `zeros` of them exactly 0."""
        self.min = min(self.min, lo)
        self.max = max(self.max, hi)
        self.count += count
        self.zeros += zeros

    def observe_last_axis(self, x: np.ndarray, channels: bool, rows: bool) -> None:
        """The per-channel sums (`channels`) and the smallest row maximum (`rows`) along the
        last axis of finite float32 `x` (`observe`'s part that the streaming observer shares)."""
        if channels and x.ndim >= 1:
            s = x.reshape(-1, x.shape[-1]).sum(axis=0, dtype=np.float64)
            self.channel_sum = s if self.channel_sum is None else self.channel_sum + s
        if rows and x.ndim >= 1 and x.shape[-1] > 0:
            self.min_row_max = min(self.min_row_max,
                                   float(x.reshape(-1, x.shape[-1]).max(axis=1).min()))
            self.row_length = int(x.shape[-1])

    @property
    def seen(self) -> bool:
        return self.count > 0

    def start_histogram(self, bins: int = HISTOGRAM_BINS) -> None:
        lo, hi = min(self.min, 0.0), max(self.max, 0.0)
        if hi <= lo:
            hi = lo + 1e-8
        self.hist_lo, self.hist_hi = lo, hi
        self.hist = np.zeros(bins, np.int64)

    def histogram(self, x: np.ndarray) -> None:
        """Second pass: add values (zeros excluded: they are always exact) to the histogram."""
        assert self.hist is not None, "start_histogram() first"
        x = np.asarray(x, np.float32).reshape(-1)
        x = x[np.isfinite(x) & (x != 0)]
        if x.size == 0:
            return
        bins = self.hist.size
        idx = ((x - self.hist_lo) * (bins / (self.hist_hi - self.hist_lo))).astype(np.int64)
        np.clip(idx, 0, bins - 1, out=idx)
        self.hist += np.bincount(idx, minlength=bins)

    def mean_per_channel(self) -> np.ndarray | None:
        if self.channel_sum is None or not self.count:
            return None
        per_channel = self.count / self.channel_sum.size
        return (self.channel_sum / per_channel).astype(np.float32)


#: element-wise functions whose output error, not their input's, decides an input's range:
#: name -> (f, f')
TRANSFERS: dict[str, tuple[Callable[[np.ndarray], np.ndarray],
                           Callable[[np.ndarray], np.ndarray]]] = {
    "LOGISTIC": (lambda x: 1.0 / (1.0 + np.exp(-x)),
                 lambda x: np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))) ** 2),
    "TANH": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
}


def needs_histogram(method: str) -> bool:
    return method in ("percentile", "mse")


def estimate_range(stats: TensorStats, method: str = "minmax", *, percentile: float = 99.99,
                   qmin: int = -128, qmax: int = 127,
                   relevant: tuple[float, float] | None = None,
                   transfer: str | None = None) -> tuple[float, float]:
    """The float range [lo, hi] (lo <= 0 <= hi) for a tensor, by `method`.

    `relevant` is the interval the tensor's consumers can tell apart (RELU6 reads everything
    below 0 as 0 and above 6 as 6): values outside it may be clipped for free, so the range never
    extends past it and the search ignores the clipping error there.
    `transfer` ("LOGISTIC", "TANH"): the tensor is read only by that function, so ``mse``
    minimises the error of its output, f(q(x)) - f(x), not of x: rounding costs f'(x)^2 times
    as much and clipping costs (f(x) - f(clip(x)))^2. Logits far below 0, where the sigmoid is
    flat, no longer widen the range that the scores near the decision need.
    """
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; choose one of {METHODS}")
    if not stats.seen:
        raise ValueError("no values observed")
    a, b = relevant if relevant is not None else (-np.inf, np.inf)
    a, b = min(a, 0.0), max(b, 0.0)
    lo, hi = max(min(stats.min, 0.0), a), min(max(stats.max, 0.0), b)
    if method == "minmax" or stats.hist is None or hi - lo <= 0:
        return lo, hi
    if method == "percentile":
        plo, phi = _percentile_range(stats, percentile)
        return max(plo, lo), min(phi, hi)
    return _mse_range(stats, qmax - qmin, (lo, hi),
                      TRANSFERS[transfer] if transfer is not None else None)


def _centres(stats: TensorStats) -> np.ndarray:
    assert stats.hist is not None
    edges = np.linspace(stats.hist_lo, stats.hist_hi, stats.hist.size + 1)
    return (edges[:-1] + edges[1:]) * 0.5


def _percentile_range(stats: TensorStats, pct: float) -> tuple[float, float]:
    assert stats.hist is not None
    hist = stats.hist.astype(np.float64)
    total = hist.sum() + stats.zeros
    if total == 0:
        return min(stats.min, 0.0), max(stats.max, 0.0)
    edges = np.linspace(stats.hist_lo, stats.hist_hi, hist.size + 1)
    cum = np.cumsum(hist)
    tail = total * (100.0 - pct) / 100.0
    lo, hi = min(stats.min, 0.0), max(stats.max, 0.0)
    if stats.min < 0:
        i = int(np.searchsorted(cum, tail, side="right"))
        lo = min(float(edges[min(i, hist.size)]), 0.0)
    if stats.max > 0:
        i = int(np.searchsorted(cum, cum[-1] - tail, side="left"))
        hi = max(float(edges[min(i + 1, hist.size)]), 0.0)
    return lo, hi


def _mse_range(stats: TensorStats, levels: int, bounds: tuple[float, float],
               transfer: tuple[Callable[[np.ndarray], np.ndarray],
                               Callable[[np.ndarray], np.ndarray]] | None = None
               ) -> tuple[float, float]:
    """Grid search of [lo, hi] within `bounds` minimising clipping + rounding error over the
    histogram; values outside `bounds` read as the bound (the consumer cannot tell them from
    it). With `transfer` = (f, f'), the error is measured after f (see `estimate_range`)."""
    assert stats.hist is not None
    c = _centres(stats)
    n = np.where((c >= bounds[0]) & (c <= bounds[1]), stats.hist.astype(np.float64), 0.0)
    hist = stats.hist.astype(np.float64)
    # values beyond `bounds` read as the bound itself: clipping them costs what clipping the
    # bound costs
    m_lo, m_hi = float(hist[c < bounds[0]].sum()), float(hist[c > bounds[1]].sum())
    f, gain = (c, np.ones_like(c)) if transfer is None else (transfer[0](c),
                                                              transfer[1](c) ** 2)
    fn = (lambda v: v) if transfer is None else transfer[0]
    # prefix sums of n, n*f, n*f^2 (clipping) and n*f'^2 (rounding) from the left
    s0, s1, s2 = np.cumsum(n), np.cumsum(n * f), np.cumsum(n * f * f)
    g0 = np.cumsum(n * gain)
    t0, t1, t2 = s0[-1], s1[-1], s2[-1]
    lo0, hi0 = bounds

    def candidates(end: float, steps: int = 200) -> np.ndarray:
        if end == 0.0:
            return np.zeros(1)
        # 1% .. 100% of the observed extreme, geometrically spaced (the same relative precision
        # for a heavy-tailed tensor whose best range is a few % of its extreme)
        return end * np.geomspace(0.01, 1.0, steps)

    los = candidates(lo0)[:, None]
    his = candidates(hi0)[None, :]
    # bins entirely below lo / above hi are clipped
    i_lo = np.clip(np.searchsorted(c, los, side="left") - 1, -1, c.size - 1)
    i_hi = np.clip(np.searchsorted(c, his, side="right") - 1, -1, c.size - 1)

    def pre(arr: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return np.where(idx >= 0, arr[np.maximum(idx, 0)], 0.0)

    below0, below1, below2 = pre(s0, i_lo), pre(s1, i_lo), pre(s2, i_lo)
    above0 = t0 - pre(s0, i_hi)
    above1 = t1 - pre(s1, i_hi)
    above2 = t2 - pre(s2, i_hi)
    flo, fhi = (los, his) if transfer is None else (transfer[0](los), transfer[0](his))
    clip_lo = below2 - 2 * flo * below1 + flo * flo * below0
    clip_hi = above2 - 2 * fhi * above1 + fhi * fhi * above0
    inside = np.maximum(g0[-1] - pre(g0, i_lo) - (g0[-1] - pre(g0, i_hi)), 0.0)
    scale = (his - los) / levels
    b_lo, b_hi = float(fn(np.float64(lo0))), float(fn(np.float64(hi0)))
    clip_lo = clip_lo + m_lo * (flo - b_lo) ** 2
    clip_hi = clip_hi + m_hi * (fhi - b_hi) ** 2
    err = clip_lo + clip_hi + inside * scale * scale / 12.0
    best = np.unravel_index(int(np.argmin(err)), err.shape)
    return float(los[best[0], 0]), float(his[0, best[1]])


def softmax_input_range(stats: TensorStats, beta: float = 1.0,
                        levels: int = 256) -> tuple[float, float]:
    """Range for a tensor read only by SOFTMAX (logits).

    SOFTMAX's int8 output has a step of 1/256, so a logit more than T = ln(levels * n) + 4 (over
    beta) below its row's maximum yields a probability far below half a step whatever its exact
    value. The range therefore needs to reach only T below the smallest row maximum seen; the top
    end keeps the observed maximum (clipping the largest logit could create ties). The narrower
    range gives the logits that matter a finer step.
    """
    lo, hi = min(stats.min, 0.0), max(stats.max, 0.0)
    if not np.isfinite(stats.min_row_max) or beta <= 0:
        return lo, hi
    margin = (np.log(levels * max(stats.row_length, 1)) + 4.0) / beta
    return min(max(lo, stats.min_row_max - margin), 0.0), hi


def affine_params(lo: float, hi: float, qmin: int = -128, qmax: int = 127) -> QuantParams:
    """TFLite's asymmetric per-tensor parameters for the float range [lo, hi].

    The range is widened to contain 0; the zero point is the nudged integer closest to
    qmin - lo / scale, clamped to [qmin, qmax], so that 0.0 is represented exactly.
    """
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-12:
        # a constant-zero tensor: any positive scale represents it exactly
        return QuantParams.per_tensor(1.0, 0 if qmin < 0 <= qmax else qmin)
    scale = max((hi - lo) / (qmax - qmin), MIN_ACTIVATION_SCALE)
    zero_point = int(np.clip(round(qmin - lo / scale), qmin, qmax))
    return QuantParams.per_tensor(np.float32(scale), zero_point)


def symmetric_scales(absmax: np.ndarray, qmax: int = 127) -> np.ndarray:
    """Per-channel scales of a symmetric quantiser ([-qmax, qmax], zero point 0)."""
    absmax = np.asarray(absmax, np.float64)
    scales = absmax / qmax
    # An all-zero channel still needs a positive scale; any value represents it exactly. Take a
    # typical one of the other channels so the requantisation multiplier stays ordinary.
    empty = scales <= 0
    if empty.any():
        scales[empty] = float(np.median(scales[~empty])) if (~empty).any() else 1.0
    return scales.astype(np.float32)
