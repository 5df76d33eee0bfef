"""INT8 export of a max pool with explicit padding (ResNet's stem: MaxPool 3x3/2, pads 1).

The ONNX importer lowers it to PADV2 with the lowest float as the padding value, then MAX_POOL_2D.
Calibration used to take the padded tensor's range down to -3.4e38: its int8 scale came out at
1.3e36, every real value rounded to one code, and LiteRT's builtin kernels aborted the process
while preparing the file. The padding value is a sentinel: the padded tensor takes its input's
range and the pad quantises to -128.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sdk
from sdk.base.errors import ConversionError
from sdk.converters.frontends import load_model
from sdk.converters.quantize import as_samples, calibrate
from sdk.exporter import input_specs

pytest.importorskip("onnx")
from onnx import helper

from onnx_testing import make_model, random


def _stem() -> object:
    w = random((8, 3, 3, 3), seed=1, scale=0.3)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1]),
    ]
    return make_model(nodes, {"x": [1, 3, 16, 16]}, ["y"], {"w": w})


def test_padded_tensor_takes_its_input_range() -> None:
    model = load_model(_stem().SerializeToString()).model
    pads = [op for op in model.main.operators if op.type == "PADV2"]
    assert pads, "the importer no longer pads with PADV2: this test needs another model"
    samples = as_samples(random((16, 1, 3, 16, 16), seed=2), input_specs(model))
    cal = calibrate(model, samples, "minmax")
    x, y = pads[0].inputs[0], pads[0].outputs[0]
    assert cal.ranges[y] == cal.ranges[x]
    assert cal.ranges[y][0] > -1e3
    assert y in cal.notes


def test_int8_export_prepares_and_keeps_the_output(tmp_path: Path) -> None:
    result = sdk.export(_stem().SerializeToString(), "int8",
                        calibration=random((64, 1, 3, 16, 16), seed=3),
                        output=tmp_path / "stem.tflite")
    assert min(o.sqnr_db for o in result.fidelity.outputs) > 30.0, result.fidelity


def test_a_sentinel_range_is_an_error_not_an_abort(tmp_path: Path) -> None:
    # A -3.4e38 mask added to an activation: no int8 scale holds it, and LiteRT aborts the
    # process on the parameters it would give. The export names the tensor instead.
    mask = np.zeros((1, 3, 4, 4), np.float32)
    mask[0, 0, 0, 0] = -3.4e38
    nodes = [helper.make_node("Add", ["x", "mask"], ["m"]),
             helper.make_node("Relu", ["m"], ["y"])]
    model = make_model(nodes, {"x": [1, 3, 4, 4]}, ["y"], {"mask": mask})
    with pytest.raises(ConversionError, match="sentinel"):
        sdk.export(model.SerializeToString(), "int8", calibration=random((16, 1, 3, 4, 4)),
                   output=tmp_path / "m.tflite")
