"""Run stock LiteRT's XNNPACK at a lower x86 ISA level than this CPU has, at native speed.

Why: our sub-byte kernels and XNNPACK's int8 kernels meet on different ground on different
CPUs. With AVX-512 VNNI, vpdpbusd multiplies int8 x int8 as fast as 2-bit codes x int8; on an
AVX2-class CPU (Haswell .. Zen 3, most x86 boards) XNNPACK's int8 GEMM multiplies int16 pairs
with vpmaddwd (16 products per instruction) while 2-bit codes can take vpmaddubsw (32 products,
exact because |code| <= 3 cannot saturate int16). To measure the AVX2 case on an AVX-512 host,
both sides must run their AVX2 kernels: ours by `EDGE_KERNEL_ISA=avx2`, LiteRT's by this module.
Emulators (qemu, SDE) would change the timing; this changes only the kernel choice.

How: ai-edge-litert links XNNPACK statically into `libpywrap_litert_common.so`, and that
library keeps its local symbol table. XNNPACK derives one `hardware_config` (a bit set of ISA
extensions at offset 8) from cpuinfo, once per process, and picks every operator's
micro-kernels from it, lazily, the first time an operator of that kind is created.
`restrict_xnnpack("avx2")` runs the detection (`xnn_init_hardware_config`), checks that the bits
it knows mean what it expects on this CPU, and clears every extension above AVX2 + FMA3 before
any interpreter exists. `xnnpack_selected_kernels()` then reads the operator configs back and
names the micro-kernels XNNPACK chose (resolved through the same symbol table), and
`check_restricted()` fails when any of them needs more than the level asked for: the benchmark
proves what it ran, it does not assume it.

Bit layout (XNNPACK as linked into ai-edge-litert 2.3.0, read from `init_hardware_config`):
bit 0 SSE2, 1 SSSE3-class baseline, 2-6 SSE4.x / AVX / F16C / FMA3, 7 AVX2, 8 AVX256SKX,
9 AVX512F, 10 AVX512SKX, 11 AVX512VBMI, 12 AVX512FP16, 13 AVX512BF16, 14 AVX-VNNI,
15 AVX-VNNI-INT8, 16 AVX256VNNI, 17 AVX256VNNIGFNI, 18 AVX512VNNI, 19 AVX512VNNIGFNI,
20 AMX (XNNPACK's `xnn_arch_x86_*` enum). An AVX2-class CPU keeps bits 0-7; the `avxvnni` level
(Alder Lake / N100 class: AVX2 + VEX AVX-VNNI, no AVX-512) bits 0-7 and 14; the `avx512vnni`
level (Ice Lake / Zen 4 class: AVX-512 VNNI without AMX, AVX-VNNI or FP16) keeps bits 0-11 and
16-19, so that on a Sapphire Rapids-class host XNNPACK runs the kernels it runs on Zen 4 rather
than its AMX tiles.

Benchmark tooling only: nothing in the SDK imports it.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

LIBRARY = "libpywrap_litert_common.so"
#: the arch-flag bits each level keeps (see the module docstring)
LEVELS = {"avx2": (1 << 8) - 1, "avxvnni": ((1 << 8) - 1) | (1 << 14),
          "avx512vnni": ((1 << 12) - 1) | (0xF << 16)}
#: substrings of micro-kernel names that need more than AVX2 + FMA3
ABOVE_AVX2 = ("avx512", "avxvnni", "avx256", "amx")
#: per level, substrings of micro-kernel names that need more than the level
#: ("avx512vnni" does not contain "avxvnni": AVX-VNNI is the VEX-encoded client extension)
ABOVE = {"avx2": ABOVE_AVX2, "avxvnni": ("avx512", "avx256", "amx", "avxvnniint8"),
         "avx512vnni": ("avxvnni", "amx", "avx512fp16", "avx512bf16")}
#: the cpu_features() key a level needs
NEEDS = {"avx2": "avx2", "avxvnni": "avxvnni", "avx512vnni": "avx512vnni"}
_AVX2_BIT = 1 << 7
_AVX512F_BIT = 1 << 9
_ARCH_FLAGS_OFFSET = 8


class LiteRTIsaError(RuntimeError):
    """The ISA restriction cannot be applied or did not take."""


@dataclass(frozen=True)
class Symbol:
    address: int  # relative to the library's load base
    size: int
    kind: str  # nm's type letter


@dataclass(frozen=True)
class Restriction:
    """What `restrict_xnnpack` did."""

    level: str
    library: str
    arch_flags_detected: int
    arch_flags: int
    notes: list[str] = field(default_factory=list)


def _loaded_library() -> tuple[Path, int]:
    """The path and load base of LiteRT's common library in this process."""
    from ai_edge_litert import interpreter  # noqa: F401  (loads the library)

    rows = [line.split() for line in Path("/proc/self/maps").read_text().splitlines()
            if line.rstrip().endswith(LIBRARY)]
    if not rows:
        raise LiteRTIsaError(f"{LIBRARY} is not loaded: is this ai-edge-litert's interpreter?")
    base = min(int(r[0].split("-")[0], 16) - int(r[2], 16) for r in rows)
    return Path(rows[0][-1]), base


@cache
def _symbols(path: Path) -> dict[str, Symbol]:
    nm = shutil.which("nm")
    if nm is None:
        raise LiteRTIsaError("reading LiteRT's symbol table needs binutils' `nm`")
    out = subprocess.run([nm, "-S", "--defined-only", str(path)], capture_output=True,
                         text=True, check=True).stdout
    table: dict[str, Symbol] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            table.setdefault(parts[3], Symbol(int(parts[0], 16), int(parts[1], 16), parts[2]))
        elif len(parts) == 3:
            table.setdefault(parts[2], Symbol(int(parts[0], 16), 0, parts[1]))
    for needed in ("xnn_init_hardware_config", "hardware_config"):
        if needed not in table:
            raise LiteRTIsaError(f"{path} has no symbol {needed!r} (stripped, or another "
                                 "XNNPACK version): cannot restrict its ISA")
    return table


def _functions_by_address(path: Path) -> dict[int, str]:
    return {s.address: name for name, s in _symbols(path).items() if s.kind in "tT"}


def restrict_xnnpack(level: str = "avx2") -> Restriction:
    """Make XNNPACK in this process choose kernels for `level` ("avx2", "avxvnni",
    "avx512vnni") only.

    Call before the first LiteRT interpreter of the process is created; raises LiteRTIsaError
    when that is too late, when the CPU lacks the level, or when the library is not the one
    whose layout this module knows.
    """
    if level not in LEVELS:
        raise LiteRTIsaError(f"unknown ISA level {level!r}; known: {', '.join(LEVELS)}")
    path, base = _loaded_library()
    syms = _symbols(path)
    configs = {name: s for name, s in syms.items()
               if name.endswith("_gemm_config") and s.kind in "bd" and s.size > 0}
    chosen = [name for name, s in configs.items()
              if any(ctypes.string_at(base + s.address, s.size))]
    if chosen:
        raise LiteRTIsaError("XNNPACK already chose kernels in this process "
                             f"({', '.join(sorted(chosen)[:3])}...): restrict it before creating "
                             "any interpreter")
    init = ctypes.CFUNCTYPE(ctypes.c_void_p)(base + syms["xnn_init_hardware_config"].address)
    config = init()
    if config != base + syms["hardware_config"].address:
        raise LiteRTIsaError("xnn_init_hardware_config did not return the hardware_config "
                             "symbol: unknown XNNPACK layout")
    flags = ctypes.c_uint64.from_address(config + _ARCH_FLAGS_OFFSET)
    detected = int(flags.value)
    from sdk.base.native import cpu_features

    cpu = cpu_features()
    if not cpu.get(NEEDS[level]):
        raise LiteRTIsaError(f"this CPU has no {level}: nothing to restrict to")
    if bool(detected & _AVX2_BIT) != bool(cpu.get("avx2")) or \
            bool(detected & _AVX512F_BIT) != bool(cpu.get("avx512f")):
        raise LiteRTIsaError(f"XNNPACK's arch flags {detected:#x} do not match this CPU's "
                             "features in the layout this module knows (AVX2 = bit 7, AVX512F = "
                             "bit 9): another XNNPACK version?")
    flags.value = detected & LEVELS[level]
    notes = [] if detected & ~LEVELS[level] else [f"this CPU has nothing above {level}"]
    return Restriction(level, str(path), detected, int(flags.value), notes)


def xnnpack_selected_kernels() -> dict[str, list[str]]:
    """The micro-kernels in each XNNPACK operator config initialised so far in this process,
    by config name (e.g. "qs8_qc8w_gemm_config": ["xnn_qs8_qc8w_gemm_minmax_fp32_ukernel_..."])."""
    path, base = _loaded_library()
    functions = _functions_by_address(path)
    selected: dict[str, list[str]] = {}
    for name, s in _symbols(path).items():
        if not name.endswith("_config") or s.kind not in "bd" or s.size < 8:
            continue
        raw = ctypes.string_at(base + s.address, s.size - s.size % 8)
        words = memoryview(raw).cast("Q")
        found = (functions.get(w - base, "") for w in words if w >= base)
        names = sorted({f for f in found if "ukernel" in f})
        if names:
            selected[name] = names
    return selected


def check_restricted(level: str = "avx2") -> dict[str, list[str]]:
    """The selected kernels, after checking that none needs more than `level`."""
    selected = xnnpack_selected_kernels()
    if not selected:
        raise LiteRTIsaError("no XNNPACK operator has chosen kernels yet: run a model first")
    above = sorted({k for names in selected.values() for k in names
                    if any(tag in k for tag in ABOVE[level])})
    if above:
        raise LiteRTIsaError(f"XNNPACK chose kernels above {level}: {', '.join(above[:4])}")
    return selected


def select_isa(level: str) -> Restriction | None:
    """The benchmarks' `--litert-isa LEVEL`: "native" changes nothing; a level restricts
    XNNPACK (above) and sets EDGE_KERNEL_ISA so that our kernels, in this process and in the
    edge-run processes it starts, take the same level."""
    if level == "native":
        return None
    restriction = restrict_xnnpack(level)
    os.environ["EDGE_KERNEL_ISA"] = level
    return restriction


def kernels_report(level: str) -> dict[str, list[str]]:
    """What XNNPACK chose, checked against the level when one was asked for."""
    return xnnpack_selected_kernels() if level == "native" else check_restricted(level)
