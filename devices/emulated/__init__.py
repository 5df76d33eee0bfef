"""Emulated devices for tests, CI and demos: real protocols, emulated CPUs.

* `EmulatedPhone`: our ADB device-side daemon (the wire protocol, RSA auth, shell, sync) on a TCP
  port, rooted in a sandbox directory, running Arm binaries through qemu-user.
* `EmulatedBoard`: a real OpenSSH sshd on loopback; Arm binaries run through the device config's
  exec_prefix (qemu-user).

Both are context managers and both hand out the `DeviceConfig` that reaches them.
"""

from __future__ import annotations

from sdk.devices.emulated.board import EmulatedBoard
from sdk.devices.emulated.qemu import ARCHS, qemu_command

__all__ = ["ARCHS", "EmulatedBoard", "EmulatedPhone", "qemu_command"]


def __getattr__(name: str) -> object:
    if name == "EmulatedPhone":
        from sdk.devices.emulated.phone import EmulatedPhone

        return EmulatedPhone
    raise AttributeError(f"module 'sdk.devices.emulated' has no attribute {name!r}")
