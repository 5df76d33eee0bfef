"""The Keras layers of a QAT model (TensorFlow; imported by `sdk.converters.qat.build`).

- `QatWeighted`: one Conv2D / DepthwiseConv2D / Dense with the BatchNormalization after it
  folded in (w * gamma / sqrt(var + eps), beta + (b - mean) * gamma / sqrt(var + eps), with the
  frozen moving statistics: what TensorFlow's converter folds for the exporter), its weights
  fake-quantised in the layer's weight format, then its activation (relu / relu6 / none).
- `ActQuant`: int8 fake quantisation of an activation with an exponential moving average of the
  batch min / max (the range the exporter then uses for that tensor).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from sdk.converters.qat.quantizers import LSQ_FORMATS, fake_quant_activations, quantize_weights

KINDS = ("conv2d", "depthwise", "dense")
ACTIVATIONS = ("linear", "relu", "relu6")


class QatWeighted(tf.keras.layers.Layer):
    """A weighted layer (+ folded BatchNorm) with fake-quantised weights."""

    def __init__(self, kind: str, fmt: str, units: int, kernel_size: tuple[int, int] = (1, 1),
                 strides: tuple[int, int] = (1, 1), padding: str = "valid",
                 dilation_rate: tuple[int, int] = (1, 1), depth_multiplier: int = 1,
                 activation: str = "linear", bn_epsilon: float = 0.0, has_bn: bool = False,
                 source: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind, self.fmt, self.units = kind, fmt, int(units)
        self.kernel_size, self.strides = tuple(kernel_size), tuple(strides)
        self.padding, self.dilation_rate = padding, tuple(dilation_rate)
        self.depth_multiplier, self.activation = int(depth_multiplier), activation
        self.bn_epsilon, self.has_bn, self.source = float(bn_epsilon), bool(has_bn), source

    def build(self, input_shape: Any) -> None:
        cin = int(input_shape[-1])
        kh, kw = self.kernel_size
        if self.kind == "conv2d":
            shape: tuple[int, ...] = (kh, kw, cin, self.units)
            channels = self.units
        elif self.kind == "depthwise":
            shape, channels = (kh, kw, cin, self.depth_multiplier), cin * self.depth_multiplier
        else:
            shape, channels = (cin, self.units), self.units
        self.channels = channels
        self.kernel = self.add_weight(name="kernel", shape=shape, initializer="zeros")
        self.bias = self.add_weight(name="bias", shape=(channels,), initializer="zeros")
        if self.has_bn:
            self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
            self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")
            self.moving_mean = self.add_weight(name="moving_mean", shape=(channels,),
                                               initializer="zeros", trainable=False)
            self.moving_variance = self.add_weight(name="moving_variance", shape=(channels,),
                                                   initializer="ones", trainable=False)
        self.step = None
        if self.fmt in LSQ_FORMATS:
            self.step = self.add_weight(name="step", shape=(channels,), initializer="ones")

    # ------------------------------------------------------------ weights
    def folded(self) -> tuple[Any, Any]:
        """(kernel as [K, C], bias [C]) with the BatchNorm folded in."""
        k = tf.reshape(self.kernel, (-1, self.channels))
        b = self.bias
        if self.has_bn:
            factor = self.gamma / tf.sqrt(self.moving_variance + self.bn_epsilon)
            k = k * factor
            b = self.beta + (b - self.moving_mean) * factor
        return k, b

    def quantized(self) -> tuple[Any, Any, Any]:
        """(codes [K, C], scales [C], folded bias [C]) as the forward pass uses them."""
        k, b = self.folded()
        q, s = quantize_weights(k, self.fmt, self.step)
        return q, s, b

    def deploy_weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(kernel in the Keras layout, bias, codes [K, C], scales [C]): what the export writes."""
        q, s, b = self.quantized()
        kernel = tf.reshape(q * s, self.kernel.shape)
        return (np.asarray(kernel, np.float32), np.asarray(b, np.float32),
                np.asarray(q, np.float32), np.asarray(s, np.float32))

    def call(self, x: Any) -> Any:
        q, s, b = self.quantized()
        kernel = tf.reshape(q * s, self.kernel.shape)
        pad = self.padding.upper()
        if self.kind == "conv2d":
            y = tf.nn.conv2d(x, kernel, strides=self.strides, padding=pad,
                             dilations=self.dilation_rate)
        elif self.kind == "depthwise":
            y = tf.nn.depthwise_conv2d(x, kernel, strides=(1, *self.strides, 1), padding=pad,
                                       dilations=self.dilation_rate)
        else:
            y = tf.tensordot(x, kernel, [[-1], [0]])
        y = y + b
        if self.activation == "relu":
            y = tf.nn.relu(y)
        elif self.activation == "relu6":
            y = tf.nn.relu6(y)
        return y

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kind": self.kind, "fmt": self.fmt, "units": self.units,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "dilation_rate": self.dilation_rate,
                "depth_multiplier": self.depth_multiplier, "activation": self.activation,
                "bn_epsilon": self.bn_epsilon, "has_bn": self.has_bn, "source": self.source}


class ActQuant(tf.keras.layers.Layer):
    """int8 fake quantisation with EMA ranges (updated while training, frozen otherwise)."""

    def __init__(self, momentum: float = 0.9, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.momentum = float(momentum)

    def build(self, input_shape: Any) -> None:
        self.lo = self.add_weight(name="lo", shape=(), initializer="zeros", trainable=False)
        self.hi = self.add_weight(name="hi", shape=(), initializer="zeros", trainable=False)
        self.seen = self.add_weight(name="seen", shape=(), initializer="zeros",
                                    trainable=False)

    def call(self, x: Any, training: bool | None = None) -> Any:
        if training:
            lo, hi = tf.reduce_min(x), tf.reduce_max(x)
            m = tf.where(self.seen > 0, self.momentum, 0.0)
            self.lo.assign(m * self.lo + (1.0 - m) * lo)
            self.hi.assign(m * self.hi + (1.0 - m) * hi)
            self.seen.assign(1.0)
        return fake_quant_activations(x, self.lo, self.hi)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum}


__all__ = ["ACTIVATIONS", "KINDS", "ActQuant", "QatWeighted"]
