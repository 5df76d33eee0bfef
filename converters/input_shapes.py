"""`input_shapes=` as the ONNX and .tflite importers both read it.

The forms `sdk.export` documents: {input name: shape}, {None: shape} for the only input, one
shape (a sequence of integers) for a model with one input, or one shape per input in order.
Each importer then checks the shapes against its own format's declared ones
(`sdk.converters.onnx.loader.resolve_input_shapes`, `sdk.converters.tflite.input_shapes.resolve`).
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping
from typing import Any

import numpy as np

from sdk.base.errors import ConversionError


def as_mapping(input_shapes: Any, names: list[str], label: str) -> Mapping[str | None, Any]:
    """`input_shapes` as {input name, or None for the only input: shape}; `names`: the model's
    inputs in order (a list of shapes is matched to them)."""
    if input_shapes is None:
        return {}
    if isinstance(input_shapes, Mapping):
        return input_shapes
    items = list(input_shapes)
    if items and all(isinstance(d, (int, np.integer)) for d in items):
        return {None: items}  # one shape: the only input's
    if len(items) != len(names):
        raise ConversionError(f"{label}: input_shapes lists {len(items)} shapes, but the model has "
                              f"{len(names)} inputs: {names}")
    return dict(zip(names, items, strict=True))


def given_shapes(input_shapes: Any, names: list[str], label: str, *,
                 known: Container[Any] | None = None, name_the_only: bool = False
                 ) -> Iterator[tuple[str | None, tuple[int, ...]]]:
    """(key, shape as integers) for each entry of `input_shapes` (see `as_mapping`), in its
    order. The key is None (the only input; an error when `names` has more than one), or with
    `name_the_only` that input's name (the key errors then name too: the ONNX importer's way),
    or a name in `known` (default `names`; the .tflite importer accepts every name an input
    answers to). One entry is read and checked at a time, so a caller's own checks of an entry
    come before the next entry's."""
    for key, shape in as_mapping(input_shapes, names, label).items():
        if key is None:
            if len(names) != 1:
                raise ConversionError(
                    f"{label}: input_shapes uses the key None (the only input), but the model has "
                    f"{len(names)} inputs: {names}")
            if name_the_only:
                key = names[0]
        elif key not in (names if known is None else known):
            raise ConversionError(f"{label}: input_shapes names {key!r}, which is not a model "
                                  f"input (inputs: {names})")
        try:
            dims = tuple(int(d) for d in shape)
        except (TypeError, ValueError):
            raise ConversionError(f"{label}: input_shapes[{key!r}] = {shape!r} is not a tuple of "
                                  "integers") from None
        yield key, dims


__all__ = ["as_mapping", "given_shapes"]
