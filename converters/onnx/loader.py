"""Open an ONNX model (path, bytes or ModelProto) and check it is whole before converting it.

Everything that can go wrong in the `onnx`/protobuf libraries while reading is caught here and
re-raised as `ModelFormatError` naming the file, so callers never see a DecodeError from deep
inside protobuf. A truncated file usually fails to decode; one cut exactly at a field boundary
decodes into a model missing its graph or its opset, which we also report as truncated.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sdk.base.errors import ConversionError, ModelFormatError
from sdk.base.lazy import require
from sdk.base.limits import LoadBudget, default_budget
from sdk.converters.input_shapes import given_shapes
from sdk.converters.onnx.external import (
    has_external_data,
    is_external,
    load_external_data,
    tensor_nbytes,
)

log = logging.getLogger("sdk.converters.onnx")

#: What `read_onnx` accepts as `input_shapes`: {input name (or None for the only input): shape};
#: also a list of shapes in input order, or one shape for a model with one input
InputShapes = (Mapping[str | None, Sequence[int]] | Sequence[Sequence[int]] | Sequence[int])


def import_onnx() -> Any:
    """The `onnx` module, or an ImportError that says which extra to install."""
    return require("onnx", "reading ONNX models needs the onnx package: pip install "
                           "'edgesdk[onnx]'")


def load_model(source: Any, external_data_dir: str | os.PathLike[str] | None = None,
               budget: LoadBudget | None = None) -> tuple[Any, str, int]:
    """(ModelProto, label, bytes loaded) for a path, the file's bytes or a ModelProto.

    External tensor data is read from `external_data_dir` (default: the model file's folder;
    none for bytes and ModelProto input), staying inside it (see `external`)."""
    onnx = import_onnx()
    budget = budget or default_budget()
    base_dir = Path(external_data_dir) if external_data_dir is not None else None
    if isinstance(source, onnx.ModelProto):
        model, label = source, "<ModelProto>"
        size = model.ByteSize()
        if has_external_data(model):
            model = onnx.ModelProto()
            model.CopyFrom(source)  # never change the caller's proto
            size += load_external_data(model, base_dir, label, budget.for_file(size))
        check_structure(model, label)
        return model, label, size
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, label = bytes(source), "<bytes>"
    elif isinstance(source, (str, os.PathLike)):
        label = str(source)
        try:
            data = Path(label).read_bytes()
        except OSError as exc:
            raise ModelFormatError(f"cannot read: {exc.strerror}", path=label) from exc
        if base_dir is None:
            base_dir = Path(label).parent
    else:
        raise TypeError(f"read_onnx takes a path, bytes or an onnx.ModelProto, not "
                        f"{type(source).__name__}")
    model = parse_bytes(data, label)
    size = len(data)
    if has_external_data(model):
        size += load_external_data(model, base_dir, label, budget.for_file(size))
    check_structure(model, label)
    return model, label, size


def parse_bytes(data: bytes, label: str) -> Any:
    onnx = import_onnx()
    from google.protobuf.message import DecodeError

    if not data:
        raise ModelFormatError("file is empty", path=label)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError, TypeError) as exc:
        raise ModelFormatError(
            f"not an ONNX model, or a truncated one ({len(data)} bytes do not decode as an "
            f"ONNX ModelProto: {exc})", path=label) from exc
    return model


def check_structure(model: Any, label: str) -> None:
    """The checks a converter needs (the full `onnx.checker` is stricter than real exporters):
    a graph with nodes, an opset, and every node input defined before it is used."""
    if not model.HasField("graph"):
        raise ModelFormatError("the model has no graph (not an ONNX model, or truncated)",
                               path=label)
    g = model.graph
    if not any(o.domain in ("", "ai.onnx") for o in model.opset_import):
        raise ModelFormatError("the model declares no default-domain opset_import "
                               "(truncated file?)", path=label)
    if not g.output:
        raise ModelFormatError("the graph has no outputs (truncated file?)", path=label)
    defined = {i.name for i in g.input} | {t.name for t in g.initializer} | {""}
    produced_by: dict[str, str] = {}
    for node in g.node:
        for out in node.output:
            if out:
                produced_by[out] = node.name or node.op_type
    known = defined | set(produced_by)
    for node in g.node:
        for name in node.input:
            if name not in known:
                raise ModelFormatError(
                    f"node {node.name or node.op_type!r} ({node.op_type}) reads {name!r}, which "
                    "no node, input or initializer defines", path=label)
    for out in g.output:
        if out.name not in known:
            raise ModelFormatError(f"graph output {out.name!r} is never produced", path=label)


def initializer_arrays(model: Any, label: str,
                       budget: LoadBudget | None = None) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    budget = budget or default_budget()
    out: dict[str, np.ndarray] = {}
    total = 0
    for t in model.graph.initializer:
        if is_external(t):  # load_model reads them all; never let onnx look in the cwd
            raise ModelFormatError(f"initializer {t.name!r} still refers to external data",
                                   path=label)
        if t.data_type != TENSOR_STRING:
            total += tensor_nbytes(t, label)
            budget.check_bytes(f"the initializers (up to {t.name!r})", total, path=label)
        try:
            out[t.name] = np.asarray(numpy_helper.to_array(t))
        except Exception as exc:  # onnx raises ValueError, TypeError, KeyError, ...
            raise ModelFormatError(f"initializer {t.name!r} is corrupt: "
                                   f"{type(exc).__name__}: {exc}", path=label) from exc
    return out


#: TensorProto.STRING (strings have no fixed size per element)
TENSOR_STRING = 8
#: the largest dimension (and element count) a tensor may have: TFLite's shapes are int32
MAX_DIM = (1 << 31) - 1


def check_shape(shape: Sequence[int], what: str, label: str) -> tuple[int, ...]:
    """`shape` as ints, each dimension and the element count in [0, MAX_DIM]."""
    dims = tuple(int(d) for d in shape)
    count = 1
    for d in dims:
        count *= d
    if any(d < 0 or d > MAX_DIM for d in dims) or count > MAX_DIM:
        raise ModelFormatError(f"{what} has the shape {list(dims)}: dimensions must be "
                               f"0..{MAX_DIM} and hold at most {MAX_DIM} elements", path=label)
    return dims


def _declared_shape(value_info: Any) -> tuple[int | None, ...] | None:
    t = value_info.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    dims: list[int | None] = []
    for d in t.tensor_type.shape.dim:
        # a negative dim_value (Paddle's exporter writes -1) is a dynamic dimension, like
        # dim_param; 0 is a real size (empty tensors), as onnxruntime takes it
        dims.append(int(d.dim_value) if d.HasField("dim_value") and d.dim_value >= 0 else None)
    return tuple(dims)


def resolve_input_shapes(model: Any, initializers: dict[str, Any],
                         input_shapes: InputShapes | None, label: str
                         ) -> dict[str, tuple[int, ...]]:
    """Static shapes for the graph's real inputs (those that are not initializers).

    `input_shapes` fixes dynamic dimensions ({name: shape}; the key None names the only input).
    A dynamic batch dimension (axis 0) left open becomes 1; any other open dimension is an error
    that says how to fix it.
    """
    inputs = [i for i in model.graph.input if i.name not in initializers]
    names = [i.name for i in inputs]
    given: dict[str, tuple[int, ...]] = {}
    for key, dims in given_shapes(input_shapes, names, label, name_the_only=True):
        assert key is not None
        if any(d <= 0 for d in dims):
            raise ConversionError(f"{label}: input_shapes[{key!r}] = {dims}: every dimension "
                                  "must be a positive integer")
        given[key] = dims
    resolved: dict[str, tuple[int, ...]] = {}
    for vi in inputs:
        declared = _declared_shape(vi)
        if vi.name in given:
            dims = given[vi.name]
            if declared is not None:
                if len(declared) != len(dims):
                    raise ConversionError(
                        f"{label}: input {vi.name!r} has rank {len(declared)} "
                        f"({_fmt(declared)}), but input_shapes gives {dims}")
                for axis, (d, g) in enumerate(zip(declared, dims, strict=True)):
                    if d is not None and d != g:
                        raise ConversionError(
                            f"{label}: input {vi.name!r} has the fixed size {d} on axis {axis} "
                            f"({_fmt(declared)}), but input_shapes gives {dims}")
            resolved[vi.name] = dims
            continue
        if declared is None:
            raise ConversionError(
                f"{label}: input {vi.name!r} has no declared shape; pass "
                f"input_shapes={{{vi.name!r}: (...)}}")
        open_axes = [a for a, d in enumerate(declared) if d is None]
        if open_axes and open_axes != [0]:
            raise ConversionError(
                f"{label}: input {vi.name!r} has dynamic dimensions {_fmt(declared)} (axes "
                f"{open_axes}); fix them with input_shapes={{{vi.name!r}: "
                f"{tuple(1 if d is None else d for d in declared)}}} (or your sizes)")
        if open_axes:
            log.info("%s: input %r has a dynamic batch dimension; using 1 (pass input_shapes to "
                     "choose another)", label, vi.name)
        resolved[vi.name] = tuple(1 if d is None else d for d in declared)
    for name, dims in resolved.items():
        check_shape(dims, f"input {name!r}", label)
    return resolved


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
