"""Weight formats: how the constant weights of FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D /
TRANSPOSE_CONV are quantised.

A `WeightFormat` names a storage type (INT8 here; issue 4 registers INT4, ternary and INT2) and
turns float weights plus the per-channel axis TFLite expects into integer codes and their
`QuantParams`. The INT8 quantiser asks the precision plan which format a layer uses and looks it
up in `WEIGHT_FORMATS`; new formats plug in with `register_weight_format` without touching the
graph rewrite.

INT8 follows TFLite's spec: symmetric (zero point 0), narrow range [-127, 127], one scale per
output channel: axis 0 for CONV_2D / FULLY_CONNECTED / TRANSPOSE_CONV ([O, ...]), axis 3 for
DEPTHWISE_CONV_2D ([1, H, W, O]).

Methods (`sdk.export(weight_method=...)`): ``minmax`` (scale from the absolute maximum), ``mse``
(clipping searched per channel for the least squared weight error), ``rtn`` (round to nearest
with the MSE-searched scales: ``mse`` under the name the GPTQ comparison uses), ``gptq``
(the same scales, codes chosen by GPTQ from the layer's calibration inputs, see
`sdk.converters.quantize.gptq`) and ``adaround`` (the same scales, codes learned by AdaRound,
`sdk.converters.quantize.adaround`); without a Hessian for the weights, e.g. outside
`sdk.export`, those two are ``rtn``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sdk.converters.ir import DType, QuantParams
from sdk.converters.quantize.ranges import symmetric_scales
from sdk.converters.quantize.solver import active_solver

WEIGHT_METHODS = ("minmax", "mse", "rtn", "gptq", "adaround", "auto")
#: methods whose scales come from the per-channel MSE search
MSE_METHODS = ("mse", "rtn", "gptq", "adaround", "auto")
#: methods whose codes the active weight solver chooses from the layer's calibration inputs
#: ("auto": per layer the one of rtn / gptq / adaround that does best on held-out samples,
#: `sdk.converters.quantize.method_choice`)
SOLVER_METHODS = ("gptq", "adaround", "auto")


@dataclass(frozen=True)
class QuantizedWeights:
    values: np.ndarray  # integer codes, the IR's numpy type for `dtype` (unpacked if sub-byte)
    quant: QuantParams
    dtype: DType


@dataclass(frozen=True)
class WeightFormat:
    """One way of storing weights. `quantize(w, axis, method)` returns codes and parameters."""

    name: str
    dtype: DType
    qmin: int
    qmax: int
    quantize: Callable[[np.ndarray, int, str], QuantizedWeights]
    description: str = ""
    #: the method used when the caller names none (sdk.export(weight_method=None))
    default_method: str = "minmax"
    #: > 0: one scale per block of this many reduction elements (block-wise formats)
    block_size: int = 0


WEIGHT_FORMATS: dict[str, WeightFormat] = {}


def register_weight_format(fmt: WeightFormat) -> WeightFormat:
    WEIGHT_FORMATS[fmt.name] = fmt
    return fmt


def weight_format(name: str) -> WeightFormat:
    try:
        return WEIGHT_FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown weight format {name!r}; known: {sorted(WEIGHT_FORMATS)}") \
            from None


def channel_absmax(w: np.ndarray, axis: int) -> np.ndarray:
    moved = np.moveaxis(np.asarray(w, np.float32), axis, 0)
    return np.abs(moved.reshape(moved.shape[0], -1)).max(axis=1) if moved.size else \
        np.zeros(moved.shape[0], np.float32)


def quantize_with_scales(w: np.ndarray, axis: int, scales: np.ndarray, qmin: int,
                         qmax: int) -> np.ndarray:
    """Round w / scale (per channel along `axis`) to integers in [qmin, qmax]."""
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.round(np.asarray(w, np.float64) / np.asarray(scales, np.float64).reshape(shape))
    return np.clip(q, qmin, qmax)


def symmetric_per_channel(w: np.ndarray, axis: int, qmax: int, method: str = "minmax",
                          qmin: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel scales and codes. `mse` (and `rtn`, `gptq`) shrinks each channel's
    clipping range (down to 50 % of its absolute maximum) where that lowers the channel's squared
    error; `gptq` then lets the active GPTQ solver choose the codes (`channel_codes`)."""
    check_method(method)
    qmin = -qmax if qmin is None else qmin
    w = np.asarray(w, np.float32)
    absmax = channel_absmax(w, axis)
    scales = symmetric_scales(absmax, qmax)
    if method in MSE_METHODS and w.size:
        scales = _mse_scales(w, axis, absmax, scales, qmin, qmax)
    return channel_codes(w, axis, scales, qmin, qmax, method)


#: the MSE scale search's scales by (the weights' digest, shape, axis, qmin, qmax): the same
#: weights searched again get them without the 50 trial roundings (a sub-byte export searches
#: each layer twice, for its plan's weight SQNR and in the rewrite; a mixed-precision search
#: does it in each of its 10-40 exports: on ddddocr_rec the search was 167 of an INT4 export's
#: 203 s). A few thousand entries of per-channel scales; the oldest go first.
_MSE_SCALES: dict[tuple[object, ...], np.ndarray] = {}
MSE_SCALES_KEPT = 4096


def _mse_scales(w: np.ndarray, axis: int, absmax: np.ndarray, scales: np.ndarray, qmin: int,
                qmax: int) -> np.ndarray:
    """Per channel, the scale among 50-100 % of the absolute maximum (and `scales`, the
    absmax one) with the least squared rounding error; cached (`_MSE_SCALES`)."""
    key = (hashlib.blake2b(np.ascontiguousarray(w).tobytes(), digest_size=16).digest(),
           w.shape, axis, qmin, qmax)
    known = _MSE_SCALES.get(key)
    if known is not None:
        return known.copy()
    moved = np.moveaxis(w, axis, 0).reshape(absmax.size, -1).astype(np.float64)
    best = scales.astype(np.float64)
    best_err = _channel_error(moved, best, qmin, qmax)
    for f in np.linspace(0.5, 1.0, 51)[:-1]:
        cand = np.where(absmax > 0, absmax * f / qmax, best)
        err = _channel_error(moved, cand, qmin, qmax)
        better = err < best_err
        best = np.where(better, cand, best)
        best_err = np.where(better, err, best_err)
    found = best.astype(np.float32)
    while len(_MSE_SCALES) >= MSE_SCALES_KEPT:
        _MSE_SCALES.pop(next(iter(_MSE_SCALES)))
    _MSE_SCALES[key] = found.copy()
    return found


def check_method(method: str) -> None:
    if method not in WEIGHT_METHODS:
        raise ValueError(f"unknown weight method {method!r}; choose one of {WEIGHT_METHODS}")


def channel_codes(w: np.ndarray, axis: int, scales: np.ndarray, qmin: int, qmax: int,
                  method: str, *, refit: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(scales, codes) for per-channel `scales`: rounded to nearest, or for methods "gptq" and
    "adaround" chosen by the active weight solver (which also refits the scales unless `refit`
    is False) when it holds a Hessian for these weights."""
    if method in SOLVER_METHODS:
        solver = active_solver()
        solved = None if solver is None else solver.solve(
            w, axis, qmin, qmax, scales=np.asarray(scales, np.float64), refit=refit)
        if solved is not None:
            return solved
    return scales, quantize_with_scales(w, axis, scales, qmin, qmax)


def _channel_error(moved: np.ndarray, scales: np.ndarray, qmin: int, qmax: int) -> np.ndarray:
    s = scales[:, None]
    q = np.clip(np.round(moved / s), qmin, qmax)
    return ((q * s - moved) ** 2).sum(axis=1)


def _int8(w: np.ndarray, axis: int, method: str) -> QuantizedWeights:
    scales, q = symmetric_per_channel(w, axis, 127, method)
    return QuantizedWeights(q.astype(np.int8), QuantParams.per_channel(scales, axis), DType.INT8)


INT8 = register_weight_format(WeightFormat(
    "int8", DType.INT8, -127, 127, _int8,
    "symmetric per-channel int8 in [-127, 127] (TFLite's weight scheme)"))

# the sub-byte formats (int4, int4b32, ternary, int2, ...) register themselves from lowbit.py


def per_tensor_symmetric(w: np.ndarray, qmax: int = 127) -> tuple[np.ndarray, QuantParams]:
    """One symmetric scale for the whole tensor (BATCH_MATMUL's constant operand)."""
    absmax = float(np.abs(w).max()) if w.size else 0.0
    scale = float(symmetric_scales(np.array([absmax]), qmax)[0])
    q = np.clip(np.round(np.asarray(w, np.float64) / scale), -qmax, qmax).astype(np.int8)
    return q, QuantParams.per_tensor(scale, 0)
