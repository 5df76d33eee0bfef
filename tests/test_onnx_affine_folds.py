"""Constant affine ops next to a weighted layer fold into its weights and bias (issue 12).

PP-OCRv4's backbone (Paddle's learnable affine blocks) is Conv -> Mul(s) -> Add(b) ->
HardSwish -> Mul(s') -> Add(b') -> Conv: four element-wise ops per layer, each one more int8
requantisation, and a shifted tensor (x + b') whose int8 range must still hold 0. The importer
folds the scale after a weighted op into it, and an affine read only by a layer that reads no
padding (1x1 / VALID convolutions, fully connected) into that layer; an affine before a padded
3x3 convolution stays (the padding reads 0, not b')."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import requires_onnx
from onnx_testing import convert_and_compare, make_model, random


def _lab_model(kernel: int, pad: int, channel_scale: bool) -> object:
    """Conv 3x3 -> Mul -> Add -> HardSwish -> Mul -> Add -> Conv (kernel x kernel, pads)."""
    from onnx import helper

    c = 6
    s1 = (np.linspace(0.5, 1.5, c).reshape(1, c, 1, 1) if channel_scale
          else np.array([1.7])).astype(np.float32)
    inits = {
        "w1": random((c, 3, 3, 3), seed=1, scale=0.3), "b1": random((c,), seed=2),
        "s1": s1, "t1": np.array([0.25], np.float32),
        "s2": np.array([0.8], np.float32),
        "t2": random((1, c, 1, 1), seed=3, scale=2.0) + np.float32(4.0),
        "w2": random((5, c, kernel, kernel), seed=4, scale=0.3), "b2": random((5,), seed=5),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["c1", "s1"], ["m1"]),
        helper.make_node("Add", ["m1", "t1"], ["a1"]),
        helper.make_node("HardSwish", ["a1"], ["h"]),
        helper.make_node("Mul", ["h", "s2"], ["m2"]),
        helper.make_node("Add", ["m2", "t2"], ["a2"]),
        helper.make_node("Conv", ["a2", "w2", "b2"], ["y"], pads=[pad] * 4),
    ]
    return make_model(nodes, {"x": [1, 3, 10, 12]}, ["y"], inits)


@requires_onnx
@pytest.mark.parametrize("channel_scale", [False, True])
@pytest.mark.parametrize(("kernel", "pad"), [(1, 0), (3, 0)])
def test_affines_fold_into_the_layers_around_them(kernel, pad, channel_scale):
    ir = convert_and_compare(_lab_model(kernel, pad, channel_scale),
                             {"x": random((1, 3, 10, 12), seed=7)}, atol=2e-4, rtol=2e-4)
    ops = [op.type for op in ir.main.operators]
    assert "MUL" not in ops and "ADD" not in ops, ops
    assert ops.count("CONV_2D") == 2 and "HARD_SWISH" in ops


@requires_onnx
def test_an_affine_before_a_padded_convolution_stays():
    ir = convert_and_compare(_lab_model(3, 1, False), {"x": random((1, 3, 10, 12), seed=8)},
                             atol=2e-4, rtol=2e-4)
    ops = [op.type for op in ir.main.operators]
    # the scale and shift after the first conv fold into it; the ones the padded conv reads
    # do not (its border would read the shift where the float model reads 0)
    assert ops.count("MUL") == 1 and ops.count("ADD") == 1, ops
    assert ops.index("HARD_SWISH") < ops.index("MUL") < ops.index("ADD")


@requires_onnx
def test_a_scale_read_by_two_layers_stays():
    """An affine whose output two ops read (a residual) stays; the next one, read by one 1x1
    convolution only, folds."""
    from onnx import helper

    c = 4
    inits = {"w1": random((c, c, 1, 1), seed=1), "s": np.array([2.0], np.float32),
             "t": np.array([1.5], np.float32), "w2": random((c, c, 1, 1), seed=2),
             "s2": np.array([0.5], np.float32)}
    nodes = [helper.make_node("Mul", ["x", "s"], ["m"]),
             helper.make_node("Add", ["m", "t"], ["a"]),
             helper.make_node("Conv", ["a", "w1"], ["y1"]),
             helper.make_node("Add", ["y1", "a"], ["r"]),
             helper.make_node("Mul", ["r", "s2"], ["r2"]),
             helper.make_node("Conv", ["r2", "w2"], ["y"])]
    ir = convert_and_compare(make_model(nodes, {"x": [1, c, 5, 5]}, ["y"], inits),
                             {"x": random((1, c, 5, 5), seed=3)})
    ops = [op.type for op in ir.main.operators]
    assert ops.count("MUL") == 1 and ops.count("ADD") == 2, ops
    assert [o for o in ops if o != "TRANSPOSE"][-2:] == ["ADD", "CONV_2D"], ops
