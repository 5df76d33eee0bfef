"""edgesdk's TFLite custom operators, and the lowering that writes them.

Stock LiteRT has no 2-bit CONV_2D or DEPTHWISE_CONV_2D (it refuses INT2 filters with int8
activations; see `litert_support.py`). Rather than quietly keeping such layers wider, the TFLite
writer expresses them as custom operators that the edgesdk delegate runs
(`sdk.run.Interpreter`, or `load_delegate(sdk.run.delegate_path())`):

``EDGE_CONV_INT2`` (version 1)
    CONV_2D with 2-bit weights. Inputs, outputs and tensors exactly as the builtin's with int8
    activations: 0 input int8 [N, H, W, Cin] (per-tensor scale and zero point), 1 filter INT2
    [Cout, KH, KW, Cin] (TFLite's INT2 packing: four values per byte, first in the low bits;
    values in [-2, 1], or {-1, 0, 1} for ternary; symmetric per-output-channel scales on axis 0),
    2 bias INT32 [Cout] (scale input_scale x filter_scale, optional), output int8
    [N, OH, OW, Cout].
``EDGE_DWCONV_INT2`` (version 1)
    DEPTHWISE_CONV_2D with 2-bit weights: filter INT2 [1, KH, KW, Cin x M] with per-channel
    scales on axis 3; otherwise as EDGE_CONV_INT2.

Custom options (both ops): 40 bytes, little-endian, no flexbuffer (the delegate reads a struct):

    offset  type      field
    0       char[4]   magic "EDGE"
    4       uint16    version (1)
    6       uint16    size of these options in bytes (40; readers ignore bytes past what they
                      know, so later versions may append fields)
    8       int32     stride_h
    12      int32     stride_w
    16      int32     dilation_h
    20      int32     dilation_w
    24      int32     padding: 0 SAME, 1 VALID
    28      int32     fused activation: 0 NONE, 1 RELU, 2 RELU_N1_TO_1, 3 RELU6
    32      int32     depth_multiplier (1 for EDGE_CONV_INT2)
    36      int32     weight kind: 0 two-bit {-2..1}, 1 ternary {-1, 0, 1}

The same tensors in a builtin CONV_2D would read the same numbers: going back is a change of
opcode (`to_builtin`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from sdk.base.errors import ConversionError, UnsupportedOpError
from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
from sdk.converters.tflite.litert_support import litert_runs, support, weights_min

MAGIC = b"EDGE"
OPTIONS_VERSION = 1
_LAYOUT = struct.Struct("<4sHH8i")
OPTIONS_SIZE = _LAYOUT.size  # 40

PADDINGS = ("SAME", "VALID")
ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6")
WEIGHT_KINDS = ("int2", "ternary")


@dataclass(frozen=True)
class CustomOp:
    code: str
    builtin: str
    version: int
    summary: str


EDGE_CONV_INT2 = CustomOp("EDGE_CONV_INT2", "CONV_2D", 1,
                          "CONV_2D with 2-bit (INT2 / ternary) weights, int8 activations")
EDGE_DWCONV_INT2 = CustomOp("EDGE_DWCONV_INT2", "DEPTHWISE_CONV_2D", 1,
                            "DEPTHWISE_CONV_2D with 2-bit (INT2 / ternary) weights, int8 "
                            "activations")
CUSTOM_OPS: dict[str, CustomOp] = {op.code: op for op in (EDGE_CONV_INT2, EDGE_DWCONV_INT2)}
_BY_BUILTIN = {op.builtin: op for op in CUSTOM_OPS.values()}


@dataclass(frozen=True)
class ConvOptions:
    stride_h: int = 1
    stride_w: int = 1
    dilation_h: int = 1
    dilation_w: int = 1
    padding: str = "SAME"
    activation: str = "NONE"
    depth_multiplier: int = 1
    weight_kind: str = "int2"

    def pack(self) -> bytes:
        return _LAYOUT.pack(MAGIC, OPTIONS_VERSION, OPTIONS_SIZE, self.stride_h, self.stride_w,
                            self.dilation_h, self.dilation_w, PADDINGS.index(self.padding),
                            ACTIVATIONS.index(self.activation), self.depth_multiplier,
                            WEIGHT_KINDS.index(self.weight_kind))

    @classmethod
    def unpack(cls, data: bytes, where: str = "custom options") -> ConvOptions:
        if len(data) < OPTIONS_SIZE:
            raise ConversionError(f"{where}: {len(data)} bytes, need {OPTIONS_SIZE}")
        magic, version, size, sh, sw, dh, dw, pad, act, dm, kind = _LAYOUT.unpack_from(data)
        if magic != MAGIC:
            raise ConversionError(f"{where}: magic is {magic!r}, expected {MAGIC!r}")
        if version < 1 or size < OPTIONS_SIZE:
            raise ConversionError(f"{where}: unsupported options version {version} / size {size}")
        for name, value, names in (("padding", pad, PADDINGS), ("activation", act, ACTIVATIONS),
                                   ("weight kind", kind, WEIGHT_KINDS)):
            if not 0 <= value < len(names):
                raise ConversionError(f"{where}: {name} code {value} is not one of "
                                      f"0..{len(names) - 1}")
        return cls(sh, sw, dh, dw, PADDINGS[pad], ACTIVATIONS[act], dm, WEIGHT_KINDS[kind])


def _weight_kind(w: Tensor) -> str:
    data = w.data
    if isinstance(data, np.ndarray) and data.size and data.min() >= -1:
        return "ternary"
    return "int2"


def to_custom(op: Operator) -> Operator:
    """The custom-op form of a CONV_2D / DEPTHWISE_CONV_2D with INT2 weights."""
    custom = _BY_BUILTIN[op.type]
    a = op.attrs
    options = ConvOptions(
        stride_h=int(a.get("stride_h", 1)), stride_w=int(a.get("stride_w", 1)),
        dilation_h=int(a.get("dilation_h_factor", 1)),
        dilation_w=int(a.get("dilation_w_factor", 1)),
        padding=str(a.get("padding", "SAME")),
        activation=str(a.get("fused_activation_function", "NONE")),
        depth_multiplier=int(a.get("depth_multiplier", 1)) if op.type == "DEPTHWISE_CONV_2D"
        else 1,
        weight_kind=_weight_kind(op.inputs[1]))  # type: ignore[arg-type]
    if options.activation not in ACTIVATIONS:
        raise UnsupportedOpError(op.type, op.label, list(ACTIVATIONS), source=custom.code,
                                 detail=f"fused activation {options.activation}")
    return Operator("CUSTOM", list(op.inputs), list(op.outputs), name=op.name,
                    version=custom.version, custom_code=custom.code,
                    custom_options=options.pack())


def to_builtin(op: Operator) -> Operator:
    """The builtin form of one of our custom ops (the inverse of `to_custom`)."""
    custom = CUSTOM_OPS[op.custom_code or ""]
    o = ConvOptions.unpack(op.custom_options or b"", f"{op.label} custom options")
    attrs: dict[str, Any] = {"padding": o.padding, "stride_w": o.stride_w,
                             "stride_h": o.stride_h, "fused_activation_function": o.activation,
                             "dilation_w_factor": o.dilation_w, "dilation_h_factor": o.dilation_h}
    if custom.builtin == "DEPTHWISE_CONV_2D":
        attrs["depth_multiplier"] = o.depth_multiplier
    return Operator(custom.builtin, list(op.inputs), list(op.outputs), attrs=attrs, name=op.name,
                    version=1)


def custom_ops_in(model: Model) -> dict[str, int]:
    """edgesdk custom ops in a model: code -> count."""
    counts: dict[str, int] = {}
    for op in model.all_operators():
        if op.type == "CUSTOM" and op.custom_code in CUSTOM_OPS:
            counts[op.custom_code] = counts.get(op.custom_code, 0) + 1  # type: ignore[index]
    return counts


# ---------------------------------------------------------------------------- lowering
_WEIGHTED = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")


def _activations_of(op: Operator) -> str:
    x = op.inputs[0]
    return "float32" if x is not None and x.dtype is DType.FLOAT32 else "int8"


def lower_for_litert(model: Model) -> Model:
    """The model in the vocabulary stock LiteRT (+ the edgesdk delegate) understands:

    - CONV_2D / DEPTHWISE_CONV_2D with INT2 weights and int8 activations -> EDGE custom ops;
    - block-wise FULLY_CONNECTED with a fused activation -> the FC plus a separate activation op
      (LiteRT's builtin kernel skips the fused one);
    - any other sub-byte layout LiteRT does not run correctly -> UnsupportedOpError.

    Returns a new Model that shares the tensors of `model` (tensor maps by identity stay valid);
    `model` is not changed."""
    graphs = [_lower_graph(g) for g in model.graphs]
    return Model(graphs=graphs, description=model.description, version=model.version,
                 metadata=dict(model.metadata), signatures=list(model.signatures),
                 format_extras=dict(model.format_extras))


def _lower_graph(g: Graph) -> Graph:
    out = Graph(name=g.name, tensors=list(g.tensors), operators=[], inputs=list(g.inputs),
                outputs=list(g.outputs), format_extras=dict(g.format_extras))
    for op in g.operators:
        w = op.inputs[1] if op.type in _WEIGHTED and len(op.inputs) > 1 else None
        if w is None or not w.dtype.is_sub_byte:
            out.operators.append(op)
            continue
        acts = _activations_of(op)
        blockwise = bool(w.quant is not None and w.quant.block_size)
        if litert_runs(op.type, w.dtype, acts, blockwise):
            low = weights_min(op.type, w.dtype, acts, blockwise)
            if low is not None and isinstance(w.data, np.ndarray) and w.data.size \
                    and int(w.data.min()) < low:
                raise UnsupportedOpError(
                    op.type, op.label, ["FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"],
                    source="TFLite writer",
                    detail=f"{w.dtype.name} weights hold {int(w.data.min())}: LiteRT's builtin "
                           f"kernel computes values below {low} wrongly with {acts} "
                           f"activations (quantise to [{low}, ...], e.g. format int4-narrow)")
            if blockwise and op.attrs.get("fused_activation_function", "NONE") != "NONE":
                out.operators.extend(_unfuse(out, op))
            else:
                out.operators.append(op)
            continue
        if op.type in _BY_BUILTIN and w.dtype is DType.INT2 and acts == "int8" and not blockwise:
            out.operators.append(to_custom(op))
            continue
        row = support(op.type, w.dtype, acts, blockwise)
        why = (f"LiteRT {row.xnnpack if row.xnnpack != 'ok' else row.builtin}s it"
               + (f" ({row.note})" if row.note else "")) if row else "not measured"
        raise UnsupportedOpError(
            op.type, op.label, ["FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"],
            source="TFLite writer",
            detail=f"{w.dtype.name} weights{' (block-wise)' if blockwise else ''} with {acts} "
                   f"activations: {why}, and edgesdk has no custom op for it")
    return out


def _unfuse(g: Graph, op: Operator) -> list[Operator]:
    act = op.attrs["fused_activation_function"]
    if act not in ("RELU", "RELU6", "RELU_N1_TO_1"):
        raise UnsupportedOpError(op.type, op.label, ["RELU", "RELU6", "RELU_N1_TO_1"],
                                 source="TFLite writer",
                                 detail=f"block-wise FULLY_CONNECTED with fused {act}")
    y = op.outputs[0]
    pre = g.add_tensor(Tensor(g.unique_name(f"{y.name}_preact"), y.shape, y.dtype,
                              quant=y.quant, shape_signature=y.shape_signature))
    fc = Operator(op.type, list(op.inputs), [pre], attrs={**op.attrs,
                                                          "fused_activation_function": "NONE"},
                  name=op.name, version=op.version, format_extras=dict(op.format_extras))
    relu = Operator(act, [pre], [y], version=1, format_extras={"tflite_options_type": None})
    return [fc, relu]


__all__ = ["CUSTOM_OPS", "EDGE_CONV_INT2", "EDGE_DWCONV_INT2", "OPTIONS_SIZE", "ConvOptions",
           "CustomOp", "custom_ops_in", "lower_for_litert", "to_builtin", "to_custom"]
