"""A .tflite read into the IR and written back runs in LiteRT with bit-identical outputs."""

from __future__ import annotations

import numpy as np
import pytest

from sdk.converters.ir import DType
from sdk.converters.tflite import read_tflite, to_tflite_bytes, write_tflite
from sdk.converters.tflite.schema import schema
from sdk.run.litert import backend

from conftest import requires_tf

pytestmark = requires_tf


def _run(model: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    interp = backend().interpreter(model_content=model)
    interp.allocate_tensors()
    for detail, x in zip(interp.get_input_details(), inputs, strict=True):
        interp.set_tensor(detail["index"], x)
    interp.invoke()
    return [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]


def _inputs(model: bytes, seed: int = 0) -> list[np.ndarray]:
    interp = backend().interpreter(model_content=model)
    rng = np.random.default_rng(seed)
    out = []
    for d in interp.get_input_details():
        if np.issubdtype(d["dtype"], np.floating):
            out.append(rng.standard_normal(d["shape"]).astype(d["dtype"]))
        else:
            out.append(rng.integers(0, 5, d["shape"]).astype(d["dtype"]))
    return out


def _keras_zoo():
    import tensorflow as tf

    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(1)
    inp = tf.keras.Input((12, 12, 4), name="x")
    a = layers.Conv2D(8, 3, padding="same", use_bias=False)(inp)
    a = layers.BatchNormalization()(a)
    a = layers.LeakyReLU(0.1)(a)
    b = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="hard_swish")(inp)
    c = layers.Concatenate()([a, b])
    c = layers.ZeroPadding2D(((1, 0), (0, 1)))(c)
    c = layers.AveragePooling2D(2)(c)
    d = layers.Conv2DTranspose(6, 3, strides=2, padding="same", activation="sigmoid")(c)
    e = layers.UpSampling2D(2, interpolation="nearest")(layers.MaxPool2D(2)(d))
    f = layers.Resizing(12, 12, interpolation="bilinear")(d)
    g = layers.Add()([e, f])
    g = layers.Multiply()([g, layers.Activation("tanh")(g)])
    h = layers.Permute((3, 1, 2))(g)
    h = layers.Reshape((6, 144))(h)
    h = layers.Dense(16, activation="relu6")(h)
    out = layers.Softmax()(layers.Dense(5)(layers.GlobalAveragePooling1D()(h)))
    return tf.keras.Model(inp, out)


def _lstm_model():
    import tensorflow as tf

    tf.keras.utils.set_random_seed(2)
    inp = tf.keras.Input((7, 5), batch_size=1)
    x = tf.keras.layers.LSTM(8, return_sequences=True)(inp)
    x = tf.keras.layers.GRU(6)(x)
    return tf.keras.Model(inp, tf.keras.layers.Dense(3)(x))


def _while_model() -> bytes:
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([4], tf.float32)])
    def loop(x):
        i = tf.constant(0)
        _, y = tf.while_loop(lambda i, y: i < 5, lambda i, y: (i + 1, y * 1.5 + 1.0), [i, x])
        return {"y": y}

    conv = tf.lite.TFLiteConverter.from_concrete_functions([loop.get_concrete_function()], loop)
    return conv.convert()


def _convert(keras_model) -> bytes:
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_keras_model(keras_model).convert()


@pytest.fixture(scope="module")
def zoo(digits_float_tflite) -> dict[str, bytes]:
    return {
        "digits_cnn": digits_float_tflite.read_bytes(),
        "keras_zoo": _convert(_keras_zoo()),
        "lstm_gru": _convert(_lstm_model()),
        "while_loop": _while_model(),
    }


@pytest.mark.parametrize("name", ["digits_cnn", "keras_zoo", "lstm_gru", "while_loop"])
def test_round_trip_is_bit_identical(zoo, name: str) -> None:
    original = zoo[name]
    model = read_tflite(original)
    rewritten = to_tflite_bytes(model)
    inputs = _inputs(original)
    expected = _run(original, inputs)
    got = _run(rewritten, inputs)
    assert len(expected) == len(got)
    for e, g in zip(expected, got, strict=True):
        assert e.dtype == g.dtype and e.shape == g.shape
        assert np.array_equal(e, g), f"{name}: outputs differ after the round trip"
    # writing is deterministic and reading our own output loses nothing
    assert to_tflite_bytes(read_tflite(rewritten)) == rewritten


def test_round_trip_keeps_structure(zoo) -> None:
    model = read_tflite(zoo["keras_zoo"])
    again = read_tflite(to_tflite_bytes(model))
    assert again.op_counts() == model.op_counts()
    for a, b in zip(model.main.operators, again.main.operators, strict=True):
        assert a.type == b.type and a.attrs == b.attrs and a.version == b.version
        names = [[t.name if t else None for t in op.inputs] for op in (a, b)]
        assert names[0] == names[1]
    assert [t.name for t in again.main.inputs] == [t.name for t in model.main.inputs]
    assert again.metadata.keys() == model.metadata.keys()
    assert [s.key for s in again.signatures] == [s.key for s in model.signatures]


def test_while_model_keeps_subgraphs(zoo) -> None:
    model = read_tflite(zoo["while_loop"])
    assert len(model.graphs) == 3  # main, cond, body
    assert "WHILE" in model.main.op_counts()
    (y,) = _run(to_tflite_bytes(model), [np.arange(4, dtype=np.float32)])
    expected = np.arange(4, dtype=np.float32)
    for _ in range(5):
        expected = expected * 1.5 + 1.0
    np.testing.assert_allclose(y, expected, rtol=1e-6)


def test_write_tflite_is_atomic(tmp_path, zoo) -> None:
    model = read_tflite(zoo["digits_cnn"])
    target = tmp_path / "out.tflite"
    size = write_tflite(model, target)
    assert target.stat().st_size == size
    assert [p.name for p in tmp_path.iterdir()] == ["out.tflite"]


def test_old_files_with_only_deprecated_builtin_codes(zoo) -> None:
    """Files from before builtin_code existed set only deprecated_builtin_code."""
    m = schema.ModelT.InitFromPackedBuf(zoo["digits_cnn"], 0)
    for code in m.operatorCodes:
        code.deprecatedBuiltinCode = max(code.builtinCode, code.deprecatedBuiltinCode)
        code.builtinCode = 0
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    old = bytes(builder.Output())
    model = read_tflite(old)
    assert model.op_counts() == read_tflite(zoo["digits_cnn"]).op_counts()
    assert "ADD" not in model.op_counts()


def test_sub_byte_constants_round_trip(zoo) -> None:
    """INT4 / INT2 constants are unpacked on read and packed the same way on write."""
    from sdk.converters.tflite import packing

    rng = np.random.default_rng(0)
    for bits, dtype in ((4, DType.INT4), (2, DType.INT2)):
        lo, hi = dtype.value_range
        values = rng.integers(lo, hi + 1, size=37).astype(np.int8)
        packed = packing.pack(values, bits)
        assert len(packed) == packing.packed_size(37, bits)
        assert np.array_equal(packing.unpack(packed, 37, bits, signed=True), values)
    # known layout: first value in the lowest bits
    assert packing.pack(np.array([1, -1], np.int8), 4) == bytes([0xF1])
    assert packing.pack(np.array([1, -1, 0, -2], np.int8), 2) == bytes([0b10_00_11_01])
