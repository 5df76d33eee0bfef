"""sdk.kernels: packing round trips, every ISA equal to numpy, errors that name the problem."""

from __future__ import annotations

import numpy as np
import pytest

from sdk import kernels
from sdk.base.errors import IsaUnavailableError, KernelError
from sdk.kernels import Quant

ISAS = kernels.available_isas()


def _weights(rng: np.random.Generator, weight_type: str, n: int, k: int,
             fill: str = "random") -> tuple[np.ndarray, np.ndarray | None]:
    lo, hi = kernels.VALUE_RANGES[weight_type]
    if fill == "min":
        q = np.full((n, k), lo, np.int8)
    elif fill == "max":
        q = np.full((n, k), hi, np.int8)
    else:
        q = rng.integers(lo, hi + 1, (n, k)).astype(np.int8)
    zp = None if weight_type in ("ternary", "int8") else rng.integers(lo, hi + 1, n).astype(
        np.int32)
    return q, zp


def _numpy_acc(x: np.ndarray, q: np.ndarray, zp: np.ndarray | None, x_zp: int,
               bias: np.ndarray) -> np.ndarray:
    w = q.astype(np.int64) - (0 if zp is None else zp.astype(np.int64)[:, None])
    return ((x.astype(np.int64) - x_zp) @ w.T + bias).astype(np.int32)


def test_isas_are_reported() -> None:
    assert ISAS[0] == "scalar"
    assert kernels.best_isa() == ISAS[-1]
    assert set(ISAS) <= set(kernels.built_isas())
    assert kernels.resolve_isa() in ISAS


@pytest.mark.parametrize("weight_type", kernels.WEIGHT_TYPES)
def test_every_isa_equals_numpy(weight_type: str) -> None:
    """int32 accumulators equal numpy exactly; int8 and float32 outputs equal scalar's bits."""
    rng = np.random.default_rng(len(weight_type))
    for m, n, k in [(1, 37, 129), (5, 16, 16), (9, 50, 3), (64, 48, 260)]:
        q, zp = _weights(rng, weight_type, n, k)
        scales = rng.uniform(0.001, 0.02, n).astype(np.float32)
        bias = rng.integers(-5000, 5000, n).astype(np.int32)
        x = rng.integers(-128, 128, (m, k)).astype(np.int8)
        packed = kernels.pack(q, weight_type, scales, zp)
        want = _numpy_acc(x, q, zp, -9, bias)
        quant = {"input": Quant(0.03, -9), "output": Quant(0.4, 6), "bias": bias}
        ref8 = kernels.FullyConnected(packed, isa="scalar", **quant)(x)
        ref_f = kernels.FullyConnected(packed, isa="scalar", output_type="float32", **quant)(x)
        for isa in ISAS:
            acc = kernels.FullyConnected(packed, isa=isa, output_type="int32", **quant)(x)
            np.testing.assert_array_equal(acc, want, err_msg=f"{isa} m={m} n={n} k={k}")
            np.testing.assert_array_equal(kernels.FullyConnected(packed, isa=isa, **quant)(x), ref8)
            f = kernels.FullyConnected(packed, isa=isa, output_type="float32", **quant)(x)
            assert f.tobytes() == ref_f.tobytes(), f"{isa} float32"
        # float32 output is the real value of the accumulator
        np.testing.assert_allclose(ref_f, want * (np.float32(0.03) * scales), rtol=1e-6)


@pytest.mark.parametrize("weight_type", kernels.WEIGHT_TYPES)
@pytest.mark.parametrize("fill", ["min", "max"])
def test_extreme_values(weight_type: str, fill: str) -> None:
    rng = np.random.default_rng(7)
    q, _ = _weights(rng, weight_type, 33, 1000, fill)
    packed = kernels.pack(q, weight_type, np.full(33, 0.01, np.float32))
    for x_value in (-128, 127, 0):
        x = np.full((3, 1000), x_value, np.int8)
        want = _numpy_acc(x, q, None, 0, np.zeros(33, np.int32))
        for isa in ISAS:
            got = kernels.FullyConnected(packed, input=Quant(1.0, 0), output_type="int32",
                                         isa=isa)(x)
            np.testing.assert_array_equal(got, want, err_msg=f"{isa} x={x_value}")


def test_conv_equals_fc_on_im2col_and_threads_agree() -> None:
    rng = np.random.default_rng(3)
    shape, oc = (2, 9, 8, 6), 21
    w = rng.integers(-1, 2, (oc, 3, 3, 6)).astype(np.int8)
    packed = kernels.pack(w.reshape(oc, -1), "ternary", rng.uniform(0.01, 0.1, oc))
    x = rng.integers(-128, 128, shape).astype(np.int8)
    pool = kernels.ThreadPool(2)
    assert pool.num_threads == 2
    outs = []
    for isa in ISAS:
        conv = kernels.Conv2D(packed, input_shape=shape, kernel=3, strides=2, padding="same",
                              input=Quant(0.05, 4), output_type="int32", isa=isa)
        outs.append(conv(x))
        np.testing.assert_array_equal(conv(x, pool=pool), outs[0])
        # ternary weights: the avx512amx tier runs its avx512vnni kernels (tiles: int8 only)
        assert conv.kernel_name.endswith("__" + {"avx512amx": "avx512vnni"}.get(isa, isa))
    # Reference: im2col in numpy (SAME, stride 2: pad top/left 0 for 9 and 8 -> see TFLite).
    oh, ow = 5, 4
    pad_h = max((oh - 1) * 2 + 3 - 9, 0) // 2
    pad_w = max((ow - 1) * 2 + 3 - 8, 0) // 2
    xp = np.pad(x.astype(np.int64) - 4, ((0, 0), (pad_h, 3), (pad_w, 3), (0, 0)))
    want = np.zeros((2, oh, ow, oc), np.int64)
    for kh in range(3):
        for kw in range(3):
            patch = xp[:, kh:kh + 2 * oh:2, kw:kw + 2 * ow:2, :]
            want += patch @ w[:, kh, kw, :].astype(np.int64).T
    np.testing.assert_array_equal(outs[0], want)


def test_group_scales_float_output() -> None:
    rng = np.random.default_rng(4)
    n, k, g = 20, 96, 32
    q = rng.integers(-8, 8, (n, k)).astype(np.int8)
    gs = rng.uniform(0.5, 2.0, (n, k // g)).astype(np.float32)
    packed = kernels.pack(q, "int4", np.ones(n, np.float32), group_size=g, group_scales=gs)
    assert packed.group_size == g
    np.testing.assert_array_equal(packed.group_scales, gs)
    x = rng.integers(-128, 128, (4, k)).astype(np.int8)
    want = sum(((x[:, i * g:(i + 1) * g].astype(np.float64)) @ q[:, i * g:(i + 1) * g].T) * gs[:, i]
               for i in range(k // g)) * np.float32(0.02)
    outs = [kernels.FullyConnected(packed, input=Quant(0.02, 0), output_type="float32",
                                   isa=isa)(x) for isa in ISAS]
    np.testing.assert_allclose(outs[0], want, rtol=1e-5, atol=1e-5)
    for o in outs[1:]:
        assert o.tobytes() == outs[0].tobytes()


@pytest.mark.parametrize("weight_type", kernels.WEIGHT_TYPES)
def test_pack_unpack_roundtrip(weight_type: str) -> None:
    rng = np.random.default_rng(5)
    q, zp = _weights(rng, weight_type, 19, 45)
    packed = kernels.pack(q, weight_type, np.full(19, 0.5, np.float32), zp)
    assert packed.shape == (19, 45)
    assert packed.nbytes == -(-19 // 16) * -(-45 // kernels.BLOCK_K[weight_type]) * 64
    assert not packed.data.flags.writeable
    values, zero_points = packed.unpack()
    np.testing.assert_array_equal(values, q)
    np.testing.assert_array_equal(zero_points, 0 if zp is None else zp)
    lo = kernels.VALUE_RANGES[weight_type][0]
    if weight_type != "int8":
        assert packed.code(3, 7) == q[3, 7] - lo


def test_tflite_buffers_and_base3() -> None:
    from sdk.converters.tflite import packing

    rng = np.random.default_rng(6)
    q4 = rng.integers(-8, 8, (17, 30)).astype(np.int8)
    a = kernels.pack_tflite(packing.pack(q4, 4), "int4", (17, 30), np.ones(17, np.float32))
    np.testing.assert_array_equal(a.unpack()[0], q4)
    t = rng.integers(-1, 2, (17, 30)).astype(np.int8)
    b = kernels.pack_tflite(packing.pack(t, 2), "ternary", (17, 30), np.ones(17, np.float32))
    np.testing.assert_array_equal(b.unpack()[0], t)
    dense = kernels.encode_base3(t)
    assert dense.size == -(-t.size // 5) and dense.max() <= 242
    np.testing.assert_array_equal(kernels.decode_base3(dense, t.size), t.reshape(-1))
    c = kernels.pack_ternary_base3(dense, (17, 30), np.ones(17, np.float32))
    assert c.data.tobytes() == b.data.tobytes()
    with pytest.raises(KernelError, match="offset 0"):
        kernels.decode_base3(np.array([243], np.uint8), 5)


def test_requantize_and_multiplier_match_tflite_definitions() -> None:
    assert kernels.quantize_multiplier(0.5) == (1 << 30, 0)
    assert kernels.quantize_multiplier(0.25) == (1 << 30, -1)
    acc = np.array([[-6, 6, 10, -12]], np.int32)
    # x * 0.25 (2^30 * 2^(-1-31)): -1.5, 1.5, 2.5, -3; only the final shift sees the ties
    up = kernels.requantize(acc, [1 << 30], [-1], 0, rounding="upward")
    away = kernels.requantize(acc, [1 << 30], [-1], 0, rounding="away_from_zero")
    single = kernels.requantize(acc, [1 << 30], [-1], 0, rounding="single")
    np.testing.assert_array_equal(up, [[-1, 2, 3, -3]])
    np.testing.assert_array_equal(away, [[-2, 2, 3, -3]])
    np.testing.assert_array_equal(single, [[-1, 2, 3, -3]])
    assert kernels.activation_range("relu6", Quant(0.05, -10)) == (-10, 110)


def test_errors_name_the_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    ones = np.ones(2, np.float32)
    with pytest.raises(KernelError, match="outside"):
        kernels.pack(np.array([[8, 0]]), "int4", ones[:1])
    with pytest.raises(KernelError, match="integers"):
        kernels.pack(np.array([[0.5, 0.0]]), "int8", ones[:1])
    with pytest.raises(KernelError, match="zero point 0"):
        kernels.pack(np.array([[1, 0]]), "ternary", ones[:1], zero_points=[1])
    with pytest.raises(KernelError, match="weight_type"):
        kernels.pack(np.zeros((1, 1)), "int3", ones[:1])  # type: ignore[arg-type]
    packed = kernels.pack(np.zeros((2, 8), np.int8), "int8", ones)
    fc = kernels.FullyConnected(packed, input=Quant(1.0))
    with pytest.raises(KernelError, match="last dimension k = 8"):
        fc(np.zeros((1, 7), np.int8))
    with pytest.raises(KernelError, match="outside"):
        fc(np.full((1, 8), 300))
    missing = [isa for isa in ("avx2", "avxvnni", "avx512vnni", "avx512amx", "neon", "dotprod",
                              "i8mm")
               if isa not in ISAS]
    for isa in missing:
        with pytest.raises(IsaUnavailableError, match=isa):
            kernels.FullyConnected(packed, input=Quant(1.0), isa=isa)
    monkeypatch.setenv("EDGE_KERNEL_ISA", "scalar")
    assert kernels.FullyConnected(packed, input=Quant(1.0)).isa == "scalar"
    monkeypatch.setenv("EDGE_KERNEL_ISA", "sse9")
    with pytest.raises(KernelError, match="unknown kernel ISA"):
        kernels.FullyConnected(packed, input=Quant(1.0))
    if missing:
        monkeypatch.setenv("EDGE_KERNEL_ISA", missing[0])
        with pytest.raises(IsaUnavailableError):
            kernels.resolve_isa()
