"""Helpers for the NPU target tests: small float models built with our IR (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def build_classifier(path: Path, *, head: str = "SOFTMAX", seed: int = 0) -> Path:
    """A float CNN: CONV_2D 3x3 (8, ReLU) on 8x8x1 -> RESHAPE -> FULLY_CONNECTED 10 -> `head`
    (SOFTMAX, or LOG_SOFTMAX: an op Ethos-U does not run)."""
    from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
    from sdk.converters.tflite.writer import write_tflite

    rng = np.random.default_rng(seed)
    g = Graph(name="main")
    x = g.add_tensor(Tensor("image", (1, 8, 8, 1), DType.FLOAT32))
    w = g.add_tensor(Tensor("conv/weights", (8, 3, 3, 1), DType.FLOAT32,
                            data=(rng.standard_normal((8, 3, 3, 1)) / 3).astype(np.float32)))
    b = g.add_tensor(Tensor("conv/bias", (8,), DType.FLOAT32,
                            data=(0.1 * rng.standard_normal(8)).astype(np.float32)))
    c = g.add_tensor(Tensor("conv", (1, 8, 8, 8), DType.FLOAT32))
    g.operators.append(Operator("CONV_2D", [x, w, b], [c], attrs={
        "padding": "SAME", "stride_w": 1, "stride_h": 1, "fused_activation_function": "RELU",
        "dilation_w_factor": 1, "dilation_h_factor": 1}))
    shape = g.add_tensor(Tensor("flatten/shape", (2,), DType.INT32,
                                data=np.array([1, 512], np.int32)))
    f = g.add_tensor(Tensor("flatten", (1, 512), DType.FLOAT32))
    g.operators.append(Operator("RESHAPE", [c, shape], [f], attrs={"new_shape": [1, 512]}))
    fw = g.add_tensor(Tensor("fc/weights", (10, 512), DType.FLOAT32,
                             data=(rng.standard_normal((10, 512)) / 20).astype(np.float32)))
    fb = g.add_tensor(Tensor("fc/bias", (10,), DType.FLOAT32, data=np.zeros(10, np.float32)))
    logits = g.add_tensor(Tensor("logits", (1, 10), DType.FLOAT32))
    g.operators.append(Operator("FULLY_CONNECTED", [f, fw, fb], [logits],
                                attrs={"fused_activation_function": "NONE"}))
    out = g.add_tensor(Tensor("probs", (1, 10), DType.FLOAT32))
    g.operators.append(Operator(head, [logits], [out],
                                attrs={"beta": 1.0} if head == "SOFTMAX" else {}))
    g.inputs, g.outputs = [x], [out]
    write_tflite(Model(graphs=[g]), path)
    return path


def images(n: int = 64, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 8, 8, 1), dtype=np.float32)
