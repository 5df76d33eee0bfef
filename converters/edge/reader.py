"""Read a `.edge` file for tests and inspection (the C++ runtime has its own, stricter loader).

Every reference is checked (indices in range, buffer sizes that match dtype x shape, known enum
values), so a malformed file is a `ModelFormatError` naming the file, never an IndexError from
inside flatbuffers.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sdk.converters.edge import packing
from sdk.converters.edge import schema_generated as fb
from sdk.converters.edge.schema import (
    ACTIVATION_NAMES,
    DTYPE_NAMES,
    FILE_IDENTIFIER,
    FORMAT_VERSION,
    OP_NAMES,
    OPTIONS_NAMES,
    STORAGE_NAMES,
)
from sdk.converters.ir import QuantParams
from sdk.errors import ModelFormatError


@dataclass
class EdgeTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    storage: str
    #: constant values (sub-byte types unpacked to int8/uint8), None for run-time tensors
    data: np.ndarray | None
    quant: QuantParams | None
    #: bytes the constant occupies in the file
    stored_bytes: int = 0


@dataclass
class EdgeOperator:
    index: int
    op: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any]
    name: str = ""


@dataclass
class EdgeMetadata:
    producer: str = ""
    source_model_sha256: str = ""
    source_model_name: str = ""
    quantization_recipe: str = ""
    layers: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class EdgeFile:
    path: str
    size: int
    version: tuple[int, int]
    description: str
    graph_name: str
    tensors: list[EdgeTensor]
    operators: list[EdgeOperator]
    inputs: list[int]
    outputs: list[int]
    metadata: EdgeMetadata

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.operators:
            counts[op.op] = counts.get(op.op, 0) + 1
        return dict(sorted(counts.items()))

    def weight_bytes(self) -> int:
        return sum(t.stored_bytes for t in self.tensors)


def read_edge(source: str | os.PathLike[str] | bytes) -> EdgeFile:
    """Read and check a .edge file (a path or its bytes)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        buf, path = bytes(source), "<bytes>"
    else:
        path = str(source)
        try:
            buf = Path(path).read_bytes()
        except OSError as exc:
            raise ModelFormatError(f"cannot read: {exc.strerror}", path=path) from exc
    if len(buf) < 8:
        raise ModelFormatError(f"file is {len(buf)} bytes, too short for a .edge model "
                               "(the header alone is 8 bytes)", path=path)
    if buf[4:8] != FILE_IDENTIFIER:
        raise ModelFormatError(f"not a .edge model: file identifier is {buf[4:8]!r}, expected "
                               f"{FILE_IDENTIFIER!r}", path=path, offset=4)
    (root,) = struct.unpack_from("<I", buf, 0)
    if root + 4 > len(buf):
        raise ModelFormatError(f"root table offset {root} is past the end of the {len(buf)}-byte "
                               "file (truncated?)", path=path, offset=0)
    try:
        return _Reader(buf, path).read()
    except ModelFormatError:
        raise
    except (struct.error, IndexError, ValueError, TypeError, UnicodeDecodeError, OverflowError,
            MemoryError, AttributeError) as exc:
        raise ModelFormatError(f"corrupt or truncated flatbuffer ({len(buf)} bytes): "
                               f"{type(exc).__name__}: {exc}", path=path) from exc


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value else ""


class _Reader:
    def __init__(self, buf: bytes, path: str):
        self.buf = buf
        self.path = path
        self.m = fb.Model.GetRootAs(buf, 0)

    def error(self, message: str) -> ModelFormatError:
        return ModelFormatError(message, path=self.path)

    def read(self) -> EdgeFile:
        m = self.m
        version = (m.VersionMajor(), m.VersionMinor())
        if version[0] == 0:
            raise self.error("the file has no format version (version_major is 0)")
        if version[0] != FORMAT_VERSION[0]:
            raise self.error(f"format version {version[0]}.{version[1]} is not supported "
                             f"(this reader knows {FORMAT_VERSION[0]}.x)")
        if m.SubgraphsLength() != 1:
            raise self.error(f"expected exactly one subgraph, found {m.SubgraphsLength()}")
        self.n_buffers = m.BuffersLength()
        sg = m.Subgraphs(0)
        tensors = [self.tensor(i, sg.Tensors(i)) for i in range(sg.TensorsLength())]
        n = len(tensors)

        def check(indices: list[int], what: str, optional: bool = False) -> list[int]:
            for i in indices:
                if not (0 <= i < n or (optional and i == -1)):
                    raise self.error(f"{what} refers to tensor {i}, but the graph has {n}")
            return indices

        operators = []
        for oi in range(sg.OperatorsLength()):
            op = sg.Operators(oi)
            kind = OP_NAMES.get(op.Op())
            if kind is None:
                raise self.error(f"operator {oi} has unknown op type {op.Op()}")
            where = f"operator {oi} ({kind})"
            ins = check([int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else [],
                        f"{where} input", optional=True)
            outs = check([int(v) for v in op.OutputsAsNumpy()] if op.OutputsLength() else [],
                         f"{where} output")
            operators.append(EdgeOperator(oi, kind, ins, outs, self.options(where, op),
                                          _text(op.Name())))
        inputs = check([int(v) for v in sg.InputsAsNumpy()] if sg.InputsLength() else [],
                       "graph input")
        outputs = check([int(v) for v in sg.OutputsAsNumpy()] if sg.OutputsLength() else [],
                        "graph output")
        return EdgeFile(path=self.path, size=len(self.buf), version=version,
                        description=_text(m.Description()), graph_name=_text(sg.Name()),
                        tensors=tensors, operators=operators, inputs=inputs, outputs=outputs,
                        metadata=self.metadata())

    def tensor(self, index: int, t: Any) -> EdgeTensor:
        name = _text(t.Name()) or f"tensor_{index}"
        what = f"tensor {index} ({name!r})"
        dtype = DTYPE_NAMES.get(t.Dtype())
        if dtype is None:
            raise self.error(f"{what} has unknown dtype {t.Dtype()}")
        storage = STORAGE_NAMES.get(t.Storage())
        if storage is None:
            raise self.error(f"{what} has unknown storage {t.Storage()}")
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        if any(d < 0 for d in shape):
            raise self.error(f"{what} has a negative dimension in shape {list(shape)}")
        data = None
        stored = 0
        if t.Buffer():
            if t.Buffer() >= self.n_buffers:
                raise self.error(f"{what} refers to buffer {t.Buffer()}, but the file has "
                                 f"{self.n_buffers}")
            b = self.m.Buffers(t.Buffer())
            raw = b.DataAsNumpy().tobytes() if b.DataLength() else b""
            stored = len(raw)
            try:
                data = packing.unpack(raw, dtype, storage, shape)
            except ValueError as exc:
                raise self.error(f"{what}: {exc}") from None
        quant = None
        q = t.Quantization()
        if q is not None and q.ScaleLength():
            scale = q.ScaleAsNumpy().astype(np.float32)
            zp = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() \
                else np.zeros(1, np.int64)
            try:
                quant = QuantParams(scale=scale, zero_point=zp, axis=q.Axis(),
                                    block_size=q.BlockSize())
            except ValueError as exc:
                raise self.error(f"{what}: {exc}") from None
        return EdgeTensor(index, name, shape, dtype, storage, data, quant, stored)

    def options(self, where: str, op: Any) -> dict[str, Any]:
        kind = OPTIONS_NAMES.get(op.OptionsType())
        if kind is None:
            raise self.error(f"{where} has unknown options type {op.OptionsType()}")
        if kind == "NONE" or op.Options() is None:
            return {}
        obj = fb.OpOptionsCreator(op.OptionsType(), op.Options())
        out: dict[str, Any] = {}
        for key, value in vars(obj).items():
            snake = "".join("_" + c.lower() if c.isupper() else c for c in key)
            if key == "activation":
                value = ACTIVATION_NAMES.get(value, value)
            elif key == "padding" and value is not None:
                value = {"top": value.top, "left": value.left, "bottom": value.bottom,
                         "right": value.right}
            elif isinstance(value, np.ndarray):
                value = [int(v) for v in value]
            out[snake] = value
        return out

    def metadata(self) -> EdgeMetadata:
        md = self.m.Metadata()
        if md is None:
            return EdgeMetadata()
        layers = []
        for i in range(md.LayersLength()):
            info = md.Layers(i)
            layers.append({"operator": info.Operator(), "name": _text(info.Name()),
                           "weight_dtype": DTYPE_NAMES.get(info.WeightDtype(), "?"),
                           "weight_bits": info.WeightBits(),
                           "activation_bits": info.ActivationBits()})
        extra = {}
        for i in range(md.ExtraLength()):
            kv = md.Extra(i)
            extra[_text(kv.Key())] = _text(kv.Value())
        return EdgeMetadata(producer=_text(md.Producer()),
                            source_model_sha256=_text(md.SourceModelSha256()),
                            source_model_name=_text(md.SourceModelName()),
                            quantization_recipe=_text(md.QuantizationRecipe()),
                            layers=layers, extra=extra)
