"""Issue 15, the floor of mixed precision: where a sub-byte .tflite's bytes go
(`sdk.converters.quantize.file_bytes.byte_breakdown`), and the INT32 bias scales a sub-byte
convolution does not need (12 bytes an output channel), written no more."""

from __future__ import annotations

import numpy as np
import pytest

import sdk
from sdk.converters.ir import QuantParams
from sdk.converters.quantize.file_bytes import QPARAM_BYTES, byte_breakdown
from sdk.converters.tflite import read_tflite, to_tflite_bytes
from sdk.run.runner import LiteRTRunner

from conftest import requires_tf

pytestmark = requires_tf
CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D", "EDGE_CONV_INT2", "EDGE_DWCONV_INT2")


@pytest.fixture(scope="module")
def exports(digits_float_tflite, digits_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("file_bytes")
    return {scheme: sdk.export(digits_float_tflite, scheme, calibration=digits_data.x_train[:256],
                               output=out / f"{scheme}.tflite", per_layer=False, report=False)
            for scheme in ("int8", "int4", "int2")}


def _biased(path) -> list[tuple[str, str, object]]:
    """(op, weight type, bias tensor) of every weighted op with a bias, in order."""
    model = read_tflite(path)
    out = []
    for op in model.main.operators:
        kind = op.custom_code or op.type
        if (kind in CONVS or kind == "FULLY_CONNECTED") and len(op.inputs) > 2 \
                and op.inputs[2] is not None:
            out.append((kind, op.inputs[1].dtype.name, op.inputs[2]))
    return out


def test_sub_byte_conv_biases_are_written_without_scales(exports) -> None:
    seen = set()
    for scheme, result in exports.items():
        for kind, wtype, bias in _biased(result.path):
            sub_byte_conv = kind in CONVS and wtype in ("INT4", "INT2")
            seen.add((scheme, sub_byte_conv))
            scales = 0 if bias.quant is None else bias.quant.scale.size
            if sub_byte_conv:  # scale and zero point not in the file: 12 bytes a channel saved
                assert scales == 0, (scheme, kind, bias.name)
            else:  # INT8 layers (XNNPACK needs them) and FULLY_CONNECTED keep theirs
                assert scales >= 1, (scheme, kind, bias.name)
    assert ("int4", True) in seen and ("int2", True) in seen and ("int4", False) in seen


def test_outputs_are_those_of_the_file_with_bias_scales(exports, digits_data) -> None:
    """Writing the scales back (input scale x weight scale per channel) changes no output bit, in
    LiteRT with XNNPACK, with its builtin kernels, and (2-bit custom ops) with the delegate."""
    from sdk.run.delegate import load_delegate

    x = digits_data.x_test[:16]
    for scheme in ("int4", "int2"):
        result = exports[scheme]
        model = read_tflite(result.path)
        restored = 0
        for op in model.main.operators:
            if (op.custom_code or op.type) in CONVS and len(op.inputs) > 2 \
                    and op.inputs[2] is not None and op.inputs[2].quant is None:
                scale = np.float32(op.inputs[0].quant.scale[0]) * op.inputs[1].quant.scale
                op.inputs[2].quant = QuantParams.per_channel(scale.astype(np.float32), 0)
                restored += 1
        assert restored
        with_scales = to_tflite_bytes(model)
        assert len(with_scales) > result.size_bytes
        for kw in ({}, {"reference": True}):
            delegates = [load_delegate()] if result.custom_ops else None
            a = LiteRTRunner(result.path.read_bytes(), delegates=delegates, **kw)
            b = LiteRTRunner(with_scales, delegates=delegates, **kw)
            for i in range(len(x)):
                np.testing.assert_array_equal(a.invoke([x[i:i + 1]])[0],
                                              b.invoke([x[i:i + 1]])[0])


def test_byte_breakdown_accounts_for_every_byte(exports, digits_float_tflite) -> None:
    model = read_tflite(digits_float_tflite)
    weights = sum(int(np.prod(op.inputs[1].shape)) for op in model.main.operators
                  if op.type in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"))
    parts = {}
    for scheme, result in exports.items():
        b = byte_breakdown(result.path)
        parts[scheme] = b
        assert b.total == result.size_bytes == sum(b.parts.values())
        assert b.weights == weights
        # each stored table once; a vector two tables share (zero points) in bytes once
        assert 0 < b.parts["qparams weights"] <= QPARAM_BYTES * b.qparam_entries["weights"]
        assert b.parts["tables and alignment"] >= 0
        assert b.overhead() == b.total - sum(v for k, v in b.parts.items()
                                             if k.startswith("weights "))
    assert "weights INT2" in parts["int2"].parts and "weights INT4" in parts["int4"].parts
    # INT8 files keep every bias scale; the 2-bit one only the first / last layer's
    assert parts["int8"].qparam_entries["bias"] > parts["int2"].qparam_entries.get("bias", 0)


def test_edge_per_channel_zero_points_are_not_written(exports) -> None:
    """.edge: a per-channel quantisation whose zero points are all 0 has none in the file (the
    schema: absent means 0); the file is 8 bytes a channel smaller and runs as LiteRT does."""
    from edge_helpers import run_litert

    from sdk.converters.edge import read_edge, to_edge_bytes
    from sdk.converters.edge import schema_generated as fb
    from sdk.run import EdgeModel

    model = read_tflite(exports["int4"].path)  # per-channel INT4 / INT8 weights
    data = to_edge_bytes(model)
    root = fb.Model.GetRootAs(data, 0)
    per_channel = zps = 0
    for g in range(root.SubgraphsLength()):
        sg = root.Subgraphs(g)
        for i in range(sg.TensorsLength()):
            q = sg.Tensors(i).Quantization()
            if q is not None and q.ScaleLength() > 1:
                per_channel += q.ScaleLength()
                zps += q.ZeroPointLength()
    assert per_channel > 0 and zps == 0
    back = read_edge(data)
    assert all(not t.quant.zero_point.any() for t in back.tensors if t.quant is not None
               and t.quant.scale.size > 1)
    x = [np.random.default_rng(0).standard_normal((1, 8, 8, 1)).astype(np.float32)]
    np.testing.assert_array_equal(EdgeModel(data).run(x)[0],
                                  run_litert(to_tflite_bytes(model), x)[0])
