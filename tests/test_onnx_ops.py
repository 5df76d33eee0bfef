"""The ONNX importer op by op: each model (NCHW, as PyTorch exports them) runs in onnxruntime and,
converted, in stock LiteRT (XNNPACK and builtin kernels); outputs must agree.

Many cases put a 1x1 Conv first so the op under test sees a channels-last (NHWC) input: that is
where layout mistakes (wrong axis, wrong broadcast) would show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from conftest import requires_onnx
from onnx_testing import convert_and_compare, make_model, random

pytestmark = requires_onnx


@dataclass
class Case:
    nodes: list[Any]
    inputs: dict[str, np.ndarray]
    inits: dict[str, np.ndarray] = field(default_factory=dict)
    outputs: tuple[Any, ...] = ("y",)
    opset: int = 17
    input_shapes: Any = None
    atol: float = 1e-4
    #: TFLite op types the converted model must contain / must not contain
    has: tuple[str, ...] = ()
    lacks: tuple[str, ...] = ()
    #: exact number of TRANSPOSE ops expected (None: not checked)
    transposes: int | None = None


def node(op: str, ins: list[str], outs: list[str] | str = "y", **attrs: Any) -> Any:
    from onnx import helper

    return helper.make_node(op, ins, [outs] if isinstance(outs, str) else outs, **attrs)


def w(*shape: int, seed: int = 1, scale: float = 0.3) -> np.ndarray:
    return random(shape, seed, scale)


def conv1x1(x: str, out: str, c: int, seed: int = 7) -> tuple[Any, dict[str, np.ndarray]]:
    """A 1x1 Conv so the following op sees an NHWC-held tensor."""
    return (node("Conv", [x, f"{out}_w", f"{out}_b"], out),
            {f"{out}_w": w(c, c, 1, 1, seed=seed), f"{out}_b": w(c, seed=seed + 1)})


def with_conv(op_nodes: list[Any], x: np.ndarray, inits: dict[str, np.ndarray] | None = None,
              **kw: Any) -> Case:
    """x -> Conv1x1 -> h -> op_nodes (reading 'h')."""
    conv, cinits = conv1x1("x", "h", x.shape[1])
    return Case([conv, *op_nodes], {"x": x}, {**cinits, **(inits or {})}, **kw)


X4 = random((1, 4, 8, 8), seed=3)
X6 = random((2, 6, 7, 9), seed=4)
X3 = random((2, 5, 12), seed=5)


def _cases() -> dict[str, Callable[[], Case]]:
    c: dict[str, Callable[[], Case]] = {}

    # ---------------------------------------------------------------- convolutions
    c["conv_3x3_same"] = lambda: Case(
        [node("Conv", ["x", "w", "b"], "y", pads=[1, 1, 1, 1])], {"x": X4},
        {"w": w(6, 4, 3, 3), "b": w(6)}, has=("CONV_2D",), lacks=("PAD",), transposes=2)
    c["conv_stride2_pytorch_pads"] = lambda: Case(
        [node("Conv", ["x", "w"], "y", pads=[1, 1, 1, 1], strides=[2, 2])], {"x": X4},
        {"w": w(5, 4, 3, 3)}, has=("CONV_2D", "PAD"))
    c["conv_stride2_odd_same"] = lambda: Case(
        [node("Conv", ["x", "w"], "y", pads=[1, 1, 1, 1], strides=[2, 2])], {"x": X6[:1, :4]},
        {"w": w(5, 4, 3, 3)}, lacks=("PAD",))
    c["conv_dilated"] = lambda: Case(
        [node("Conv", ["x", "w", "b"], "y", pads=[2, 2, 2, 2], dilations=[2, 2])], {"x": X4},
        {"w": w(3, 4, 3, 3), "b": w(3)})
    c["conv_auto_pad_same_upper"] = lambda: Case(
        [node("Conv", ["x", "w"], "y", auto_pad="SAME_UPPER", strides=[2, 2],
              kernel_shape=[3, 3])], {"x": X4}, {"w": w(3, 4, 3, 3)}, lacks=("PAD",))
    c["conv_auto_pad_same_lower"] = lambda: Case(
        [node("Conv", ["x", "w"], "y", auto_pad="SAME_LOWER", strides=[2, 2],
              kernel_shape=[4, 4])], {"x": X4}, {"w": w(3, 4, 4, 4)})
    c["conv_asymmetric_pads"] = lambda: Case(
        [node("Conv", ["x", "w"], "y", pads=[0, 1, 2, 0])], {"x": X4}, {"w": w(2, 4, 3, 2)})
    c["conv_grouped"] = lambda: Case(
        [node("Conv", ["x", "w", "b"], "y", group=2, pads=[1, 1, 1, 1])], {"x": X4},
        {"w": w(6, 2, 3, 3), "b": w(6)}, has=("SPLIT", "CONCATENATION"))
    c["conv_depthwise"] = lambda: Case(
        [node("Conv", ["x", "w", "b"], "y", group=4, pads=[1, 1, 1, 1])], {"x": X4},
        {"w": w(4, 1, 3, 3), "b": w(4)}, has=("DEPTHWISE_CONV_2D",))
    c["conv_depthwise_multiplier"] = lambda: Case(
        [node("Conv", ["x", "w"], "y", group=4, strides=[2, 2])], {"x": X4},
        {"w": w(8, 1, 3, 3)}, has=("DEPTHWISE_CONV_2D",))
    c["conv1d"] = lambda: Case(
        [node("Conv", ["x", "w", "b"], "y", pads=[1, 1], strides=[2])], {"x": X3},
        {"w": w(4, 5, 3), "b": w(4)}, has=("CONV_2D",))
    c["conv_transpose_k4s2p1"] = lambda: Case(
        [node("ConvTranspose", ["x", "w", "b"], "y", strides=[2, 2], pads=[1, 1, 1, 1])],
        {"x": X4}, {"w": w(4, 3, 4, 4), "b": w(3)}, has=("TRANSPOSE_CONV",),
        lacks=("STRIDED_SLICE",))
    c["conv_transpose_output_padding"] = lambda: Case(
        [node("ConvTranspose", ["x", "w", "b"], "y", strides=[2, 2], pads=[1, 1, 1, 1],
              output_padding=[1, 1])], {"x": X4}, {"w": w(4, 3, 3, 3), "b": w(3)})
    c["conv_transpose_overhang"] = lambda: Case(
        [node("ConvTranspose", ["x", "w", "b"], "y", strides=[2, 2], output_padding=[1, 0])],
        {"x": X4}, {"w": w(4, 2, 3, 3), "b": w(2)})
    c["conv_transpose_k2s2"] = lambda: Case(
        [node("ConvTranspose", ["x", "w"], "y", strides=[2, 2])], {"x": X4},
        {"w": w(4, 5, 2, 2)})
    c["conv_transpose_grouped"] = lambda: Case(
        [node("ConvTranspose", ["x", "w", "b"], "y", strides=[2, 2], group=2,
              pads=[1, 1, 1, 1])], {"x": X4}, {"w": w(4, 3, 4, 4), "b": w(6)})
    c["conv_transpose_1d"] = lambda: Case(
        [node("ConvTranspose", ["x", "w"], "y", strides=[2], pads=[1, 1])], {"x": X3},
        {"w": w(5, 3, 4)})

    # ---------------------------------------------------------------- dense
    c["gemm_transb_bias"] = lambda: Case(
        [node("Gemm", ["x", "w", "b"], "y", transB=1)], {"x": random((3, 10))},
        {"w": w(4, 10), "b": w(4)}, has=("FULLY_CONNECTED",), lacks=("ADD",), transposes=0)
    c["gemm_alpha_beta_transa"] = lambda: Case(
        [node("Gemm", ["x", "w", "b"], "y", transA=1, alpha=0.5, beta=2.0)],
        {"x": random((10, 3))}, {"w": w(10, 4), "b": w(1, 4)}, has=("FULLY_CONNECTED",))
    c["gemm_matrix_c"] = lambda: Case(
        [node("Gemm", ["x", "w", "b"], "y", transB=1)], {"x": random((3, 10))},
        {"w": w(4, 10), "b": w(3, 4)})
    c["gemm_variable_b"] = lambda: Case(
        [node("Gemm", ["x", "z", "b"], "y", transB=1)],
        {"x": random((3, 10)), "z": random((4, 10), seed=9)}, {"b": w(4)},
        has=("BATCH_MATMUL",))
    c["matmul_const_2d"] = lambda: Case(
        [node("MatMul", ["x", "w"], "y")], {"x": random((3, 10))}, {"w": w(10, 6)},
        has=("FULLY_CONNECTED",))
    c["matmul_const_3d_with_bias"] = lambda: Case(
        [node("MatMul", ["x", "w"], "m"), node("Add", ["m", "b"], "y")],
        {"x": random((2, 5, 10))}, {"w": w(10, 6), "b": w(6)}, has=("FULLY_CONNECTED",),
        lacks=("ADD",))
    c["matmul_batched"] = lambda: Case(
        [node("MatMul", ["x", "z"], "y")],
        {"x": random((2, 3, 5, 4)), "z": random((2, 3, 4, 6), seed=2)}, has=("BATCH_MATMUL",))
    c["matmul_transposed_operand"] = lambda: Case(
        [node("Transpose", ["z"], "zt", perm=[0, 2, 1]), node("MatMul", ["x", "zt"], "y")],
        {"x": random((2, 5, 4)), "z": random((2, 6, 4), seed=2)}, transposes=0)

    # ---------------------------------------------------------------- element-wise
    c["add_channel_bias_nhwc"] = lambda: with_conv(
        [node("Add", ["h", "c"], "y")], X4, {"c": w(4, 1, 1)}, transposes=2)
    c["mul_two_activations"] = lambda: with_conv(
        [node("Mul", ["h", "x"], "y")], X4)
    c["sub_lower_rank_variable"] = lambda: Case(
        [conv1x1("x", "h", 4)[0], node("Sub", ["h", "v"], "y")],
        {"x": X4, "v": random((8,), seed=11)}, conv1x1("x", "h", 4)[1])
    c["div_by_constant"] = lambda: with_conv(
        [node("Div", ["h", "c"], "y")], X4, {"c": np.array(3.0, np.float32)}, lacks=("DIV",))
    c["div_variable"] = lambda: Case(
        [node("Div", ["x", "z"], "y")],
        {"x": random((2, 3)), "z": np.abs(random((2, 3), seed=2)) + 0.5}, has=("DIV",))
    for op in ("Relu", "Sigmoid", "Tanh", "Exp", "Abs", "Neg", "Floor", "Ceil", "HardSwish",
               "Sin", "Cos"):
        c[f"unary_{op.lower()}"] = lambda op=op: with_conv([node(op, ["h"], "y")], X4)
    c["log_sqrt"] = lambda: Case(
        [node("Abs", ["x"], "a"), node("Add", ["a", "one"], "p"), node("Log", ["p"], "l"),
         node("Sqrt", ["p"], "s"), node("Add", ["l", "s"], "y")], {"x": X4},
        {"one": np.array(1.0, np.float32)})
    c["leaky_relu"] = lambda: with_conv([node("LeakyRelu", ["h"], "y", alpha=0.2)], X4,
                                        has=("LEAKY_RELU",))
    c["elu"] = lambda: with_conv([node("Elu", ["h"], "y")], X4)
    c["elu_alpha"] = lambda: with_conv([node("Elu", ["h"], "y", alpha=0.5)], X4)
    c["softplus_mish"] = lambda: Case(
        [node("Mul", ["x", "big"], "xb"), node("Softplus", ["xb"], "s"),
         node("Tanh", ["s"], "t"), node("Mul", ["xb", "t"], "y")], {"x": X4},
        {"big": np.array(40.0, np.float32)}, atol=1e-3)
    c["prelu_channel_slope"] = lambda: with_conv([node("PRelu", ["h", "s"], "y")], X4,
                                                 {"s": w(4, 1, 1)}, has=("PRELU",))
    c["clip_relu6"] = lambda: with_conv(
        [node("Clip", ["h", "lo", "hi"], "y")], X4,
        {"lo": np.array(0, np.float32), "hi": np.array(6, np.float32)}, lacks=("RELU6",))
    c["clip_min_max"] = lambda: with_conv(
        [node("Clip", ["h", "lo", "hi"], "y")], X4,
        {"lo": np.array(-0.5, np.float32), "hi": np.array(0.7, np.float32)})
    c["clip_min_only"] = lambda: with_conv(
        [node("Clip", ["h", "lo"], "y")], X4, {"lo": np.array(0.1, np.float32)})
    c["clip_opset6_attrs"] = lambda: Case(
        [node("Clip", ["x"], "y", min=-1.0, max=1.0)], {"x": X4}, opset=6)
    c["hard_sigmoid_default"] = lambda: with_conv([node("HardSigmoid", ["h"], "y")], X4)
    c["hard_sigmoid_pytorch"] = lambda: with_conv(
        [node("HardSigmoid", ["h"], "y", alpha=1 / 6, beta=0.5)], X4)
    c["pow_exponents"] = lambda: Case(
        [node("Abs", ["x"], "a"), node("Pow", ["a", "two"], "p2"),
         node("Pow", ["a", "half"], "ph"), node("Pow", ["a", "three"], "p3"),
         node("Pow", ["a", "odd"], "po"), node("Sum", ["p2", "ph", "p3", "po"], "y")],
        {"x": X4}, {"two": np.array(2, np.float32), "half": np.array(0.5, np.float32),
                    "three": np.array(3, np.float32), "odd": np.array(1.7, np.float32)},
        atol=1e-3)
    c["max_min_mean"] = lambda: with_conv(
        [node("Max", ["h", "x"], "a"), node("Min", ["h", "x", "c"], "b"),
         node("Mean", ["a", "b"], "y")], X4, {"c": np.array(0.3, np.float32)})
    c["where_greater"] = lambda: with_conv(
        [node("Greater", ["h", "x"], "g"), node("Where", ["g", "h", "x"], "y")], X4)
    c["cast_float_to_int"] = lambda: Case(
        [node("Cast", ["x"], "y", to=6)], {"x": random((3, 4), scale=5)},
        outputs=(("y", np.int32),))
    c["identity_dropout"] = lambda: with_conv(
        [node("Identity", ["h"], "i"), node("Dropout", ["i"], "y")], X4)

    # ---------------------------------------------------------------- softmax, reductions
    c["softmax_last_axis"] = lambda: Case([node("Softmax", ["x"], "y")], {"x": random((3, 7))})
    c["softmax_channels_nhwc"] = lambda: with_conv(
        [node("Softmax", ["h"], "y", axis=1)], X4, transposes=2)
    c["softmax_opset11_flatten"] = lambda: Case(
        [node("Softmax", ["x"], "y", axis=1)], {"x": random((2, 3, 4))}, opset=11)
    c["log_softmax"] = lambda: Case([node("LogSoftmax", ["x"], "y", axis=-1)],
                                    {"x": random((3, 7))}, has=("LOG_SOFTMAX",))
    c["reduce_mean_spatial"] = lambda: with_conv(
        [node("ReduceMean", ["h"], "y", axes=[2, 3], keepdims=0)], X4, transposes=1)
    c["reduce_sum_opset13"] = lambda: with_conv(
        [node("ReduceSum", ["h", "ax"], "y", keepdims=1)], X4, {"ax": np.array([1], np.int64)},
        opset=13)
    c["reduce_max_min_prod"] = lambda: Case(
        [node("ReduceMax", ["x"], "a", axes=[1], keepdims=0),
         node("ReduceMin", ["x"], "b", axes=[1], keepdims=0),
         node("ReduceProd", ["x"], "c", axes=[1], keepdims=0),
         node("Sum", ["a", "b", "c"], "y")], {"x": random((2, 3, 4))}, opset=13)
    c["reduce_sum_square"] = lambda: Case(
        [node("ReduceSumSquare", ["x"], "y", axes=[-1])], {"x": random((2, 3, 4))}, opset=13)
    c["argmax_channels"] = lambda: with_conv(
        [node("ArgMax", ["h"], "y", axis=1, keepdims=0)], X4, outputs=(("y", np.int64),))
    c["global_average_pool_flatten"] = lambda: with_conv(
        [node("GlobalAveragePool", ["h"], "g"), node("Flatten", ["g"], "y")], X4,
        has=("MEAN",), transposes=1)
    c["global_max_pool"] = lambda: with_conv([node("GlobalMaxPool", ["h"], "y")], X4)

    # ---------------------------------------------------------------- pooling
    c["maxpool_k3s2p1"] = lambda: Case(
        [node("MaxPool", ["x"], "y", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
        {"x": X4})
    c["maxpool_odd_same"] = lambda: Case(
        [node("MaxPool", ["x"], "y", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
        {"x": X6}, lacks=("PADV2",))
    c["maxpool_ceil_mode"] = lambda: Case(
        [node("MaxPool", ["x"], "y", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)],
        {"x": X6})
    c["maxpool_1d"] = lambda: Case(
        [node("MaxPool", ["x"], "y", kernel_shape=[2], strides=[2])], {"x": X3})
    c["avgpool_plain"] = lambda: Case(
        [node("AveragePool", ["x"], "y", kernel_shape=[2, 2], strides=[2, 2])], {"x": X4})
    c["avgpool_pads_count_include"] = lambda: Case(
        [node("AveragePool", ["x"], "y", kernel_shape=[3, 3], strides=[1, 1],
              pads=[1, 1, 1, 1], count_include_pad=1)], {"x": X4}, has=("PAD",))
    c["avgpool_pads_exclude_same"] = lambda: Case(
        [node("AveragePool", ["x"], "y", kernel_shape=[3, 3], pads=[1, 1, 1, 1])], {"x": X4},
        lacks=("PAD",))

    # ---------------------------------------------------------------- shapes and data movement
    c["reshape_nchw_order"] = lambda: with_conv(
        [node("Reshape", ["h", "s"], "y")], X4, {"s": np.array([1, 4, -1], np.int64)},
        transposes=2)
    c["flatten_feature_map"] = lambda: with_conv([node("Flatten", ["h"], "y")], X4)
    c["transpose_to_nhwc_is_free"] = lambda: with_conv(
        [node("Transpose", ["h"], "y", perm=[0, 2, 3, 1])], X4, transposes=1)
    c["transpose_3d"] = lambda: Case([node("Transpose", ["x"], "y", perm=[2, 0, 1])],
                                     {"x": X3})
    c["squeeze_unsqueeze"] = lambda: with_conv(
        [node("GlobalAveragePool", ["h"], "g"), node("Squeeze", ["g", "ax"], "s"),
         node("Unsqueeze", ["s", "ax0"], "y")], X4,
        {"ax": np.array([2, 3], np.int64), "ax0": np.array([0], np.int64)})
    c["concat_channels"] = lambda: with_conv(
        [node("Concat", ["h", "x", "c"], "y", axis=1)], X4, {"c": w(1, 2, 8, 8)}, transposes=2)
    c["split_equal_and_unequal"] = lambda: with_conv(
        [node("Split", ["h"], ["a", "b"], axis=1),
         node("Split", ["h", "sz"], ["c", "d"], axis=3),
         node("Add", ["a", "b"], "y"), node("Mul", ["c", "c"], "z")],
        X4, {"sz": np.array([3, 5], np.int64)}, outputs=("y", "z"))
    c["slice_steps_negative"] = lambda: with_conv(
        [node("Slice", ["h", "st", "en", "ax", "sp"], "y")], X4,
        {"st": np.array([1, -1], np.int64), "en": np.array([4, -9], np.int64),
         "ax": np.array([1, 3], np.int64), "sp": np.array([2, -2], np.int64)})
    c["gather_channels_scalar"] = lambda: with_conv(
        [node("Gather", ["h", "i"], "a", axis=1), node("Gather", ["h", "j"], "b", axis=1),
         node("Unsqueeze", ["a", "one"], "au"), node("Mul", ["au", "b"], "y"),
         node("Gather", ["h", "j"], "z", axis=3)],
        X4, {"i": np.array(2, np.int64), "j": np.array([0, 3, -1], np.int64),
             "one": np.array([1], np.int64)}, outputs=("y", "z"))
    c["gather_embedding"] = lambda: Case(
        [node("Gather", ["e", "ids"], "y")], {"ids": np.array([[1, 0, 3]], np.int64)},
        {"e": w(5, 4)}, outputs=("y",))
    c["pad_constant_and_value"] = lambda: with_conv(
        [node("Pad", ["h", "p"], "a"), node("Pad", ["h", "p", "v"], "b"),
         node("Add", ["a", "b"], "y")], X4,
        {"p": np.array([0, 0, 1, 2, 0, 1, 0, 3], np.int64), "v": np.array(0.5, np.float32)},
        has=("PAD", "PADV2"))
    c["pad_reflect"] = lambda: with_conv(
        [node("Pad", ["h", "p"], "y", mode="reflect")], X4,
        {"p": np.array([0, 0, 2, 1, 0, 0, 1, 2], np.int64)}, has=("MIRROR_PAD",))
    c["expand_and_tile"] = lambda: with_conv(
        [node("GlobalAveragePool", ["h"], "g"), node("Expand", ["g", "s"], "e"),
         node("Tile", ["h", "r"], "t"), node("Concat", ["e", "t"], "y", axis=1)], X4,
        {"s": np.array([1, 4, 8, 8], np.int64), "r": np.array([1, 1, 1, 1], np.int64)})
    c["depth_to_space_dcr_crd"] = lambda: with_conv(
        [node("DepthToSpace", ["h"], "a", blocksize=2),
         node("DepthToSpace", ["h"], "b", blocksize=2, mode="CRD"),
         node("Sub", ["a", "b"], "y")], X4)
    c["space_to_depth"] = lambda: with_conv([node("SpaceToDepth", ["h"], "y", blocksize=2)],
                                            X4)

    # ---------------------------------------------------------------- resize
    def resize(attrs: dict[str, Any], scales: list[float] | None = None,
               sizes: list[int] | None = None, x: np.ndarray = X4, **kw: Any) -> Case:
        inits = {"roi": np.zeros(0, np.float32)}
        ins = ["x", "roi"]
        if scales is not None:
            inits["scales"] = np.array(scales, np.float32)
            ins.append("scales")
        else:
            inits["scales"] = np.zeros(0, np.float32)
            inits["sizes"] = np.array(sizes, np.int64)
            ins += ["scales", "sizes"]
        return Case([node("Resize", ins, "y", **attrs)], {"x": x}, inits, **kw)

    c["resize_nearest_x2_pytorch"] = lambda: resize(
        dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        [1, 1, 2, 2], has=("RESIZE_NEAREST_NEIGHBOR",))
    c["resize_nearest_default_modes"] = lambda: resize(dict(mode="nearest"), [1, 1, 2, 2])
    c["resize_nearest_sizes_odd"] = lambda: resize(
        dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        sizes=[1, 4, 12, 20])
    c["resize_bilinear_half_pixel"] = lambda: resize(
        dict(mode="linear", coordinate_transformation_mode="half_pixel"), [1, 1, 2, 2],
        has=("RESIZE_BILINEAR",))
    c["resize_bilinear_pytorch_half_pixel_sizes"] = lambda: resize(
        dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel"),
        sizes=[2, 6, 14, 5], x=X6)
    c["resize_bilinear_align_corners"] = lambda: resize(
        dict(mode="linear", coordinate_transformation_mode="align_corners"),
        sizes=[1, 4, 13, 16])
    c["resize_bilinear_asymmetric"] = lambda: resize(
        dict(mode="linear", coordinate_transformation_mode="asymmetric"), [1, 1, 2, 2])
    c["upsample_opset9"] = lambda: Case(
        [node("Upsample", ["x", "s"], "y", mode="nearest")], {"x": X4},
        {"s": np.array([1, 1, 2, 3], np.float32)}, opset=9)

    # ---------------------------------------------------------------- normalisation
    c["batchnorm_standalone"] = lambda: Case(
        [node("BatchNormalization", ["x", "g", "b", "m", "v"], "y")], {"x": X4},
        {"g": w(4) + 1, "b": w(4, seed=2), "m": w(4, seed=3), "v": np.abs(w(4, seed=4)) + 0.5})
    c["layer_norm_op"] = lambda: Case(
        [node("LayerNormalization", ["x", "g", "b"], "y", epsilon=1e-5)],
        {"x": random((2, 5, 16))}, {"g": w(16) + 1, "b": w(16, seed=2)},
        has=("MEAN", "RSQRT"))
    c["instance_norm"] = lambda: with_conv(
        [node("InstanceNormalization", ["h", "g", "b"], "y")], X4,
        {"g": w(4) + 1, "b": w(4, seed=2)}, atol=2e-4)
    c["gelu_op_opset20"] = lambda: Case([node("Gelu", ["x"], "y")], {"x": X4}, opset=20,
                                        has=("GELU",))
    return c


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_op(name: str) -> None:
    case = CASES[name]()
    shapes = {k: (list(v.shape), v.dtype) for k, v in case.inputs.items()}
    model = make_model(case.nodes, shapes, case.outputs, case.inits, opset=case.opset)
    ir = convert_and_compare(model, case.inputs, input_shapes=case.input_shapes,
                             atol=case.atol, rtol=1e-4)
    counts = ir.op_counts()
    for op in case.has:
        assert op in counts, f"{op} missing from {counts}"
    for op in case.lacks:
        assert op not in counts, f"{op} should not be in {counts}"
    if case.transposes is not None:
        assert counts.get("TRANSPOSE", 0) == case.transposes, counts
