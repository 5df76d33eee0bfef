"""Where a quantised .tflite file's bytes go, and which of them a sub-byte file need not store.

The floor of mixed precision (every weighted layer at 2 bits) is mostly not weights: on
BlazeFace (117K weights, 2,188 output channels) the 2-bit weights are 25 KB of a 113 KB file.
A per-channel QuantizationParameters costs 12 bytes a channel (a FLOAT32 scale and the INT64
zero point TFLite's interpreter requires beside every scale), once for the weights and once
again for the INT32 bias (scale = input scale x weight scale).

`compact_bias_scales`: the bias's scales are not written for CONV_2D / DEPTHWISE_CONV_2D with
INT4 or INT2 weights. LiteRT's builtin int8 convolutions read only the bias's values (its
requantisation uses the input, weight and output scales), as does the edgesdk delegate (the
EDGE_CONV_INT2 / EDGE_DWCONV_INT2 custom ops, INT4 convolutions); XNNPACK takes no sub-byte
convolution. INT8 layers keep them (XNNPACK declines an int8 convolution whose bias has no
scale, and its kernels round differently from the builtin ones), and so does FULLY_CONNECTED
(its per-tensor path checks the bias scale against input x weight scale). The IR keeps the
scales (`QuantParams.extras["tflite_no_scale"]`: only the writer skips them).

`byte_breakdown`: every byte of a .tflite by what it holds (weights by type, biases, other
constants, quantisation parameters by role, tensor names, metadata, the flatbuffer's tables and
alignment), as `benchmarks/subbyte_fidelity.py --mixed` reports the floor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.converters.ir import DType

#: ops whose INT32 bias scales a sub-byte file omits (see the module docstring)
BIAS_SCALE_FREE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")
#: bytes of one per-channel quantisation entry in a .tflite: FLOAT32 scale + INT64 zero point
QPARAM_BYTES = 12
_WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def compact_bias_scales(op_type: str, weight_dtype: DType, channels: int) -> bool:
    """Whether the bias of an `op_type` layer with `weight_dtype` weights and `channels` output
    channels is written without its scales (12 bytes a channel)."""
    return op_type in BIAS_SCALE_FREE_OPS and weight_dtype.is_sub_byte and channels > 1


@dataclass
class ByteBreakdown:
    """A .tflite's bytes by what they hold; `parts` sum to `total`."""

    total: int
    #: bytes by part: "weights INT2", "bias", "constants", "qparams weights", "qparams bias",
    #: "qparams activations", "tensor names", "metadata", "tables and alignment"
    parts: dict[str, int] = field(default_factory=dict)
    #: per-channel (or per-tensor) quantisation entries by role, of each stored table once
    #: (the writer stores equal tables once; a vector two tables share, as all-zero zero
    #: points, is counted in bytes once: bytes <= QPARAM_BYTES x entries)
    qparam_entries: dict[str, int] = field(default_factory=dict)
    weights: int = 0  # weight elements of the weighted ops
    channels: int = 0  # their output channels
    #: constant buffers whose bytes another buffer already holds (a duplicate could share it)
    duplicate_bytes: int = 0

    def overhead(self) -> int:
        """Bytes that are not weight codes."""
        return self.total - sum(v for k, v in self.parts.items() if k.startswith("weights "))

    def lines(self) -> list[str]:
        out = [f"{self.total:,} B: {self.weights:,} weights in {self.channels:,} output channels"]
        for k, v in sorted(self.parts.items(), key=lambda kv: -kv[1]):
            out.append(f"  {k:24s} {v:9,d} B  {100.0 * v / max(self.total, 1):5.1f} %")
        if self.duplicate_bytes:
            out.append(f"  (duplicated constants: {self.duplicate_bytes:,} B)")
        return out

    def to_dict(self) -> dict[str, object]:
        return {"total": self.total, "parts": dict(self.parts),
                "qparam_entries": dict(self.qparam_entries), "weights": self.weights,
                "channels": self.channels, "duplicate_bytes": self.duplicate_bytes}


#: QuantizationParameters' vector fields: (vtable offset, element bytes) of min, max, scale
#: and zero_point (the schema's field order)
_QPARAM_FIELDS = ((4, 4), (6, 4), (8, 4), (10, 8))


def _qparam_vectors(tensor: Any) -> tuple[int, list[tuple[int, int, int]]]:
    """The position of a raw tensor's quantisation table in the file and (position, elements,
    element bytes) of its vectors: positions tell a table or vector shared by several tensors
    (the writer writes equal ones once) from equal copies. (-1, []): none."""
    q = tensor.Quantization()
    if q is None:
        return -1, []
    out = []
    for field_offset, size in _QPARAM_FIELDS:
        o = q._tab.Offset(field_offset)
        if o:
            count = q._tab.VectorLen(o)
            if count:
                out.append((q._tab.Vector(o), count, size))
    return q._tab.Pos, out


def byte_breakdown(source: bytes | str | Path) -> ByteBreakdown:
    """Account for every byte of a .tflite file (bytes or a path); see `ByteBreakdown`."""
    from sdk.converters.tflite.schema import schema

    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    out = ByteBreakdown(total=len(data))

    def add(part: str, n: int, key: dict[str, int] | None = None) -> None:
        target = out.parts if key is None else key
        target[part] = target.get(part, 0) + n

    root = schema.Model.GetRootAsModel(data, 0)
    stored: set[int] = set()  # quantisation tables and vectors counted
    seen: dict[bytes, int] = {}
    for gi, g in enumerate(m.subgraphs or []):
        role: dict[int, str] = {}
        for op in g.operators or []:
            code = m.operatorCodes[op.opcodeIndex]
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) \
                else (code.customCode or "")
            op_type = custom or names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "")
            weighted = op_type in _WEIGHTED or custom.startswith("EDGE_")
            inputs = [int(i) for i in (op.inputs if op.inputs is not None else [])]
            for k, i in enumerate(inputs):
                if i >= 0 and i not in role:
                    role[i] = ("weights" if k == 1 else "bias" if k == 2 else "constants") \
                        if weighted else "constants"
            if weighted and len(inputs) > 1 and inputs[1] >= 0:
                w = g.tensors[inputs[1]]
                shape = [int(s) for s in (w.shape if w.shape is not None else [])]
                n = 1
                for s in shape:
                    n *= s
                out.weights += n
                axis = 3 if op_type in ("DEPTHWISE_CONV_2D", "EDGE_DWCONV_INT2") else 0
                out.channels += shape[axis] if shape else 0
        for i, t in enumerate(g.tensors or []):
            add("tensor names", len(t.name or b""))
            buf = m.buffers[t.buffer].data if t.buffer < len(m.buffers) else None
            n = 0 if buf is None else len(buf)
            r = role.get(i, "constants")
            if n:
                raw = bytes(buf)
                if raw in seen:
                    out.duplicate_bytes += n
                seen[raw] = i
                add(f"weights {types.get(t.type, t.type)}" if r == "weights" else r, n)
            table, vectors = _qparam_vectors(root.Subgraphs(gi).Tensors(i))
            if vectors and table not in stored:  # each stored table and vector once
                stored.add(table)
                what = r if n else "activations"
                add(what, max(count for _, count, _ in vectors), out.qparam_entries)
                add(f"qparams {what}", sum(count * size for pos, count, size in vectors
                                           if pos not in stored))
                stored.update(pos for pos, _, _ in vectors)
    for md in m.metadata or []:
        buf = m.buffers[md.buffer].data
        add("metadata", 0 if buf is None else len(buf))
    add("tables and alignment", len(data) - sum(out.parts.values()))
    return out


def floor_lines(rows: Iterable[tuple[str, ByteBreakdown]]) -> list[str]:
    """Markdown table rows: file, total, weight codes, qparams, biases, the rest."""
    out = []
    for label, b in rows:
        w = sum(v for k, v in b.parts.items() if k.startswith("weights "))
        qp = sum(v for k, v in b.parts.items() if k.startswith("qparams "))
        rest = b.total - w - qp - b.parts.get("bias", 0)
        out.append(f"| {label} | {b.total:,} | {w:,} | {qp:,} | {b.parts.get('bias', 0):,} | "
                   f"{rest:,} |")
    return out


__all__ = ["BIAS_SCALE_FREE_OPS", "QPARAM_BYTES", "ByteBreakdown", "byte_breakdown",
           "compact_bias_scales", "floor_lines"]
