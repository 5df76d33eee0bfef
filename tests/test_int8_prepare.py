"""Issue 12, class 2: an INT8 export must never write a file LiteRT refuses to prepare.

A MobileNetV2 whose BatchNorm was never trained (`weights=None`: gamma 1, beta 0, mean 0,
variance 1) shrinks its activations layer after layer to ~1e-12; their int8 scales (~1e-14) made
LiteRT's builtin kernels refuse the file (`no_integer_overflow_from_quantization`: a fused RELU6's
bound 6 / scale overflows int32). XNNPACK, which takes those ops by default, hid it. Dead
channels (BatchNorm folded a ~0 gamma into the weights but kept beta) pushed the int32 bias to
the edge of its range, where the accumulation wraps."""

from __future__ import annotations

import numpy as np
import pytest

import sdk
from sdk.converters.tflite import read_tflite
from sdk.run.litert import backend
from sdk.run.runner import LiteRTRunner

from conftest import requires_tf

pytestmark = requires_tf


def _shrinking_bn_net():
    """Conv / depthwise / conv blocks with untouched BatchNorm and ReLU6 whose small weights
    shrink the activations by ~1e-4 per block (what an untrained MobileNetV2 does over 50
    layers)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    small = tf.keras.initializers.RandomNormal(stddev=1e-4)
    inp = tf.keras.Input((16, 16, 3))
    h = inp
    for layer in (tf.keras.layers.Conv2D(8, 3, padding="same", kernel_initializer=small),
                  tf.keras.layers.DepthwiseConv2D(3, padding="same",
                                                  depthwise_initializer=small),
                  tf.keras.layers.Conv2D(8, 1, kernel_initializer=small)):
        h = layer(h)
        h = tf.keras.layers.BatchNormalization()(h)
        h = tf.keras.layers.ReLU(6.0)(h)
    h = tf.keras.layers.GlobalAveragePooling2D()(h)
    out = tf.keras.layers.Dense(4, bias_initializer="ones")(h)
    return tf.keras.Model(inp, out)


def _x(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 16, 16, 3)).astype(np.float32)


def _prepares(path) -> None:
    interpreter = backend().interpreter(model_path=str(path), xnnpack=False)
    interpreter.allocate_tensors()


def test_vanishing_activations_export_a_model_that_prepares(tmp_path) -> None:
    res = sdk.export(_shrinking_bn_net(), "int8", calibration=_x(32), output=tmp_path / "m.tflite",
                     per_layer=False)
    _prepares(res.path)  # raised no_integer_overflow_from_quantization before the scale floor
    assert res.fidelity.min_sqnr_db > 30


def test_a_model_that_does_not_prepare_is_an_error_and_not_written(tmp_path,
                                                                   monkeypatch) -> None:
    from sdk.converters.quantize import ranges

    monkeypatch.setattr(ranges, "MIN_ACTIVATION_SCALE", 0.0)  # the scales as they were
    out = tmp_path / "bad.tflite"
    with pytest.raises(sdk.base.errors.ConversionError,
                       match=r"does not prepare.*(CONV_2D|DEPTHWISE_CONV_2D).*node \d+"):
        sdk.export(_shrinking_bn_net(), "int8", calibration=_x(32), output=out, per_layer=False)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_large_bias_over_small_weights_does_not_wrap(tmp_path) -> None:
    """A channel whose bias is large against its weights (a BatchNorm with a tiny gamma and a
    beta of 5): the bias must fit with room for the accumulation. At the edge of int32 (what
    the weight-scale floor wrote before) adding the products wrapped the channel to ~-5."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(1)
    inp = tf.keras.Input((8, 8, 3))
    conv = tf.keras.layers.Conv2D(4, 3, padding="same")
    bn = tf.keras.layers.BatchNormalization(epsilon=0.0)
    out = bn(conv(inp))
    model = tf.keras.Model(inp, out)
    kernel, bias = conv.get_weights()
    # channel 0: weights ~1e-5 of its bias; their int8 codes are ~50-100 once the weight scale
    # is floored for the bias, and 27 taps of positive inputs add ~3e5 to the accumulator
    kernel[..., 0] = 5.5e-5
    conv.set_weights([kernel, np.zeros_like(bias)])
    bn.set_weights([np.ones(4, np.float32), np.array([5.0, 0, 0, 0], np.float32),
                    np.zeros(4, np.float32), np.ones(4, np.float32)])
    x = np.random.default_rng(2).uniform(0, 1, (48, 8, 8, 3)).astype(np.float32)
    res = sdk.export(model, "int8", calibration=x, output=tmp_path / "b.tflite", per_layer=False)
    conv_op = next(op for op in read_tflite(res.path).main.operators if op.type == "CONV_2D")
    assert np.abs(conv_op.inputs[2].numpy().astype(np.int64)).max() <= 2**30
    expected = model.predict(x[:8], verbose=0)
    for xnnpack in (True, False):
        runner = LiteRTRunner(res.path.read_bytes(), reference=not xnnpack)
        got = np.concatenate([runner.invoke([x[i:i + 1]])[0] for i in range(8)])
        np.testing.assert_allclose(got[..., 0], expected[..., 0], atol=0.1,
                                   err_msg=f"xnnpack={xnnpack}")
