"""Issue 12, class 3: per-channel activation outliers. MediaPipe's BlazeFace has depthwise
outputs where one channel spans +-283 and the median channel +-2: one per-tensor int8 scale left
the others ~1 bit, and the scores built on them lost most. Cross-layer equalisation moves the
range into the next layer's per-channel weights; the float function is unchanged."""

from __future__ import annotations

import numpy as np

import sdk
from sdk.converters.frontends import load_model
from sdk.converters.quantize import as_samples
from sdk.converters.quantize.equalize import candidate_pairs, equalize
from sdk.converters.tflite import to_tflite_bytes
from sdk.exporter import input_specs
from sdk.run.runner import LiteRTRunner

from conftest import requires_tf

pytestmark = requires_tf


def _outlier_net(consumer: str = "conv"):
    """Depthwise (no activation) whose channel 0 is 100x the others -> 1x1 conv (or a second
    depthwise) -> ReLU -> pooling -> dense."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(7)
    inp = tf.keras.Input((8, 8, 8))
    dw = tf.keras.layers.DepthwiseConv2D(3, padding="same")
    h = dw(inp)
    nxt = tf.keras.layers.Conv2D(8, 1) if consumer == "conv" else \
        tf.keras.layers.DepthwiseConv2D(3, padding="same")
    h = tf.keras.layers.ReLU()(nxt(h))
    h = tf.keras.layers.GlobalAveragePooling2D()(h)
    out = tf.keras.layers.Dense(4)(h)
    model = tf.keras.Model(inp, out)
    kernel, bias = dw.get_weights()
    kernel[:, :, 0, :] *= 100.0  # [H, W, C, multiplier]
    dw.set_weights([kernel, bias])
    w, b = nxt.get_weights()
    w[:, :, 0, :] /= 100.0  # the next layer reads the big channel with small weights
    nxt.set_weights([w, b])
    return model


def _x(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 8, 8, 8)).astype(np.float32)


def test_equalised_model_computes_the_same_function() -> None:
    model = load_model(_outlier_net()).model
    assert len(candidate_pairs(model)) == 1
    samples = as_samples(_x(32, 1), input_specs(model))
    eq = equalize(model, samples)
    assert len(eq.pairs) == 1 and eq.pairs[0].spread_before > 20 > 4 * eq.pairs[0].spread_after
    x = _x(4, 2)
    a = LiteRTRunner(to_tflite_bytes(model)).invoke([x[:1]])[0]
    b = LiteRTRunner(to_tflite_bytes(eq.model)).invoke([x[:1]])[0]
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # the input model is untouched
    assert np.abs(model.main.operators[0].inputs[1].numpy()[..., 0]).max() > 10 * np.abs(
        eq.model.main.operators[0].inputs[1].numpy()[..., 0]).max()


def test_equalisation_recovers_the_channels_an_outlier_crowded_out(tmp_path) -> None:
    for consumer in ("conv", "depthwise"):
        net = _outlier_net(consumer)
        kwargs = dict(calibration=_x(96, 3), validation=_x(32, 4), per_layer=False)
        plain = sdk.export(net, "int8", output=tmp_path / f"p_{consumer}.tflite",
                           equalize=False, **kwargs)
        equal = sdk.export(net, "int8", output=tmp_path / f"e_{consumer}.tflite", **kwargs)
        assert any("cross-layer equalisation" in n for n in equal.notes)
        gain = equal.fidelity.min_sqnr_db - plain.fidelity.min_sqnr_db
        assert gain > 6, (consumer, plain.fidelity.min_sqnr_db, equal.fidelity.min_sqnr_db)
