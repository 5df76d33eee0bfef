"""External tensor data: tensors whose bytes live in a file beside the model.

ONNX lets a tensor say "my data is `length` bytes at `offset` in file `location`", relative to
the model's directory. A hostile model can name any file (`../../etc/shadow`, an absolute path,
a symlink out of the folder), and a model passed as bytes has no directory at all (the onnx
package then resolves against the current directory, so whatever file sits there becomes
weights). Here every external reference is resolved against one explicit base directory and must
stay inside it after symlinks are followed; sizes and offsets are checked against the file and
the load budget before anything is read. Tensors inside node attributes and subgraphs count too.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from sdk.base.errors import ModelFormatError
from sdk.base.limits import LoadBudget


@dataclass(frozen=True)
class ExternalRef:
    """Where one tensor's data lives, as the model declares it."""

    tensor: str
    location: str
    offset: int
    length: int | None


def all_tensors(model: Any) -> Iterator[Any]:
    """Every TensorProto of a model: initializers, node attributes, subgraphs, functions."""
    yield from _graph_tensors(model.graph)
    for fn in model.functions:
        for node in fn.node:
            yield from _node_tensors(node)


def _graph_tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: Any) -> Iterator[Any]:
    for attr in node.attribute:
        if attr.HasField("t"):
            yield attr.t
        yield from attr.tensors
        if attr.HasField("sparse_tensor"):
            yield attr.sparse_tensor.values
            yield attr.sparse_tensor.indices
        if attr.HasField("g"):
            yield from _graph_tensors(attr.g)
        for g in attr.graphs:
            yield from _graph_tensors(g)


def is_external(tensor: Any) -> bool:
    from onnx import TensorProto

    return tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data) > 0


def has_external_data(model: Any) -> bool:
    return any(is_external(t) for t in all_tensors(model))


def parse_ref(tensor: Any, label: str) -> ExternalRef:
    entries = {e.key: e.value for e in tensor.external_data}
    name = tensor.name or "<unnamed>"
    location = entries.get("location", "")
    if not location:
        raise ModelFormatError(f"tensor {name!r} keeps its data externally but names no "
                               "location", path=label)
    try:
        offset = int(entries.get("offset", "0"))
        length = int(entries["length"]) if "length" in entries else None
    except ValueError as exc:
        raise ModelFormatError(f"tensor {name!r}: external data offset/length are not "
                               f"integers ({entries})", path=label) from exc
    if offset < 0 or (length is not None and length < 0):
        raise ModelFormatError(f"tensor {name!r}: negative external data offset or length "
                               f"(offset {offset}, length {length})", path=label)
    return ExternalRef(name, location, offset, length)


def tensor_nbytes(tensor: Any, label: str) -> int:
    """The bytes a tensor's dims and element type need (raises for types with no fixed size)."""
    from onnx import TensorProto, helper

    name = tensor.name or "<unnamed>"
    if any(d < 0 for d in tensor.dims):
        raise ModelFormatError(f"tensor {name!r} has negative dimensions {list(tensor.dims)}",
                               path=label)
    if tensor.data_type == TensorProto.STRING:
        raise ModelFormatError(f"tensor {name!r}: string tensors cannot have external data",
                               path=label)
    try:
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"tensor {name!r} has an unknown element type "
                               f"{tensor.data_type}", path=label) from exc
    count = 1
    for d in tensor.dims:
        count *= int(d)
    per_byte = {getattr(TensorProto, n, -1): k for n, k in (
        ("INT4", 2), ("UINT4", 2), ("FLOAT4E2M1", 2), ("INT2", 4), ("UINT2", 4))}
    if tensor.data_type in per_byte:
        k = per_byte[tensor.data_type]
        return (count + k - 1) // k
    return count * itemsize


def resolve_location(base_dir: Path, ref: ExternalRef, label: str) -> Path:
    """The file `ref` names, which must lie inside `base_dir` once symlinks are resolved."""
    loc = ref.location
    bad = "\x00" in loc or PurePosixPath(loc).is_absolute() or PureWindowsPath(loc).is_absolute() \
        or bool(PureWindowsPath(loc).drive) or loc.startswith(("/", "\\"))
    parts = PureWindowsPath(loc).parts  # splits on both / and \
    if bad or ".." in parts:
        raise ModelFormatError(f"tensor {ref.tensor!r}: external data location {loc!r} is not a "
                               "plain relative path inside the model's directory", path=label)
    try:
        base = base_dir.resolve(strict=True)
        target = (base / loc).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise ModelFormatError(f"tensor {ref.tensor!r}: cannot open external data file {loc!r} "
                               f"in {base_dir}: {exc}", path=label) from exc
    if not target.is_relative_to(base):
        raise ModelFormatError(f"tensor {ref.tensor!r}: external data location {loc!r} resolves "
                               f"to {target}, outside {base} (symlink out of the model's "
                               "directory)", path=label)
    return target


def load_external_data(model: Any, base_dir: Path | None, label: str,
                       budget: LoadBudget) -> int:
    """Read every external tensor of `model` into the model itself (in place), checked.
    Returns the bytes read. Without `base_dir` any external tensor is an error."""
    from onnx import TensorProto

    total = 0
    for tensor in all_tensors(model):
        if not is_external(tensor):
            continue
        ref = parse_ref(tensor, label)
        if base_dir is None:
            raise ModelFormatError(
                f"tensor {ref.tensor!r} keeps its data in the external file {ref.location!r}, "
                "but the model was given as bytes (or a ModelProto) with no directory to find "
                "it in: pass external_data_dir=<the model's folder> (it is never looked up in "
                "the current directory)", path=label)
        need = tensor_nbytes(tensor, label)
        if ref.length is not None and ref.length != need:
            raise ModelFormatError(f"tensor {ref.tensor!r}: external data length {ref.length} "
                                   f"does not match its shape and type ({need} bytes)",
                                   path=label)
        total += need
        budget.check_bytes(f"external data (tensor {ref.tensor!r} brings it to)", total,
                           path=label)
        path = resolve_location(base_dir, ref, label)
        try:
            # no blocking on a FIFO, and no symlink swapped in since the path was resolved
            flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
            with os.fdopen(os.open(path, flags), "rb") as f:
                info = os.fstat(f.fileno())
                if not stat.S_ISREG(info.st_mode):
                    raise ModelFormatError(f"tensor {ref.tensor!r}: external data "
                                           f"{ref.location!r} is not a regular file", path=label)
                if ref.offset + need > info.st_size:
                    raise ModelFormatError(
                        f"tensor {ref.tensor!r}: external data needs bytes {ref.offset}.."
                        f"{ref.offset + need} of {ref.location!r}, which has {info.st_size}",
                        path=label, offset=ref.offset)
                f.seek(ref.offset)
                data = f.read(need)
        except OSError as exc:
            raise ModelFormatError(f"tensor {ref.tensor!r}: cannot read external data "
                                   f"{ref.location!r}: {exc.strerror}", path=label) from exc
        if len(data) != need:
            raise ModelFormatError(f"tensor {ref.tensor!r}: external data {ref.location!r} "
                                   f"ended early ({len(data)} of {need} bytes)", path=label)
        tensor.raw_data = data
        del tensor.external_data[:]
        tensor.data_location = TensorProto.DEFAULT
    return total
