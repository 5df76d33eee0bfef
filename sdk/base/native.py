"""Access to the compiled core, `sdk._native`, with an error that says how to build it."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from sdk.base.artifacts import BUILD_FOLDERS, FILES, artifact_candidates, find_artifact
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


def usable_core_count() -> int:
    """Physical cores among the CPUs this thread may run on (`taskset`, a cpuset): the thread
    count the runtime, the delegate and `kernels.ThreadPool(0)` take by default."""
    return int(load().usable_core_count())


# ---------------------------------------------------------------- the on-device runner binaries
#: Android ABI names -> the folder of a checkout's `build/` holding the static Linux build for
#: that ABI (the Makefile's build dirs); sdk.base.artifacts holds the one lookup.
EDGE_RUN_ABIS: dict[str, str] = dict(BUILD_FOLDERS)
EDGE_RUN_NAME = FILES["edge-run"]


def edge_run_candidates(abi: str) -> list[Path]:
    """Where `edge_run_path(abi)` looks, in order (sdk.base.artifacts.artifact_candidates)."""
    return [c.path for c in artifact_candidates("edge-run", abi)]


def edge_run_path(abi: str) -> Path:
    """The `edge-run` executable for an Android ABI name ("x86_64", "arm64-v8a",
    "armeabi-v7a"), ready to push to a device.

    Looks in $EDGESDK_BIN_DIR/<abi>/, then the binaries the wheel ships (every ABI), then a
    checkout's build folders (`make`, `make native-cross`). Raises NativeBuildError naming the
    places it looked and how to provide one when none exists (sdk.base.artifacts).
    """
    return find_artifact("edge-run", abi)
