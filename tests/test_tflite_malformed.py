"""Malformed .tflite input: a clear ModelFormatError naming the file, never a deep traceback."""

from __future__ import annotations

import flatbuffers
import numpy as np
import pytest

from sdk.base.errors import ModelFormatError
from sdk.base.limits import LoadBudget
from sdk.converters.tflite import read_tflite
from sdk.converters.tflite.schema import schema

from conftest import refused_within, requires_tf


@pytest.fixture(scope="module")
def good(digits_float_tflite) -> bytes:
    return digits_float_tflite.read_bytes()


@requires_tf
def test_truncated_file(tmp_path, good) -> None:
    for cut in (3, 16, len(good) // 3, len(good) - 100):
        path = tmp_path / f"cut{cut}.tflite"
        path.write_bytes(good[:cut])
        with pytest.raises(ModelFormatError) as info:
            read_tflite(path)
        assert str(path) in str(info.value)


def test_not_a_flatbuffer(tmp_path) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(b"PK\x03\x04 this is a zip file, not a model" * 4)
    with pytest.raises(ModelFormatError, match="file identifier"):
        read_tflite(path)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ModelFormatError, match="cannot read"):
        read_tflite(tmp_path / "nope.tflite")


@requires_tf
def _payload_mask(data: bytes) -> np.ndarray:
    """True for the bytes of the tensors' constant data, False for the rest of the file."""
    model = schema.Model.GetRootAs(data, 0)
    mask = np.zeros(len(data), bool)
    used = {model.Subgraphs(g).Tensors(i).Buffer() for g in range(model.SubgraphsLength())
            for i in range(model.Subgraphs(g).TensorsLength())}
    for i in sorted(used):
        table = model.Buffers(i)._tab
        field = table.Offset(4)  # Buffer.data
        if field:
            start = table.Vector(field)
            mask[start:start + table.VectorLen(field)] = True
    return mask


def _constants(model) -> list[bytes | None]:
    return [None if t.data is None else np.asarray(t.data).tobytes()
            for g in model.graphs for t in g.tensors]


def _flipped(good: bytes, positions: np.ndarray, rng: np.random.Generator) -> bytes:
    data = bytearray(good)
    for pos in positions:
        data[pos] ^= int(rng.integers(1, 256))
    return bytes(data)


def test_flipped_bytes_never_crash(good) -> None:
    """Random corruption either still reads or is detected as a ModelFormatError, nothing else;
    a flip in constant data reads back as that changed value (there is no checksum to catch it);
    and the reader's checks catch a good share of flips in the file's structure."""
    rng = np.random.default_rng(7)
    payload = _payload_mask(good)
    structure = np.flatnonzero(~payload[8:]) + 8  # after the header
    assert payload.sum() > len(good) // 2 and len(structure) > 1000
    detected = 0
    trials = 120
    for _ in range(trials):
        data = _flipped(good, rng.choice(structure, size=1), rng)
        try:
            read_tflite(data)
        except ModelFormatError:
            detected += 1
    # a seeded run of single-byte flips: about 40% are caught (50 of 120 on the digits CNN); the
    # rest land in names, padding, unused fields or values that are still valid
    assert detected > trials // 4, f"{detected} of {trials} structural flips detected"

    reference = _constants(read_tflite(good))
    for _ in range(20):
        got = _constants(read_tflite(_flipped(good, rng.choice(np.flatnonzero(payload), 1), rng)))
        assert [x is None for x in got] == [x is None for x in reference]
        changed = [i for i, (a, b) in enumerate(zip(reference, got, strict=True)) if a != b]
        assert changed, "a flipped constant byte must read back changed"


def _set_u32(data: bytes, pos: int, value: int) -> bytes:
    out = bytearray(data)
    out[pos:pos + 4] = int(value).to_bytes(4, "little")
    return bytes(out)


def test_targeted_structural_corruption_is_detected(good) -> None:
    """Corruptions a reader must catch, each placed on purpose: the error names what broke."""
    model = schema.Model.GetRootAs(good, 0)
    sub = model.Subgraphs(0)
    weighted = next(i for i in range(sub.TensorsLength())
                    if model.Buffers(sub.Tensors(i).Buffer()).DataLength() > 0)
    tensor = sub.Tensors(weighted)._tab
    buffer_field = tensor.Pos + tensor.Offset(8)  # Tensor.buffer
    shape_field = tensor.Offset(4)  # Tensor.shape
    shape_pos = tensor.Vector(shape_field)
    op = sub.Operators(0)._tab
    inputs_pos = op.Vector(op.Offset(6))  # Operator.inputs[0]
    cases = {
        "root offset past the end": (_set_u32(good, 0, len(good) + 64),
                                     "root table offset .* past the end"),
        "buffer index past the buffers": (
            _set_u32(good, buffer_field, model.BuffersLength() + 5),
            rf"tensor {weighted} .* refers to buffer {model.BuffersLength() + 5}, but"),
        "shape disagrees with the constant's bytes": (
            _set_u32(good, shape_pos, sub.Tensors(weighted).Shape(0) + 3),
            rf"tensor {weighted} .*buffer holds \d+ bytes, but"),
        "operator input past the tensors": (
            _set_u32(good, inputs_pos, sub.TensorsLength() + 7),
            rf"operator 0 .* refers to tensor {sub.TensorsLength() + 7}, but"),
    }
    for what, (data, words) in cases.items():
        with pytest.raises(ModelFormatError, match=words):
            read_tflite(data)
        assert data != good, what


# ---------------------------------------------------------------- resource exhaustion
def _vector(b: flatbuffers.Builder, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _int_vector(b: flatbuffers.Builder, values: list[int]) -> int:
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependInt32(v)
    return b.EndVector()


def _tensor(b: flatbuffers.Builder, name: int, shape: list[int], buffer: int = 0,
            dtype: int = 9) -> int:
    shape_vec = _int_vector(b, shape)
    schema.TensorStart(b)
    schema.TensorAddShape(b, shape_vec)
    schema.TensorAddType(b, dtype)
    schema.TensorAddBuffer(b, buffer)
    schema.TensorAddName(b, name)
    return schema.TensorEnd(b)


def _model(b: flatbuffers.Builder, subgraphs: list[int], buffers: list[int] | None = None) -> bytes:
    sgs = _vector(b, subgraphs)
    bufs = _vector(b, buffers) if buffers else None
    schema.ModelStart(b)
    schema.ModelAddVersion(b, 3)
    schema.ModelAddSubgraphs(b, sgs)
    if bufs is not None:
        schema.ModelAddBuffers(b, bufs)
    b.Finish(schema.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _subgraph(b: flatbuffers.Builder, tensors: list[int]) -> int:
    vec = _vector(b, tensors)
    schema.SubGraphStart(b)
    schema.SubGraphAddTensors(b, vec)
    return schema.SubGraphEnd(b)


def shared_tables_tflite(n: int = 1000) -> bytes:
    """n subgraph entries that all point at one subgraph, whose n tensor entries all point at
    one tensor: n*n tensors to unpack from ~8 KB (the attack of issue 13, hole 5)."""
    b = flatbuffers.Builder(1024)
    tensor = _tensor(b, b.CreateString("t"), [1])
    sg = _subgraph(b, [tensor] * n)
    return _model(b, [sg] * n)


def test_shared_subgraph_and_tensor_tables_are_refused_fast() -> None:
    data = shared_tables_tflite()
    assert len(data) < 9000  # 8 KB describing a million tensors
    # refused at tensor 1: ~500 calls (reading 2,000 tensors takes ~530,000)
    err = refused_within(lambda: read_tflite(data), mib=16, calls=20_000)
    assert "<bytes>" in str(err)
    assert "subgraph 0 tensor 1 is the same table as subgraph 0 tensor 0" in str(err)
    assert err.offset is not None


def test_shared_strings_cannot_multiply_the_file() -> None:
    """Distinct tensor tables that share one 64 KiB name: unpacked, 2,000 copies (128 MiB)."""
    b = flatbuffers.Builder(1 << 17)
    name = b.CreateString("n" * (64 << 10))
    tensors = [_tensor(b, name, [1]) for _ in range(2000)]
    data = _model(b, [_subgraph(b, tensors)])
    err = refused_within(lambda: read_tflite(data), mib=16, calls=20_000)  # ~1,400
    assert "subgraph 0 tensor" in str(err)
    assert "reuses its tables or vectors" in str(err)


def _shared_buffer_tflite(n_tensors: int, nbytes: int) -> bytes:
    b = flatbuffers.Builder(nbytes + 4096)
    data = b.CreateNumpyVector(np.zeros(nbytes, np.uint8))
    schema.BufferStart(b)
    schema.BufferAddData(b, data)
    full = schema.BufferEnd(b)
    schema.BufferStart(b)
    empty = schema.BufferEnd(b)
    tensors = [_tensor(b, b.CreateString(f"w{i}"), [nbytes], buffer=1) for i in range(n_tensors)]
    return _model(b, [_subgraph(b, tensors)], [empty, full])


def test_tensors_sharing_one_buffer_are_bounded_by_the_file_size() -> None:
    """80 tensors on one 1 MiB buffer would decode to 80 MiB: over max(16 x file, 64 MiB)."""
    data = _shared_buffer_tflite(80, 1 << 20)
    err = refused_within(lambda: read_tflite(data), mib=100, calls=100_000)  # ~23,000
    assert "subgraph 0 tensor 64 ('w64')" in str(err)
    assert "over the limit of 67,108,864" in str(err)
    # a few tensors sharing a buffer (as TFLite's converter deduplicates them) still read
    model = read_tflite(_shared_buffer_tflite(3, 1 << 10))
    assert [t.data.size for t in model.main.tensors] == [1024] * 3


def test_declared_tensor_size_is_checked_against_the_budget() -> None:
    b = flatbuffers.Builder(1024)
    big = _tensor(b, b.CreateString("huge"), [2**31 - 1, 2**31 - 1, 4])  # 2^64 overflows int64
    data = _model(b, [_subgraph(b, [big])])
    with pytest.raises(ModelFormatError, match=r"tensor 0 \('huge'\): INT8 x \[2147483647, "
                       r"2147483647, 4\] declares 18,446,744,056,529,682,436 bytes, over the "
                       r"load budget of 2,147,483,648"):
        read_tflite(data)
    b = flatbuffers.Builder(1024)
    small = _tensor(b, b.CreateString("act"), [1, 1024, 1024, 2])
    data = _model(b, [_subgraph(b, [small])])
    assert read_tflite(data).main.tensors[0].shape == (1, 1024, 1024, 2)
    with pytest.raises(ModelFormatError, match="over the load budget of 1,048,576"):
        read_tflite(data, budget=LoadBudget(memory_bytes=1 << 20))


def test_vector_lengths_must_fit_in_the_file() -> None:
    b = flatbuffers.Builder(1024)
    data = bytearray(_model(b, [_subgraph(b, [_tensor(b, b.CreateString(f"t{i}"), [1])])
                                for i in range(4)]))
    assert len(read_tflite(bytes(data)).graphs) == 4  # valid before the edit
    root = schema.Model.GetRootAs(bytes(data), 0)
    length_at = root._tab.Vector(root._tab.Offset(8)) - 4  # the subgraphs vector's length
    data[length_at:length_at + 4] = (1 << 30).to_bytes(4, "little")
    with pytest.raises(ModelFormatError, match="subgraphs: 1,073,741,824 entries declared, but "
                       "only") as info:
        read_tflite(bytes(data))
    assert info.value.offset == length_at + 4
