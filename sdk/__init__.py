"""edgesdk: quantise neural networks to int8, int4, ternary and 2-bit and run them on edge devices.

The public face is small::

    import sdk
    result = sdk.export(model, "int8", calibration=images, output="model.tflite")

Heavy modules (TensorFlow, ONNX, device transports) are imported only when used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> (module, attribute): resolved on first access so `import sdk` stays fast and does not
# pull in TensorFlow or a LiteRT interpreter.
_LAZY: dict[str, tuple[str, str]] = {
    "cpu_features": ("sdk.native", "cpu_features"),
}

if TYPE_CHECKING:  # pragma: no cover
    from sdk.native import cpu_features  # noqa: F401


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'sdk' has no attribute {name!r}") from None
    value = getattr(import_module(module_name), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
