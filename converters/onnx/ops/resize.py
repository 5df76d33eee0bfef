"""Resize and Upsample (nearest, bilinear) on the spatial axes of NCHW tensors.

ONNX has many coordinate modes; TFLite has three per op (plain, align_corners,
half_pixel_centers). Instead of trusting a mapping table we compute, for the actual sizes, which
input pixels (and weights) each output pixel reads under ONNX's rule and under each TFLite
variant, and pick a variant that reads exactly the same. PyTorch's exports (nearest: asymmetric
+ floor; bilinear: half_pixel or pytorch_half_pixel, or align_corners) always find one; a mode
none matches is an error rather than a silently shifted image.
"""

from __future__ import annotations

import numpy as np

from sdk.converters.onnx import layout
from sdk.converters.onnx.graph import Node
from sdk.converters.onnx.lowering import Lowering
from sdk.converters.onnx.registry import handles


def _onnx_coords(mode: str, n_out: int, n_in: int, scale: float) -> np.ndarray | None:
    x = np.arange(n_out, dtype=np.float64)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if n_out > 1 else np.zeros(n_out)
    if mode == "align_corners":  # the spec's length_resized is n_in * scale, not rounded
        length = n_in * scale
        return x * (n_in - 1) / (length - 1) if length > 1 else np.zeros(n_out)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_half_pixel_for_nn":
        return (x + 0.5) / scale
    return None


def _nearest_matrix(index: np.ndarray, n_in: int) -> np.ndarray:
    m = np.zeros((len(index), n_in))
    m[np.arange(len(index)), np.clip(index, 0, n_in - 1)] = 1.0
    return m


def _linear_matrix(lo: np.ndarray, hi: np.ndarray, frac: np.ndarray, n_in: int) -> np.ndarray:
    m = np.zeros((len(lo), n_in))
    rows = np.arange(len(lo))
    np.add.at(m, (rows, np.clip(lo, 0, n_in - 1)), 1.0 - frac)
    np.add.at(m, (rows, np.clip(hi, 0, n_in - 1)), frac)
    return m


def onnx_matrix(kind: str, mode: str, nearest_mode: str, n_out: int, n_in: int,
                scale: float) -> np.ndarray | None:
    """[n_out, n_in]: the weight of each input pixel in each output pixel, ONNX's rule."""
    x = _onnx_coords(mode, n_out, n_in, scale)
    if x is None:
        return None
    if kind == "nearest":
        rounding = {"round_prefer_floor": lambda v: np.ceil(v - 0.5),
                    "round_prefer_ceil": lambda v: np.floor(v + 0.5),
                    "floor": np.floor, "ceil": np.ceil}.get(nearest_mode)
        if rounding is None:
            return None
        return _nearest_matrix(rounding(x).astype(np.int64), n_in)
    lo = np.floor(x)
    return _linear_matrix(lo.astype(np.int64), lo.astype(np.int64) + 1, x - lo, n_in)


def tflite_matrix(kind: str, align_corners: bool, half_pixel: bool, n_out: int,
                  n_in: int) -> np.ndarray:
    """The same matrix for TFLite's kernels (computed in float32, as they do)."""
    f32 = np.float32
    scale = f32((n_in - 1) / f32(n_out - 1)) if align_corners and n_out > 1 else f32(
        n_in / f32(n_out))
    x = np.arange(n_out, dtype=f32)
    if kind == "nearest":
        offset = f32(0.5) if half_pixel else f32(0.0)
        v = (x + offset) * scale
        idx = np.floor(v + f32(0.5)) if align_corners else np.floor(v)
        idx = np.minimum(idx.astype(np.int64), n_in - 1)
        if half_pixel:
            idx = np.maximum(idx, 0)
        return _nearest_matrix(idx, n_in)
    v = (x + f32(0.5)) * scale - f32(0.5) if half_pixel else x * scale
    floor = np.floor(v)
    lo = np.maximum(floor.astype(np.int64), 0)
    hi = np.minimum(np.ceil(v).astype(np.int64), n_in - 1)
    return _linear_matrix(lo, hi, (v - floor).astype(np.float64), n_in)


_VARIANTS = ((False, False), (False, True), (True, False))


@handles("Resize", "Upsample")
def _resize(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    xs, os = ctx.shape(x), ctx.shape(out)
    if len(xs) != 4:
        raise ctx.unsupported(f"resizing a rank-{len(xs)} tensor (4-D NCHW is supported)")
    if tuple(os[:2]) != tuple(xs[:2]):
        raise ctx.unsupported("resizing the batch or channel axis")
    kind = {"nearest": "nearest", "linear": "linear", "bilinear": "linear"}.get(
        node.attr("mode", "nearest"))
    if kind is None:
        raise ctx.unsupported(f"mode {node.attr('mode')!r} (nearest and linear are supported)")
    legacy = node.op_type == "Upsample" or ctx.og.opset < 11
    scales = None
    if node.op_type == "Upsample" and ctx.og.opset < 9:
        scales = node.attr("scales")
    elif legacy:
        scales = ctx.require_const(node.input(1), "scales")
    elif node.input(2) is not None and ctx.require_const(node.input(2), "scales").size:
        scales = ctx.const(node.input(2))
    spatial_scales = []
    for axis in (2, 3):
        if scales is None:
            spatial_scales.append(os[axis] / xs[axis])
            continue
        values = [float(s) for s in np.asarray(scales).reshape(-1)]
        axes = [int(a) % 4 for a in node.attr("axes", [])] or list(range(4))
        spatial_scales.append(values[axes.index(axis)] if axis in axes else 1.0)
    if legacy:
        mode, nearest_mode = "asymmetric", "floor"
    else:
        mode = node.attr("coordinate_transformation_mode", "half_pixel")
        nearest_mode = node.attr("nearest_mode", "round_prefer_floor")
    if kind == "linear" and int(node.attr("antialias", 0)) and any(
            os[a] < xs[a] for a in (2, 3)):
        raise ctx.unsupported("antialiased downscaling")
    ctx.check_alloc("the resize sampling matrices",
                    sum(os[a] * xs[a] for a in (2, 3)) * 8 * 3)
    wanted = [onnx_matrix(kind, mode, nearest_mode, os[a], xs[a], spatial_scales[a - 2])
              for a in (2, 3)]
    if any(w is None for w in wanted):
        raise ctx.unsupported(f"coordinate_transformation_mode={mode!r}, "
                              f"nearest_mode={nearest_mode!r}")
    for align_corners, half_pixel in _VARIANTS:
        if all(np.allclose(tflite_matrix(kind, align_corners, half_pixel, os[a], xs[a]),
                           wanted[a - 2], atol=1e-5) for a in (2, 3)):
            break
    else:
        raise ctx.unsupported(
            f"{kind} resize {xs[2]}x{xs[3]} -> {os[2]}x{os[3]} with "
            f"coordinate_transformation_mode={mode!r}"
            + (f", nearest_mode={nearest_mode!r}" if kind == "nearest" else "")
            + f" (scales {[round(s, 4) for s in spatial_scales]}): no TFLite resize samples the "
            "same pixels")
    cl = layout.channels_last(4)
    t = ctx.tensor(x, cl)
    y = ctx.new(out, layout.permute(os, cl))
    op_type = "RESIZE_NEAREST_NEIGHBOR" if kind == "nearest" else "RESIZE_BILINEAR"
    ctx.emit(op_type, [t, ctx.int32(f"{out}/size", [os[2], os[3]])], [y],
             align_corners=align_corners, half_pixel_centers=half_pixel)
    ctx.define(out, y, cl)
