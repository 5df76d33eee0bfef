"""The .edge writer and reader: round trips of every storage form, metadata, lowering of TFLite-
style ops, clear errors, and generated schema code that matches native/schema/edge.fbs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from edge_helpers import act, single_op_model

from sdk.converters.edge import packing, read_edge, to_edge_bytes, write_edge
from sdk.converters.edge.lowering import resolve_padding
from sdk.converters.ir import DType, Graph, Model, Operator, QuantParams, Tensor
from sdk.errors import ConversionError, ModelFormatError, UnsupportedOpError

ROOT = Path(__file__).resolve().parent.parent


def _fc_model(weight_dtype: DType, weights: np.ndarray) -> Model:
    """x[1, K] -> FULLY_CONNECTED(weights [N, K], per-channel) -> y[1, N]."""
    n, k = weights.shape
    g = Graph(name="fc")
    x = g.add_tensor(act("x", (1, k), 0.1, 3))
    w = g.add_tensor(Tensor("w", (n, k), weight_dtype, data=weights.astype(weight_dtype.numpy),
                            quant=QuantParams.per_channel(np.linspace(0.01, 0.02, n), axis=0)))
    b = g.add_tensor(Tensor("b", (n,), DType.INT32, data=np.arange(n, dtype=np.int32),
                            quant=QuantParams.per_channel(np.full(n, 0.001), axis=0)))
    y = g.add_tensor(act("y", (1, n), 0.2, -1))
    g.operators = [Operator("FULLY_CONNECTED", [x, w, b], [y],
                            {"fused_activation_function": "RELU", "keep_num_dims": False})]
    g.inputs, g.outputs = [x], [y]
    return Model(graphs=[g])


@pytest.mark.parametrize(("dtype", "low", "high", "stored"), [
    (DType.INT8, -128, 128, "INT8"),
    (DType.INT4, -8, 8, "INT4"),
    (DType.INT2, -2, 2, "INT2"),
    (DType.INT2, -1, 2, "TERNARY"),  # INT2 values in {-1, 0, 1} are stored as ternary
])
def test_weights_round_trip(dtype, low, high, stored, tmp_path) -> None:
    rng = np.random.default_rng(0)
    weights = rng.integers(low, high, (7, 37))
    path = tmp_path / "fc.edge"
    size = write_edge(_fc_model(dtype, weights), path, source_sha256="ab" * 32,
                      source_name="fc.tflite", extra={"calibration": "none"})
    assert size == path.stat().st_size
    e = read_edge(path)
    w = e.tensors[e.operators[0].inputs[1]]
    assert w.dtype == stored
    assert np.array_equal(w.data, weights)
    assert w.stored_bytes == packing.packed_size(stored, w.storage, weights.size)
    if stored == "TERNARY":
        assert w.storage == "BASE3" and w.stored_bytes == -(-weights.size // 5)
    assert np.allclose(w.quant.scale, np.linspace(0.01, 0.02, 7))
    md = e.metadata
    assert md.producer.startswith("edgesdk ")
    assert md.source_model_sha256 == "ab" * 32 and md.source_model_name == "fc.tflite"
    assert md.quantization_recipe == stored.lower()
    assert md.layers == [{"operator": 0, "name": "FULLY_CONNECTED:y", "weight_dtype": stored,
                          "weight_bits": {"INT8": 8, "INT4": 4}.get(stored, 2),
                          "activation_bits": 8}]
    assert md.extra == {"calibration": "none"}
    assert e.operators[0].options == {"activation": "RELU", "keep_num_dims": False}


def test_serialize_maps_tensors_and_takes_metadata_from_the_model() -> None:
    from sdk.converters.edge import serialize

    model = _fc_model(DType.INT8, np.ones((2, 3), np.int8))
    model.format_extras.update(source_sha256="cd" * 32, quantization_recipe="int8-mse")
    data, (index,) = serialize(model)
    e = read_edge(data)
    for tensor, i in index.items():
        assert e.tensors[i].name == tensor.name
    assert len(index) == len(e.tensors) == 4
    assert e.metadata.source_model_sha256 == "cd" * 32
    assert e.metadata.quantization_recipe == "int8-mse"


def test_constant_data_is_64_byte_aligned() -> None:
    rng = np.random.default_rng(1)
    data = to_edge_bytes(_fc_model(DType.INT8, rng.integers(-128, 128, (5, 3))))
    e = read_edge(data)
    for t in e.tensors:
        if t.data is not None:
            raw = packing.pack(t.data, t.dtype, t.storage)
            assert data.index(raw) % 64 == 0


def test_base3_packing_round_trip() -> None:
    rng = np.random.default_rng(2)
    for n in (1, 4, 5, 6, 99, 1000):
        v = rng.integers(-1, 2, n).astype(np.int8)
        raw = packing.pack_base3(v)
        assert len(raw) == -(-n // 5)
        assert max(raw) <= 242
        assert np.array_equal(packing.unpack_base3(raw, n), v)
    # the worked example of docs/edge-format.md section 5
    assert packing.pack_base3(np.array([1, -1, 0, 0, 1, -1])) == bytes([200, 120])
    with pytest.raises(ValueError, match="above 242"):
        packing.unpack_base3(b"\xff", 5)


def test_tflite_same_padding_is_resolved_like_tflite() -> None:
    op = Operator("CONV_2D", [], [])
    # in 8, filter 3, stride 2: out 4, total padding 1 -> nothing before, 1 after
    assert resolve_padding(op, "SAME", (8, 8), (3, 3), (2, 2)) == \
        {"top": 0, "left": 0, "bottom": 1, "right": 1}
    assert resolve_padding(op, "SAME", (7, 9), (3, 5), (1, 1)) == \
        {"top": 1, "left": 2, "bottom": 1, "right": 2}
    assert resolve_padding(op, "VALID", (7, 7), (3, 3), (2, 2)) == \
        {"top": 0, "left": 0, "bottom": 0, "right": 0}
    assert resolve_padding(op, "SAME", (10, 10), (3, 3), (1, 1), (2, 2)) == \
        {"top": 2, "left": 2, "bottom": 2, "right": 2}


def test_shape_only_inputs_become_options_and_dead_ops_are_dropped() -> None:
    g = Graph(name="g")
    x = g.add_tensor(act("x", (1, 2, 3, 4), 0.1))
    shape = g.add_tensor(Tensor("shape", (4,), DType.INT32))  # computed at run time by SHAPE
    y = g.add_tensor(act("y", (1, 24), 0.1))
    g.operators = [Operator("SHAPE", [x], [shape], {"out_type": "INT32"}),
                   Operator("RESHAPE", [x, shape], [y])]
    g.inputs, g.outputs = [x], [y]
    e = read_edge(to_edge_bytes(Model(graphs=[g])))
    assert [op.op for op in e.operators] == ["RESHAPE"]
    assert e.operators[0].inputs == [0]
    assert [t.name for t in e.tensors] == ["x", "y"]


def test_unsupported_op_is_named() -> None:
    m = single_op_model("TANH", [act("x", (4,), 0.1)], [act("y", (4,), 1 / 128)])
    with pytest.raises(UnsupportedOpError, match=r"unsupported op 'TANH' \(node 'TANH:y'\)"):
        to_edge_bytes(m)


def test_out_of_range_values_are_refused() -> None:
    m = _fc_model(DType.INT4, np.full((2, 3), 9))
    with pytest.raises(ConversionError, match="outside the INT4 range"):
        to_edge_bytes(m)


def test_reader_rejects_malformed_files(tmp_path) -> None:
    good = to_edge_bytes(_fc_model(DType.INT8, np.ones((2, 3), np.int8)))
    with pytest.raises(ModelFormatError, match="too short"):
        read_edge(good[:5])
    with pytest.raises(ModelFormatError, match="file identifier is b'TFL3'"):
        read_edge(good[:4] + b"TFL3" + good[8:])
    for n in range(8, len(good), 7):
        with pytest.raises(ModelFormatError):
            read_edge(good[:n])
    with pytest.raises(ModelFormatError, match="cannot read"):
        read_edge(tmp_path / "missing.edge")


def test_generated_schema_code_is_current(tmp_path) -> None:
    """The committed flatc output matches what flatc makes of native/schema/edge.fbs now
    (run `make schema` after editing the schema)."""
    flatc = shutil.which("flatc")
    assert flatc, "flatc is missing: `make` installs flatbuffers-compiler"
    schema = ROOT / "native" / "schema" / "edge.fbs"
    subprocess.run([flatc, "--cpp", "--scoped-enums", "-o", str(tmp_path), str(schema)],
                   check=True)
    subprocess.run([flatc, "--python", "--gen-onefile", "--gen-object-api", "-o", str(tmp_path),
                    str(schema)], check=True)
    assert (tmp_path / "edge_generated.h").read_bytes() == \
        (ROOT / "native" / "schema" / "generated" / "edge_generated.h").read_bytes()
    assert (tmp_path / "edge_generated.py").read_bytes() == \
        (ROOT / "converters" / "edge" / "schema_generated.py").read_bytes()
