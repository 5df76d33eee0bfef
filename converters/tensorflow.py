"""Keras models and SavedModels -> float .tflite (TensorFlow's converter) -> the IR.

TensorFlow is the `[tf]` extra and is imported only here, only when such a model is passed.
TensorFlow's converter does the float-graph work (batch-norm folding, activation fusion, constant
folding); the IR then sees a plain float TFLite graph, the same as for a .tflite input.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sdk.base.errors import ConversionError
from sdk.base.lazy import require
from sdk.converters.ir import Model
from sdk.converters.tflite import read_tflite

InputShapes = Mapping[str | None, Sequence[int]] | Sequence[Sequence[int]] | None


def import_tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return require("tensorflow", "Keras and SavedModel input need TensorFlow: pip install "
                                 "'edgesdk[tf]'")


def is_keras_model(obj: Any) -> bool:
    module = type(obj).__module__
    return module.startswith(("keras", "tf_keras", "tensorflow")) and hasattr(obj, "inputs") \
        and hasattr(obj, "layers")


def is_concrete_function(obj: Any) -> bool:
    return type(obj).__name__ == "ConcreteFunction" and hasattr(obj, "structured_input_signature")


def keras_to_ir(model: Any, input_shapes: InputShapes = None) -> Model:
    """A Keras model (in memory) -> float IR."""
    tf = import_tf()
    if input_shapes:
        specs = _keras_specs(model, input_shapes)
        fn = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0]))
        concrete = fn.get_concrete_function(*specs)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    else:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
    return read_tflite(_convert(converter, f"Keras model {getattr(model, 'name', '')!r}"))


def saved_model_to_ir(path: str | os.PathLike[str], signature: str | None = None) -> Model:
    """A SavedModel directory -> float IR."""
    tf = import_tf()
    keys = [signature] if signature else None
    try:
        converter = tf.lite.TFLiteConverter.from_saved_model(str(path), signature_keys=keys)
    except Exception as exc:  # TF raises many types here; name the directory
        raise ConversionError(f"cannot load SavedModel {str(path)!r}: {_short(exc)}") from exc
    return read_tflite(_convert(converter, f"SavedModel {str(path)!r}"))


def keras_file_to_ir(path: str | os.PathLike[str], input_shapes: InputShapes = None) -> Model:
    """A .keras / .h5 file -> float IR."""
    tf = import_tf()
    try:
        model = tf.keras.models.load_model(str(path), compile=False)
    except Exception as exc:
        raise ConversionError(f"cannot load Keras model {str(path)!r}: {_short(exc)}") from exc
    return keras_to_ir(model, input_shapes)


def concrete_function_to_ir(fn: Any) -> Model:
    tf = import_tf()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn])
    return read_tflite(_convert(converter, f"function {getattr(fn, 'name', '')!r}"))


def is_saved_model_dir(path: Path) -> bool:
    return path.is_dir() and (path / "saved_model.pb").exists()


def _convert(converter: Any, what: str) -> bytes:
    # TensorFlow prints its MLIR pipeline to stdout/stderr; keep ours clean and keep the message
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink):
            return bytes(converter.convert())
    except Exception as exc:
        raise ConversionError(f"TensorFlow could not convert {what} to TFLite: "
                              f"{_short(exc)}") from exc


def _short(exc: BaseException, limit: int = 600) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= limit else text[:limit] + " ..."


def _keras_specs(model: Any, input_shapes: InputShapes) -> list[Any]:
    tf = import_tf()
    inputs = list(model.inputs)
    shapes: list[Sequence[int]]
    if isinstance(input_shapes, Mapping):
        shapes = []
        for i, t in enumerate(inputs):
            name = t.name.split(":")[0]
            if name in input_shapes:
                shapes.append(input_shapes[name])
            elif None in input_shapes and len(inputs) == 1:
                shapes.append(input_shapes[None])
            else:
                raise ConversionError(f"input_shapes has no shape for Keras input {i} "
                                      f"({name!r}); keys: {list(input_shapes)}")
    else:
        shapes = list(input_shapes or [])
        if len(shapes) != len(inputs):
            raise ConversionError(f"input_shapes gives {len(shapes)} shapes for "
                                  f"{len(inputs)} Keras inputs")
    return [tf.TensorSpec([int(d) for d in s], t.dtype, name=t.name.split(":")[0])
            for s, t in zip(shapes, inputs, strict=True)]
