"""Read a `.edge` file for tests and inspection (the C++ runtime has its own, stricter loader).

Every reference is checked (indices in range, buffer sizes that match dtype x shape, known enum
values, BASE3 bytes at most 242), so a malformed file is a `ModelFormatError` naming the file
(and the byte offset where known), never an IndexError from inside flatbuffers.

Resources are bounded as in read_tflite (`sdk.converters.tflite.decode`, `sdk.base.limits`): tables
referenced twice, vectors longer than the file and unpacked content over 2 items per file byte
are refused; the tensors may declare at most the memory budget in bytes all together (what a
runtime would allocate for them without sharing memory); the constant data decoded
for all tensors together (each tensor that shares a buffer takes its own copy, sub-byte values
one byte each) may take at most `budget.fold_bytes` (16 x the file size, at least 64 MiB, at
most the memory budget).
"""

from __future__ import annotations

import math
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sdk.base.errors import ModelFormatError
from sdk.base.limits import ENV_VAR, LoadBudget, default_budget
from sdk.converters.edge import packing
from sdk.converters.edge import schema_generated as fb
from sdk.converters.edge.schema import (
    ACTIVATION_NAMES,
    DTYPE_BITS,
    DTYPE_NAMES,
    FILE_IDENTIFIER,
    FORMAT_VERSION,
    OP_NAMES,
    OPTIONS_NAMES,
    STORAGE_NAMES,
)
from sdk.converters.ir import QuantParams
from sdk.converters.tflite.decode import DecodedData, ExpansionGuard

_OFFSET_RE = re.compile(r"at offset (-?\d+)")


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


def read_edge(source: str | os.PathLike[str] | bytes, *,
              budget: LoadBudget | None = None) -> EdgeFile:
    """Read and check a .edge file (a path or its bytes), within `budget` (default:
    `sdk.base.limits.default_budget()`)."""
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
    budget = (budget or default_budget()).for_file(len(buf))
    try:
        return _Reader(buf, path, budget).read()
    except ModelFormatError:
        raise
    except (struct.error, IndexError, ValueError, TypeError, UnicodeDecodeError, OverflowError,
            MemoryError, AttributeError, KeyError) as exc:
        match = _OFFSET_RE.search(str(exc))
        raise ModelFormatError(f"corrupt or truncated flatbuffer ({len(buf)} bytes): "
                               f"{type(exc).__name__}: {exc}", path=path,
                               offset=int(match.group(1)) if match else None) from exc


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value else ""


class _Reader(ExpansionGuard):
    def __init__(self, buf: bytes, path: str, budget: LoadBudget):
        super().__init__(buf, path)
        self.budget = budget
        self.m = fb.Model.GetRootAs(buf, 0)
        self.raw_buffers: dict[int, tuple[bytes, int]] = {}
        #: bytes of constant data decoded so far, and the most allowed (see the module doc)
        self.constants = DecodedData(len(buf), budget, self.error)
        #: bytes all tensors declared so far (type x shape)
        self.declared = 0

    def ints(self, what: str, values: Any) -> list[int]:
        """A vector of ints as a list, counted against the expansion limit."""
        self.count(what, values)
        return [int(v) for v in values]

    def buffer(self, index: int, what: str) -> tuple[bytes, int]:
        """A buffer's bytes and their offset in the file (read once per buffer)."""
        if index not in self.raw_buffers:
            b = self.table(f"buffer {index}", self.m.Buffers(index))
            n = b.DataLength()
            if not n:
                self.raw_buffers[index] = (b"", 0)
            else:
                self.length(f"buffer {index}", n, 4, b, item_bytes=1)
                start = b._tab.Vector(b._tab.Offset(4))
                self.raw_buffers[index] = (self.buf[start:start + n], start)
        return self.raw_buffers[index]

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
        self.n_buffers = self.length("buffers", m.BuffersLength(), 12, m)
        sg = self.table("subgraph 0", m.Subgraphs(0))
        tensors = [self.tensor(i, self.table(f"tensor {i}", sg.Tensors(i)))
                   for i in range(self.length("tensors", sg.TensorsLength(), 6, sg))]
        n = len(tensors)

        def check(indices: list[int], what: str, optional: bool = False) -> list[int]:
            for i in indices:
                if not (0 <= i < n or (optional and i == -1)):
                    raise self.error(f"{what} refers to tensor {i}, but the graph has {n}")
            return indices

        operators = []
        for oi in range(self.length("operators", sg.OperatorsLength(), 8, sg)):
            op = self.table(f"operator {oi}", sg.Operators(oi))
            kind = OP_NAMES.get(op.Op())
            if kind is None:
                raise self.error(f"operator {oi} has unknown op type {op.Op()}")
            where = f"operator {oi} ({kind})"
            ins = check(self.ints(f"{where} inputs", op.InputsAsNumpy())
                        if op.InputsLength() else [], f"{where} input", optional=True)
            outs = check(self.ints(f"{where} outputs", op.OutputsAsNumpy())
                         if op.OutputsLength() else [], f"{where} output")
            operators.append(EdgeOperator(oi, kind, ins, outs, self.options(where, op),
                                          self.text(f"{where} name", op.Name())))
        inputs = check(self.ints("graph inputs", sg.InputsAsNumpy())
                       if sg.InputsLength() else [], "graph input")
        outputs = check(self.ints("graph outputs", sg.OutputsAsNumpy())
                        if sg.OutputsLength() else [], "graph output")
        return EdgeFile(path=self.path, size=len(self.buf), version=version,
                        description=self.text("description", m.Description()),
                        graph_name=self.text("graph name", sg.Name()),
                        tensors=tensors, operators=operators, inputs=inputs, outputs=outputs,
                        metadata=self.metadata())

    def text(self, what: str, value: bytes | None) -> str:
        self.count(what, value)
        return _text(value)

    def tensor(self, index: int, t: Any) -> EdgeTensor:
        name = self.text(f"tensor {index} name", t.Name()) or f"tensor_{index}"
        what = f"tensor {index} ({name!r})"
        dtype = DTYPE_NAMES.get(t.Dtype())
        if dtype is None:
            raise self.error(f"{what} has unknown dtype {t.Dtype()}")
        storage = STORAGE_NAMES.get(t.Storage())
        if storage is None:
            raise self.error(f"{what} has unknown storage {t.Storage()}")
        if storage == "BASE3" and dtype != "TERNARY":
            raise self.error(f"{what}: BASE3 storage is for TERNARY tensors, not {dtype}")
        shape = tuple(self.ints(f"{what} shape", t.ShapeAsNumpy())) if t.ShapeLength() else ()
        if any(d < 0 for d in shape):
            raise self.error(f"{what} has a negative dimension in shape {list(shape)}")
        count = math.prod(shape)
        declared = (count * DTYPE_BITS[dtype] + 7) // 8
        self.declared += declared
        if self.declared > self.budget.memory_bytes:
            so_far = f" ({self.declared:,} with the tensors before it)" if index else ""
            raise self.error(
                f"{what}: {dtype} x {list(shape)} declares {declared:,} bytes{so_far}, over the "
                f"load budget of {self.budget.memory_bytes:,} bytes (raise it with "
                f"{ENV_VAR}=<size> or LoadBudget(memory_bytes=...) if the model is trusted)")
        data = None
        stored = 0
        if t.Buffer():
            if t.Buffer() >= self.n_buffers:
                raise self.error(f"{what} refers to buffer {t.Buffer()}, but the file has "
                                 f"{self.n_buffers}")
            raw, start = self.buffer(t.Buffer(), what)
            stored = len(raw)
            expected = packing.packed_size(dtype, storage, count)
            if stored != expected:
                raise ModelFormatError(
                    f"{what}: buffer {t.Buffer()} holds {stored} bytes, but {count} {dtype} "
                    f"values in {storage} storage need {expected}", path=self.path,
                    offset=start or None)
            self.constants.charge(what, count * max(DTYPE_BITS[dtype] // 8, 1))
            try:
                data = packing.unpack(raw, dtype, storage, shape)
            except packing.Base3Error as exc:
                raise ModelFormatError(f"{what}: {exc}", path=self.path,
                                       offset=start + exc.index) from None
            except ValueError as exc:
                raise self.error(f"{what}: {exc}") from None
        quant = None
        q = t.Quantization()
        if q is not None and q.ScaleLength():
            scale = self.count(f"{what} scales", q.ScaleAsNumpy()).astype(np.float32)
            zp = self.count(f"{what} zero points", q.ZeroPointAsNumpy()).astype(np.int64) \
                if q.ZeroPointLength() else np.zeros(1, np.int64)
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
        obj = self.count(f"{where} options", fb.OpOptionsCreator(op.OptionsType(), op.Options()))
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
        for i in range(self.length("metadata layers", md.LayersLength(), 12, md)):
            info = self.table(f"metadata layer {i}", md.Layers(i))
            layers.append({"operator": info.Operator(),
                           "name": self.text(f"metadata layer {i} name", info.Name()),
                           "weight_dtype": DTYPE_NAMES.get(info.WeightDtype(), "?"),
                           "weight_bits": info.WeightBits(),
                           "activation_bits": info.ActivationBits()})
        extra = {}
        for i in range(self.length("metadata extra", md.ExtraLength(), 14, md)):
            kv = self.table(f"metadata extra {i}", md.Extra(i))
            extra[self.text(f"metadata extra {i}", kv.Key())] = \
                self.text(f"metadata extra {i}", kv.Value())
        return EdgeMetadata(producer=self.text("producer", md.Producer()),
                            source_model_sha256=self.text("source sha256",
                                                          md.SourceModelSha256()),
                            source_model_name=self.text("source name", md.SourceModelName()),
                            quantization_recipe=self.text("recipe", md.QuantizationRecipe()),
                            layers=layers, extra=extra)
