"""Publishers' own TFLite custom ops: rewritten to builtins where an exact equivalent exists.

Stock LiteRT loads a model only if it has a kernel for every op, and calibration runs the float
model in LiteRT; a publisher's custom op (MediaPipe ships its kernels inside its own runtime)
would stop the whole export. Here each custom op that a builtin computes exactly is rewritten at
import; the others are named, with what happens to them, by `unsupported_custom_ops`.

``Convolution2DTransposeBias`` (MediaPipe: selfie / hair segmentation decoders)
    Inputs: 0 input [N, H, W, Cin], 1 weights [Cout, KH, KW, Cin], 2 bias [Cout]; output
    [N, OH, OW, Cout]. Custom options: MediaPipe's `TfLiteTransposeConvParams` as raw bytes, no
    flexbuffer: int32 padding (1 SAME, 2 VALID), int32 stride_width, int32 stride_height
    (12 bytes; later fields, if any, ignored). It is TRANSPOSE_CONV (version 3, the bias input)
    with the output shape as a constant.

``Landmarks2TransformMatrix``, ``TransformTensorBilinear``, ``TransformLandmarks`` (version 2;
MediaPipe's face mesh with attention): rewritten into several builtins each, the math MediaPipe
documents (`sdk.converters.tflite.mediapipe_ops`).

Custom ops left as they are (no builtin equivalent; LiteRT cannot run them, so a model holding
one cannot be calibrated): MediaPipe's `MaxPoolingWithArgmax2D`, `MaxUnpooling2D`, and the
version-1 forms of the three above. They are reported by name and node
(`unsupported_custom_ops`) so the error says what blocks the export.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from sdk.base.errors import ConversionError
from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
from sdk.converters.tflite.mediapipe_ops import REWRITES as MEDIAPIPE_REWRITES

TRANSPOSE_CONV_BIAS = "Convolution2DTransposeBias"
#: MediaPipe's TfLitePadding values in the custom options
_PADDINGS = {1: "SAME", 2: "VALID"}
_MP_OPTIONS = struct.Struct("<3i")

#: custom ops LiteRT's stock op resolver runs (no rewrite needed)
LITERT_CUSTOM_OPS = frozenset({"TFLite_Detection_PostProcess", "Mfcc", "AudioSpectrogram"})
#: publishers' custom ops known to have no builtin equivalent
NO_EQUIVALENT = {
    "MaxPoolingWithArgmax2D": "MediaPipe max pooling that also outputs argmax indices",
    "MaxUnpooling2D": "MediaPipe scatter of values to argmax indices",
    "Landmarks2TransformMatrix": "MediaPipe affine matrix from landmark positions (only "
                                 "version 2 on [1, N, D] landmarks is rewritten)",
    "TransformLandmarks": "MediaPipe affine transform of landmark coordinates (only version 2 "
                          "on [1, N, 2 or 3] is rewritten)",
    "TransformTensorBilinear": "MediaPipe affine crop with bilinear sampling (only version 2 "
                               "on [1, H, W, C] is rewritten)",
}


@dataclass(frozen=True)
class Rewrite:
    """One custom op replaced by builtins."""

    custom_code: str
    node: str
    builtin: str

    def note(self) -> str:
        return f"custom op {self.custom_code} ({self.node}) rewritten as builtin {self.builtin}"


@dataclass(frozen=True)
class TransposeConvOptions:
    padding: str
    stride_w: int
    stride_h: int

    @classmethod
    def unpack(cls, data: bytes | None, where: str) -> TransposeConvOptions:
        raw = data or b""
        if len(raw) < _MP_OPTIONS.size:
            raise ConversionError(f"{where}: custom options hold {len(raw)} bytes; "
                                  f"{TRANSPOSE_CONV_BIAS} needs {_MP_OPTIONS.size} (padding, "
                                  "stride_width, stride_height as int32)")
        pad, sw, sh = _MP_OPTIONS.unpack_from(raw)
        if pad not in _PADDINGS:
            raise ConversionError(f"{where}: padding code {pad} is not 1 (SAME) or 2 (VALID)")
        if not (1 <= sw <= 1024 and 1 <= sh <= 1024):
            raise ConversionError(f"{where}: strides ({sh}, {sw}) must be in 1..1024")
        return cls(_PADDINGS[pad], sw, sh)


def _out_size(size: int, kernel: int, stride: int, padding: str) -> int:
    return size * stride if padding == "SAME" else (size - 1) * stride + kernel


def _transpose_conv(g: Graph, op: Operator) -> Operator:
    where = f"{op.label} ({TRANSPOSE_CONV_BIAS})"
    if len(op.inputs) != 3 or len(op.outputs) != 1 or any(t is None for t in op.inputs):
        raise ConversionError(f"{where}: expected 3 inputs (input, weights, bias) and 1 output, "
                              f"got {len(op.inputs)} and {len(op.outputs)}")
    x, w, b = op.inputs
    assert x is not None and w is not None and b is not None
    y = op.outputs[0]
    o = TransposeConvOptions.unpack(op.custom_options, where)
    if x.rank != 4 or w.rank != 4 or y.rank != 4:
        raise ConversionError(f"{where}: input {list(x.shape)}, weights {list(w.shape)} and "
                              f"output {list(y.shape)} must all be 4-D (NHWC, OHWI)")
    cout, kh, kw, cin = w.shape
    if x.shape[3] != cin or y.shape[3] != cout or b.num_elements != cout:
        raise ConversionError(f"{where}: channels disagree: input {list(x.shape)}, weights "
                              f"{list(w.shape)} [Cout, KH, KW, Cin], bias {list(b.shape)}, "
                              f"output {list(y.shape)}")
    expected = (x.shape[0], _out_size(x.shape[1], kh, o.stride_h, o.padding),
                _out_size(x.shape[2], kw, o.stride_w, o.padding), cout)
    if tuple(y.shape) != expected and not y.is_dynamic:
        raise ConversionError(f"{where}: output shape {list(y.shape)}, but {o.padding} padding "
                              f"with strides ({o.stride_h}, {o.stride_w}) gives {list(expected)}")
    if tuple(b.shape) != (cout,):
        if b.is_constant and isinstance(b.data, np.ndarray):
            b = g.constant(f"{b.name}/flat", b.data.reshape(cout), b.dtype)
        else:
            reshaped = g.add_tensor(Tensor(g.unique_name(f"{b.name}/flat"), (cout,), b.dtype))
            g.operators.insert(g.operators.index(op), Operator(
                "RESHAPE", [b, g.constant(f"{b.name}/flat_shape", np.array([cout], np.int32))],
                [reshaped], attrs={"new_shape": [cout]}, name=f"{op.label}/bias_reshape"))
            b = reshaped
    shape = g.constant(f"{y.name}/output_shape", np.array(expected, np.int32), DType.INT32)
    return Operator("TRANSPOSE_CONV", [shape, w, x, b], [y],
                    attrs={"padding": o.padding, "stride_w": o.stride_w,
                           "stride_h": o.stride_h, "fused_activation_function": "NONE"},
                    name=op.name, version=3,
                    format_extras={"tflite_options_type": "TransposeConvOptions"})


_REWRITES = {TRANSPOSE_CONV_BIAS: ("TRANSPOSE_CONV", _transpose_conv)}


def rewrite_custom_ops(model: Model) -> list[Rewrite]:
    """Replace, in place, every publisher custom op that has an exact builtin equivalent.
    Returns what was rewritten."""
    done: list[Rewrite] = []
    for g in model.graphs:
        rewritten: list[Operator] = []
        for op in g.operators:
            code = op.custom_code or ""
            if op.type == "CUSTOM" and code in _REWRITES:
                builtin, build = _REWRITES[code]
                rewritten.append(build(g, op))
                done.append(Rewrite(code, op.label, builtin))
                continue
            several = MEDIAPIPE_REWRITES[code](g, op) if op.type == "CUSTOM" and \
                code in MEDIAPIPE_REWRITES else None
            if several is None:
                rewritten.append(op)
                continue
            rewritten += several
            kinds = sorted({o.type for o in several})
            done.append(Rewrite(code, op.label, f"{len(several)} ops ({', '.join(kinds)})"))
        g.operators = rewritten
    return done


def unsupported_custom_ops(model: Model, known: frozenset[str] = frozenset()) -> list[str]:
    """Custom ops that stock LiteRT cannot run, each as 'CODE (node): what it is'. `known`:
    further custom codes that a runner provides (edgesdk's own ops)."""
    found = []
    for op in model.all_operators():
        code = op.custom_code or ""
        if op.type != "CUSTOM" or code in LITERT_CUSTOM_OPS or code in known:
            continue
        what = NO_EQUIVALENT.get(code, "a custom op with no builtin equivalent known here")
        found.append(f"{code} ({op.label}): {what}")
    return found


__all__ = ["LITERT_CUSTOM_OPS", "NO_EQUIVALENT", "TRANSPOSE_CONV_BIAS", "Rewrite",
           "TransposeConvOptions", "rewrite_custom_ops", "unsupported_custom_ops"]
