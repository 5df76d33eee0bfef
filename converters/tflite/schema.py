"""The TFLite flatbuffer schema bindings, taken from a maintained package.

We never vendor Google's schema: the generated Python module (with the object API: `ModelT`,
`TensorT`, ...) ships inside `ai-edge-litert` (our core dependency) and inside TensorFlow.
"""

from __future__ import annotations

from types import ModuleType

from sdk.base.errors import RuntimeNotFoundError

FILE_IDENTIFIER = b"TFL3"


def _load() -> ModuleType:
    errors = []
    candidates = ("ai_edge_litert.schema_py_generated",
                  "tensorflow.lite.python.schema_py_generated")
    for name in candidates:
        try:
            module = __import__(name, fromlist=["ModelT"])
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
            continue
        if hasattr(module, "ModelT"):
            return module
    raise RuntimeNotFoundError(
        "no TFLite schema bindings found; install ai-edge-litert (" + "; ".join(errors) + ")")


schema: ModuleType = _load()


def enum_names(enum_class: type) -> dict[int, str]:
    """value -> NAME for a generated flatbuffers enum class."""
    return {v: k for k, v in vars(enum_class).items()
            if not k.startswith("_") and isinstance(v, int)}


BUILTIN_OP_NAMES: dict[int, str] = enum_names(schema.BuiltinOperator)
BUILTIN_OP_CODES: dict[str, int] = {v: k for k, v in BUILTIN_OP_NAMES.items()}
OPTIONS_NAMES: dict[int, str] = enum_names(schema.BuiltinOptions)
OPTIONS_CODES: dict[str, int] = {v: k for k, v in OPTIONS_NAMES.items()}
OPTIONS2_NAMES: dict[int, str] = enum_names(schema.BuiltinOptions2)
