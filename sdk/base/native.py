"""Access to the compiled core, `sdk._native`, with an error that says how to build it."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

from sdk.base.errors import NativeBuildError


def load() -> ModuleType:
    """Return the compiled extension module, or raise NativeBuildError if it was not built."""
    try:
        from sdk import _native
    except ImportError as exc:  # pragma: no cover - only without a build
        raise NativeBuildError(
            "the native core sdk._native is not built: run `make` (or `pip install -e .`) "
            f"in the edgesdk checkout ({exc})"
        ) from exc
    return _native


def cpu_features() -> dict[str, bool | str]:
    """This CPU's features as the native core sees them: {'arch': 'x86_64', 'avx2': True, ...}."""
    return dict(load().cpu_features())


def physical_core_count() -> int:
    """Physical cores of this machine (SMT siblings counted once)."""
    return int(load().physical_core_count())


# ---------------------------------------------------------------- the on-device runner binaries
#: Android ABI names -> the folder of this checkout's `build/` holding the static Linux build for
#: that ABI (the Makefile's build dirs). Static Linux binaries also run on Android (no dynamic
#: loader or libc needed); an NDK build (build/android-<abi>, see README) is used when the
#: Linux one is missing.
EDGE_RUN_ABIS: dict[str, str] = {
    "x86_64": "host",
    "arm64-v8a": "aarch64",
    "armeabi-v7a": "armv7",
}
EDGE_RUN_NAME = "edge-run"


def _checkout_root() -> Path | None:
    """The source checkout this package runs from (editable install), or None for a wheel."""
    root = Path(__file__).resolve().parents[2]  # sdk/base/native.py -> the checkout
    return root if (root / "native" / "CMakeLists.txt").is_file() else None


def edge_run_candidates(abi: str) -> list[Path]:
    """Where `edge_run_path(abi)` looks, in order."""
    if abi not in EDGE_RUN_ABIS:
        raise ValueError(f"unknown ABI {abi!r}; edge-run is built for {sorted(EDGE_RUN_ABIS)}")
    candidates: list[Path] = []
    override = os.environ.get("EDGESDK_BIN_DIR")
    if override:
        candidates.append(Path(override) / abi / EDGE_RUN_NAME)
    # a wheel carries the host build as sdk/bin/<abi>/edge-run
    candidates.append(Path(__file__).resolve().parents[1] / "bin" / abi / EDGE_RUN_NAME)
    root = _checkout_root()
    if root is not None:
        candidates.append(root / "build" / EDGE_RUN_ABIS[abi] / EDGE_RUN_NAME)
        candidates.append(root / "build" / f"android-{abi}" / EDGE_RUN_NAME)
    return candidates


def edge_run_path(abi: str) -> Path:
    """The `edge-run` executable for an Android ABI name ("x86_64", "arm64-v8a",
    "armeabi-v7a"), ready to push to a device.

    Looks in $EDGESDK_BIN_DIR/<abi>/, then the binaries a wheel ships, then this checkout's
    build folders (`make` builds all three). Raises NativeBuildError naming the places it
    looked and the command that builds it when none exists.
    """
    candidates = edge_run_candidates(abi)
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    target = {"x86_64": "native-tests", "arm64-v8a": "native-cross",
              "armeabi-v7a": "native-cross"}[abi]
    raise NativeBuildError(
        f"edge-run for {abi} is not built (looked in: "
        + ", ".join(str(p) for p in candidates)
        + f"); run `make {target}` in the edgesdk checkout")
