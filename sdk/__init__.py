"""edgesdk: quantise neural networks to int8, int4, ternary and 2-bit and run them on edge devices.

The public face is small::

    import sdk
    result = sdk.export(model, "int8", calibration=images, output="model.tflite")

Heavy modules (TensorFlow, ONNX, device transports) are imported only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sdk.base.lazy import lazy_names
from sdk.base.version import __version__

__all__ = ["__version__"]  # and the lazy names below (dir(sdk))

# name -> (module, attribute): resolved on first access so `import sdk` stays fast and does not
# pull in TensorFlow or a LiteRT interpreter.
_LAZY: dict[str, tuple[str, str]] = {
    "cpu_features": ("sdk.base.native", "cpu_features"),
    "EdgeSDKError": ("sdk.base.errors", "EdgeSDKError"),
    # running models here (sdk.run)
    "EdgeModel": ("sdk.run.edge", "EdgeModel"),
    "Interpreter": ("sdk.run.interpreter", "Interpreter"),
    # export (issue 2)
    "export": ("sdk.exporter", "export"),
    "ExportResult": ("sdk.results", "ExportResult"),
    "FidelityReport": ("sdk.run.fidelity", "FidelityReport"),
    "ImageFolder": ("sdk.base.samples", "ImageFolder"),
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
    # quantisation-aware training for Keras (issue 15): the module itself ("" attribute)
    "qat": ("sdk.converters.qat", ""),
}

if TYPE_CHECKING:  # pragma: no cover
    from sdk.base.errors import EdgeSDKError  # noqa: F401
    from sdk.base.native import cpu_features  # noqa: F401
    from sdk.base.samples import ImageFolder  # noqa: F401
    from sdk.converters.quantize.plan import LayerPrecision  # noqa: F401
    from sdk.devices import open_device  # noqa: F401
    from sdk.devices.deploy import Deployment, deploy  # noqa: F401
    from sdk.devices.farm import Farm  # noqa: F401
    from sdk.devices.profile import profile  # noqa: F401
    from sdk.devices.results import Profile, Validation  # noqa: F401
    from sdk.devices.validate import validate  # noqa: F401
    from sdk.exporter import export  # noqa: F401
    from sdk.results import ExportResult  # noqa: F401
    from sdk.run.edge import EdgeModel  # noqa: F401
    from sdk.run.fidelity import FidelityReport  # noqa: F401
    from sdk.run.interpreter import Interpreter  # noqa: F401


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
