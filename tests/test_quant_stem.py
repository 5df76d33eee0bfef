"""Stem rounding (converters/quantize/stem.py, `sdk.export(..., stem_rounding=True)`): the int8
weights of the layers next to the model input are rounded by GPTQ against their calibration
inputs, so that rounding errors cancel over windows of nearly equal pixels instead of adding
up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sdk
from sdk.converters.frontends import load_model
from sdk.converters.quantize import as_samples
from sdk.converters.quantize.gptq import patches
from sdk.converters.quantize.plan import layer_name
from sdk.converters.quantize.stem import stem_layers, stem_rounding
from sdk.converters.quantize.weights import symmetric_per_channel
from sdk.exporter import input_specs

pytest.importorskip("onnx")
from onnx import helper

from onnx_testing import make_model, random


def _smooth_images(n: int, seed: int) -> np.ndarray:
    """Photos as a first layer sees them: each colour nearly constant over a 3x3 window (a
    coarse random field upsampled 8x, an offset per colour), NCHW in [-1, 1]."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-0.3, 0.3, (n, 1, 3, 4, 4)) + rng.uniform(-0.6, 0.6, (n, 1, 3, 1, 1))
    return np.clip(coarse.repeat(8, axis=3).repeat(8, axis=4), -1, 1).astype(np.float32)


def _net() -> object:
    """Conv 3x3 (3 -> 16) + Relu, then three 1x1 convs: the first three are the stem (0, 1
    and 2 weighted layers before them), the last is not."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"]),
             helper.make_node("Relu", ["c3"], ["r3"]),
             helper.make_node("Conv", ["r3", "w4", "b4"], ["y"])]
    w1 = random((16, 3, 3, 3), seed=1, scale=0.3)
    w1[:, 0, 1, 1] = 4.0  # one large tap per channel (a folded BatchNorm): a coarse int8 step
    inits = {"w1": w1,
             "b1": random((16,), seed=2, scale=0.5),
             "w2": random((8, 16, 1, 1), seed=3, scale=0.5), "b2": random((8,), seed=4),
             "w3": random((8, 8, 1, 1), seed=5, scale=0.5), "b3": random((8,), seed=6),
             "w4": random((4, 8, 1, 1), seed=7, scale=0.5), "b4": random((4,), seed=8)}
    return make_model(nodes, {"x": [1, 3, 32, 32]}, ["y"], inits)


def test_stem_is_the_first_weighted_layers() -> None:
    model = load_model(_net().SerializeToString()).model
    convs = [op for op in model.main.operators if op.type == "CONV_2D"]
    assert stem_layers(model) == convs[:3]
    assert stem_layers(model, depth=1) == convs[:1]


def test_stem_codes_cancel_on_the_layer_inputs() -> None:
    model = load_model(_net().SerializeToString()).model
    samples = as_samples(_smooth_images(16, seed=9), input_specs(model))
    stem = stem_rounding(model, samples, depth=1, check=False)
    first = stem_layers(model, depth=1)[0]
    w = first.inputs[1].numpy().astype(np.float32)  # [O, KH, KW, I]
    scales, rtn = symmetric_per_channel(w, 0, 127)
    solved = stem.codes(w, 0, scales, -127, 127)
    assert solved is not None, "the first conv's weights have no Hessian"
    s, q = solved
    assert q.shape == w.shape and np.abs(q).max() <= 127
    x = np.transpose(_smooth_images(4, seed=10)[:, 0], (0, 2, 3, 1))  # NHWC, unseen images
    rows = patches(first, x, 3, 3, np.arange(4 * 32 * 32)).reshape(-1, 27)

    def error(codes: np.ndarray, sc: np.ndarray) -> float:
        deq = codes.reshape(16, -1) * np.asarray(sc, np.float64)[:, None]
        return float(((rows @ (w.reshape(16, -1) - deq).T) ** 2).mean())

    # rounding to nearest leaves errors that add up over a window of equal pixels
    assert error(q, s) < 0.25 * error(rtn, scales), (error(q, s), error(rtn, scales))
    assert stem.rounded == [layer_name(first)]


def test_export_rounds_the_stem_when_asked(tmp_path: Path) -> None:
    data = _smooth_images(48, seed=11)
    stem = sdk.export(_net().SerializeToString(), "int8", calibration=data, stem_rounding=True,
                      output=tmp_path / "stem.tflite")
    plain = sdk.export(_net().SerializeToString(), "int8", calibration=data,
                       stem_rounding=False, output=tmp_path / "plain.tflite")
    # the first two layers: the held-out check keeps their GPTQ codes
    assert any(n.startswith(("stem rounding: 2 layer(s)", "stem rounding: 3 layer(s)"))
               for n in stem.notes), stem.notes
    assert not any(n.startswith("stem rounding") for n in plain.notes)
    ours = min(o.sqnr_db for o in stem.fidelity.outputs)
    rtn = min(o.sqnr_db for o in plain.fidelity.outputs)
    print(f"output SQNR: stem rounding {ours:.1f} dB, round to nearest {rtn:.1f} dB")
    assert ours > rtn + 1.5, (ours, rtn)
