"""`sdk.qat.prepare`: a float Keras model -> the same model with fake quantisation (TensorFlow).

The layer formats come from the exporter's own plan (`sdk.converters.quantize.plan_for` on the
model's float .tflite): the first and last weighted layers stay INT8, a layer LiteRT cannot run
in the scheme's format gets the format the exporter would give it (INT4 for 2-bit ops without a
kernel, INT8 under the SQNR floor), so the fine-tuned model is the one the export writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sdk.converters.qat.errors import QatError
from sdk.converters.quantize import plan_for
from sdk.converters.quantize.lowbit import int2_levels
from sdk.converters.quantize.subbyte import weighted_layers
from sdk.converters.quantize.weights import symmetric_per_channel
from sdk.converters.tensorflow import import_tf, is_keras_model, keras_to_ir

SCHEMES = ("ternary", "int2", "int4", "int8")
#: layers copied as they are: they move values without changing them (the int8 rewrite gives
#: their outputs their input's quantisation)
PASS_THROUGH = ("Flatten", "Reshape", "MaxPooling2D", "Dropout")
WEIGHTED = {"Conv2D": "conv2d", "DepthwiseConv2D": "depthwise", "Dense": "dense"}
#: IR op of each Keras weighted layer, and the IR weight axis holding its output channels
IR_OPS = {"conv2d": ("CONV_2D", 0), "depthwise": ("DEPTHWISE_CONV_2D", 3),
          "dense": ("FULLY_CONNECTED", 0)}


@dataclass(frozen=True)
class QatSpec:
    """What `prepare` did, kept on the QAT model (`model._edgesdk_qat`) for `sdk.export`."""

    scheme: str
    scheme_options: tuple[tuple[str, Any], ...]
    formats: tuple[tuple[str, str], ...]  # (QAT layer name, weight format)


@dataclass
class _Block:
    layer: Any  # the Keras weighted layer
    kind: str
    bn: Any = None
    activation: str = "linear"
    softmax: bool = False


def _activation_name(layer: Any) -> str:
    act = layer.get_config().get("activation", "linear")
    return act if isinstance(act, str) else getattr(act, "__name__", str(act))


def _chain(model: Any) -> list[Any]:
    """The model's layers in order, if it is a chain (each layer reads the one before)."""
    layers = [lyr for lyr in model.layers if type(lyr).__name__ != "InputLayer"]
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise QatError(f"QAT supports single-input, single-output models; {model.name!r} has "
                       f"{len(model.inputs)} inputs and {len(model.outputs)} outputs")
    prev = model.inputs[0]
    for layer in layers:
        inputs = layer.input
        if isinstance(inputs, (list, tuple)) or inputs is not prev:
            raise QatError(f"QAT supports chains of layers; layer {layer.name!r} "
                           f"({type(layer).__name__}) does not read only the layer before it")
        prev = layer.output
    return layers


def _groups(layers: list[Any]) -> list[_Block | Any]:
    """Weighted layers with their BatchNorm / activation / softmax, and pass-through layers."""
    out: list[_Block | Any] = []
    i = 0
    while i < len(layers):
        layer = layers[i]
        cls = type(layer).__name__
        if cls in WEIGHTED:
            block = _Block(layer, WEIGHTED[cls])
            act = _activation_name(layer)
            if cls == "Conv2D" and layer.get_config().get("groups", 1) != 1:
                raise QatError(f"layer {layer.name!r}: grouped convolutions are not supported "
                               "by QAT")
            if act == "softmax":
                block.softmax = True
            elif act not in ("linear", "relu", "relu6"):
                raise QatError(f"layer {layer.name!r}: activation {act!r} is not supported by "
                               "QAT (relu, relu6, softmax on the last layer, or none)")
            block.activation = "linear" if act == "softmax" else act
            j = i + 1
            if block.activation == "linear" and not block.softmax and j < len(layers) \
                    and type(layers[j]).__name__ == "BatchNormalization":
                block.bn = layers[j]
                j += 1
            if block.activation == "linear" and not block.softmax and j < len(layers):
                nxt = layers[j]
                name = type(nxt).__name__
                if name == "ReLU" and nxt.get_config().get("negative_slope", 0.0) == 0.0 \
                        and nxt.get_config().get("threshold", 0.0) == 0.0 \
                        and nxt.get_config().get("max_value") in (None, 6.0, 6):
                    block.activation = "relu" if nxt.get_config().get("max_value") is None \
                        else "relu6"
                    j += 1
                elif name == "Activation" and _activation_name(nxt) in ("relu", "relu6",
                                                                         "softmax"):
                    if _activation_name(nxt) == "softmax":
                        block.softmax = True
                    else:
                        block.activation = _activation_name(nxt)
                    j += 1
            out.append(block)
            i = j
            continue
        if cls in PASS_THROUGH or cls == "GlobalAveragePooling2D" or \
                (cls == "Softmax" and i == len(layers) - 1):
            out.append(layer)
            i += 1
            continue
        raise QatError(f"layer {layer.name!r} ({cls}) is not supported by QAT: supported are "
                       f"{', '.join(WEIGHTED)} (+ BatchNormalization, ReLU), "
                       f"{', '.join(PASS_THROUGH)}, GlobalAveragePooling2D and a final softmax")
    return out


def _formats(model: Any, blocks: list[_Block], scheme: str,
             options: dict[str, Any]) -> list[str]:
    """Each block's weight format, from the exporter's plan of the float model."""
    ir = keras_to_ir(model)
    try:
        plan = plan_for(scheme, ir, options)
    except ValueError as exc:
        raise QatError(str(exc)) from None
    ops = weighted_layers(ir)
    if len(ops) != len(blocks):
        raise QatError(f"the float .tflite of {model.name!r} has {len(ops)} weighted layers, "
                       f"the Keras model {len(blocks)}: QAT cannot pair them")
    formats = []
    for op, block in zip(ops, blocks, strict=True):
        op_type, axis = IR_OPS[block.kind]
        w = op.inputs[1]
        channels = _channels(block)
        if op.type != op_type or w is None or int(w.shape[axis]) != channels:
            raise QatError(f"layer {block.layer.name!r} ({block.kind}, {channels} channels) "
                           f"does not match the .tflite's {op.type} in that place")
        formats.append(plan.for_op(op).weights)
    return formats


def _channels(block: _Block) -> int:
    cfg = block.layer.get_config()
    if block.kind == "depthwise":
        return int(block.layer.kernel.shape[2]) * int(cfg["depth_multiplier"])
    return int(cfg["filters"] if block.kind == "conv2d" else cfg["units"])


def initial_step(folded: np.ndarray, fmt: str) -> np.ndarray | None:
    """LSQ's starting step per channel: the exporter's MSE-searched scale ([K, C] kernel)."""
    rows = np.asarray(folded, np.float32).T
    if fmt == "int4":
        return symmetric_per_channel(rows, 0, 7, "mse", qmin=-8)[0]
    if fmt == "int4-narrow":
        return symmetric_per_channel(rows, 0, 7, "mse")[0]
    if fmt == "int2":
        return int2_levels(rows, 0)[0]
    return None


def prepare(model: Any, scheme: str = "ternary", *, calibration: Any = None,
            momentum: float = 0.9, **scheme_options: Any) -> Any:
    """A Keras model with fake quantisation for `scheme` ("ternary", "int2", "int4", "int8").

    Weights: the exporter's format per layer (BitNet b1.58 ternary, LSQ learned steps for int4 /
    int2, INT8 absmax for the layers the scheme keeps INT8), BatchNorm folded. Activations: int8
    with EMA ranges (`momentum`); `calibration` (an array of inputs) sets them before training,
    otherwise the first training batch does. Compile and `fit` it as any Keras model; then
    `sdk.export(qat_model, scheme, calibration=...)` writes it on its trained grid.
    scheme_options: as for `sdk.export` (ternary_scale, keep_first, keep_last, ...), and the
    same must be passed to the export.
    """
    tf = import_tf()
    from sdk.converters.qat.layers import ActQuant, QatWeighted

    if not is_keras_model(model):
        raise QatError(f"sdk.qat.prepare needs a Keras model, not a {type(model).__name__}")
    if scheme not in SCHEMES:
        raise QatError(f"QAT scheme must be one of {', '.join(SCHEMES)}, not {scheme!r}")
    for key in ("activations", "block_size"):
        if scheme_options.get(key) not in (None, "int8", 0):
            raise QatError(f"QAT trains int8 activations and per-channel weights: "
                           f"{key}={scheme_options[key]!r} is not supported")
    groups = _groups(_chain(model))
    blocks = [g for g in groups if isinstance(g, _Block)]
    formats = _formats(model, blocks, scheme, dict(scheme_options))

    layers = tf.keras.layers
    inp = model.inputs[0]
    x = inputs = tf.keras.Input(tuple(inp.shape[1:]), name=inp.name.split(":")[0],
                                dtype=inp.dtype)
    x = ActQuant(momentum, name="input_quant")(x)
    made: list[tuple[Any, _Block, str]] = []
    fmt_iter = iter(formats)
    for g in groups:
        if isinstance(g, _Block):
            cfg = g.layer.get_config()
            fmt = next(fmt_iter)
            qlayer = QatWeighted(
                g.kind, fmt, _channels(g) if g.kind != "depthwise" else 0,
                kernel_size=tuple(cfg.get("kernel_size", (1, 1))),
                strides=tuple(cfg.get("strides", (1, 1))), padding=cfg.get("padding", "valid"),
                dilation_rate=tuple(cfg.get("dilation_rate", (1, 1))),
                depth_multiplier=int(cfg.get("depth_multiplier", 1)),
                activation=g.activation, has_bn=g.bn is not None,
                bn_epsilon=float(g.bn.epsilon) if g.bn is not None else 0.0,
                source=g.layer.name, name=f"{g.layer.name}_qat")
            x = qlayer(x)
            made.append((qlayer, g, fmt))
            x = ActQuant(momentum, name=f"{g.layer.name}_act_quant")(x)
            if g.softmax:
                x = layers.Softmax(name=f"{g.layer.name}_softmax")(x)
        elif type(g).__name__ == "GlobalAveragePooling2D":
            x = type(g).from_config(g.get_config())(x)
            x = ActQuant(momentum, name=f"{g.name}_act_quant")(x)
        else:
            x = type(g).from_config(g.get_config())(x)
    qat = tf.keras.Model(inputs, x, name=f"{model.name}_qat")

    for qlayer, g, fmt in made:
        kernel = g.layer.kernel if g.kind != "depthwise" else g.layer.depthwise_kernel \
            if hasattr(g.layer, "depthwise_kernel") else g.layer.kernel
        qlayer.kernel.assign(kernel)
        if g.layer.get_config().get("use_bias", True) and g.layer.bias is not None:
            qlayer.bias.assign(g.layer.bias)
        if g.bn is not None:
            bn = g.bn
            ch = qlayer.channels
            qlayer.gamma.assign(bn.gamma if bn.scale else np.ones(ch, np.float32))
            qlayer.beta.assign(bn.beta if bn.center else np.zeros(ch, np.float32))
            qlayer.moving_mean.assign(bn.moving_mean)
            qlayer.moving_variance.assign(bn.moving_variance)
        if qlayer.step is not None:
            folded, _ = qlayer.folded()
            step = initial_step(np.asarray(folded), fmt)
            assert step is not None
            qlayer.step.assign(step)
    if calibration is not None:
        qat(np.asarray(calibration, np.float32), training=True)  # ranges from these inputs
    qat._edgesdk_qat = QatSpec(scheme, tuple(sorted(scheme_options.items())),
                               tuple((q.name, f) for q, _, f in made))
    return qat


__all__ = ["SCHEMES", "QatSpec", "initial_step", "prepare"]
