"""Fix the dynamic input dimensions of a float .tflite model (`input_shapes=`).

A TFLite tensor's `shape_signature` marks dynamic dimensions with -1 (`[1, -1]` for audio of any
length) while `shape` holds one placeholder size (often 1). Calibration and the int8 file need
one fixed size, so `fix_input_shapes` resizes the inputs and carries the new sizes through the
whole graph. The shapes come from LiteRT itself, which is the reference for what every kernel
produces: the float model is loaded, `resize_tensor_input` + `allocate_tensors` + one run on
zeros, and every tensor of the main subgraph takes the shape LiteRT gives it (constants are left
as they are). A dimension that the signature fixes can only be given its own size: fixing a
static dimension to another size is a `ConversionError`, as for ONNX.

`input_shapes` takes the forms `sdk.export` documents: {input name: shape} (the tensor name,
with or without ":0", or the signature's input name), {None: shape} for the only input, one
shape, or one shape per input in order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sdk.base.errors import ConversionError
from sdk.base.limits import LoadBudget, default_budget
from sdk.converters.input_shapes import given_shapes
from sdk.converters.ir import Model, Tensor


def _names(model: Model) -> dict[str, Tensor]:
    """Every name an input answers to -> the input tensor."""
    graph = model.main
    names: dict[str, Tensor] = {}
    for t in graph.inputs:
        names[t.name] = t
        names.setdefault(t.name.split(":")[0], t)
    for sig in model.signatures:
        if sig.graph_index == 0:
            for key, t in sig.inputs.items():
                names.setdefault(key, t)
    return names


def resolve(model: Model, input_shapes: Any, label: str) -> dict[int, tuple[int, ...]]:
    """input_shapes -> {position of the input in the main graph: its new shape}, checked
    against the signature (rank, static dimensions, positive sizes)."""
    inputs = model.main.inputs
    labels = [t.name for t in inputs]
    names = _names(model)
    out: dict[int, tuple[int, ...]] = {}
    for key, dims in given_shapes(input_shapes, labels, label, known=names):
        t = inputs[0] if key is None else names[key]
        signature = t.shape_signature or t.shape
        if len(dims) != len(signature):
            raise ConversionError(f"{label}: input {t.name!r} has rank {len(signature)} "
                                  f"(signature {list(signature)}), but input_shapes gives "
                                  f"{list(dims)}")
        if any(d <= 0 for d in dims):
            raise ConversionError(f"{label}: input_shapes[{key!r}] = {list(dims)}: every "
                                  "dimension must be a positive integer")
        for axis, (s, d) in enumerate(zip(signature, dims, strict=True)):
            if s >= 0 and s != d:
                raise ConversionError(
                    f"{label}: input {t.name!r} has the fixed size {s} on axis {axis} "
                    f"(signature {list(signature)}), but input_shapes gives {list(dims)}")
        out[inputs.index(t)] = dims
    return out


def fix_input_shapes(model: Model, input_shapes: Any, label: str, *,
                     budget: LoadBudget | None = None) -> list[str]:
    """Resize the main graph's inputs to `input_shapes` and every other tensor with them (in
    place, shapes from LiteRT; see the module doc). Returns a note per input changed."""
    from sdk.converters.tflite.writer import serialize
    from sdk.run.litert import backend

    if not input_shapes:
        return []
    wanted = resolve(model, input_shapes, label)
    graph = model.main
    budget = budget or default_budget()
    for pos, dims in wanted.items():
        t = graph.inputs[pos]
        budget.check_bytes(f"{label}: input {t.name!r} at {list(dims)}",
                           int(np.prod(dims, dtype=np.int64)) * max(1, t.dtype.bits // 8))
    data, maps = serialize(model)
    index = maps[0]
    try:
        it = backend().interpreter(model_content=data, xnnpack=False)
        for pos, dims in wanted.items():
            it.resize_tensor_input(index[graph.inputs[pos]], list(dims), strict=False)
        it.allocate_tensors()
        for d in it.get_input_details():
            it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        it.invoke()
        shapes = {d["index"]: tuple(int(v) for v in d["shape"])
                  for d in it.get_tensor_details()}
    except (RuntimeError, ValueError) as exc:
        given = {graph.inputs[p].name: list(s) for p, s in wanted.items()}
        raise ConversionError(f"{label}: LiteRT cannot run the model with input shapes "
                              f"{given}: {exc}") from exc
    notes = []
    for pos, dims in wanted.items():
        t = graph.inputs[pos]
        notes.append(f"input {t.name!r}: shape {list(t.shape_signature or t.shape)} fixed to "
                     f"{list(dims)}")
    for t, i in index.items():
        if t.is_constant or i not in shapes:
            continue
        new = shapes[i]
        if new != tuple(t.shape) or t.shape_signature is not None:
            if t.shape_signature is not None and len(new) == len(t.shape_signature) and all(
                    s < 0 or s == n for s, n in zip(t.shape_signature, new, strict=True)):
                t.shape_signature = None
            t.shape = new
    return notes


__all__ = ["fix_input_shapes", "resolve"]
