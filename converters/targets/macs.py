"""Multiply-accumulates of the weighted operators, counted from the IR's shapes: what "share of
the conv/FC MACs on the NPU" is measured in."""

from __future__ import annotations

import math

from sdk.converters.ir import Model, Operator

#: operators whose MACs the NPU reports count
MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL",
           "CONV_3D")


def _elements(shape: tuple[int, ...]) -> int:
    return math.prod(max(int(d), 1) for d in shape) if shape else 1


def op_macs(op: Operator) -> int:
    """MACs of one inference of `op` (batch as the model's shapes say; 0 for other ops)."""
    if op.type not in MAC_OPS or not op.outputs:
        return 0
    out = _elements(op.outputs[0].shape)
    if op.type in ("CONV_2D", "CONV_3D"):
        weights = op.inputs[1]
        return 0 if weights is None else out * _elements(weights.shape[1:])
    if op.type == "DEPTHWISE_CONV_2D":
        weights = op.inputs[1]
        return 0 if weights is None else out * _elements(weights.shape[1:3])
    if op.type == "FULLY_CONNECTED":
        weights = op.inputs[1]
        if weights is None:
            return 0
        return out * int(weights.shape[-1])
    if op.type == "TRANSPOSE_CONV":  # inputs: output shape, weights (O, KH, KW, I), input
        weights, x = op.inputs[1], op.inputs[2]
        if weights is None or x is None:
            return 0
        return _elements(x.shape) * _elements(weights.shape[:3])
    a = op.inputs[0]  # BATCH_MATMUL
    if a is None or not a.shape:
        return 0
    k = a.shape[-2] if op.attrs.get("adj_x") else a.shape[-1]
    return out * max(int(k), 1)


def model_macs(model: Model) -> dict[int, int]:
    """{id(op): MACs} for the main graph's weighted operators."""
    return {id(op): op_macs(op) for op in model.main.operators}
