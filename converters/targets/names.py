"""The NPU targets `sdk.export(..., target=...)` knows, and how each is compiled.

Arm Ethos-U (Vela's accelerator configurations) and Rockchip RKNN platforms (rknn-toolkit2's
`target_platform`). A target name is case-insensitive.
"""

from __future__ import annotations

from dataclasses import dataclass

from sdk.base.errors import ConversionError

#: Vela 5.x accelerator configurations
ETHOS_U = ("ethos-u55-32", "ethos-u55-64", "ethos-u55-128", "ethos-u55-256",
           "ethos-u65-256", "ethos-u65-512",
           "ethos-u85-128", "ethos-u85-256", "ethos-u85-512", "ethos-u85-1024", "ethos-u85-2048")
#: rknn-toolkit2 platforms with an NPU this SDK compiles for
RKNN = ("rk3562", "rk3566", "rk3568", "rk3576", "rk3588")

#: Vela's system configuration and memory mode per Ethos-U family (from Arm/vela.ini): a
#: typical SoC for each, as Arm's own examples pick them
VELA_SYSTEM = {
    "ethos-u55": ("Ethos_U55_High_End_Embedded", "Shared_Sram"),
    "ethos-u65": ("Ethos_U65_High_End", "Dedicated_Sram"),
    "ethos-u85": ("Ethos_U85_SYS_DRAM_Mid", "Dedicated_Sram_384KB"),
}


@dataclass(frozen=True)
class Target:
    """A compile target: `name` as the user wrote it (normalised), the `compiler` that builds
    for it ("vela" or "rknn")."""

    name: str
    compiler: str

    @property
    def family(self) -> str:
        return self.name.rsplit("-", 1)[0] if self.compiler == "vela" else "rknn"


def all_targets() -> tuple[str, ...]:
    return ETHOS_U + RKNN


def parse_target(name: str) -> Target:
    """The target called `name`; a ConversionError lists the known ones otherwise."""
    key = str(name).strip().lower()
    if key in ETHOS_U:
        return Target(key, "vela")
    if key in RKNN:
        return Target(key, "rknn")
    raise ConversionError(f"unknown NPU target {name!r}; known targets: "
                          f"{', '.join(all_targets())}")
