"""What a device is: read with one shell command (`PROBE_SCRIPT`) and parsed into `DeviceInfo`.

The probe reads what any Linux or Android shell can: `uname`, /proc/cpuinfo, /proc/meminfo, the
cpufreq and thermal files in /sys, `getprop` on Android, /etc/os-release elsewhere. Fields that a
device does not expose stay None; nothing is guessed.

Emulated devices say so: `emulated` names what really executes the device's binaries (for example
"qemu-aarch64 user mode on x86_64"), and `kernel_arch` is what the kernel reports, which on an
emulated board is the host's.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sdk.devices.config import abi_for_arch

#: A marker that cannot occur in the files we read.
_SECTION = "@@edgesdk:"

#: (section, shell command) pairs; each command prints nothing where the file does not exist.
_PROBES: tuple[tuple[str, str], ...] = (
    ("uname", "uname -srm 2>/dev/null"),
    ("cpuinfo", "cat /proc/cpuinfo 2>/dev/null"),
    ("meminfo", "head -n 3 /proc/meminfo 2>/dev/null"),
    ("nproc", "(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null)"),
    ("maxfreq", "for f in /sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq; do "
                "[ -r \"$f\" ] && echo \"$f $(cat \"$f\")\"; done 2>/dev/null"),
    ("governor", "for f in /sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor; do "
                 "[ -r \"$f\" ] && echo \"$f $(cat \"$f\")\"; done 2>/dev/null"),
    ("thermal", "for z in /sys/class/thermal/thermal_zone[0-9]*; do [ -r \"$z/temp\" ] && "
                "echo \"$(cat \"$z/type\" 2>/dev/null) $(cat \"$z/temp\")\"; done 2>/dev/null"),
    ("model", "(cat /proc/device-tree/model 2>/dev/null; echo; "
              "cat /sys/class/dmi/id/product_name 2>/dev/null) | tr -d '\\000'"),
    ("getprop", "(command -v getprop >/dev/null 2>&1 && getprop)"),
    ("os", "cat /etc/os-release 2>/dev/null"),
)


def _script(sections: tuple[str, ...]) -> str:
    parts = []
    for name, command in _PROBES:
        if name in sections:
            parts += [f"echo {_SECTION}{name}", command]
    return "; ".join([*parts, f"echo {_SECTION}end"])


#: One shell command that prints everything `parse_probe` reads.
PROBE_SCRIPT = _script(tuple(name for name, _ in _PROBES))
#: Just the governors and temperatures (read before and after a profile run).
STATE_SCRIPT = _script(("governor", "thermal"))


@dataclass(frozen=True)
class ThermalState:
    """CPU frequency governors and temperatures at one moment (None where unreadable)."""

    governor: str | None = None                      #: one name, or "mixed: a,b"
    temperatures_c: Mapping[str, float] = field(default_factory=dict)  #: thermal zone -> deg C

    @property
    def max_temperature_c(self) -> float | None:
        return max(self.temperatures_c.values()) if self.temperatures_c else None


@dataclass(frozen=True)
class DeviceInfo:
    """A device as it describes itself, plus what we know from its config."""

    name: str                           #: the device string or config name
    transport: str                      #: adb, ssh, local
    abi: str | None                     #: the ABI we build binaries for (arm64-v8a, ...)
    kernel_arch: str | None             #: `uname -m`
    kernel: str | None                  #: `uname -sr`
    cpu_model: str | None
    cpu_features: tuple[str, ...]       #: /proc/cpuinfo flags / Features of cpu0
    cores: int | None
    max_freqs_khz: tuple[int, ...]      #: per CPU, where cpufreq is readable
    mem_total_bytes: int | None
    mem_available_bytes: int | None
    os: str | None                      #: "Android 14 (SDK 34)", "Debian GNU/Linux 12 (bookworm)"
    model: str | None                   #: phone or board model
    state: ThermalState = field(default_factory=ThermalState)
    #: None on real hardware; else what really runs the device's code
    emulated: str | None = None
    android_props: Mapping[str, str] = field(default_factory=dict)

    @property
    def governor(self) -> str | None:
        return self.state.governor

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["android_props"] = {k: v for k, v in self.android_props.items()
                                if k.startswith(("ro.product.", "ro.build.version.", "ro.kernel.",
                                                 "ro.hardware", "ro.soc.", "ro.edgesdk."))}
        return out

    def summary(self) -> str:
        """One line for tables and logs."""
        parts = [self.abi or self.kernel_arch or "?", self.model or self.cpu_model or "",
                 self.os or ""]
        if self.cores:
            parts.append(f"{self.cores} cores")
        if self.emulated:
            parts.append(f"emulated: {self.emulated}")
        return ", ".join(p for p in parts if p)


def split_sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith(_SECTION):
            current = sections.setdefault(line[len(_SECTION):].strip(), [])
            continue
        if current is not None:
            current.append(line.rstrip("\r"))
    return sections


_GETPROP = re.compile(r"^\[([^\]]+)\]: \[(.*)\]$")


def parse_getprop(lines: list[str]) -> dict[str, str]:
    props = {}
    for line in lines:
        match = _GETPROP.match(line.strip())
        if match:
            props[match.group(1)] = match.group(2)
    return props


def parse_state(sections: Mapping[str, list[str]]) -> ThermalState:
    governors = sorted({line.split()[-1] for line in sections.get("governor", []) if line.split()})
    governor = None
    if len(governors) == 1:
        governor = governors[0]
    elif governors:
        governor = "mixed: " + ",".join(governors)
    temps: dict[str, float] = {}
    for line in sections.get("thermal", []):
        parts = line.split()
        if len(parts) < 2:
            continue
        try:
            value = float(parts[-1])
        except ValueError:
            continue
        # sysfs reports millidegrees; a few drivers report degrees
        celsius = value / 1000.0 if abs(value) > 200 else value
        zone = " ".join(parts[:-1]) or f"zone{len(temps)}"
        while zone in temps:
            zone += "'"
        temps[zone] = celsius
    return ThermalState(governor=governor, temperatures_c=temps)


def _cpuinfo(lines: list[str]) -> tuple[str | None, tuple[str, ...], int]:
    model = None
    features: tuple[str, ...] = ()
    processors = 0
    implementer = part = None
    for line in lines:
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "processor" and value.isdigit():
            processors += 1
        elif key in ("model name", "hardware", "cpu model") and model is None and value:
            model = value
        elif key in ("flags", "features") and not features:
            features = tuple(value.split())
        elif key == "cpu implementer" and implementer is None:
            implementer = value
        elif key == "cpu part" and part is None:
            part = value
    if model is None and implementer:
        model = f"Arm CPU implementer {implementer} part {part}"
    return model, features, processors


def _meminfo(lines: list[str]) -> tuple[int | None, int | None]:
    values = {}
    for line in lines:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key.strip()] = int(parts[0]) * 1024
    return values.get("MemTotal"), values.get("MemAvailable")


def _os_release(lines: list[str]) -> str | None:
    values = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"')
    return values.get("PRETTY_NAME") or values.get("NAME")


def parse_probe(text: str, *, name: str, transport: str, config_abi: str | None = None,
                exec_prefix: tuple[str, ...] = ()) -> DeviceInfo:
    """Parse the output of PROBE_SCRIPT."""
    sections = split_sections(text)
    uname = " ".join(sections.get("uname", [])).split()
    kernel_arch = uname[-1] if uname else None
    kernel = " ".join(uname[:-1]) or None
    cpu_model, features, processors = _cpuinfo(sections.get("cpuinfo", []))
    nproc = next((int(x) for x in sections.get("nproc", []) if x.strip().isdigit()), None)
    freqs = []
    for line in sections.get("maxfreq", []):
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            freqs.append(int(parts[1]))
    mem_total, mem_avail = _meminfo(sections.get("meminfo", []))
    props = parse_getprop(sections.get("getprop", []))
    model_lines = [x.strip() for x in sections.get("model", []) if x.strip()]
    if props:
        release = props.get("ro.build.version.release")
        sdk_level = props.get("ro.build.version.sdk")
        os_name = f"Android {release}" + (f" (SDK {sdk_level})" if sdk_level else "") \
            if release else "Android"
        brand = props.get("ro.product.manufacturer") or props.get("ro.product.brand") or ""
        model = " ".join(x for x in (brand, props.get("ro.product.model", "")) if x) or None
        abi = props.get("ro.product.cpu.abi") or config_abi
    else:
        os_name = _os_release(sections.get("os", []))
        model = model_lines[0] if model_lines else None
        abi = config_abi or (abi_for_arch(kernel_arch) if kernel_arch else None)
    emulated = None
    if exec_prefix:
        emulated = f"{' '.join(exec_prefix)} (user-mode emulation) on {kernel_arch}"
    elif props.get("ro.kernel.qemu") == "1":
        emulated = props.get("ro.edgesdk.emulator") or f"qemu on {kernel_arch}"
    return DeviceInfo(
        name=name, transport=transport, abi=abi, kernel_arch=kernel_arch, kernel=kernel,
        cpu_model=cpu_model, cpu_features=features, cores=nproc or processors or None,
        max_freqs_khz=tuple(freqs), mem_total_bytes=mem_total, mem_available_bytes=mem_avail,
        os=os_name, model=model, state=parse_state(sections), emulated=emulated,
        android_props=props)
