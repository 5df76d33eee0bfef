"""Quantisation-aware training (issue 15): sdk.qat.prepare, fit, sdk.export on the trained grid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sdk
from sdk.converters.qat import QatError
from tests.conftest import requires_tf


def test_qat_package_does_not_import_tensorflow():
    code = ("import sys, sdk; sdk.qat; import sdk.exporter; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


@requires_tf
def test_ternary_quantiser_is_the_exporters():
    """The QAT ternary codes and scales are the exporter's (BitNet absmean / median, refit)."""
    from sdk.converters.qat.quantizers import quantize_weights
    from sdk.converters.quantize.lowbit import ternarize

    w = np.random.default_rng(0).standard_normal((72, 12)).astype(np.float32)
    w[:, 3] = 0.0  # an all-zero channel
    for fmt, rule, refit in (("ternary", "absmean", True), ("ternary-median", "median", True),
                             ("ternary-bitnet", "absmean", False)):
        q, s = quantize_weights(w, fmt)
        scales, codes = ternarize(w, 1, rule, refit)
        np.testing.assert_array_equal(np.asarray(q), codes)
        np.testing.assert_allclose(np.asarray(s), scales, rtol=1e-6)


@requires_tf
def test_lsq_steps_start_at_the_exporters_scales():
    from sdk.converters.qat.build import initial_step
    from sdk.converters.quantize.lowbit import int2_levels
    from sdk.converters.quantize.weights import symmetric_per_channel

    w = np.random.default_rng(1).standard_normal((50, 6)).astype(np.float32)
    np.testing.assert_allclose(initial_step(w, "int4"),
                               symmetric_per_channel(w.T, 0, 7, "mse", qmin=-8)[0])
    np.testing.assert_allclose(initial_step(w, "int2"), int2_levels(w.T, 0)[0])


def _codes_by_scales(path):
    """{rounded first scale: (codes as [K, C], scales)} of the weighted layers of a .tflite."""
    from sdk.converters import read_tflite

    model = read_tflite(path.read_bytes())
    out = {}
    for op in model.main.operators:
        if op.type not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "CUSTOM"):
            continue  # CUSTOM: the 2-bit convolutions (EDGE_CONV_INT2, EDGE_DWCONV_INT2)
        w = op.inputs[1] if len(op.inputs) > 1 else None
        if w is None or w.quant is None or w.quant.scale.size < 2:
            continue
        codes = np.moveaxis(w.numpy().astype(np.int64), w.quant.axis, -1)
        out[op.type, codes.shape[-1], float(np.round(w.quant.scale[0], 9))] = (
            codes.reshape(-1, codes.shape[-1]), w.quant.scale)
    return out


def _check_on_grid(qat, path):
    """Every trained layer is in the file with exactly its trained codes and scales."""
    from sdk.converters.qat import qat_export

    found = _codes_by_scales(path)
    pins = qat_export(qat).pins
    assert pins
    for pin in pins:
        matches = [v for (_, c, s0), v in found.items()
                   if c == pin.scales.size and np.isclose(s0, pin.scales[0], rtol=1e-6)]
        assert len(matches) == 1, (pin.layer, pin.fmt)
        codes, scales = matches[0]
        np.testing.assert_allclose(scales, pin.scales, rtol=1e-6)
        np.testing.assert_array_equal(codes, pin.codes.astype(np.int64))


@requires_tf
def test_digits_ternary_qat_export_reproduces_the_qat_model(digits_data, digits_keras,
                                                              tmp_path):
    import tensorflow as tf

    data = digits_data
    qat = sdk.qat.prepare(digits_keras, "ternary", calibration=data.x_train[:256])
    qat.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
                loss="sparse_categorical_crossentropy")
    qat.fit(data.x_train, data.y_train, batch_size=64, epochs=2, verbose=0)
    qat_pred = qat.predict(data.x_test, verbose=0).argmax(1)

    result = sdk.export(qat, "ternary", calibration=data.x_train, validation=data.x_test,
                        output=tmp_path / "qat.tflite", per_layer=False)
    assert sorted(set(result.precision.values())) == ["int8", "ternary/int8"] or \
        "ternary" in " ".join(str(p) for p in result.precision.values())
    assert any("trained grid" in n for n in result.notes)
    runner = sdk.Interpreter(result.path)
    pred = np.array([runner.run(x[None])[0].argmax() for x in data.x_test])
    assert (pred == qat_pred).mean() >= 0.99
    _check_on_grid(qat, result.path)

    with pytest.raises(QatError, match="prepared for 'ternary'"):
        sdk.export(qat, "int4", calibration=data.x_train[:64], output=tmp_path / "x.tflite")


@requires_tf
def test_batchnorm_int4_qat_folds_and_exports_on_grid(digits_data, tmp_path):
    import tensorflow as tf

    data = digits_data
    tf.keras.utils.set_random_seed(3)
    layers = tf.keras.layers
    inputs = tf.keras.Input((8, 8, 1), name="image")
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="c1")(inputs)
    x = layers.BatchNormalization(momentum=0.9, name="bn1")(x)
    x = layers.ReLU(name="r1")(x)
    x = layers.Conv2D(16, 3, strides=2, padding="same", name="c2")(x)
    x = layers.BatchNormalization(momentum=0.9, name="bn2")(x)
    x = layers.ReLU(6.0, name="r2")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = layers.BatchNormalization(momentum=0.9, name="bn3")(x)
    x = layers.Activation("relu", name="r3")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(24, activation="relu", name="fc")(x)
    outputs = layers.Dense(10, name="logits")(x)
    model = tf.keras.Model(inputs, outputs)
    model.compile(tf.keras.optimizers.Adam(3e-3),
                  tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(data.x_train, data.y_train, epochs=8, batch_size=64, verbose=0)

    qat = sdk.qat.prepare(model, "int4", calibration=data.x_train[:256])
    assert not any(type(lyr).__name__ == "BatchNormalization" for lyr in qat.layers)
    # folding keeps the float function (up to the weight grid): the prepared model agrees
    agree0 = (qat.predict(data.x_test, verbose=0).argmax(1)
              == model.predict(data.x_test, verbose=0).argmax(1)).mean()
    assert agree0 >= 0.9
    qat.compile("adam", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    steps = [np.asarray(v).copy() for v in qat.trainable_weights if "step" in v.path]
    assert steps  # LSQ: a learned step per output channel of every int4 layer
    qat.fit(data.x_train, data.y_train, epochs=1, batch_size=64, verbose=0)
    after = [np.asarray(v) for v in qat.trainable_weights if "step" in v.path]
    assert any(not np.allclose(a, b) for a, b in zip(steps, after, strict=True))

    result = sdk.export(qat, "int4", calibration=data.x_train, validation=data.x_test,
                        output=tmp_path / "bn.tflite", per_layer=False)
    runner = sdk.Interpreter(result.path)
    pred = np.array([runner.run(x[None])[0].argmax() for x in data.x_test])
    assert (pred == qat.predict(data.x_test, verbose=0).argmax(1)).mean() >= 0.99
    _check_on_grid(qat, result.path)


@requires_tf
def test_unsupported_models_are_refused_naming_the_layer():
    import tensorflow as tf

    layers = tf.keras.layers
    inputs = tf.keras.Input((8, 8, 1))
    a = layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    b = layers.Conv2D(4, 3, padding="same", name="b")(a)
    model = tf.keras.Model(inputs, layers.Add(name="residual")([a, b]))
    with pytest.raises(QatError, match="'residual'"):
        sdk.qat.prepare(model, "ternary")
    seq = tf.keras.Sequential([tf.keras.Input((4,)), layers.Dense(3, activation="tanh",
                                                                  name="squash")])
    with pytest.raises(QatError, match=r"'squash'.*'tanh'"):
        sdk.qat.prepare(seq, "int4")
    with pytest.raises(QatError, match="scheme"):
        sdk.qat.prepare(seq, "int3")


@requires_tf
def test_export_before_any_range_is_refused(tmp_path):
    import tensorflow as tf

    model = tf.keras.Sequential([tf.keras.Input((6,)), tf.keras.layers.Dense(4, name="d1"),
                                 tf.keras.layers.Dense(3, name="d2")])
    qat = sdk.qat.prepare(model, "int8")
    with pytest.raises(QatError, match="no activation range"):
        sdk.export(qat, "int8", calibration="synthetic", output=tmp_path / "m.tflite")


@requires_tf
def test_qat_digits_app_prints_its_accuracies(tmp_path):
    """apps/qat_digits.py (what `make demo` runs): float / PTQ / QAT accuracies as JSON, and
    exported .tflite and .edge files that agree with the QAT model."""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "apps" / "qat_digits.py"), "--epochs", "1",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["scheme"] == "ternary" and result["test_digits"] == 449
    for key in ("float_accuracy", "ptq_gptq_accuracy", "qat_model_accuracy",
                "qat_tflite_accuracy", "qat_edge_accuracy"):
        assert 0.5 < result[key] <= 1.0, key
    assert result["qat_tflite_agreement"] >= 0.99 and result["qat_edge_agreement"] >= 0.99
    assert (tmp_path / "digits_ternary_qat.edge").is_file()


@requires_tf
def test_median_ternary_options_reach_the_export(digits_data, tmp_path):
    """scheme_options given to prepare (the median variant) are the export's; others refused."""
    import tensorflow as tf

    data = digits_data
    tf.keras.utils.set_random_seed(5)
    layers = tf.keras.layers
    model = tf.keras.Sequential([
        tf.keras.Input((8, 8, 1)), layers.Conv2D(8, 3, activation="relu", name="c1"),
        layers.Conv2D(16, 3, activation="relu", name="c2"),
        layers.Conv2D(16, 3, activation="relu", name="c3"), layers.Flatten(name="flat"),
        layers.Dense(10, name="out")])
    qat = sdk.qat.prepare(model, "ternary", calibration=data.x_train[:128],
                          ternary_scale="median")
    fmts = {lyr.name: lyr.fmt for lyr in qat.layers if hasattr(lyr, "fmt")}
    assert fmts == {"c1_qat": "int8", "c2_qat": "ternary-median", "c3_qat": "ternary-median",
                    "out_qat": "int8"}
    with pytest.raises(QatError, match="ternary_scale"):
        sdk.export(qat, "ternary", calibration=data.x_train[:64], output=tmp_path / "a.tflite")
    result = sdk.export(qat, "ternary", calibration=data.x_train[:200],
                        validation=data.x_test[:100], output=tmp_path / "m.tflite",
                        scheme_options={"ternary_scale": "median"}, per_layer=False)
    _check_on_grid(qat, result.path)
    runner = sdk.Interpreter(result.path)
    pred = np.array([runner.run(x[None])[0].argmax() for x in data.x_test[:100]])
    assert (pred == qat.predict(data.x_test[:100], verbose=0).argmax(1)).mean() >= 0.99
