"""The .edge writer and reader: round trips of every storage form, metadata, lowering of TFLite-
style ops, clear errors, and generated schema code that matches native/schema/edge.fbs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from edge_helpers import act, single_op_model

from sdk.base.errors import ConversionError, ModelFormatError, UnsupportedOpError
from sdk.base.limits import LoadBudget
from sdk.converters.edge import packing, read_edge, to_edge_bytes, write_edge
from sdk.converters.edge import schema_generated as fb
from sdk.converters.edge.lowering import resolve_padding
from sdk.converters.ir import DType, Graph, Model, Operator, QuantParams, Tensor

from conftest import refused_within

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
    with pytest.raises(packing.Base3Error, match="byte 1 of the buffer is 243") as info:
        packing.unpack_base3(b"\x00\xf3", 10)
    assert info.value.index == 1


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


# ---------------------------------------------------------------- hostile files (issue 13)
def test_base3_byte_above_242_names_file_tensor_and_offset(tmp_path) -> None:
    data = bytearray(to_edge_bytes(_fc_model(DType.INT2, np.tile([-1, 0, 1], (7, 13)))))
    w = next(t for t in read_edge(bytes(data)).tensors if t.storage == "BASE3")
    start = bytes(data).index(packing.pack(w.data, w.dtype, w.storage))
    data[start + 3] = 250
    path = tmp_path / "bad.edge"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError) as info:
        read_edge(path)
    err = info.value
    assert str(err).startswith(f"{path} at byte offset {start + 3}: tensor 1 ('w'): BASE3 "
                               "byte 3 of the buffer is 250, above 242")
    assert (err.path, err.offset) == (str(path), start + 3)
    # the same bytes declared INT8 in BASE3 storage: five values a byte is for ternary only
    tensor_table = fb.Model.GetRootAs(bytes(data), 0).Subgraphs(0).Tensors(1)
    dtype_at = tensor_table._tab.Pos + tensor_table._tab.Offset(8)
    assert data[dtype_at] == fb.DType.TERNARY
    data[dtype_at] = fb.DType.INT8
    with pytest.raises(ModelFormatError, match=r"tensor 1 \('w'\): BASE3 storage is for "
                       "TERNARY tensors, not INT8"):
        read_edge(bytes(data))


def _edge_file(tensor_offsets_of, n_buffers: int = 1, buffer_data: bytes = b"",
               size: int = 1024) -> bytes:
    """A .edge file built by hand: `tensor_offsets_of(builder)` returns the tensors vector's
    entries (possibly repeated); buffer 1 (if n_buffers > 1) holds `buffer_data`."""
    b = flatbuffers.Builder(size)
    buffers = []
    data = b.CreateNumpyVector(np.frombuffer(buffer_data, np.uint8)) if buffer_data else None
    for i in range(n_buffers):
        fb.BufferStart(b)
        if i == 1 and data is not None:
            fb.BufferAddData(b, data)
        buffers.append(fb.BufferEnd(b))
    entries = tensor_offsets_of(b)
    b.StartVector(4, len(entries), 4)
    for off in reversed(entries):
        b.PrependUOffsetTRelative(off)
    tensors = b.EndVector()
    fb.SubGraphStart(b)
    fb.SubGraphAddTensors(b, tensors)
    sg = fb.SubGraphEnd(b)
    b.StartVector(4, 1, 4)
    b.PrependUOffsetTRelative(sg)
    sgs = b.EndVector()
    b.StartVector(4, len(buffers), 4)
    for off in reversed(buffers):
        b.PrependUOffsetTRelative(off)
    bufs = b.EndVector()
    fb.ModelStart(b)
    fb.ModelAddVersionMajor(b, 1)
    fb.ModelAddSubgraphs(b, sgs)
    fb.ModelAddBuffers(b, bufs)
    b.Finish(fb.ModelEnd(b), file_identifier=b"EDG1")
    return bytes(b.Output())


def _tensor(b: flatbuffers.Builder, name: str | int, shape: list[int], buffer: int = 0) -> int:
    name_off = b.CreateString(name) if isinstance(name, str) else name
    b.StartVector(4, len(shape), 4)
    for d in reversed(shape):
        b.PrependInt32(d)
    shape_off = b.EndVector()
    fb.TensorStart(b)
    fb.TensorAddName(b, name_off)
    fb.TensorAddShape(b, shape_off)
    fb.TensorAddDtype(b, fb.DType.INT8)
    fb.TensorAddBuffer(b, buffer)
    return fb.TensorEnd(b)


def _refused_quickly(data: bytes, mib: float = 16, calls: int = 20_000) -> ModelFormatError:
    """Refused with bounded work: the shared-table and shared-string files below are refused
    after ~400 and ~1,000 Python calls; reading 2,000 real tensors takes ~340,000."""
    return refused_within(lambda: read_edge(data), mib=mib, calls=calls)


def test_two_int8_inputs_of_2_gib_exceed_the_budget() -> None:
    """Two int8[2^31-1] inputs (the 196-byte file of issue 13) declare 4 GiB: refused."""
    g = Graph(name="g")
    n = 2**31 - 1
    a, b = g.add_tensor(act("a", (n,), 0.1)), g.add_tensor(act("b", (n,), 0.1))
    y = g.add_tensor(act("y", (n,), 0.1))
    g.operators = [Operator("ADD", [a, b], [y], {"fused_activation_function": "NONE"})]
    g.inputs, g.outputs = [a, b], [y]
    data = to_edge_bytes(Model(graphs=[g]))
    with pytest.raises(ModelFormatError, match=r"<bytes>: tensor 1 \('b'\): INT8 x "
                       r"\[2147483647\] declares 2,147,483,647 bytes \(4,294,967,294 with the "
                       r"tensors before it\), over the load budget of 2,147,483,648 bytes"):
        read_edge(data)
    with pytest.raises(ModelFormatError, match=r"tensor 1 \('w'\).* over the load budget of 8 "):
        read_edge(to_edge_bytes(_fc_model(DType.INT8, np.ones((2, 3), np.int8))),
                  budget=LoadBudget(memory_bytes=8))


def test_shared_tensor_tables_are_refused_fast() -> None:
    data = _edge_file(lambda b: [_tensor(b, "t", [1])] * 2000, size=16384)
    assert len(data) < 9000
    err = _refused_quickly(data)
    assert "tensor 1 is the same table as tensor 0" in str(err) and err.offset


def test_shared_strings_cannot_multiply_the_file() -> None:
    """2,000 distinct tensors sharing one 64 KiB name would unpack to 128 MiB of names."""
    def tensors(b: flatbuffers.Builder) -> list[int]:
        name = b.CreateString("n" * (64 << 10))
        return [_tensor(b, name, [1]) for _ in range(2000)]

    err = _refused_quickly(_edge_file(tensors, size=1 << 17))
    assert "reuses its tables or vectors" in str(err)


def test_tensors_sharing_one_buffer_are_bounded_by_the_file_size() -> None:
    """80 tensors on one 1 MiB buffer decode to 80 MiB: over max(16 x file, 64 MiB)."""
    def tensors(b: flatbuffers.Builder) -> list[int]:
        return [_tensor(b, f"w{i}", [1 << 20], buffer=1) for i in range(80)]

    data = _edge_file(tensors, n_buffers=2, buffer_data=bytes(1 << 20), size=(1 << 20) + 8192)
    err = _refused_quickly(data, mib=100, calls=100_000)  # refused at tensor 64: ~15,000
    assert "tensor 64 ('w64')" in str(err) and "over the limit of 67,108,864" in str(err)
    ok = _edge_file(lambda b: [_tensor(b, f"w{i}", [1024], buffer=1) for i in range(3)],
                    n_buffers=2, buffer_data=bytes(1024))
    assert [t.data.size for t in read_edge(ok).tensors] == [1024] * 3


def test_every_corruption_is_a_model_format_error_naming_the_file(tmp_path) -> None:
    """Byte flips and truncations of a valid model: read, or ModelFormatError with the path."""
    good = to_edge_bytes(_fc_model(DType.INT2, np.tile([-1, 0, 1], (7, 13))))
    rng = np.random.default_rng(13)
    path = tmp_path / "m.edge"
    for trial in range(400):
        data = bytearray(good)
        for pos in rng.integers(0, len(data), size=1 + trial % 4):
            data[pos] = int(rng.integers(0, 256))
        path.write_bytes(bytes(data[:len(data) - int(rng.integers(0, 3)) * (trial % 5)]))
        try:
            read_edge(path)
        except ModelFormatError as exc:
            assert str(exc).startswith(str(path)), exc
