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
    # export (issue 2)
    "export": ("sdk.exporter", "export"),
    "ExportResult": ("sdk.results", "ExportResult"),
    "FidelityReport": ("sdk.fidelity", "FidelityReport"),
    "ImageFolder": ("sdk.converters.quantize.data", "ImageFolder"),
    "LayerPrecision": ("sdk.converters.quantize.plan", "LayerPrecision"),
    # devices (issue 6)
    "deploy": ("sdk.devices.deploy", "deploy"),
    "profile": ("sdk.devices.profile", "profile"),
    "validate": ("sdk.devices.validate", "validate"),
    "Deployment": ("sdk.devices.deploy", "Deployment"),
    "Profile": ("sdk.devices.results", "Profile"),
    "Validation": ("sdk.devices.results", "Validation"),
    "open_device": ("sdk.devices", "open_device"),
    # board farm (issue 7)
    "Farm": ("sdk.devices.farm", "Farm"),
}

if TYPE_CHECKING:  # pragma: no cover
    from sdk.converters.quantize.data import ImageFolder  # noqa: F401
    from sdk.converters.quantize.plan import LayerPrecision  # noqa: F401
    from sdk.devices import open_device  # noqa: F401
    from sdk.devices.deploy import Deployment, deploy  # noqa: F401
    from sdk.devices.farm import Farm  # noqa: F401
    from sdk.devices.profile import profile  # noqa: F401
    from sdk.devices.results import Profile, Validation  # noqa: F401
    from sdk.devices.validate import validate  # noqa: F401
    from sdk.exporter import export  # noqa: F401
    from sdk.fidelity import FidelityReport  # noqa: F401
    from sdk.native import cpu_features  # noqa: F401
    from sdk.results import ExportResult  # noqa: F401


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
