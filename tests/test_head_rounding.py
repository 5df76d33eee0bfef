"""Output heads (a FULLY_CONNECTED the model returns) take int8 codes rounded against their
calibration inputs where a held-out split of the calibration samples gains.

The case: an output that cancels (MediaPipe hand lite's world landmarks, +-0.08 from weights
of +-1 on features of 0..6): round-to-nearest weights keep their relative error in the output,
and that one layer in float lifts the model's worst output 10.7 -> 14.0 dB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sdk
from sdk.converters.frontends import load_model
from sdk.converters.quantize import as_samples, calibrate, plan_for, quantize_int8
from sdk.converters.quantize.head_bias import correct_head_biases
from sdk.converters.quantize.head_rounding import head_layers
from sdk.converters.tflite.reader import read_tflite
from sdk.exporter import input_specs

pytest.importorskip("onnx")
from onnx import helper

from onnx_testing import make_model

K, C, LATENT = 64, 8, 6
BIAS = 0.05


def _features(n: int, seed: int) -> np.ndarray:
    """Pooled-feature-like rows [n, K]: positive, a shared mean and a few latent directions."""
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(0).standard_normal((LATENT, K))
    x = 3.0 + rng.standard_normal((n, LATENT)) @ basis * 0.4 + 0.01 * rng.standard_normal((n, K))
    return np.clip(x, 0.0, 6.0).astype(np.float32)


def _weights() -> np.ndarray:
    """[K, C] weights of +-1 whose outputs on the features cancel to a small value: the
    components along the features' mean and latent directions are removed but for a little."""
    rng = np.random.default_rng(1)
    w = rng.choice([-1.0, 1.0], size=(K, C)) * rng.uniform(0.5, 1.0, size=(K, C))
    x = _features(256, 99).astype(np.float64)
    u, _, _ = np.linalg.svd(x.T, full_matrices=False)
    span = u[:, :LATENT + 1]
    w = w - 0.98 * span @ (span.T @ w)
    return w.astype(np.float32)


def _head(score: bool = False) -> bytes:
    """x [1, K] -> MatMul -> Add -> y (score: -> Sigmoid -> y)."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["z" if score else "y"])]
    if score:
        nodes.append(helper.make_node("Sigmoid", ["z"], ["y"]))
    inits = {"w": _weights(), "b": np.full((C,), BIAS, np.float32)}
    return make_model(nodes, {"x": [1, K]}, ["y"], inits).SerializeToString()


def _fc_weights(data: bytes) -> np.ndarray:
    """The first FULLY_CONNECTED's int8 weights, dequantised."""
    fc = next(op for op in read_tflite(data).main.operators if op.type == "FULLY_CONNECTED")
    w_t = fc.inputs[1]
    assert w_t is not None and w_t.quant is not None
    return w_t.quant.dequantize(w_t.numpy())


def _head_sqnr(data: bytes, x: np.ndarray) -> float:
    """SQNR (dB) of the exported head's int8 weights and int32 bias (dequantised) against the
    float layer on float inputs `x` [n, K]: the head's own rounding error, not its
    activations'."""
    fc = next(op for op in read_tflite(data).main.operators if op.type == "FULLY_CONNECTED")
    w_t, b_t = fc.inputs[1], fc.inputs[2]
    assert w_t is not None and b_t is not None and w_t.quant is not None and b_t.quant is not None
    wq = w_t.quant.dequantize(w_t.numpy()).astype(np.float64)  # [C, K]
    bq = b_t.quant.dequantize(b_t.numpy()).astype(np.float64)
    ref = x.astype(np.float64) @ _weights().astype(np.float64) + BIAS
    got = x.astype(np.float64) @ wq.T + bq
    return float(10 * np.log10((ref ** 2).sum() / ((got - ref) ** 2).sum()))


def test_a_cancelling_output_head_is_rounded_against_its_inputs(tmp_path: Path) -> None:
    cal, test = _features(32, 2)[:, None, :], _features(64, 3)
    rounded = sdk.export(_head(), "int8", calibration=cal, output=tmp_path / "head.tflite")
    # weight_method="minmax": the int8 default's rounding to nearest, without the heads' codes
    nearest = sdk.export(_head(), "int8", calibration=cal, weight_method="minmax",
                         output=tmp_path / "nearest.tflite")
    before = _head_sqnr((tmp_path / "nearest.tflite").read_bytes(), test)
    after = _head_sqnr((tmp_path / "head.tflite").read_bytes(), test)
    assert after > before + 6.0, (before, after)  # before: the same file
    note = next(n for n in rounded.notes if n.startswith("head rounding"))
    assert "not kept" not in note, note
    assert not any(n.startswith("head rounding") for n in nearest.notes)


def test_a_head_whose_rounding_does_not_matter_keeps_round_to_nearest(tmp_path: Path) -> None:
    """Features with no structure to exploit (independent, as many directions as inputs): the
    head's rounded-to-nearest output is already far above what matters; nothing changes."""
    rng = np.random.default_rng(5)
    cal = rng.uniform(0, 6, size=(32, 1, K)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    w = rng.uniform(0.5, 1.0, size=(K, C)).astype(np.float32)  # no cancellation
    model = make_model(nodes, {"x": [1, K]}, ["y"], {"w": w}).SerializeToString()
    a = sdk.export(model, "int8", calibration=cal, output=tmp_path / "a.tflite")
    sdk.export(model, "int8", calibration=cal, weight_method="minmax",
               output=tmp_path / "b.tflite")
    wa, wb = (_fc_weights((tmp_path / f).read_bytes()) for f in ("a.tflite", "b.tflite"))
    assert np.array_equal(wa, wb)  # the same codes and scales
    assert any("(not kept)" in n for n in a.notes if n.startswith("head rounding")), a.notes


def test_heads_are_the_fully_connected_layers_the_model_returns() -> None:
    model = load_model(_head(score=True)).model
    assert [op.type for op in head_layers(model)] == ["FULLY_CONNECTED"]
    # an FC whose output another layer reads is not a head
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("Relu", ["m"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["y"])]
    inner = make_model(nodes, {"x": [1, K]}, ["y"], {"w": _weights(),
                                                    "w2": np.ones((C, 2), np.float32)})
    heads = head_layers(load_model(inner.SerializeToString()).model)
    assert len(heads) == 1 and heads[0].inputs[1].shape[1] == C


def test_a_head_output_shift_is_removed_from_its_bias() -> None:
    """The backbone's rounding leaves a mean shift in a head's output (hand full's presence
    logit read high: false 0.19 -> 0.76); here a known shift of 10 output steps on every other
    channel is put into the int8 head's bias, and the measurement on the calibration samples
    takes it out."""
    model = load_model(_head()).model
    samples = as_samples(_features(32, 2)[:, None, :], input_specs(model))
    cal = calibrate(model, samples)
    quantized = quantize_int8(model, plan_for("int8", model), cal.ranges, input_means=cal.means)
    fc = next(op for op in quantized.model.main.operators if op.type == "FULLY_CONNECTED")
    bias, out = fc.inputs[2], fc.outputs[0]
    assert bias is not None and bias.quant is not None and out.quant is not None
    steps = float(out.quant.scale[0]) / bias.quant.scale.astype(np.float64)  # per channel
    original = bias.numpy().astype(np.float64)
    shifted = np.arange(C) % 2 == 1
    bias.data = (original + np.where(shifted, np.round(10 * steps), 0)).astype(np.int32)
    notes = correct_head_biases(model, quantized, samples)
    assert len(notes) == 1 and "mean shift removed" in notes[0], notes
    residual = (bias.numpy().astype(np.float64) - original) / steps
    assert np.abs(residual).max() < 2.0, residual  # from 10 steps on the shifted channels


def test_the_heads_float_side_is_run_once_for_all_builds() -> None:
    """target_sqnr= builds up to 10 times with one float model: its head outputs are measured
    once (`FloatHeads`), and each build's correction is what a fresh measurement gives."""
    from sdk.converters.quantize.head_bias import FloatHeads

    model = load_model(_head()).model
    samples = as_samples(_features(32, 2)[:, None, :], input_specs(model))
    cal = calibrate(model, samples)
    float_side = FloatHeads(model, samples)
    biases, notes = [], []
    for shared in (float_side, float_side, None):
        quantized = quantize_int8(model, plan_for("int8", model), cal.ranges,
                                  input_means=cal.means)
        fc = next(op for op in quantized.model.main.operators if op.type == "FULLY_CONNECTED")
        bias, out = fc.inputs[2], fc.outputs[0]
        assert bias is not None and bias.quant is not None and out.quant is not None
        steps = float(out.quant.scale[0]) / bias.quant.scale.astype(np.float64)
        bias.data = (bias.numpy() + np.round(10 * steps)).astype(np.int32)
        notes.append(correct_head_biases(model, quantized, samples, shared))
        biases.append(bias.numpy().copy())
    assert float_side.runs == 1
    assert notes[0] == notes[1] == notes[2] and len(notes[0]) == 1, notes
    np.testing.assert_array_equal(biases[0], biases[2])
    np.testing.assert_array_equal(biases[1], biases[2])
    with pytest.raises(ValueError, match="another float model or other samples"):
        correct_head_biases(model, quantized, samples.subset(slice(0, 8)), float_side)


def test_vector_heads_are_returned_layers_with_one_value_per_channel() -> None:
    """A 1x1 convolution on pooled features is a head; the same convolution over a map (a
    segmentation output) is not: its error is not one shift per channel."""
    from sdk.converters.quantize.head_bias import vector_heads

    w = np.ones((4, 8, 1, 1), np.float32)
    pooled = [helper.make_node("GlobalAveragePool", ["x"], ["p"]),
              helper.make_node("Conv", ["p", "w"], ["c"]),
              helper.make_node("Sigmoid", ["c"], ["y"])]
    mapped = [helper.make_node("Conv", ["x", "w"], ["y"])]
    for nodes, expected in ((pooled, ["CONV_2D"]), (mapped, [])):
        model = make_model(nodes, {"x": [1, 8, 4, 4]}, ["y"], {"w": w})
        heads = vector_heads(load_model(model.SerializeToString()).model)
        assert [op.type for op in heads] == expected
