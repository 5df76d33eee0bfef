"""AdaRound: learned rounding of each layer's weights (``weight_method="adaround"``).

    sdk.export(model, "int4", calibration=images, weight_method="adaround")

Nagel et al., "Up or Down? Adaptive Rounding for Post-Training Quantization" (ICML 2020). Each
weight is rounded down or up, w_q = s * (floor(w / s) + h(V)), where h(V) = clip(sigmoid(V) *
(zeta - gamma) + gamma, 0, 1) is the rectified sigmoid (zeta = 1.1, gamma = -0.1) of a learned
V, started so that h(V) = w / s - floor(w / s) (the soft weights equal the float ones). V is
trained with Adam to minimise the layer's output error on its calibration inputs X plus a
regulariser that pushes every h to 0 or 1:

    ||X W^T - X W_q^T||^2 / ||X W^T - X W_rtn^T||^2  +  lambda * mean(1 - |2 h(V) - 1|^beta)

(the first term relative to round to nearest's, so lambda means the same on every layer). The
output error is quadratic in W_q, so it needs only H = 2 X^T X / n, the Hessian GPTQ uses
(`sdk.converters.quantize.gptq`: FULLY_CONNECTED input rows, CONV_2D im2col patches,
DEPTHWISE_CONV_2D one KH*KW Hessian per channel); the iterations cost a [C, K] x [K, K] product
each, not a pass over the data. As in the paper the regulariser is off for the first
`warmup` (20 %) of the iterations, then beta is annealed from 20 to 2. At the end every weight
is rounded by h(V) >= 1/2.

Same pipeline as GPTQ (`WeightSolver` with method "adaround"): per-channel scales from the
format's MSE search, H damped (10 % of its mean diagonal, `DEFAULT_DAMP`), layers in execution
order, each solved for the inputs it really gets with the upstream rounding error compensated,
and each channel's scale refitted by least squares after the codes are chosen. Codes stay in
[qmin, qmax]: a weight beyond the grid can only round to its edge or one step inside. Cost:
`iterations` (default 1000) products per layer, fewer (down to 200) where C x K x K x
iterations would pass `MAX_WORK`; numpy only.

On the corpus' openWakeWord embedding net (20 CONV_2D layers, Hessians from 32 calibration
inputs) the mean layer output SQNR at INT4 is 15.3 dB rounded to nearest, 24.8 GPTQ, 25.7
AdaRound with 300 iterations, 27.9 with 1000 (27.9 with 2000); at 2-bit 1.5 / 10.7 / 13.9 /
16.9. The whole INT4 export's worst output: 18.4 dB with H undamped, 19.0 damped 1 %, 19.2
damped 10 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdk.base.errors import ConversionError

ZETA = 1.1
GAMMA = -0.1
DEFAULT_ITERATIONS = 1000
#: a layer's iterations are cut so that iterations x C x K x K stays under this many
#: multiply-adds (about 10 s of one core), but never under MIN_ITERATIONS
MAX_WORK = 2e11
MIN_ITERATIONS = 200
DEFAULT_LAMBDA = 10.0
DEFAULT_LR = 0.1
#: H's diagonal is raised by this fraction of its mean inside an export (`WeightSolver`): ten
#: times GPTQ's, as the learned rounding fits a Hessian estimated from few rows per input too
#: closely (INT4 worst output, 1 % -> 10 %: BlazeFace 13.31 -> 14.65 dB, openWakeWord
#: embedding 19.02 -> 19.19, iris 28.12 -> 30.69)
DEFAULT_DAMP = 0.1
WARMUP = 0.2
BETA = (20.0, 2.0)


@dataclass
class AdaRoundResult:
    codes: np.ndarray     # [C, K] integer-valued float64 in [qmin, qmax]
    error: float          # tr((W - s Q) H (W - s Q)^T) of the chosen codes
    rtn_error: float      # the same for round to nearest at the same scales
    iterations: int


def hdot(h: np.ndarray, e: np.ndarray) -> np.ndarray:
    """e H for a symmetric H (rows of e times H [K, K]; per-channel H [C, K, K] row by row)."""
    return np.einsum("ckl,cl->ck", h, e) if h.ndim == 3 else e @ h


def error_power(e: np.ndarray, hessian: np.ndarray) -> float:
    """tr(e H e^T) of error rows `e` [C, K], for H [K, K] or per channel [C, K, K], in the
    dtype of its arguments (`output_error` and the stem's held-out check pass float64)."""
    return float((e * hdot(hessian, e)).sum())


def output_error(rows: np.ndarray, deq: np.ndarray, hessian: np.ndarray) -> float:
    """tr((W - Q) H (W - Q)^T): the layer's output squared error per input row (x2), for H
    [K, K] or per channel [C, K, K]."""
    return error_power(np.asarray(rows, np.float64) - np.asarray(deq, np.float64), hessian)


def rectified_sigmoid(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(h(V), dh/dV)."""
    sig = 1.0 / (1.0 + np.exp(-v))
    raw = sig * (ZETA - GAMMA) + GAMMA
    inside = (raw > 0.0) & (raw < 1.0)
    return np.clip(raw, 0.0, 1.0), np.where(inside, sig * (1.0 - sig) * (ZETA - GAMMA), 0.0)


def _initial_v(rest: np.ndarray) -> np.ndarray:
    """V with h(V) = rest (rest in [0, 1], kept off the clip points)."""
    r = np.clip(rest, 0.01, 0.99)
    return -np.log((ZETA - GAMMA) / (r - GAMMA) - 1.0)


def adaround_quantize(rows: np.ndarray, hessian: np.ndarray, qmin: int, qmax: int,
                      scales: np.ndarray, *, iterations: int = DEFAULT_ITERATIONS,
                      lam: float = DEFAULT_LAMBDA, lr: float = DEFAULT_LR,
                      warmup: float = WARMUP, beta: tuple[float, float] = BETA,
                      max_work: float = MAX_WORK, damp: float = 0.0) -> AdaRoundResult:
    """Learned rounding of weights `rows` [C, K] at `scales` ([C] per channel, or [C, K] one per
    weight, e.g. per-group scales repeated) with Hessian [K, K] (shared) or [C, K, K]; `damp`
    adds that fraction of H's mean diagonal to its diagonal (as GPTQ damps it)."""
    w = np.asarray(rows, np.float64)
    c, k = w.shape
    if hessian.shape[-2:] != (k, k) or (hessian.ndim == 3 and hessian.shape[0] != c):
        raise ConversionError(f"AdaRound: Hessian of shape {list(hessian.shape)} does not fit "
                              f"weights [{c}, {k}]")
    if qmax <= qmin:
        raise ConversionError(f"AdaRound: empty grid [{qmin}, {qmax}]")
    s = np.asarray(scales, np.float64)
    s = np.broadcast_to(s.reshape(c, -1) if s.ndim == 1 else s, (c, k))
    h = np.array(hessian, np.float64, copy=True)
    if damp > 0:
        idx = np.arange(k)
        h[..., idx, idx] += damp * h[..., idx, idx].mean(axis=-1, keepdims=True)
    x = w / s
    base = np.clip(np.floor(x), qmin, qmax - 1)  # codes are base or base + 1
    rtn = np.clip(np.round(x), qmin, qmax)

    def error(codes: np.ndarray) -> float:
        return error_power(codes * s - w, h)

    rtn_error = error(rtn)
    if iterations > MIN_ITERATIONS:
        iterations = max(MIN_ITERATIONS, min(iterations, int(max_work // (c * k * k))))
    if rtn_error <= 0.0 or iterations <= 0:
        return AdaRoundResult(rtn, rtn_error, rtn_error, 0)
    # the iterations in float32 (half the memory traffic of float64; the objective is
    # relative, 1e-7 precision is far below what separates two codes), the result in float64
    f32 = np.float32
    h32 = h.astype(f32)
    s32 = s.astype(f32)
    offset = (base * s - w).astype(f32)      # e = soft * s + offset
    gscale = (2.0 * s / rtn_error).astype(f32)
    v = _initial_v(x - base).astype(f32)
    m1 = np.zeros_like(v)
    m2 = np.zeros_like(v)
    b1, b2, eps = 0.9, 0.999, 1e-8
    n = v.size
    start_reg = int(warmup * iterations)
    for it in range(iterations):
        soft, dsoft = rectified_sigmoid(v)
        grad = hdot(h32, soft * s32 + offset) * gscale  # d rec / d soft
        if it >= start_reg:
            frac = (it - start_reg) / max(iterations - start_reg - 1, 1)
            b = beta[0] + (beta[1] - beta[0]) * frac
            t = 2.0 * soft - 1.0
            grad -= f32(2.0 * (lam / n) * b) * np.abs(t) ** f32(b - 1.0) * np.sign(t)
        g = grad * dsoft
        m1 *= b1
        m1 += f32(1 - b1) * g
        m2 *= b2
        m2 += f32(1 - b2) * g * g
        step = it + 1
        v -= f32(lr / (1 - b1 ** step)) * m1 / (np.sqrt(m2 * f32(1 / (1 - b2 ** step))) + f32(eps))
    soft, _ = rectified_sigmoid(v)
    codes = base + (soft >= 0.5)
    err = error(codes)
    if err > rtn_error:  # never worse than round to nearest on the layer's own objective
        codes, err = rtn, rtn_error
    return AdaRoundResult(codes, err, rtn_error, iterations)


__all__ = ["DEFAULT_ITERATIONS", "DEFAULT_LAMBDA", "MAX_WORK", "AdaRoundResult",
           "adaround_quantize", "error_power", "hdot", "output_error",
           "rectified_sigmoid"]
