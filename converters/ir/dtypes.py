"""Element types of IR tensors.

The names and numbers follow TFLite's `TensorType` so that a .tflite file maps one to one; the
`.edge` format uses the same numbering. Sub-byte types (INT4, INT2, UINT4) are held *unpacked* in
the IR, one value per int8/uint8 element; writers pack them.
"""

from __future__ import annotations

import enum

import numpy as np


class DType(enum.IntEnum):
    FLOAT32 = 0
    FLOAT16 = 1
    INT32 = 2
    UINT8 = 3
    INT64 = 4
    STRING = 5
    BOOL = 6
    INT16 = 7
    COMPLEX64 = 8
    INT8 = 9
    FLOAT64 = 10
    COMPLEX128 = 11
    UINT64 = 12
    RESOURCE = 13
    VARIANT = 14
    UINT32 = 15
    UINT16 = 16
    INT4 = 17
    BFLOAT16 = 18
    INT2 = 19
    UINT4 = 20

    @property
    def bits(self) -> int:
        """Storage bits per element (0 for types without a fixed size)."""
        return _BITS.get(self, 0)

    @property
    def is_sub_byte(self) -> bool:
        return self in (DType.INT4, DType.INT2, DType.UINT4)

    @property
    def is_float(self) -> bool:
        return self in (DType.FLOAT32, DType.FLOAT16, DType.FLOAT64, DType.BFLOAT16)

    @property
    def is_integer(self) -> bool:
        return self.value_range is not None

    @property
    def value_range(self) -> tuple[int, int] | None:
        """(min, max) of an integer type; None for non-integer types."""
        return _RANGES.get(self)

    @property
    def numpy(self) -> np.dtype:
        """The numpy dtype the IR uses to hold values of this type (unpacked for sub-byte)."""
        try:
            return np.dtype(_NUMPY[self])
        except KeyError:
            raise TypeError(f"tensor type {self.name} has no numpy representation") from None

    @classmethod
    def from_numpy(cls, dtype: np.dtype | type) -> DType:
        dt = np.dtype(dtype)
        for member, name in _NUMPY.items():
            if member.is_sub_byte or member is DType.BFLOAT16:
                continue
            if np.dtype(name) == dt:
                return member
        raise TypeError(f"numpy dtype {dt} has no IR tensor type")


_NUMPY: dict[DType, str] = {
    DType.FLOAT32: "float32",
    DType.FLOAT16: "float16",
    DType.FLOAT64: "float64",
    DType.INT64: "int64",
    DType.INT32: "int32",
    DType.INT16: "int16",
    DType.INT8: "int8",
    DType.UINT8: "uint8",
    DType.UINT16: "uint16",
    DType.UINT32: "uint32",
    DType.UINT64: "uint64",
    DType.BOOL: "bool",
    DType.COMPLEX64: "complex64",
    DType.COMPLEX128: "complex128",
    DType.INT4: "int8",
    DType.INT2: "int8",
    DType.UINT4: "uint8",
    DType.BFLOAT16: "uint16",  # raw bits
}

_BITS: dict[DType, int] = {
    DType.FLOAT32: 32, DType.FLOAT16: 16, DType.FLOAT64: 64, DType.BFLOAT16: 16,
    DType.INT64: 64, DType.INT32: 32, DType.INT16: 16, DType.INT8: 8, DType.UINT8: 8,
    DType.UINT16: 16, DType.UINT32: 32, DType.UINT64: 64, DType.BOOL: 8,
    DType.COMPLEX64: 64, DType.COMPLEX128: 128, DType.INT4: 4, DType.UINT4: 4, DType.INT2: 2,
}

_RANGES: dict[DType, tuple[int, int]] = {
    DType.INT64: (-(2**63), 2**63 - 1),
    DType.INT32: (-(2**31), 2**31 - 1),
    DType.INT16: (-(2**15), 2**15 - 1),
    DType.INT8: (-128, 127),
    DType.UINT8: (0, 255),
    DType.UINT16: (0, 2**16 - 1),
    DType.UINT32: (0, 2**32 - 1),
    DType.UINT64: (0, 2**64 - 1),
    DType.INT4: (-8, 7),
    DType.UINT4: (0, 15),
    DType.INT2: (-2, 1),
}
