"""Issue 12 (oww_melspectrogram, 4.9 dB; the silero VADs' magnitude spectrum): a LOG (SQRT) of
an int8 power / mel spectrum reads every quiet bin (below half an int8 step of the loudest) as 0.
The front end that computes a LOG's input from the model inputs stays in float by default, each
of its layers saying why; a LOG deep in a network keeps its int8 producers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import requires_onnx
from onnx_testing import random


def _log_mel_model(depth: int = 0, floor: float = 1e-6, last: str = "Log") -> Any:
    """x [4, 64] -> (x @ F)^2 -> @ M -> max(., 1e-6) -> log; `depth` MatMul + Relu layers
    between the input and the front end."""
    from onnx import helper

    from onnx_testing import make_model

    rng = np.random.default_rng(0)
    inits = {"F": rng.normal(0, 0.2, (64, 48)).astype(np.float32),
             "M": np.abs(rng.normal(0, 0.2, (48, 16))).astype(np.float32),
             "floor": np.array(floor, np.float32)}
    nodes, x = [], "x"
    for k in range(depth):
        inits[f"D{k}"] = (np.eye(64) + rng.normal(0, 0.02, (64, 64))).astype(np.float32)
        nodes += [helper.make_node("MatMul", [x, f"D{k}"], [f"d{k}"]),
                  helper.make_node("Relu", [f"d{k}"], [f"r{k}"])]
        x = f"r{k}"
    nodes += [helper.make_node("MatMul", [x, "F"], ["spec"]),
              helper.make_node("Mul", ["spec", "spec"], ["power"]),
              helper.make_node("MatMul", ["power", "M"], ["mel"]),
              helper.make_node("Max", ["mel", "floor"], ["floored"]),
              helper.make_node(last, ["floored"], ["y"])]
    return make_model(nodes, {"x": [4, 64]}, ["y"], inits, opset=14)


def _audio(seed: int) -> np.ndarray:
    # speech-like loudness: frames 40 dB apart
    gain = 10.0 ** np.random.default_rng(seed).uniform(-2, 0, (4, 1))
    return (random((4, 64), seed) * gain).astype(np.float32)


def _export(model: Any, tmp_path: Any) -> tuple[bytes, Any]:
    import sdk

    out = tmp_path / "logmel.tflite"
    result = sdk.export(model, "int8", calibration=[{"x": _audio(k)} for k in range(32)],
                        output=str(out), report=False)
    return out.read_bytes(), result


@requires_onnx
@pytest.mark.parametrize("last", ["Log", "Sqrt"])
def test_log_front_end_stays_float_and_faithful(last: str, tmp_path: Any) -> None:
    from onnx_testing import run_onnx, run_tflite

    model = _log_mel_model(last=last)
    data, result = _export(model, tmp_path)
    refs, gots = [], []
    for k in range(8):
        feeds = {"x": _audio(500 + k)}
        refs.append(run_onnx(model, feeds)[0])
        gots.append(run_tflite(data, feeds)[0])
    ref, got = np.concatenate(refs).astype(np.float64), np.concatenate(gots)
    sqnr = 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - got) ** 2))
    assert sqnr > 40.0, sqnr
    kept = {k: v for k, v in result.fallbacks.items() if "front end of" in v}
    assert len(kept) == 4, result.fallbacks   # MatMul, Mul, MatMul, Max
    assert all(f"({last.upper()}) kept in float" in v for v in kept.values()), kept


@requires_onnx
def test_log_deep_in_a_network_keeps_int8_producers(tmp_path: Any) -> None:
    """More than FRONT_END_OPS ops before the LOG: not a front end, its producers stay int8."""
    from sdk.converters.quantize.int8 import FRONT_END_OPS

    # (a floor int8 can hold: below half a step it would read as 0 and the LOG as -inf)
    _, result = _export(_log_mel_model(depth=FRONT_END_OPS, floor=0.5), tmp_path)
    assert not [v for v in result.fallbacks.values() if "front end of" in v], result.fallbacks
    assert any(v.startswith("LiteRT has no int8 kernel for LOG") for v in
               result.fallbacks.values()), result.fallbacks


@requires_onnx
def test_chosen_precisions_are_kept(tmp_path: Any) -> None:
    """16x8 (whole model) and a per-layer "int8" override are not widened to float."""
    import sdk

    model = _log_mel_model(floor=0.5)  # a floor int8 holds: no log(0) in the int8 file
    cal = [{"x": _audio(k)} for k in range(16)]
    wide = sdk.export(model, "int16x8", calibration=cal, output=str(tmp_path / "w.tflite"),
                      report=False)
    assert not [v for v in wide.fallbacks.values() if "front end of" in v], wide.fallbacks
    plain = sdk.export(model, "int8", calibration=cal, output=str(tmp_path / "p.tflite"),
                       report=False, precision={"*": "int8"})
    assert not [v for v in plain.fallbacks.values() if "front end of" in v], plain.fallbacks
