"""The native low-bit kernels from Python: pack weights, run FC / conv / depthwise plans.

Thin, typed wrappers over `sdk._native` (C++: native/include/edge/kernels, native/include/edge/
packing). Activations are int8 with a per-tensor (scale, zero point); weights are int8, int4,
ternary or 2-bit with per-channel scales (and optional per-group scales along K). Outputs are
int8 (TFLite's requantisation, bit-exact on every ISA), float32 or the raw int32 accumulators::

    from sdk import kernels
    w = kernels.pack(q_weights, "ternary", scales)            # q in {-1, 0, 1}, shape [n, k]
    fc = kernels.FullyConnected(w, input=kernels.Quant(0.02, -3), output=kernels.Quant(0.1, 5),
                                bias=bias_int32, activation="relu")
    y = fc(x_int8)                                            # [m, n] int8
    fc.isa, fc.kernel_name(1)                                 # 'avx2', 'qs8_qc2w_gemm_1x16c4__avx2'

The ISA is the best one the CPU runs unless `isa=` or $EDGE_KERNEL_ISA names one; naming one
this build or CPU lacks raises IsaUnavailableError. Int8 requantisation follows one of LiteRT's
three rules (native/include/edge/kernels/requant.h): `rounding="upward"` (default) = LiteRT's
optimised builtin kernels; `"away_from_zero"` = its reference CONV_2D / DEPTHWISE_CONV_2D;
`"single"` = its reference FULLY_CONNECTED (and TFLITE_SINGLE_ROUNDING builds).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sdk.base.errors import IsaUnavailableError, KernelError
from sdk.base.native import load

WeightType = Literal["int8", "int4", "ternary", "int2"]
OutputType = Literal["int8", "float32", "int32"]
Rounding = Literal["upward", "away_from_zero", "single"]
Activation = Literal["none", "relu", "relu6", "relu_n1_to_1"]
Padding = Literal["same", "valid"] | tuple[int, int, int, int]

WEIGHT_TYPES: tuple[str, ...] = ("int8", "int4", "ternary", "int2")
#: the integer range of TFLite's quantised values q per weight type
VALUE_RANGES: dict[str, tuple[int, int]] = {
    "int8": (-128, 127), "int4": (-8, 7), "ternary": (-1, 1), "int2": (-2, 1),
}
#: K elements per 64-byte block of the packed layout (group sizes must be multiples)
BLOCK_K: dict[str, int] = {"int8": 4, "int4": 8, "ternary": 16, "int2": 16}


@dataclass(frozen=True)
class Quant:
    """Per-tensor quantisation of an int8 tensor: real = scale * (q - zero_point)."""

    scale: float
    zero_point: int = 0


@contextlib.contextmanager
def _native_errors(what: str) -> Iterator[None]:
    """Re-raise the native module's errors as edgesdk's, naming the operation."""
    native = load()
    try:
        yield
    except native.IsaUnavailableError as exc:
        raise IsaUnavailableError(f"{what}: {exc}") from exc
    except (ValueError, IndexError) as exc:
        raise KernelError(f"{what}: {exc}") from exc


def _int_array(name: str, values: Any, lo: int, hi: int, dtype: type) -> np.ndarray:
    """`values` as a contiguous array of `dtype`, refusing floats and out-of-range integers
    (numpy's cast would wrap them silently)."""
    arr = np.asarray(values)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise KernelError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        raise KernelError(f"{name} holds values outside [{lo}, {hi}] "
                          f"(min {int(arr.min())}, max {int(arr.max())})")
    return np.ascontiguousarray(arr, dtype=dtype)


def _float_array(name: str, values: Any) -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(values, dtype=np.float32).reshape(-1))
    if not np.all(np.isfinite(arr)):
        raise KernelError(f"{name} must be finite")
    return arr


def _opt_int32(name: str, values: Any) -> np.ndarray | None:
    if values is None:
        return None
    return _int_array(name, values, -(2**31), 2**31 - 1, np.int32).reshape(-1)


# ------------------------------------------------------------------------------------ ISA
def available_isas() -> list[str]:
    """Kernel ISAs this binary carries and this CPU runs, scalar first, best last."""
    return list(load().available_isas())


def built_isas() -> list[str]:
    """Kernel ISAs compiled into this binary (whether or not this CPU runs them)."""
    return list(load().built_isas())


def kernel_names() -> list[str]:
    """Every kernel name this binary can report in a profile (edge-run, the delegate, `.edge`
    layer stats), sorted. Each is a C++ function's symbol under native/src (docs/kernels.md);
    the delegate joins two with '+' (its input quantiser and the GEMM)."""
    return list(load().kernel_names())


def best_isa() -> str:
    return str(load().best_isa())


def resolve_isa(isa: str | None = None) -> str:
    """The ISA a plan would use: `isa`, else $EDGE_KERNEL_ISA, else the best available."""
    with _native_errors("resolve_isa"):
        return str(load().resolve_isa(isa))


# ------------------------------------------------------------------------------------ packing
@dataclass(frozen=True)
class PackedWeights:
    """Weights in the kernels' tiled layout (native/include/edge/packing/layout.h)."""

    native: Any

    @property
    def weight_type(self) -> str:
        return str(self.native.weight_type)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.native.n), int(self.native.k)

    @property
    def nbytes(self) -> int:
        return int(self.native.nbytes)

    @property
    def data(self) -> np.ndarray:
        """The packed bytes (a read-only view)."""
        return self.native.data

    @property
    def zero_points(self) -> np.ndarray:
        """Per-channel zero points in the code domain (integer weight = code - zero point)."""
        return self.native.zero_points

    @property
    def scales(self) -> np.ndarray:
        return self.native.scales

    @property
    def group_size(self) -> int:
        return int(self.native.group_size)

    @property
    def group_scales(self) -> np.ndarray | None:
        return self.native.group_scales

    def code(self, n: int, k: int) -> int:
        """The stored code of weight (n, k)."""
        with _native_errors("PackedWeights.code"):
            return int(self.native.code(n, k))

    def unpack(self) -> tuple[np.ndarray, np.ndarray]:
        """(values [n, k] int8 in TFLite's q domain, zero points [n] in the q domain)."""
        values, zero_points = self.native.unpack()
        return values, zero_points


def pack(values: Any, weight_type: WeightType, scales: Any, zero_points: Any = None, *,
         group_size: int = 0, group_scales: Any = None) -> PackedWeights:
    """Pack quantised weights [n, k] (TFLite's q: int8 [-128, 127], int4 [-8, 7], ternary
    {-1, 0, 1}, int2 [-2, 1]; real = scale * (q - zero_point)). `scales`: 1 or n entries;
    `group_scales` [n, ceil(k / group_size)] multiply them per group of K."""
    if weight_type not in VALUE_RANGES:
        raise KernelError(f"weight_type must be one of {WEIGHT_TYPES}, got {weight_type!r}")
    lo, hi = VALUE_RANGES[weight_type]
    q = _int_array("weights", values, lo, hi, np.int8)
    if q.ndim != 2:
        raise KernelError(f"weights must be 2-D [n, k], got shape {q.shape}")
    gs = None if group_scales is None else _float_array("group_scales", group_scales)
    with _native_errors(f"pack({weight_type})"):
        return PackedWeights(load().pack_weights(
            q, weight_type, _float_array("scales", scales), _opt_int32("zero_points", zero_points),
            int(group_size), gs))


def pack_codes(codes: Any, weight_type: WeightType, scales: Any,
               code_zero_points: Any = None) -> PackedWeights:
    """Pack raw unsigned codes [n, k] (0..max code) with code-domain zero points."""
    c = _int_array("codes", codes, 0, 255, np.uint8)
    with _native_errors(f"pack_codes({weight_type})"):
        return PackedWeights(load().pack_codes(c, weight_type, _float_array("scales", scales),
                                               _opt_int32("code_zero_points", code_zero_points)))


def pack_tflite(buffer: bytes | np.ndarray, weight_type: WeightType, shape: tuple[int, int],
                scales: Any, zero_points: Any = None) -> PackedWeights:
    """Pack a TFLite INT4 (weight_type "int4") or INT2 ("int2", or "ternary" for {-1, 0, 1})
    buffer as LiteRT stores it, without unpacking it in Python."""
    data = np.frombuffer(bytes(buffer), np.uint8) if isinstance(buffer, bytes | bytearray) else \
        _int_array("buffer", buffer, 0, 255, np.uint8).reshape(-1)
    n, k = shape
    with _native_errors(f"pack_tflite({weight_type})"):
        return PackedWeights(load().pack_tflite(data, weight_type, int(n), int(k),
                                                _float_array("scales", scales),
                                                _opt_int32("zero_points", zero_points)))


def encode_base3(values: Any) -> np.ndarray:
    """Ternary values {-1, 0, 1} -> the dense storage form, 5 trits per byte."""
    v = _int_array("ternary values", values, -1, 1, np.int8).reshape(-1)
    with _native_errors("encode_base3"):
        return load().encode_base3(v)


def decode_base3(data: Any, count: int) -> np.ndarray:
    """The inverse of encode_base3: `count` values in {-1, 0, 1}."""
    d = _int_array("base-3 data", data, 0, 255, np.uint8).reshape(-1)
    with _native_errors("decode_base3"):
        return load().decode_base3(d, int(count))


def pack_ternary_base3(data: Any, shape: tuple[int, int], scales: Any) -> PackedWeights:
    """Unpack base-3 storage of an [n, k] ternary matrix straight into the kernel layout."""
    d = _int_array("base-3 data", data, 0, 255, np.uint8).reshape(-1)
    n, k = shape
    with _native_errors("pack_ternary_base3"):
        return PackedWeights(load().pack_ternary_base3(d, int(n), int(k),
                                                       _float_array("scales", scales)))


# ------------------------------------------------------------------------------------ requant
def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: (Q31 significand, power-of-two exponent)."""
    with _native_errors("quantize_multiplier"):
        m, s = load().quantize_multiplier(float(real_multiplier))
    return int(m), int(s)


def requantize(acc: Any, multiplier: Any, shift: Any, zero_point: int, qmin: int = -128,
               qmax: int = 127, rounding: Rounding = "upward") -> np.ndarray:
    """TFLite's int32 -> int8 requantisation (the scalar reference), per channel along the last
    axis when `multiplier`/`shift` have more than one entry."""
    a = _int_array("acc", acc, -(2**31), 2**31 - 1, np.int32)
    m = _int_array("multiplier", multiplier, 0, 2**31 - 1, np.int32).reshape(-1)
    s = _int_array("shift", shift, -31, 30, np.int32).reshape(-1)
    with _native_errors("requantize"):
        return load().requantize(a, m, s, int(zero_point), int(qmin), int(qmax), rounding,
                                 int(a.shape[-1]) if a.ndim else 1)


def activation_range(activation: Activation, output: Quant) -> tuple[int, int]:
    """The int8 clamp of a fused activation, as TFLite computes it."""
    with _native_errors("activation_range"):
        lo, hi = load().activation_range(activation, float(output.scale), int(output.zero_point))
    return int(lo), int(hi)


# ------------------------------------------------------------------------------------ plans
class ThreadPool:
    """N threads for kernel plans (default: one per physical core this thread may run on);
    the caller is thread 0."""

    def __init__(self, num_threads: int = 0) -> None:
        self.native = load().ThreadPool(int(num_threads))

    @property
    def num_threads(self) -> int:
        return int(self.native.num_threads)


def _pool(pool: ThreadPool | None) -> Any:
    return None if pool is None else pool.native


def _layer_kwargs(input: Quant, output: Quant, activation: str, bias: Any, output_type: str,
                  rounding: str, isa: str | None, clamp: tuple[int, int] | None,
                  multipliers: tuple[Any, Any] | None) -> dict[str, Any]:
    mults = None
    if multipliers is not None:
        mults = (_int_array("multipliers", multipliers[0], 0, 2**31 - 1, np.int32).reshape(-1),
                 _int_array("shifts", multipliers[1], -31, 30, np.int32).reshape(-1))
    return {
        "input_scale": float(input.scale), "input_zero_point": int(input.zero_point),
        "output_scale": float(output.scale), "output_zero_point": int(output.zero_point),
        "activation": activation, "bias": _opt_int32("bias", bias), "output_type": output_type,
        "rounding": rounding, "isa": isa, "clamp": clamp, "multipliers": mults,
    }


def _activations(x: Any) -> np.ndarray:
    return _int_array("input", x, -128, 127, np.int8)


class _Plan:
    native: Any
    label: str

    @property
    def isa(self) -> str:
        return str(self.native.isa)

    def __call__(self, x: Any, pool: ThreadPool | None = None) -> np.ndarray:
        """Run on int8 activations x (FullyConnected: [..., k] -> [..., n]; convolutions:
        NHWC -> NHWC), with `pool`'s threads."""
        with _native_errors(self.label):
            return self.native.run(_activations(x), _pool(pool))

    run = __call__

    def benchmark(self, x: Any, iterations: int, pool: ThreadPool | None = None) -> list[float]:
        """Seconds per run of `iterations` back-to-back runs, timed in C++."""
        with _native_errors(self.label):
            return list(self.native.benchmark(_activations(x), int(iterations), _pool(pool)))


class FullyConnected(_Plan):
    """A fully connected layer: y[m, n] = epilogue(sum_k (x - x_zp)(w - w_zp) + bias)."""

    label = "FullyConnected"

    def __init__(self, weights: PackedWeights, *, input: Quant, output: Quant = Quant(1.0),
                 activation: Activation = "none", bias: Any = None,
                 output_type: OutputType = "int8", rounding: Rounding = "upward",
                 isa: str | None = None, clamp: tuple[int, int] | None = None,
                 multipliers: tuple[Any, Any] | None = None) -> None:
        with _native_errors(self.label):
            self.native = load().FullyConnected(
                weights.native, **_layer_kwargs(input, output, activation, bias, output_type,
                                                 rounding, isa, clamp, multipliers))

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.native.n), int(self.native.k)

    def kernel_name(self, m: int = 1) -> str:
        """The micro-kernel a run with m rows uses, e.g. 'qs8_qc4w_gemm_1x16c4__avx2'."""
        return str(self.native.kernel_name(int(m)))


def _pair(name: str, v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    t = tuple(int(i) for i in v)
    if len(t) != 2:
        raise KernelError(f"{name} must be an int or a pair, got {v!r}")
    return t[0], t[1]


def _padding(padding: Padding) -> Any:
    if isinstance(padding, str):
        if padding.lower() not in ("same", "valid"):
            raise KernelError(f"padding must be 'same', 'valid' or (top, bottom, left, right), "
                              f"got {padding!r}")
        return padding.lower()
    return [int(p) for p in padding]


class _ConvPlan(_Plan):
    """What the convolutions share: their NHWC output shape and one micro-kernel."""

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return tuple(int(d) for d in self.native.output_shape)  # type: ignore[return-value]

    @property
    def kernel_name(self) -> str:
        return str(self.native.kernel_name)


class Conv2D(_ConvPlan):
    """2-D convolution, NHWC; weights packed from TFLite's OHWI filter as [O, KH*KW*I]."""

    label = "Conv2D"

    def __init__(self, weights: PackedWeights, *, input_shape: Sequence[int],
                 kernel: int | Sequence[int], strides: int | Sequence[int] = 1,
                 dilations: int | Sequence[int] = 1, padding: Padding = "valid",
                 input: Quant, output: Quant = Quant(1.0), activation: Activation = "none",
                 bias: Any = None, output_type: OutputType = "int8",
                 rounding: Rounding = "upward", isa: str | None = None,
                 clamp: tuple[int, int] | None = None,
                 multipliers: tuple[Any, Any] | None = None) -> None:
        with _native_errors(self.label):
            self.native = load().Conv2D(
                weights.native, [int(d) for d in input_shape], _pair("kernel", kernel),
                _pair("strides", strides), _pair("dilations", dilations), _padding(padding),
                **_layer_kwargs(input, output, activation, bias, output_type, rounding, isa,
                                clamp, multipliers))



class DepthwiseConv2D(_ConvPlan):
    """Depthwise 2-D convolution, NHWC, int8 weights ([KH, KW, C*m] or TFLite's [1, KH, KW, C*m]).

    `tail_rounding` rounds the channels past the last multiple of 8 differently: LiteRT's
    optimised kernel does that ("away_from_zero" with rounding="upward" reproduces it)."""

    label = "DepthwiseConv2D"

    def __init__(self, filter: Any, scales: Any, zero_points: Any = None, *,
                 input_shape: Sequence[int], depth_multiplier: int = 1,
                 strides: int | Sequence[int] = 1, dilations: int | Sequence[int] = 1,
                 padding: Padding = "valid", input: Quant, output: Quant = Quant(1.0),
                 activation: Activation = "none", bias: Any = None,
                 output_type: OutputType = "int8", rounding: Rounding = "upward",
                 isa: str | None = None, clamp: tuple[int, int] | None = None,
                 multipliers: tuple[Any, Any] | None = None,
                 tail_rounding: Rounding | None = None) -> None:
        f = _int_array("filter", filter, -128, 127, np.int8)
        with _native_errors(self.label):
            self.native = load().DepthwiseConv2D(
                f, _float_array("scales", scales), _opt_int32("zero_points", zero_points),
                [int(d) for d in input_shape], int(depth_multiplier), _pair("strides", strides),
                _pair("dilations", dilations), _padding(padding),
                **_layer_kwargs(input, output, activation, bias, output_type, rounding, isa,
                                clamp, multipliers), tail_rounding=tail_rounding)



__all__ = [
    "BLOCK_K", "VALUE_RANGES", "WEIGHT_TYPES", "Conv2D", "DepthwiseConv2D", "FullyConnected",
    "PackedWeights", "Quant", "ThreadPool", "activation_range", "available_isas", "best_isa",
    "built_isas", "decode_base3", "encode_base3", "pack", "pack_codes", "pack_ternary_base3",
    "pack_tflite", "quantize_multiplier", "requantize", "resolve_isa",
]
