"""What `sdk.export` records about where a model came from and how it was quantised (the .edge
metadata: producer, source model hash and name, quantisation recipe, per-layer bit widths), and
ONNX `io_layout` passed through `sdk.export` and `edgesdk export`."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import sdk
from sdk.base.errors import ConversionError
from sdk.base.fileio import sha256_file
from sdk.converters.edge import read_edge
from sdk.converters.quantize.method_default import default_weight_method, float_weights
from sdk.converters.tflite import read_tflite
from sdk.exporter import quantization_recipe

from conftest import requires_onnx, requires_tf

BITS = {"INT8": 8, "INT4": 4, "INT2": 2, "TERNARY": 2}


@requires_tf
@pytest.mark.parametrize("scheme", ["int8", "int4", "ternary"])
def test_edge_metadata_names_source_recipe_and_layer_bits(digits_export_pairs,
                                                          digits_float_tflite, scheme) -> None:
    edge = digits_export_pairs[scheme][1]
    md = read_edge(edge.path).metadata
    assert md.producer == f"edgesdk {sdk.__version__}"
    assert md.source_model_sha256 == sha256_file(digits_float_tflite)
    assert md.source_model_name == digits_float_tflite.name
    # the recipe names the weight method that ran: a sub-byte scheme with real calibration data
    # defaults to auto (method_default; the digits CNN is under its weight bound)
    ran = default_weight_method(scheme, synthetic=False,
                                weights=float_weights(read_tflite(digits_float_tflite))).method
    assert ran == (None if scheme == "int8" else "auto")
    assert md.quantization_recipe == quantization_recipe(scheme, weight_method=ran)
    assert md.quantization_recipe.startswith(f"{scheme}; activations=int8; method=mse")
    # one entry per weighted layer, with the bit width the export report gives that layer
    assert len(md.layers) == 6
    for layer in md.layers:
        assert layer["weight_bits"] == BITS[layer["weight_dtype"]]
        assert layer["activation_bits"] == 8
    wanted = {"int8": 0, "int4": 4, "ternary": 4}[scheme]
    assert sum(layer["weight_bits"] < 8 for layer in md.layers) == wanted
    assert sum(p.startswith(scheme) for p in edge.precision.values()) == (
        wanted if scheme != "int8" else len(edge.precision))


def test_recipe_lists_every_setting() -> None:
    recipe = quantization_recipe("ternary", activations="float32", method="minmax",
                                 bias_correction="none", weight_method="mse",
                                 scheme_options={"ternary_scale": "median", "block_size": 32})
    assert recipe == ("ternary; activations=float32; method=minmax; bias_correction=none; "
                      "weight_method=mse; block_size=32; ternary_scale=median")


@requires_onnx
def test_onnx_io_layout_through_export_and_cli(tmp_path) -> None:
    from sdk.cli import main

    from test_onnx_models import small_cnn

    model = small_cnn()
    x = np.random.default_rng(0).uniform(-1, 1, (24, 3, 16, 16)).astype(np.float32)
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    kwargs = {"per_layer": False, "report": False}
    r = sdk.export(model, "int8", calibration=nhwc, io_layout="nhwc",
                   output=tmp_path / "cnn.edge", **kwargs)
    assert r.inputs[0].shape == (1, 16, 16, 3) and "TRANSPOSE" not in r.op_counts
    md = read_edge(r.path).metadata
    assert md.source_model_sha256 == hashlib.sha256(model.SerializeToString()).hexdigest()
    default = sdk.export(model, "int8", calibration=x, output=tmp_path / "cnn.tflite", **kwargs)
    assert default.inputs[0].shape == (1, 3, 16, 16) and default.op_counts["TRANSPOSE"] == 1
    with pytest.raises(ConversionError, match="io_layout must be one of nchw, nhwc"):
        sdk.export(model, "int8", calibration=x, io_layout="chw", **kwargs)
    with pytest.raises(ConversionError, match="io_layout applies to ONNX models"):
        sdk.export(default.path, "int8", calibration=x, io_layout="nhwc", **kwargs)

    onnx_file = tmp_path / "net.onnx"
    onnx_file.write_bytes(model.SerializeToString())
    np.save(tmp_path / "cal.npy", nhwc)
    out = tmp_path / "net_cli.edge"
    assert main(["export", str(onnx_file), "-c", str(tmp_path / "cal.npy"), "--io-layout",
                 "nhwc", "-o", str(out), "--no-per-layer", "-q"]) == 0
    edge = read_edge(out)
    assert edge.metadata.source_model_name == "net.onnx"
    assert edge.metadata.source_model_sha256 == sha256_file(onnx_file)
    assert [t.shape for t in edge.tensors if t.name == "x"] == [(1, 16, 16, 3)]
