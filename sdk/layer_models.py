"""Single-layer .tflite models built from numpy arrays, and a one-call LiteRT runner.

Used to check the native kernels against stock LiteRT bit for bit (int8 models) and to
benchmark them against LiteRT/XNNPACK (float models, which ai-edge-quantizer then turns into
its 4-bit and 2-bit weight variants). Built with the model IR and the TFLite writer, so nothing
here needs TensorFlow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sdk.converters.ir import DType, Graph, Model, Operator, QuantParams, Tensor
from sdk.converters.tflite.writer import to_tflite_bytes

#: fused activation names as TFLite spells them, from sdk.kernels' names
TFLITE_ACTIVATIONS = {"none": "NONE", "relu": "RELU", "relu6": "RELU6",
                      "relu_n1_to_1": "RELU_N1_TO_1"}


def _model(op: Operator, inputs: list[Tensor], outputs: list[Tensor], graph: Graph) -> bytes:
    graph.operators.append(op)
    graph.inputs = inputs
    graph.outputs = outputs
    return to_tflite_bytes(Model([graph], description="edgesdk single-layer model"))


def _weight_quant(scales: np.ndarray, axis: int) -> QuantParams:
    scales = np.asarray(scales, np.float32).reshape(-1)
    return QuantParams(scales, np.zeros(scales.size, np.int64), axis=axis)


def _bias_quant(input_scale: float, scales: np.ndarray) -> QuantParams:
    s = (np.float32(input_scale) * np.asarray(scales, np.float32).reshape(-1)).astype(np.float32)
    return QuantParams(s, np.zeros(s.size, np.int64), axis=0)


def int8_fully_connected(weights: np.ndarray, scales: np.ndarray, bias: np.ndarray | None, *,
                         batch: int, input_scale: float, input_zero_point: int,
                         output_scale: float, output_zero_point: int,
                         activation: str = "none") -> bytes:
    """FULLY_CONNECTED with int8 input [batch, k], weights [n, k] (per-tensor or per-channel
    symmetric), int32 bias and int8 output [batch, n]."""
    n, k = weights.shape
    g = Graph("main")
    x = g.add_tensor(Tensor("input", (batch, k), DType.INT8,
                            quant=QuantParams.per_tensor(input_scale, input_zero_point)))
    w = g.constant("weights", np.asarray(weights, np.int8), DType.INT8,
                   quant=_weight_quant(scales, 0))
    inputs: list[Tensor | None] = [x, w, None]
    if bias is not None:
        inputs[2] = g.constant("bias", np.asarray(bias, np.int32), DType.INT32,
                               quant=_bias_quant(input_scale, scales))
    y = g.add_tensor(Tensor("output", (batch, n), DType.INT8,
                            quant=QuantParams.per_tensor(output_scale, output_zero_point)))
    op = Operator("FULLY_CONNECTED", inputs, [y], version=5,
                  attrs={"fused_activation_function": TFLITE_ACTIVATIONS[activation]})
    return _model(op, [x], [y], g)


def _conv_attrs(strides: tuple[int, int], dilations: tuple[int, int], padding: str,
                activation: str) -> dict[str, Any]:
    return {"padding": padding.upper(), "stride_h": strides[0], "stride_w": strides[1],
            "dilation_h_factor": dilations[0], "dilation_w_factor": dilations[1],
            "fused_activation_function": TFLITE_ACTIVATIONS[activation]}


def _conv_out(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    eff = (kernel - 1) * dilation + 1
    if padding.lower() == "same":
        return (size + stride - 1) // stride
    return (size - eff) // stride + 1


def int8_conv2d(filter_ohwi: np.ndarray, scales: np.ndarray, bias: np.ndarray | None, *,
                input_shape: tuple[int, int, int, int], strides: tuple[int, int] = (1, 1),
                dilations: tuple[int, int] = (1, 1), padding: str = "same",
                input_scale: float, input_zero_point: int, output_scale: float,
                output_zero_point: int, activation: str = "none") -> bytes:
    """CONV_2D, int8 NHWC, filter [O, KH, KW, I] per-channel symmetric, int32 bias."""
    o, kh, kw, _ = filter_ohwi.shape
    b, h, w_, _ = input_shape
    oh = _conv_out(h, kh, strides[0], dilations[0], padding)
    ow = _conv_out(w_, kw, strides[1], dilations[1], padding)
    g = Graph("main")
    x = g.add_tensor(Tensor("input", tuple(input_shape), DType.INT8,
                            quant=QuantParams.per_tensor(input_scale, input_zero_point)))
    f = g.constant("filter", np.asarray(filter_ohwi, np.int8), DType.INT8,
                   quant=_weight_quant(scales, 0))
    inputs: list[Tensor | None] = [x, f, None]
    if bias is not None:
        inputs[2] = g.constant("bias", np.asarray(bias, np.int32), DType.INT32,
                               quant=_bias_quant(input_scale, scales))
    y = g.add_tensor(Tensor("output", (b, oh, ow, o), DType.INT8,
                            quant=QuantParams.per_tensor(output_scale, output_zero_point)))
    op = Operator("CONV_2D", inputs, [y], version=3,
                  attrs=_conv_attrs(strides, dilations, padding, activation))
    return _model(op, [x], [y], g)


def int8_depthwise_conv2d(filter_hwc: np.ndarray, scales: np.ndarray, bias: np.ndarray | None, *,
                          input_shape: tuple[int, int, int, int], depth_multiplier: int = 1,
                          strides: tuple[int, int] = (1, 1), dilations: tuple[int, int] = (1, 1),
                          padding: str = "same", input_scale: float, input_zero_point: int,
                          output_scale: float, output_zero_point: int,
                          activation: str = "none") -> bytes:
    """DEPTHWISE_CONV_2D, int8 NHWC, filter [KH, KW, C*m] (stored as [1, KH, KW, C*m])."""
    kh, kw, cout = filter_hwc.shape
    b, h, w_, _ = input_shape
    oh = _conv_out(h, kh, strides[0], dilations[0], padding)
    ow = _conv_out(w_, kw, strides[1], dilations[1], padding)
    g = Graph("main")
    x = g.add_tensor(Tensor("input", tuple(input_shape), DType.INT8,
                            quant=QuantParams.per_tensor(input_scale, input_zero_point)))
    f = g.constant("filter", np.asarray(filter_hwc, np.int8)[None], DType.INT8,
                   quant=_weight_quant(scales, 3))
    inputs: list[Tensor | None] = [x, f, None]
    if bias is not None:
        inputs[2] = g.constant("bias", np.asarray(bias, np.int32), DType.INT32,
                               quant=_bias_quant(input_scale, scales))
    y = g.add_tensor(Tensor("output", (b, oh, ow, cout), DType.INT8,
                            quant=QuantParams.per_tensor(output_scale, output_zero_point)))
    attrs = _conv_attrs(strides, dilations, padding, activation)
    attrs["depth_multiplier"] = depth_multiplier
    op = Operator("DEPTHWISE_CONV_2D", inputs, [y], version=3, attrs=attrs)
    return _model(op, [x], [y], g)


def float_fully_connected(weights: np.ndarray, bias: np.ndarray | None, *, batch: int) -> bytes:
    """A float32 FULLY_CONNECTED [batch, k] x [n, k]^T (what ai-edge-quantizer quantises)."""
    n, k = weights.shape
    g = Graph("main")
    x = g.add_tensor(Tensor("input", (batch, k), DType.FLOAT32))
    w = g.constant("weights", np.asarray(weights, np.float32))
    inputs: list[Tensor | None] = [x, w, None]
    if bias is not None:
        inputs[2] = g.constant("bias", np.asarray(bias, np.float32))
    y = g.add_tensor(Tensor("output", (batch, n), DType.FLOAT32))
    op = Operator("FULLY_CONNECTED", inputs, [y], version=1,
                  attrs={"fused_activation_function": "NONE"})
    return _model(op, [x], [y], g)


def float_conv2d(filter_ohwi: np.ndarray, bias: np.ndarray | None, *,
                 input_shape: tuple[int, int, int, int], strides: tuple[int, int] = (1, 1),
                 padding: str = "same") -> bytes:
    """A float32 CONV_2D (NHWC, filter [O, KH, KW, I])."""
    o, kh, kw, _ = filter_ohwi.shape
    b, h, w_, _ = input_shape
    oh = _conv_out(h, kh, strides[0], 1, padding)
    ow = _conv_out(w_, kw, strides[1], 1, padding)
    g = Graph("main")
    x = g.add_tensor(Tensor("input", tuple(input_shape), DType.FLOAT32))
    f = g.constant("filter", np.asarray(filter_ohwi, np.float32))
    inputs: list[Tensor | None] = [x, f, None]
    if bias is not None:
        inputs[2] = g.constant("bias", np.asarray(bias, np.float32))
    y = g.add_tensor(Tensor("output", (b, oh, ow, o), DType.FLOAT32))
    op = Operator("CONV_2D", inputs, [y], version=1,
                  attrs=_conv_attrs(strides, (1, 1), padding, "none"))
    return _model(op, [x], [y], g)


def float_depthwise_conv2d(filter_hwc: np.ndarray, bias: np.ndarray | None, *,
                           input_shape: tuple[int, int, int, int],
                           strides: tuple[int, int] = (1, 1), padding: str = "same") -> bytes:
    """A float32 DEPTHWISE_CONV_2D, depth multiplier 1 (filter [KH, KW, C])."""
    kh, kw, c = filter_hwc.shape
    b, h, w_, _ = input_shape
    oh = _conv_out(h, kh, strides[0], 1, padding)
    ow = _conv_out(w_, kw, strides[1], 1, padding)
    g = Graph("main")
    x = g.add_tensor(Tensor("input", tuple(input_shape), DType.FLOAT32))
    f = g.constant("filter", np.asarray(filter_hwc, np.float32)[None])
    inputs: list[Tensor | None] = [x, f, None]
    if bias is not None:
        inputs[2] = g.constant("bias", np.asarray(bias, np.float32))
    y = g.add_tensor(Tensor("output", (b, oh, ow, c), DType.FLOAT32))
    attrs = _conv_attrs(strides, (1, 1), padding, "none")
    attrs["depth_multiplier"] = 1
    op = Operator("DEPTHWISE_CONV_2D", inputs, [y], version=1, attrs=attrs)
    return _model(op, [x], [y], g)


def interpreter(model: bytes, *, kernels: str = "builtin", num_threads: int | None = None) -> Any:
    """A LiteRT interpreter for `model`, tensors allocated. kernels: "builtin" (LiteRT's
    optimised builtin kernels, no XNNPACK), "reference" (TFLite's reference kernels) or
    "xnnpack" (the default delegate)."""
    from sdk.run.litert import backend

    if kernels not in ("builtin", "reference", "xnnpack"):
        raise ValueError(f"kernels must be builtin, reference or xnnpack, not {kernels!r}")
    it = backend().interpreter(model_content=model, num_threads=num_threads,
                               xnnpack=kernels == "xnnpack",
                               reference_kernels=kernels == "reference")
    it.allocate_tensors()
    return it


def run_litert(model: bytes, x: np.ndarray, *, kernels: str = "builtin") -> np.ndarray:
    """Run a single-input, single-output model once and return its output."""
    it = interpreter(model, kernels=kernels)
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])
