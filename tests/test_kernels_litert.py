"""The int8 kernels equal stock LiteRT bit for bit, on every ISA this CPU runs.

LiteRT has three int8 requantisation rules (native/include/edge/kernels/requant.h): its optimised
builtin kernels (`xnnpack=False`) use double rounding with ties up; its reference kernels
(BUILTIN_REF) use double rounding with ties away from zero for CONV_2D / DEPTHWISE_CONV_2D and
single rounding for FULLY_CONNECTED. Each is checked with the matching `rounding`. The scales are
chosen so that the rules disagree on some outputs (a test that could not tell them apart would be
worthless): `test_rounding_rules_differ` proves it.
"""

from __future__ import annotations

import numpy as np
import pytest

from sdk import kernels, layer_models
from sdk.kernels import Quant

ISAS = kernels.available_isas()
FC_KERNELS = [("builtin", "upward"), ("reference", "single")]
CONV_KERNELS = [("builtin", "upward"), ("reference", "away_from_zero")]


def _fc_case(rng: np.random.Generator, m: int, n: int, k: int, per_channel: bool):
    w = rng.integers(-127, 128, (n, k), dtype=np.int8)
    scales = (rng.uniform(0.002, 0.02, n) if per_channel else np.array([0.01])).astype(np.float32)
    bias = rng.integers(-30000, 30000, n).astype(np.int32)
    x = rng.integers(-128, 128, (m, k), dtype=np.int8)
    # A large output scale and right shifts of ~13 bits make exact negative ties common.
    quant = {"input_scale": 0.0537, "input_zero_point": 3, "output_scale": 3.3,
             "output_zero_point": -7}
    return w, scales, bias, x, quant


@pytest.mark.parametrize(("litert_kernels", "rounding"), FC_KERNELS)
@pytest.mark.parametrize(("m", "per_channel", "activation"),
                         [(1, False, "none"), (1, True, "relu6"), (64, True, "none"),
                          (7, False, "relu")])
def test_fully_connected_matches_litert(litert_kernels: str, rounding: str, m: int,
                                        per_channel: bool, activation: str) -> None:
    rng = np.random.default_rng(m * 10 + per_channel)
    w, scales, bias, x, q = _fc_case(rng, m, 300, 77, per_channel)
    model = layer_models.int8_fully_connected(w, scales, bias, batch=m, activation=activation, **q)
    want = layer_models.run_litert(model, x, kernels=litert_kernels)
    packed = kernels.pack(w, "int8", scales)
    for isa in ISAS:
        fc = kernels.FullyConnected(
            packed, input=Quant(q["input_scale"], q["input_zero_point"]),
            output=Quant(q["output_scale"], q["output_zero_point"]), bias=bias,
            activation=activation, rounding=rounding, isa=isa)
        np.testing.assert_array_equal(fc(x), want, err_msg=f"isa={isa}")


def test_rounding_rules_differ() -> None:
    """The two LiteRT kernel sets really disagree on these cases, and each rule matches one."""
    rng = np.random.default_rng(0)
    w, scales, bias, x, q = _fc_case(rng, 200, 300, 77, True)
    model = layer_models.int8_fully_connected(w, scales, bias, batch=200, **q)
    builtin = layer_models.run_litert(model, x, kernels="builtin")
    reference = layer_models.run_litert(model, x, kernels="reference")
    assert (builtin != reference).sum() > 0
    packed = kernels.pack(w, "int8", scales)
    common = {"input": Quant(q["input_scale"], q["input_zero_point"]),
              "output": Quant(q["output_scale"], q["output_zero_point"]), "bias": bias}
    up = kernels.FullyConnected(packed, rounding="upward", **common)(x)
    single = kernels.FullyConnected(packed, rounding="single", **common)(x)
    away = kernels.FullyConnected(packed, rounding="away_from_zero", **common)(x)
    np.testing.assert_array_equal(up, builtin)
    np.testing.assert_array_equal(single, reference)
    assert (away != up).sum() > 0 and (away != single).sum() > 0


CONV_CASES = [
    # (input shape, kernel, strides, dilations, padding, out channels, activation)
    ((1, 13, 11, 8), 3, (1, 1), (1, 1), "same", 24, "none"),
    ((2, 9, 10, 5), 3, (2, 2), (1, 1), "valid", 17, "relu"),
    ((1, 12, 12, 16), 3, (1, 2), (2, 1), "same", 33, "relu6"),
    ((1, 7, 7, 32), 1, (1, 1), (1, 1), "valid", 40, "none"),
    ((1, 10, 9, 3), (5, 2), (2, 1), (1, 1), "same", 8, "none"),
]


@pytest.mark.parametrize(("litert_kernels", "rounding"), CONV_KERNELS)
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}k{c[1]}s{c[2]}d{c[3]}{c[4]}")
def test_conv2d_matches_litert(litert_kernels: str, rounding: str, case: tuple) -> None:
    shape, kernel, strides, dilations, padding, oc, activation = case
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    rng = np.random.default_rng(sum(shape) + oc)
    filt = rng.integers(-127, 128, (oc, kh, kw, shape[3]), dtype=np.int8)
    scales = rng.uniform(0.002, 0.02, oc).astype(np.float32)
    bias = rng.integers(-20000, 20000, oc).astype(np.int32)
    x = rng.integers(-128, 128, shape, dtype=np.int8)
    q = {"input_scale": 0.0537, "input_zero_point": -5, "output_scale": 2.1,
         "output_zero_point": 9}
    model = layer_models.int8_conv2d(filt, scales, bias, input_shape=shape, strides=strides,
                                     dilations=dilations, padding=padding,
                                     activation=activation, **q)
    want = layer_models.run_litert(model, x, kernels=litert_kernels)
    packed = kernels.pack(filt.reshape(oc, -1), "int8", scales)
    for isa in ISAS:
        conv = kernels.Conv2D(packed, input_shape=shape, kernel=(kh, kw), strides=strides,
                              dilations=dilations, padding=padding,
                              input=Quant(q["input_scale"], q["input_zero_point"]),
                              output=Quant(q["output_scale"], q["output_zero_point"]),
                              bias=bias, activation=activation, rounding=rounding, isa=isa)
        assert conv.output_shape == want.shape
        np.testing.assert_array_equal(conv(x), want, err_msg=f"isa={isa}")


DW_CASES = [
    ((1, 14, 13, 24), 3, 1, (1, 1), (1, 1), "same", "relu6"),
    ((4, 30, 30, 19), 3, 1, (1, 1), (1, 1), "same", "none"),
    ((2, 9, 9, 19), 3, 1, (2, 2), (1, 1), "valid", "none"),
    ((1, 11, 12, 8), 3, 2, (1, 1), (2, 2), "same", "relu"),
    ((1, 8, 8, 3), 5, 3, (2, 1), (1, 1), "same", "none"),
]


# LiteRT's optimised depthwise kernel rounds the C % 8 leftover channels like gemmlowp.
DW_KERNELS = [("builtin", "upward", "away_from_zero"), ("reference", "away_from_zero", None)]


@pytest.mark.parametrize(("litert_kernels", "rounding", "tail_rounding"), DW_KERNELS)
@pytest.mark.parametrize("case", DW_CASES, ids=lambda c: f"{c[0]}k{c[1]}m{c[2]}s{c[3]}{c[5]}")
def test_depthwise_matches_litert(litert_kernels: str, rounding: str, tail_rounding: str | None,
                                  case: tuple) -> None:
    shape, k, mult, strides, dilations, padding, activation = case
    cout = shape[3] * mult
    rng = np.random.default_rng(sum(shape) + mult)
    filt = rng.integers(-127, 128, (k, k, cout), dtype=np.int8)
    scales = rng.uniform(0.002, 0.02, cout).astype(np.float32)
    bias = rng.integers(-20000, 20000, cout).astype(np.int32)
    x = rng.integers(-128, 128, shape, dtype=np.int8)
    q = {"input_scale": 0.0537, "input_zero_point": 11, "output_scale": 0.9,
         "output_zero_point": -3}
    model = layer_models.int8_depthwise_conv2d(filt, scales, bias, input_shape=shape,
                                               depth_multiplier=mult, strides=strides,
                                               dilations=dilations, padding=padding,
                                               activation=activation, **q)
    want = layer_models.run_litert(model, x, kernels=litert_kernels)
    for isa in ISAS:
        dw = kernels.DepthwiseConv2D(filt, scales, input_shape=shape, depth_multiplier=mult,
                                     strides=strides, dilations=dilations, padding=padding,
                                     input=Quant(q["input_scale"], q["input_zero_point"]),
                                     output=Quant(q["output_scale"], q["output_zero_point"]),
                                     bias=bias, activation=activation, rounding=rounding,
                                     tail_rounding=tail_rounding, isa=isa)
        np.testing.assert_array_equal(dw(x), want, err_msg=f"isa={isa}")
