"""Attribute checks made before a node reaches the onnx package.

onnx's C++ shape inference trusts attribute values: DepthToSpace with blocksize 2^32 squares it
into 0 and divides by it (SIGFPE: the process dies), LayerNormalization with axis 2^31 indexes
far outside the shape (SIGSEGV). The reference evaluator and our own lowering trust them too
(Conv with group 2^30 would emit 2^30 convolutions). Every node is checked here first, with the
shapes known so far; a bad value is a `ModelFormatError` naming the node, the attribute and
the range it must lie in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sdk.base.errors import ModelFormatError

INT32_MAX = (1 << 31) - 1
#: DepthToSpace / SpaceToDepth: blocksize^2 must not overflow, and no real model needs more
MAX_BLOCKSIZE = 1 << 12
#: attributes that are sizes, strides or counts: each value in [1, INT32_MAX]
_POSITIVE = frozenset({"kernel_shape", "strides", "dilations", "group", "blocksize",
                       "num_outputs"})
#: attributes that are lists of integers wherever ONNX uses them
_LISTS = ("kernel_shape", "strides", "dilations", "pads", "output_padding", "output_shape",
          "perm")
#: attributes that are one integer wherever ONNX uses them
_SCALARS = ("group", "blocksize", "start", "end", "keepdims", "count_include_pad", "ceil_mode",
            "transA", "transB", "select_last_index", "noop_with_empty_axes", "num_outputs",
            "to", "training_mode")
#: attributes that are paddings or lengths: each value in [-INT32_MAX, INT32_MAX]
_BOUNDED = frozenset({"pads", "output_padding", "output_shape", "size", "seed", "k",
                      "new_axis", "batch_dims", "keepdims", "count_include_pad", "ceil_mode",
                      "storage_order", "center_point_box", "sample_size", "spatial_scale"})


def check_node(node: Any, input_shapes: Sequence[tuple[int, ...] | None], label: str) -> None:
    """Raise ModelFormatError if an attribute of `node` (a graph.Node) is out of range.

    `input_shapes` are the shapes of its inputs where known (None: absent or unknown)."""
    rank = next((len(s) for s in input_shapes if s is not None), None)
    for key, value in node.attrs.items():
        ints = _int_values(value)
        if ints is None:
            continue
        if key in _POSITIVE:
            _in_range(node, key, ints, 1, INT32_MAX, label)
        elif key in _BOUNDED:
            _in_range(node, key, ints, -INT32_MAX, INT32_MAX, label)
        elif key in ("axis", "axes") and rank is not None:
            # generous (ops count axes against the input or the output rank), but never
            # anything that overflows an int32 or reaches past the shape by more than the
            # number of axes added
            extra = len(ints) if key == "axes" else 1
            _in_range(node, key, ints, -(rank + extra), rank + extra - 1, label)
        elif key in ("axis", "axes"):
            _in_range(node, key, ints, -INT32_MAX, INT32_MAX, label)
    for key in _LISTS:
        value = node.attrs.get(key)
        if value is not None and not (isinstance(value, (list, tuple)) and all(
                isinstance(v, int) for v in value)):
            raise ModelFormatError(f"node {node.name!r} ({node.op_type}): attribute {key} must "
                                   f"be a list of integers, not {type(value).__name__}",
                                   path=label)
    for key in _SCALARS:
        value = node.attrs.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ModelFormatError(f"node {node.name!r} ({node.op_type}): attribute {key} must "
                                   f"be an integer, not {type(value).__name__}", path=label)
    checker = _SPECIFIC.get(node.op_type) if not node.domain else None
    if checker is not None:
        checker(node, input_shapes, label)


def _int_values(value: Any) -> list[int] | None:
    if isinstance(value, bool):
        return [int(value)]
    if isinstance(value, int):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return list(value)
    return None


def _in_range(node: Any, key: str, values: list[int], lo: int, hi: int, label: str) -> None:
    bad = [v for v in values if not lo <= v <= hi]
    if bad:
        raise ModelFormatError(f"node {node.name!r} ({node.op_type}): attribute {key}="
                               f"{_short(values)} is out of range (each value must be in "
                               f"{lo}..{hi})", path=label)


def _short(values: list[int]) -> str:
    return str(values[0]) if len(values) == 1 else str(values[:8])[:-1] + (
        ", ...]" if len(values) > 8 else "]")


def _fail(node: Any, message: str, label: str) -> ModelFormatError:
    return ModelFormatError(f"node {node.name!r} ({node.op_type}): {message}", path=label)


def _depth_space(node: Any, shapes: Sequence[tuple[int, ...] | None], label: str) -> None:
    bs = node.attr("blocksize")
    if not isinstance(bs, int) or not 1 <= bs <= MAX_BLOCKSIZE:
        raise _fail(node, f"blocksize {bs!r} must be an integer in 1..{MAX_BLOCKSIZE}", label)
    x = shapes[0] if shapes else None
    if x is None:
        return
    if len(x) != 4:
        raise _fail(node, f"the input must be 4-D (NCHW), not {list(x)}", label)
    if node.op_type == "DepthToSpace" and x[1] % (bs * bs):
        raise _fail(node, f"{x[1]} channels are not divisible by blocksize^2 = {bs * bs}", label)
    if node.op_type == "SpaceToDepth" and (x[2] % bs or x[3] % bs):
        raise _fail(node, f"the spatial size {x[2]}x{x[3]} is not divisible by blocksize "
                          f"{bs}", label)


def _conv(node: Any, shapes: Sequence[tuple[int, ...] | None], label: str) -> None:
    group = node.attr("group", 1)
    x = shapes[0] if shapes else None
    w = shapes[1] if len(shapes) > 1 else None
    if x is None or w is None:
        return
    if len(x) < 3 or len(w) != len(x):
        raise _fail(node, f"input {list(x)} and weights {list(w)} must have the same rank, "
                          "at least 3", label)
    if node.op_type == "Conv":
        c_in, c_out = x[1], w[0]
        if w[1] * group != c_in:
            raise _fail(node, f"group={group} with weights {list(w)} takes {w[1] * group} input "
                              f"channels, the input has {c_in}", label)
    else:  # ConvTranspose: weights [C_in, C_out / group, k...]
        c_in, c_out = w[0], w[1] * group
        if x[1] != c_in:
            raise _fail(node, f"weights {list(w)} take {c_in} input channels, the input has "
                              f"{x[1]}", label)
    if c_in % group or c_out % group:
        raise _fail(node, f"group={group} does not divide the {c_in} input and {c_out} output "
                          "channels", label)
    _spatial_lengths(node, len(x) - 2, ("kernel_shape", "strides", "dilations"), label)


def _spatial_lengths(node: Any, spatial: int, keys: Sequence[str], label: str) -> None:
    """Each of `keys` has one value per spatial axis, and pads two."""
    for key in keys:
        v = node.attr(key)
        if v is not None and len(v) != spatial:
            raise _fail(node, f"{key} has {len(v)} values for {spatial} spatial axes", label)
    pads = node.attr("pads")
    if pads is not None and len(pads) != 2 * spatial:
        raise _fail(node, f"pads has {len(pads)} values for {spatial} spatial axes", label)


def _pool(node: Any, shapes: Sequence[tuple[int, ...] | None], label: str) -> None:
    kernel = node.attr("kernel_shape")
    x = shapes[0] if shapes else None
    if kernel is None or x is None:
        return
    spatial = len(x) - 2
    if len(kernel) != spatial:
        raise _fail(node, f"kernel_shape {list(kernel)} for {spatial} spatial axes", label)
    _spatial_lengths(node, spatial, ("strides", "dilations"), label)


def _layer_norm(node: Any, shapes: Sequence[tuple[int, ...] | None], label: str) -> None:
    x = shapes[0] if shapes else None
    axis = node.attr("axis", -1)
    if x is not None and isinstance(axis, int) and not -len(x) <= axis < len(x):
        raise _fail(node, f"axis {axis} is outside the input's rank {len(x)}", label)


def _transpose(node: Any, shapes: Sequence[tuple[int, ...] | None], label: str) -> None:
    perm = node.attr("perm")
    x = shapes[0] if shapes else None
    if perm is not None and x is not None and sorted(perm) != list(range(len(x))):
        raise _fail(node, f"perm {list(perm)[:16]} is not a permutation of the input's "
                          f"{len(x)} axes", label)


_SPECIFIC = {
    "Transpose": _transpose,
    "DepthToSpace": _depth_space,
    "SpaceToDepth": _depth_space,
    "Conv": _conv,
    "ConvTranspose": _conv,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "LpPool": _pool,
    "LayerNormalization": _layer_norm,
}
