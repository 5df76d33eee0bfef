"""GPTQ: error-compensating weight rounding from calibration activations (``weight_method="gptq"``).

    sdk.export(model, "ternary", calibration=images, weight_method="gptq")

Round-to-nearest (``"rtn"``) makes each weight's error as small as it can on its own; what
matters is the layer's *output* error ``||X W^T - X Q^T||^2`` over real inputs X. GPTQ (Frantar
et al., 2022, after OBQ) minimises that column by column: with H = 2 X^T X + damping (the
Hessian of the output error) and U the upper Cholesky factor of H^-1, it quantises column i of
every output channel, then pushes that column's error onto the not yet quantised columns,
``W[:, j] -= err_i * U[i, j] / U[i, i]`` (j > i); columns go in order of decreasing H_ii
(``act_order``), updates inside a block of 128 columns are immediate and the rest is applied once
per block (lazy batch updates). Scales are fixed before (the format's MSE search per channel,
or per group of K at the group's first column for block-wise INT4), and afterwards each
channel's scale is refitted by least squares in the H metric
(``s = w^T H q / q^T H q``: the best scale for the codes GPTQ chose). A convolution with a
bias is solved for the output error the rewrite's analytic bias correction leaves,
H = 2 E[(x - v)(x - v)^T] with v the correction's own vector (`WeightSolver.about_correction`).

Layers are solved in execution order and, by default (`WeightSolver.sequential`), each for the
inputs it will really get: those of the float model with the layers before it already rounded
(and bias-corrected as the rewrite corrects them), with its weights first corrected by least
squares to reproduce the float layer's outputs from those inputs (see `WeightSolver`). That
stops rounding error from accumulating through deep nets (digits CNN int2: output SQNR 14.8 dB
with float inputs only, 23.3 dB sequential). Inputs are gathered by running the model in LiteRT
over the calibration samples with every intermediate tensor kept, as `calibrate` does:

- FULLY_CONNECTED: the input rows, ``[-1, K]``.
- CONV_2D: im2col patches ``[KH * KW * Cin]`` (the weights' own order) at sampled output
  positions, with the op's stride, dilation and SAME / VALID padding (zeros, as TFLite pads).
  Grouped convolutions (filter depth < input depth) are not handled: RTN, with a note.
- DEPTHWISE_CONV_2D: every output channel reads one input channel, so there is no cross-channel
  term: each channel gets its own KH*KW x KH*KW Hessian from its input channel's patches and
  GPTQ runs per channel on its KH*KW taps (exact GPTQ for that layer, not a diagonal
  approximation; with 9 taps there is little to compensate and the gain is small).

Costs and limits: at most ``max_rows`` (8192) input rows per layer (output positions sampled
evenly over the calibration samples, seeded); one run of the float model, then (sequential) one
run of it and of its partly rounded copy per layer, until ``max_rows`` rows (convolutions:
about ``COMPENSATION_SAMPLES`` = 32 samples); each Hessian is K^2 float64; layers whose
Hessians would take the total past half the load budget (`sdk.base.limits.default_budget`,
``EDGESDK_MEMORY_BUDGET``) are rounded to nearest instead, and the export notes say which.

The formats (`weights` / `lowbit`) call `active_solver()` when asked for method "gptq": the
Hessian is found by the weights' content (shape + hash), so the INT8 rewrite needs no change;
a weight tensor read by two layers gets the sum of their Hessians (exactly the right objective
for a shared weight).
"""

from __future__ import annotations

import contextvars
import copy
import hashlib
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from sdk.base.errors import CalibrationError, ConversionError
from sdk.base.limits import default_budget
from sdk.base.samples import SampleSet
from sdk.converters.ir import DType, Model, Operator, Tensor
from sdk.converters.quantize.adaround import DEFAULT_DAMP as ADAROUND_DAMP
from sdk.converters.quantize.adaround import adaround_quantize, error_power, hdot, output_error
from sdk.converters.quantize.lowbit import _from_rows, _rows
from sdk.converters.quantize.method_choice import (
    CANDIDATES,
    CENTRED,
    LayerChoice,
    Solve,
    describe,
    held_out_choice,
)
from sdk.converters.quantize.plan import layer_name
from sdk.converters.quantize.rules import OP_RULES
from sdk.converters.quantize.solver import ACTIVE, ScaleFn, Solver, active_solver
from sdk.converters.quantize.subgraph import computing
from sdk.converters.quantize.upstream_cache import UpstreamCache
from sdk.converters.quantize.weights import SOLVER_METHODS

GPTQ_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
#: input rows (im2col'd positions) per layer that the Hessian is built from
DEFAULT_MAX_ROWS = 8192
#: damping added to H's diagonal, as a fraction of its mean (GPTQ's percdamp)
DEFAULT_DAMP = 0.01
BLOCK = 128
#: the sequential mode takes each layer's rows from at least this many calibration samples and
#: stops running samples once it has `max_rows` rows (convolutions: after about this many)
COMPENSATION_SAMPLES = 32
#: the compensation's ridge, in multiples of `damp`, chosen per layer by two-fold validation
#: over the calibration samples (`_validated_damp`)
COMPENSATION_RIDGES = (1.0, 3.0, 10.0, 30.0, 100.0)
#: BLAS threads while a layer is solved: GPTQ's column sweep and AdaRound's iterations are
#: thousands of small products, which OpenBLAS' threads slowed ten-fold on a busy 2-core host
#: (a 48 x 192 synthetic layer, 1000 AdaRound iterations: 1.0 s on one thread, 10-12 s on two)
SOLVER_BLAS_THREADS = 1


#: a layer's calibration rows in two halves (alternate samples): (H of the first, H of the
#: second, the first's mean row, the second's mean row, the bias correction's input vector
#: fitted on the first half, the same on both halves; see `_about`)
Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class LayerHessian:
    """H = 2 X^T X / rows of one layer's inputs: [K, K], or [C, K, K] (depthwise, per channel)."""

    layers: list[str]
    op_type: str
    hessian: np.ndarray
    rows: int
    ops: list[Operator] = field(default_factory=list, repr=False)
    #: mean input row ([K], or [C, K] for depthwise): what the analytic bias correction uses
    mean: np.ndarray | None = field(default=None, repr=False)
    #: per op of `ops`: the mean of each channel of its float input over every position of
    #: every sample, as calibration's means (`WeightSolver.input_means` where those are not given)
    channel_means: list[np.ndarray] = field(default_factory=list, repr=False)


@dataclass
class GptqResult:
    codes: np.ndarray   # [C, K] integer-valued float64
    scales: np.ndarray  # [C] or [C, K // group_size]


def weight_key(w: np.ndarray) -> tuple[tuple[int, ...], str]:
    """How a Hessian finds its weights again inside the rewrite: shape + content hash."""
    a = np.ascontiguousarray(np.asarray(w, np.float32))
    return tuple(int(d) for d in a.shape), hashlib.blake2b(a.tobytes(), digest_size=16).hexdigest()


# ---------------------------------------------------------------------------- the algorithm
def _prepare_hessian(h: np.ndarray, damp: float) -> np.ndarray:
    """U with H^-1 = U^T U (upper Cholesky of the inverse), H damped; batched over [..., K, K].
    Inputs never seen (H_ii = 0) get H_ii = 1: their columns are rounded on their own."""
    h = np.array(h, np.float64, copy=True)
    k = h.shape[-1]
    idx = np.arange(k)
    d = h[..., idx, idx]
    h[..., idx, idx] = np.where(d > 0, d, 1.0)
    mean = h[..., idx, idx].mean(axis=-1, keepdims=True)
    for attempt in range(6):
        damped = h.copy()
        damped[..., idx, idx] += damp * (10.0 ** attempt) * mean
        try:
            np.linalg.cholesky(damped)  # positive definite, or try more damping
            inv = np.linalg.inv(damped)
            inv = (inv + np.swapaxes(inv, -1, -2)) / 2
            return np.swapaxes(np.linalg.cholesky(inv), -1, -2)
        except np.linalg.LinAlgError:
            continue
    raise ConversionError("GPTQ: the layer's input Hessian is not positive definite even with "
                          f"{damp * 1e5:g} x its mean diagonal added (inputs all zero or NaN?)")


def _times(e: np.ndarray, m: np.ndarray) -> np.ndarray:
    """e M: the rows of e [C, K] times M [K, L], or each row times its channel's M [C, K, L]."""
    return np.einsum("ck,ckl->cl", e, m) if m.ndim == 3 else e @ m


def _round(w: np.ndarray, s: np.ndarray, qmin: int, qmax: int) -> np.ndarray:
    return np.clip(np.round(w / s), qmin, qmax)


def gptq_quantize(rows: np.ndarray, hessian: np.ndarray, qmin: int, qmax: int, *,
                  scales: np.ndarray | None = None, group_size: int = 0,
                  group_scale: ScaleFn | None = None, damp: float = DEFAULT_DAMP,
                  act_order: bool = True, block: int = BLOCK) -> GptqResult:
    """GPTQ on weights `rows` [C, K] with Hessian [K, K] (shared) or [C, K, K] (per channel).

    Per-channel scales: `scales` [C]. Per-group: `group_size` and `group_scale(cols [C, g]) ->
    [C]`, called on each group's (already error-updated) columns when GPTQ reaches it.
    Returns integer codes in [qmin, qmax] and the scales used (not refitted: see `refit_scales`).
    """
    w = np.array(rows, np.float64, copy=True)
    c, k = w.shape
    per_row = hessian.ndim == 3
    if hessian.shape[-2:] != (k, k) or (per_row and hessian.shape[0] != c):
        raise ConversionError(f"GPTQ: Hessian of shape {list(hessian.shape)} does not fit "
                              f"weights [{c}, {k}]")
    grouped = group_size > 0
    if grouped:
        if group_scale is None or k % group_size:
            raise ConversionError(f"GPTQ: K = {k} is not a multiple of the group size "
                                  f"{group_size}, or no group scale rule given")
        block = max(group_size, (block // group_size) * group_size)
        act_order = False  # groups are contiguous runs of K
        out_scales = np.zeros((c, k // group_size))
    elif scales is None:
        raise ConversionError("GPTQ: per-channel scales are needed")
    perm = None
    h = hessian
    if act_order and not per_row:
        perm = np.argsort(-np.diag(hessian), kind="stable")
        w = w[:, perm]
        h = hessian[np.ix_(perm, perm)]
    u = _prepare_hessian(h, damp)
    q = np.zeros_like(w)
    s = None if grouped else np.asarray(scales, np.float64).reshape(c)
    for i1 in range(0, k, block):
        i2 = min(i1 + block, k)
        w1 = w[:, i1:i2].copy()
        err1 = np.zeros_like(w1)
        u1 = u[..., i1:i2, i1:i2]
        for j in range(i2 - i1):
            col = i1 + j
            if grouped and col % group_size == 0:
                assert group_scale is not None
                s = np.asarray(group_scale(w1[:, j:j + group_size]), np.float64).reshape(c)
                out_scales[:, col // group_size] = s
            assert s is not None
            x = w1[:, j]
            qc = _round(x, s, qmin, qmax)
            q[:, col] = qc
            d = u1[..., j, j]
            e = (x - qc * s) / d
            if per_row:
                w1[:, j:] -= e[:, None] * u1[:, j, j:]
            else:
                w1[:, j:] -= np.outer(e, u1[j, j:])
            err1[:, j] = e
        if i2 < k:
            w[:, i2:] -= _times(err1, u[..., i1:i2, i2:])
    if perm is not None:
        inverse = np.argsort(perm)
        q = q[:, inverse]
    return GptqResult(q, out_scales if grouped else np.asarray(s, np.float64))


def _nearest(target: np.ndarray, qmin: int, qmax: int, scales: np.ndarray | None,
             group_size: int, group_scale: ScaleFn | None) -> GptqResult:
    """Round to nearest at per-channel `scales`, or per group at `group_scale`'s scales."""
    out, per_value = _scales_for(target, scales, group_size, group_scale, "rounding")
    return GptqResult(_round(target, per_value, qmin, qmax), out)


def _scales_for(target: np.ndarray, scales: np.ndarray | None, group_size: int,
                group_scale: ScaleFn | None, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The scales a rounding of `target` stores (per channel, or [channels, groups] from
    `group_scale` on each group of `target`) and the same spread over every value."""
    c, k = target.shape
    if group_size:
        if group_scale is None or k % group_size:
            raise ConversionError(f"{what}: K = {k} is not a multiple of the group size "
                                  f"{group_size}, or no group scale rule given")
        out = np.stack([np.asarray(group_scale(target[:, i:i + group_size]),
                                   np.float64).reshape(c)
                        for i in range(0, k, group_size)], axis=1)
        return out, np.repeat(out, group_size, axis=1)
    if scales is None:
        raise ConversionError(f"{what}: per-channel scales are needed")
    out = np.asarray(scales, np.float64).reshape(c)
    return out, out[:, None]


def refit_scales(rows: np.ndarray, codes: np.ndarray, scales: np.ndarray,
                 hessian: np.ndarray) -> np.ndarray:
    """Per channel, the scale s minimising (w - s q)^T H (w - s q): w^T H q / q^T H q (kept where
    that is not a positive number)."""
    w = np.asarray(rows, np.float64)
    q = np.asarray(codes, np.float64)
    hq = hdot(hessian, q)
    num = (w * hq).sum(axis=1)
    den = (q * hq).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        fitted = num / den
    ok = np.isfinite(fitted) & (fitted > 0) & (den > 0)
    return np.where(ok, fitted, scales)


#: ternary codes by method "gptq": rounds of GPTQ again at the scales refitted for the last
#: round's codes (`refit_rounds`), each channel keeping the round of least output error in H.
#: Why ternary: with three levels the scale is the grid itself, and the weights' MSE scale GPTQ
#: starts from is not the one its error feedback ends up needing. Over the 16 fast-subset models
#: (worst output, int8 activations, draws 1 / 2, clean copies) the ternary GPTQ median went 12.77
#: / 11.05 -> 14.80 / 12.29 dB (ppocr_mobile_v2_cls 12.76 / 8.03 -> 24.77 / 13.24; down on 4 of
#: 22 rows, oww_hey_mycroft draw 1 10.72 -> 8.89 the most); INT4 / 2-bit keep one pass
#: (benchmarks/results/subbyte-gptq-2026-12-07.md, 15:08 section). The round is chosen on held-out
#: calibration halves where the solver has them (stop 29): chosen on the fitting inputs it
#: overfit rank-poor layers, and ppocr_mobile_v2_cls draw 2 (a saturated 2-class softmax whose
#: logits are at 2-4 dB SQNR, so its worst output is the margin of 2-3 of 16 inputs) read 13.24
#: dB with the in-sample choice and 29.57 with the held-out one (18:24 section there)
TERNARY_REFIT_ROUNDS = 3


def refit_rounds(rows: np.ndarray, hessian: np.ndarray, qmin: int, qmax: int,
                 first: GptqResult, *, damp: float = DEFAULT_DAMP,
                 rounds: int = TERNARY_REFIT_ROUNDS,
                 folds: tuple[np.ndarray, np.ndarray] | None = None) -> GptqResult:
    """Scale and codes fitted in turn: from GPTQ's `first` codes, `rounds` times the scale
    refitted for the last codes (`refit_scales`) and GPTQ run again at it; per output channel
    the codes of one round (the first included), with the scale refitted for them (the scales
    returned are `refit_scales`' for the codes returned: no further refit is needed).

    Which round: without `folds`, the one whose refitted scale leaves the least output error
    (w - s q)^T H (w - s q) on H itself; channels are independent given H, so the choice per
    channel never raises the layer's error over `first`'s. With `folds` (the H of two halves
    of the calibration samples) the round is chosen on held-out samples: the same rounds are
    run on each half's H from `first.scales`, each scored on the other half, and each channel
    takes the round (index) of least held-out error summed over the two directions. Why:
    chosen on its own fitting inputs the round overfits a layer with few rows per weight, and
    which round wins then follows the draw of calibration samples (see TERNARY_REFIT_ROUNDS)."""
    w = np.asarray(rows, np.float64)

    def error(r: GptqResult, fit: np.ndarray, check: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        s = refit_scales(w, r.codes, np.asarray(r.scales, np.float64), fit)
        e = w - r.codes * s[:, None]
        return (e * hdot(check, e)).sum(axis=1), s

    def run(fit: np.ndarray, check: np.ndarray, start: GptqResult
            ) -> tuple[list[np.ndarray], list[GptqResult]]:
        """Per round (the first included): each channel's error on `check`, and the codes
        with the scales refitted on `fit`."""
        err, scales = error(start, fit, check)
        errors, results = [err], [GptqResult(start.codes, scales)]
        for _ in range(rounds):
            again = gptq_quantize(w, fit, qmin, qmax, scales=scales, damp=damp)
            err, scales = error(again, fit, check)
            errors.append(err)
            results.append(GptqResult(again.codes, scales))
        return errors, results

    errors, results = run(hessian, hessian, first)
    if folds is not None:
        a, b = folds
        start = np.asarray(first.scales, np.float64)
        held = [np.asarray(run(x, y, gptq_quantize(w, x, qmin, qmax, scales=start,
                                                    damp=damp))[0])
                for x, y in ((a, b), (b, a))]
        pick = np.argmin(held[0] + held[1], axis=0)
    else:  # first minimum: ties keep the earlier round
        pick = np.argmin(np.asarray(errors), axis=0)
    channels = np.arange(w.shape[0])
    codes = np.stack([r.codes for r in results])[pick, channels]
    scales = np.stack([r.scales for r in results])[pick, channels]
    return GptqResult(codes, scales)


# ---------------------------------------------------------------------------- Hessians
def _same_pad(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return out, total // 2


def _geometry(op: Operator, x_shape: tuple[int, ...], kh: int, kw: int
              ) -> tuple[int, int, int, int, int, int, int, int, int, int]:
    a = op.attrs
    sh, sw = int(a.get("stride_h", 1)), int(a.get("stride_w", 1))
    dh, dw = int(a.get("dilation_h_factor", 1)), int(a.get("dilation_w_factor", 1))
    _, ih, iw, _ = x_shape
    if str(a.get("padding", "SAME")).upper() == "SAME":
        oh, ph = _same_pad(ih, kh, sh, dh)
        ow, pw = _same_pad(iw, kw, sw, dw)
    else:
        oh = (ih - (kh - 1) * dh - 1) // sh + 1
        ow = (iw - (kw - 1) * dw - 1) // sw + 1
        ph = pw = 0
    return sh, sw, dh, dw, oh, ow, ph, pw, ih, iw


def patches(op: Operator, x: np.ndarray, kh: int, kw: int, positions: np.ndarray
            ) -> np.ndarray:
    """im2col of NHWC `x` at flat output `positions` (n * OH * OW + oh * OW + ow):
    [rows, KH, KW, C], zeros where the window is in the padding."""
    sh, sw, dh, dw, oh, ow, ph, pw, ih, iw = _geometry(op, x.shape, kh, kw)
    n = positions // (oh * ow)
    rest = positions % (oh * ow)
    y0 = (rest // ow) * sh - ph
    x0 = (rest % ow) * sw - pw
    ys = y0[:, None] + np.arange(kh)[None, :] * dh  # [rows, KH]
    xs = x0[:, None] + np.arange(kw)[None, :] * dw  # [rows, KW]
    vy = (ys >= 0) & (ys < ih)
    vx = (xs >= 0) & (xs < iw)
    out = x[n[:, None, None], np.clip(ys, 0, ih - 1)[:, :, None],
            np.clip(xs, 0, iw - 1)[:, None, :]]  # [rows, KH, KW, C]
    mask = (vy[:, :, None] & vx[:, None, :])[..., None]
    return np.where(mask, out, 0.0)


def output_positions(op: Operator, x_shape: tuple[int, ...], kh: int, kw: int) -> int:
    _, _, _, _, oh, ow, *_ = _geometry(op, x_shape, kh, kw)
    return int(x_shape[0]) * oh * ow


@dataclass
class _Accumulator:
    """One layer's input statistics: H = X^T X (sums; [K, K], or [C, K, K] for depthwise) and,
    given the inputs of a second model at the same positions, the cross term X_q^T X_f and
    both inputs' sums (for the input-error compensation, see `WeightSolver`)."""

    op: Operator
    weight: np.ndarray
    k: int
    shape: tuple[int, ...]  # of the Hessian
    h: np.ndarray = field(init=False)
    cross: np.ndarray | None = None
    sum_q: np.ndarray = field(init=False)
    sum_f: np.ndarray | None = None
    rows: int = 0

    def __post_init__(self) -> None:
        self.h = np.zeros(self.shape)
        self.sum_q = np.zeros(self.shape[:-1])

    def _rows(self, x: np.ndarray, per_sample: int, rng: np.random.Generator,
              pos: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows [r, K] or [r, taps, C] for depthwise, the positions they were taken at), float64
        (converted after the rows are picked, not the whole input: the same values)."""
        x = np.asarray(x)
        op = self.op
        if op.type == "FULLY_CONNECTED":
            batch = int(x.shape[0]) if x.ndim > 1 else 1
            xs = x.reshape(-1, self.k)
            pos = _pick(len(xs), per_sample * batch, rng) if pos is None else pos
            return xs[pos].astype(np.float64), pos
        if x.ndim != 4:
            raise ConversionError(f"GPTQ: {op.type} {layer_name(op)!r} input is not NHWC "
                                  f"(shape {list(x.shape)})")
        _, kh, kw, _ = self.weight.shape  # [O, KH, KW, Cin] and [1, KH, KW, C] alike
        if pos is None:
            pos = _pick(output_positions(op, x.shape, kh, kw), per_sample * x.shape[0], rng)
        p = patches(op, x, kh, kw, pos).astype(np.float64)  # [rows, KH, KW, C]
        if op.type == "CONV_2D":
            return p.reshape(len(pos), -1), pos
        return p.reshape(len(pos), kh * kw, -1), pos  # [rows, taps, Cin]

    def _gram(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.ndim == 2:
            return a.T @ b
        # [C, taps, rows] @ [C, rows, taps]: batched BLAS, about twice einsum's speed here
        per_in = np.matmul(a.transpose(2, 1, 0), b.transpose(2, 0, 1))
        times = self.shape[0] // per_in.shape[0]
        return per_in if times == 1 else np.repeat(per_in, times, axis=0)

    def _sum(self, a: np.ndarray) -> np.ndarray:
        if a.ndim == 2:
            return a.sum(axis=0)
        per_in = a.sum(axis=0).T  # [C, taps]
        return np.repeat(per_in, self.shape[0] // per_in.shape[0], axis=0)

    def rows_taken(self, x: np.ndarray, per_sample: int) -> int:
        """How many rows `add(x, per_sample, ...)` takes from input `x`."""
        if self.op.type == "FULLY_CONNECTED":
            batch = int(x.shape[0]) if x.ndim > 1 else 1
            return min(x.size // self.k, per_sample * batch)
        if x.ndim != 4:
            return 0
        _, kh, kw, _ = self.weight.shape
        return min(output_positions(self.op, x.shape, kh, kw), per_sample * int(x.shape[0]))

    def add(self, x: np.ndarray, per_sample: int, rng: np.random.Generator,
            x_float: np.ndarray | None = None) -> None:
        """Add the rows of input `x`; with `x_float` (the float model's input at the same
        positions) also the cross term and sums."""
        a, pos = self._rows(x, per_sample, rng)
        self.h += self._gram(a, a)
        self.sum_q += self._sum(a)
        self.rows += len(a)
        if x_float is not None:
            b, _ = self._rows(x_float, per_sample, rng, pos)
            if self.cross is None or self.sum_f is None:
                self.cross = np.zeros(self.shape)
                self.sum_f = np.zeros(self.shape[:-1])
            self.cross += self._gram(a, b)
            self.sum_f += self._sum(b)


def _per_sample(value: np.ndarray, count: int) -> list[np.ndarray] | None:
    """A batch's tensor as one float32 copy per sample (None: its first axis is not the
    batch's)."""
    if count == 1:
        return [np.array(value, np.float32, copy=True)]
    if value.ndim == 0 or value.shape[0] != count:
        return None
    return [np.array(value[i:i + 1], np.float32, copy=True) for i in range(count)]


def _upto(model: Model, tensor: Tensor) -> Model | None:
    """`model` cut down to what computes `tensor` (its only output; shares the tensors), or
    None when an input of the graph is the tensor itself."""
    if tensor not in model.main.producers():
        return None
    return computing(model, [tensor])


def _pick(total: int, want: int, rng: np.random.Generator) -> np.ndarray:
    if want >= total:
        return np.arange(total)
    return np.sort(rng.choice(total, size=want, replace=False))


def _hessian_shape(op: Operator, w: np.ndarray, x: Tensor) -> tuple[tuple[int, ...], int] | str:
    """(Hessian shape, K) or why this layer gets none."""
    if op.type == "FULLY_CONNECTED":
        if w.ndim != 2:
            return f"weights of shape {list(w.shape)} are not [N, K]"
        return (w.shape[1], w.shape[1]), int(w.shape[1])
    if w.ndim != 4 or len(x.shape) != 4:
        return f"weights {list(w.shape)} / input {list(x.shape)} are not 4-D"
    if op.type == "CONV_2D":
        if int(x.shape[3]) != int(w.shape[3]):
            return (f"grouped convolution (filter depth {w.shape[3]}, input depth {x.shape[3]}): "
                    "rounded to nearest")
        k = int(w.shape[1] * w.shape[2] * w.shape[3])
        return (k, k), k
    c_out, taps = int(w.shape[3]), int(w.shape[1] * w.shape[2])
    if c_out % max(int(x.shape[3]), 1):
        return f"depthwise output channels {c_out} are not a multiple of input {x.shape[3]}"
    return (c_out, taps, taps), taps


@dataclass
class WeightSolver:
    """Holds layer Hessians while the INT8 rewrite runs (`with solver:`); the formats ask it to
    round with GPTQ (method "gptq") or AdaRound (method "adaround", the same Hessians and
    sequential compensation, codes learned by `adaround.adaround_quantize`). `seconds`: Hessian
    collection + solving; `notes`: what the report says.

    `sequential` (default): a layer whose upstream layers were already rounded is solved for
    what it will really see. The float model with the rounded weights so far (float
    activations) gives its inputs X_q at the same positions as the float inputs X_f; the
    weights GPTQ then rounds are W' = argmin ||X_f W^T - X_q W'^T|| (W plus the least-squares
    correction W (X_f - X_q)^T X_q (X_q^T X_q + damping)^-1, on centred inputs: the analytic
    bias correction handles the means) with H = 2 X_q^T X_q, so upstream rounding error is
    compensated here instead of accumulating (one LiteRT run of both models over the
    calibration samples per layer)."""

    method: str | None
    hessians: dict[tuple[tuple[int, ...], str], LayerHessian] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    solved: list[str] = field(default_factory=list)
    damp: float = DEFAULT_DAMP
    sequential: bool = True
    model: Model | None = None
    samples: SampleSet | None = None
    max_rows: int = DEFAULT_MAX_ROWS
    seed: int = 0
    #: layers whose weights were compensated for upstream rounding
    compensated: list[str] = field(default_factory=list)
    #: layers whose compensation, fitted on half the samples at any ridge of
    #: `COMPENSATION_RIDGES`, did not lower the output error on the other half (solved for their
    #: float inputs instead)
    declined: list[str] = field(default_factory=list)
    #: solve for the output error left after the analytic bias correction (which removes the
    #: mean shift a weight error causes): H = 2 Cov(X), not 2 E[X X^T] (see `_centre`). Off:
    #: measured on the corpus it lost more than it gained (GPTQ worst output, silero int4 16.45
    #: -> 9.07 dB, oww_hey_mycroft ternary 12.46 -> 3.75; ppocr_mobile_v2_cls ternary
    #: AdaRound 11.35 -> 15.0)
    centred: bool = False
    #: op types whose codes method "gptq" solves for the output error the rewrite's analytic
    #: bias correction leaves, H = 2 E[(x - v)(x - v)^T] with v the correction's own vector
    #: (the float input's channel means tiled over the taps, `_row_vector` / `_about`), where
    #: the layer has a bias. At padded output positions a convolution's rows hold zeros where
    #: the correction still subtracts v (a constant output error that 2 E[x x^T] does not
    #: see), so v is not the rows' mean and `centred`'s 2 Cov(X) is not the objective either:
    #: silero_vad 2-bit GPTQ's worst output 2.09 dB (E[x x^T]) / 0.69 (2 Cov) -> 12.59 (this;
    #: the gain is its third encoder convolution's, stride 2, one output position, a tap
    #: always in the padding). FULLY_CONNECTED keeps 2 E[x x^T] (there v is the rows' mean,
    #: this H is 2 Cov): on openWakeWord's dense layers fed one row per sample (rank <= 64 of
    #: K = 128) it lost (hey_mycroft ternary 12.46 -> 4.46, alexa 2-bit 23.80 -> 10.01)
    about_correction: tuple[str, ...] = ("CONV_2D", "DEPTHWISE_CONV_2D")
    #: the export corrects biases for the mean output shift (`bias_correction` not "none"):
    #: method "auto" then also tries the centred objective (see `_auto`)
    bias_corrected: bool = True
    #: the export's per-channel input means (calibration's, keyed by the float model's input
    #: tensor of each layer: what the rewrite's bias correction multiplies the weight error by,
    #: `int8._bias_shift`); the rounded copy shifts its biases by the same. None: the channel
    #: means the Hessian pass took over this solver's samples (`LayerHessian.channel_means`)
    input_means: dict[Tensor, np.ndarray] | None = field(default=None, repr=False)
    #: method "auto": each layer's held-out comparison and choice (`method_choice`)
    choices: list[LayerChoice] = field(default_factory=list)
    _token: contextvars.Token[Solver | None] | None = None
    _rounded: Model | None = None
    _memo: dict[int, object] = field(default_factory=dict)
    _float_run: tuple[Any, dict[Tensor, int]] | None = None
    #: the rounded copy's tensors per sample, computed incrementally (`upstream_cache`)
    _upstream: UpstreamCache | None = None
    #: a cut of this graph failed once: whole-prefix runs for every later layer (a new cache
    #: would start again from the graph inputs and fail the same way, at each layer's cost)
    _upstream_failed: bool = False
    #: per layer (id of its op): the float model's inputs, one per calibration sample, that the
    #: Hessian pass kept for the compensation (None or absent: run the float model for them)
    float_inputs: dict[int, list[np.ndarray] | None] = field(default_factory=dict)

    def __enter__(self) -> WeightSolver:
        self._token = ACTIVE.set(self if self.method in SOLVER_METHODS else None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            ACTIVE.reset(self._token)
            self._token = None
        if self.choices:
            self.notes.append(describe(self.choices))
        if self.method in SOLVER_METHODS and self.solved:
            how = {"gptq": "GPTQ", "adaround": "AdaRound (learned rounding)"}.get(
                self.method or "", "the method chosen per layer on held-out samples")
            self.notes.append(
                f"weight_method={self.method}: {len(self.solved)} layer(s) rounded by {how} "
                "from their inputs on the calibration samples"
                + (f", {len(self.compensated)} of them compensating upstream rounding"
                   if self.compensated else "")
                + (f" ({len(self.declined)} not: the correction did not hold on held-out "
                   "samples)" if self.declined else ""))

    def solve(self, w: np.ndarray, axis: int, qmin: int, qmax: int, *,
              scales: np.ndarray | None = None, group_size: int = 0,
              group_scale: ScaleFn | None = None, refit: bool = True
              ) -> tuple[np.ndarray, np.ndarray] | None:
        """GPTQ (or AdaRound) codes for weights `w` (channel axis `axis`): (scales, codes shaped
        like w), or None when no Hessian is known for these weights (the caller rounds to
        nearest). BLAS runs on `SOLVER_BLAS_THREADS` thread(s) meanwhile (see there)."""
        with threadpool_limits(limits=SOLVER_BLAS_THREADS, user_api="blas"):
            return self._solve(w, axis, qmin, qmax, scales=scales, group_size=group_size,
                               group_scale=group_scale, refit=refit)

    def _solve(self, w: np.ndarray, axis: int, qmin: int, qmax: int, *,
               scales: np.ndarray | None, group_size: int, group_scale: ScaleFn | None,
               refit: bool) -> tuple[np.ndarray, np.ndarray] | None:
        key = weight_key(w)
        entry = self.hessians.get(key)
        if entry is None:
            return None
        start = time.perf_counter()
        rows = _rows(w, axis)
        h, target, mean = entry.hessian, rows, entry.mean
        split: Split | None = None
        if self.sequential and self._rounded is not None and len(entry.ops) == 1:
            stats = self._compensated(entry, rows)
            if stats is not None:
                h, target, split, mean = stats
                self.compensated.append(", ".join(entry.layers))
        # the mean shift of the layer's output error is removed by the bias correction
        corrected = mean if self.bias_corrected and _biased(entry) else None
        # gptq on a convolution: solved about the rewrite's correction vector (`about_correction`)
        about = self.method == "gptq" and entry.op_type in self.about_correction
        if self.method != "auto" and self.centred and corrected is not None:
            h = _centre(h, corrected)
        elif about and corrected is not None:
            if split is None:
                split = self._float_split(entry)
            if split is not None:
                h = _about(h, corrected, split[5])
        refitted = False
        if self.method == "auto":
            if split is None:
                split = self._float_split(entry)
            result, h = self._auto(entry, target, h, corrected, split, qmin, qmax, scales,
                                   group_size, group_scale, refit)
        elif self.method == "adaround":
            result = self._adaround(target, h, qmin, qmax, scales, group_size, group_scale,
                                    ADAROUND_DAMP)
        else:
            result = gptq_quantize(target, h, qmin, qmax, scales=scales,
                                   group_size=group_size, group_scale=group_scale,
                                   damp=self.damp)
            if refit and not group_size and (qmin, qmax) == (-1, 1):  # ternary: scale in the loop
                if split is None and not (about and corrected is not None):  # else tried
                    split = self._float_split(entry)
                folds = _folds(split, corrected, centred=self.centred, about=about)
                result = refit_rounds(target, h, qmin, qmax, result, damp=self.damp,
                                      folds=folds)
                refitted = True  # its scales are `refit_scales`' for its codes already
        out_scales = result.scales
        if refit and not group_size and not refitted:
            out_scales = refit_scales(target, result.codes, out_scales, h)
        self.solved.append(", ".join(entry.layers))
        per_value = np.repeat(out_scales, group_size, axis=1) if group_size \
            else out_scales[:, None]
        if self.sequential:  # every method: the bias shifted as the export will shift it
            self._round_in_copy(entry, rows, result.codes * per_value, np.shape(w), axis,
                                group_size)
        self.seconds += time.perf_counter() - start
        return out_scales.astype(np.float32), _from_rows(result.codes, np.shape(w), axis)

    @staticmethod
    def _adaround(target: np.ndarray, h: np.ndarray, qmin: int, qmax: int,
                  scales: np.ndarray | None, group_size: int, group_scale: ScaleFn | None,
                  damp: float) -> GptqResult:
        """AdaRound codes at the given per-channel scales, or per group at each group's scale
        from `group_scale` on the (compensated) weights."""
        out, per_value = _scales_for(target, scales, group_size, group_scale, "AdaRound")
        return GptqResult(adaround_quantize(target, h, qmin, qmax, per_value, damp=damp).codes,
                          out)

    def _auto(self, entry: LayerHessian, target: np.ndarray, h: np.ndarray,
              mean: np.ndarray | None, split: Split | None, qmin: int, qmax: int,
              scales: np.ndarray | None, group_size: int, group_scale: ScaleFn | None,
              refit: bool) -> tuple[GptqResult, np.ndarray]:
        """Method "auto": every candidate of `method_choice.CANDIDATES` solved on one half of
        the layer's samples and scored on the other (`split`); the winner solved with all of
        them. Where the bias correction removes the output error's mean (`mean`: the layer's
        mean input row, else None) each candidate is also solved for the centred H
        (names ending "-centred"): H = 2 E[(x - v)(x - v)^T], v the rewrite's correction
        vector (the float input's channel means tiled over the taps, `_row_vector`: at padded
        positions the rows hold zeros and the correction still subtracts v), and every
        candidate is scored by the error left on the held-out half after the correction fitted
        on the first half, 2 E_b[(x - v_a)(x - v_a)^T] (`_about`). Returns the codes and the H
        they were solved with (for the scale refit).
        Without a split (a weight shared by two layers, no samples): GPTQ."""
        def candidate(name: str, hh: np.ndarray) -> GptqResult:
            if name == "adaround":
                return self._adaround(target, hh, qmin, qmax, scales, group_size, group_scale,
                                      ADAROUND_DAMP)
            if name == "rtn":
                return _nearest(target, qmin, qmax, scales, group_size, group_scale)
            damp = self.damp * (10.0 if name == "gptq-d10" else 1.0)
            res = gptq_quantize(target, hh, qmin, qmax, scales=scales, group_size=group_size,
                                group_scale=group_scale, damp=damp)
            if name == "gptq-iter" and refit and not group_size:
                again = refit_scales(target, res.codes, res.scales, hh)
                res = gptq_quantize(target, hh, qmin, qmax, scales=again, damp=damp)
            return res

        def solved(name: str, hh: np.ndarray) -> Solve:
            def solve() -> tuple[np.ndarray, np.ndarray]:
                res = candidate(name, hh)
                out = res.scales
                if refit and not group_size:
                    out = refit_scales(target, res.codes, out, hh)
                per_value = np.repeat(out, group_size, axis=1) if group_size else out[:, None]
                return res.codes, per_value
            return solve

        names = [n for n in CANDIDATES if not (n == "gptq-iter" and (group_size or not refit))]
        if split is None:
            return candidate("gptq", h), h
        fit, check, fit_mean, check_mean, fit_v, all_v = split
        solves = {n: solved(n, fit) for n in names}
        if mean is not None:
            centred_fit = _about(fit, fit_mean, fit_v)
            solves.update({f"{n}{CENTRED}": solved(n, centred_fit) for n in names})
            # the held-out half's inputs less the fit half's correction vector
            check = _about(check, check_mean, fit_v)
        choice = held_out_choice(", ".join(entry.layers), target, solves, check)
        self.choices.append(choice)
        name = choice.chosen.removesuffix(CENTRED)
        if choice.chosen != name:
            assert mean is not None
            h = _about(h, mean, all_v)
        return candidate(name, h), h

    def _float_split(self, entry: LayerHessian) -> Split | None:
        """H of the float model's inputs to the layer from alternate calibration samples (the
        ones the Hessian pass kept, else a run of the float model): the held-out split of a
        layer solved for its float inputs."""
        if len(entry.ops) != 1 or self.samples is None:
            return None
        op = entry.ops[0]
        kept = self.float_inputs.get(id(op))
        if kept:
            values: Iterator[np.ndarray] = iter(kept)
        elif self.model is not None and op.inputs and op.inputs[0] is not None:
            values = self._float_values(op.inputs[0], self.samples)
        else:
            return None
        rule = OP_RULES[op.type]
        w = op.inputs[rule.weight].numpy()  # type: ignore[index,union-attr]
        halves = [_Accumulator(op, w, entry.hessian.shape[-1], entry.hessian.shape)
                  for _ in range(2)]
        per_sample = max(1, -(-self.max_rows // min(len(self.samples), COMPENSATION_SAMPLES)))
        rng = np.random.default_rng(self.seed)
        channels = [_ChannelMean(), _ChannelMean()]
        for i, value in enumerate(values):
            halves[i % 2].add(value, per_sample, rng)
            channels[i % 2].add(value)
            if halves[0].rows + halves[1].rows >= self.max_rows:
                break
        a, b = halves
        if not a.rows or not b.rows:
            return None
        return _split(op, entry, a, b, channels)

    # ------------------------------------------------------------ upstream compensation
    def _round_in_copy(self, entry: LayerHessian, rows: np.ndarray, deq_rows: np.ndarray,
                       shape: tuple[int, ...], axis: int, group_size: int = 0) -> None:
        """Put the rounded weights into the float model's copy the next layers run on, with
        each op's bias shifted as the rewrite's analytic bias correction will shift it
        (`int8._bias_shift`): by the weight error times the export's channel means of the
        op's float input, tiled over the taps (`_row_vector`; `input_means`), and not at all
        where the export does not correct (bias_correction="none", per-group scales, a layer
        without calibration means). Before this every method but "gptq" on a convolution
        shifted by the rows' mean, which at padded taps is not what the export writes (stop
        27, area F): auto and AdaRound fitted later layers against biases no file had."""
        if self.model is None or not entry.ops:
            return
        if self._rounded is None:
            self._rounded = copy.deepcopy(self.model, self._memo)
        if self._upstream is not None:
            self._upstream.invalidate([self._memo[id(op)] for op in entry.ops])  # type: ignore
        deq = _from_rows(deq_rows, shape, axis).astype(np.float32)
        for op, channel_mean in zip(entry.ops, self._export_means(entry), strict=True):
            rule = OP_RULES[op.type]
            t = self._memo[id(op.inputs[rule.weight])]  # type: ignore[index]
            t.data = deq.reshape(t.shape)  # type: ignore[attr-defined]
            bias = op.inputs[rule.bias] if rule.bias is not None and rule.bias < len(op.inputs) \
                else None
            if not self.bias_corrected or group_size or channel_mean is None or bias is None \
                    or not bias.is_constant or bias.dtype is not DType.FLOAT32:
                continue
            v = _row_vector(op, entry.hessian.shape, channel_mean)
            shift = ((deq_rows - rows) * v).sum(axis=1)
            if bias.numpy().size == shift.size:
                b = self._memo[id(bias)]
                b.data = (bias.numpy().astype(np.float64) - shift).astype(  # type: ignore
                    np.float32).reshape(bias.shape)

    def _export_means(self, entry: LayerHessian) -> list[np.ndarray | None]:
        """Per op of the layer: the channel means of its float input the export's bias
        correction uses (`input_means`), else the Hessian pass's over this solver's samples."""
        if self.input_means is None:
            means: list[np.ndarray | None] = list(entry.channel_means)
            return means + [None] * (len(entry.ops) - len(means))
        out: list[np.ndarray | None] = []
        for op in entry.ops:
            m = self.input_means.get(op.inputs[0]) if op.inputs[0] is not None else None
            out.append(None if m is None else np.asarray(m, np.float64))
        return out

    def _compensated(self, entry: LayerHessian, rows: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, Split | None, np.ndarray] | None:
        """(H of the rounded-so-far model's inputs, the weights W' that best reproduce the float
        layer's outputs from them, the two halves of the samples (`Split`) or None, the mean
        input row), or None where the correction is not trustworthy.

        The rounded copy runs cut down to what computes this layer's input (its only output),
        over the first samples until `max_rows` rows;
        the float inputs at the same positions come from `float_inputs` (kept by the Hessian
        pass), or, for a layer it could not keep, from a run of the float model."""
        assert self.model is not None and self.samples is not None and self._rounded is not None
        op = entry.ops[0]
        x = op.inputs[0]
        xq = self._memo.get(id(x))
        cut = _upto(self._rounded, xq) if isinstance(xq, Tensor) else None
        if x is None or cut is None:
            return None  # the layer reads a graph input: nothing upstream was rounded
        samples = self.samples
        kept = self.float_inputs.get(id(op))
        float_values = iter(kept) if kept else self._float_values(x, samples)
        rule = OP_RULES[op.type]
        w = op.inputs[rule.weight].numpy()  # type: ignore[union-attr]
        halves = [_Accumulator(op, w, entry.hessian.shape[-1], entry.hessian.shape)
                  for _ in range(2)]  # alternate samples: fit on one, check on the other
        per_sample = max(1, -(-self.max_rows // min(len(samples), COMPENSATION_SAMPLES)))
        rng = np.random.default_rng(self.seed)
        channels = [_ChannelMean(), _ChannelMean()]  # of the float inputs (the rewrite's)
        taken = 0
        for parts in self._rounded_inputs(cut, xq, halves[0], per_sample):
            if parts is None:
                return None
            for xq_value in parts:
                xf_value = next(float_values, None)
                if xf_value is None or xf_value.shape != xq_value.shape:
                    break
                if not np.all(np.isfinite(xq_value)):
                    return None  # the rounded copy overflowed upstream: plain GPTQ here
                halves[taken % 2].add(xq_value, per_sample, rng, x_float=xf_value)
                channels[taken % 2].add(xf_value)
                taken += 1
                if halves[0].rows + halves[1].rows >= self.max_rows:
                    break
            else:
                continue
            break
        a, b = halves
        n = a.rows + b.rows
        if n == 0 or a.cross is None:
            return None
        damp: float | None = self.damp
        if b.cross is not None and b.rows:
            damp = _validated_damp(_centred([a]), _centred([b]), rows,
                                   tuple(self.damp * f for f in COMPENSATION_RIDGES))
            if damp is None:
                self.declined.append(", ".join(entry.layers))
                return None
        correction = _correction(_centred(halves), rows, damp)
        if correction is None:
            return None
        split = _split(op, entry, a, b, channels) if a.rows and b.rows else None
        return 2.0 * (a.h + b.h) / n, rows + correction, split, (a.sum_q + b.sum_q) / n

    def _rounded_inputs(self, cut: Model, xq: Tensor, acc: _Accumulator, per_sample: int
                        ) -> Iterator[list[np.ndarray] | None]:
        """The rounded copy's tensor `xq` per calibration sample, in batches (None: a batch
        whose first axis is not the samples'): from `UpstreamCache` (only the ops since the
        last layer's input run) for the first samples until `max_rows` rows, or, where the
        graph cannot be cut so, from a run of `cut` (the whole prefix) over every sample."""
        from sdk.converters.tflite import serialize
        from sdk.run.runner import LiteRTRunner

        assert self.samples is not None and self._rounded is not None
        if (self._upstream is None and not self._upstream_failed
                and UpstreamCache.supported(self._rounded)):
            self._upstream = UpstreamCache(self._rounded, self.samples,
                                           default_budget().memory_bytes // 4)
        if self._upstream is not None:
            shape = np.broadcast_to(np.float32(0), xq.shape)
            count, rows = 0, 0
            while count < len(self.samples) and rows < self.max_rows:
                rows += acc.rows_taken(shape, per_sample)
                count += 1
            try:
                values = self._upstream.tensor_values(xq, count)
            except (ConversionError, ValueError, RuntimeError):
                self._upstream = None  # this graph cannot be cut so: whole prefixes from now
                self._upstream_failed = True
            else:
                yield values
                return
        # builtin kernels, as the float inputs were computed: X_f - X_q is the rounding's alone
        # (XNNPACK's float sums differ in the last bits, and AdaRound's codes follow them:
        # openWakeWord embedding INT4 worst output 18.85 dB with it, 19.05 without)
        rounded_run = LiteRTRunner(serialize(cut)[0], reference=True)
        rounded_run.check_batching(self.samples)
        out_index = rounded_run.outputs[0].index
        for count, _outs in rounded_run.run(self.samples):
            yield _per_sample(rounded_run.tensor(out_index), count)

    def _float_values(self, x: Tensor, samples: SampleSet) -> Iterator[np.ndarray]:
        """The float model's input `x`, one array per sample (a run of the whole float model
        with its intermediates kept: for layers whose inputs the Hessian pass did not keep)."""
        from sdk.converters.tflite import serialize
        from sdk.run.runner import LiteRTRunner

        assert self.model is not None
        if self._float_run is None:
            data, maps = serialize(self.model)
            self._float_run = (LiteRTRunner(data, reference=True, preserve_all_tensors=True),
                               maps[0])
        float_run, float_index = self._float_run
        if x not in float_index:
            return
        for count, _outs in float_run.run(samples):
            parts = _per_sample(float_run.tensor(float_index[x]), count)
            if parts is None:
                return
            yield from parts


def _centre(h: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """2 Cov(X) from H = 2 E[X X^T] and the mean row (per channel for depthwise): the output
    error dW x has mean dW E[x], which the rewrite's analytic bias correction removes, so what
    stays is dW (x - E[x]), whose squared norm is tr(dW Cov dW^T). Solving with the uncentred H
    spends the codes on the mean term (large after a ReLU, rank one) that the bias fixes."""
    m = np.asarray(mean, np.float64)
    return h - 2.0 * m[..., :, None] * m[..., None, :]


def _biased(entry: LayerHessian) -> bool:
    """Whether every op of the layer has a constant bias, which the analytic bias correction
    adjusts for the mean shift its weight error causes (no bias: the shift stays)."""
    def has(op: Operator) -> bool:
        rule = OP_RULES[op.type]
        b = op.inputs[rule.bias] if rule.bias is not None and rule.bias < len(op.inputs) \
            else None
        return b is not None and b.is_constant
    return bool(entry.ops) and all(has(op) for op in entry.ops)


@dataclass
class _ChannelMean:
    """The mean of each input channel (last axis) over every position of the tensors added:
    what the rewrite's analytic bias correction multiplies the weight error by."""

    total: np.ndarray | None = None
    count: int = 0

    def add(self, x: np.ndarray) -> None:
        flat = np.asarray(x, np.float64).reshape(-1, x.shape[-1])
        self.total = flat.sum(axis=0) + (0.0 if self.total is None else self.total)
        self.count += len(flat)

    @staticmethod
    def merged(parts: list[_ChannelMean]) -> np.ndarray:
        return sum(p.total for p in parts if p.total is not None) / sum(p.count for p in parts)


def _row_vector(op: Operator, shape: tuple[int, ...], channel_mean: np.ndarray) -> np.ndarray:
    """The bias correction's input vector in the layer's row space (H of `shape`): the channel
    means tiled over the kernel taps (CONV_2D rows are (KH, KW, Cin)), per output channel for
    depthwise ([C, taps]). At padded positions the rows hold zeros where the rewrite still
    subtracts the mean: `_about` with this vector counts that."""
    m = np.asarray(channel_mean, np.float64)
    if m.size == shape[-1]:
        return m
    if op.type == "FULLY_CONNECTED":  # the rewrite corrects nothing there (`int8._bias_shift`)
        return np.zeros(shape[-1])
    if op.type == "CONV_2D":
        return np.tile(m, shape[-1] // m.size)
    c_out, taps = shape[0], shape[-1]
    return np.repeat(m, c_out // m.size)[:, None] * np.ones(taps)


def _about(h: np.ndarray, mean: np.ndarray, v: np.ndarray) -> np.ndarray:
    """2 E[(x - v)(x - v)^T] from H = 2 E[x x^T] and the rows' mean: the output error dW x
    less the bias correction's dW v (v = the rows' own mean: 2 Cov, `_centre`)."""
    m = np.asarray(mean, np.float64)
    v = np.asarray(v, np.float64)
    return h - 2.0 * (v[..., :, None] * m[..., None, :] + m[..., :, None] * v[..., None, :]
                      - v[..., :, None] * v[..., None, :])


def _folds(split: Split | None, corrected: np.ndarray | None, *, centred: bool, about: bool
           ) -> tuple[np.ndarray, np.ndarray] | None:
    """The two halves' H of `split` in the metric the layer is solved in (`WeightSolver._solve`:
    centred on their own mean rows, or about the correction vector of both halves, where the
    layer's H is), for `refit_rounds`' held-out choice; None without a split."""
    if split is None:
        return None
    a, b, mean_a, mean_b, _, v = split
    if corrected is not None and centred:
        return _centre(a, mean_a), _centre(b, mean_b)
    if corrected is not None and about:
        return _about(a, mean_a, v), _about(b, mean_b, v)
    return a, b


def _split(op: Operator, entry: LayerHessian, a: _Accumulator, b: _Accumulator,
           channels: list[_ChannelMean]) -> Split:
    """The two halves' H and mean rows, and the bias correction's vector from the first half's
    float inputs and from both (see `Split`)."""
    shape = entry.hessian.shape
    return (2.0 * a.h / a.rows, 2.0 * b.h / b.rows, a.sum_q / a.rows, b.sum_q / b.rows,
            _row_vector(op, shape, _ChannelMean.merged(channels[:1])),
            _row_vector(op, shape, _ChannelMean.merged(channels)))


def _centred(accs: list[_Accumulator]) -> tuple[np.ndarray, np.ndarray]:
    """(centred X_q^T X_q / n, centred X_q^T X_f / n) of the accumulators' rows together."""
    n = sum(a.rows for a in accs)
    h = sum(a.h for a in accs) / n
    cross = sum(a.cross for a in accs if a.cross is not None) / n
    mq = sum(a.sum_q for a in accs) / n
    mf = sum(a.sum_f for a in accs if a.sum_f is not None) / n
    return (h - mq[..., :, None] * mq[..., None, :],
            cross - mq[..., :, None] * mf[..., None, :])


def _correction(stats: tuple[np.ndarray, np.ndarray], rows: np.ndarray, damp: float
                ) -> np.ndarray | None:
    """W' - W for W' = argmin ||X_f W^T - X_q W'^T|| (ridge `damp` x mean diagonal), or None
    where it is not finite or moves W by more than half its norm."""
    hc, cc = stats
    k = hc.shape[-1]
    idx = np.arange(k)
    reg = hc.copy()
    diag = reg[..., idx, idx]
    reg[..., idx, idx] = diag + damp * diag.mean(axis=-1, keepdims=True) + 1e-12
    try:
        m = np.linalg.solve(reg, cc - hc)  # M^T (reg is symmetric), M = (C^T - H) reg^-1
    except np.linalg.LinAlgError:
        return None
    m = np.swapaxes(m, -1, -2)
    correction = _times(rows, m)
    if not np.all(np.isfinite(correction)) or \
            np.linalg.norm(correction) > 0.5 * np.linalg.norm(rows):
        return None
    return correction


def _validated_damp(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray],
                    rows: np.ndarray, damps: tuple[float, ...]) -> float | None:
    """The ridge (fraction of the mean diagonal, one of `damps`) whose correction, fitted on one
    half of the rows and scored on the other (both ways), lowers the output error most; None
    where none lowers it. The correction has K unknowns per channel: where the rows cannot pin
    them down (a dense layer of K = 64 on 64 samples: openWakeWord's hey_mycroft, INT4 GPTQ
    worst output 6.0 dB, rounded to nearest 13.3) it fits their noise."""
    base = _fit_error(b, rows, rows) + _fit_error(a, rows, rows)
    best, best_err = None, base
    for damp in damps:
        fit_a, fit_b = _correction(a, rows, damp), _correction(b, rows, damp)
        if fit_a is None or fit_b is None:
            continue
        err = _fit_error(b, rows + fit_a, rows) + _fit_error(a, rows + fit_b, rows)
        if err < best_err:
            best, best_err = damp, err
    return best


def _fit_error(stats: tuple[np.ndarray, np.ndarray], v: np.ndarray, w: np.ndarray) -> float:
    """||X_q V^T - X_f W^T||^2 / n on centred inputs, up to the constant tr(W X_f^T X_f W^T)."""
    hc, cc = stats
    return error_power(v, hc) - 2 * float((_times(v, cc) * w).sum())


def gptq_layers(model: Model) -> list[Operator]:
    out = []
    for op in model.main.operators:
        if op.type not in GPTQ_OPS:
            continue
        rule = OP_RULES[op.type]
        w = op.inputs[rule.weight] if rule.weight is not None and rule.weight < len(op.inputs) \
            else None
        x = op.inputs[0] if op.inputs else None
        if w is None or x is None or not w.is_constant or w.dtype is not DType.FLOAT32:
            continue
        out.append(op)
    return out


def collect_hessians(model: Model, samples: SampleSet, *, max_rows: int = DEFAULT_MAX_ROWS,
                     memory_bytes: int | None = None, seed: int = 0,
                     notes: list[str] | None = None,
                     keep_inputs: dict[int, list[np.ndarray] | None] | None = None
                     ) -> dict[tuple[tuple[int, ...], str], LayerHessian]:
    """Run the float `model` over `samples` (LiteRT, intermediates kept) and build each weighted
    layer's input Hessian (see the module docstring), keyed by `weight_key` of its weights.

    `keep_inputs` (a dict to fill, keyed by id(op)): each layer's float input tensors, one per
    calibration sample (float32), for as many samples as the sequential compensation will read
    (`max_rows` rows at `COMPENSATION_SAMPLES`' rate), so that it need not run the float model
    again per layer; kept while they fit in what the Hessians leave of half the memory budget
    (a layer past it gets None: the compensation then runs the float model for it)."""
    from sdk.converters.tflite import serialize
    from sdk.run.runner import LiteRTRunner

    if len(samples) == 0:
        raise CalibrationError("GPTQ needs calibration samples: the calibration set is empty")
    notes = notes if notes is not None else []
    cap = (memory_bytes if memory_bytes is not None else default_budget().memory_bytes) // 2
    data, maps = serialize(model)
    index = maps[0]
    accs: list[_Accumulator] = []
    used = 0
    for op in gptq_layers(model):
        rule = OP_RULES[op.type]
        w = op.inputs[rule.weight].numpy()  # type: ignore[index,union-attr]
        x = op.inputs[0]
        assert x is not None
        if x not in index:
            continue
        shape = _hessian_shape(op, w, x)
        if isinstance(shape, str):
            notes.append(f"{layer_name(op)}: no GPTQ ({shape}; rounded to nearest)")
            continue
        hshape, k = shape
        nbytes = 8 * math.prod(hshape)
        if used + nbytes > cap:
            notes.append(f"{layer_name(op)}: no GPTQ (its input Hessian needs {nbytes:,} bytes, "
                         f"past half the memory budget of {2 * cap:,} bytes; rounded to "
                         "nearest; raise EDGESDK_MEMORY_BUDGET to include it)")
            continue
        used += nbytes
        accs.append(_Accumulator(op, w, k, hshape))
    if not accs:
        return {}
    runner = LiteRTRunner(data, reference=True, preserve_all_tensors=True)
    runner.check_batching(samples)
    per_sample = max(1, -(-max_rows // len(samples)))
    comp_per_sample = max(1, -(-max_rows // min(len(samples), COMPENSATION_SAMPLES)))
    kept_rows = {id(acc.op): 0 for acc in accs}
    channels = {id(acc.op): _ChannelMean() for acc in accs}  # calibration's means, per layer
    if keep_inputs is not None:
        keep_inputs.update({id(acc.op): [] for acc in accs})
    rng = np.random.default_rng(seed)
    for count, _outs in runner.run(samples):
        for acc in accs:
            x = acc.op.inputs[0]
            assert x is not None
            value = runner.tensor(index[x])
            if not np.all(np.isfinite(value)):
                raise CalibrationError(f"GPTQ: {layer_name(acc.op)}'s input holds NaN or inf on "
                                       "the calibration samples")
            acc.add(value, per_sample, rng)
            channels[id(acc.op)].add(value)
            if keep_inputs is not None and keep_inputs.get(id(acc.op)) is not None \
                    and kept_rows[id(acc.op)] < max_rows:
                parts = _per_sample(value, count)
                size = sum(p.size * 4 for p in parts) if parts is not None else 0
                if parts is None or used + size > cap:
                    keep_inputs[id(acc.op)] = None  # the compensation runs the float model
                    continue
                used += size
                keep_inputs[id(acc.op)].extend(parts)  # type: ignore[union-attr]
                kept_rows[id(acc.op)] += sum(acc.rows_taken(p, comp_per_sample) for p in parts)
    out: dict[tuple[tuple[int, ...], str], LayerHessian] = {}
    for acc in accs:
        if acc.rows == 0:
            continue
        h = 2.0 * acc.h / acc.rows
        key = weight_key(acc.weight)
        name = layer_name(acc.op)
        if key in out and out[key].hessian.shape == h.shape:
            out[key].hessian = out[key].hessian + h  # one weight tensor read by two layers
            out[key].layers.append(name)
            out[key].ops.append(acc.op)
            out[key].rows += acc.rows
            out[key].channel_means.append(_ChannelMean.merged([channels[id(acc.op)]]))
        else:
            out[key] = LayerHessian([name], acc.op.type, h, acc.rows, [acc.op],
                                    acc.sum_q / acc.rows,
                                    [_ChannelMean.merged([channels[id(acc.op)]])])
    return out


def weight_solver(method: str | None, model: Model, samples: SampleSet, *,
                  bias_corrected: bool = True,
                  input_means: dict[Tensor, np.ndarray] | None = None,
                  **kwargs: object) -> WeightSolver:
    """What `sdk.export` wraps the INT8 rewrite in: for "gptq", "adaround" and "auto", the
    Hessians of `model`'s layers on `samples` (timed); for any other method an inactive solver.
    `bias_corrected`: the export's bias correction is on (see `WeightSolver.bias_corrected`);
    `input_means`: the export's channel means (calibration's, see `WeightSolver.input_means`)."""
    solver = WeightSolver(method, model=model, samples=samples, bias_corrected=bias_corrected,
                          input_means=input_means)
    if method not in SOLVER_METHODS:
        return solver
    start = time.perf_counter()
    solver.hessians = collect_hessians(model, samples, notes=solver.notes,
                                       keep_inputs=solver.float_inputs,
                                       **kwargs)  # type: ignore[arg-type]
    solver.seconds += time.perf_counter() - start
    return solver


@contextmanager
def gptq_context(model: Model, samples: SampleSet, **kwargs: object) -> Iterator[WeightSolver]:
    """`with gptq_context(float_model, samples): quantize_int8(..., weight_method="gptq")`."""
    solver = weight_solver("gptq", model, samples, **kwargs)
    with solver:
        yield solver


__all__ = ["DEFAULT_DAMP", "DEFAULT_MAX_ROWS", "GPTQ_OPS", "GptqResult", "LayerHessian",
           "WeightSolver", "active_solver", "collect_hessians", "gptq_context", "gptq_quantize",
           "output_error", "patches", "refit_scales", "weight_key", "weight_solver"]
