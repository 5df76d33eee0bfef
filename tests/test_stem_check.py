"""Stem rounding's held-out check (converters/quantize/stem.py): GPTQ codes for the layers next
to the input are kept only where they lower the error on calibration samples the Hessians were
not fitted to, per layer and at the model's outputs; the exporter does this by default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sdk
from sdk.converters.frontends import load_model
from sdk.converters.quantize import as_samples
from sdk.converters.quantize.plan import layer_name
from sdk.converters.quantize.stem import (
    MIN_HELD_OUT,
    held_out_split,
    stem_layers,
    stem_rounding,
)
from sdk.converters.quantize.weights import symmetric_per_channel
from sdk.exporter import input_specs

pytest.importorskip("onnx")
from onnx import helper

from onnx_testing import make_model, random


def _smooth_images(n: int, seed: int) -> np.ndarray:
    """Each colour nearly constant over a 3x3 window (a coarse field upsampled 8x), NCHW."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-0.3, 0.3, (n, 1, 3, 4, 4)) + rng.uniform(-0.6, 0.6, (n, 1, 3, 1, 1))
    return np.clip(coarse.repeat(8, axis=3).repeat(8, axis=4), -1, 1).astype(np.float32)


def _conv_net() -> object:
    """Conv 3x3 (3 -> 16, one large tap per channel: a coarse int8 step) + Relu + Conv 1x1."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["y"])]
    w1 = random((16, 3, 3, 3), seed=1, scale=0.3)
    w1[:, 0, 1, 1] = 4.0
    inits = {"w1": w1, "b1": random((16,), seed=2, scale=0.5),
             "w2": random((8, 16, 1, 1), seed=3, scale=0.5), "b2": random((8,), seed=4)}
    return make_model(nodes, {"x": [1, 3, 32, 32]}, ["y"], inits)


def _dense_net() -> object:
    """One dense layer (16 -> 16) on white noise: its inputs are uncorrelated, so GPTQ has no
    correlation to exploit and its Hessian (2 rows per input) only fits the calibration rows."""
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)]
    inits = {"w": random((16, 16), seed=5, scale=0.2), "b": random((16,), seed=6, scale=0.1)}
    return make_model(nodes, {"x": [1, 16]}, ["y"], inits)


def test_held_out_split_takes_the_last_quarter() -> None:
    model = load_model(_conv_net().SerializeToString()).model
    specs = input_specs(model)
    fit, held = held_out_split(as_samples(_smooth_images(40, seed=1), specs))
    assert (len(fit), len(held)) == (32, 8)
    fit, held = held_out_split(as_samples(_smooth_images(16, seed=1), specs))
    assert (len(fit), len(held)) == (12, MIN_HELD_OUT)
    assert held_out_split(as_samples(_smooth_images(10, seed=1), specs)) is None


def test_codes_kept_where_they_help_on_held_out_images() -> None:
    model = load_model(_conv_net().SerializeToString()).model
    samples = as_samples(_smooth_images(40, seed=9), input_specs(model))
    stem = stem_rounding(model, samples)
    first = stem_layers(model)[0]
    choice = {c.layer: c for c in stem.choices}[layer_name(first)]
    assert choice.kept and choice.gptq_db > choice.rtn_db + 3, choice
    w = first.inputs[1].numpy().astype(np.float32)
    scales, _ = symmetric_per_channel(w, 0, 127)
    assert stem.codes(w, 0, scales, -127, 127) is not None
    assert "held-out" in stem.describe()


def test_codes_refused_where_they_only_fit_the_calibration_rows() -> None:
    model = load_model(_dense_net().SerializeToString()).model
    noise = np.random.default_rng(3).normal(0, 1, (48, 16)).astype(np.float32)
    samples = as_samples(noise, input_specs(model))
    unchecked = stem_rounding(model, samples, check=False)
    stem = stem_rounding(model, samples)
    (layer,) = stem_layers(model)
    w = layer.inputs[1].numpy().astype(np.float32)
    scales, _ = symmetric_per_channel(w, 0, 127)
    # without the check the fitted codes are used; the held-out rows show they do not help
    assert unchecked.codes(w, 0, scales, -127, 127) is not None
    (choice,) = stem.choices
    assert not choice.kept, choice
    assert stem.codes(w, 0, scales, -127, 127) is None
    assert stem.rounded == []


def _two_heads() -> object:
    """Conv 3x3 + Relu, then two 1x1 heads: outputs y1 and y2."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["y1"]),
             helper.make_node("Conv", ["r1", "w3", "b3"], ["y2"])]
    w1 = random((8, 3, 3, 3), seed=1, scale=0.3)
    w1[:, 0, 1, 1] = 4.0
    inits = {"w1": w1, "b1": random((8,), seed=2),
             "w2": random((4, 8, 1, 1), seed=3), "b2": random((4,), seed=4),
             "w3": random((4, 8, 1, 1), seed=5), "b3": random((4,), seed=6)}
    return make_model(nodes, {"x": [1, 3, 32, 32]}, ["y1", "y2"], inits)


@pytest.mark.parametrize(("rtn_shift", "gptq_shift", "kept"), [
    ((0.2, 0.2), (0.02, 0.02), True),    # both outputs better
    ((0.2, 0.2), (0.4, 0.4), False),     # both worse
    ((0.2, 0.02), (0.02, 0.1), False),   # the worst output better, the other worse
])
def test_confirm_keeps_codes_only_where_the_int8_model_gains(
        rtn_shift: tuple[float, float], gptq_shift: tuple[float, float], kept: bool) -> None:
    """`confirm` compares the two int8 models' outputs on held-out samples; here the 'int8
    models' are the float model with each head's bias shifted (a known error per output)."""
    from sdk.converters.quantize.stem import confirm
    from sdk.converters.tflite import serialize

    model = load_model(_two_heads().SerializeToString()).model
    samples = as_samples(_smooth_images(24, seed=4), input_specs(model))
    stem = stem_rounding(model, samples)
    assert stem.accepted, stem.choices  # the layer-level check passed the first conv
    heads = [op for op in model.main.operators if op.type == "CONV_2D"][1:]

    def shifted(shift: tuple[float, float]) -> bytes:
        saved = [h.inputs[2].data for h in heads]
        try:
            for h, d in zip(heads, shift, strict=True):
                h.inputs[2].data = h.inputs[2].numpy() + np.float32(d)
            return serialize(model)[0]
        finally:
            for h, data in zip(heads, saved, strict=True):
                h.inputs[2].data = data

    confirm(stem, serialize(model)[0], lambda s: shifted(gptq_shift if s else rtn_shift))
    assert bool(stem.accepted) is kept, (stem.output_db, stem.model_db)
    assert len(stem.output_db) == 2


def test_too_few_samples_keep_round_to_nearest() -> None:
    model = load_model(_conv_net().SerializeToString()).model
    stem = stem_rounding(model, as_samples(_smooth_images(8, seed=2), input_specs(model)))
    w = stem_layers(model)[0].inputs[1].numpy().astype(np.float32)
    scales, _ = symmetric_per_channel(w, 0, 127)
    assert stem.codes(w, 0, scales, -127, 127) is None
    assert "too few" in stem.skipped


def test_export_checks_the_stem_by_default(tmp_path: Path) -> None:
    data = _smooth_images(60, seed=11)
    auto = sdk.export(_conv_net().SerializeToString(), "int8", calibration=data,
                      output=tmp_path / "auto.tflite")  # the default
    off = sdk.export(_conv_net().SerializeToString(), "int8", calibration=data,
                     stem_rounding=False, output=tmp_path / "off.tflite")
    notes = [n for n in auto.notes if n.startswith("stem rounding")]
    assert len(notes) == 1 and "held-out" in notes[0] and "(Conv_0" in notes[0], auto.notes
    assert not any(n.startswith("stem rounding") for n in off.notes)
    ours = min(o.sqnr_db for o in auto.fidelity.outputs)
    rtn = min(o.sqnr_db for o in off.fidelity.outputs)
    print(f"output SQNR: checked stem rounding {ours:.1f} dB, round to nearest {rtn:.1f} dB")
    assert ours > rtn + 1.0, (ours, rtn)
