"""Names, numbers and constants of the `.edge` schema (native/schema/edge.fbs).

The flatc-generated bindings live in `schema_generated.py` (committed; `make schema` rebuilds it).
This module adds name <-> number tables and the format version this code reads and writes.
"""

from __future__ import annotations

from sdk.converters.edge import schema_generated as fb
from sdk.converters.ir import DType

FILE_IDENTIFIER = b"EDG1"
#: (major, minor) written by this version of edgesdk; readers accept any minor of a known major.
FORMAT_VERSION = (1, 1)
#: bytes every constant buffer's data is aligned to inside the file (one cache line)
BUFFER_ALIGNMENT = 64


def _enum(cls: type) -> dict[str, int]:
    return {k: v for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


DTYPES: dict[str, int] = _enum(fb.DType)
DTYPE_NAMES: dict[int, str] = {v: k for k, v in DTYPES.items()}
STORAGES: dict[str, int] = _enum(fb.Storage)
STORAGE_NAMES: dict[int, str] = {v: k for k, v in STORAGES.items()}
ACTIVATIONS: dict[str, int] = _enum(fb.Activation)
ACTIVATION_NAMES: dict[int, str] = {v: k for k, v in ACTIVATIONS.items()}
OP_TYPES: dict[str, int] = _enum(fb.OpType)
OP_NAMES: dict[int, str] = {v: k for k, v in OP_TYPES.items()}
OPTIONS: dict[str, int] = _enum(fb.OpOptions)
OPTIONS_NAMES: dict[int, str] = {v: k for k, v in OPTIONS.items()}

#: storage bits per element of each .edge dtype
DTYPE_BITS: dict[str, int] = {
    "FLOAT32": 32, "FLOAT16": 16, "INT32": 32, "UINT8": 8, "INT64": 64, "BOOL": 8, "INT16": 16,
    "INT8": 8, "INT4": 4, "INT2": 2, "UINT4": 4, "TERNARY": 2,
}
#: integer value range of each integer .edge dtype
DTYPE_RANGES: dict[str, tuple[int, int]] = {
    "INT8": (-128, 127), "UINT8": (0, 255), "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1), "INT64": (-(2**63), 2**63 - 1),
    "INT4": (-8, 7), "UINT4": (0, 15), "INT2": (-2, 1), "TERNARY": (-1, 1),
}


def edge_dtype(dtype: DType) -> str:
    """The .edge dtype name for an IR dtype (same numbering; TERNARY has no IR counterpart)."""
    name = DType(dtype).name
    if name not in DTYPES:
        raise KeyError(name)
    return name


def ir_dtype(name: str) -> DType:
    """The IR dtype that holds values of a .edge dtype (TERNARY values are held as INT2)."""
    return DType.INT2 if name == "TERNARY" else DType[name]
