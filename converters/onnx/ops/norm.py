"""Normalisations. BatchNormalization that follows a Conv/ConvTranspose/Gemm is folded into its
weights before lowering (see `patterns`); one that is left becomes MUL + ADD with per-channel
constants. LayerNormalization and InstanceNormalization become the op sequence TensorFlow's
converter writes for Keras' LayerNormalization: MEAN, SUB, MUL (square), MEAN, ADD (epsilon),
RSQRT, MUL, then the affine MUL and ADD.
"""

from __future__ import annotations

import numpy as np

from sdk.converters.onnx.graph import Node
from sdk.converters.onnx.lowering import Lowering
from sdk.converters.onnx.ops.elementwise import elementwise, unary
from sdk.converters.onnx.ops.reduce import reduce
from sdk.converters.onnx.registry import handles


def _channel_const(ctx: Lowering, base: str, values: np.ndarray, rank: int) -> str:
    """Per-channel constant shaped to broadcast along ONNX axis 1 of a rank-`rank` tensor."""
    return ctx.const_value(base, values.astype(np.float32).reshape((-1,) + (1,) * (rank - 2)))


@handles("BatchNormalization")
def _batch_norm(ctx: Lowering, node: Node) -> None:
    if int(node.attr("training_mode", 0)) or any(node.output_used(i) for i in (1, 2, 3, 4)):
        raise ctx.unsupported("training mode")
    x, out = node.inputs[0], node.outputs[0]
    scale, shift = batch_norm_affine(ctx, node)
    rank = ctx.rank(x)
    scaled = ctx.temp_value(f"{out}/scaled", ctx.shape(x))
    elementwise(ctx, "MUL", [x, _channel_const(ctx, f"{out}/scale", scale, rank)], scaled)
    elementwise(ctx, "ADD", [scaled, _channel_const(ctx, f"{out}/shift", shift, rank)], out)


def batch_norm_affine(ctx: Lowering, node: Node) -> tuple[np.ndarray, np.ndarray]:
    gamma, beta, mean, var = (ctx.require_const(node.input(i), what).astype(np.float64)
                              for i, what in ((1, "scale"), (2, "bias"), (3, "mean"),
                                              (4, "var")))
    shape = ctx.shape(node.inputs[0])
    channels = shape[1] if len(shape) > 1 else 1
    if any(p.size != channels for p in (gamma, beta, mean, var)):
        raise ctx.unsupported(f"scale, bias, mean and var must hold one value per channel "
                              f"({channels}), not {[p.size for p in (gamma, beta, mean, var)]}")
    gamma, beta, mean, var = (p.reshape(-1) for p in (gamma, beta, mean, var))
    return bn_affine(gamma, beta, mean, var, float(node.attr("epsilon", 1e-5)))


def bn_affine(gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray,
              eps: float) -> tuple[np.ndarray, np.ndarray]:
    """y = x * scale + shift for inference-mode batch normalisation."""
    scale = gamma / np.sqrt(var + eps)
    return scale, beta - mean * scale


def normalize(ctx: Lowering, x: str, axes: list[int], eps: float,
              base: str) -> tuple[str, str, str]:
    """(x - mean) * rsqrt(var + eps) over `axes`; returns the value names of that, the mean and
    the rsqrt."""
    shape = ctx.shape(x)
    kept = tuple(1 if a in axes else d for a, d in enumerate(shape))
    mean = ctx.temp_value(f"{base}/mean", kept)
    reduce(ctx, "MEAN", x, axes, True, mean)
    centred = ctx.temp_value(f"{base}/centred", shape)
    elementwise(ctx, "SUB", [x, mean], centred)
    square = ctx.temp_value(f"{base}/square", shape)
    elementwise(ctx, "MUL", [centred, centred], square)
    var = ctx.temp_value(f"{base}/variance", kept)
    reduce(ctx, "MEAN", square, axes, True, var)
    var_eps = ctx.temp_value(f"{base}/variance_eps", kept)
    elementwise(ctx, "ADD", [var, ctx.const_value(f"{base}/epsilon", np.float32(eps))], var_eps)
    inv = ctx.temp_value(f"{base}/rsqrt", kept)
    unary(ctx, "RSQRT", var_eps, inv)
    normed = ctx.temp_value(f"{base}/normalized", shape)
    elementwise(ctx, "MUL", [centred, inv], normed)
    return normed, mean, inv


def _affine(ctx: Lowering, x: str, scale: str | None, bias: str | None, out: str) -> None:
    if scale is None and bias is None:
        t, perm = ctx.home[x]
        ctx.define(out, t, perm)
        return
    if scale is not None:
        target = out if bias is None else ctx.temp_value(f"{out}/scaled", ctx.shape(x))
        elementwise(ctx, "MUL", [x, scale], target)
        x = target
    if bias is not None:
        elementwise(ctx, "ADD", [x, bias], out)


@handles("LayerNormalization")
def _layer_norm(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = ctx.rank(x)
    axis = int(node.attr("axis", -1)) % rank
    normed, mean, inv = normalize(ctx, x, list(range(axis, rank)),
                                  float(node.attr("epsilon", 1e-5)), out)
    _affine(ctx, normed, node.input(1), node.input(2), out)
    for i, value in ((1, mean), (2, inv)):  # the optional Mean and InvStdDev outputs
        if node.output_used(i):
            t, perm = ctx.home[value]
            ctx.define(node.outputs[i], t, perm)


@handles("InstanceNormalization")
def _instance_norm(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = ctx.rank(x)
    normed, _, _ = normalize(ctx, x, list(range(2, rank)), float(node.attr("epsilon", 1e-5)),
                             out)
    scale = ctx.require_const(node.input(1), "scale")
    bias = ctx.require_const(node.input(2), "bias")
    _affine(ctx, normed, _channel_const(ctx, f"{out}/gamma", scale, rank),
            _channel_const(ctx, f"{out}/beta", bias, rank), out)
