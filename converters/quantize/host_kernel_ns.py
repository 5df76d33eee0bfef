"""The planner's kernel table measured on this host, cached.

`planner.KERNEL_NS` (ns per MAC, or per output element, of LiteRT's CPU kernels by op class and
precision) was measured on one host; on another CPU its ratios can be wrong in sign (int8
depthwise ~18x slower than float on an Intel Xeon, faster on the AMD EPYC the table came from),
and the planner chooses by those ratios. `benchmarks/precision.py kernels --save` measures the
same table here and writes it with `save` under ~/.cache/edgesdk/kernel-ns/ (`$XDG_CACHE_HOME`
first), keyed by this host: the CPU's model name, the ISA extensions the kernels choose by, the
edgesdk version and the LiteRT runtime's (`host_key`). The planner's latency estimate
(`planner.CostModel`) takes the table of this host's key where one is cached and whole (every
op class and precision of the static table, finite and positive: `load`), the static table
otherwise; the report names which (`KernelTable.source`). `EDGESDK_KERNEL_NS=static` keeps the
static table (tests that pin the planner's choices to it, a comparison).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sdk.base.fileio import atomic_write_text
from sdk.base.host import cpu_name, package_versions
from sdk.base.version import __version__

#: the ISA extensions (as /proc/cpuinfo names them) that pick LiteRT's / XNNPACK's kernels:
#: two hosts with the same model name and these are one host for the table
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm",
             "sve", "sve2")
#: the runtime whose kernels the table times
RUNTIME = "ai-edge-litert"
#: the environment variable that keeps the static table ("static")
ENV = "EDGESDK_KERNEL_NS"


@dataclass(frozen=True)
class KernelTable:
    """A kernel table (op class -> precision -> ns per unit of work) and where it came from."""

    table: Mapping[str, Mapping[str, float]]
    source: str
    #: the cache file it was read from (None: the static table)
    path: Path | None = None


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgesdk" / \
        "kernel-ns"


def _isa() -> list[str]:
    """The `ISA_FLAGS` this CPU has (/proc/cpuinfo's flags / Features line; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            have = set(line.split(":", 1)[1].split())
            return [f for f in ISA_FLAGS if f in have]
    return []


@functools.cache
def _key() -> tuple[tuple[str, str], ...]:
    return (("cpu", cpu_name()), ("isa", ",".join(_isa())), ("edgesdk", __version__),
            (RUNTIME, package_versions([RUNTIME])[RUNTIME]))


def host_key() -> dict[str, str]:
    """What a cached table must have been measured on to be used here (read once a process:
    every `CostModel()` asks)."""
    return dict(_key())


def cache_path(key: Mapping[str, str] | None = None) -> Path:
    key = dict(host_key() if key is None else key)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return cache_dir() / f"{digest[:20]}.json"


def whole(table: Mapping[str, Mapping[str, float]], like: Mapping[str, Mapping[str, float]]
          ) -> bool:
    """Every op class and precision of `like` in `table`, each a finite positive number."""
    try:
        return all(math.isfinite(float(table[c][p])) and float(table[c][p]) > 0.0
                   for c, row in like.items() for p in row)
    except (KeyError, TypeError, ValueError):
        return False


def save(table: Mapping[str, Mapping[str, float]], how: str) -> Path:
    """Write `table`, measured here (`how`: by what), as this host's; returns the file."""
    key = host_key()
    path = cache_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({
        "key": key, "measured_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "how": how, "table": {c: dict(row) for c, row in table.items()}}, indent=1))
    return path


_read: dict[Path, tuple[tuple[int, int], KernelTable | None]] = {}


def load(like: Mapping[str, Mapping[str, float]]) -> KernelTable | None:
    """This host's cached table, where one is cached under its key and `whole` against `like`
    (the static table); None otherwise (none cached, another host's key in the file, a table
    missing a class or precision, a file that does not parse). Read again when the file
    changes."""
    key = host_key()
    path = cache_path(key)
    try:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        return None
    if path in _read and _read[path][0] == stamp:
        return _read[path][1]
    found: KernelTable | None = None
    try:
        data = json.loads(path.read_text())
        if data.get("key") == key and whole(data.get("table", {}), like):
            table = {c: {p: float(v) for p, v in row.items()} for c, row in data["table"].items()}
            found = KernelTable(table, f"a table measured on this host ({key['cpu']}, "
                                       f"{data.get('measured_utc', '?')} UTC; {path})", path)
    except (OSError, ValueError, AttributeError, TypeError):
        found = None
    _read[path] = (stamp, found)
    return found


def kernel_table(static: Mapping[str, Mapping[str, float]], static_source: str) -> KernelTable:
    """This host's measured table (`load`), else the static one; the static one where
    `EDGESDK_KERNEL_NS=static`."""
    if os.environ.get(ENV, "").strip().lower() != "static":
        found = load(static)
        if found is not None:
            return found
    return KernelTable(static, static_source)


__all__ = ["ENV", "ISA_FLAGS", "KernelTable", "cache_dir", "cache_path", "host_key",
           "kernel_table", "load", "save", "whole"]
