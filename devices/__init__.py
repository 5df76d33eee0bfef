"""sdk.devices: deploy, profile and validate on phones (ADB), boards (SSH) and the local host.

Installed as `sdk.devices`; the source folder is `devices/` at the top of the repository.

    from sdk.devices import open_device
    with open_device("ssh:pi@rpi4.local") as dev:
        print(dev.info().summary())
        dev.push("model.tflite")

Transports import their libraries (adb-shell, asyncssh: the `[devices]` extra) only when used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from sdk.devices.base import CommandResult, Device, quote
from sdk.devices.config import (
    ABIS,
    DelegateConfig,
    DeviceConfig,
    DeviceConfigFile,
    RunnerConfig,
    load_device_config,
    parse_device_string,
    resolve_device,
)
from sdk.devices.errors import (
    DeviceAuthError,
    DeviceCommandError,
    DeviceConfigError,
    DeviceConnectionError,
    DeviceError,
    DeviceNotFoundError,
    DeviceStorageError,
    DeviceTimeoutError,
    EmulatorError,
    RunnerError,
    TransferError,
    is_transient,
)
from sdk.devices.info import DeviceInfo, ThermalState
from sdk.devices.local import LocalDevice

__all__ = [
    "ABIS",
    "AdbDevice",
    "CommandResult",
    "DelegateConfig",
    "Device",
    "DeviceAuthError",
    "DeviceCommandError",
    "DeviceConfig",
    "DeviceConfigError",
    "DeviceConfigFile",
    "DeviceConnectionError",
    "DeviceError",
    "DeviceInfo",
    "DeviceNotFoundError",
    "DeviceStorageError",
    "DeviceTimeoutError",
    "EmulatorError",
    "LocalDevice",
    "RunnerConfig",
    "RunnerError",
    "SshDevice",
    "ThermalState",
    "TransferError",
    "is_transient",
    "load_device_config",
    "open_device",
    "parse_device_string",
    "quote",
    "resolve_device",
]

_LAZY = {"AdbDevice": "sdk.devices.adb", "SshDevice": "sdk.devices.ssh"}

if TYPE_CHECKING:  # pragma: no cover
    from sdk.devices.adb import AdbDevice
    from sdk.devices.ssh import SshDevice


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sdk.devices' has no attribute {name!r}")


def open_device(spec: str | DeviceConfig | Device, *, config: Any = None,
                connect: bool = True) -> Device:
    """A Device for a device string, a device-config name, a DeviceConfig (or a Device).

    `config` is the device config file (a path or a loaded `DeviceConfigFile`; default
    $EDGESDK_DEVICES or ~/.config/edgesdk/devices.toml).
    """
    if isinstance(spec, Device):
        return spec.connect() if connect else spec
    cfg = resolve_device(spec, config=config)
    device: Device
    if cfg.transport == "local":
        device = LocalDevice(cfg)
    elif cfg.transport == "adb":
        from sdk.devices.adb import AdbDevice

        device = AdbDevice(cfg)
    else:
        from sdk.devices.ssh import SshDevice

        device = SshDevice(cfg)
    return device.connect() if connect else device
