"""Decode a .tflite flatbuffer into the schema's object API (`ModelT`) in bounded time and memory.

`ModelT.InitFromPackedBuf` trusts the file: a flatbuffer may point many vector entries at one
table, so 2,000 subgraph entries that share one subgraph of 2,000 entries that share one tensor
unpack into 4 million objects from 8 KB (48 s, 735 MiB). Here the model is unpacked table by
table instead, and

- every subgraph, tensor, operator, buffer, operator code, metadata entry and signature is a
  table of its own: a table that a vector points at twice (an offset seen before) is refused,
  since it would be expanded once per reference;
- every vector's declared length must fit in the bytes after it;
- what the unpacked objects hold (tables, vector elements, string bytes) is counted as it is
  made, and may not exceed `EXPANSION_FACTOR` x the file size (plus `EXPANSION_SLACK`): a file
  that describes its content once cannot exceed that, whatever sharing it uses.

So unpacking costs O(file size). Limits on what the tensors declare and hold are the reader's
(`sdk.converters.tflite.reader`), against the `sdk.base.limits.LoadBudget`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sdk.base.errors import ModelFormatError
from sdk.base.limits import LoadBudget
from sdk.converters.tflite.schema import schema

#: unpacked items (tables + vector elements + string bytes) allowed per byte of file
EXPANSION_FACTOR = 2
EXPANSION_SLACK = 1 << 16


class DecodedData:
    """The constant data a reader (`read_tflite`, `read_edge`) has decoded so far, counted
    against `budget.fold_bytes` (16 x the file size, at least 64 MiB, at most the load budget)."""

    def __init__(self, file_bytes: int, budget: LoadBudget,
                 error: Callable[[str], ModelFormatError]):
        self.file_bytes = file_bytes
        self.budget = budget
        self.error = error
        self.decoded = 0
        self.limit = budget.fold_bytes

    def charge(self, what: str, nbytes: int) -> None:
        """Count `nbytes` of decoded constant data against the limit."""
        self.decoded += nbytes
        if self.decoded > self.limit:
            raise self.error(
                f"{what}: decoding it brings the model's constant data to {self.decoded:,} "
                f"bytes, over the limit of {self.limit:,} for a {self.file_bytes:,}-byte file "
                f"(16 x its size, at least 64 MiB, at most the load budget of "
                f"{self.budget.memory_bytes:,}; tensors that share one buffer each take a copy)")


def weight(obj: Any, depth: int = 0) -> int:
    """Items an unpacked object holds: 1 per table, element and string byte (nested)."""
    if obj is None or isinstance(obj, (bool, int, float)):
        return 0
    if isinstance(obj, (bytes, str, bytearray)):
        return len(obj)
    if isinstance(obj, np.ndarray):
        return int(obj.size)
    if depth > 16:  # the schema nests far less deeply: a cycle cannot come from unpacking
        return 1
    if isinstance(obj, (list, tuple)):
        return len(obj) + sum(weight(v, depth + 1) for v in obj if not isinstance(v, int))
    values = getattr(obj, "__dict__", None)
    if values is None:
        return 1
    return 1 + sum(weight(v, depth + 1) for v in values.values())


class ExpansionGuard:
    """What a flatbuffer reader checks as it unpacks (shared by read_tflite and read_edge):
    tables referenced once, vector lengths that fit in the file, and a running count of the
    items it materialises, at most EXPANSION_FACTOR per byte of the file."""

    def __init__(self, buf: bytes, path: str):
        self.buf = buf
        self.path = path
        self.limit = EXPANSION_FACTOR * len(buf) + EXPANSION_SLACK
        self.items = 0
        self.seen: dict[int, str] = {}

    def error(self, message: str, offset: int | None = None) -> ModelFormatError:
        return ModelFormatError(message, path=self.path, offset=offset)

    # ------------------------------------------------------------------ accounting
    def count(self, what: str, obj: Any) -> Any:
        self.items += weight(obj)
        if self.items > self.limit:
            raise self.error(
                f"{what}: the unpacked model would hold more than {self.limit:,} items "
                f"(tables, vector elements and string bytes: {EXPANSION_FACTOR} per byte of the "
                f"{len(self.buf):,}-byte file); the file reuses its tables or vectors to "
                "describe far more than it holds")
        return obj

    def table(self, what: str, accessor: Any) -> Any:
        """A table that must be referenced once only (its position not seen before)."""
        if accessor is None:
            raise self.error(f"{what} is missing (a null offset)")
        pos = int(accessor._tab.Pos)
        if pos in self.seen:
            raise self.error(f"{what} is the same table as {self.seen[pos]}: a file whose "
                             "vectors share tables would be expanded once per reference",
                             offset=pos)
        self.seen[pos] = what
        return accessor

    def length(self, what: str, n: int, vector_field: int, accessor: Any,
               item_bytes: int = 4) -> int:
        """A vector's declared length, checked against the bytes that follow it."""
        if n == 0:
            return 0
        tab = accessor._tab
        start = tab.Vector(tab.Offset(vector_field))
        room = max(0, len(self.buf) - start) // item_bytes
        if n > room:
            raise self.error(f"{what}: {n:,} entries declared, but only {room:,} fit in the "
                             f"rest of the {len(self.buf):,}-byte file", offset=start)
        return n


class BoundedDecoder(ExpansionGuard):
    """Unpacks one .tflite model, counting what it makes; `decode()` returns a `ModelT`."""

    def decode(self) -> Any:
        m = schema.Model.GetRootAs(self.buf, 0)
        out = schema.ModelT()
        out.version = m.Version()
        out.description = self.count("model description", m.Description())
        out.operatorCodes = [
            self.count(f"operator code {i}", schema.OperatorCodeT.InitFromObj(
                self.table(f"operator code {i}", m.OperatorCodes(i))))
            for i in range(self.length("operator codes", m.OperatorCodesLength(), 6, m))]
        out.subgraphs = [self.subgraph(i, self.table(f"subgraph {i}", m.Subgraphs(i)))
                         for i in range(self.length("subgraphs", m.SubgraphsLength(), 8, m))]
        out.buffers = [
            self.count(f"buffer {i}", schema.BufferT.InitFromObj(
                self.table(f"buffer {i}", m.Buffers(i))))
            for i in range(self.length("buffers", m.BuffersLength(), 12, m))]
        out.metadata = [
            self.count(f"metadata {i}", schema.MetadataT.InitFromObj(
                self.table(f"metadata {i}", m.Metadata(i))))
            for i in range(self.length("metadata", m.MetadataLength(), 16, m))]
        out.signatureDefs = [self.signature(i, self.table(f"signature {i}", m.SignatureDefs(i)))
                             for i in range(self.length("signature defs",
                                                        m.SignatureDefsLength(), 18, m))]
        # refused by the reader; only whether they are there matters
        out.externalBufferGroups = [None] * min(m.ExternalBufferGroupsLength(), 1) or None
        out.externalBuffers = [None] * min(m.ExternalBuffersLength(), 1) or None
        return out

    def subgraph(self, gi: int, sg: Any) -> Any:
        where = f"subgraph {gi}"
        out = schema.SubGraphT()
        out.name = self.count(f"{where} name", sg.Name())
        out.tensors = [
            self.count(f"{where} tensor {i}", schema.TensorT.InitFromObj(
                self.table(f"{where} tensor {i}", sg.Tensors(i))))
            for i in range(self.length(f"{where} tensors", sg.TensorsLength(), 4, sg))]
        out.operators = [
            self.count(f"{where} operator {i}", schema.OperatorT.InitFromObj(
                self.table(f"{where} operator {i}", sg.Operators(i))))
            for i in range(self.length(f"{where} operators", sg.OperatorsLength(), 10, sg))]
        if not sg.InputsIsNone():
            out.inputs = self.count(f"{where} inputs", sg.InputsAsNumpy())
        if not sg.OutputsIsNone():
            out.outputs = self.count(f"{where} outputs", sg.OutputsAsNumpy())
        out.debugMetadataIndex = sg.DebugMetadataIndex()
        return out

    def signature(self, si: int, sd: Any) -> Any:
        where = f"signature {si}"
        out = schema.SignatureDefT()
        out.signatureKey = self.count(f"{where} key", sd.SignatureKey())
        out.subgraphIndex = sd.SubgraphIndex()
        out.inputs = [self.count(f"{where} input {i}", schema.TensorMapT.InitFromObj(
            self.table(f"{where} input {i}", sd.Inputs(i))))
            for i in range(self.length(f"{where} inputs", sd.InputsLength(), 4, sd))]
        out.outputs = [self.count(f"{where} output {i}", schema.TensorMapT.InitFromObj(
            self.table(f"{where} output {i}", sd.Outputs(i))))
            for i in range(self.length(f"{where} outputs", sd.OutputsLength(), 6, sd))]
        return out


def decode_model(buf: bytes, path: str) -> Any:
    """The file's `ModelT`, unpacked in O(len(buf)) time and memory (see the module doc)."""
    return BoundedDecoder(buf, path).decode()
