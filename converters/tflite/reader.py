"""Read a .tflite flatbuffer into the IR.

The flatbuffer is unpacked into the schema's object API table by table, in time and memory
bounded by the file's size (`sdk.converters.tflite.decode`), then checked (indices in range,
buffer sizes that match type x shape) before any IR is built, so a malformed file is a
`ModelFormatError` naming the file and, where the decoder can tell, the byte offset — never an
IndexError from deep inside flatbuffers.

Resource limits (`sdk.base.limits.LoadBudget`, `EDGESDK_MEMORY_BUDGET`): a tensor may declare at
most the memory budget in bytes; the constant data decoded from all tensors together (buffers shared
between tensors are decoded per tensor, sub-byte types unpacked to a byte per value) may take at
most `budget.fold_bytes` (16 x the file size, at least 64 MiB, at most the memory budget); a
buffer must lie inside the file. Sparse constants (TFLite sparsity parameters, read by DENSIFY)
are densified here, their dense size charged to the same limit, and their DENSIFY ops folded
(`sdk.converters.tflite.sparsity`).
"""

from __future__ import annotations

import math
import os
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from sdk.base.errors import ModelFormatError
from sdk.base.limits import LoadBudget, default_budget
from sdk.converters.ir import DType, Graph, Model, Operator, QuantParams, SignatureDef, Tensor
from sdk.converters.tflite import packing
from sdk.converters.tflite import sparsity as sparsity_mod
from sdk.converters.tflite.decode import DecodedData, decode_model
from sdk.converters.tflite.options import options_to_attrs, options_type_name
from sdk.converters.tflite.schema import BUILTIN_OP_NAMES, FILE_IDENTIFIER, OPTIONS2_NAMES, schema

_OFFSET_RE = re.compile(r"at offset (-?\d+)")


def builtin_op_name(code: Any) -> str:
    """The operator's builtin name from an `OperatorCodeT`.

    Files written before the schema grew past 127 builtins set only `deprecated_builtin_code`
    (and leave `builtin_code` 0 = ADD); newer ones set both. TFLite itself takes the larger of the
    two, and so do we: reading `builtin_code` alone would turn every op of an old file into ADD.
    """
    value = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
    try:
        return BUILTIN_OP_NAMES[value]
    except KeyError:
        raise ModelFormatError(f"unknown builtin operator code {value}") from None


def read_tflite(source: str | os.PathLike[str] | bytes, *,
                budget: LoadBudget | None = None) -> Model:
    """Read a .tflite model (a path or the file's bytes) into the IR, within `budget`
    (default: `sdk.base.limits.default_budget()`)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        buf, path = bytes(source), "<bytes>"
    else:
        path = str(source)
        try:
            buf = Path(path).read_bytes()
        except OSError as exc:
            raise ModelFormatError(f"cannot read: {exc.strerror}", path=path) from exc
    budget = (budget or default_budget()).for_file(len(buf))
    model_t = _decode(buf, path)
    return _Importer(model_t, buf, path, budget).model()


def _decode(buf: bytes, path: str) -> Any:
    if len(buf) < 8:
        raise ModelFormatError(
            f"file is {len(buf)} bytes, too short for a flatbuffer (header is 8 bytes)", path=path)
    ident = buf[4:8]
    if ident != FILE_IDENTIFIER:
        raise ModelFormatError(
            f"not a TFLite model: file identifier is {ident!r}, expected {FILE_IDENTIFIER!r}",
            path=path, offset=4)
    (root,) = struct.unpack_from("<I", buf, 0)
    if root + 4 > len(buf):
        raise ModelFormatError(
            f"root table offset {root} is past the end of the {len(buf)}-byte file "
            "(truncated?)", path=path, offset=0)
    try:
        return decode_model(buf, path)
    except ModelFormatError:
        raise
    except (struct.error, IndexError, ValueError, TypeError, UnicodeDecodeError,
            OverflowError, MemoryError, AttributeError, KeyError) as exc:
        match = _OFFSET_RE.search(str(exc))
        offset = int(match.group(1)) if match else None
        raise ModelFormatError(
            f"corrupt or truncated flatbuffer ({len(buf)} bytes): {type(exc).__name__}: {exc}",
            path=path, offset=offset) from exc


class _Importer:
    """Builds IR objects from a decoded `ModelT`, checking each reference as it goes."""

    def __init__(self, model_t: Any, buf: bytes, path: str, budget: LoadBudget):
        self.m = model_t
        self.buf = buf
        self.path = path
        self.budget = budget
        self.buffers: list[Any] = list(model_t.buffers or [])
        self.buffer_cache: dict[int, bytes | None] = {}
        #: bytes of constant data decoded so far, and the most allowed (see the module doc)
        self.constants = DecodedData(len(buf), budget, self.error)

    def error(self, message: str) -> ModelFormatError:
        return ModelFormatError(message, path=self.path)

    # ------------------------------------------------------------------ buffers
    def buffer_bytes(self, index: int, what: str) -> bytes | None:
        """A buffer's bytes (read once however many tensors share the buffer)."""
        if index == 0:
            return None
        if not 0 <= index < len(self.buffers):
            raise self.error(f"{what} refers to buffer {index}, but the model has "
                             f"{len(self.buffers)} buffers")
        if index not in self.buffer_cache:
            self.buffer_cache[index] = self._read_buffer(index, what)
        return self.buffer_cache[index]

    def _read_buffer(self, index: int, what: str) -> bytes | None:
        b = self.buffers[index]
        if b.data is not None and len(b.data) > 0:
            return np.asarray(b.data, dtype=np.uint8).tobytes()
        if b.offset > 1:  # large models keep buffers after the flatbuffer, addressed by offset
            if b.offset + b.size > len(self.buf):
                raise ModelFormatError(
                    f"{what}: buffer {index} spans bytes {b.offset}..{b.offset + b.size}, past "
                    f"the end of the {len(self.buf)}-byte file", path=self.path, offset=b.offset)
            return self.buf[b.offset:b.offset + b.size]
        return None

    # ------------------------------------------------------------------ model
    def model(self) -> Model:
        m = self.m
        if not m.subgraphs:
            raise self.error("model has no subgraphs")
        self.opcodes = [self.opcode(i, c) for i, c in enumerate(m.operatorCodes or [])]
        graphs: list[Graph] = []
        self.tensor_lists: list[list[Tensor]] = []
        for gi, sg in enumerate(m.subgraphs):
            graphs.append(self.graph(gi, sg))
        metadata: dict[str, bytes] = {}
        for md in m.metadata or []:
            name = _text(md.name)
            metadata[name] = self.buffer_bytes(md.buffer, f"metadata {name!r}") or b""
        signatures = [self.signature(s) for s in (m.signatureDefs or [])]
        extras: dict[str, Any] = {}
        if m.externalBufferGroups or m.externalBuffers:
            raise self.error("external buffers (a model split over several files) are not "
                             "supported")
        return Model(graphs=graphs, description=_text(m.description), version=int(m.version),
                     metadata=metadata, signatures=signatures, format_extras=extras)

    def opcode(self, index: int, code: Any) -> tuple[str, str | None, int]:
        name = builtin_op_name(code)
        custom = _text(code.customCode) if name == "CUSTOM" else None
        return name, custom, int(code.version)

    def signature(self, s: Any) -> SignatureDef:
        gi = int(s.subgraphIndex)
        if not 0 <= gi < len(self.tensor_lists):
            raise self.error(f"signature {_text(s.signatureKey)!r} refers to subgraph {gi}")
        tensors = self.tensor_lists[gi]

        def mapping(maps: Any) -> dict[str, Tensor]:
            out = {}
            for tm in maps or []:
                out[_text(tm.name)] = self.tensor_at(tensors, tm.tensorIndex,
                                                     f"signature {_text(s.signatureKey)!r}")
            return out

        return SignatureDef(key=_text(s.signatureKey), graph_index=gi,
                            inputs=mapping(s.inputs), outputs=mapping(s.outputs))

    def tensor_at(self, tensors: list[Tensor], index: int, what: str) -> Tensor:
        if not 0 <= index < len(tensors):
            raise self.error(f"{what} refers to tensor {index}, but the subgraph has "
                             f"{len(tensors)} tensors")
        return tensors[index]

    # ------------------------------------------------------------------ graphs
    def graph(self, gi: int, sg: Any) -> Graph:
        where = f"subgraph {gi}"
        raw = list(sg.tensors or [])
        tensors = [self.tensor(where, i, t) for i, t in enumerate(raw)]
        self.tensor_lists.append(tensors)
        # block-wise quantisation refers to other tensors by index: resolve after all exist
        for t in tensors:
            if t.quant is not None and "blockwise" in t.quant.extras:
                details = t.quant.extras["blockwise"]
                for key in ("scales", "zero_points"):
                    idx = details.get(key)
                    if isinstance(idx, int) and idx >= 0:
                        details[key] = self.tensor_at(tensors, idx, f"tensor {t.name!r}")
                    else:
                        details[key] = None
        ops = []
        for oi, op in enumerate(sg.operators or []):
            ops.append(self.operator(f"{where} operator {oi}", tensors, op))
        g = Graph(
            name=_text(sg.name),
            tensors=tensors,
            operators=ops,
            inputs=[self.tensor_at(tensors, i, f"{where} inputs") for i in _ints(sg.inputs)],
            outputs=[self.tensor_at(tensors, i, f"{where} outputs") for i in _ints(sg.outputs)],
        )
        sparsity_mod.fold_densify(g)  # sparse constants were densified: DENSIFY is a no-op
        if sg.debugMetadataIndex != -1:
            g.format_extras["tflite_debug_metadata_index"] = int(sg.debugMetadataIndex)
        return g

    def tensor(self, where: str, index: int, t: Any) -> Tensor:
        name = _text(t.name) or f"tensor_{index}"
        what = f"{where} tensor {index} ({name!r})"
        try:
            dtype = DType(int(t.type))
        except ValueError:
            raise self.error(f"{what} has unknown type {t.type}") from None
        shape = tuple(int(d) for d in _ints(t.shape))
        if any(d < 0 for d in shape):
            raise self.error(f"{what} has a negative dimension in shape {list(shape)}")
        declared = (math.prod(shape) * dtype.bits + 7) // 8
        if declared > self.budget.memory_bytes:
            raise self.error(
                f"{what}: {dtype.name} x {list(shape)} declares {declared:,} bytes, over the "
                f"load budget of {self.budget.memory_bytes:,} bytes (raise it with "
                "EDGESDK_MEMORY_BUDGET=<size> or LoadBudget(memory_bytes=...) if the model is "
                "trusted)")
        signature = tuple(int(d) for d in _ints(t.shapeSignature)) if t.shapeSignature is not None \
            else None
        raw = self.buffer_bytes(int(t.buffer), what)
        data: np.ndarray | bytes | None = None
        densified = False
        if raw is not None and t.sparsity is not None:
            data, densified = self.sparse_data(what, dtype, shape, raw, t.sparsity), True
        elif raw is not None:
            data = self.constant_data(what, dtype, shape, raw)
        tensor = Tensor(name=name, shape=shape, dtype=dtype, data=data,
                        quant=self.quant(what, t.quantization), shape_signature=signature,
                        is_variable=bool(t.isVariable))
        extras = tensor.format_extras
        if densified:
            extras["tflite_densified"] = True
        elif t.sparsity is not None:
            extras["tflite_sparsity"] = t.sparsity
        if t.hasRank:
            extras["tflite_has_rank"] = True
        if t.variantTensors:
            extras["tflite_variant_tensors"] = t.variantTensors
        return tensor

    def constant_data(self, what: str, dtype: DType, shape: tuple[int, ...],
                      raw: bytes) -> np.ndarray | bytes:
        if dtype in (DType.STRING, DType.RESOURCE, DType.VARIANT):
            self.constants.charge(what, len(raw))
            return raw
        count = math.prod(shape)
        if dtype.is_sub_byte:
            expected = packing.packed_size(count, dtype.bits)
            if len(raw) != expected:
                raise self.error(f"{what}: buffer holds {len(raw)} bytes, but {count} "
                                 f"{dtype.name} values need {expected}")
            self.constants.charge(what, count)  # unpacked: one byte per value
            signed = dtype is not DType.UINT4
            return packing.unpack(raw, count, dtype.bits, signed).reshape(shape)
        itemsize = dtype.bits // 8
        if len(raw) != count * itemsize:
            raise self.error(f"{what}: buffer holds {len(raw)} bytes, but {dtype.name} "
                             f"x {list(shape)} needs {count * itemsize}")
        self.constants.charge(what, len(raw))
        arr = np.frombuffer(raw, dtype=dtype.numpy.newbyteorder("<")).astype(dtype.numpy)
        return arr.reshape(shape)

    def sparse_data(self, what: str, dtype: DType, shape: tuple[int, ...], raw: bytes,
                    sparsity: Any) -> np.ndarray:
        """A sparse constant (TFLite sparsity parameters) as its dense array; the dense size is
        charged to the budget before anything is built (see `sparsity.densify`)."""
        if dtype.is_sub_byte or dtype in (DType.STRING, DType.RESOURCE, DType.VARIANT):
            raise self.error(f"{what}: sparse {dtype.name} tensors are not supported")
        itemsize = dtype.bits // 8
        if len(raw) % itemsize:
            raise self.error(f"{what}: sparse buffer holds {len(raw)} bytes, not a whole number "
                             f"of {dtype.name} values")
        self.constants.charge(what, math.prod(shape) * itemsize)
        values = np.frombuffer(raw, dtype=dtype.numpy.newbyteorder("<")).astype(dtype.numpy)
        return sparsity_mod.densify(sparsity, shape, values, what, self.path)

    def quant(self, what: str, q: Any) -> QuantParams | None:
        if q is None:
            return None
        scale = np.asarray(q.scale if q.scale is not None else [], np.float32)
        zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else [], np.int64)
        extras: dict[str, Any] = {}
        block_size = 0
        if q.detailsType == schema.QuantizationDetails.BlockwiseQuantization and q.details:
            block_size = int(q.details.blockSize)
            extras["blockwise"] = {"scales": int(q.details.scales),
                                   "zero_points": int(q.details.zeroPoints)}
        elif q.detailsType:
            extras["tflite_details"] = (int(q.detailsType), q.details)
        if scale.size == 0 and not extras and q.min is None and q.max is None:
            return None
        if scale.size == 0:
            scale = np.zeros(0, np.float32)
        if zp.size == 0:
            zp = np.zeros(max(scale.size, 1), np.int64) if scale.size else np.zeros(0, np.int64)
        try:
            params = QuantParams(scale=scale, zero_point=zp, axis=int(q.quantizedDimension),
                                 block_size=block_size,
                                 min=None if q.min is None else np.asarray(q.min, np.float32),
                                 max=None if q.max is None else np.asarray(q.max, np.float32),
                                 extras=extras)
        except ValueError as exc:
            raise self.error(f"{what}: {exc}") from None
        if scale.size == 0:
            params.extras["tflite_no_scale"] = True
        return params

    # ------------------------------------------------------------------ operators
    def operator(self, where: str, tensors: list[Tensor], op: Any) -> Operator:
        if not 0 <= op.opcodeIndex < len(self.opcodes):
            raise self.error(f"{where} uses opcode {op.opcodeIndex}, but the model has "
                             f"{len(self.opcodes)}")
        op_type, custom_code, version = self.opcodes[op.opcodeIndex]

        def ref(i: int, kind: str) -> Tensor | None:
            if i == -1:
                return None
            return self.tensor_at(tensors, i, f"{where} ({op_type}) {kind}")

        inputs = [ref(int(i), "input") for i in _ints(op.inputs)]
        outputs = []
        for i in _ints(op.outputs):
            t = ref(int(i), "output")
            if t is None:
                raise self.error(f"{where} ({op_type}) has an output index of -1")
            outputs.append(t)
        attrs: dict[str, Any] = {}
        extras: dict[str, Any] = {}
        # Recorded even when absent (None): TFLite writes e.g. RESHAPE without options, and a
        # faithful writer must not invent them.
        extras["tflite_options_type"] = None
        if op.builtinOptionsType:
            extras["tflite_options_type"] = options_type_name(int(op.builtinOptionsType))
            if op.builtinOptions is not None:
                attrs = options_to_attrs(op.builtinOptions)
        if op.builtinOptions2Type:
            extras["tflite_options2"] = (OPTIONS2_NAMES.get(int(op.builtinOptions2Type)),
                                         int(op.builtinOptions2Type), op.builtinOptions2)
        custom_options = None
        if op.customOptions is not None and len(op.customOptions):
            custom_options = np.asarray(op.customOptions, np.uint8).tobytes()
        elif op.largeCustomOptionsSize:
            start, size = int(op.largeCustomOptionsOffset), int(op.largeCustomOptionsSize)
            if start + size > len(self.buf):
                raise ModelFormatError(f"{where}: custom options past the end of the file",
                                       path=self.path, offset=start)
            custom_options = self.buf[start:start + size]
        if op.customOptionsFormat:
            extras["tflite_custom_options_format"] = int(op.customOptionsFormat)
        if op.mutatingVariableInputs is not None and len(op.mutatingVariableInputs):
            extras["tflite_mutating_variable_inputs"] = [bool(b) for b in op.mutatingVariableInputs]
        if op.intermediates is not None and len(op.intermediates):
            extras["tflite_intermediates"] = [ref(int(i), "intermediate")
                                              for i in op.intermediates]
        if op.debugMetadataIndex != -1:
            extras["tflite_debug_metadata_index"] = int(op.debugMetadataIndex)
        return Operator(type=op_type, inputs=inputs, outputs=outputs, attrs=attrs,
                        version=version, custom_code=custom_code, custom_options=custom_options,
                        format_extras=extras)


def _ints(values: Any) -> list[int]:
    if values is None:
        return []
    return [int(v) for v in values]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
