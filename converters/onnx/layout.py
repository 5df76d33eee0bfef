"""Axis permutations: how an IR tensor's dimensions relate to the ONNX tensor it holds.

Every ONNX value is held in the IR as `transpose(onnx_value, perm)`: IR dimension `i` is ONNX
dimension `perm[i]`. Convolutions want channels-last, so a 4-D NCHW activation lives as
`perm = (0, 2, 3, 1)` (NHWC); most other ops do not care and keep whatever they receive.
"""

from __future__ import annotations

from collections.abc import Sequence

Perm = tuple[int, ...]


def identity(rank: int) -> Perm:
    return tuple(range(rank))


def channels_last(rank: int) -> Perm:
    """(0, 2, 3, ..., 1): NCHW -> NHWC, NCW -> NWC, NCDHW -> NDHWC; identity below rank 3."""
    if rank < 3:
        return identity(rank)
    return (0, *range(2, rank), 1)


def inverse(perm: Sequence[int]) -> Perm:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def relative(src: Perm, dst: Perm) -> Perm:
    """The TRANSPOSE perm that turns a tensor held in `src` order into `dst` order."""
    inv = inverse(src)
    return tuple(inv[d] for d in dst)


def permute(shape: Sequence[int], perm: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(shape[p]) for p in perm)


def ir_axis(onnx_axis: int, perm: Perm) -> int:
    """Where ONNX axis `onnx_axis` sits in a tensor held in `perm` order."""
    return inverse(perm)[onnx_axis]


def is_identity(perm: Sequence[int]) -> bool:
    return all(i == p for i, p in enumerate(perm))


def moves_only_unit_dims(shape: Sequence[int], perm: Sequence[int]) -> bool:
    """True when `transpose(x, perm)` for `x` of `shape` keeps the memory order: the dimensions
    larger than 1 stay in the same relative order (the transpose is then a RESHAPE)."""
    big = [p for p in perm if shape[p] != 1]
    return big == sorted(big)


def drop_axes(perm: Perm, removed: Sequence[int]) -> Perm:
    """The perm of a tensor after the ONNX axes `removed` disappear (squeeze, reduce without
    keepdims): remaining axes keep their IR order and are renumbered."""
    gone = set(removed)
    kept = [p for p in perm if p not in gone]
    rank_map = {a: i for i, a in enumerate(sorted(kept))}
    return tuple(rank_map[p] for p in kept)


def reshape_perm(in_shape: Sequence[int], perm: Perm,
                 out_shape: Sequence[int]) -> Perm | None:
    """A perm in which `reshape(onnx_in, out_shape)` can be done as a plain RESHAPE of the IR
    tensor held in `perm` order, or None when the reshape needs the ONNX element order.

    The reshape splits and merges groups of adjacent dimensions. It is layout-neutral when the
    input axes of every group sit next to each other, in order, in the IR tensor (unit
    dimensions are free to move). The output then keeps the groups in their IR order.
    """
    in_big = [a for a in range(len(in_shape)) if in_shape[a] != 1]
    out_big = [a for a in range(len(out_shape)) if out_shape[a] != 1]
    groups: list[tuple[list[int], list[int]]] = []
    i = j = 0
    while i < len(in_big):
        if j >= len(out_big):
            return None
        gin, gout = [in_big[i]], [out_big[j]]
        pin, pout = int(in_shape[in_big[i]]), int(out_shape[out_big[j]])
        i, j = i + 1, j + 1
        while pin != pout:
            if pin < pout:
                if i >= len(in_big):
                    return None
                pin *= int(in_shape[in_big[i]])
                gin.append(in_big[i])
                i += 1
            else:
                if j >= len(out_big):
                    return None
                pout *= int(out_shape[out_big[j]])
                gout.append(out_big[j])
                j += 1
        groups.append((gin, gout))
    if j != len(out_big):
        return None
    position = {a: k for k, a in enumerate(p for p in perm if in_shape[p] != 1)}
    for gin, _ in groups:
        places = [position[a] for a in gin]
        if places != list(range(places[0], places[0] + len(places))):
            return None
    groups.sort(key=lambda g: position[g[0][0]])
    order: list[int] = [a for _, gout in groups for a in gout]
    for u in (a for a in range(len(out_shape)) if out_shape[a] == 1):
        at = sum(1 for a in order if a < u)
        order.insert(at, u)
    return tuple(order)
