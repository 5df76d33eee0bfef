"""Write the IR as a standard .tflite flatbuffer.

Constant data goes into the model's buffers 16-byte aligned (as TensorFlow's converter does), so
kernels and delegates can read weights in place. Sub-byte tensors (INT4, UINT4, INT2) are packed
the way LiteRT reads them. The file is written to a temporary name and renamed.
"""

from __future__ import annotations

import os
from typing import Any

import flatbuffers
import numpy as np

from sdk.base.errors import ConversionError
from sdk.base.fileio import atomic_write_bytes
from sdk.converters.ir import Graph, Model, Operator, Tensor
from sdk.converters.tflite import packing
from sdk.converters.tflite.options import attrs_to_options
from sdk.converters.tflite.schema import BUILTIN_OP_CODES, FILE_IDENTIFIER, schema

BUFFER_ALIGNMENT = 16
_MAX_FLATBUFFER = 2**31 - 1


class _AlignedBufferT(schema.BufferT):
    """A BufferT whose data vector is aligned to BUFFER_ALIGNMENT and copied in one go."""

    def Pack(self, builder: flatbuffers.Builder) -> int:
        data_offset = None
        if self.data is not None:
            raw = bytes(self.data)
            builder.StartVector(1, len(raw), BUFFER_ALIGNMENT)
            builder.head = builder.head - len(raw)
            builder.Bytes[builder.head:builder.head + len(raw)] = raw
            data_offset = builder.EndVector()
        schema.BufferStart(builder)
        if data_offset is not None:
            schema.BufferAddData(builder, data_offset)
        return schema.BufferEnd(builder)


class _SharingBuilder(flatbuffers.Builder):
    """A Builder that writes each distinct numpy vector once (tensor shapes, quantisation
    scales and zero points, operator inputs): later equal ones refer to the first. A flatbuffer
    may refer to one object from many places, and LiteRT reads a shared one as any other; an
    unrolled LSTM repeats a few shapes and scales over a thousand tensors."""

    def __init__(self, size: int):
        super().__init__(size)
        self.vectors: dict[tuple[str, bytes], int] = {}
        self.tables: dict[Any, int] = {}

    def CreateNumpyVector(self, x: Any) -> int:
        key = (x.dtype.str, x.tobytes())
        offset = self.vectors.get(key)
        if offset is None:
            offset = self.vectors[key] = super().CreateNumpyVector(x)
        return offset


def _table_key(table: Any) -> Any:
    """A hashable form of an object-API table's fields (numpy arrays by type and bytes,
    nested tables by their own keys); None where a field is of a kind not compared."""
    out: list[Any] = [type(table).__name__]
    for name, value in sorted(vars(table).items()):
        if value is None or isinstance(value, (bool, int, float, str, bytes)):
            out.append((name, value))
        elif isinstance(value, np.ndarray):
            out.append((name, value.dtype.str, value.shape, value.tobytes()))
        elif isinstance(value, (list, tuple)) and all(
                isinstance(v, (bool, int, float)) for v in value):
            out.append((name, tuple(value)))
        else:
            return None
    return tuple(out)


class _SharedTable:
    """An object-API table (a tensor's QuantizationParametersT, an operator's options) packed
    once per `_SharingBuilder` for every equal one: activation scales repeat on every tensor a
    MUL or RESHAPE passes through, FULLY_CONNECTED options on every layer."""

    def __init__(self, key: Any, table: Any):
        self.key, self.table = key, table

    def Pack(self, builder: flatbuffers.Builder) -> int:
        cache = getattr(builder, "tables", None)
        if cache is None:
            return int(self.table.Pack(builder))
        offset = cache.get(self.key)
        if offset is None:
            offset = cache[self.key] = self.table.Pack(builder)
        return int(offset)


def _share(table: Any) -> Any:
    key = None if table is None else _table_key(table)
    return table if key is None else _SharedTable(key, table)


def tensor_bytes(tensor: Tensor) -> bytes:
    """The bytes TFLite stores for a constant tensor."""
    data = tensor.data
    if isinstance(data, bytes):
        return data
    assert data is not None
    if tensor.dtype.is_sub_byte:
        lo, hi = tensor.dtype.value_range  # type: ignore[misc]
        if data.size and (data.min() < lo or data.max() > hi):
            raise ConversionError(
                f"tensor {tensor.name!r}: values outside the {tensor.dtype.name} range "
                f"[{lo}, {hi}]")
        return packing.pack(data, tensor.dtype.bits)
    expected = tensor.num_elements
    if data.size != expected:
        raise ConversionError(f"tensor {tensor.name!r}: data has {data.size} elements, shape "
                              f"{list(tensor.shape)} needs {expected}")
    return np.ascontiguousarray(data, dtype=tensor.dtype.numpy.newbyteorder("<")).tobytes()


class _Exporter:
    def __init__(self, model: Model):
        self.model = model
        self.opcodes: dict[tuple[str, str | None, int], int] = {}
        self.opcode_list: list[Any] = []
        self.buffers: list[Any] = [_AlignedBufferT()]  # buffer 0: the empty sentinel

    def add_buffer(self, data: bytes | None) -> int:
        buf = _AlignedBufferT()
        buf.data = data if data else None
        self.buffers.append(buf)
        return len(self.buffers) - 1

    def opcode_index(self, op: Operator) -> int:
        key = (op.type, op.custom_code if op.type == "CUSTOM" else None, int(op.version))
        if key not in self.opcodes:
            if op.type not in BUILTIN_OP_CODES:
                raise ConversionError(f"{op.label}: {op.type!r} is not a TFLite builtin operator")
            code = schema.OperatorCodeT()
            value = BUILTIN_OP_CODES[op.type]
            # Old readers look only at the deprecated 8-bit field; it saturates at 127
            # (PLACEHOLDER_FOR_GREATER_OP_CODES) for newer ops, exactly as TFLite writes it.
            code.deprecatedBuiltinCode = min(value, 127)
            code.builtinCode = value
            code.version = int(op.version)
            if op.type == "CUSTOM":
                if not op.custom_code:
                    raise ConversionError(f"{op.label}: custom operator without a custom_code")
                code.customCode = op.custom_code
            self.opcodes[key] = len(self.opcode_list)
            self.opcode_list.append(code)
        return self.opcodes[key]

    def export(self) -> Any:
        m = schema.ModelT()
        m.version = self.model.version or 3
        m.description = self.model.description or None
        self.index_maps: list[dict[int, int]] = []
        m.subgraphs = [self.subgraph(g) for g in self.model.graphs]
        m.operatorCodes = self.opcode_list
        metadata = []
        for name, blob in self.model.metadata.items():
            md = schema.MetadataT()
            md.name = name
            md.buffer = self.add_buffer(blob)
            metadata.append(md)
        m.metadata = metadata or None
        m.signatureDefs = [self.signature(s) for s in self.model.signatures] or None
        m.buffers = self.buffers
        return m

    def signature(self, s: Any) -> Any:
        index = self.index_maps[s.graph_index]
        sd = schema.SignatureDefT()
        sd.signatureKey = s.key
        sd.subgraphIndex = s.graph_index

        def maps(d: dict[str, Tensor]) -> list[Any]:
            out = []
            for name, t in d.items():
                tm = schema.TensorMapT()
                tm.name = name
                tm.tensorIndex = index[id(t)]
                out.append(tm)
            return out

        sd.inputs = maps(s.inputs)
        sd.outputs = maps(s.outputs)
        return sd

    def subgraph(self, g: Graph) -> Any:
        tensors: list[Tensor] = list(g.tensors)
        registered = {id(t) for t in tensors}
        extra_refs: list[Tensor] = []
        for t in g.referenced_tensors():
            if id(t) not in registered:
                registered.add(id(t))
                extra_refs.append(t)
        # tensors referenced only from quantisation details (block-wise scales)
        for t in [*tensors, *extra_refs]:
            if t.quant is not None and "blockwise" in t.quant.extras:
                for ref in t.quant.extras["blockwise"].values():
                    if isinstance(ref, Tensor) and id(ref) not in registered:
                        registered.add(id(ref))
                        extra_refs.append(ref)
        tensors.extend(extra_refs)
        index = {id(t): i for i, t in enumerate(tensors)}
        self.index_maps.append(index)
        sg = schema.SubGraphT()
        sg.name = g.name or None
        sg.tensors = [self.tensor(t, index) for t in tensors]
        sg.inputs = np.array([index[id(t)] for t in g.inputs], np.int32)
        sg.outputs = np.array([index[id(t)] for t in g.outputs], np.int32)
        sg.operators = [self.operator(op, index) for op in g.operators]
        if "tflite_debug_metadata_index" in g.format_extras:
            sg.debugMetadataIndex = g.format_extras["tflite_debug_metadata_index"]
        return sg

    def tensor(self, t: Tensor, index: dict[int, int]) -> Any:
        tt = schema.TensorT()
        tt.name = t.name
        tt.shape = np.array(t.shape, np.int32)
        if t.shape_signature is not None:
            tt.shapeSignature = np.array(t.shape_signature, np.int32)
        tt.type = int(t.dtype)
        tt.isVariable = t.is_variable
        tt.buffer = self.add_buffer(tensor_bytes(t)) if t.data is not None else 0
        if t.quant is not None:
            tt.quantization = self.quant(t, index)
        extras = t.format_extras
        tt.sparsity = extras.get("tflite_sparsity")
        tt.hasRank = bool(extras.get("tflite_has_rank", False))
        tt.variantTensors = extras.get("tflite_variant_tensors")
        return tt

    def quant(self, t: Tensor, index: dict[int, int]) -> Any:
        q = t.quant
        assert q is not None
        qt = schema.QuantizationParametersT()
        if q.scale.size and not q.extras.get("tflite_no_scale"):
            qt.scale = q.scale.astype(np.float32)
            qt.zeroPoint = q.zero_point.astype(np.int64)
        if q.min is not None:
            qt.min = np.asarray(q.min, np.float32)
        if q.max is not None:
            qt.max = np.asarray(q.max, np.float32)
        qt.quantizedDimension = int(q.axis)
        if "blockwise" in q.extras:
            details = schema.BlockwiseQuantizationT()
            bw = q.extras["blockwise"]
            details.scales = index[id(bw["scales"])] if bw.get("scales") is not None else -1
            details.zeroPoints = (index[id(bw["zero_points"])]
                                  if bw.get("zero_points") is not None else -1)
            details.blockSize = int(q.block_size)
            qt.detailsType = schema.QuantizationDetails.BlockwiseQuantization
            qt.details = details
        elif "tflite_details" in q.extras:
            qt.detailsType, qt.details = q.extras["tflite_details"]
        return qt

    def operator(self, op: Operator, index: dict[int, int]) -> Any:
        ot = schema.OperatorT()
        ot.opcodeIndex = self.opcode_index(op)
        ot.inputs = np.array([-1 if t is None else index[id(t)] for t in op.inputs], np.int32)
        ot.outputs = np.array([index[id(t)] for t in op.outputs], np.int32)
        extras = op.format_extras
        if op.type != "CUSTOM" and not (extras.get("tflite_options_type", "") is None
                                        and not op.attrs):
            code, options = attrs_to_options(op.type, op.attrs, extras.get("tflite_options_type"),
                                             node=op.label)
            ot.builtinOptionsType = code
            ot.builtinOptions = options
        elif op.attrs:
            raise ConversionError(f"{op.label}: a custom op carries its parameters in "
                                  f"custom_options, not attributes {sorted(op.attrs)}")
        if "tflite_options2" in extras:
            _, code2, options2 = extras["tflite_options2"]
            ot.builtinOptions2Type = code2
            ot.builtinOptions2 = options2
        if op.custom_options is not None:
            ot.customOptions = np.frombuffer(op.custom_options, np.uint8)
        ot.customOptionsFormat = extras.get("tflite_custom_options_format", 0)
        if "tflite_mutating_variable_inputs" in extras:
            ot.mutatingVariableInputs = extras["tflite_mutating_variable_inputs"]
        if "tflite_intermediates" in extras:
            ot.intermediates = np.array([index[id(t)] for t in extras["tflite_intermediates"]],
                                        np.int32)
        if "tflite_debug_metadata_index" in extras:
            ot.debugMetadataIndex = extras["tflite_debug_metadata_index"]
        return ot


def serialize(model: Model) -> tuple[bytes, list[dict[Tensor, int]]]:
    """Serialise the IR as a .tflite flatbuffer; also return, per subgraph, each IR tensor's
    index in the file (what an Interpreter's `get_tensor(index)` takes)."""
    exporter = _Exporter(model)
    model_t = exporter.export()
    total = sum(len(b.data or b"") for b in model_t.buffers)
    if total > _MAX_FLATBUFFER - (1 << 20):
        raise ConversionError(f"model holds {total} bytes of constants; .tflite files over 2 GB "
                              "are not supported by this writer")
    for sg in model_t.subgraphs or []:  # equal tables written once (_SharingBuilder)
        for tt in sg.tensors or []:
            tt.quantization = _share(tt.quantization)
        for ot in sg.operators or []:
            ot.builtinOptions = _share(ot.builtinOptions)
    builder = _SharingBuilder(max(1024, total + (1 << 16)))
    builder.Finish(model_t.Pack(builder), file_identifier=FILE_IDENTIFIER)
    maps = []
    for graph, index in zip(model.graphs, exporter.index_maps, strict=True):
        by_id = {id(t): t for t in graph.tensors}
        by_id.update({id(t): t for t in graph.referenced_tensors()})
        for t in list(by_id.values()):
            if t.quant is not None and "blockwise" in t.quant.extras:
                by_id.update({id(r): r for r in t.quant.extras["blockwise"].values()
                              if isinstance(r, Tensor)})
        maps.append({by_id[k]: v for k, v in index.items()})
    return bytes(builder.Output()), maps


def to_tflite_bytes(model: Model) -> bytes:
    """Serialise the IR as a .tflite flatbuffer."""
    return serialize(model)[0]


def write_tflite(model: Model, path: str | os.PathLike[str]) -> int:
    """Write the IR to `path` atomically; returns the file size in bytes."""
    data = to_tflite_bytes(model)
    atomic_write_bytes(path, data)
    return len(data)


__all__ = ["serialize", "tensor_bytes", "to_tflite_bytes", "write_tflite"]
