"""TFLite sparse tensors: densify at load.

A .tflite tensor with `sparsity` stores only its non-zero values (TensorFlow's sparsity format,
the one `DENSIFY` reads): `traversal_order` lists the dimensions in storage order, the original
ones (0..n-1) and then the block dimensions (n..n+k-1) for the k dimensions of `block_map`;
`dim_metadata[i]` describes the i-th traversed dimension, DENSE (`dense_size` entries) or
SPARSE_CSR (`array_segments` / `array_indices`, int32, uint16 or uint8 vectors: the entries of
row p of the level above are `array_indices[array_segments[p]:array_segments[p + 1]]`). The
buffer holds the stored values in traversal order.

`densify` rebuilds the dense array (what TFLite's `FormatConverter::SparseToDense` computes),
checking everything against the tensor's declared shape and the buffer's size: a dense size that
disagrees with the shape, segments that decrease or overrun the indices, an index outside its
dimension, or a value count that differs from the buffer's is a `ModelFormatError`. Work and
memory are bounded by the dense tensor's size, which the reader charges to its load budget
before calling. `fold_densify` then removes the DENSIFY ops that read such constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sdk.base.errors import ModelFormatError
from sdk.converters.ir import Graph
from sdk.converters.tflite.schema import schema

DENSE = int(schema.DimensionType.DENSE)
SPARSE_CSR = int(schema.DimensionType.SPARSE_CSR)


@dataclass(frozen=True)
class Level:
    """One traversed dimension: its extent and, for SPARSE_CSR, its segments and indices."""

    dim: int
    size: int
    segments: np.ndarray | None = None
    indices: np.ndarray | None = None


def _vector(value: Any) -> np.ndarray | None:
    values = getattr(value, "values", None)
    if values is None:
        return None
    return np.asarray(values, dtype=np.int64).reshape(-1)


def levels(sparsity: Any, shape: tuple[int, ...], what: str, path: str) -> tuple[
        list[Level], list[int], list[int]]:
    """(levels in traversal order, block_map, block sizes) of a `SparsityParametersT`,
    checked against the dense `shape`."""

    def bad(message: str) -> ModelFormatError:
        return ModelFormatError(f"{what}: sparsity {message}", path=path)

    rank = len(shape)
    order = [int(d) for d in (sparsity.traversalOrder if sparsity.traversalOrder is not None
                              else [])]
    block_map = [int(d) for d in (sparsity.blockMap if sparsity.blockMap is not None else [])]
    metadata = list(sparsity.dimMetadata or [])
    total = rank + len(block_map)
    if sorted(order) != list(range(total)):
        raise bad(f"traversal_order {order} is not a permutation of 0..{total - 1} "
                  f"(rank {rank} + {len(block_map)} block dimensions)")
    if len(metadata) != total:
        raise bad(f"has {len(metadata)} dim_metadata entries, traversal needs {total}")
    if len(set(block_map)) != len(block_map) or any(not 0 <= d < rank for d in block_map):
        raise bad(f"block_map {block_map} names dimensions outside 0..{rank - 1} or twice")
    if any(d >= rank for d in order[:rank]):
        raise bad(f"traversal_order {order} puts a block dimension before an original one")
    # block sizes: the dense_size of each block dimension's metadata entry
    block_sizes = []
    for j in range(len(block_map)):
        meta = metadata[order.index(rank + j)]
        size = int(meta.denseSize)
        if size <= 0 or shape[block_map[j]] % size:
            raise bad(f"block size {size} does not divide dimension {block_map[j]} "
                      f"({shape[block_map[j]]})")
        block_sizes.append(size)
    blocked = list(shape)
    for j, d in enumerate(block_map):
        blocked[d] //= block_sizes[j]
    out = []
    for level, (dim, meta) in enumerate(zip(order, metadata, strict=True)):
        extent = blocked[dim] if dim < rank else block_sizes[dim - rank]
        fmt = int(meta.format)
        if fmt == DENSE:
            if int(meta.denseSize) != extent:
                raise bad(f"level {level} (dimension {dim}) is DENSE of size "
                          f"{int(meta.denseSize)}, but the shape {list(shape)} gives {extent}")
            out.append(Level(dim, extent))
        elif fmt == SPARSE_CSR:
            segments, indices = _vector(meta.arraySegments), _vector(meta.arrayIndices)
            if segments is None or indices is None:
                raise bad(f"level {level} (dimension {dim}) is SPARSE_CSR without "
                          "array_segments / array_indices")
            if segments.size == 0 or segments[0] != 0 or np.any(np.diff(segments) < 0) \
                    or segments[-1] > indices.size:
                raise bad(f"level {level}: array_segments must start at 0, never decrease and "
                          f"end at most at the {indices.size} indices")
            if indices.size and (indices.min() < 0 or indices.max() >= extent):
                raise bad(f"level {level}: array_indices hold {int(indices.min())}.."
                          f"{int(indices.max())}, outside dimension {dim} of size {extent}")
            out.append(Level(dim, extent, segments, indices))
        else:
            raise bad(f"level {level} has unknown dimension format {fmt}")
    return out, block_map, block_sizes


def densify(sparsity: Any, shape: tuple[int, ...], values: np.ndarray, what: str,
            path: str) -> np.ndarray:
    """The dense array of `shape` whose non-zero entries `values` (1-D, traversal order)
    `sparsity` describes."""
    lvls, block_map, block_sizes = levels(sparsity, shape, what, path)
    rank = len(shape)
    dense_count = math.prod(shape)
    # rows: one per position reached so far; prev = its index in the level's numbering
    prev = np.zeros(1, np.int64)
    coords: list[np.ndarray] = []
    for li, lv in enumerate(lvls):
        if lv.segments is None:
            if prev.size * lv.size > dense_count:
                raise ModelFormatError(f"{what}: sparsity level {li} reaches more positions "
                                       f"than the {dense_count} of shape {list(shape)}",
                                       path=path)
            idx = np.tile(np.arange(lv.size, dtype=np.int64), prev.size)
            coords = [np.repeat(c, lv.size) for c in coords]
            prev = np.repeat(prev, lv.size) * lv.size + idx
            coords.append(idx)
            continue
        assert lv.indices is not None
        if prev.size and int(prev.max()) + 1 >= lv.segments.size:
            raise ModelFormatError(
                f"{what}: sparsity level {li} has {lv.segments.size - 1} segments, but the "
                f"level above reaches position {int(prev.max())}", path=path)
        starts, ends = lv.segments[prev], lv.segments[prev + 1]
        counts = ends - starts
        n = int(counts.sum())
        base = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
        pos = base + np.arange(n, dtype=np.int64)
        coords = [np.repeat(c, counts) for c in coords]
        coords.append(lv.indices[pos])
        prev = pos
    if prev.size != values.size:
        raise ModelFormatError(
            f"{what}: sparsity describes {prev.size} stored values, but the buffer holds "
            f"{values.size}", path=path)
    orig = [np.zeros(prev.size, np.int64) for _ in range(rank)]
    order_dims = [lv.dim for lv in lvls]
    for li, dim in enumerate(order_dims):
        if dim < rank:
            orig[dim] = coords[li]
    for li, dim in enumerate(order_dims):
        if dim >= rank:
            j = dim - rank
            d = block_map[j]
            orig[d] = orig[d] * block_sizes[j] + coords[li]
    flat = np.ravel_multi_index(tuple(orig), shape) if rank else np.zeros(prev.size, np.int64)
    dense = np.zeros(dense_count, dtype=values.dtype)
    dense[flat] = values
    return dense.reshape(shape)


def fold_densify(graph: Graph) -> int:
    """Remove DENSIFY ops whose input is a constant the reader already densified (their output
    is that constant). Returns how many were folded."""
    keep = []
    dropped: set[int] = set()
    folded = 0
    for op in graph.operators:
        src = op.inputs[0] if op.type == "DENSIFY" and len(op.inputs) == 1 \
            and len(op.outputs) == 1 else None
        if src is None or not src.is_constant or not src.format_extras.get("tflite_densified"):
            keep.append(op)
            continue
        out = op.outputs[0]
        if tuple(out.shape) != tuple(src.shape) or out.dtype is not src.dtype:
            keep.append(op)
            continue
        graph.replace_uses(out, src)
        dropped.add(id(out))
        folded += 1
    if folded:  # only the DENSIFY ops and their outputs go (no prune: stateful ops stay)
        graph.operators = keep
        graph.tensors = [t for t in graph.tensors if id(t) not in dropped]
    return folded


__all__ = ["DENSE", "SPARSE_CSR", "Level", "densify", "fold_densify", "levels"]
