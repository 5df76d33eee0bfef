"""MediaPipe's attention-mesh custom ops (version 2) as builtin TFLite ops.

The face landmark model with attention (`face_landmark_with_attention.tflite`) crops regions of
a feature map around the lips and eyes with three custom ops that stock LiteRT has no kernel
for. Their math is documented in MediaPipe's sources (mediapipe/util/tflite/operations); each
is rewritten here into builtins that compute the same thing in float, so the model loads,
calibrates and runs in stock LiteRT:

``Landmarks2TransformMatrix`` (v2): landmarks [1, N, D] -> an affine matrix [1, 4, 4]. Options
    (flexbuffer map): left_rotation_idx, right_rotation_idx, target_rotation_radians,
    subset_idxs (landmark indices), output_width, output_height, scale_x, scale_y. With
    r = target - atan2(yR - yL, xR - xL), the subset's landmarks are rotated by r, their
    bounding box gives width w, height h and a centre (rotated back by -r: cx, cy), and the
    matrix is shift(cx, cy) * rotation(-r) * scale(scale_x * w / out_w, scale_y * h / out_h)
    * shift(-out_w / 2, -out_h / 2).
``TransformTensorBilinear`` (v2): features [1, H, W, C] and the matrix -> [1, oh, ow, C]. Output
    pixel (x, y) samples the features bilinearly at the first two rows of the matrix applied to
    (x, y, 0, 1), after the half-pixel correction of v2 (translation += 0.5 * (m0 + m1) - 0.5);
    a sample point outside [0, W - 1] x [0, H - 1] gives 0.
``TransformLandmarks`` (v2): landmarks [1, N, D] (D = 2 or 3) and the matrix -> x, y
    transformed by the matrix's first two rows (z = 0, w = 1); z copied.

Version-1 ops and shapes other than these are left as they are (and named as not loadable).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sdk.base.errors import ConversionError
from sdk.converters.ir import DType, Graph, Operator, Tensor

LANDMARKS_TO_MATRIX = "Landmarks2TransformMatrix"
TRANSFORM_BILINEAR = "TransformTensorBilinear"
TRANSFORM_LANDMARKS = "TransformLandmarks"


def custom_options(op: Operator, where: str) -> dict[str, Any]:
    """The op's flexbuffer options as a dict (empty when it has none)."""
    if not op.custom_options:
        return {}
    from flatbuffers import flexbuffers

    try:
        value = flexbuffers.Loads(bytes(op.custom_options))
    except Exception as exc:  # any malformed buffer
        raise ConversionError(f"{where}: custom options are not a flexbuffer map: "
                              f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(value, dict):
        raise ConversionError(f"{where}: custom options hold a {type(value).__name__}, not a "
                              "map")
    return value


class _Builder:
    """Builtin ops that replace one custom op: new tensors named after its output."""

    def __init__(self, g: Graph, op: Operator):
        self.g = g
        self.base = op.outputs[0].name
        self.name = op.name or op.outputs[0].name
        self.ops: list[Operator] = []

    def const(self, tag: str, data: Any, dtype: DType = DType.FLOAT32) -> Tensor:
        return self.g.constant(f"{self.base}/{tag}", np.asarray(data, dtype.numpy), dtype)

    def emit(self, op_type: str, inputs: Sequence[Tensor], shape: Sequence[int], tag: str,
             dtype: DType = DType.FLOAT32, out: Tensor | None = None, **attrs: Any) -> Tensor:
        if out is None:
            out = self.g.add_tensor(Tensor(self.g.unique_name(f"{self.base}/{tag}"),
                                           tuple(shape), dtype))
        self.ops.append(Operator(op_type, list(inputs), [out], dict(attrs),
                                 name=f"{self.name}/{tag}"))
        return out

    def gather(self, x: Tensor, indices: Sequence[int], axis: int, tag: str) -> Tensor:
        shape = list(x.shape)
        shape[axis] = len(indices)
        return self.emit("GATHER", [x, self.const(f"{tag}_idx", list(indices), DType.INT32)],
                         shape, tag, axis=axis, batch_dims=0)

    def binary(self, op_type: str, a: Tensor, b: Tensor, tag: str) -> Tensor:
        shape = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
        dtype = DType.BOOL if op_type in ("GREATER_EQUAL", "LESS_EQUAL", "LOGICAL_AND") \
            else a.dtype
        return self.emit(op_type, [a, b], shape, tag, dtype)

    def scalar(self, op_type: str, a: Tensor, value: float, tag: str) -> Tensor:
        return self.binary(op_type, a, self.const(f"{tag}_k", np.float32(value)), tag)

    def unary(self, op_type: str, a: Tensor, tag: str) -> Tensor:
        return self.emit(op_type, [a], a.shape, tag)

    def reduce(self, op_type: str, x: Tensor, axis: int, tag: str) -> Tensor:
        shape = list(x.shape)
        shape[axis] = 1
        return self.emit(op_type, [x, self.const(f"{tag}_axis", [axis], DType.INT32)], shape,
                         tag, keep_dims=True)

    def reshape(self, x: Tensor, shape: Sequence[int], tag: str,
                out: Tensor | None = None) -> Tensor:
        return self.emit("RESHAPE", [x, self.const(f"{tag}_shape", list(shape), DType.INT32)],
                         shape, tag, x.dtype, out=out, new_shape=list(shape))

    def matrix_entries(self, m: Tensor, keys: Sequence[int]) -> list[Tensor]:
        """Entries of a [1, 4, 4] matrix (row-major flat index) as [1, 1] tensors."""
        flat = self.reshape(m, (1, 16), "m_flat")
        return [self.gather(flat, [k], 1, f"m{k // 4}{k % 4}") for k in keys]


def _check(op: Operator, n_in: int) -> bool:
    return (op.version == 2 and len(op.inputs) == n_in and len(op.outputs) == 1
            and all(t is not None and t.dtype is DType.FLOAT32 for t in op.inputs)
            and op.outputs[0].dtype is DType.FLOAT32)


def landmarks_to_matrix(g: Graph, op: Operator) -> list[Operator] | None:
    where = f"{op.label} ({LANDMARKS_TO_MATRIX})"
    if not _check(op, 1):
        return None
    lm = op.inputs[0]
    assert lm is not None
    if lm.rank != 3 or lm.shape[0] != 1 or lm.shape[2] < 2 or \
            tuple(op.outputs[0].shape) != (1, 4, 4):
        return None
    o = custom_options(op, where)
    try:
        left, right = int(o["left_rotation_idx"]), int(o["right_rotation_idx"])
        subset = [int(i) for i in o["subset_idxs"]]
        out_w, out_h = float(o["output_width"]), float(o["output_height"])
        scale_x, scale_y = float(o["scale_x"]), float(o["scale_y"])
        target = float(o.get("target_rotation_radians", 0.0))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConversionError(f"{where}: custom options {sorted(o)} lack or mistype "
                              f"{exc}") from exc
    n = lm.shape[1]
    if not subset or any(not 0 <= i < n for i in [left, right, *subset]):
        raise ConversionError(f"{where}: landmark indices must be in 0..{n - 1} (left "
                              f"{left}, right {right}, subset of {len(subset)})")
    if min(out_w, out_h, scale_x, scale_y) <= 0:
        raise ConversionError(f"{where}: output size and scales must be positive")
    b = _Builder(g, op)
    d = b.binary("SUB", b.gather(lm, [right], 1, "right"), b.gather(lm, [left], 1, "left"),
                 "d")
    dx, dy = b.gather(d, [0], 2, "dx"), b.gather(d, [1], 2, "dy")
    angle = b.emit("ATAN2", [dy, dx], dx.shape, "angle")
    rot = b.binary("SUB", b.const("target", np.full((1, 1, 1), target, np.float32)), angle,
                   "rotation")
    c, s = b.unary("COS", rot, "cos"), b.unary("SIN", rot, "sin")
    pts = b.gather(lm, subset, 1, "subset")
    x, y = b.gather(pts, [0], 2, "x"), b.gather(pts, [1], 2, "y")
    rx = b.binary("SUB", b.binary("MUL", c, x, "cx_"), b.binary("MUL", s, y, "sy_"), "rx")
    ry = b.binary("ADD", b.binary("MUL", s, x, "sx_"), b.binary("MUL", c, y, "cy_"), "ry")
    max_x, min_x = b.reduce("REDUCE_MAX", rx, 1, "max_x"), b.reduce("REDUCE_MIN", rx, 1, "min_x")
    max_y, min_y = b.reduce("REDUCE_MAX", ry, 1, "max_y"), b.reduce("REDUCE_MIN", ry, 1, "min_y")
    width, height = b.binary("SUB", max_x, min_x, "w"), b.binary("SUB", max_y, min_y, "h")
    mid_x = b.scalar("MUL", b.binary("ADD", max_x, min_x, "sum_x"), 0.5, "mid_x")
    mid_y = b.scalar("MUL", b.binary("ADD", max_y, min_y, "sum_y"), 0.5, "mid_y")
    # the centre rotated back by -r: (c * mx + s * my, c * my - s * mx)
    cx = b.binary("ADD", b.binary("MUL", c, mid_x, "c_mx"), b.binary("MUL", s, mid_y, "s_my"),
                  "centre_x")
    cy = b.binary("SUB", b.binary("MUL", c, mid_y, "c_my"), b.binary("MUL", s, mid_x, "s_mx"),
                  "centre_y")
    sx = b.scalar("MUL", width, scale_x / out_w, "scale_x")
    sy = b.scalar("MUL", height, scale_y / out_h, "scale_y")
    a00, a01 = b.binary("MUL", c, sx, "a00"), b.binary("MUL", s, sy, "a01")
    a10 = b.unary("NEG", b.binary("MUL", s, sx, "s_sx"), "a10")
    a11 = b.binary("MUL", c, sy, "a11")
    half_w, half_h = out_w / 2.0, out_h / 2.0
    a03 = b.binary("SUB", cx, b.binary("ADD", b.scalar("MUL", a00, half_w, "a00_hw"),
                                       b.scalar("MUL", a01, half_h, "a01_hh"), "t0"), "a03")
    a13 = b.binary("SUB", cy, b.binary("ADD", b.scalar("MUL", a10, half_w, "a10_hw"),
                                       b.scalar("MUL", a11, half_h, "a11_hh"), "t1"), "a13")
    zero = b.const("zero", np.zeros((1, 1, 1), np.float32))
    tail = b.const("rows23", np.array([0, 0, 1, 0, 0, 0, 0, 1], np.float32).reshape(1, 1, 8))
    parts = [a00, a01, zero, a03, a10, a11, zero, a13, tail]
    row = b.emit("CONCATENATION", parts, (1, 1, 16), "rows", axis=2,
                 fused_activation_function="NONE")
    b.reshape(row, (1, 4, 4), "matrix", out=op.outputs[0])
    return b.ops


def transform_bilinear(g: Graph, op: Operator) -> list[Operator] | None:
    if not _check(op, 2):
        return None
    feat, m = op.inputs
    assert feat is not None and m is not None
    out = op.outputs[0]
    if feat.rank != 4 or feat.shape[0] != 1 or tuple(m.shape) != (1, 4, 4) or out.rank != 4 \
            or out.shape[0] != 1 or out.shape[3] != feat.shape[3]:
        return None
    _, h, w, ch = feat.shape
    oh, ow = out.shape[1], out.shape[2]
    p = oh * ow
    b = _Builder(g, op)
    m00, m01, m03, m10, m11, m13 = b.matrix_entries(m, [0, 1, 3, 4, 5, 7])

    def coordinate(a: Tensor, c: Tensor, t: Tensor, axis: str) -> Tensor:
        # v2's half-pixel correction: t + 0.5 * a + 0.5 * c - 0.5, then a * x + c * y + t
        shift = b.scalar("ADD", b.scalar("MUL", b.binary("ADD", a, c, f"{axis}_ac"), 0.5,
                                         f"{axis}_half"), -0.5, f"{axis}_shift")
        t = b.binary("ADD", t, shift, f"{axis}_t")
        grid_x = b.const(f"{axis}_gx", (np.arange(p) % ow).reshape(1, p))
        grid_y = b.const(f"{axis}_gy", (np.arange(p) // ow).reshape(1, p))
        return b.binary("ADD", b.binary("ADD", b.binary("MUL", a, grid_x, f"{axis}_ax"),
                                        b.binary("MUL", c, grid_y, f"{axis}_cy"),
                                        f"{axis}_lin"), t, axis)

    sx, sy = coordinate(m00, m01, m03, "sample_x"), coordinate(m10, m11, m13, "sample_y")
    inside = b.binary("LOGICAL_AND", b.binary(
        "LOGICAL_AND", b.binary("GREATER_EQUAL", sx, b.const("zero_x", np.float32(0)), "x_lo"),
        b.binary("LESS_EQUAL", sx, b.const("w_1", np.float32(w - 1)), "x_hi"), "x_in"),
        b.binary("LOGICAL_AND",
                 b.binary("GREATER_EQUAL", sy, b.const("zero_y", np.float32(0)), "y_lo"),
                 b.binary("LESS_EQUAL", sy, b.const("h_1", np.float32(h - 1)), "y_hi"), "y_in"),
        "inside")
    mask = b.emit("SELECT_V2", [inside, b.const("one", np.float32(1)),
                                b.const("none", np.float32(0))], inside.shape, "mask")
    x0, y0 = b.unary("FLOOR", sx, "x0"), b.unary("FLOOR", sy, "y0")
    fx, fy = b.binary("SUB", sx, x0, "fx"), b.binary("SUB", sy, y0, "fy")

    # corner indices in int32 (exact, and outside what an int8 export quantises): floor,
    # clamped into the map (a sample point outside is masked to 0 anyway; the corner past the
    # last row or column has weight 0), row * W + column
    def as_int(v: Tensor, tag: str) -> Tensor:
        return b.emit("CAST", [v], v.shape, tag, DType.INT32, in_data_type="FLOAT32",
                      out_data_type="INT32")

    def clamp(v: Tensor, hi: int, tag: str) -> Tensor:
        low = b.binary("MAXIMUM", v, b.const(f"{tag}_lo", np.int32(0), DType.INT32),
                       f"{tag}_max")
        return b.binary("MINIMUM", low, b.const(f"{tag}_hi", np.int32(hi), DType.INT32), tag)

    x0i, y0i = as_int(x0, "x0i"), as_int(y0, "y0i")
    one_i = b.const("one_i", np.int32(1), DType.INT32)
    x0c, y0c = clamp(x0i, w - 1, "x0c"), clamp(y0i, h - 1, "y0c")
    x1c = clamp(b.binary("ADD", x0i, one_i, "x1"), w - 1, "x1c")
    y1c = clamp(b.binary("ADD", y0i, one_i, "y1"), h - 1, "y1c")
    flat = b.reshape(feat, (h * w, ch), "features")
    one_fx = b.binary("SUB", b.const("one_x", np.float32(1)), fx, "1_fx")
    one_fy = b.binary("SUB", b.const("one_y", np.float32(1)), fy, "1_fy")
    width = b.const("width", np.int32(w), DType.INT32)
    total: Tensor | None = None
    for tag, yy, xx, wy, wx in (("q11", y0c, x0c, one_fy, one_fx), ("q21", y0c, x1c, one_fy, fx),
                                ("q12", y1c, x0c, fy, one_fx), ("q22", y1c, x1c, fy, fx)):
        index = b.reshape(b.binary("ADD", b.binary("MUL", yy, width, f"{tag}_row"), xx,
                                   f"{tag}_i2"), (p,), f"{tag}_i")
        values = b.emit("GATHER", [flat, index], (p, ch), tag, axis=0, batch_dims=0)
        weight = b.reshape(b.binary("MUL", b.binary("MUL", wy, wx, f"{tag}_w"), mask,
                                    f"{tag}_wm"), (p, 1), f"{tag}_wcol")
        term = b.binary("MUL", values, weight, f"{tag}_term")
        total = term if total is None else b.binary("ADD", total, term, f"{tag}_sum")
    assert total is not None
    b.reshape(total, (1, oh, ow, ch), "out", out=out)
    return b.ops


def transform_landmarks(g: Graph, op: Operator) -> list[Operator] | None:
    if not _check(op, 2):
        return None
    lm, m = op.inputs
    assert lm is not None and m is not None
    out = op.outputs[0]
    if lm.rank != 3 or lm.shape[2] not in (2, 3) or tuple(m.shape) != (1, 4, 4) or \
            tuple(out.shape) != tuple(lm.shape):
        return None
    b = _Builder(g, op)
    m00, m01, m03, m10, m11, m13 = b.matrix_entries(m, [0, 1, 3, 4, 5, 7])
    x, y = b.gather(lm, [0], 2, "x"), b.gather(lm, [1], 2, "y")

    def row(a: Tensor, c: Tensor, t: Tensor, tag: str) -> Tensor:
        return b.binary("ADD", b.binary("ADD", b.binary("MUL", a, x, f"{tag}_ax"),
                                        b.binary("MUL", c, y, f"{tag}_cy"), f"{tag}_lin"),
                        t, tag)

    parts = [row(m00, m01, m03, "tx"), row(m10, m11, m13, "ty")]
    if lm.shape[2] == 3:
        parts.append(b.gather(lm, [2], 2, "z"))
    b.emit("CONCATENATION", parts, out.shape, "out", out=out, axis=2,
           fused_activation_function="NONE")
    return b.ops


REWRITES = {LANDMARKS_TO_MATRIX: landmarks_to_matrix, TRANSFORM_BILINEAR: transform_bilinear,
            TRANSFORM_LANDMARKS: transform_landmarks}

__all__ = ["LANDMARKS_TO_MATRIX", "REWRITES", "TRANSFORM_BILINEAR", "TRANSFORM_LANDMARKS",
           "custom_options", "landmarks_to_matrix", "transform_bilinear", "transform_landmarks"]
