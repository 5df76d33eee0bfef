"""What this host is, for reports and caches: the CPU's name, the installed packages' versions."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo; else what `platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions(packages: Sequence[str]) -> dict[str, str]:
    """{distribution name: its installed version, or "absent"} (recorded with benchmark
    results)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out


__all__ = ["cpu_name", "package_versions"]
