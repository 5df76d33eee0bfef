"""qemu-user for emulated devices: which binary, which CPU, which ABI.

This machine has no binfmt_misc, so Arm programs are always started through qemu explicitly.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from sdk.devices.errors import EmulatorError


@dataclass(frozen=True)
class EmulatedArch:
    name: str           #: aarch64, armv7, x86_64
    abi: str            #: the Android ABI name
    qemu: str | None    #: the qemu-user binary (None: the host runs it natively)
    default_cpu: str | None
    elf_machine: int    #: e_machine of the ELF files it runs
    elf_class: int      #: 1 = 32-bit, 2 = 64-bit


ARCHS: dict[str, EmulatedArch] = {
    # -cpu max has every extension qemu knows (dotprod, i8mm...); pass cpu="cortex-a53" for a
    # core without dotprod
    "aarch64": EmulatedArch("aarch64", "arm64-v8a", "qemu-aarch64-static", "max", 183, 2),
    "armv7": EmulatedArch("armv7", "armeabi-v7a", "qemu-arm-static", "cortex-a15", 40, 1),
    "x86_64": EmulatedArch("x86_64", "x86_64", None, None, 62, 2),
}


def qemu_command(arch: str, cpu: str | None = None) -> list[str]:
    """The exec prefix that runs `arch` binaries here, e.g. ["/usr/bin/qemu-aarch64-static",
    "-cpu", "max"] ([] for x86_64)."""
    try:
        spec = ARCHS[arch]
    except KeyError:
        raise EmulatorError(f"unknown arch {arch!r}; choose one of {sorted(ARCHS)}") from None
    if spec.qemu is None:
        return []
    path = shutil.which(spec.qemu)
    if path is None:
        raise EmulatorError(f"{spec.qemu} is not installed: apt-get install qemu-user-static "
                            "(`make setup` does this when run as root)")
    return [path, "-cpu", cpu or spec.default_cpu or "max"]
