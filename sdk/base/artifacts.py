"""Where the device-side artefacts are: `edge-run` and the edgesdk TFLite delegate, per ABI.

The one lookup of them (issue 16): `sdk.base.native.edge_run_path`, `sdk.run.delegate_path`
and the device runners (sdk.devices) all call `find_artifact`. In order, it looks in

1. `$EDGESDK_BIN_DIR/<abi>/<file>`: the user's own builds (for the host delegate loaded in
   this process, `$EDGESDK_DELEGATE` too, naming the file itself);
2. the wheel: `sdk/bin/<abi>/<file>` (every ABI; `sdk/bin/manifest.json` says which ABIs the
   wheel was built with, and why one was left out), then, for this host's ABI, the delegate
   beside `sdk._native`;
3. a source checkout's build folders: `build/host`, `build/aarch64`, `build/armv7` (`make`,
   `make native-cross`) and `build/android-<abi>` (`make android`, edge-run only).

A miss raises NativeBuildError naming every place it looked, what the wheel's manifest says about
that ABI, and how to provide one. A device config may also name its own edge-run
(`runner.edge_run`, sdk.devices.config).
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from sdk.base.errors import NativeBuildError

#: the ABIs edgesdk builds the device artefacts for (Android ABI names)
ABIS: tuple[str, ...] = ("arm64-v8a", "armeabi-v7a", "x86_64")
#: artefact kind -> its file name
FILES: dict[str, str] = {"edge-run": "edge-run", "delegate": "libedgesdk_delegate.so"}
#: ABI -> the folder of a checkout's build/ that holds its static Linux build (the Makefile's)
BUILD_FOLDERS: dict[str, str] = {"x86_64": "host", "arm64-v8a": "aarch64", "armeabi-v7a": "armv7"}
#: ABI -> the make target of a checkout that builds it
MAKE_TARGETS: dict[str, str] = {"x86_64": "native-tests", "arm64-v8a": "native-cross",
                                "armeabi-v7a": "native-cross"}
#: the environment variable naming a folder of the user's own builds: <dir>/<abi>/<file>
BIN_DIR_ENV = "EDGESDK_BIN_DIR"
#: the environment variable naming the host delegate library itself
DELEGATE_ENV = "EDGESDK_DELEGATE"
#: platform.machine() -> ABI
_MACHINES: dict[str, str] = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64-v8a",
                             "arm64": "arm64-v8a", "armv7l": "armeabi-v7a",
                             "armv8l": "armeabi-v7a"}


@dataclass(frozen=True)
class Candidate:
    """One place the lookup looks: the path and where that place comes from."""

    path: Path
    source: str  #: "EDGESDK_BIN_DIR", "wheel", "checkout", ...

    def __str__(self) -> str:
        return f"{self.path} ({self.source})"


def host_abi() -> str | None:
    """The ABI of this Python process's machine, or None when edgesdk builds nothing for it."""
    return _MACHINES.get(platform.machine().lower())


def package_dir() -> Path:
    """The installed `sdk` package folder (a wheel's bin/ lives here)."""
    return Path(__file__).resolve().parent.parent


def checkout_root() -> Path | None:
    """The source checkout this package runs from (editable install), or None for a wheel."""
    root = package_dir().parent
    return root if (root / "native" / "CMakeLists.txt").is_file() else None


def _native_dir() -> Path | None:
    """Where `sdk._native` was loaded from (an editable install keeps it in its build folder)."""
    try:
        from sdk import _native
    except ImportError:
        return None
    return Path(_native.__file__).resolve().parent


def _check(kind: str, abi: str) -> None:
    if kind not in FILES:
        raise ValueError(f"unknown artefact {kind!r}; choose from {sorted(FILES)}")
    if abi not in ABIS:
        raise ValueError(f"unknown ABI {abi!r}; {kind} is built for {sorted(ABIS)}")


def artifact_candidates(kind: str, abi: str, *, in_process: bool = False) -> list[Candidate]:
    """Every place `find_artifact(kind, abi)` looks, in order. `in_process`: the delegate for
    LiteRT in this Python process (the one built with sdk._native comes before the static device
    build; a device of this host's ABI gets the static one first: Android has no libstdc++)."""
    _check(kind, abi)
    name = FILES[kind]
    out: list[Candidate] = []
    override = os.environ.get(BIN_DIR_ENV)
    if override:
        out.append(Candidate(Path(override) / abi / name, BIN_DIR_ENV))
    host_delegate: list[Candidate] = []
    if kind == "delegate" and abi == host_abi():
        if os.environ.get(DELEGATE_ENV):
            out.insert(0, Candidate(Path(os.environ[DELEGATE_ENV]), DELEGATE_ENV))
        native = _native_dir()
        if native is not None:
            host_delegate.append(Candidate(native / name, "beside sdk._native"))
    wheel = [Candidate(package_dir() / "bin" / abi / name, "wheel")]
    out += host_delegate + wheel if in_process else wheel + host_delegate
    root = checkout_root()
    if root is not None:
        out.append(Candidate(root / "build" / BUILD_FOLDERS[abi] / name,
                             f"checkout: make {MAKE_TARGETS[abi]}"))
        if kind == "edge-run":
            out.append(Candidate(root / "build" / f"android-{abi}" / name,
                                 "checkout: make android"))
    return out


def wheel_manifest() -> dict[str, dict[str, object]]:
    """What the wheel's build said about each ABI (`sdk/bin/manifest.json`): {abi: {"built":
    bool, "reason": ...}}; empty when this is not a wheel (or an old one)."""
    path = package_dir() / "bin" / "manifest.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    abis = data.get("abis") if isinstance(data, dict) else None
    return {str(k): dict(v) for k, v in abis.items() if isinstance(v, dict)} \
        if isinstance(abis, dict) else {}


def _usable(kind: str, path: Path) -> bool:
    if not path.is_file():
        return False
    return kind != "edge-run" or os.access(path, os.X_OK)


def find_artifact(kind: str, abi: str, *, in_process: bool = False) -> Path:
    """The file of artefact `kind` ("edge-run" or "delegate") for `abi`; NativeBuildError naming
    every place looked at, and how to get one, when there is none (`in_process`: see
    `artifact_candidates`)."""
    candidates = artifact_candidates(kind, abi, in_process=in_process)
    for candidate in candidates:
        if _usable(kind, candidate.path):
            return candidate.path
    what = "edge-run" if kind == "edge-run" else "the edgesdk delegate library"
    lines = [f"{what} for {abi} is not built (looked in: "
             + ", ".join(str(c) for c in candidates) + ")"]
    entry = wheel_manifest().get(abi)
    if entry is not None and not entry.get("built", False):
        lines.append(f"this wheel was built without {abi}: {entry.get('reason', 'no reason given')}"
                     "; rebuild the wheel where that is installed (docs/install.md)")
    fixes = [f"put your own build at ${BIN_DIR_ENV}/{abi}/{FILES[kind]}"]
    if checkout_root() is not None:
        fixes.insert(0, f"run `make {MAKE_TARGETS[abi]}` in the edgesdk checkout")
    lines.append(" or ".join(fixes))
    raise NativeBuildError("; ".join(lines))


__all__ = ["ABIS", "BIN_DIR_ENV", "BUILD_FOLDERS", "DELEGATE_ENV", "FILES", "MAKE_TARGETS",
           "Candidate", "artifact_candidates", "checkout_root", "find_artifact", "host_abi",
           "package_dir", "wheel_manifest"]
