"""The markers declared in pyproject.toml are the ones the tests carry: `-m onnx` / `-m tf` select
the tests of an optional extra, and a missing extra skips them with the reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import conftest

ROOT = Path(__file__).resolve().parents[1]


def _collected(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only",
                             "-p", "no:cacheprovider", *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode in (0, 5), result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def test_the_onnx_and_tf_markers_select_their_tests() -> None:
    onnx = _collected("-m", "onnx", "tests/test_onnx_ops.py", "tests/test_tflite_malformed.py")
    assert "test_onnx_ops.py::" in onnx and "test_tflite_malformed.py::" not in onnx
    tf = _collected("-m", "tf", "tests/test_tflite_malformed.py")
    assert "test_tflite_malformed.py::test_truncated_file" in tf
    assert "test_not_a_flatbuffer" not in tf


class _Item:
    def __init__(self, *markers: str) -> None:
        self.markers = set(markers)
        self.added: list[Any] = []

    def get_closest_marker(self, name: str) -> object | None:
        return name if name in self.markers else None

    def add_marker(self, marker: Any) -> None:
        self.added.append(marker)


def test_a_missing_extra_skips_its_tests_and_says_which(monkeypatch) -> None:
    monkeypatch.setitem(conftest.EXTRAS, "onnx", (("edgesdk_no_such_module",),
                                                  "needs the [onnx] extra"))
    marked, plain = _Item("onnx"), _Item()
    conftest.pytest_collection_modifyitems(None, [marked, plain])  # type: ignore[arg-type]
    assert plain.added == []
    [skip] = marked.added
    assert skip.mark.name == "skip" and skip.mark.kwargs["reason"] == "needs the [onnx] extra"


@pytest.mark.parametrize("marker", ["slow", "tf", "onnx", "qemu"])
def test_every_declared_marker_is_used(marker: str) -> None:
    uses = [p for p in (ROOT / "tests").glob("*.py")
            if f"mark.{marker}" in p.read_text() or f"requires_{marker}" in p.read_text()]
    assert len(uses) > 1, f"the {marker!r} marker is declared in pyproject.toml but unused"
