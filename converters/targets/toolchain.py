"""Vendor toolchains that cannot share the SDK's environment, each in a virtual environment the
SDK creates and caches.

rknn-toolkit2 pins numpy <= 1.26.4, onnx <= 1.18, protobuf <= 4.25.4 and torch <= 2.4, none of
which the SDK's own environment can hold. `edgesdk toolchain install rknn` (or
`install_toolchain("rknn")`) makes `~/.cache/edgesdk/toolchains/rknn` (`$EDGESDK_TOOLCHAINS`
moves the parent folder): `python -m venv`, then pip installs the pinned packages from PyPI.
The environment is built under a temporary name and renamed when it imports, so an interrupted
install never looks installed; a marker file records what was installed. The SDK talks to it
through a subprocess (`sdk.converters.targets.rknn`), never by importing it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sdk.base.errors import ToolchainError

ENV_VAR = "EDGESDK_TOOLCHAINS"
MARKER = "edgesdk-toolchain.json"


@dataclass(frozen=True)
class ToolchainSpec:
    name: str
    #: pip requirements, installed in one resolver run
    requirements: tuple[str, ...]
    #: Python that must import in the environment for it to count as working
    check: str
    #: the distribution whose version the marker records
    distribution: str


TOOLCHAINS: dict[str, ToolchainSpec] = {
    # 2.5.0: the newest release on PyPI, with cp38-cp312 wheels for x86_64 Linux; its own pins
    # (numpy<=1.26.4, onnx<=1.18, protobuf<=4.25.4, torch<=2.4) are left to pip's resolver.
    # Its load_tflite parses .tflite files with TensorFlow, which it does not declare and
    # wants at <= 2.14 (2.14.1: the newest with those pins, cp39-cp311 wheels)
    "rknn": ToolchainSpec(
        name="rknn",
        requirements=("rknn-toolkit2==2.5.0", "tensorflow-cpu==2.14.1"),
        check="from rknn.api import RKNN; import tensorflow",
        distribution="rknn-toolkit2",
    ),
}


@dataclass(frozen=True)
class Toolchain:
    name: str
    path: Path
    python: Path
    version: str


def toolchains_dir() -> Path:
    root = os.environ.get(ENV_VAR)
    if root:
        return Path(root).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "edgesdk" / "toolchains"


def install_command(name: str, *, force: bool = False) -> str:
    return f"edgesdk toolchain install {name}" + (" --force" if force else "")


def _spec(name: str) -> ToolchainSpec:
    if name not in TOOLCHAINS:
        raise ToolchainError(f"unknown toolchain {name!r}; known: {', '.join(TOOLCHAINS)}")
    return TOOLCHAINS[name]


def _python_in(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def find_toolchain(name: str, *, verify: bool = False) -> Toolchain:
    """The installed toolchain `name`. A ToolchainError names the command that fixes it when it
    is missing, half-installed or (verify=True) no longer imports."""
    spec = _spec(name)
    path = toolchains_dir() / name
    python = _python_in(path)
    marker = path / MARKER
    if not path.exists():
        raise ToolchainError(f"the {name} toolchain is not installed (looked in {path}); "
                             f"install it with: {install_command(name)}")
    try:
        info = json.loads(marker.read_text())
        version = str(info["version"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ToolchainError(f"the {name} toolchain in {path} is broken (no valid {MARKER}); "
                             f"reinstall it with: {install_command(name, force=True)}") from exc
    if not python.exists():
        raise ToolchainError(f"the {name} toolchain in {path} is broken ({python} is missing); "
                             f"reinstall it with: {install_command(name, force=True)}")
    if verify:
        proc = subprocess.run([str(python), "-I", "-c", spec.check], capture_output=True,
                              text=True, timeout=300, check=False)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise ToolchainError(f"the {name} toolchain in {path} is broken ({spec.check!r} "
                                 f"fails: {last}); reinstall it with: "
                                 f"{install_command(name, force=True)}")
    return Toolchain(name, path, python, version)


def install_toolchain(name: str, *, force: bool = False, python: str | None = None,
                      log: Callable[[str], None] | None = None) -> Toolchain:
    """Create the toolchain's virtual environment (or return the installed one)."""
    spec = _spec(name)
    say = log or (lambda _msg: None)
    final = toolchains_dir() / name
    if final.exists() and not force:
        found = find_toolchain(name, verify=True)  # broken: an error naming --force
        say(f"{name} toolchain already installed in {final} ({spec.distribution} "
            f"{found.version})")
        return found
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(f"{name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    base = python or sys.executable
    start = time.monotonic()
    try:
        _run([base, "-m", "venv", str(partial)], f"create a virtual environment with {base}",
             name)
        venv_python = str(_python_in(partial))
        say(f"installing {' '.join(spec.requirements)} into {final} (from PyPI; rknn-toolkit2 "
            "brings torch 2.4, a few GB)")
        _run([venv_python, "-m", "pip", "install", "--disable-pip-version-check", "-q",
              *spec.requirements], "pip install " + " ".join(spec.requirements), name,
             timeout=3600)
        _run([venv_python, "-I", "-c", spec.check], f"check {spec.check!r}", name)
        version = subprocess.run(
            [venv_python, "-c", "import importlib.metadata as m; "
                                f"print(m.version({spec.distribution!r}))"],
            capture_output=True, text=True, check=True, timeout=120).stdout.strip()
        (partial / MARKER).write_text(json.dumps({
            "name": name, "version": version, "requirements": list(spec.requirements),
            "python": base, "installed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "install_seconds": round(time.monotonic() - start, 1)}, indent=2) + "\n")
        if final.exists():
            shutil.rmtree(final)
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    say(f"installed the {name} toolchain ({spec.distribution} {version}) in {final} in "
        f"{time.monotonic() - start:.0f} s")
    return find_toolchain(name)


def remove_toolchain(name: str) -> bool:
    _spec(name)
    path = toolchains_dir() / name
    if not path.exists():
        return False
    shutil.rmtree(path)
    return True


def _run(cmd: list[str], what: str, name: str, *, timeout: float = 600) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolchainError(f"installing the {name} toolchain: could not {what}: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise ToolchainError(f"installing the {name} toolchain: {what} failed "
                             f"(exit status {proc.returncode}):\n{tail}")
