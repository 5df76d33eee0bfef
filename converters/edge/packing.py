"""How constant tensors are stored in a .edge buffer (the `Storage` enum of the schema).

PLAIN: row-major, little-endian; sub-byte types packed LSB first exactly as TFLite packs INT4 and
INT2 (shared with `sdk.converters.tflite.packing`), TERNARY as 2-bit two's-complement fields.
BASE3 (TERNARY only): five values per byte, byte = sum_i (v_i + 1) * 3**i, 1.6 bits per value.
"""

from __future__ import annotations

import numpy as np

from sdk.converters.edge.schema import DTYPE_BITS, DTYPE_RANGES
from sdk.converters.tflite import packing as tflite_packing

_POW3 = np.array([1, 3, 9, 27, 81], np.uint8)


class Base3Error(ValueError):
    """A BASE3 byte above 242: `index` is its position in the buffer."""

    def __init__(self, index: int, value: int):
        super().__init__(f"BASE3 byte {index} of the buffer is {value}, above 242 (3**5 - 1): "
                         "not five base-3 digits")
        self.index = index


def pack_base3(values: np.ndarray) -> bytes:
    """Ternary values {-1, 0, 1} -> 5 per byte in base 3."""
    flat = np.asarray(values).reshape(-1).astype(np.int16)
    if flat.size and (flat.min() < -1 or flat.max() > 1):
        raise ValueError("base-3 storage holds only the values -1, 0 and +1")
    pad = (-flat.size) % 5
    digits = (np.concatenate([flat, np.zeros(pad, np.int16)]) + 1).astype(np.uint8)
    return (digits.reshape(-1, 5) * _POW3).sum(axis=1, dtype=np.uint16).astype(np.uint8).tobytes()


def unpack_base3(data: bytes | np.ndarray, count: int) -> np.ndarray:
    """Inverse of `pack_base3`: `count` values as int8."""
    raw = np.frombuffer(bytes(data), np.uint8)
    need = (count + 4) // 5
    if raw.size < need:
        raise ValueError(f"{count} base-3 values need {need} bytes, got {raw.size}")
    bad = np.flatnonzero(raw[:need] > 242)
    if bad.size:
        raise Base3Error(int(bad[0]), int(raw[bad[0]]))
    digits = (raw[:need, None] // _POW3[None, :]) % 3
    return (digits.reshape(-1)[:count].astype(np.int8) - 1).astype(np.int8)


def packed_size(dtype: str, storage: str, count: int) -> int:
    """Bytes a buffer must hold for `count` values of `dtype` in `storage`."""
    if storage == "BASE3":
        return (count + 4) // 5
    return (count * DTYPE_BITS[dtype] + 7) // 8


def pack(values: np.ndarray, dtype: str, storage: str = "PLAIN") -> bytes:
    """Encode `values` (held as the IR holds them: sub-byte types unpacked) for a buffer."""
    arr = np.asarray(values)
    if dtype in DTYPE_RANGES and arr.size:
        lo, hi = DTYPE_RANGES[dtype]
        if np.issubdtype(arr.dtype, np.integer) and (arr.min() < lo or arr.max() > hi):
            raise ValueError(f"values outside the {dtype} range [{lo}, {hi}]")
    if storage == "BASE3":
        if dtype != "TERNARY":
            raise ValueError(f"BASE3 storage is for TERNARY tensors, not {dtype}")
        return pack_base3(arr)
    if storage != "PLAIN":
        raise ValueError(f"unknown storage {storage!r}")
    bits = DTYPE_BITS[dtype]
    if bits < 8:
        return tflite_packing.pack(arr, bits)
    numpy_type = {"FLOAT32": "<f4", "FLOAT16": "<f2", "INT32": "<i4", "UINT8": "u1",
                  "INT64": "<i8", "BOOL": "u1", "INT16": "<i2", "INT8": "i1"}[dtype]
    return np.ascontiguousarray(arr.astype(numpy_type, copy=False)).tobytes()


def unpack(data: bytes, dtype: str, storage: str, shape: tuple[int, ...]) -> np.ndarray:
    """Decode a buffer into an array of `shape` (sub-byte types as int8/uint8 values)."""
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    expected = packed_size(dtype, storage, count)
    if len(data) != expected:
        raise ValueError(f"buffer holds {len(data)} bytes, but {count} {dtype} values in "
                         f"{storage} storage need {expected}")
    if storage == "BASE3":
        return unpack_base3(data, count).reshape(shape)
    bits = DTYPE_BITS[dtype]
    if bits < 8:
        signed = dtype != "UINT4"
        return tflite_packing.unpack(data, count, bits, signed).reshape(shape)
    numpy_type = {"FLOAT32": "<f4", "FLOAT16": "<f2", "INT32": "<i4", "UINT8": "u1",
                  "INT64": "<i8", "BOOL": "?", "INT16": "<i2", "INT8": "i1"}[dtype]
    return np.frombuffer(data, numpy_type).astype(np.dtype(numpy_type).newbyteorder("=")) \
        .reshape(shape)
