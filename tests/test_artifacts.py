"""sdk.base.artifacts: the one lookup of edge-run and the delegate for every ABI (issue 16).

A fake installed package (tmp_path/site/sdk with bin/<abi>/...) stands for the wheel, a fake
checkout for `make`'s build folders; every caller (edge_run_path, delegate_path, the device
runners) must find the same files through it.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from sdk.base import artifacts, native
from sdk.base.errors import NativeBuildError
from sdk.run import delegate as run_delegate


def _exe(path: Path, text: str = "#!/bin/sh\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed wheel's `sdk` folder with every ABI's artefacts, no checkout, no overrides."""
    pkg = tmp_path / "site" / "sdk"
    for abi in artifacts.ABIS:
        _exe(pkg / "bin" / abi / "edge-run", f"edge-run {abi}")
        (pkg / "bin" / abi / "libedgesdk_delegate.so").write_text(f"delegate {abi}")
    (pkg / "bin" / "manifest.json").write_text(json.dumps(
        {"format": 1, "abis": {abi: {"built": True} for abi in artifacts.ABIS}}))
    monkeypatch.setattr(artifacts, "package_dir", lambda: pkg)
    monkeypatch.setattr(artifacts, "checkout_root", lambda: None)
    monkeypatch.setattr(artifacts, "_native_dir", lambda: None)
    monkeypatch.delenv(artifacts.BIN_DIR_ENV, raising=False)
    monkeypatch.delenv(artifacts.DELEGATE_ENV, raising=False)
    return pkg


@pytest.mark.parametrize("abi", artifacts.ABIS)
def test_every_caller_finds_the_wheels_files_for_every_abi(wheel: Path, abi: str) -> None:
    assert native.edge_run_path(abi) == wheel / "bin" / abi / "edge-run"
    assert run_delegate.delegate_path(abi) == wheel / "bin" / abi / "libedgesdk_delegate.so"
    from sdk.devices.runners.delegates import edgesdk_delegate
    from sdk.devices.runners.edge_run import local_edge_run

    assert local_edge_run(abi) == wheel / "bin" / abi / "edge-run"
    assert edgesdk_delegate(abi) == wheel / "bin" / abi / "libedgesdk_delegate.so"


def test_own_builds_win_over_the_wheel(wheel: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    mine = _exe(tmp_path / "mine" / "armeabi-v7a" / "edge-run")
    monkeypatch.setenv(artifacts.BIN_DIR_ENV, str(tmp_path / "mine"))
    assert native.edge_run_path("armeabi-v7a") == mine
    # an ABI the override folder lacks still comes from the wheel
    assert native.edge_run_path("arm64-v8a") == wheel / "bin" / "arm64-v8a" / "edge-run"


def test_edge_run_without_exec_bit_is_skipped(wheel: Path) -> None:
    path = wheel / "bin" / "arm64-v8a" / "edge-run"
    path.chmod(0o644)
    with pytest.raises(NativeBuildError, match="edge-run for arm64-v8a is not built"):
        artifacts.find_artifact("edge-run", "arm64-v8a")


def test_in_process_delegate_prefers_the_one_built_with_the_extension(
        wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = artifacts.host_abi()
    if host is None:
        pytest.skip("edgesdk builds nothing for this machine")
    beside = tmp_path / "ext" / "libedgesdk_delegate.so"
    beside.parent.mkdir()
    beside.write_text("in-process")
    monkeypatch.setattr(artifacts, "_native_dir", lambda: beside.parent)
    assert run_delegate.delegate_path() == beside                    # LiteRT in this process
    assert run_delegate.delegate_path(host) == wheel / "bin" / host / "libedgesdk_delegate.so"


def test_a_miss_names_every_place_the_manifest_and_the_fix(
        wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (wheel / "bin" / "armeabi-v7a" / "libedgesdk_delegate.so").unlink()
    (wheel / "bin" / "manifest.json").write_text(json.dumps({"format": 1, "abis": {
        "armeabi-v7a": {"built": False, "reason": "no arm-linux-gnueabihf-g++ (Debian: "
                        "apt-get install g++-arm-linux-gnueabihf)"}}}))
    monkeypatch.setenv(artifacts.BIN_DIR_ENV, str(tmp_path / "mine"))
    with pytest.raises(NativeBuildError) as err:
        run_delegate.delegate_path("armeabi-v7a")
    message = str(err.value)
    assert "the edgesdk delegate library for armeabi-v7a is not built" in message
    assert str(tmp_path / "mine" / "armeabi-v7a" / "libedgesdk_delegate.so") in message
    assert str(wheel / "bin" / "armeabi-v7a" / "libedgesdk_delegate.so") in message
    assert "this wheel was built without armeabi-v7a: no arm-linux-gnueabihf-g++" in message
    assert "EDGESDK_BIN_DIR/armeabi-v7a/libedgesdk_delegate.so" in message
    assert "make native-cross" not in message  # no checkout here


def test_checkout_builds_are_found_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An editable install: the package is the checkout's sdk/ (no bin/), make's build folders."""
    root = tmp_path / "checkout"
    (root / "native").mkdir(parents=True)
    (root / "native" / "CMakeLists.txt").write_text("")
    monkeypatch.setattr(artifacts, "package_dir", lambda: root / "sdk")
    monkeypatch.delenv(artifacts.BIN_DIR_ENV, raising=False)
    assert artifacts.checkout_root() == root
    built = _exe(root / "build" / "aarch64" / "edge-run")
    assert native.edge_run_path("arm64-v8a") == built
    ndk = _exe(root / "build" / "android-armeabi-v7a" / "edge-run")
    assert native.edge_run_path("armeabi-v7a") == ndk
    with pytest.raises(NativeBuildError, match="make native-cross"):
        run_delegate.delegate_path("arm64-v8a")


def test_the_real_package_and_checkout_are_recognised() -> None:
    """This checkout (editable) is found as a checkout, its sdk/ as the package folder."""
    pkg = artifacts.package_dir()
    assert (pkg / "__init__.py").is_file() and pkg.name == "sdk"
    root = artifacts.checkout_root()
    assert root is None or (root / "native" / "CMakeLists.txt").is_file()


def test_unknown_names_are_value_errors() -> None:
    with pytest.raises(ValueError, match="unknown ABI 'mips'"):
        artifacts.find_artifact("edge-run", "mips")
    with pytest.raises(ValueError, match="unknown artefact 'benchmark_model'"):
        artifacts.find_artifact("benchmark_model", "x86_64")
