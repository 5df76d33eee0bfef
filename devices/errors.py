"""The device errors: every one is a `sdk.base.errors.DeviceError` that names the device and
command.

Catch `DeviceError` for all of them; the subclasses say what kind of failure it was, so callers
(the CLI, the board farm's retry logic) can tell a dead link from a failing command.
"""

from __future__ import annotations

from sdk.base.errors import DeviceError, EdgeSDKError

__all__ = [
    "DeviceAuthError",
    "DeviceCommandError",
    "DeviceConfigError",
    "DeviceConnectionError",
    "DeviceError",
    "DeviceNotFoundError",
    "DeviceStorageError",
    "DeviceTimeoutError",
    "EmulatorError",
    "FileChangedError",
    "HostKeyWarning",
    "RunnerError",
    "TransferError",
    "UnsafeWorkdirError",
    "is_transient",
]


class DeviceNotFoundError(DeviceError):
    """No device matches what was asked for, or several do and none was named."""


class DeviceConnectionError(DeviceError):
    """The device cannot be reached, or the link dropped (after the retries we allow)."""


class DeviceAuthError(DeviceConnectionError):
    """The device refused us (ADB key not authorised) or we refused it (unknown host key)."""


class DeviceTimeoutError(DeviceError):
    """A command ran past its time limit; it was killed on the device where possible."""

    def __init__(self, message: str, *, device: str | None = None, command: str | None = None,
                 timeout: float | None = None):
        super().__init__(message, device=device, command=command)
        self.timeout = timeout


class DeviceCommandError(DeviceError):
    """A command ran and exited non-zero; carries its exit code and output."""

    def __init__(self, message: str, *, device: str | None = None, command: str | None = None,
                 exit_code: int | None = None, stdout: str = "", stderr: str = ""):
        super().__init__(message, device=device, command=command)
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr


class TransferError(DeviceError):
    """A push or pull failed or arrived corrupted (checksum mismatch)."""


class DeviceStorageError(TransferError):
    """The device has no room for the file (ENOSPC)."""


class UnsafeWorkdirError(DeviceError):
    """The device's work directory is not private to us: a symbolic link, not a directory,
    owned by another user, or writable by group or others. Whoever controls it could swap the
    files we run, so nothing is run or written there (permanent: not retried)."""

    def __init__(self, message: str, *, device: str | None = None, command: str | None = None,
                 path: str | None = None, owner: str | None = None, mode: str | None = None):
        super().__init__(message, device=device, command=command)
        self.path = path
        self.owner = owner
        self.mode = mode


class FileChangedError(DeviceError):
    """A file we pushed (a runner binary, script or library) no longer has the checksum it was
    verified with, checked on the device right before it was to run; it was not run."""

    def __init__(self, message: str, *, device: str | None = None, command: str | None = None,
                 path: str | None = None):
        super().__init__(message, device=device, command=command)
        self.path = path


class HostKeyWarning(UserWarning):
    """An SSH setting turns host-key checking off (`UserKnownHostsFile none`) or makes it
    record nothing (a known_hosts of /dev/null): the device's identity is not verified."""


class RunnerError(DeviceError):
    """No runner fits this model and device: missing binary, wrong ABI, missing Python/LiteRT."""


class EmulatorError(DeviceError):
    """An emulated device could not be started (missing qemu, sshd, namespaces...)."""


class DeviceConfigError(EdgeSDKError, ValueError):
    """The device config file or a device string is malformed: names the file, device and field."""

    def __init__(self, message: str, *, path: str | None = None, device: str | None = None,
                 field: str | None = None):
        where = []
        if path:
            where.append(str(path))
        if device:
            where.append(f"device {device!r}")
        if field:
            where.append(f"field {field!r}")
        super().__init__((", ".join(where) + ": " if where else "") + message)
        self.path = path
        self.device = device
        self.field = field


def is_transient(exc: BaseException) -> bool:
    """Whether trying again later may succeed: a dropped link or a device that went away
    (rebooting), a run past its time limit, a corrupted transfer. Permanent: refused
    authentication, a failing command, a missing runner, a full disk, a bad config.

    The board farm retries transient failures (a bounded number of times) and reports the rest
    at once.
    """
    if isinstance(exc, DeviceAuthError | DeviceStorageError):
        return False
    return isinstance(exc, DeviceConnectionError | DeviceTimeoutError | TransferError)
