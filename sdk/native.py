"""Access to the compiled core, `sdk._native`, with an error that says how to build it."""

from __future__ import annotations

from types import ModuleType

from sdk.errors import NativeBuildError


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
