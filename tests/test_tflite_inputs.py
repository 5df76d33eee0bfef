"""Float .tflite inputs from the wild: dynamic input shapes fixed with `input_shapes=`, sparse
weights behind DENSIFY densified at load, publishers' custom ops rewritten or refused by name.

Every model is built here with the project's writer; LiteRT running the original file is the
reference for the float outputs.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

import sdk
from sdk.base.errors import ConversionError, ModelFormatError, UnsupportedOpError
from sdk.converters.frontends import load_model
from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
from sdk.converters.tflite import read_tflite
from sdk.converters.tflite.schema import schema
from sdk.converters.tflite.sparsity import densify
from sdk.converters.tflite.writer import to_tflite_bytes
from sdk.run.litert import backend

RNG = np.random.default_rng(12)


def _run(model: bytes, *xs: np.ndarray) -> list[np.ndarray]:
    it = backend().interpreter(model_content=model, xnnpack=False)
    for d, x in zip(it.get_input_details(), xs, strict=True):
        if tuple(d["shape"]) != x.shape:
            it.resize_tensor_input(d["index"], list(x.shape), strict=False)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), xs, strict=True):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


def _op(kind: str, ins: list, outs: list, **attrs: object) -> Operator:
    return Operator(kind, ins, outs, attrs, format_extras={} if attrs else
                    {"tflite_options_type": None})


# ---------------------------------------------------------------------------- dynamic shapes
def _audio_model() -> bytes:
    """x [1, -1, 4] (audio frames of any count) -> +bias -> FULLY_CONNECTED (keep dims) ->
    MEAN over time -> [1, 3]."""
    g = Graph(name="main")
    x = g.add_tensor(Tensor("frames", (1, 1, 4), DType.FLOAT32, shape_signature=(1, -1, 4)))
    b = g.constant("bias", np.linspace(-0.5, 0.5, 4).astype(np.float32))
    h = g.add_tensor(Tensor("h", (1, 1, 4), DType.FLOAT32, shape_signature=(1, -1, 4)))
    w = g.constant("w", np.random.default_rng(1).normal(0, 0.5, (3, 4)).astype(np.float32))
    y = g.add_tensor(Tensor("y", (1, 1, 3), DType.FLOAT32, shape_signature=(1, -1, 3)))
    z = g.add_tensor(Tensor("z", (1, 3), DType.FLOAT32))
    g.operators = [
        _op("ADD", [x, b], [h], fused_activation_function="NONE"),
        _op("FULLY_CONNECTED", [h, w, None], [y], fused_activation_function="RELU",
            keep_num_dims=True, weights_format="DEFAULT", asymmetric_quantize_inputs=False),
        _op("MEAN", [y, g.constant("axes", np.array([1], np.int32))], [z], keep_dims=False),
    ]
    g.inputs, g.outputs = [x], [z]
    return to_tflite_bytes(Model([g]))


def test_input_shapes_fix_dynamic_tflite_dims_through_the_graph() -> None:
    data = _audio_model()
    loaded = load_model(data, input_shapes={"frames": (1, 50, 4)})
    g = loaded.model.main
    shapes = {t.name: (t.shape, t.shape_signature) for t in g.tensors if not t.is_constant}
    assert shapes["frames"] == ((1, 50, 4), None)
    assert shapes["h"] == ((1, 50, 4), None)
    assert shapes["y"] == ((1, 50, 3), None)
    assert shapes["z"] == ((1, 3), None)
    assert any("fixed to [1, 50, 4]" in n for n in loaded.notes)
    # the float model computes what LiteRT computes on the original file resized
    x = RNG.normal(0, 1, (1, 50, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(to_tflite_bytes(loaded.model), x)[0], _run(data, x)[0],
                               rtol=1e-6, atol=1e-6)
    # the other forms: one shape, a list of shapes, {None: shape}
    for given in ((1, 20, 4), [(1, 20, 4)], {None: (1, 20, 4)}):
        assert load_model(data, input_shapes=given).model.main.inputs[0].shape == (1, 20, 4)


def test_input_shapes_refuse_a_static_dim_and_bad_names() -> None:
    data = _audio_model()
    with pytest.raises(ConversionError, match="fixed size 4 on axis 2"):
        load_model(data, input_shapes={"frames": (1, 50, 8)})
    with pytest.raises(ConversionError, match="rank 3"):
        load_model(data, input_shapes={"frames": (50, 4)})
    with pytest.raises(ConversionError, match="not a model input"):
        load_model(data, input_shapes={"audio": (1, 50, 4)})
    with pytest.raises(ConversionError, match="positive"):
        load_model(data, input_shapes={"frames": (1, 0, 4)})


def test_unknown_options_code_is_a_conversion_error_when_shapes_are_fixed() -> None:
    """Found by mutating the audio model: an op whose BuiltinOptions code this schema does not
    know raised AttributeError in the writer when input_shapes re-serialised the model."""
    import flatbuffers

    m = schema.ModelT.InitFromPackedBuf(_audio_model(), 0)
    m.subgraphs[0].operators[0].builtinOptionsType = 201
    m.subgraphs[0].operators[0].builtinOptions = None
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    with pytest.raises(ConversionError, match="options type '<BuiltinOptions 201>'"):
        load_model(bytes(builder.Output()), input_shapes=[(1, 7, 4)])


def test_export_int8_of_a_dynamic_tflite_with_input_shapes(tmp_path: Path) -> None:
    data = _audio_model()
    calib = np.random.default_rng(6).uniform(-1, 1, (24, 30, 4)).astype(np.float32)
    result = sdk.export(data, "int8", calibration=calib, input_shapes=[(1, 30, 4)],
                        output=tmp_path / "audio_int8.tflite")
    assert result.fidelity is not None
    assert result.fidelity.outputs[0].sqnr_db > 25


# ---------------------------------------------------------------------------- sparse weights
def _csr_last_dim(dense: np.ndarray, index_type: str) -> tuple[object, np.ndarray]:
    """SparsityParameters storing `dense` with dims 0..n-2 DENSE and the last SPARSE_CSR (the
    layout MediaPipe's sparse FP16 models use), and the stored values."""
    rank = dense.ndim
    rows = dense.reshape(-1, dense.shape[-1])
    segments, indices, values = [0], [], []
    for row in rows:
        nz = np.flatnonzero(row)
        indices += nz.tolist()
        values += row[nz].tolist()
        segments.append(len(indices))
    sp = schema.SparsityParametersT()
    sp.traversalOrder = list(range(rank))
    metas = []
    for d in range(rank - 1):
        m = schema.DimensionMetadataT()
        m.format, m.denseSize = schema.DimensionType.DENSE, dense.shape[d]
        metas.append(m)
    m = schema.DimensionMetadataT()
    m.format = schema.DimensionType.SPARSE_CSR
    m.arraySegmentsType, m.arraySegments = _vec(index_type, segments)
    m.arrayIndicesType, m.arrayIndices = _vec(index_type, indices)
    metas.append(m)
    sp.dimMetadata = metas
    return sp, np.asarray(values, dense.dtype)


def _vec(index_type: str, values: list[int]) -> tuple[int, object]:
    kinds = {"int32": (schema.SparseIndexVector.Int32Vector, schema.Int32VectorT, np.int32),
             "uint16": (schema.SparseIndexVector.Uint16Vector, schema.Uint16VectorT, np.uint16),
             "uint8": (schema.SparseIndexVector.Uint8Vector, schema.Uint8VectorT, np.uint8)}
    code, cls, dt = kinds[index_type]
    v = cls()
    v.values = np.asarray(values, dt)
    return code, v


def _sparse_conv_model(index_type: str, values_delta: int = 0,
                       dangling_densify: bool = False) -> tuple[bytes, np.ndarray]:
    """x [1, 6, 6, 5] -> CONV_2D 1x1 whose FLOAT16 weights [8, 1, 1, 5] are sparse
    (DENSIFY -> DEQUANTIZE, as TensorFlow writes sparse fp16 models)."""
    rng = np.random.default_rng(2)
    w = rng.normal(0, 1, (8, 1, 1, 5)).astype(np.float16)
    w[rng.random(w.shape) < 0.6] = 0
    sp, values = _csr_last_dim(w, index_type)
    if values_delta:
        values = values[:values_delta]
    g = Graph(name="main")
    x = g.add_tensor(Tensor("x", (1, 6, 6, 5), DType.FLOAT32))
    ws = g.add_tensor(Tensor("w_sparse", w.shape, DType.FLOAT16, data=values.tobytes()))
    ws.format_extras["tflite_sparsity"] = sp
    w16 = g.add_tensor(Tensor("w16", w.shape, DType.FLOAT16))
    w32 = g.add_tensor(Tensor("w32", w.shape, DType.FLOAT32))
    y = g.add_tensor(Tensor("y", (1, 6, 6, 8), DType.FLOAT32))
    g.operators = [
        _op("DENSIFY", [ws], [w16]),
        _op("DEQUANTIZE", [w16], [w32]),
        _op("CONV_2D", [x, w32, g.constant("b", np.zeros(8, np.float32))], [y],
            padding="VALID", stride_w=1, stride_h=1, dilation_w_factor=1, dilation_h_factor=1,
            fused_activation_function="NONE"),
    ]
    if dangling_densify:
        g.operators.insert(0, _op("DENSIFY", [ws], []))
    g.inputs, g.outputs = [x], [y]
    return to_tflite_bytes(Model([g])), w


@pytest.mark.parametrize("index_type", ["uint8", "uint16", "int32"])
def test_sparse_fp16_weights_are_densified_and_densify_folded(index_type: str) -> None:
    data, w = _sparse_conv_model(index_type)
    x = RNG.normal(0, 1, (1, 6, 6, 5)).astype(np.float32)
    reference = _run(data, x)[0]  # LiteRT runs the sparse file itself
    model = read_tflite(data)
    assert "DENSIFY" not in [op.type for op in model.main.operators]
    const = next(t for t in model.main.tensors if t.name == "w_sparse")
    np.testing.assert_array_equal(const.numpy(), w)
    loaded = load_model(data)
    np.testing.assert_allclose(_run(to_tflite_bytes(loaded.model), x)[0], reference,
                               rtol=1e-5, atol=1e-5)


def test_sparse_values_that_disagree_with_the_metadata_are_refused() -> None:
    data, _ = _sparse_conv_model("uint8", values_delta=-1)
    with pytest.raises(ModelFormatError, match=r"sparsity describes .* stored values"):
        read_tflite(data)


def test_densify_without_output_is_left_alone() -> None:
    """Found by mutating the sparse models: a DENSIFY with no output raised IndexError."""
    data, _ = _sparse_conv_model("uint8", dangling_densify=True)
    ops = [op.type for op in read_tflite(data).main.operators]
    assert ops.count("DENSIFY") == 1  # the one without output stays; the real one is folded


def test_block_sparse_fc_weights_match_litert() -> None:
    """FULLY_CONNECTED weights [4, 8] in 1x4 blocks (block_map [1], uint16 vectors), run by
    LiteRT's DENSIFY from the file and densified by the reader."""
    rng = np.random.default_rng(4)
    w = rng.normal(0, 1, (4, 8)).astype(np.float32)
    w[[0, 2], 4:] = 0
    w[3, :4] = 0
    segments, indices, values = [0], [], []
    for r in range(4):
        for blk in range(2):
            if np.any(w[r, 4 * blk:4 * blk + 4]):
                indices.append(blk)
                values += w[r, 4 * blk:4 * blk + 4].tolist()
        segments.append(len(indices))
    sp = schema.SparsityParametersT()
    sp.traversalOrder, sp.blockMap = [0, 1, 2], [1]
    metas = [schema.DimensionMetadataT() for _ in range(3)]
    metas[0].format, metas[0].denseSize = schema.DimensionType.DENSE, 4
    metas[1].format = schema.DimensionType.SPARSE_CSR
    metas[1].arraySegmentsType, metas[1].arraySegments = _vec("uint16", segments)
    metas[1].arrayIndicesType, metas[1].arrayIndices = _vec("uint16", indices)
    metas[2].format, metas[2].denseSize = schema.DimensionType.DENSE, 4
    sp.dimMetadata = metas
    g = Graph(name="main")
    x = g.add_tensor(Tensor("x", (2, 8), DType.FLOAT32))
    ws = g.add_tensor(Tensor("w_sparse", (4, 8), DType.FLOAT32,
                             data=np.asarray(values, np.float32).tobytes()))
    ws.format_extras["tflite_sparsity"] = sp
    wd = g.add_tensor(Tensor("w", (4, 8), DType.FLOAT32))
    y = g.add_tensor(Tensor("y", (2, 4), DType.FLOAT32))
    g.operators = [_op("DENSIFY", [ws], [wd]),
                   _op("FULLY_CONNECTED", [x, wd, None], [y], fused_activation_function="NONE",
                       keep_num_dims=False, weights_format="DEFAULT",
                       asymmetric_quantize_inputs=False)]
    g.inputs, g.outputs = [x], [y]
    data = to_tflite_bytes(Model([g]))
    xv = rng.normal(0, 1, (2, 8)).astype(np.float32)
    reference = _run(data, xv)[0]
    np.testing.assert_allclose(reference, xv @ w.T, rtol=1e-5, atol=1e-5)  # the encoding
    model = read_tflite(data)
    np.testing.assert_array_equal(next(t for t in model.main.tensors
                                       if t.name == "w_sparse").numpy(), w)
    np.testing.assert_allclose(_run(to_tflite_bytes(model), xv)[0], reference, rtol=1e-6)


def test_block_sparse_matches_tflite_format_example() -> None:
    """The 4x4 matrix with 2x2 blocks from TFLite's schema documentation."""
    dense = np.array([[1, 0, 2, 3], [0, 4, 0, 0], [0, 0, 5, 0], [0, 0, 0, 6]], np.float32)
    sp = schema.SparsityParametersT()
    sp.traversalOrder, sp.blockMap = [0, 1, 2, 3], [0, 1]
    metas = []
    for fmt, size in ((0, 2), (1, 0), (0, 2), (0, 2)):
        m = schema.DimensionMetadataT()
        m.format, m.denseSize = fmt, size
        metas.append(m)
    metas[1].arraySegmentsType, metas[1].arraySegments = _vec("int32", [0, 2, 3])
    metas[1].arrayIndicesType, metas[1].arrayIndices = _vec("int32", [0, 1, 1])
    sp.dimMetadata = metas
    values = np.array([1, 0, 0, 4, 2, 3, 0, 0, 5, 0, 0, 6], np.float32)
    np.testing.assert_array_equal(densify(sp, (4, 4), values, "t", "f"), dense)
    metas[1].arrayIndices.values = np.array([0, 1, 2], np.int32)  # block column 2 of 2
    with pytest.raises(ModelFormatError, match="outside dimension 1 of size 2"):
        densify(sp, (4, 4), values, "t", "f")
    metas[1].arrayIndices.values = np.array([0, 1, 1], np.int32)
    metas[1].arraySegments.values = np.array([0, 3, 2], np.int32)  # decreasing
    with pytest.raises(ModelFormatError, match="never decrease"):
        densify(sp, (4, 4), values, "t", "f")


# ---------------------------------------------------------------------------- custom ops
def _transpose_conv_bias_model(padding: int = 1, code: str = "Convolution2DTransposeBias"
                               ) -> tuple[bytes, np.ndarray, np.ndarray]:
    """x [1, 4, 4, 3] -> MediaPipe Convolution2DTransposeBias (3x3, stride 2) -> [1, 8, 8, 2]."""
    w = np.random.default_rng(3).normal(0, 0.5, (2, 3, 3, 3)).astype(np.float32)
    b = np.array([0.25, -0.5], np.float32)
    g = Graph(name="main")
    x = g.add_tensor(Tensor("x", (1, 4, 4, 3), DType.FLOAT32))
    out = (1, 8, 8, 2) if padding == 1 else (1, 9, 9, 2)
    y = g.add_tensor(Tensor("y", out, DType.FLOAT32))
    g.operators = [Operator("CUSTOM", [x, g.constant("w", w), g.constant("b", b)], [y],
                            custom_code=code,
                            custom_options=struct.pack("<3i", padding, 2, 2))]
    g.inputs, g.outputs = [x], [y]
    return to_tflite_bytes(Model([g])), w, b


def _transpose_conv_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int,
                              out_hw: int) -> np.ndarray:
    """TF's conv2d_transpose (MediaPipe's kernel): scatter, then crop SAME padding."""
    n, h, wd, _ = x.shape
    o, kh, kw, _ = w.shape
    full = np.zeros((n, (h - 1) * stride + kh, (wd - 1) * stride + kw, o), np.float64)
    for i in range(h):
        for j in range(wd):
            full[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :] += np.einsum(
                "nc,oklc->nklo", x[:, i, j, :], w)
    top = (full.shape[1] - out_hw) // 2
    left = (full.shape[2] - out_hw) // 2
    return (full[:, top:top + out_hw, left:left + out_hw, :] + b).astype(np.float32)


@pytest.mark.parametrize("padding", [1, 2])
def test_mediapipe_transpose_conv_bias_becomes_transpose_conv(padding: int) -> None:
    data, w, b = _transpose_conv_bias_model(padding)
    loaded = load_model(data)
    types = [op.type for op in loaded.model.main.operators]
    assert types == ["TRANSPOSE_CONV"]
    assert any("Convolution2DTransposeBias" in n and "TRANSPOSE_CONV" in n
               for n in loaded.notes)
    x = RNG.normal(0, 1, (1, 4, 4, 3)).astype(np.float32)
    got = _run(to_tflite_bytes(loaded.model), x)[0]
    want = _transpose_conv_reference(x, w, b, 2, 8 if padding == 1 else 9)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_mediapipe_transpose_conv_bias_exports_to_int8(tmp_path: Path) -> None:
    data, _, _ = _transpose_conv_bias_model()
    # bounded inputs: held-out samples stay inside the calibrated input range
    calib = np.random.default_rng(5).uniform(-1, 1, (32, 4, 4, 3)).astype(np.float32)
    result = sdk.export(data, "int8", calibration=calib, output=tmp_path / "tconv.tflite")
    assert result.op_counts.get("TRANSPOSE_CONV") == 1
    assert result.fidelity is not None and result.fidelity.outputs[0].sqnr_db > 30


def test_transpose_conv_bias_with_bad_options_is_an_error() -> None:
    data, _, _ = _transpose_conv_bias_model(padding=3)
    with pytest.raises(ConversionError, match="padding code 3"):
        load_model(data)


def test_custom_op_without_equivalent_is_refused_by_name() -> None:
    data, _, _ = _transpose_conv_bias_model(code="MaxUnpooling2D")
    with pytest.raises(UnsupportedOpError, match=r"MaxUnpooling2D.*LiteRT has no kernel"):
        load_model(data)
