"""Small example models and data that work offline: scikit-learn's bundled 8x8 digits.

Used by the quick start, the tests and the benchmarks; handy for trying the SDK without a model
of your own. Needs the `[tf]` extra (TensorFlow) for the Keras model and scikit-learn for data.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DigitsData:
    """Digits as NHWC float32 images in [0, 1] (N, 8, 8, 1) with integer labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits(test_fraction: float = 0.25, seed: int = 0) -> DigitsData:
    """scikit-learn's 1,797 handwritten digits, split reproducibly into train and test."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[..., None]
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = round(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return DigitsData(x[train], y[train], x[test], y[test])


def digits_cnn(data: DigitsData | None = None, *, epochs: int = 12, seed: int = 0,
               depthwise: bool = True) -> Any:
    """Train a small CNN on the digits (a few seconds on one core) and return the Keras model.

    Conv 3x3 (16) -> [depthwise 3x3 + pointwise 32] -> conv 3x3 stride 2 (32) -> dense 64 -> dense
    10 (softmax). Deterministic for a given seed.
    """
    import tensorflow as tf

    data = data or digits()
    tf.keras.utils.set_random_seed(seed)
    with contextlib.suppress(AttributeError, RuntimeError):  # older TF lacks it
        tf.config.experimental.enable_op_determinism()
    layers = tf.keras.layers
    inputs = tf.keras.Input((8, 8, 1), name="image")
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    if depthwise:
        x = layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw2")(x)
        x = layers.Conv2D(32, 1, activation="relu", name="pw2")(x)
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv3")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(64, activation="relu", name="fc1")(x)
    outputs = layers.Dense(10, activation="softmax", name="probs")(x)
    model = tf.keras.Model(inputs, outputs, name="digits_cnn")
    model.compile(optimizer=tf.keras.optimizers.Adam(3e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data.x_train, data.y_train, batch_size=64, epochs=epochs, verbose=0, shuffle=True)
    return model


def digits_mobilenet(data: DigitsData | None = None, *, epochs: int = 24, seed: int = 0) -> Any:
    """A MobileNet-style net trained on the digits; outputs logits (no softmax).

    Conv 3x3 (16, ReLU6) -> residual block [depthwise 3x3, batch norm, hard-swish, pointwise 16]
    -> depthwise 3x3 stride 2 (multiplier 2), batch norm, ReLU6 -> pointwise 32 -> global
    average pooling -> dense 10. Exercises the ops of mobile vision models in a few seconds.
    """
    import tensorflow as tf

    data = data or digits()
    tf.keras.utils.set_random_seed(seed)
    with contextlib.suppress(AttributeError, RuntimeError):
        tf.config.experimental.enable_op_determinism()
    layers = tf.keras.layers
    inputs = tf.keras.Input((8, 8, 1), name="image")
    x = layers.Conv2D(16, 3, padding="same", activation="relu6", name="stem")(inputs)
    y = layers.DepthwiseConv2D(3, padding="same", name="dw1")(x)
    y = layers.BatchNormalization(momentum=0.9, name="bn1")(y)
    y = layers.Activation("hard_swish", name="hswish1")(y)
    y = layers.Conv2D(16, 1, name="pw1")(y)
    x = layers.Add(name="residual")([x, y])
    y = layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, name="dw2")(x)
    y = layers.BatchNormalization(momentum=0.9, name="bn2")(y)
    y = layers.ReLU(6.0, name="relu2")(y)
    x = layers.Conv2D(32, 1, activation="relu", name="pw2")(y)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(10, name="logits")(x)
    model = tf.keras.Model(inputs, outputs, name="digits_mobilenet")
    model.compile(optimizer=tf.keras.optimizers.Adam(5e-3),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(data.x_train, data.y_train, batch_size=64, epochs=epochs, verbose=0, shuffle=True)
    return model
