"""PyTorch modules and `torch.export` programs -> ONNX (PyTorch's own exporter) -> the IR.

    sdk.export(module, "int8", example_inputs=(x,), calibration=images)

PyTorch is the `[torch]` extra and is imported only here, only when such a model is passed.
PyTorch's exporter (`torch.onnx.export(..., dynamo=True)`, which traces with `torch.export`)
does the graph capture; our ONNX importer (`sdk.converters.onnx.read_onnx`) then sees a plain
ONNX graph, the same as for an .onnx file. The example inputs fix every dimension: the exported
graph is static, shaped like them. Inputs and outputs keep PyTorch's layout (NCHW), so the
calibration data a PyTorch user already has (tensors or arrays shaped like `example_inputs`)
feeds the export as it is.

When the dynamo exporter cannot capture a module (data-dependent control flow, unsupported
Python), the TorchScript exporter is tried next, with a warning naming why.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

from sdk.base.errors import ConversionError, ModelFormatError
from sdk.base.lazy import require

#: opset the exports ask for (the dynamo exporter's own default; our importer covers it)
OPSET = 18
PT2_SUFFIXES = (".pt2",)


def import_torch() -> Any:
    return require("torch", "PyTorch input needs PyTorch and onnxscript: pip install "
                            "'edgesdk[torch]'")


def is_torch_module(obj: Any) -> bool:
    """An `nn.Module` (checked without importing torch when the caller never did)."""
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module"
               for c in type(obj).__mro__)


def is_exported_program(obj: Any) -> bool:
    return type(obj).__name__ == "ExportedProgram" and \
        type(obj).__module__.startswith("torch.export")


def _example_tuple(example_inputs: Any, what: str) -> tuple[Any, ...]:
    torch = import_torch()
    if example_inputs is None:
        raise ConversionError(
            f"{what}: example_inputs=(x, ...) is required: PyTorch traces the module with them "
            "and they fix every input's shape (pass a tuple of tensors shaped like one batch)")
    items = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) \
        else (example_inputs,)
    out = []
    for i, item in enumerate(items):
        if isinstance(item, torch.Tensor):
            out.append(item.detach())
            continue
        try:
            out.append(torch.as_tensor(item))
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ConversionError(f"{what}: example_inputs[{i}] is a {type(item).__name__}, "
                                  "not a tensor or array") from exc
    return tuple(out)


def module_to_onnx(module: Any, example_inputs: Any) -> bytes:
    """An `nn.Module` (or `ExportedProgram`) -> serialised ONNX, exported in eval mode.

    The module's training flag is restored afterwards; its parameters are not touched.
    """
    torch = import_torch()
    what = f"PyTorch module {type(module).__name__}"
    args = None if is_exported_program(module) else _example_tuple(example_inputs, what)
    training = getattr(module, "training", None)
    if training:
        module.eval()
    try:
        with torch.no_grad():
            return _export(torch, module, args, what)
    finally:
        if training:
            module.train(True)


def _export(torch: Any, module: Any, args: tuple[Any, ...] | None, what: str) -> bytes:
    require("onnxscript", "PyTorch input needs onnxscript for torch.onnx.export: pip install "
                          "'edgesdk[torch]'")  # the dynamo exporter's dependency
    first: Exception | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer chatter
        try:
            program = torch.onnx.export(module, args, dynamo=True, opset_version=OPSET,
                                        verbose=False)
            return program.model_proto.SerializeToString()
        except Exception as exc:  # torch raises many types here; all mean "could not capture"
            first = exc
        if is_exported_program(module):
            raise ConversionError(f"{what}: torch.onnx.export failed: "
                                  f"{_first_line(first)}") from first
        buffer = io.BytesIO()
        try:
            torch.onnx.export(module, args, buffer, dynamo=False, opset_version=17)
        except Exception as exc:
            raise ConversionError(
                f"{what}: PyTorch's ONNX exporters could not capture it (dynamo: "
                f"{_first_line(first)}; TorchScript: {_first_line(exc)})") from exc
    warnings.warn(f"{what}: the dynamo ONNX exporter failed ({_first_line(first)}); "
                  "exported with the TorchScript exporter instead", stacklevel=3)
    return buffer.getvalue()


def load_pt2(path: str | os.PathLike[str]) -> Any:
    """A `.pt2` file written by `torch.export.save` -> its `ExportedProgram`."""
    torch = import_torch()
    try:
        return torch.export.load(str(path))
    except (RuntimeError, ValueError, KeyError, OSError, EOFError) as exc:
        raise ModelFormatError(f"not a torch.export program: {_first_line(exc)}",
                               path=str(path)) from exc


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def suffix_is_pt2(path: Path) -> bool:
    return path.suffix.lower() in PT2_SUFFIXES
