"""Sub-byte element packing as TFLite stores INT4, UINT4 and INT2 tensors.

INT4/UINT4: two values per byte, the first in the low nibble (element 2i -> bits 0-3, element
2i+1 -> bits 4-7). INT2: four values per byte, the first in the lowest two bits. A trailing
partial byte is zero-padded. Values are flattened in row-major order.
"""

from __future__ import annotations

import numpy as np


def pack(values: np.ndarray, bits: int) -> bytes:
    """Pack signed or unsigned integers of `bits` (2 or 4) bits each, row-major."""
    if bits not in (2, 4):
        raise ValueError(f"can only pack 2- or 4-bit values, not {bits}")
    flat = np.asarray(values).reshape(-1).astype(np.int16)
    per_byte = 8 // bits
    mask = (1 << bits) - 1
    pad = (-flat.size) % per_byte
    codes = (np.concatenate([flat, np.zeros(pad, np.int16)]) & mask).astype(np.uint8)
    codes = codes.reshape(-1, per_byte)
    out = np.zeros(codes.shape[0], np.uint8)
    for i in range(per_byte):
        out |= codes[:, i] << np.uint8(i * bits)
    return out.tobytes()


def unpack(data: bytes | np.ndarray, count: int, bits: int, signed: bool) -> np.ndarray:
    """Inverse of `pack`: `count` values as int8 (signed) or uint8 (unsigned)."""
    if bits not in (2, 4):
        raise ValueError(f"can only unpack 2- or 4-bit values, not {bits}")
    raw = np.frombuffer(bytes(data), np.uint8)
    per_byte = 8 // bits
    need = (count + per_byte - 1) // per_byte
    if raw.size < need:
        raise ValueError(f"{count} {bits}-bit values need {need} bytes, got {raw.size}")
    mask = np.uint8((1 << bits) - 1)
    codes = np.stack([(raw[:need] >> np.uint8(i * bits)) & mask for i in range(per_byte)], axis=1)
    codes = codes.reshape(-1)[:count]
    if not signed:
        return codes.astype(np.uint8)
    values = codes.astype(np.int8)
    return np.where(values >= (1 << (bits - 1)), values - (1 << bits), values).astype(np.int8)


def packed_size(count: int, bits: int) -> int:
    return (count * bits + 7) // 8
