"""Issue 12 (basic-pitch, 6.1 dB): a LOG after a long signal-processing front end (a
constant-Q transform: one strided convolution per octave, padded, sliced and stacked, then
power, sum and SQRT; far more than FRONT_END_OPS ops) read an int8 magnitude spectrum, and every
quiet bin came out as log(eps). A front end of any length up to SIGNAL_FRONT_END_OPS that is
only signal processing (linear maps, data movement, powers and magnitudes: no activation) stays
float with the LOG; a network before a LOG (activations in between) keeps its int8 layers."""

from __future__ import annotations

from typing import Any

import numpy as np

from conftest import requires_onnx
from onnx_testing import make_model, random, run_onnx, run_tflite


def _deep_front_end(depth: int, activation: str | None) -> Any:
    """x [4, 64] -> depth x (MatMul [-> activation]) -> (. @ F)^2 -> @ M -> max(., 1e-6) ->
    log."""
    from onnx import helper

    rng = np.random.default_rng(0)
    inits = {"F": rng.normal(0, 0.2, (64, 48)).astype(np.float32),
             "M": np.abs(rng.normal(0, 0.2, (48, 16))).astype(np.float32),
             "floor": np.array(1e-6, np.float32)}
    nodes, x = [], "x"
    for k in range(depth):
        inits[f"D{k}"] = (np.eye(64) + rng.normal(0, 0.02, (64, 64))).astype(np.float32)
        nodes.append(helper.make_node("MatMul", [x, f"D{k}"], [f"d{k}"]))
        x = f"d{k}"
        if activation is not None:
            nodes.append(helper.make_node(activation, [x], [f"a{k}"]))
            x = f"a{k}"
    nodes += [helper.make_node("MatMul", [x, "F"], ["spec"]),
              helper.make_node("Mul", ["spec", "spec"], ["power"]),
              helper.make_node("MatMul", ["power", "M"], ["mel"]),
              helper.make_node("Max", ["mel", "floor"], ["floored"]),
              helper.make_node("Log", ["floored"], ["y"])]
    return make_model(nodes, {"x": [4, 64]}, ["y"], inits, opset=14)


def _audio(seed: int) -> np.ndarray:
    gain = 10.0 ** np.random.default_rng(seed).uniform(-2, 0, (4, 1))  # frames 40 dB apart
    return (random((4, 64), seed) * gain).astype(np.float32)


def _export(model: Any, tmp_path: Any) -> tuple[bytes, Any]:
    import sdk

    out = tmp_path / "front.tflite"
    result = sdk.export(model, "int8", calibration=[{"x": _audio(k)} for k in range(32)],
                        output=str(out), report=False)
    return out.read_bytes(), result


@requires_onnx
def test_a_long_signal_front_end_stays_float(tmp_path: Any) -> None:
    from sdk.converters.quantize.int8 import FRONT_END_OPS

    depth = FRONT_END_OPS + 6
    model = _deep_front_end(depth, None)
    data, result = _export(model, tmp_path)
    kept = [v for v in result.fallbacks.values() if "front end of" in v]
    assert len(kept) == depth + 4, result.fallbacks
    refs = [run_onnx(model, {"x": _audio(500 + k)})[0] for k in range(8)]
    gots = [run_tflite(data, {"x": _audio(500 + k)})[0] for k in range(8)]
    ref, got = np.concatenate(refs).astype(np.float64), np.concatenate(gots)
    sqnr = 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - got) ** 2))
    assert sqnr > 40.0, sqnr


@requires_onnx
def test_only_signal_processing_makes_a_long_front_end(tmp_path: Any) -> None:
    """The same length with activations between the linear maps is a network, not a front end:
    its layers stay int8; without them it is a front end and stays float."""
    from sdk.converters.quantize.int8 import FRONT_END_OPS

    for activation in ("Relu", "Sigmoid", None):
        _, result = _export(_deep_front_end(FRONT_END_OPS + 2, activation), tmp_path)
        kept = [v for v in result.fallbacks.values() if "front end of" in v]
        assert bool(kept) == (activation is None), (activation, result.fallbacks)
