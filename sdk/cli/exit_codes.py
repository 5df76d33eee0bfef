"""The `edgesdk` command's exit codes: one table, what each means and the errors that give it.

docs/cli.md prints this table; `edgesdk --help` ends with it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from sdk.base.errors import EdgeSDKError, UsageError

__all__ = ["EXIT_CODES", "ExitCode", "UsageError", "epilog", "exit_code_for"]


@dataclass(frozen=True)
class ExitCode:
    code: int
    name: str
    meaning: str
    #: "module.Class" of the errors that end a command with this code (checked in table order;
    #: a class whose module was never imported cannot have been raised, so nothing is imported)
    errors: tuple[str, ...] = ()


OK = ExitCode(0, "ok", "the command did what was asked")
CHECK_FAILED = ExitCode(
    1, "check-failed", "the command ran, and a bar it was given is not met: validate below "
    "--min-sqnr / top-1, export under --min-sqnr or an unreachable --target-sqnr, failed farm "
    "jobs, unhealthy boards, a toolchain not installed",
    ("sdk.base.errors.FidelityError",))
USAGE = ExitCode(2, "usage", "the command line is wrong (unknown option, missing argument, a "
                 "value of the wrong form or not allowed, e.g. a non-loopback --host)",
                 ("sdk.base.errors.UsageError",))
BAD_INPUT = ExitCode(
    3, "bad-input", "a model, calibration/validation data, input arrays or a config file the "
    "command was given cannot be used (malformed, unsupported op, already quantised, missing)",
    ("sdk.base.errors.ModelFormatError", "sdk.base.errors.UnsupportedOpError",
     "sdk.base.errors.ConversionError", "sdk.base.errors.CalibrationError",
     "sdk.base.errors.KernelError", "sdk.run.edge.ModelInputError",
     "sdk.devices.errors.DeviceConfigError"))
DEVICE = ExitCode(
    4, "device", "a device failed: not found, unreachable, refused the key, a command or "
    "transfer on it failed, timed out, the emulator would not start, the farm's boards are busy",
    ("sdk.base.errors.DeviceError", "sdk.devices.farm.lock.FarmBusyError"))
ENVIRONMENT = ExitCode(
    5, "environment", "this host lacks something the command needs: LiteRT, the native build, "
    "the edgesdk delegate, a kernel ISA, a vendor toolchain, the farm's TLS certificates",
    ("sdk.base.errors.RuntimeNotFoundError", "sdk.base.errors.NativeBuildError",
     "sdk.base.errors.DelegateRequiredError", "sdk.base.errors.IsaUnavailableError",
     "sdk.base.errors.ToolchainError", "sdk.devices.farm.security.FarmSecurityError"))
OTHER = ExitCode(6, "error", "any other edgesdk error (its message names the problem)",
                 ("sdk.base.errors.EdgeSDKError",))
INTERNAL = ExitCode(70, "internal", "a bug: an exception edgesdk did not expect (traceback on "
                    "stderr; please report it)")
INTERRUPTED = ExitCode(130, "interrupted", "Ctrl-C")

EXIT_CODES: tuple[ExitCode, ...] = (OK, CHECK_FAILED, USAGE, BAD_INPUT, DEVICE, ENVIRONMENT,
                                    OTHER, INTERNAL, INTERRUPTED)
#: the order errors are matched in: specific classes before their bases
_MATCH_ORDER = (USAGE, CHECK_FAILED, BAD_INPUT, DEVICE, ENVIRONMENT, OTHER)


def _loaded_class(dotted: str) -> type[BaseException] | None:
    module, _, name = dotted.rpartition(".")
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) else None


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code an exception ends a command with."""
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, EdgeSDKError):
        for entry in _MATCH_ORDER:
            for dotted in entry.errors:
                cls = _loaded_class(dotted)
                if cls is not None and isinstance(exc, cls):
                    return entry
        return OTHER
    return INTERNAL


def epilog() -> str:
    """The table as `edgesdk --help` prints it."""
    return "exit codes:\n" + "\n".join(f"  {c.code:>3}  {c.name}" for c in EXIT_CODES)
