"""The layers of docs/architecture.md hold: import-linter's contract (pyproject.toml) is kept on
this tree, and it does catch an upward import, a devices -> converter-internals import and a
module placed outside every layer."""

from __future__ import annotations

from pathlib import Path

import pytest

import import_contract

pytest.importorskip("importlinter", reason="import-linter is in the [dev] extra")


def test_the_tree_keeps_the_contract(tmp_path: Path) -> None:
    result = import_contract.check(into=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _stage_with(tmp_path: Path, layer: str, name: str, source: str) -> Path:
    """Stage the tree, with `layer` (a folder of the staged sdk/) copied as links plus one extra
    module `name` holding `source`."""
    staged = import_contract.stage(into=tmp_path / "stage")
    link = staged / "sdk" / layer
    real = link.resolve()
    link.unlink()
    link.mkdir()
    for entry in real.iterdir():
        if entry.name != "__pycache__":
            (link / entry.name).symlink_to(entry)
    (link / name).write_text(source)
    return staged


@pytest.mark.parametrize(("layer", "source", "named"), [
    # the base layer reaching up into the face
    ("base", "from sdk.exporter import export\n", "sdk.base._probe -> sdk.exporter"),
    # the run layer reaching into a converter
    ("run", "from sdk.converters.ir import Model\n", "sdk.run._probe -> sdk.converters.ir"),
    # devices reaching past the converters' public names
    ("devices", "from sdk.converters.tflite.reader import read_tflite\n",
     "sdk.devices._probe -> sdk.converters.tflite.reader"),
])
def test_a_broken_layer_is_reported(tmp_path: Path, layer: str, source: str, named: str) -> None:
    result = import_contract.run(_stage_with(tmp_path, layer, "_probe.py", source))
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert named in result.stdout, result.stdout


def test_a_module_outside_every_layer_is_reported(tmp_path: Path) -> None:
    staged = import_contract.stage(into=tmp_path / "stage")
    (staged / "sdk" / "stray.py").write_text('"""Not in any layer."""\n')
    result = import_contract.run(staged)
    assert result.returncode != 0
    assert "sdk.stray" in result.stdout, result.stdout


@pytest.mark.parametrize("package", ["converters", "devices"])
def test_a_sibling_cycle_is_reported(tmp_path: Path, package: str) -> None:
    # two sibling modules importing each other, one of them inside a function (as the
    # converters' and devices' cycles did before issue 14 broke them)
    staged = _stage_with(tmp_path, package, "_cycle_a.py",
                         f"from sdk.{package} import _cycle_b\n")
    (staged / "sdk" / package / "_cycle_b.py").write_text(
        f"def f() -> None:\n    from sdk.{package} import _cycle_a  # noqa: F401\n")
    result = import_contract.run(staged)
    assert result.returncode != 0
    assert f"No cycles are allowed in sdk.{package}." in result.stdout, result.stdout
    assert "_cycle_" in result.stdout, result.stdout
