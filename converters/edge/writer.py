"""Write the IR as a `.edge` flatbuffer.

Constant data is aligned to 64 bytes in the file, so a runtime that maps the file can read
weights in place. Sub-byte weights are packed (PLAIN: LSB first, as TFLite packs INT4/INT2);
INT2 weights whose values are all in {-1, 0, +1} are stored as TERNARY (lossless: the values are
the same, only the dtype, the storage and the kernel that runs them change), by default in
base 3 (1.6 bits per weight). The file is written to a temporary name and renamed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import flatbuffers
import numpy as np

from sdk.base.errors import ConversionError
from sdk.base.fileio import atomic_write_bytes, sha256_file
from sdk.converters.edge import packing
from sdk.converters.edge import schema_generated as fb
from sdk.converters.edge.lowering import WEIGHTED_OPS, LoweredOp, lower_graph
from sdk.converters.edge.schema import (
    ACTIVATIONS,
    BUFFER_ALIGNMENT,
    DTYPE_BITS,
    DTYPES,
    FILE_IDENTIFIER,
    FORMAT_VERSION,
    OP_TYPES,
    OPTIONS,
    STORAGES,
    edge_dtype,
)
from sdk.converters.ir import DType, Model, Tensor

TernaryMode = Literal["auto", "never"]
TernaryStorage = Literal["BASE3", "PLAIN"]
_MAX_FLATBUFFER = 2**31 - 1


class _AlignedBufferT(fb.BufferT):
    """A BufferT whose data vector starts on a BUFFER_ALIGNMENT boundary of the file."""

    def Pack(self, builder: flatbuffers.Builder) -> int:
        data_offset = None
        if self.data:
            raw = bytes(self.data)
            builder.StartVector(1, len(raw), BUFFER_ALIGNMENT)
            builder.head = builder.head - len(raw)
            builder.Bytes[builder.head:builder.head + len(raw)] = raw
            data_offset = builder.EndVector()
        fb.BufferStart(builder)
        if data_offset is not None:
            fb.BufferAddData(builder, data_offset)
        return fb.BufferEnd(builder)


@dataclass(frozen=True)
class WriteOptions:
    #: "auto": INT2 weights with values only in {-1, 0, 1} are written as TERNARY
    ternary: TernaryMode = "auto"
    ternary_storage: TernaryStorage = "BASE3"
    recipe: str | None = None
    source_sha256: str | None = None
    source_name: str | None = None
    extra: tuple[tuple[str, str], ...] = ()


def _is_ternary(t: Tensor) -> bool:
    if t.dtype is not DType.INT2 or not isinstance(t.data, np.ndarray) or t.data.size == 0:
        return False
    return bool(t.data.min() >= -1)


class _Exporter:
    def __init__(self, model: Model, options: WriteOptions):
        if len(model.graphs) != 1:
            raise ConversionError(f".edge holds one graph; this model has {len(model.graphs)}")
        self.model = model
        self.opts = options
        self.buffers: list[Any] = [_AlignedBufferT()]
        self.index: dict[int, int] = {}
        self.tensors: list[Any] = []
        self.layers: list[Any] = []

    def tensor_index(self, t: Tensor) -> int:
        key = id(t)
        if key not in self.index:
            self.index[key] = len(self.tensors)
            self.tensors.append(self.tensor(t))
        return self.index[key]

    def tensor(self, t: Tensor) -> Any:
        tt = fb.TensorT()
        tt.name = t.name
        tt.shape = np.asarray(t.shape, np.int32)
        try:
            dtype = edge_dtype(t.dtype)
        except KeyError:
            raise ConversionError(f"tensor {t.name!r}: type {t.dtype.name} cannot be stored in "
                                  ".edge") from None
        storage = "PLAIN"
        if self.opts.ternary == "auto" and _is_ternary(t):
            dtype, storage = "TERNARY", self.opts.ternary_storage
        tt.dtype = DTYPES[dtype]
        tt.storage = STORAGES[storage]
        if t.data is not None:
            if isinstance(t.data, bytes):
                raise ConversionError(f"tensor {t.name!r}: raw {t.dtype.name} bytes cannot be "
                                      "stored in .edge")
            if t.data.size != t.num_elements:
                raise ConversionError(f"tensor {t.name!r}: data has {t.data.size} elements, "
                                      f"shape {list(t.shape)} needs {t.num_elements}")
            try:
                raw = packing.pack(t.data, dtype, storage)
            except ValueError as exc:
                raise ConversionError(f"tensor {t.name!r}: {exc}") from None
            buf = _AlignedBufferT()
            buf.data = raw
            self.buffers.append(buf)
            tt.buffer = len(self.buffers) - 1
        if t.quant is not None and t.quant.scale.size:
            q = fb.QuantizationT()
            q.scale = np.asarray(t.quant.scale, np.float32).reshape(-1)
            zp = np.asarray(t.quant.zero_point, np.int64).reshape(-1)
            if zp.size > 1 and (zp == zp[0]).all():  # per-channel, one value: the schema lets
                zp = None if not zp[0] else zp[:1]  # it be absent (0) or shared (8 B a channel)
            q.zeroPoint = zp
            q.axis = int(t.quant.axis)
            q.blockSize = int(t.quant.block_size)
            tt.quantization = q
        return tt

    def operator(self, index: int, low: LoweredOp) -> Any:
        ot = fb.OperatorT()
        ot.op = OP_TYPES[low.op]
        ot.inputs = np.asarray([-1 if t is None else self.tensor_index(t) for t in low.inputs],
                               np.int32)
        ot.outputs = np.asarray([self.tensor_index(t) for t in low.outputs], np.int32)
        ot.name = low.name or None
        if low.options_type is not None:
            ot.optionsType = OPTIONS[low.options_type]
            ot.options = _options(low.options_type, low.options)
        if low.op in WEIGHTED_OPS and len(low.inputs) > 1 and low.inputs[1] is not None:
            w = low.inputs[1]
            info = fb.LayerInfoT()
            info.operator = index
            info.name = low.name or (low.source.label if low.source else "")
            wt = self.tensors[self.index[id(w)]]
            info.weightDtype = wt.dtype
            name = next(k for k, v in DTYPES.items() if v == wt.dtype)
            info.weightBits = DTYPE_BITS[name]
            x = low.inputs[0]
            info.activationBits = DTYPE_BITS.get(edge_dtype(x.dtype), 0) if x is not None else 0
            self.layers.append(info)
        return ot

    def export(self) -> Any:
        graph = self.model.main
        lowered = lower_graph(graph)
        sg = fb.SubGraphT()
        sg.name = graph.name or None
        inputs = [self.tensor_index(t) for t in graph.inputs]
        sg.operators = [self.operator(i, low) for i, low in enumerate(lowered)]
        sg.inputs = np.asarray(inputs, np.int32)
        sg.outputs = np.asarray([self.tensor_index(t) for t in graph.outputs], np.int32)
        sg.tensors = self.tensors
        m = fb.ModelT()
        m.versionMajor, m.versionMinor = FORMAT_VERSION
        m.description = self.model.description or None
        m.subgraphs = [sg]
        m.buffers = self.buffers
        m.metadata = self.metadata()
        return m

    def metadata(self) -> Any:
        from sdk.base.version import __version__

        md = fb.MetadataT()
        md.producer = f"edgesdk {__version__}"
        md.sourceModelSha256 = self.opts.source_sha256
        md.sourceModelName = self.opts.source_name
        md.quantizationRecipe = self.opts.recipe or self.infer_recipe()
        md.layers = self.layers
        extra = []
        for key, value in self.opts.extra:
            kv = fb.KeyValueT()
            kv.key, kv.value = str(key), str(value)
            extra.append(kv)
        md.extra = extra or None
        return md

    def infer_recipe(self) -> str:
        names = {next(k for k, v in DTYPES.items() if v == info.weightDtype)
                 for info in self.layers}
        if not names:
            return "none"
        if len(names) == 1:
            return names.pop().lower()
        return "mixed"


def _options(kind: str, values: dict[str, Any]) -> Any:
    obj = getattr(fb, kind + "T")()
    for key, value in values.items():
        camel = key.split("_")[0] + "".join(p.capitalize() for p in key.split("_")[1:])
        if not hasattr(obj, camel):
            raise ConversionError(f"{kind} has no field {key!r}")
        if key == "activation":
            value = ACTIVATIONS[value]
        elif key == "padding":
            pad = fb.PaddingT()
            pad.top, pad.left = value["top"], value["left"]
            pad.bottom, pad.right = value["bottom"], value["right"]
            value = pad
        elif isinstance(value, (list, tuple)):
            value = np.asarray(value, np.int32)
        setattr(obj, camel, value)
    return obj


#: Model.format_extras keys a producer (e.g. sdk.export) may set to fill the metadata
METADATA_EXTRAS = {"source_sha256": "source_sha256", "source_name": "source_name",
                   "quantization_recipe": "recipe"}


def serialize(model: Model, **options: Any) -> tuple[bytes, list[dict[Tensor, int]]]:
    """Serialise the IR as a .edge flatbuffer; also return, for the graph, each written IR
    tensor's index in the file. Keyword options as in `WriteOptions`; metadata not given as an
    option is taken from `model.format_extras` (keys in METADATA_EXTRAS)."""
    for key, option in METADATA_EXTRAS.items():
        if option not in options and model.format_extras.get(key):
            options[option] = str(model.format_extras[key])
    if "extra" in options and isinstance(options["extra"], dict):
        options["extra"] = tuple(sorted(options["extra"].items()))
    exporter = _Exporter(model, WriteOptions(**options))
    model_t = exporter.export()
    total = sum(len(b.data or b"") for b in model_t.buffers)
    if total > _MAX_FLATBUFFER - (1 << 20):
        raise ConversionError(f"model holds {total} bytes of constants; .edge files are limited "
                              "to 2 GB")
    builder = flatbuffers.Builder(max(1024, total + (1 << 16)))
    builder.Finish(model_t.Pack(builder), file_identifier=FILE_IDENTIFIER)
    by_id = {id(t): t for t in model.main.referenced_tensors()}
    index = {by_id[key]: i for key, i in exporter.index.items() if key in by_id}
    return bytes(builder.Output()), [index]


def to_edge_bytes(model: Model, **options: Any) -> bytes:
    """Serialise the IR as a .edge flatbuffer; keyword options as in `WriteOptions`."""
    return serialize(model, **options)[0]


def write_edge(model: Model, path: str | os.PathLike[str], **options: Any) -> int:
    """Write the IR to `path` atomically as .edge; returns the file size in bytes.

    Options: `recipe` (quantisation recipe name for the metadata; inferred from the weight types
    when omitted), `source_sha256` / `source_name` (the model the export started from),
    `ternary` ("auto" or "never"), `ternary_storage` ("BASE3" or "PLAIN"), `extra` (str -> str).
    """
    data = to_edge_bytes(model, **options)
    atomic_write_bytes(path, data)
    return len(data)


#: hex SHA-256 of a file, for the `source_sha256` metadata (sdk.base.fileio.sha256_file)
file_sha256 = sha256_file


__all__ = ["WriteOptions", "file_sha256", "serialize", "to_edge_bytes", "write_edge"]
