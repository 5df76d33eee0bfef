"""The deployable float model of a QAT model (TensorFlow, imported only when `deployable` runs;
see `sdk.converters.qat.export`), and `qat_export`, which the exporter calls on every model."""

from __future__ import annotations

from typing import Any

from sdk.converters.qat.errors import QatError
from sdk.converters.qat.export import QatExport, WeightPin
from sdk.converters.tensorflow import import_tf


def deployable(qat: Any, spec: Any) -> QatExport:
    """Rebuild `qat` without fake quantisation: each QatWeighted becomes its Keras layer with
    kernel = codes x scales and the folded bias; ActQuant layers go (their EMA ranges are kept
    for the exporter); everything else is copied."""
    tf = import_tf()
    from sdk.converters.qat.layers import ActQuant, QatWeighted

    layers = tf.keras.layers
    inp = qat.inputs[0]
    x = inputs = tf.keras.Input(tuple(inp.shape[1:]), name=inp.name.split(":")[0],
                                dtype=inp.dtype)
    pins: list[WeightPin] = []
    input_range: tuple[float, float] | None = None
    points: list[tuple[str, float, float]] = []
    weights: list[tuple[Any, list[Any]]] = []
    for layer in qat.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        if isinstance(layer, ActQuant):
            if float(layer.seen.numpy()) == 0.0:
                raise QatError(f"{layer.name}: no activation range yet: train the QAT model "
                               "(or pass calibration= to sdk.qat.prepare) before exporting")
            rng = (float(layer.lo.numpy()), float(layer.hi.numpy()))
            if input_range is None:
                input_range = rng
            else:
                points.append((layer.name, *rng))
            continue
        if isinstance(layer, QatWeighted):
            kernel, bias, codes, scales = layer.deploy_weights()
            pins.append(WeightPin(layer.name, layer.fmt, codes, scales))
            common = {"strides": layer.strides, "padding": layer.padding,
                      "dilation_rate": layer.dilation_rate, "activation": layer.activation,
                      "name": layer.source or layer.name}
            if layer.kind == "conv2d":
                new = layers.Conv2D(layer.units, layer.kernel_size, **common)
            elif layer.kind == "depthwise":
                new = layers.DepthwiseConv2D(layer.kernel_size,
                                             depth_multiplier=layer.depth_multiplier, **common)
            else:
                new = layers.Dense(layer.units, activation=layer.activation,
                                   name=common["name"])
            x = new(x)
            weights.append((new, [kernel, bias]))
            continue
        x = type(layer).from_config(layer.get_config())(x)
    model = tf.keras.Model(inputs, x, name=qat.name)
    for new, values in weights:
        new.set_weights(values)
    if input_range is None:
        raise QatError(f"{qat.name!r} has no input quantiser: it was not made by sdk.qat.prepare")
    return QatExport(spec.scheme, dict(spec.scheme_options), model, pins, input_range, points)


def qat_export(model: Any) -> QatExport | None:
    """The deployable model, trained grid and ranges of a model made by `sdk.qat.prepare`."""
    spec = getattr(model, "_edgesdk_qat", None)
    if spec is None:
        return None
    return deployable(model, spec)


__all__ = ["deployable", "qat_export"]
