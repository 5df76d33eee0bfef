"""Issue 12 (openWakeWord's embedding, 23.6 dB): LEAKY_RELU(alpha 0.2) then MAXIMUM(x, -0.4),
twenty times. Values under the clamp come out as the clamp: the tensor before the MAXIMUM, and
the convolution output before the LEAKY_RELU under -0.4 / 0.2 = -2, need no int8 codes for
them. Calibration clips their ranges there (`clamps`), as it does for RELU6's input."""

from __future__ import annotations

from typing import Any

import numpy as np

from conftest import requires_onnx


def _clamped_block() -> Any:
    """x [8, 32] -> MatMul -> LeakyRelu(0.2) -> Max(., -0.4) -> MatMul -> y."""
    from onnx import helper

    from onnx_testing import make_model

    rng = np.random.default_rng(5)
    inits = {"W1": rng.normal(0, 0.4, (32, 32)).astype(np.float32),
             "W2": rng.normal(0, 0.3, (32, 4)).astype(np.float32),
             "c": np.array([-0.4], np.float32)}
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["h"]),
             helper.make_node("LeakyRelu", ["h"], ["l"], alpha=0.2),
             helper.make_node("Max", ["l", "c"], ["m"]),
             helper.make_node("MatMul", ["m", "W2"], ["y"])]
    return make_model(nodes, {"x": [8, 32]}, ["y"], inits, opset=13)


@requires_onnx
def test_intervals_follow_the_clamp_back_through_leaky_relu() -> None:
    from sdk.converters.frontends import load_model
    from sdk.converters.quantize.clamps import clamp_intervals

    g = load_model(_clamped_block()).model.main
    found = clamp_intervals(g)
    by_name = {t.name: found[id(t)] for op in g.operators for t in op.inputs
               if t is not None and id(t) in found}
    leaky_in = next(op.inputs[0] for op in g.operators if op.type == "LEAKY_RELU")
    leaky_out = next(op.outputs[0] for op in g.operators if op.type == "LEAKY_RELU")
    assert by_name[leaky_out.name] == (np.float32(-0.4), np.inf)
    lo, hi = by_name[leaky_in.name]
    assert np.isclose(lo, -2.0) and hi == np.inf
    assert len(found) == 2  # the model input and the last MatMul's input are not clamped


@requires_onnx
def test_calibrated_ranges_stop_at_the_clamp() -> None:
    from sdk.base.samples import as_samples
    from sdk.converters.frontends import load_model
    from sdk.converters.quantize.calibrate import calibrate
    from sdk.exporter import input_specs

    model = load_model(_clamped_block()).model
    rng = np.random.default_rng(0)
    data = [{"x": rng.normal(0, 2.0, (8, 32)).astype(np.float32)} for _ in range(16)]
    cal = calibrate(model, as_samples(data, input_specs(model)), "minmax")
    leaky = next(op for op in model.main.operators if op.type == "LEAKY_RELU")
    h, lout = leaky.inputs[0], leaky.outputs[0]
    assert cal.stats[h].min < -4.0  # what the data holds
    assert np.isclose(cal.ranges[h][0], -2.0, atol=1e-5), cal.ranges[h]
    assert np.isclose(cal.ranges[lout][0], -0.4, atol=1e-5), cal.ranges[lout]
    assert h in cal.notes and "clipped on purpose" in cal.notes[h]
