"""The compiled core loads and sees the same CPU features as the kernel reports."""

from __future__ import annotations

import platform
from pathlib import Path

import sdk
from sdk.base import native


def _proc_cpuinfo_flags() -> set[str]:
    text = Path("/proc/cpuinfo").read_text()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def test_cpu_features_agree_with_proc_cpuinfo() -> None:
    features = sdk.cpu_features()
    flags = _proc_cpuinfo_flags()
    if platform.machine() == "x86_64":
        assert features["arch"] == "x86_64"
        assert features["sse4.1"] == ("sse4_1" in flags)
        assert features["avx2"] == ("avx2" in flags)
        assert features["fma"] == ("fma" in flags and "avx2" in flags)
        assert features["avx512f"] == ("avx512f" in flags)
        assert features["avx512vnni"] == ("avx512_vnni" in flags)
        # AMX-INT8 also needs the OS to grant the tile state: never without the CPU flags
        assert not features["amx_int8"] or {"amx_int8", "amx_tile"} <= flags
        assert not features["neon"] and not features["dotprod"]
    elif platform.machine() == "aarch64":
        assert features["neon"]
        assert features["dotprod"] == ("asimddp" in flags)
        assert features["i8mm"] == ("i8mm" in flags)


def test_physical_cores_is_sane() -> None:
    import os

    cores = native.physical_core_count()
    assert 1 <= cores <= (os.cpu_count() or 1)
