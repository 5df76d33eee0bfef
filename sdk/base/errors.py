"""The exceptions edgesdk raises. Every one names what was wrong and where.

Catch `EdgeSDKError` to catch them all. Library errors from deep inside TensorFlow, flatbuffers,
onnx or a transport are caught at our boundary and re-raised as one of these, with the original
kept as `__cause__`.
"""

from __future__ import annotations


class EdgeSDKError(Exception):
    """Base class of every error edgesdk raises on purpose."""


class UsageError(EdgeSDKError, ValueError):
    """An option's or argument's value is wrong in a way argparse cannot see (e.g. options that
    select nothing, or an existing result that needs --force): `edgesdk` exits 2, like
    argparse's own usage errors."""


class NativeBuildError(EdgeSDKError, ImportError):
    """The compiled core is missing or does not match this checkout."""


class ModelFormatError(EdgeSDKError, ValueError):
    """A model file is malformed: names the file and, where known, the byte offset."""

    def __init__(self, message: str, *, path: str | None = None, offset: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}"
            if offset is not None:
                where += f" at byte offset {offset}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.offset = offset


class UnsupportedOpError(EdgeSDKError, NotImplementedError):
    """An operator we cannot convert or run: names the op type, the node and what is supported."""

    def __init__(self, op_type: str, node: str, supported: list[str] | tuple[str, ...], *,
                 source: str = "", detail: str = ""):
        where = f" in {source}" if source else ""
        extra = f": {detail}" if detail else ""
        super().__init__(
            f"unsupported op {op_type!r} (node {node!r}){where}{extra}. "
            f"Supported ops: {', '.join(sorted(supported))}"
        )
        self.op_type = op_type
        self.node = node
        self.supported = tuple(supported)


class ConversionError(EdgeSDKError, ValueError):
    """A model could not be converted, for a reason other than an unsupported op."""


class FidelityError(ConversionError):
    """A quantised model misses the accuracy it was asked to reach (export's target_sqnr or the
    CLI's --min-sqnr): names the outputs and the SQNR they reached."""


class CalibrationError(EdgeSDKError, ValueError):
    """Calibration data is missing, empty or does not fit the model's inputs."""


class RuntimeNotFoundError(EdgeSDKError, ImportError):
    """A runtime or an optional package the call needs is not installed (a LiteRT
    interpreter, TensorFlow, onnx, PyTorch): says which, and the extra that installs it."""


class DelegateRequiredError(EdgeSDKError, RuntimeError):
    """The model holds edgesdk custom ops that only the edgesdk delegate can run."""


class ToolchainError(EdgeSDKError, RuntimeError):
    """A vendor compiler (Vela, rknn-toolkit2) is missing, broken or failed: names the
    toolchain, what it did, and the command that fixes it where there is one."""


class DeviceError(EdgeSDKError, RuntimeError):
    """A device operation failed: names the device and the command."""

    def __init__(self, message: str, *, device: str | None = None, command: str | None = None):
        parts = []
        if device:
            parts.append(f"device {device}")
        if command:
            parts.append(f"command {command!r}")
        prefix = (", ".join(parts) + ": ") if parts else ""
        super().__init__(prefix + message)
        self.device = device
        self.command = command


# ---------------------------------------------------------------- native kernels (sdk.kernels)
class KernelError(EdgeSDKError, ValueError):
    """Bad arguments to a native kernel: names the parameter and what was expected."""


class IsaUnavailableError(EdgeSDKError, RuntimeError):
    """A kernel ISA was requested (argument or $EDGE_KERNEL_ISA) that this build or CPU lacks."""
