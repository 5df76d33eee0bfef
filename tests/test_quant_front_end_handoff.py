"""Issue 12 (silero_vad_16k_op15 / v6: speech probability 21.6 dB): the float magnitude
spectrum a signal-processing front end hands to the network was read by an int8 convolution,
whose one scale rounds the quiet bins (30.6 dB before any learned layer). The layers that read
a float front end's output, up to the first weighted layer, run 16x8 by default
(`front_end_handoff`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from conftest import requires_onnx
from onnx_testing import random


def _vad_like(gate_after_sqrt: bool = False, learned_front: bool = False) -> Any:
    """x [4, 64] frames -> (x @ cos)^2 + (x @ sin)^2 -> sqrt: a magnitude spectrum (the float
    front end), then the network: a learned MatMul whose weights cancel (a spectral
    difference), Relu, MatMul, Sigmoid. `gate_after_sqrt`: a Sigmoid reads the spectrum first;
    `learned_front`: a Tanh before the transform."""
    from onnx import helper

    from onnx_testing import make_model

    rng = np.random.default_rng(0)
    n = np.arange(64)[:, None] * np.arange(33)[None, :]
    learned = rng.normal(0, 0.3, (33, 24))
    learned -= learned.mean(axis=0, keepdims=True)  # the loud bins cancel: quiet ones matter
    inits = {"C": np.cos(2 * np.pi * n / 64).astype(np.float32),
             "S": np.sin(2 * np.pi * n / 64).astype(np.float32),
             "W": learned.astype(np.float32),
             "V": rng.normal(0, 0.3, (24, 4)).astype(np.float32)}
    x = "x"
    nodes = []
    if learned_front:  # a network before the SQRT (a LayerNorm near the input): no front end
        nodes.append(helper.make_node("Tanh", ["x"], ["t"]))
        x = "t"
    nodes += [helper.make_node("MatMul", [x, "C"], ["re"]),
             helper.make_node("MatMul", [x, "S"], ["im"]),
             helper.make_node("Mul", ["re", "re"], ["re2"]),
             helper.make_node("Mul", ["im", "im"], ["im2"]),
             helper.make_node("Add", ["re2", "im2"], ["power"]),
             helper.make_node("Sqrt", ["power"], ["mag"])]
    x = "mag"
    if gate_after_sqrt:  # a LOGISTIC would end the path: a fixed output scale
        nodes.append(helper.make_node("Sigmoid", [x], ["gated"]))
        x = "gated"
    nodes += [helper.make_node("MatMul", [x, "W"], ["h"]),
              helper.make_node("Relu", ["h"], ["r"]),
              helper.make_node("MatMul", ["r", "V"], ["logit"]),
              helper.make_node("Sigmoid", ["logit"], ["y"])]
    return make_model(nodes, {"x": [4, 64]}, ["y", "h"], inits, opset=14)


def _audio(seed: int) -> np.ndarray:
    """Frames of a tone plus noise, 40 dB apart in loudness: a wide magnitude spectrum."""
    rng = np.random.default_rng(seed)
    t = np.arange(64)[None, :]
    tone = np.sin(2 * np.pi * rng.uniform(2, 12, (4, 1)) * t / 64)
    gain = 10.0 ** rng.uniform(-2, 0, (4, 1))
    return ((tone + 0.05 * random((4, 64), seed)) * gain).astype(np.float32)


def _sqnr(model: Any, data: bytes, output: int = 1) -> float:
    from onnx_testing import run_onnx, run_tflite

    feeds = [{"x": _audio(500 + k)} for k in range(16)]
    ref = np.concatenate([run_onnx(model, f)[output].ravel() for f in feeds]).astype(np.float64)
    got = np.concatenate([run_tflite(data, f)[output].ravel() for f in feeds]).astype(np.float64)
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((ref - got) ** 2)))


@requires_onnx
def test_handoff_layers_are_the_readers_up_to_the_first_weighted_layer() -> None:
    from sdk.converters.frontends import load_model
    from sdk.converters.quantize.front_end_handoff import float_front_ends, handoff_layers
    from sdk.converters.quantize.plan import layer_name

    g = load_model(_vad_like()).model.main
    (sqrt, cone), = float_front_ends(g)
    assert sqrt.type == "SQRT" and len(cone) == 5, [c.type for c in cone]
    found = handoff_layers(g)
    types = {op.type for op in g.operators if layer_name(op) in found}
    assert "FULLY_CONNECTED" in types and "RELU" not in types, (found, types)
    assert set(found.values()) == {layer_name(sqrt)}


@requires_onnx
def test_a_fixed_scale_op_ends_the_handoff() -> None:
    from sdk.converters.frontends import load_model
    from sdk.converters.quantize.front_end_handoff import handoff_layers

    assert handoff_layers(load_model(_vad_like(gate_after_sqrt=True)).model.main) == {}


@requires_onnx
def test_first_layer_after_a_float_front_end_is_16x8(tmp_path: Any) -> None:
    import sdk
    from sdk.converters.quantize.front_end_handoff import REASON

    model = _vad_like()
    cal = [{"x": _audio(k)} for k in range(32)]
    result = sdk.export(model, "int8", calibration=cal, output=str(tmp_path / "h.tflite"),
                        report=False)
    wide = [k for k, v in result.precision_notes.items() if v.startswith(REASON[:40])]
    assert len(wide) == 1 and result.precision[wide[0]] == "int16x8", result.precision_notes
    ours = _sqnr(model, (tmp_path / "h.tflite").read_bytes())
    forced = sdk.export(model, "int8", calibration=cal, output=str(tmp_path / "i.tflite"),
                        report=False, precision={wide[0]: "int8"})
    assert wide[0] not in forced.precision_notes
    int8 = _sqnr(model, (tmp_path / "i.tflite").read_bytes())
    assert ours > int8 + 6.0, (ours, int8)


@requires_onnx
def test_a_network_before_the_sqrt_is_no_signal_front_end() -> None:
    from sdk.converters.frontends import load_model
    from sdk.converters.quantize.front_end_handoff import float_front_ends, handoff_layers

    g = load_model(_vad_like(learned_front=True)).model.main
    assert float_front_ends(g) == [] and handoff_layers(g) == {}
