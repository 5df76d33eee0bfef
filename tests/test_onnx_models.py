"""Whole ONNX models through the importer: a small CNN as PyTorch exports it (dynamic batch,
Conv/BN/ReLU/pool/Gemm), shape-computing subgraphs, the fused patterns, I/O layout, and the
count of TRANSPOSE ops (minimal: one at an NCHW image input, none with NHWC I/O)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from conftest import requires_onnx
from onnx_testing import convert_and_compare, make_model, random, run_onnx, run_tflite

pytestmark = requires_onnx


def node(op: str, ins: list[str], outs: list[str] | str, **attrs: Any) -> Any:
    from onnx import helper

    return helper.make_node(op, ins, [outs] if isinstance(outs, str) else outs, **attrs)


def w(*shape: int, seed: int = 1, scale: float = 0.3) -> np.ndarray:
    return random(shape, seed, scale)


def bn_params(prefix: str, c: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"{prefix}_g": (rng.random(c) + 0.5).astype(np.float32),
            f"{prefix}_b": rng.standard_normal(c).astype(np.float32) * 0.1,
            f"{prefix}_m": rng.standard_normal(c).astype(np.float32) * 0.1,
            f"{prefix}_v": (rng.random(c) + 0.5).astype(np.float32)}


def small_cnn() -> Any:
    """conv-bn-relu, maxpool, depthwise-bn-relu6, conv stride 2, flatten, gemm-relu, gemm,
    softmax; input [N, 3, 16, 16] with a dynamic batch, as torch.onnx.export writes it."""
    nodes = [
        node("Conv", ["x", "c1_w", "c1_bias"], "c1", pads=[1, 1, 1, 1]),
        node("BatchNormalization", ["c1", "bn1_g", "bn1_b", "bn1_m", "bn1_v"], "b1"),
        node("Relu", ["b1"], "r1"),
        node("MaxPool", ["r1"], "p1", kernel_shape=[2, 2], strides=[2, 2]),
        node("Conv", ["p1", "dw_w"], "dw", pads=[1, 1, 1, 1], group=8),
        node("BatchNormalization", ["dw", "bn2_g", "bn2_b", "bn2_m", "bn2_v"], "b2"),
        node("Clip", ["b2", "zero", "six"], "r2"),
        node("Conv", ["r2", "c3_w", "c3_bias"], "c3", pads=[1, 1, 1, 1], strides=[2, 2]),
        node("Relu", ["c3"], "r3"),
        node("Flatten", ["r3"], "f"),
        node("Gemm", ["f", "fc1_w", "fc1_b"], "g1", transB=1),
        node("Relu", ["g1"], "h1"),
        node("Gemm", ["h1", "fc2_w", "fc2_b"], "logits", transB=1),
        node("Softmax", ["logits"], "probs", axis=1),
    ]
    inits = {"c1_w": w(8, 3, 3, 3), "c1_bias": w(8, seed=2), "dw_w": w(8, 1, 3, 3, seed=3),
             "c3_w": w(16, 8, 3, 3, seed=4, scale=0.2), "c3_bias": w(16, seed=5),
             "fc1_w": w(32, 16 * 4 * 4, seed=6, scale=0.1), "fc1_b": w(32, seed=7),
             "fc2_w": w(10, 32, seed=8), "fc2_b": w(10, seed=9),
             "zero": np.array(0, np.float32), "six": np.array(6, np.float32),
             **bn_params("bn1", 8, 10), **bn_params("bn2", 8, 11)}
    return make_model(nodes, {"x": ["N", 3, 16, 16]}, ["probs"], inits, opset=13)


@pytest.fixture(scope="module")
def cnn() -> Any:
    return small_cnn()


def test_cnn_matches_onnxruntime_with_one_transpose(cnn) -> None:
    x = random((1, 3, 16, 16), seed=20)
    ir = convert_and_compare(cnn, {"x": x}, atol=1e-5)
    counts = ir.op_counts()
    # BN folded, activations fused, flatten's NCHW order folded into the FC weights: the only
    # transpose left is the NCHW image input's
    # (the PAD: PyTorch's stride-2 3x3 conv with padding 1 on an even size pads 1 before, where
    # TFLite's SAME pads 1 after)
    assert counts == {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 2,
                      "MAX_POOL_2D": 1, "PAD": 1, "RESHAPE": 1, "SOFTMAX": 1, "TRANSPOSE": 1}
    assert ir.main.inputs[0].shape == (1, 3, 16, 16)
    fused = {op.type: op.attrs.get("fused_activation_function") for op in ir.main.operators}
    assert fused["DEPTHWISE_CONV_2D"] == "RELU6"
    assert fused["MAX_POOL_2D"] == "NONE"


def test_cnn_nhwc_io_has_no_transpose(cnn) -> None:
    x = random((1, 3, 16, 16), seed=21)
    ir = convert_and_compare(cnn, {"x": x}, io_layout="nhwc", atol=1e-5)
    assert "TRANSPOSE" not in ir.op_counts()
    assert ir.main.inputs[0].shape == (1, 16, 16, 3)
    assert ir.main.inputs[0].name == "x"
    assert ir.format_extras["onnx_io_perms"]["inputs"] == {"x": (0, 2, 3, 1)}


def test_dynamic_batch_fixed_by_input_shapes(cnn) -> None:
    x = random((3, 3, 16, 16), seed=22)
    ir = convert_and_compare(cnn, {"x": x}, input_shapes={None: (3, 3, 16, 16)}, atol=1e-5)
    assert ir.main.inputs[0].shape == (3, 3, 16, 16)
    ir = convert_and_compare(cnn, {"x": x}, input_shapes={"x": [3, 3, 16, 16]}, atol=1e-5)
    assert ir.main.outputs[0].shape == (3, 10)
    # also accepted: one shape for the only input, or shapes in input order
    for shapes in ((3, 3, 16, 16), [(3, 3, 16, 16)]):
        assert convert_and_compare(cnn, {"x": x}, input_shapes=shapes,
                                   atol=1e-5).main.inputs[0].shape == (3, 3, 16, 16)


def test_layers_are_quantisable(cnn) -> None:
    """What an INT8 quantiser needs: convolutions and FCs with constant float weights and
    biases, every tensor with a static shape, a signature naming the ONNX inputs/outputs."""
    from sdk.converters.onnx import read_onnx

    ir = read_onnx(cnn)
    for op in ir.main.operators:
        if op.type in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            assert len(op.inputs) == 3
            assert all(t is not None and t.is_constant and t.dtype.name == "FLOAT32"
                       for t in op.inputs[1:])
    assert all(not t.is_dynamic for t in ir.main.tensors)
    (sig,) = ir.signatures
    assert list(sig.inputs) == ["x"] and list(sig.outputs) == ["probs"]


def test_input_shapes_errors(cnn) -> None:
    from sdk.base.errors import ConversionError
    from sdk.converters.onnx import read_onnx

    with pytest.raises(ConversionError, match="not a model input"):
        read_onnx(cnn, {"image": (1, 3, 16, 16)})
    with pytest.raises(ConversionError, match="fixed size 16 on axis 2"):
        read_onnx(cnn, {None: (1, 3, 32, 32)})
    with pytest.raises(ConversionError, match="rank 4"):
        read_onnx(cnn, {None: (1, 3, 16)})


def test_dynamic_spatial_dims_need_input_shapes() -> None:
    from sdk.base.errors import ConversionError
    from sdk.converters.onnx import read_onnx

    model = make_model([node("Relu", ["x"], "y")], {"x": ["N", 3, "H", "W"]}, ["y"])
    with pytest.raises(ConversionError, match=r"input_shapes=\{'x': \(1, 3, 1, 1\)\}"):
        read_onnx(model)
    x = random((2, 3, 5, 7))
    convert_and_compare(model, {"x": x}, input_shapes={"x": (2, 3, 5, 7)})


def pytorch_style_shape_subgraphs() -> Any:
    """Shape arithmetic the way torch.onnx / paddle2onnx export it for dynamic sizes: Shape,
    Gather, Cast, Range, ConstantOfShape, Expand, Slice, Split, Unsqueeze, Concat, Div."""
    i64 = np.int64
    nodes = [
        node("Conv", ["x", "cw", "cb"], "h", pads=[1, 1, 1, 1]),
        node("Shape", ["h"], "s"),
        node("Gather", ["s", "i0"], "n", axis=0),
        node("Gather", ["s", "i2"], "hh", axis=0),
        node("Gather", ["s", "i3"], "ww", axis=0),
        node("Mul", ["hh", "ww"], "hw"),
        node("Unsqueeze", ["n", "ax0"], "n1"),
        node("Unsqueeze", ["hw", "ax0"], "hw1"),
        node("Concat", ["n1", "c4", "hw1"], "shape3", axis=0),
        node("Reshape", ["h", "shape3"], "flat"),  # [N, 4, H*W]
        node("Transpose", ["flat"], "tokens", perm=[0, 2, 1]),  # [N, H*W, 4]
        # positional ramp from Range over the height, broadcast with Expand
        node("Cast", ["hh"], "hf", to=1),
        node("Range", ["zero_f", "hf", "one_f"], "ramp"),
        node("Unsqueeze", ["hh", "ax0"], "hh1"),
        node("Concat", ["ones2", "hh1", "one1"], "rshape", axis=0),
        node("Reshape", ["ramp", "rshape"], "ramp4"),
        node("Expand", ["ramp4", "s"], "pos"),
        node("Add", ["h", "pos"], "hp"),
        # half the width via Div of a shape value, Slice; Split with sizes from the shape
        node("Div", ["ww", "two"], "half"),
        node("Unsqueeze", ["half", "ax0"], "half1"),
        node("Slice", ["hp", "zero1", "half1", "ax3"], "left"),
        node("Split", ["left", "split_sizes"], ["l1", "l2"], axis=1),
        node("ConstantOfShape", ["n1"], "fill", value=__import__("onnx").helper.make_tensor(
            "v", 1, [1], [0.5])),
        node("Unsqueeze", ["fill", "ax123"], "fill4"),
        node("Mul", ["l2", "fill4"], "scaled"),
        node("Concat", ["l1", "scaled"], "y", axis=1),
    ]
    inits = {"cw": w(4, 3, 3, 3), "cb": w(4, seed=2), "i0": np.array(0, i64),
             "i2": np.array(2, i64), "i3": np.array(3, i64), "ax0": np.array([0], i64),
             "c4": np.array([4], i64), "zero_f": np.array(0, np.float32),
             "one_f": np.array(1, np.float32), "ones2": np.array([1, 1], i64),
             "one1": np.array([1], i64), "two": np.array(2, i64), "zero1": np.array([0], i64),
             "ax3": np.array([3], i64), "split_sizes": np.array([1, 3], i64),
             "ax123": np.array([1, 2, 3], i64)}
    return make_model(nodes, {"x": ["N", 3, "H", "W"]}, ["tokens", "y"], inits)


def test_shape_subgraphs_fold_to_constants() -> None:
    model = pytorch_style_shape_subgraphs()
    x = random((2, 3, 6, 10), seed=30)
    ir = convert_and_compare(model, {"x": x}, input_shapes={None: (2, 3, 6, 10)})
    counts = ir.op_counts()
    # nothing of the shape arithmetic survives, and the tokens come out of the NHWC conv
    # output by a plain RESHAPE (the ONNX Reshape + Transpose pair needs no transpose)
    assert set(counts) <= {"CONV_2D", "ADD", "RESHAPE", "STRIDED_SLICE", "SPLIT", "SPLIT_V",
                           "MUL", "CONCATENATION", "TRANSPOSE"}, counts
    tokens = next(op for op in ir.main.operators if op.outputs[0].name == "tokens")
    assert tokens.type == "RESHAPE"
    # one transpose for the NCHW input, one for the NCHW output "y"
    assert counts["TRANSPOSE"] == 2


# ---------------------------------------------------------------- fused patterns

def _conv_then(nodes: list[Any], inits: dict[str, np.ndarray] | None = None) -> Any:
    all_nodes = [node("Conv", ["x", "cw", "cb"], "h", pads=[1, 1, 1, 1]), *nodes]
    return make_model(all_nodes, {"x": [1, 4, 6, 6]}, ["y"],
                      {"cw": w(4, 4, 3, 3), "cb": w(4, seed=2), **(inits or {})})


def _scalar(v: float) -> np.ndarray:
    return np.array(v, np.float32)


HARD_SWISH_FORMS = {
    "x_times_hardsigmoid": ([node("HardSigmoid", ["h"], "hs", alpha=1 / 6, beta=0.5),
                             node("Mul", ["h", "hs"], "y")], {}),
    "x_times_relu6_div6": ([node("Add", ["h", "three"], "a"),
                            node("Clip", ["a", "zero", "six"], "c"),
                            node("Div", ["c", "six"], "d"), node("Mul", ["h", "d"], "y")],
                           {"three": _scalar(3), "zero": _scalar(0), "six": _scalar(6)}),
    "relu6_times_x_then_div6": ([node("Add", ["three", "h"], "a"),
                                 node("Clip", ["a", "zero", "six"], "c"),
                                 node("Mul", ["c", "h"], "m"), node("Div", ["m", "six"], "y")],
                                {"three": _scalar(3), "zero": _scalar(0), "six": _scalar(6)}),
}


@pytest.mark.parametrize("form", sorted(HARD_SWISH_FORMS))
def test_hard_swish_patterns(form: str) -> None:
    nodes, inits = HARD_SWISH_FORMS[form]
    ir = convert_and_compare(_conv_then(nodes, inits), {"x": random((1, 4, 6, 6), scale=3)})
    assert ir.op_counts() == {"CONV_2D": 1, "HARD_SWISH": 1, "TRANSPOSE": 2}


def test_silu_is_logistic_times_x_not_hard_swish() -> None:
    model = _conv_then([node("Sigmoid", ["h"], "s"), node("Mul", ["h", "s"], "y")])
    ir = convert_and_compare(model, {"x": random((1, 4, 6, 6), scale=3)})
    assert ir.op_counts() == {"CONV_2D": 1, "LOGISTIC": 1, "MUL": 1, "TRANSPOSE": 2}


def test_x_times_other_hard_sigmoid_is_not_hard_swish() -> None:
    model = _conv_then([node("HardSigmoid", ["h"], "hs"), node("Mul", ["h", "hs"], "y")])
    ir = convert_and_compare(model, {"x": random((1, 4, 6, 6), scale=3)})
    assert "HARD_SWISH" not in ir.op_counts()


GELU_FORMS = {
    "times_half_last": [node("Div", ["x", "sqrt2"], "d"), node("Erf", ["d"], "e"),
                        node("Add", ["e", "one"], "a"), node("Mul", ["x", "a"], "m"),
                        node("Mul", ["m", "half"], "y")],
    "half_x_first": [node("Mul", ["x", "half"], "hx"), node("Mul", ["x", "inv_sqrt2"], "d"),
                     node("Erf", ["d"], "e"), node("Add", ["one", "e"], "a"),
                     node("Mul", ["hx", "a"], "y")],
    "half_of_erf_term": [node("Div", ["x", "sqrt2"], "d"), node("Erf", ["d"], "e"),
                         node("Add", ["e", "one"], "a"), node("Mul", ["a", "half"], "ha"),
                         node("Mul", ["x", "ha"], "y")],
}


@pytest.mark.parametrize("form", sorted(GELU_FORMS))
def test_gelu_patterns(form: str) -> None:
    inits = {"sqrt2": _scalar(math.sqrt(2)), "inv_sqrt2": _scalar(1 / math.sqrt(2)),
             "one": _scalar(1), "half": _scalar(0.5)}
    used = {n for nd in GELU_FORMS[form] for n in nd.input}
    model = make_model(GELU_FORMS[form], {"x": [2, 7, 16]}, ["y"],
                       {k: v for k, v in inits.items() if k in used})
    ir = convert_and_compare(model, {"x": random((2, 7, 16), scale=2)})
    assert ir.op_counts() == {"GELU": 1}


def test_gelu_tanh_approximation_pattern() -> None:
    """torch.nn.GELU(approximate="tanh") as torch.onnx exports it before opset 20."""
    nodes = [node("Mul", ["x", "x"], "sq"), node("Mul", ["x", "sq"], "cube"),
             node("Mul", ["kappa", "cube"], "kc"), node("Add", ["x", "kc"], "inner"),
             node("Mul", ["beta", "inner"], "arg"), node("Tanh", ["arg"], "t"),
             node("Add", ["one", "t"], "a"), node("Mul", ["x", "a"], "m"),
             node("Mul", ["half", "m"], "y")]
    inits = {"kappa": _scalar(0.044715), "beta": _scalar(math.sqrt(2 / math.pi)),
             "one": _scalar(1), "half": _scalar(0.5)}
    model = make_model(nodes, {"x": [2, 7, 16]}, ["y"], inits)
    ir = convert_and_compare(model, {"x": random((2, 7, 16), scale=2)})
    assert ir.op_counts() == {"GELU": 1}
    assert ir.main.operators[0].attrs["approximate"] is True


def test_layer_norm_pattern_becomes_keras_style_ops() -> None:
    """ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div (+ scale, bias), as exported before opset 17:
    MEAN, SUB, MUL (square), MEAN, ADD, RSQRT, MUL, MUL, ADD; no POW, DIV or SQRT."""
    nodes = [node("ReduceMean", ["x"], "mu", axes=[-1]), node("Sub", ["x", "mu"], "d"),
             node("Pow", ["d", "two"], "sq"), node("ReduceMean", ["sq"], "var", axes=[-1]),
             node("Add", ["var", "eps"], "ve"), node("Sqrt", ["ve"], "sd"),
             node("Div", ["d", "sd"], "n"), node("Mul", ["n", "gamma"], "s"),
             node("Add", ["s", "beta"], "y")]
    inits = {"two": _scalar(2), "eps": _scalar(1e-5), "gamma": w(32) + 1, "beta": w(32, seed=3)}
    model = make_model(nodes, {"x": [1, 10, 32]}, ["y"], inits, opset=13)
    ir = convert_and_compare(model, {"x": random((1, 10, 32), scale=2)})
    assert ir.op_counts() == {"ADD": 2, "MEAN": 2, "MUL": 3, "RSQRT": 1, "SUB": 1}


def test_batch_norm_folds_into_conv_transpose_and_gemm() -> None:
    nodes = [node("ConvTranspose", ["x", "tw"], "t", strides=[2, 2], pads=[1, 1, 1, 1]),
             node("BatchNormalization", ["t", "bn1_g", "bn1_b", "bn1_m", "bn1_v"], "tb"),
             node("GlobalAveragePool", ["tb"], "g"), node("Flatten", ["g"], "f"),
             node("Gemm", ["f", "fw", "fb"], "l", transB=1),
             node("BatchNormalization", ["l", "bn2_g", "bn2_b", "bn2_m", "bn2_v"], "y")]
    inits = {"tw": w(3, 6, 4, 4), "fw": w(5, 6, seed=4), "fb": w(5, seed=5),
             **bn_params("bn1", 6, 1), **bn_params("bn2", 5, 2)}
    model = make_model(nodes, {"x": [1, 3, 5, 5]}, ["y"], inits)
    ir = convert_and_compare(model, {"x": random((1, 3, 5, 5))})
    assert ir.op_counts() == {"FULLY_CONNECTED": 1, "MEAN": 1, "RESHAPE": 1, "TRANSPOSE": 1,
                              "TRANSPOSE_CONV": 1}


def test_batch_norm_not_folded_when_conv_output_is_shared() -> None:
    nodes = [node("Conv", ["x", "cw"], "c"),
             node("BatchNormalization", ["c", "bn_g", "bn_b", "bn_m", "bn_v"], "b"),
             node("Add", ["b", "c"], "y")]
    model = make_model(nodes, {"x": [1, 3, 5, 5]}, ["y"], {"cw": w(4, 3, 1, 1),
                                                           **bn_params("bn", 4, 3)})
    ir = convert_and_compare(model, {"x": random((1, 3, 5, 5))})
    assert ir.op_counts()["MUL"] == 1


def test_transformer_block_transposes_only_for_attention_heads() -> None:
    """Patch embedding (Conv stride 4 -> Reshape -> Transpose) into LayerNorm, attention
    (MatMul with K^T), Softmax and an MLP with GELU. The patch embedding, LayerNorm, MLP and
    residuals need no transpose; the four left are the multi-head splits of q, k and v and the
    merge of the heads (TensorFlow's converter writes the same for Keras' attention)."""
    d, heads = 8, 2
    nodes = [
        node("Conv", ["x", "pw", "pb"], "patches", strides=[4, 4], kernel_shape=[4, 4]),
        node("Reshape", ["patches", "s_tok"], "flat"),
        node("Transpose", ["flat"], "tok", perm=[0, 2, 1]),
        node("LayerNormalization", ["tok", "ln_g", "ln_b"], "ln", axis=-1),
        node("MatMul", ["ln", "wq"], "q"), node("MatMul", ["ln", "wk"], "k"),
        node("MatMul", ["ln", "wv"], "v"),
        node("Reshape", ["q", "s_heads"], "q4"), node("Transpose", ["q4"], "qh", perm=[0, 2, 1, 3]),
        node("Reshape", ["k", "s_heads"], "k4"), node("Transpose", ["k4"], "kh", perm=[0, 2, 3, 1]),
        node("Reshape", ["v", "s_heads"], "v4"), node("Transpose", ["v4"], "vh", perm=[0, 2, 1, 3]),
        node("MatMul", ["qh", "kh"], "att"), node("Mul", ["att", "scale"], "atts"),
        node("Softmax", ["atts"], "p", axis=-1), node("MatMul", ["p", "vh"], "o4"),
        node("Transpose", ["o4"], "ot", perm=[0, 2, 1, 3]), node("Reshape", ["ot", "s_tok2"], "o"),
        node("Add", ["tok", "o"], "r1"),
        node("MatMul", ["r1", "w1"], "m1"), node("Add", ["m1", "b1"], "m1b"),
        node("Gelu", ["m1b"], "g"), node("MatMul", ["g", "w2"], "m2"),
        node("Add", ["r1", "m2"], "y"),
    ]
    i64 = np.int64
    inits = {"pw": w(d, 3, 4, 4), "pb": w(d, seed=2), "s_tok": np.array([1, d, -1], i64),
             "ln_g": w(d, seed=3) + 1, "ln_b": w(d, seed=4), "wq": w(d, d, seed=5),
             "wk": w(d, d, seed=6), "wv": w(d, d, seed=7),
             "s_heads": np.array([1, -1, heads, d // heads], i64),
             "scale": _scalar(1 / math.sqrt(d // heads)), "s_tok2": np.array([1, -1, d], i64),
             "w1": w(d, 16, seed=8), "b1": w(16, seed=9), "w2": w(16, d, seed=10)}
    model = make_model(nodes, {"x": [1, 3, 16, 16]}, ["y"], inits, opset=20)
    ir = convert_and_compare(model, {"x": random((1, 3, 16, 16))}, io_layout="nhwc")
    counts = ir.op_counts()
    assert counts.get("TRANSPOSE", 0) == 4, counts
    assert counts["FULLY_CONNECTED"] == 5 and counts["GELU"] == 1


def test_model_from_path_and_bytes(tmp_path, cnn) -> None:
    from sdk.converters.onnx import read_onnx
    from sdk.converters.tflite import write_tflite

    path = tmp_path / "cnn.onnx"
    path.write_bytes(cnn.SerializeToString())
    x = random((1, 3, 16, 16), seed=40)
    expected = run_onnx(cnn, {"x": x})[0]
    for source in (path, str(path), path.read_bytes()):
        out = tmp_path / "cnn.tflite"
        write_tflite(read_onnx(source), out)
        got = run_tflite(out.read_bytes(), {"x": x})[0]
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_docs_list_the_supported_ops() -> None:
    """docs/onnx-input.md's op list is the converter table (regenerate: python -m
    sdk.converters.onnx)."""
    from pathlib import Path

    from sdk.converters.onnx.__main__ import ops_markdown

    page = (Path(__file__).resolve().parents[1] / "docs" / "onnx-input.md").read_text()
    listed = page.split("<!-- onnx-ops:start -->")[1].split("<!-- onnx-ops:end -->")[0]
    assert listed.strip() == ops_markdown()


def mobilenet_v3_block() -> Any:
    """Expand 1x1 + hardswish, depthwise, squeeze-excite (GAP -> 1x1 convs -> HardSigmoid ->
    Mul broadcast over H, W), project 1x1, residual; input [1, 8, 10, 10]."""
    nodes = [
        node("Conv", ["x", "ew", "eb"], "e"), node("HardSwish", ["e"], "ea"),
        node("Conv", ["ea", "dw", "db"], "d", group=16, pads=[1, 1, 1, 1]),
        node("HardSwish", ["d"], "da"),
        node("GlobalAveragePool", ["da"], "s"), node("Conv", ["s", "s1w", "s1b"], "s1"),
        node("Relu", ["s1"], "s1a"), node("Conv", ["s1a", "s2w", "s2b"], "s2"),
        node("HardSigmoid", ["s2"], "gate", alpha=1 / 6, beta=0.5),
        node("Mul", ["da", "gate"], "se"),
        node("Conv", ["se", "pw", "pb"], "p"), node("Add", ["p", "x"], "y"),
    ]
    inits = {"ew": w(16, 8, 1, 1), "eb": w(16, seed=2), "dw": w(16, 1, 3, 3, seed=3),
             "db": w(16, seed=4), "s1w": w(4, 16, 1, 1, seed=5), "s1b": w(4, seed=6),
             "s2w": w(16, 4, 1, 1, seed=7), "s2b": w(16, seed=8), "pw": w(8, 16, 1, 1, seed=9),
             "pb": w(8, seed=10)}
    return make_model(nodes, {"x": [1, 8, 10, 10]}, ["y"], inits, opset=14)


def test_mobilenet_v3_block_with_squeeze_excite() -> None:
    """The MobileNetV3 block converts all channels-last, with no transpose inside."""
    model = mobilenet_v3_block()
    ir = convert_and_compare(model, {"x": random((1, 8, 10, 10), scale=2)}, io_layout="nhwc",
                             atol=1e-4)
    counts = ir.op_counts()
    assert "TRANSPOSE" not in counts, counts
    assert counts["HARD_SWISH"] == 2 and counts["DEPTHWISE_CONV_2D"] == 1
    assert ir.main.outputs[0].shape == (1, 10, 10, 8)  # the 4-D output is NHWC too
    assert ir.format_extras["onnx_io_perms"]["outputs"] == {"y": (0, 2, 3, 1)}


def test_segmentation_head_upsample_nhwc_io() -> None:
    """Conv -> bilinear x2 (pytorch_half_pixel) -> concat with a skip -> nearest x2 -> 1x1:
    a 4-D image output; NCHW I/O costs one transpose at each end, NHWC I/O none."""
    nodes = [
        node("Conv", ["x", "c1", "b1"], "f", pads=[1, 1, 1, 1], strides=[2, 2]),
        node("Resize", ["f", "", "sc"], "u", mode="linear",
             coordinate_transformation_mode="pytorch_half_pixel"),
        node("Concat", ["u", "x"], "cat", axis=1),
        node("Resize", ["cat", "", "sc"], "u2", mode="nearest",
             coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        node("Conv", ["u2", "c2", "b2"], "y"),
    ]
    inits = {"c1": w(6, 3, 3, 3), "b1": w(6, seed=2), "sc": np.array([1, 1, 2, 2], np.float32),
             "c2": w(2, 9, 1, 1, seed=3), "b2": w(2, seed=4)}
    model = make_model(nodes, {"x": [1, 3, 8, 8]}, ["y"], inits)
    x = random((1, 3, 8, 8))
    assert convert_and_compare(model, {"x": x}).op_counts()["TRANSPOSE"] == 2
    assert "TRANSPOSE" not in convert_and_compare(model, {"x": x}, io_layout="nhwc").op_counts()


def test_initializers_listed_as_inputs_and_non_image_inputs() -> None:
    """Old exporters (IR < 4) list every initializer as a graph input too: those are constants.
    A second, non-image input keeps its ONNX order even with io_layout="nhwc"."""
    from onnx import helper

    from sdk.converters.onnx import read_onnx

    nodes = [node("Conv", ["x", "cw"], "c", pads=[1, 1, 1, 1]),
             node("GlobalAveragePool", ["c"], "g"), node("Flatten", ["g"], "f"),
             node("Concat", ["f", "meta"], "fm", axis=1),
             node("Gemm", ["fm", "fw", "fb"], "y", transB=1)]
    inits = {"cw": w(4, 3, 3, 3), "fw": w(5, 6, seed=2), "fb": w(5, seed=3)}
    model = make_model(nodes, {"x": [1, 3, 6, 6], "meta": [1, 2]}, ["y"], inits)
    for name, arr in inits.items():
        model.graph.input.append(helper.make_tensor_value_info(name, 1, list(arr.shape)))
    feeds = {"x": random((1, 3, 6, 6)), "meta": random((1, 2), seed=5)}
    ir = convert_and_compare(model, feeds, io_layout="nhwc")
    assert [t.name for t in ir.main.inputs] == ["x", "meta"]
    assert ir.main.inputs[1].shape == (1, 2)
    assert ir.format_extras["onnx_io_perms"]["inputs"] == {"x": (0, 2, 3, 1)}
    assert read_onnx(model).op_counts()["TRANSPOSE"] == 1


def test_input_normalisation_before_the_first_conv() -> None:
    """(x - mean) / std, then convs: with NHWC I/O the transpose moves up through the
    normalisation and disappears into the input."""
    nodes = [node("Sub", ["x", "mean"], "c"), node("Div", ["c", "std"], "n"),
             node("Conv", ["n", "cw", "cb"], "f", pads=[1, 1, 1, 1]), node("Relu", ["f"], "y")]
    inits = {"mean": np.array([0.4, 0.5, 0.6], np.float32).reshape(1, 3, 1, 1),
             "std": np.array([0.2, 0.25, 0.3], np.float32).reshape(3, 1, 1),
             "cw": w(4, 3, 3, 3), "cb": w(4, seed=2)}
    model = make_model(nodes, {"x": [1, 3, 8, 8]}, ["y"], inits)
    x = random((1, 3, 8, 8))
    assert convert_and_compare(model, {"x": x}).op_counts()["TRANSPOSE"] == 2
    ir = convert_and_compare(model, {"x": x}, io_layout="nhwc")
    assert "TRANSPOSE" not in ir.op_counts()
    assert ir.main.inputs[0].shape == (1, 8, 8, 3)
