"""`sdk.base.native.edge_run_path`: where the device manager finds the edge-run binaries to push."""

from __future__ import annotations

import stat

import pytest

from sdk.base import artifacts, native
from sdk.base.errors import NativeBuildError


def test_unknown_abi_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown ABI 'mips'"):
        native.edge_run_path("mips")


def test_override_directory_wins(tmp_path, monkeypatch) -> None:
    fake = tmp_path / "arm64-v8a" / "edge-run"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("EDGESDK_BIN_DIR", str(tmp_path))
    assert native.edge_run_path("arm64-v8a") == fake


def test_missing_build_names_where_it_looked(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EDGESDK_BIN_DIR", str(tmp_path / "bin"))
    monkeypatch.setattr(artifacts, "checkout_root", lambda: tmp_path)
    with pytest.raises(NativeBuildError, match=r"edge-run for armeabi-v7a is not built") as err:
        native.edge_run_path("armeabi-v7a")
    assert str(tmp_path / "build" / "armv7" / "edge-run") in str(err.value)
    assert "make native-cross" in str(err.value)
