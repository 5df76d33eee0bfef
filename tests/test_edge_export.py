"""`sdk.export(..., format="edge")`: the same quantised model as the .tflite export, written as
.edge; the .edge runtime gives LiteRT's outputs for it bit for bit."""

from __future__ import annotations

import numpy as np
from edge_helpers import run_litert

import sdk
from sdk.converters.edge import read_edge
from sdk.run import EdgeModel

from conftest import requires_onnx, requires_tf


@requires_tf
def test_export_edge_matches_export_tflite(digits_keras, digits_data, tmp_path) -> None:
    cal = digits_data.x_train[:64]
    kwargs = {"calibration": cal, "method": "minmax", "report": False}
    tfl = sdk.export(digits_keras, "int8", output=tmp_path / "d.tflite", **kwargs)
    edge = sdk.export(digits_keras, "int8", output=tmp_path / "d.edge", **kwargs)
    assert edge.format == "edge" and tfl.format == "tflite"
    # fidelity of the .edge file is measured by the .edge runtime itself
    assert edge.fidelity is not None and edge.fidelity.kernels == "edge runtime"
    assert edge.fidelity.min_sqnr_db > 10
    assert abs(edge.fidelity.min_sqnr_db - tfl.fidelity.min_sqnr_db) < 3
    assert edge.path.read_bytes()[4:8] == b"EDG1"
    info = read_edge(edge.path)
    assert info.metadata.quantization_recipe.startswith("int8; activations=int8; method=minmax")
    assert info.metadata.producer.startswith("edgesdk")
    model = EdgeModel(edge.path, threads=1)
    tflite = tfl.path.read_bytes()
    for x in digits_data.x_test[:20]:
        assert np.array_equal(model.run(x[None])[0], run_litert(tflite, [x[None]])[0])
    # the format follows the suffix, or is named
    assert sdk.export(digits_keras, "int8", output=tmp_path / "e.bin", format="edge",
                      **kwargs).path.read_bytes()[4:8] == b"EDG1"


@requires_onnx
def test_onnx_model_exports_to_edge_bit_exact(tmp_path) -> None:
    """An ONNX CNN (NCHW at the boundary, so TRANSPOSE and PAD ops) exported to .tflite and to
    .edge from the same calibration: the .edge runtime gives LiteRT's builtin outputs."""
    from test_onnx_models import small_cnn

    model = small_cnn()
    x = np.random.default_rng(0).uniform(-1, 1, (48, 3, 16, 16)).astype(np.float32)
    kwargs = {"calibration": x[:32], "validation": x[32:], "method": "minmax", "report": False,
              "per_layer": False}
    tfl = sdk.export(model, "int8", output=tmp_path / "cnn.tflite", **kwargs)
    edge = sdk.export(model, "int8", output=tmp_path / "cnn.edge", **kwargs)
    assert "TRANSPOSE" in edge.op_counts and "PAD" in edge.op_counts
    runner = EdgeModel(edge.path)
    tflite = tfl.path.read_bytes()
    for i in range(32, 48):
        assert np.array_equal(runner.run(x[i:i + 1])[0], run_litert(tflite, [x[i:i + 1]])[0])
