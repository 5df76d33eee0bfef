"""INT8 export end to end, against the real LiteRT interpreter (XNNPACK and builtin kernels)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import sdk
from sdk.converters.ir import DType
from sdk.converters.tflite import read_tflite
from sdk.run.litert import backend
from sdk.run.runner import LiteRTRunner

from conftest import requires_tf

pytestmark = requires_tf

#: ops that may stay float in an int8 model: the conversions at its edges
EDGE_OPS = {"QUANTIZE", "DEQUANTIZE"}


def run_model(path, x: np.ndarray, *, xnnpack: bool = True) -> np.ndarray:
    """Outputs of a .tflite (float or int8 I/O) for samples x, as float."""
    runner = LiteRTRunner(path.read_bytes(), reference=not xnnpack)
    out = []
    for i in range(len(x)):
        out.append(runner.invoke([x[i:i + 1]])[0][0])
    return np.stack(out)


def assert_full_integer(path) -> None:
    """Every compute op reads and writes int8; weights per-channel int8; biases int32 with
    scale = input scale x weight scale."""
    model = read_tflite(path)
    for op in model.main.operators:
        if op.type in EDGE_OPS:
            continue
        for t in (*op.inputs, *op.outputs):
            if t is None:
                continue
            assert t.dtype is not DType.FLOAT32, f"{op.type} has float tensor {t.name}"
        if op.type in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            x, w = op.inputs[0], op.inputs[1]
            axis = 3 if op.type == "DEPTHWISE_CONV_2D" else 0
            assert w.dtype is DType.INT8 and w.quant.axis == axis
            assert w.quant.scale.size == w.shape[axis]
            assert (w.quant.zero_point == 0).all() and np.abs(w.numpy()).max() <= 127
            b = op.inputs[2] if len(op.inputs) > 2 else None
            if b is not None:
                assert b.dtype is DType.INT32 and (b.quant.zero_point == 0).all()
                expected = np.float32(x.quant.scale[0]) * w.quant.scale.astype(np.float32)
                np.testing.assert_allclose(b.quant.scale, expected, rtol=1e-6)


@pytest.fixture(scope="module")
def digits_export(digits_keras, digits_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "digits_int8.tflite"
    result = sdk.export(digits_keras, "int8", calibration=digits_data.x_train,
                        validation=digits_data.x_test, output=out)
    return result


# ---------------------------------------------------------------------------- (a) digits CNN
def test_digits_cnn_int8_accuracy(digits_export, digits_data, digits_float_tflite) -> None:
    result = digits_export
    x, y = digits_data.x_test, digits_data.y_test
    float_pred = run_model(digits_float_tflite, x).argmax(1)
    for xnnpack in (True, False):
        int8_pred = run_model(result.path, x, xnnpack=xnnpack).argmax(1)
        float_acc, int8_acc = (float_pred == y).mean(), (int8_pred == y).mean()
        assert int8_acc >= float_acc - 0.01, (float_acc, int8_acc, xnnpack)
        assert (int8_pred == float_pred).mean() >= 0.98
    assert_full_integer(result.path)


def test_digits_export_result(digits_export, digits_data) -> None:
    result = digits_export
    assert result.path.exists() and result.size_bytes == result.path.stat().st_size
    assert result.float_size_bytes > 3 * result.size_bytes
    assert result.op_counts["CONV_2D"] == 3 and result.op_counts["FULLY_CONNECTED"] == 2
    assert result.op_counts["QUANTIZE"] == 1 and result.op_counts["DEQUANTIZE"] == 1
    assert set(result.precision.values()) == {"int8"} and not result.fallbacks
    assert result.inputs[0].dtype == "float32" and result.outputs[0].dtype == "float32"
    fid = result.fidelity
    assert fid is not None and fid.samples == len(digits_data.x_test)
    assert fid.source.startswith("validation data")
    out = fid.outputs[0]
    assert out.sqnr_db > 30 and out.cosine > 0.999 and out.top1_agreement >= 0.98
    # per-layer: every quantised layer has a finite SQNR, matched by tensor
    assert len(fid.layers) == len(result.precision)
    assert all(np.isfinite(layer.sqnr_db) for layer in fid.layers)
    conv = [layer for layer in fid.layers if layer.op_type == "CONV_2D"]
    assert conv and all(layer.sqnr_db > 30 for layer in conv)
    assert set(result.timings) >= {"load", "calibrate", "quantize", "validate", "write", "total"}
    # the JSON report beside the model round-trips
    report = json.loads(result.report_path.read_text())
    assert report["fidelity"]["outputs"][0]["sqnr_db"] == pytest.approx(out.sqnr_db)
    assert report["size_bytes"] == result.size_bytes
    assert sdk.FidelityReport.from_dict(report["fidelity"]).outputs[0].name == out.name
    assert "SQNR" in result.summary()


def test_int8_and_uint8_io(digits_float_tflite, digits_data, tmp_path) -> None:
    x = digits_data.x_train[:300]
    ref = sdk.export(digits_float_tflite, calibration=x, output=tmp_path / "f.tflite",
                     method="minmax", per_layer=False)
    for io in ("int8", "uint8"):
        res = sdk.export(digits_float_tflite, calibration=x, output=tmp_path / f"{io}.tflite",
                         method="minmax", input_type=io, output_type=io, per_layer=False)
        details = backend().interpreter(model_path=str(res.path)).get_input_details()[0]
        assert details["dtype"] == np.dtype(io)
        assert res.inputs[0].dtype == io and res.inputs[0].scale == pytest.approx(1 / 255)
        assert res.inputs[0].zero_point == (-128 if io == "int8" else 0)
        assert res.outputs[0].scale == pytest.approx(1 / 256)
        # the same arithmetic inside: identical results once the caller (de)quantises
        got = run_model(res.path, digits_data.x_test[:100])
        want = run_model(ref.path, digits_data.x_test[:100])
        np.testing.assert_allclose(got, want, atol=1 / 256 + 1e-6)
        assert res.fidelity.outputs[0].top1_agreement >= 0.98


# ---------------------------------------------------------------------------- (c) depthwise + zoo
def _zoo_keras():
    """Depthwise conv (multiplier 2) and the common int8 ops, including a TANH/LOGISTIC
    concatenation whose fixed output scales conflict (the rewrite must requantise)."""
    import tensorflow as tf

    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(3)
    inp = tf.keras.Input((12, 12, 3), name="x")
    a = layers.Conv2D(8, 3, padding="same", activation="relu6")(inp)
    b = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(inp)
    b = layers.Activation("hard_swish")(b)
    c = layers.Concatenate()([a, b])
    c = layers.BatchNormalization()(c, training=False)
    c = layers.LeakyReLU(0.1)(c)
    d = layers.MaxPool2D(2)(c)
    e = layers.AveragePooling2D(2)(c)
    f = layers.Add()([d, e])
    f = layers.Multiply()([f, layers.Activation("sigmoid")(f)])
    g = layers.UpSampling2D(2, interpolation="bilinear")(f)
    g = layers.ZeroPadding2D(1)(g)
    g = layers.DepthwiseConv2D(3, activation="relu")(g)
    h = layers.Concatenate()([layers.Activation("tanh")(g), layers.Activation("sigmoid")(g)])
    h = layers.GlobalAveragePooling2D()(h)
    h = layers.Dense(12, activation="relu")(h)
    h = layers.Reshape((3, 4))(h)
    h = layers.Permute((2, 1))(h)
    h = layers.Flatten()(h)
    out = layers.Dense(5, activation="softmax")(h)
    return tf.keras.Model(inp, out)


def test_keras_depthwise_zoo(tmp_path) -> None:
    model = _zoo_keras()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (160, 12, 12, 3)).astype(np.float32)
    res = sdk.export(model, calibration=x[:128], validation=x[128:],
                     output=tmp_path / "zoo.tflite")
    assert not res.fallbacks, res.fallbacks
    assert res.op_counts["DEPTHWISE_CONV_2D"] == 2
    assert_full_integer(res.path)
    fid = res.fidelity
    assert fid.outputs[0].sqnr_db > 25 and fid.outputs[0].top1_agreement >= 0.9
    # both kernels agree with the float model
    want = model.predict(x[128:], verbose=0)
    for xnnpack in (True, False):
        got = run_model(res.path, x[128:], xnnpack=xnnpack)
        assert np.abs(got - want).max() < 0.05


# ---------------------------------------------------------------------------- calibration
def test_calibration_sources_agree(digits_float_tflite, digits_data, tmp_path) -> None:
    """The same 64 samples given as an array, a generator, a TF-style callable, a tf.data
    Dataset of (x, y), a .npy file, a dict and a folder of PNGs give byte-identical models."""
    import tensorflow as tf
    from PIL import Image

    # PNG pixels are 8-bit: use data on the 1/255 grid so every source sees identical values
    x = np.round(digits_data.x_train[:64] * 255) / 255
    x = x.astype(np.float32)
    folder = tmp_path / "images"
    folder.mkdir()
    for i, img in enumerate(x):
        Image.fromarray(np.round(img[..., 0] * 255).astype(np.uint8), "L").save(
            folder / f"{i:03d}.png")
    np.save(tmp_path / "cal.npy", x)

    def generator():
        yield from x

    def representative():
        for img in x:
            yield [img[None]]

    sources = {
        "array": x,
        "generator": generator(),
        "callable": representative,
        "dataset": tf.data.Dataset.from_tensor_slices((x, np.zeros(64))).batch(16),
        "npy": tmp_path / "cal.npy",
        "dict": {"image": x},
        "folder": folder,
        "image_folder": sdk.ImageFolder(folder, scale=1 / 255),
    }
    blobs = {}
    for name, source in sources.items():
        res = sdk.export(digits_float_tflite, calibration=source,
                         validation=digits_data.x_test[:50], output=tmp_path / f"{name}.tflite",
                         method="mse", per_layer=False)
        assert res.calibration.samples == 64, name
        blobs[name] = res.path.read_bytes()
    assert all(b == blobs["array"] for b in blobs.values()), \
        [k for k, b in blobs.items() if b != blobs["array"]]


@pytest.mark.parametrize("method", ["minmax", "percentile", "mse"])
def test_calibration_methods(digits_float_tflite, digits_data, tmp_path, method) -> None:
    res = sdk.export(digits_float_tflite, calibration=digits_data.x_train[:400],
                     validation=digits_data.x_test, output=tmp_path / "m.tflite", method=method,
                     per_layer=False)
    assert res.calibration.method == method
    assert res.fidelity.outputs[0].top1_agreement >= 0.98
    assert res.fidelity.outputs[0].sqnr_db > 30


def test_empirical_bias_correction(digits_float_tflite, digits_data, tmp_path) -> None:
    kwargs = dict(calibration=digits_data.x_train[:300], validation=digits_data.x_test,
                  per_layer=False)
    analytic = sdk.export(digits_float_tflite, output=tmp_path / "a.tflite", **kwargs)
    empirical = sdk.export(digits_float_tflite, output=tmp_path / "e.tflite",
                           bias_correction="empirical", **kwargs)
    assert empirical.calibration.bias_correction == "empirical"
    biases = {}
    for name, res in (("a", analytic), ("e", empirical)):
        biases[name] = [op.inputs[2].numpy() for op in read_tflite(res.path).main.operators
                        if op.type in ("CONV_2D", "FULLY_CONNECTED") and op.inputs[2] is not None]
    assert any((a != e).any() for a, e in zip(biases["a"], biases["e"], strict=True))
    assert empirical.fidelity.outputs[0].top1_agreement >= 0.98
    # on this small CNN both are within noise of each other (benchmarks/export.py measures the
    # gain on a MobileNet-style net); here: it must not break anything
    assert empirical.fidelity.outputs[0].sqnr_db > analytic.fidelity.outputs[0].sqnr_db - 2.0
    with pytest.raises(sdk.base.errors.ConversionError, match="bias_correction"):
        sdk.export(digits_float_tflite, output=tmp_path / "x.tflite", bias_correction="magic",
                   **kwargs)


def test_held_out_split_is_reported(digits_float_tflite, digits_data, tmp_path) -> None:
    res = sdk.export(digits_float_tflite, calibration=digits_data.x_train[:100],
                     output=tmp_path / "s.tflite", per_layer=False)
    assert res.calibration.samples == 80
    assert res.fidelity.samples == 20 and "held out" in res.fidelity.source


def test_missing_or_bad_calibration(digits_float_tflite, tmp_path) -> None:
    out = tmp_path / "m.tflite"
    with pytest.raises(sdk.base.errors.CalibrationError, match="calibration data is required"):
        sdk.export(digits_float_tflite, "int8", output=out)
    with pytest.raises(sdk.base.errors.CalibrationError, match=r"empty|no samples"):
        sdk.export(digits_float_tflite, calibration=np.zeros((0, 8, 8, 1)), output=out)
    with pytest.raises(sdk.base.errors.CalibrationError, match=r"does not fit model input.*NHWC"):
        sdk.export(digits_float_tflite, calibration=np.zeros((5, 1, 8, 8)), output=out)
    with pytest.raises(sdk.base.errors.CalibrationError, match="no samples"):
        sdk.export(digits_float_tflite, calibration=iter([]), output=out)
    with pytest.raises(sdk.base.errors.CalibrationError, match="no images"):
        sdk.export(digits_float_tflite, calibration=tmp_path, output=out)

    def broken():
        yield np.zeros((8, 8, 1), np.float32)
        raise OSError("disk on fire")

    with pytest.raises(sdk.base.errors.CalibrationError, match="disk on fire"):
        sdk.export(digits_float_tflite, calibration=broken(), output=out)
    assert not out.exists()


def test_synthetic_calibration_says_so(digits_float_tflite, tmp_path) -> None:
    res = sdk.export(digits_float_tflite, calibration="synthetic",
                     output=tmp_path / "syn.tflite", per_layer=False)
    assert res.calibration.synthetic
    assert any("synthetic" in n for n in res.notes)
    assert any("synthetic" in n for n in res.fidelity.notes)
    assert "synthetic" in res.summary()


# ---------------------------------------------------------------------------- float islands
def test_unsupported_op_stays_float_or_fails_strict(tmp_path) -> None:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(4)
    inp = tf.keras.Input((6,))
    h = tf.keras.layers.Dense(8)(inp)
    h = tf.keras.layers.Lambda(lambda t: tf.math.exp(t * 0.1))(h)  # EXP: no int8 rule
    out = tf.keras.layers.Dense(3)(h)
    model = tf.keras.Model(inp, out)
    x = np.random.default_rng(1).standard_normal((64, 6)).astype(np.float32)
    res = sdk.export(model, calibration=x, output=tmp_path / "island.tflite")
    assert list(res.fallbacks) and "EXP" in next(iter(res.fallbacks))
    assert res.op_counts["DEQUANTIZE"] >= 2 and res.op_counts["QUANTIZE"] >= 2
    assert res.fidelity.outputs[0].sqnr_db > 25
    with pytest.raises(sdk.base.errors.UnsupportedOpError, match="EXP"):
        sdk.export(model, calibration=x, output=tmp_path / "strict.tflite", strict=True)
    assert not (tmp_path / "strict.tflite").exists()
    # a layer kept in float on request
    dense = next(name for name in res.precision if name.startswith("FULLY_CONNECTED"))
    res2 = sdk.export(model, calibration=x, output=tmp_path / "keep.tflite",
                      precision={dense: "float32"}, per_layer=False)
    assert res2.precision[dense] == "float32" and dense in res2.fallbacks


# ---------------------------------------------------------------------------- atomicity
def test_failed_export_leaves_nothing(digits_float_tflite, digits_data, tmp_path,
                                      monkeypatch) -> None:
    import sdk.exporter as export_module

    out = tmp_path / "model.tflite"
    out.write_bytes(b"previous model")

    def explode(*args, **kwargs):
        raise RuntimeError("validation crashed")

    monkeypatch.setattr(export_module, "evaluate", explode)
    with pytest.raises(RuntimeError, match="validation crashed"):
        sdk.export(digits_float_tflite, calibration=digits_data.x_train[:50], output=out)
    assert out.read_bytes() == b"previous model"
    monkeypatch.undo()

    def no_report(path, text):
        raise OSError("disk full")

    monkeypatch.setattr(export_module, "atomic_write_text", no_report)
    fresh = tmp_path / "fresh.tflite"
    with pytest.raises(OSError, match="disk full"):
        sdk.export(digits_float_tflite, calibration=digits_data.x_train[:50], output=fresh,
                   per_layer=False)
    assert not fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]


# ---------------------------------------------------------------------------- bad input
def test_malformed_models(tmp_path, digits_float_tflite, digits_data) -> None:
    x = digits_data.x_train[:20]
    good = digits_float_tflite.read_bytes()
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(good[: len(good) // 2])
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    unknown = tmp_path / "model.bin"
    unknown.write_bytes(b"hello world, not a model")
    for path in (truncated, junk, unknown, tmp_path / "missing.tflite", tmp_path):
        with pytest.raises(sdk.base.errors.ModelFormatError) as info:
            sdk.export(path, calibration=x, output=tmp_path / "out.tflite")
        assert str(path) in str(info.value)
    with pytest.raises(sdk.base.errors.ConversionError, match=r"cannot export a builtins\.dict"):
        sdk.export({"not": "a model"}, calibration=x, output=tmp_path / "out.tflite")
    assert not (tmp_path / "out.tflite").exists()
    quantized = sdk.export(digits_float_tflite, calibration=x, output=tmp_path / "q.tflite",
                           per_layer=False).path
    with pytest.raises(sdk.base.errors.ConversionError, match="already quantised"):
        sdk.export(quantized, calibration=x, output=tmp_path / "out2.tflite")


# ---------------------------------------------------------------------------- frontends
def test_saved_model_and_keras_file(tmp_path, digits_keras, digits_data) -> None:
    import tensorflow as tf

    x = digits_data.x_train[:64]
    keras_path = tmp_path / "digits.keras"
    digits_keras.save(keras_path)
    res = sdk.export(keras_path, calibration=x, output=tmp_path / "k.tflite", per_layer=False)
    assert res.source == "keras: digits"

    class Scale(tf.Module):
        def __init__(self):
            self.w = tf.Variable(np.linspace(-1, 1, 8 * 4).reshape(8, 4).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
        def __call__(self, v):
            return tf.nn.relu(tf.matmul(v, self.w))

    saved = tmp_path / "saved"
    module = Scale()
    tf.saved_model.save(module, str(saved), signatures=module.__call__)
    data = np.random.default_rng(0).standard_normal((40, 8)).astype(np.float32)
    res = sdk.export(saved, calibration=data, output=tmp_path / "s.tflite", per_layer=False)
    assert res.source == "saved_model: saved" and res.op_counts.get("FULLY_CONNECTED") == 1
    assert res.fidelity.outputs[0].sqnr_db > 30


# ---------------------------------------------------------------------------- output formats
def test_format_with_its_own_runner(digits_float_tflite, digits_data, tmp_path) -> None:
    """A format LiteRT cannot load (as .edge) plugs in with `register_format` and measures its
    outputs with its own runtime; here a stand-in that encodes TFLite and runs it in LiteRT
    through the generic ModelRunner interface (details + run)."""
    from sdk.converters import formats
    from sdk.converters.tflite import serialize
    from sdk.run.litert import backend

    class Runtime:
        def __init__(self, data: bytes):
            self.interp = backend().interpreter(model_content=data)
            self.interp.allocate_tensors()

        def get_input_details(self):
            return self.interp.get_input_details()

        def get_output_details(self):
            return self.interp.get_output_details()

        def run(self, arrays):
            for d, a in zip(self.get_input_details(), arrays, strict=True):
                self.interp.set_tensor(d["index"], a)
            self.interp.invoke()
            return [self.interp.get_tensor(d["index"]) for d in self.get_output_details()]

    fmt = formats.OutputFormat("standin", ".standin", serialize, runs_in_litert=False,
                               runner=Runtime)
    formats.register_format(fmt)
    try:
        res = sdk.export(digits_float_tflite, calibration=digits_data.x_train[:200],
                         output=tmp_path / "m.standin")
    finally:
        formats.FORMATS.pop("standin")
    assert res.format == "standin" and res.path.suffix == ".standin"
    assert res.fidelity.kernels == "standin runtime" and not res.fidelity.layers
    assert res.fidelity.outputs[0].top1_agreement >= 0.98
    with pytest.raises(sdk.base.errors.ConversionError, match="unknown output format"):
        sdk.export(digits_float_tflite, calibration=digits_data.x_train[:50],
                   output=tmp_path / "x.tflite", format="nonesuch")


def test_float16_weights_are_folded(digits_keras, digits_data, tmp_path) -> None:
    """TensorFlow's float16 conversion stores weights as FLOAT16 behind DEQUANTIZE ops; the
    frontend folds them to float32 constants, so they quantise like any float weights."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(digits_keras)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    fp16 = converter.convert()
    assert read_tflite(fp16).op_counts()["DEQUANTIZE"] >= 5
    res = sdk.export(fp16, calibration=digits_data.x_train[:200], output=tmp_path / "h.tflite",
                     validation=digits_data.x_test, per_layer=False)
    assert res.op_counts["DEQUANTIZE"] == 1 and not res.fallbacks  # only the output edge
    assert_full_integer(res.path)
    assert res.fidelity.outputs[0].top1_agreement >= 0.98
