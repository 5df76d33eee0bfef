"""Every int8 operator of the .edge runtime equals LiteRT's builtin int8 kernel bit for bit, on
small single-op graphs with random inputs (full int8 range) and assorted quantisation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from edge_helpers import act, random_inputs, run_both, run_litert, single_op_model

from sdk.converters.ir import DType, Model, Tensor


def _const_i32(name: str, values: list[int]) -> Tensor:
    arr = np.asarray(values, np.int32)
    return Tensor(name, arr.shape, DType.INT32, data=arr)


def add(act_fn: str = "NONE", s1=0.05, z1=-3, s2=0.02, z2=7, so=0.08, zo=5,
        shape1=(1, 4, 4, 3), shape2=(1, 4, 4, 3)) -> Model:
    out_shape = tuple(np.broadcast_shapes(shape1, shape2))
    return single_op_model("ADD", [act("a", shape1, s1, z1), act("b", shape2, s2, z2)],
                           [act("y", out_shape, so, zo)], {"fused_activation_function": act_fn})


def mul(act_fn: str = "NONE", shape2=(1, 4, 4, 3), so=0.03, shape1=(1, 4, 4, 3)) -> Model:
    out_shape = tuple(np.broadcast_shapes(shape1, shape2))
    return single_op_model("MUL", [act("a", shape1, 0.05, -10), act("b", shape2, 0.04, 3)],
                           [act("y", out_shape, so, -2)], {"fused_activation_function": act_fn})


def pool(kind: str, padding: str, k: int, s: int, act_fn: str = "NONE",
         shape=(1, 9, 7, 5)) -> Model:
    n, h, w, c = shape
    if padding == "SAME":
        oh, ow = -(-h // s), -(-w // s)
    else:
        oh, ow = (h - k) // s + 1, (w - k) // s + 1
    return single_op_model(kind, [act("x", shape, 0.1, 4)], [act("y", (n, oh, ow, c), 0.1, 4)],
                           {"padding": padding, "stride_w": s, "stride_h": s, "filter_width": k,
                            "filter_height": k, "fused_activation_function": act_fn})


def softmax(beta: float = 1.0, scale: float = 0.1, shape=(2, 10)) -> Model:
    return single_op_model("SOFTMAX", [act("x", shape, scale, 3)],
                           [act("y", shape, 1 / 256, -128)], {"beta": beta})


def logistic(scale: float = 0.06, zp: int = -5, shape=(1, 7, 9)) -> Model:
    return single_op_model("LOGISTIC", [act("x", shape, scale, zp)],
                           [act("y", shape, 1 / 256, -128)])


def hard_swish(s_in: float, z_in: int, s_out: float, z_out: int, shape=(1, 5, 5, 8)) -> Model:
    return single_op_model("HARD_SWISH", [act("x", shape, s_in, z_in)],
                           [act("y", shape, s_out, z_out)])


def quantize_float(scale: float = 0.025) -> Model:
    return single_op_model("QUANTIZE", [act("x", (1, 6, 6, 3), None, dtype=DType.FLOAT32)],
                           [act("y", (1, 6, 6, 3), scale, -7)])


def requantize(s_in: float = 0.05, s_out: float = 0.03) -> Model:
    return single_op_model("QUANTIZE", [act("x", (1, 6, 6, 2), s_in, 3)],
                           [act("y", (1, 6, 6, 2), s_out, -9)])


def dequantize() -> Model:
    return single_op_model("DEQUANTIZE", [act("x", (3, 17), 0.037, -11)],
                           [act("y", (3, 17), None, dtype=DType.FLOAT32)])


def _ties(model: Model, rng: np.random.Generator) -> list[np.ndarray]:
    """Float inputs on exact rounding ties of the output scale (x / scale = k + 0.5)."""
    t = model.main.inputs[0]
    k = rng.integers(-100, 100, t.shape)
    return [((k + 0.5) * 0.25).astype(np.float32)]


def mean(axes: list[int], keep_dims: bool, shape=(2, 5, 6, 7), so=0.03, zo=-4) -> Model:
    reduced = {a % len(shape) for a in axes}
    out = [1 if i in reduced else d for i, d in enumerate(shape)] if keep_dims else \
        [d for i, d in enumerate(shape) if i not in reduced]
    return single_op_model("MEAN", [act("x", shape, 0.05, 6), _const_i32("axes", axes)],
                           [act("y", tuple(out), so, zo)], {"keep_dims": keep_dims})


def concat(axis: int) -> Model:
    a, b = act("a", (1, 3, 4, 2), 0.1, -1), act("b", (1, 3, 4, 5), 0.1, -1)
    if axis == 1:
        b = act("b", (1, 2, 4, 2), 0.1, -1)
        out = (1, 5, 4, 2)
    else:
        out = (1, 3, 4, 7)
    return single_op_model("CONCATENATION", [a, b], [act("y", out, 0.1, -1)],
                           {"axis": axis, "fused_activation_function": "NONE"})


def reshape() -> Model:
    return single_op_model("RESHAPE", [act("x", (1, 3, 4, 2), 0.1, 2), _const_i32("s", [1, 24])],
                           [act("y", (1, 24), 0.1, 2)], options_type=None)


def transpose(perm: tuple[int, ...]) -> Model:
    shape = (2, 3, 4, 5)
    return single_op_model(
        "TRANSPOSE", [act("x", shape, 0.1, 9), _const_i32("perm", list(perm))],
        [act("y", tuple(shape[p] for p in perm), 0.1, 9)])


def pad() -> Model:
    paddings = np.asarray([[0, 0], [1, 2], [2, 0], [0, 1]], np.int32)
    return single_op_model(
        "PAD", [act("x", (1, 3, 4, 2), 0.1, 9),
                Tensor("p", paddings.shape, DType.INT32, data=paddings)],
        [act("y", (1, 6, 6, 3), 0.1, 9)])


CASES: dict[str, Callable[[], Model]] = {
    "add": add,
    "add_relu": lambda: add("RELU"),
    "add_relu6_broadcast": lambda: add("RELU6", shape2=(1, 1, 1, 3)),
    "add_broadcast_rank": lambda: add(shape1=(2, 1, 3), shape2=(4, 1)),
    "add_zero_points_extreme": lambda: add(z1=-128, z2=127, zo=-128, s1=0.2, s2=0.003, so=0.2),
    # LiteRT's vector loops (16 / 8 lanes) and its five-fold broadcast walk, with tails
    "add_large": lambda: add(shape1=(1, 16, 16, 9), shape2=(1, 16, 16, 9)),
    "add_channel_broadcast": lambda: add(shape1=(1, 8, 8, 35), shape2=(1, 1, 1, 35)),
    "add_channel_broadcast_first": lambda: add(shape1=(1, 1, 1, 35), shape2=(1, 8, 8, 35)),
    "add_scalar_broadcast": lambda: add(shape1=(1, 8, 7, 1), shape2=(1, 8, 7, 45)),
    "add_scalar": lambda: add(shape1=(1, 8, 8, 21), shape2=(1,)),
    "mul": mul,
    "mul_relu_broadcast": lambda: mul("RELU", shape2=(1, 1, 4, 3)),
    "mul_small_output_scale": lambda: mul(so=0.0005),
    "mul_large_overflowing": lambda: mul(so=0.0004, shape1=(1, 9, 9, 9), shape2=(1, 9, 9, 9)),
    "mul_channel_broadcast": lambda: mul(so=0.001, shape1=(1, 8, 8, 35), shape2=(1, 1, 1, 35)),
    "mul_scalar_broadcast": lambda: mul(so=0.001, shape1=(1, 8, 7, 45), shape2=(1, 8, 7, 1)),
    "concat_channels": lambda: concat(3),
    "concat_rows": lambda: concat(1),
    "max_pool_same": lambda: pool("MAX_POOL_2D", "SAME", 3, 2),
    "max_pool_valid_relu": lambda: pool("MAX_POOL_2D", "VALID", 2, 2, "RELU"),
    "avg_pool_same": lambda: pool("AVERAGE_POOL_2D", "SAME", 3, 1),
    "avg_pool_valid": lambda: pool("AVERAGE_POOL_2D", "VALID", 2, 2),
    "avg_pool_global": lambda: pool("AVERAGE_POOL_2D", "VALID", 7, 1, shape=(1, 7, 7, 16)),
    "reshape": reshape,
    "softmax": softmax,
    "softmax_beta": lambda: softmax(beta=0.7, scale=0.25),
    "softmax_wide": lambda: softmax(scale=0.02, shape=(1, 1, 3, 1000)),
    "logistic": logistic,
    "logistic_coarse": lambda: logistic(scale=0.3, zp=20),
    "hard_swish": lambda: hard_swish(0.05, -20, 0.04, -90),
    "hard_swish_wide_input": lambda: hard_swish(0.4, 0, 0.3, -100),
    "hard_swish_fine": lambda: hard_swish(0.01, 10, 0.008, -120),
    "quantize_float": quantize_float,
    "quantize_float_ties": lambda: quantize_float(0.25),
    "requantize": requantize,
    "requantize_exact_ratio": lambda: requantize(0.25, 1.0),  # every other value is a tie
    "dequantize": dequantize,
    "mean_global_keep_dims": lambda: mean([1, 2], True),
    "mean_global_keep_dims_wide": lambda: mean([1, 2], True, shape=(2, 7, 7, 45)),
    "mean_global": lambda: mean([1, 2], False),
    "mean_channels": lambda: mean([3], False, so=0.05, zo=6),
    "mean_negative_axis_keep_dims": lambda: mean([-1], True, so=0.05, zo=6),
    "pad": pad,
    # large enough that the runtime splits them among its threads (16 KiB of output a thread)
    "add_threaded": lambda: add(shape1=(1, 40, 40, 27), shape2=(1, 40, 40, 27)),
    "add_channel_broadcast_threaded": lambda: add(shape1=(1, 40, 40, 35), shape2=(1, 1, 1, 35)),
    "max_pool_threaded": lambda: pool("MAX_POOL_2D", "SAME", 3, 2, "RELU", shape=(1, 95, 96, 21)),
    "avg_pool_threaded": lambda: pool("AVERAGE_POOL_2D", "SAME", 3, 2, shape=(1, 95, 96, 21)),
    "mean_global_threaded": lambda: mean([1, 2], True, shape=(1, 20, 20, 99)),
    "logistic_threaded": lambda: logistic(shape=(1, 48, 48, 17)),
    "hard_swish_threaded": lambda: hard_swish(0.05, -20, 0.04, -90, shape=(1, 48, 48, 17)),
    "concat_threaded": lambda: single_op_model(
        "CONCATENATION", [act("a", (1, 96, 96, 5), 0.1, -1), act("b", (1, 96, 96, 3), 0.1, -1)],
        [act("y", (1, 96, 96, 8), 0.1, -1)], {"axis": 3, "fused_activation_function": "NONE"}),
    "transpose_nchw_to_nhwc": lambda: transpose((0, 2, 3, 1)),
    "transpose_reverse": lambda: transpose((3, 2, 1, 0)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_matches_litert_bit_for_bit(case: str) -> None:
    """With 1, 2 and 3 threads on both sides: LiteRT splits an int8 global-average MEAN's
    channels among its threads, and each split moves the vector/scalar rounding boundary."""
    model = CASES[case]()
    rng = np.random.default_rng(abs(hash(case)) % 2**32)
    for threads in (1, 2, 3):
        inputs = _ties(model, rng) if case.endswith("_ties") else random_inputs(model, rng)
        reference, ours = run_both(model, inputs, threads)
        for r, o in zip(reference, ours, strict=True):
            assert r.dtype == o.dtype and r.shape == o.shape
            assert np.array_equal(r, o), (
                f"{case}, {threads} threads: {np.count_nonzero(r != o)} of {r.size} values "
                f"differ; first at "
                f"{np.argwhere(r != o)[0]}: LiteRT {r[tuple(np.argwhere(r != o)[0])]}, "
                f".edge {o[tuple(np.argwhere(r != o)[0])]}")


#: the ops with SIMD kernels of their own (edge/kernels/elementwise.h): every ISA, tails included
ISA_CASES = ("add", "add_large", "add_channel_broadcast_first", "add_zero_points_extreme",
             "add_threaded", "max_pool_same", "max_pool_threaded", "mean_global_keep_dims_wide",
             "mean_channels", "mean_global_threaded")


@pytest.mark.parametrize("case", ISA_CASES)
def test_simd_ops_every_isa_match_litert(case: str) -> None:
    """The scalar ISA (ADD's lookup tables, the scalar max and sums) and every SIMD ISA this
    CPU has give LiteRT's bytes, on 1 and 2 threads."""
    from sdk.converters.edge import to_edge_bytes
    from sdk.converters.tflite import to_tflite_bytes
    from sdk.kernels import available_isas
    from sdk.run import EdgeModel

    model = CASES[case]()
    rng = np.random.default_rng(abs(hash(case)) % 2**32)
    inputs = random_inputs(model, rng)
    edge_bytes = to_edge_bytes(model)
    for threads in (1, 2):
        reference = run_litert(to_tflite_bytes(model), inputs, num_threads=threads)
        for isa in available_isas():
            edge = EdgeModel(edge_bytes, threads=threads, isa=isa)
            for r, o in zip(reference, edge.run(inputs), strict=True):
                assert np.array_equal(r, o), (case, isa, threads, np.count_nonzero(r != o))
            assert edge.kernels()[0].endswith("__scalar") == (isa == "scalar"), edge.kernels()
