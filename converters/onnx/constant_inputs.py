"""`constant_inputs`: model inputs the caller fixes to one value, folded into the graph.

Some inputs are settings, not data: silero-vad's `sr` (the sample rate, 8000 or 16000) selects
the branch of an `If` that holds the whole network. Fixed to a value, such an input becomes a
constant like an initializer of the same name: the branch condition folds, the branch is
inlined, and the converted model no longer has that input. Values are checked against the
input's declared element type and shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sdk.base.errors import ConversionError

#: What `read_onnx` / `sdk.export` accept: {input name: a value numpy can hold (a scalar, list
#: or array)}
ConstantInputs = Mapping[str, Any]


def bind(model: Any, initializers: Mapping[str, np.ndarray],
         constant_inputs: ConstantInputs | None, label: str) -> dict[str, np.ndarray]:
    """{input name: array} for `constant_inputs`, each cast to the input's declared type and
    checked against its declared shape (a scalar fills a declared shape of one element)."""
    from sdk.converters.onnx.fold import input_dtype

    if not constant_inputs:
        return {}
    if not isinstance(constant_inputs, Mapping):
        raise ConversionError(f"{label}: constant_inputs must map input names to values, not "
                              f"{type(constant_inputs).__name__}")
    declared = {vi.name: vi for vi in model.graph.input if vi.name not in initializers}
    out: dict[str, np.ndarray] = {}
    for name, value in constant_inputs.items():
        vi = declared.get(name)
        if vi is None:
            raise ConversionError(f"{label}: constant_inputs names {name!r}, which is not a "
                                  f"model input (inputs: {sorted(declared)})")
        dtype = input_dtype(vi, label)
        try:
            raw = np.asarray(value)
            arr = raw.astype(dtype)
        except (TypeError, ValueError) as exc:
            raise ConversionError(f"{label}: constant_inputs[{name!r}] = {value!r} is not a "
                                  f"{dtype} value: {exc}") from None
        if raw.dtype.kind == "f" and dtype.kind in "iub" and not np.array_equal(arr, raw):
            raise ConversionError(f"{label}: constant_inputs[{name!r}] = {value!r}: input "
                                  f"{name!r} holds {dtype}, and the value is not a whole number")
        out[name] = _shaped(arr, _declared_dims(vi), name, label)
    return out


def _declared_dims(value_info: Any) -> list[int | None] | None:
    t = value_info.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    return [int(d.dim_value) if d.HasField("dim_value") and d.dim_value >= 0 else None
            for d in t.tensor_type.shape.dim]


def _shaped(arr: np.ndarray, dims: list[int | None] | None, name: str,
            label: str) -> np.ndarray:
    if dims is None:
        return arr
    if arr.ndim != len(dims) and arr.size == 1 and all(d in (1, None) for d in dims):
        return arr.reshape((1,) * len(dims))  # 16000 for an input declared [1]
    if arr.ndim != len(dims) or any(d is not None and d != s
                                    for d, s in zip(dims, arr.shape, strict=True)):
        shown = "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
        raise ConversionError(f"{label}: constant_inputs[{name!r}] has the shape "
                              f"{list(arr.shape)}, but the input is declared {shown}")
    return arr


def check_disjoint(constant_inputs: Mapping[str, Any], input_shapes: Any, label: str) -> None:
    """An input is either fixed to a value or given a shape, not both."""
    if isinstance(input_shapes, Mapping):
        both = sorted(k for k in input_shapes if k in constant_inputs)
        if both:
            raise ConversionError(f"{label}: {both} are in both constant_inputs and "
                                  "input_shapes; a constant input takes its value's shape")


__all__ = ["ConstantInputs", "bind", "check_disjoint"]
