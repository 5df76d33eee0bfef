"""What a model output shows unchanged keeps min/max (converters/quantize/output_views.py).

A detector head's logits (a CONV_2D) reach the output through RESHAPE / CONCATENATION; with
``mse`` on its own the CONV_2D's range clipped the rare large logits (the faces: BlazeFace's top
logit 3.7 -> 2.3), which the output then could not show."""

from __future__ import annotations

import numpy as np
import pytest

from sdk.converters.frontends import load_model
from sdk.converters.quantize import as_samples, calibrate
from sdk.converters.quantize.output_views import output_views
from sdk.converters.quantize.ranges import estimate_range
from sdk.exporter import input_specs

pytest.importorskip("onnx")
from onnx import helper

from onnx_testing import make_model


def _head() -> object:
    """Two 1x1 'heads' (4 -> 2 channels), each RESHAPEd to [1, -1] and CONCATENATED into the
    output; the first head's input is also read by a Relu whose output is a second output."""
    eye = np.zeros((2, 4, 1, 1), np.float32)
    eye[0, 0] = eye[1, 1] = 1.0
    nodes = [helper.make_node("Conv", ["x", "w"], ["c1"]),
             helper.make_node("Conv", ["x", "w"], ["c2"], strides=[2, 2]),
             helper.make_node("Reshape", ["c1", "shape"], ["r1"]),
             helper.make_node("Reshape", ["c2", "shape"], ["r2"]),
             helper.make_node("Concat", ["r1", "r2"], ["y"], axis=1),
             helper.make_node("Relu", ["x"], ["z"])]
    return make_model(nodes, {"x": [1, 4, 8, 8]}, ["y", "z"],
                      {"w": eye, "shape": np.array([1, -1], np.int64)})


def _data(n: int = 32) -> np.ndarray:
    """Mostly N(0, 1) "logits", with a rare large positive value (a face) in two samples."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 1, 4, 8, 8)).astype(np.float32)
    x[:2, 0, 0, 2, 2] = 30.0  # in 2 of the samples
    return x


def test_output_views_walk_back_through_value_moving_ops() -> None:
    model = load_model(_head().SerializeToString()).model
    g = model.main
    views = output_views(g)
    convs = [op for op in g.operators if op.type == "CONV_2D"]
    assert len(convs) == 2
    for op in convs:
        assert id(op.outputs[0]) in views, op
        assert id(op.inputs[0]) not in views  # a convolution computes: its input is not shown
    assert all(id(t) in views for t in g.outputs)


def test_calibration_does_not_clip_what_an_output_shows() -> None:
    model = load_model(_head().SerializeToString()).model
    samples = as_samples(_data(), input_specs(model))
    cal = calibrate(model, samples, "percentile", percentile=99.0)
    for conv in [op for op in model.main.operators if op.type == "CONV_2D"]:
        t = conv.outputs[0]
        # the 99th percentile alone would end near 2.5, cutting every "face" to it
        assert estimate_range(cal.stats[t], "percentile", percentile=99.0)[1] < 5.0
        assert cal.ranges[t][1] == pytest.approx(30.0, rel=1e-3), cal.ranges[t]
