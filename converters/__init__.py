"""sdk.converters: model frontends (Keras, SavedModel, ONNX, .tflite), the IR, quantisers, writers.

Installed as `sdk.converters`; the source folder is `converters/` at the top of the repository.

The names below are the converters' public API for the other layers: `sdk.devices` uses these
and never a converter submodule (the import contract in pyproject.toml checks it). They resolve
lazily, so `import sdk.converters` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sdk.base.lazy import lazy_names

# name -> (module, attribute)
_LAZY: dict[str, tuple[str, str]] = {
    "DType": ("sdk.converters.ir", "DType"),
    "Graph": ("sdk.converters.ir", "Graph"),
    "Model": ("sdk.converters.ir", "Model"),
    "read_tflite": ("sdk.converters.tflite.reader", "read_tflite"),
    "read_edge": ("sdk.converters.edge.reader", "read_edge"),
    "to_tflite_bytes": ("sdk.converters.tflite.writer", "to_tflite_bytes"),
    #: the generated TFLite flatbuffer schema module (sdk.converters.tflite.schema.schema())
    "tflite_schema": ("sdk.converters.tflite.schema", "schema"),
}

if TYPE_CHECKING:  # pragma: no cover
    from sdk.converters.edge.reader import read_edge  # noqa: F401
    from sdk.converters.ir import DType, Graph, Model  # noqa: F401
    from sdk.converters.tflite.reader import read_tflite  # noqa: F401
    from sdk.converters.tflite.schema import schema as tflite_schema  # noqa: F401
    from sdk.converters.tflite.writer import to_tflite_bytes  # noqa: F401


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
