"""Whatever the user passes -> a float IR `Model`.

`load_model` accepts: an IR Model; a .tflite file or its bytes; an .onnx file, its bytes or an
`onnx.ModelProto` (our importer, `sdk.converters.onnx.read_onnx`); a Keras model in memory, a
.keras/.h5 file or a SavedModel directory (through TensorFlow's converter, the `[tf]` extra); a
TensorFlow ConcreteFunction; a PyTorch `nn.Module`, `torch.export` program or .pt2 file, with
`example_inputs` (through PyTorch's ONNX exporter, the `[torch]` extra). The result is a float
model ready to calibrate: constant DEQUANTIZE ops (float16 weights) are folded to float32
constants.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sdk.base.errors import ConversionError, ModelFormatError, UnsupportedOpError
from sdk.converters import pytorch as ptc
from sdk.converters import tensorflow as tfc
from sdk.converters.ir import DType, Graph, Model, Tensor
from sdk.converters.tflite import read_tflite
from sdk.converters.tflite.custom_ops import CUSTOM_OPS
from sdk.converters.tflite.input_shapes import fix_input_shapes
from sdk.converters.tflite.publisher_ops import rewrite_custom_ops, unsupported_custom_ops
from sdk.converters.tflite.schema import FILE_IDENTIFIER

InputShapes = Mapping[str | None, Sequence[int]] | Sequence[Sequence[int]] | None
#: ONNX inputs/outputs: "nchw" as ONNX declares them, "nhwc" channels-last (see read_onnx)
IO_LAYOUTS = ("nchw", "nhwc")

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass
class LoadedModel:
    model: Model
    #: what it was: "tflite", "onnx", "keras", "saved_model", "ir", "concrete_function",
    #: "pytorch" (an nn.Module, ExportedProgram or .pt2 file, imported through ONNX)
    kind: str
    #: a short name for reports and default file names
    name: str
    #: what the import changed, for the export report (custom ops rewritten, shapes fixed)
    notes: list[str] = field(default_factory=list)


def load_model(source: Any, *, input_shapes: InputShapes = None,
               io_layout: str | None = None, example_inputs: Any = None,
               constant_inputs: Mapping[str, Any] | None = None) -> LoadedModel:
    """Read any supported model into a float IR model.

    io_layout: ONNX and PyTorch models only: "nchw" (default: inputs and outputs as ONNX
    declares them) or "nhwc" (image inputs and outputs channels-last, no boundary transposes).
    example_inputs: PyTorch modules only: a tuple of tensors shaped like one batch; PyTorch
    traces the module with them and they fix every dimension.
    constant_inputs: ONNX models only: {input name: value} for inputs that are settings (a
    sample rate selecting an `If` branch); see `sdk.converters.onnx.read_onnx`.
    """
    if io_layout is not None and io_layout not in IO_LAYOUTS:
        raise ConversionError(f"io_layout must be one of {', '.join(IO_LAYOUTS)}, not "
                              f"{io_layout!r}")
    if ptc.is_torch_module(source) or ptc.is_exported_program(source) or (
            isinstance(source, (str, os.PathLike)) and ptc.suffix_is_pt2(Path(source))):
        loaded = _from_torch(source, input_shapes, io_layout, example_inputs)
    elif example_inputs is not None:
        raise ConversionError("example_inputs applies to PyTorch models (an nn.Module, a "
                              "torch.export program or a .pt2 file), not to "
                              f"a {type(source).__name__}")
    elif constant_inputs:
        loaded = _onnx_with_constants(source, input_shapes, io_layout, constant_inputs)
    else:
        loaded = _dispatch(source, input_shapes, io_layout)
    if io_layout is not None and loaded.kind not in ("onnx", "pytorch"):
        raise ConversionError(f"io_layout applies to ONNX models, not to a {loaded.kind} model "
                              "(its layout is fixed by its converter)")
    fold_constant_dequantize(loaded.model.main)
    return loaded


def _dispatch(source: Any, input_shapes: InputShapes, io_layout: str | None) -> LoadedModel:
    if isinstance(source, Model):
        return LoadedModel(source, "ir", "model")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if data[4:8] == FILE_IDENTIFIER:
            return _from_tflite(data, "model", input_shapes)
        return LoadedModel(_read_onnx(data, input_shapes, io_layout), "onnx", "model")
    if isinstance(source, (str, os.PathLike)):
        return _from_path(Path(source), input_shapes, io_layout)
    if tfc.is_keras_model(source):
        return LoadedModel(tfc.keras_to_ir(source, input_shapes), "keras",
                           str(getattr(source, "name", "model")) or "model")
    if type(source).__module__.startswith("onnx") and hasattr(source, "graph"):
        name = getattr(source.graph, "name", "") or "model"
        return LoadedModel(_read_onnx(source, input_shapes, io_layout), "onnx", name)
    if tfc.is_concrete_function(source):
        return LoadedModel(tfc.concrete_function_to_ir(source), "concrete_function", "model")
    raise ConversionError(
        f"cannot export a {type(source).__module__}.{type(source).__name__}: pass a Keras "
        "model, a PyTorch nn.Module (with example_inputs), a SavedModel directory, a "
        ".keras/.h5/.tflite/.onnx/.pt2 file (or its bytes) or an onnx.ModelProto")


def _from_torch(source: Any, input_shapes: InputShapes, io_layout: str | None,
                example_inputs: Any) -> LoadedModel:
    if input_shapes:
        raise ConversionError("input_shapes does not apply to PyTorch models: the shapes of "
                              "example_inputs fix every dimension")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ModelFormatError("no such file", path=str(path))
        program, name = ptc.load_pt2(path), path.stem
    else:
        program, name = source, type(source).__name__
    data = ptc.module_to_onnx(program, example_inputs)
    return LoadedModel(_read_onnx(data, None, io_layout), "pytorch", name)


def _from_path(path: Path, input_shapes: InputShapes, io_layout: str | None) -> LoadedModel:
    name = path.stem or path.name
    if not path.exists():
        raise ModelFormatError("no such file or directory", path=str(path))
    if path.is_dir():
        if tfc.is_saved_model_dir(path):
            _no_shapes(input_shapes, "a SavedModel")
            return LoadedModel(tfc.saved_model_to_ir(path), "saved_model", path.name)
        raise ModelFormatError("a directory that is not a SavedModel (no saved_model.pb)",
                               path=str(path))
    suffix = path.suffix.lower()
    if suffix in KERAS_SUFFIXES:
        return LoadedModel(tfc.keras_file_to_ir(path, input_shapes), "keras", name)
    if suffix == ".onnx":
        return LoadedModel(_read_onnx(str(path), input_shapes, io_layout), "onnx", name)
    if suffix == ".tflite":
        return _from_tflite(path, name, input_shapes)
    try:
        head = path.read_bytes()[:8]
    except OSError as exc:
        raise ModelFormatError(f"cannot read: {exc.strerror}", path=str(path)) from exc
    if head[4:8] == FILE_IDENTIFIER:
        return _from_tflite(path, name, input_shapes)
    raise ModelFormatError(f"unknown model format (suffix {suffix or 'none'!r}); expected "
                           ".tflite, .onnx, .keras, .h5 or a SavedModel directory",
                           path=str(path))


def _from_tflite(source: Path | bytes, name: str, input_shapes: InputShapes) -> LoadedModel:
    """A float .tflite: publishers' custom ops with a builtin equivalent rewritten (see
    `sdk.converters.tflite.publisher_ops`), any other custom op LiteRT cannot run refused by
    name, and `input_shapes` applied through the graph (`tflite.input_shapes`)."""
    label = str(source) if isinstance(source, Path) else "<bytes>"
    model = read_tflite(source)
    notes = [r.note() for r in rewrite_custom_ops(model)]
    blocked = unsupported_custom_ops(model, known=frozenset(CUSTOM_OPS))
    if blocked:
        code, _, rest = blocked[0].partition(" (")
        raise UnsupportedOpError(
            code, rest.split("):")[0], ["Convolution2DTransposeBias (rewritten to TRANSPOSE_CONV)",
                                        "TFLite_Detection_PostProcess", "builtin ops"],
            source=label,
            detail=f"LiteRT has no kernel for it, so the float model cannot be calibrated; "
                   f"custom ops found: {'; '.join(blocked)}. Cut the model before it (export the "
                   "part up to that op) or replace it with builtin ops in the source model")
    if input_shapes:
        fold_constant_dequantize(model.main)
        notes += fix_input_shapes(model, input_shapes, label)
    return LoadedModel(model, "tflite", name, notes)


def _read_onnx(source: Any, input_shapes: InputShapes, io_layout: str | None) -> Model:
    try:
        from sdk.converters.onnx import read_onnx  # type: ignore[attr-defined]
    except ImportError as exc:
        if exc.name in ("sdk.converters.onnx", None) or "read_onnx" in str(exc):
            raise ConversionError("ONNX input is not available in this edgesdk build "
                                  "(sdk.converters.onnx.read_onnx is missing)") from exc
        raise
    return read_onnx(source, input_shapes=input_shapes, io_layout=io_layout or "nchw")


def _onnx_with_constants(source: Any, input_shapes: InputShapes, io_layout: str | None,
                         constant_inputs: Mapping[str, Any]) -> LoadedModel:
    from sdk.converters.onnx import read_onnx  # type: ignore[attr-defined]

    if isinstance(source, (str, os.PathLike)) and Path(source).suffix.lower() == ".onnx":
        name = Path(source).stem
    elif isinstance(source, (bytes, bytearray, memoryview)) and \
            bytes(source[4:8]) != FILE_IDENTIFIER:
        name = "model"
    elif type(source).__module__.startswith("onnx") and hasattr(source, "graph"):
        name = getattr(source.graph, "name", "") or "model"
    else:
        raise ConversionError("constant_inputs applies to ONNX models (an .onnx file, its bytes "
                              f"or an onnx.ModelProto), not to {type(source).__name__} "
                              f"{str(source)[:80]!r}")
    model = read_onnx(source, input_shapes=input_shapes, io_layout=io_layout or "nchw",
                      constant_inputs=constant_inputs)
    notes = [f"inputs fixed to constants (constant_inputs): "
             f"{', '.join(f'{k}={v!r}' for k, v in constant_inputs.items())}"]
    return LoadedModel(model, "onnx", name, notes)


def _no_shapes(input_shapes: InputShapes, what: str) -> None:
    if input_shapes:
        raise ConversionError(f"input_shapes applies to ONNX, Keras and .tflite models, not "
                              f"to {what} (its shapes are fixed by its converter)")


def fold_constant_dequantize(graph: Graph) -> int:
    """Replace DEQUANTIZE ops whose input is a constant (float16 or quantised weights) with the
    float32 constant they compute. Returns how many were folded."""
    keep = []
    folded = 0
    for op in graph.operators:
        src = op.inputs[0] if op.type == "DEQUANTIZE" and op.inputs else None
        if src is None or not src.is_constant or isinstance(src.data, bytes):
            keep.append(op)
            continue
        out = op.outputs[0]
        if src.dtype is DType.FLOAT16:
            values = src.numpy().astype(np.float32)
        elif src.quant is not None and src.quant.scale.size:
            values = src.quant.dequantize(src.numpy())
        else:
            keep.append(op)
            continue
        const = Tensor(out.name, out.shape, DType.FLOAT32, data=values.reshape(out.shape))
        graph.add_tensor(const)
        graph.replace_uses(out, const)
        folded += 1
    if folded:
        graph.operators = keep
        graph.prune()
    return folded
