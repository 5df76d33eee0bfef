"""Every operator the INT8 rule table claims, one at a time: a one-op float graph built in the IR,
exported to int8, run in stock LiteRT (XNNPACK and builtin kernels) against the float graph."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import sdk
from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
from sdk.converters.quantize.rules import OP_RULES
from sdk.converters.tflite import read_tflite, to_tflite_bytes
from sdk.run.runner import LiteRTRunner

X = (1, 6, 6, 4)


def _t(g: Graph, name: str, shape: tuple[int, ...], dtype: DType = DType.FLOAT32) -> Tensor:
    return g.add_tensor(Tensor(name, shape, dtype))


def _i32(g: Graph, name: str, values: Any) -> Tensor:
    return g.constant(name, np.asarray(values, np.int32))


def _f32(g: Graph, name: str, values: Any) -> Tensor:
    return g.constant(name, np.asarray(values, np.float32))


def build(op_type: str, make: Callable[[Graph, Tensor], tuple[list, list[tuple[int, ...]], dict]],
          in_shape: tuple[int, ...] = X, second: bool = False) -> Model:
    """A graph x [, y] -> op -> outputs; `make` returns (inputs, output shapes, attrs)."""
    g = Graph(name="main")
    x = _t(g, "x", in_shape)
    g.inputs = [x]
    if second:
        y = _t(g, "y", in_shape)
        g.inputs.append(y)
    inputs, out_shapes, attrs = make(g, x)
    outs = [_t(g, f"out{i}", s, attrs.pop("_dtype", DType.FLOAT32)) for i, s in
            enumerate(out_shapes)]
    # BROADCAST_TO starts at version 2 (version 1 was withdrawn)
    g.operators = [Operator(op_type, inputs, outs, attrs, version=2 if op_type == "BROADCAST_TO"
                            else 1,
                            format_extras={} if attrs else {"tflite_options_type": None})]
    g.outputs = outs
    return Model(graphs=[g])


def unary(shape: tuple[int, ...] = X, **attrs: Any):
    return lambda g, x: ([x], [shape], dict(attrs))


def binary(**attrs: Any):
    return lambda g, x: ([x, g.inputs[1]], [X], dict(attrs))


def reduce(keep: bool = True):
    return lambda g, x: ([x, _i32(g, "axes", [1, 2])], [(1, 1, 1, 4) if keep else (1, 4)],
                         {"keep_dims": keep})


POOL = {"padding": "VALID", "stride_w": 2, "stride_h": 2, "filter_width": 2,
        "filter_height": 2, "fused_activation_function": "NONE"}

CASES: dict[str, tuple[Callable, dict[str, Any]]] = {
    "ABS": (unary(), {}),
    "RELU": (unary(), {}),
    "RELU6": (unary(), {"scale": 5.0}),
    "RELU_N1_TO_1": (unary(), {}),
    "ELU": (unary(), {}),
    "GELU": (unary(approximate=False), {}),
    "HARD_SWISH": (unary(), {"scale": 4.0}),
    "LEAKY_RELU": (unary(alpha=0.2), {}),
    "LOGISTIC": (unary(), {"scale": 4.0}),
    "TANH": (unary(), {}),
    "RSQRT": (unary(), {"positive": True}),
    "SOFTMAX": (unary((1, 10), beta=1.0), {"shape": (1, 10), "scale": 3.0}),
    "LOG_SOFTMAX": (unary((1, 10)), {"shape": (1, 10)}),
    "L2_NORMALIZATION": (unary(fused_activation_function="NONE"), {}),
    "PRELU": (lambda g, x: ([x, _f32(g, "alpha", np.linspace(0.1, 0.4, 4).reshape(1, 1, 4))],
                            [X], {}), {}),
    "ADD": (binary(fused_activation_function="NONE"), {"second": True}),
    "SUB": (binary(fused_activation_function="NONE"), {"second": True}),
    "MUL": (binary(fused_activation_function="NONE"), {"second": True}),
    "SQUARED_DIFFERENCE": (binary(), {"second": True}),
    "MAXIMUM": (binary(), {"second": True}),
    "MINIMUM": (binary(), {"second": True}),
    "MEAN": (reduce(), {}),
    "SUM": (reduce(), {}),
    "REDUCE_MAX": (reduce(), {}),
    "REDUCE_MIN": (reduce(False), {}),
    "ARG_MAX": (lambda g, x: ([x, _i32(g, "axis", [3])], [(1, 6, 6)],
                              {"output_type": "INT32", "_dtype": DType.INT32}), {}),
    "ARG_MIN": (lambda g, x: ([x, _i32(g, "axis", [3])], [(1, 6, 6)],
                              {"output_type": "INT32", "_dtype": DType.INT32}), {}),
    "BATCH_MATMUL": (lambda g, x: ([x, _f32(g, "w", np.random.default_rng(3).standard_normal(
        (4, 5)))], [(1, 6, 6, 5)], {"adj_x": False, "adj_y": False}), {}),
    "CONCATENATION": (lambda g, x: ([x, g.inputs[1]], [(1, 6, 6, 8)],
                                    {"axis": 3, "fused_activation_function": "NONE"}),
                      {"second": True}),
    "PACK": (lambda g, x: ([x, g.inputs[1]], [(2, 1, 6, 6, 4)],
                           {"values_count": 2, "axis": 0}), {"second": True}),
    "UNPACK": (lambda g, x: ([x], [(6, 6, 4)], {"num": 1, "axis": 0}), {}),
    "PAD": (lambda g, x: ([x, _i32(g, "p", [[0, 0], [1, 1], [2, 0], [0, 0]])], [(1, 8, 8, 4)],
                          {}), {}),
    "PADV2": (lambda g, x: ([x, _i32(g, "p", [[0, 0], [1, 1], [2, 0], [0, 0]]),
                             _f32(g, "v", 0.25)], [(1, 8, 8, 4)], {}), {}),
    "MIRROR_PAD": (lambda g, x: ([x, _i32(g, "p", [[0, 0], [1, 1], [2, 1], [0, 0]])],
                                 [(1, 8, 9, 4)], {"mode": "REFLECT"}), {}),
    "SLICE": (lambda g, x: ([x, _i32(g, "b", [0, 1, 2, 0]), _i32(g, "s", [1, 4, 3, 4])],
                            [(1, 4, 3, 4)], {}), {}),
    "STRIDED_SLICE": (lambda g, x: ([x, _i32(g, "b", [0, 0, 1, 0]), _i32(g, "e", [1, 6, 6, 4]),
                                     _i32(g, "s", [1, 2, 2, 1])], [(1, 3, 3, 4)],
                                    {"begin_mask": 0, "end_mask": 0}), {}),
    "GATHER": (lambda g, x: ([x, _i32(g, "i", [2, 0, 1])], [(1, 6, 6, 3)],
                             {"axis": 3, "batch_dims": 0}), {}),
    "SPLIT": (lambda g, x: ([_i32(g, "axis", 3), x], [(1, 6, 6, 2), (1, 6, 6, 2)],
                            {"num_splits": 2}), {}),
    "SPLIT_V": (lambda g, x: ([x, _i32(g, "sizes", [1, 3]), _i32(g, "axis", 3)],
                              [(1, 6, 6, 1), (1, 6, 6, 3)], {"num_splits": 2}), {}),
    "SQUEEZE": (lambda g, x: ([x], [(6, 6, 4)], {"squeeze_dims": [0]}), {}),
    "EXPAND_DIMS": (lambda g, x: ([x, _i32(g, "axis", 1)], [(1, 1, 6, 6, 4)], {}), {}),
    "RESHAPE": (lambda g, x: ([x, _i32(g, "s", [1, 36, 4])], [(1, 36, 4)], {}), {}),
    "TRANSPOSE": (lambda g, x: ([x, _i32(g, "perm", [0, 3, 1, 2])], [(1, 4, 6, 6)], {}), {}),
    "TILE": (lambda g, x: ([x, _i32(g, "m", [1, 2, 1, 1])], [(1, 12, 6, 4)], {}), {}),
    "BROADCAST_TO": (lambda g, x: ([x, _i32(g, "s", [2, 6, 6, 4])], [(2, 6, 6, 4)], {}), {}),
    "RESIZE_BILINEAR": (lambda g, x: ([x, _i32(g, "size", [9, 12])], [(1, 9, 12, 4)],
                                      {"align_corners": False, "half_pixel_centers": True}), {}),
    "RESIZE_NEAREST_NEIGHBOR": (lambda g, x: ([x, _i32(g, "size", [12, 12])], [(1, 12, 12, 4)],
                                              {"align_corners": False,
                                               "half_pixel_centers": False}), {}),
    "SPACE_TO_DEPTH": (lambda g, x: ([x], [(1, 3, 3, 16)], {"block_size": 2}), {}),
    "DEPTH_TO_SPACE": (lambda g, x: ([x], [(1, 12, 12, 1)], {"block_size": 2}), {}),
    "SPACE_TO_BATCH_ND": (lambda g, x: ([x, _i32(g, "b", [2, 2]), _i32(g, "p", [[0, 0], [0, 0]])],
                                        [(4, 3, 3, 4)], {}), {}),
    "BATCH_TO_SPACE_ND": (lambda g, x: ([x, _i32(g, "b", [1, 1]), _i32(g, "c", [[0, 0], [0, 0]])],
                                        [X], {}), {}),
    "SELECT_V2": (lambda g, x: ([g.constant("c", np.arange(144).reshape(X) % 3 == 0, DType.BOOL),
                                 x, g.inputs[1]], [X], {}), {"second": True}),
    "SELECT": (lambda g, x: ([g.constant("c", np.arange(144).reshape(X) % 2 == 0, DType.BOOL),
                              x, g.inputs[1]], [X], {}), {"second": True}),
    "MAX_POOL_2D": (lambda g, x: ([x], [(1, 3, 3, 4)], dict(POOL)), {}),
    "AVERAGE_POOL_2D": (lambda g, x: ([x], [(1, 3, 3, 4)], dict(POOL)), {}),
}

#: covered by whole-model tests (Keras and ONNX): weights, biases, shapes from real converters
COVERED_ELSEWHERE = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "SHAPE"}


def test_every_rule_has_a_test() -> None:
    assert set(OP_RULES) - COVERED_ELSEWHERE == set(CASES)


def _data(shape: tuple[int, ...], n: int, seed: int, scale: float, positive: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *shape[1:])) * scale
    return (np.abs(x) + 0.2 if positive else x).astype(np.float32)


@pytest.mark.parametrize("op_type", sorted(CASES))
def test_int8_op(op_type: str, tmp_path) -> None:
    make, opts = CASES[op_type]
    shape = opts.get("shape", X)
    model = build(op_type, make, shape, second=opts.get("second", False))
    float_bytes = to_tflite_bytes(model)
    n_in = len(model.main.inputs)
    data = [_data(shape, 96, seed, opts.get("scale", 1.0), opts.get("positive", False))
            for seed in range(n_in)]
    calibration = data[0] if n_in == 1 else {f"{k}": d for k, d in zip("xy", data, strict=False)}
    res = sdk.export(model, calibration=calibration, output=tmp_path / "m.tflite",
                     validation=calibration, strict=True, per_layer=False)
    assert res.precision == {next(iter(res.precision)): "int8"}
    qmodel = read_tflite(res.path)
    (qop,) = [op for op in qmodel.main.operators if op.type == op_type]
    assert qop.version >= OP_RULES[op_type].version
    assert all(t.dtype is not DType.FLOAT32 for t in (*qop.inputs, *qop.outputs)
               if t is not None)
    float_run = LiteRTRunner(float_bytes, reference=True)
    for reference in (False, True):
        run = LiteRTRunner(res.path.read_bytes(), reference=reference)
        for i in range(0, 96, 12):
            feeds = [d[i:i + 1] if shape[0] == 1 else d[i] for d in data]
            want = float_run.invoke(feeds)
            got = run.invoke(feeds)
            for w, q, t in zip(want, got, qmodel.main.outputs, strict=True):
                if t.dtype is DType.INT32:  # ARG_MAX / ARG_MIN: indices agree almost always
                    assert (w == q).mean() >= 0.9, (op_type, reference)
                    continue
                span = float(np.abs(w).max()) or 1.0
                err = float(np.abs(w - q).max())
                assert err <= 0.06 * span + 1e-6, (op_type, reference, err, span)
