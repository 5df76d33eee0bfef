"""The generated .edge schema bindings are what `make schema` makes from native/schema/edge.fbs.

An edit of edge.fbs without `make schema` leaves the C++ runtime and the Python writer/reader on
a stale layout; this test regenerates both into a temporary folder and compares them byte for
byte with the committed files.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "native" / "schema" / "edge.fbs"
COMMITTED = {
    "edge_generated.h": ROOT / "native" / "schema" / "generated" / "edge_generated.h",
    "edge_generated.py": ROOT / "converters" / "edge" / "schema_generated.py",
}


@pytest.fixture(scope="module")
def flatc() -> str:
    path = shutil.which("flatc")
    if path is None:
        pytest.skip("flatc is not installed (Debian: flatbuffers-compiler; `make setup` adds it)")
    return path


def _generate(flatc: str, out: Path) -> None:
    subprocess.run([flatc, "--cpp", "--scoped-enums", "-o", str(out), str(SCHEMA)], check=True)
    subprocess.run([flatc, "--python", "--gen-onefile", "--gen-object-api", "-o", str(out),
                    str(SCHEMA)], check=True)


def test_generated_bindings_match_the_schema(flatc: str, tmp_path: Path) -> None:
    _generate(flatc, tmp_path)
    stale = [name for name, committed in COMMITTED.items()
             if (tmp_path / name).read_bytes() != committed.read_bytes()]
    assert not stale, f"{stale} out of date with {SCHEMA.name}: run `make schema`"


def test_an_edited_schema_is_caught(flatc: str, tmp_path: Path) -> None:
    # The comparison above must be able to fail: a new field changes both generated files.
    edited = tmp_path / "edge.fbs"
    text = SCHEMA.read_text()
    head, sep, rest = text.partition("table ")
    name, brace, body = rest.partition("{")
    edited.write_text(f"{head}{sep}{name}{brace}\n  edgesdk_test_probe:int;{body}")
    out = tmp_path / "out"
    subprocess.run([flatc, "--cpp", "--scoped-enums", "-o", str(out), str(edited)], check=True)
    assert (out / "edge_generated.h").read_bytes() != COMMITTED["edge_generated.h"].read_bytes()
