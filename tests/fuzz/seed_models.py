"""Seed models for the fuzz harnesses, built in code (nothing binary is committed).

Small int8 / sub-byte graphs of the ops the project's tests use (FULLY_CONNECTED, CONV_2D,
DEPTHWISE_CONV_2D, pooling, RESHAPE, SOFTMAX, ADD, PAD, MEAN), written with the project's own
writers, so the seeds cover every table, storage form and option type the loaders decode.
"""

from __future__ import annotations

import numpy as np

from sdk.converters.ir import DType, Graph, Model, Operator, QuantParams, SignatureDef, Tensor


def _act(name: str, shape: tuple[int, ...], scale: float = 0.05, zp: int = 0) -> Tensor:
    return Tensor(name, shape, DType.INT8, quant=QuantParams.per_tensor(scale, zp))


def _weights(name: str, shape: tuple[int, ...], dtype: DType, axis: int,
             rng: np.random.Generator, low: int = -127, high: int = 128) -> Tensor:
    n = shape[axis]
    return Tensor(name, shape, dtype, data=rng.integers(low, high, shape).astype(dtype.numpy),
                  quant=QuantParams.per_channel(np.linspace(0.01, 0.02, n), axis=axis))


def _bias(name: str, n: int) -> Tensor:
    return Tensor(name, (n,), DType.INT32, data=np.arange(n, dtype=np.int32) - n // 2,
                  quant=QuantParams.per_channel(np.full(n, 0.0005), axis=0))


def fc_model(dtype: DType = DType.INT8, low: int = -127, high: int = 128, n: int = 6,
             k: int = 10) -> Model:
    """x[1, k] -> FULLY_CONNECTED (weights of `dtype`) -> y[1, n]."""
    rng = np.random.default_rng(n * 31 + k)
    g = Graph(name="fc")
    x = g.add_tensor(_act("x", (1, k), 0.1, 3))
    w = g.add_tensor(_weights("w", (n, k), dtype, 0, rng, low, high))
    b = g.add_tensor(_bias("b", n))
    y = g.add_tensor(_act("y", (1, n), 0.2, -1))
    g.operators = [Operator("FULLY_CONNECTED", [x, w, b], [y],
                            {"fused_activation_function": "RELU", "keep_num_dims": False})]
    g.inputs, g.outputs = [x], [y]
    return Model(graphs=[g], description="fuzz seed: fully connected")


def cnn_model(weight_dtype: DType = DType.INT8) -> Model:
    """The digits-CNN shape in miniature: conv, depthwise conv, pools, pad, add, mean,
    reshape, fully connected, softmax."""
    rng = np.random.default_rng(5)
    low, high = {DType.INT8: (-127, 128), DType.INT4: (-8, 8), DType.INT2: (-1, 2)}[weight_dtype]
    g = Graph(name="cnn")
    x = g.add_tensor(_act("image", (1, 8, 8, 1), 1 / 255, -128))
    w1 = g.add_tensor(_weights("conv/w", (4, 3, 3, 1), weight_dtype, 0, rng, low, high))
    b1 = g.add_tensor(_bias("conv/b", 4))
    c1 = g.add_tensor(_act("conv", (1, 8, 8, 4)))
    conv = Operator("CONV_2D", [x, w1, b1], [c1],
                    {"padding": "SAME", "stride_w": 1, "stride_h": 1,
                     "fused_activation_function": "RELU", "dilation_w_factor": 1,
                     "dilation_h_factor": 1})
    w2 = g.add_tensor(_weights("dw/w", (1, 3, 3, 4), weight_dtype, 3, rng, low, high))
    b2 = g.add_tensor(_bias("dw/b", 4))
    c2 = g.add_tensor(_act("dw", (1, 4, 4, 4)))
    dw = Operator("DEPTHWISE_CONV_2D", [c1, w2, b2], [c2],
                  {"padding": "SAME", "stride_w": 2, "stride_h": 2, "depth_multiplier": 1,
                   "fused_activation_function": "RELU6", "dilation_w_factor": 1,
                   "dilation_h_factor": 1})
    pads = g.add_tensor(Tensor("pads", (4, 2), DType.INT32,
                               data=np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32)))
    p = g.add_tensor(_act("pad", (1, 6, 6, 4)))
    pad = Operator("PAD", [c2, pads], [p])
    mp = g.add_tensor(_act("maxpool", (1, 3, 3, 4)))
    maxpool = Operator("MAX_POOL_2D", [p], [mp],
                       {"padding": "VALID", "stride_w": 2, "stride_h": 2, "filter_width": 2,
                        "filter_height": 2, "fused_activation_function": "NONE"})
    ap = g.add_tensor(_act("avgpool", (1, 3, 3, 4)))
    avgpool = Operator("AVERAGE_POOL_2D", [p], [ap],
                       {"padding": "VALID", "stride_w": 2, "stride_h": 2, "filter_width": 2,
                        "filter_height": 2, "fused_activation_function": "NONE"})
    s = g.add_tensor(_act("add", (1, 3, 3, 4), 0.1))
    add = Operator("ADD", [mp, ap], [s], {"fused_activation_function": "NONE"})
    axes = g.add_tensor(Tensor("axes", (2,), DType.INT32, data=np.array([1, 2], np.int32)))
    m = g.add_tensor(_act("mean", (1, 4), 0.1))
    mean = Operator("MEAN", [s, axes], [m], {"keep_dims": False})
    shape = g.add_tensor(Tensor("shape", (2,), DType.INT32, data=np.array([1, 4], np.int32)))
    r = g.add_tensor(_act("reshape", (1, 4), 0.1))
    reshape = Operator("RESHAPE", [m, shape], [r], {"new_shape": [1, 4]})
    w3 = g.add_tensor(_weights("fc/w", (10, 4), weight_dtype, 0, rng, low, high))
    b3 = g.add_tensor(_bias("fc/b", 10))
    logits = g.add_tensor(_act("logits", (1, 10), 0.2))
    fc = Operator("FULLY_CONNECTED", [r, w3, b3], [logits],
                  {"fused_activation_function": "NONE", "keep_num_dims": False})
    probs = g.add_tensor(_act("probs", (1, 10), 1 / 256, -128))
    softmax = Operator("SOFTMAX", [logits], [probs], {"beta": 1.0})
    g.operators = [conv, dw, pad, maxpool, avgpool, add, mean, reshape, fc, softmax]
    g.inputs, g.outputs = [x], [probs]
    return Model(graphs=[g], description=f"fuzz seed: cnn {weight_dtype.name}")


def _with_extras(model: Model) -> Model:
    """Metadata, a signature and a second subgraph: the tables only .tflite has."""
    g = model.graphs[0]
    model.metadata = {"min_runtime_version": b"1.14.0\0", "edgesdk": b'{"seed": true}'}
    model.signatures = [SignatureDef("serving_default", 0, {"x": g.inputs[0]},
                                     {"y": g.outputs[0]})]
    side = fc_model(n=3, k=4).graphs[0]
    side.name = "side"
    model.graphs.append(side)
    return model


def tflite_seeds() -> dict[str, bytes]:
    from sdk.converters.tflite.writer import to_tflite_bytes

    return {
        "fc_int8.tflite": to_tflite_bytes(fc_model()),
        "fc_int4.tflite": to_tflite_bytes(fc_model(DType.INT4, -8, 8)),
        "fc_int2.tflite": to_tflite_bytes(fc_model(DType.INT2, -2, 2)),
        "cnn_int8.tflite": to_tflite_bytes(cnn_model()),
        "cnn_int4.tflite": to_tflite_bytes(cnn_model(DType.INT4)),
        "extras.tflite": to_tflite_bytes(_with_extras(fc_model())),
    }


def edge_seeds() -> dict[str, bytes]:
    from sdk.converters.edge.writer import to_edge_bytes

    return {
        "fc_int8.edge": to_edge_bytes(fc_model()),
        "fc_int4.edge": to_edge_bytes(fc_model(DType.INT4, -8, 8)),
        "fc_int2.edge": to_edge_bytes(fc_model(DType.INT2, -2, 2)),
        "fc_ternary.edge": to_edge_bytes(fc_model(DType.INT2, -1, 2, n=7, k=37)),
        "cnn_int8.edge": to_edge_bytes(cnn_model()),
        "cnn_ternary.edge": to_edge_bytes(cnn_model(DType.INT2)),
    }
