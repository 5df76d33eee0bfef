"""Check the import contract (pyproject.toml [tool.importlinter]; docs/architecture.md) with
import-linter, on the `sdk` package as the wheel lays it out.

converters/ and devices/ install as sdk.converters and sdk.devices (pyproject's wheel.packages),
and the editable install maps them with an import hook that import-linter's file walk cannot see.
So the check runs on a staging folder, build/importlint/sdk, holding links to every entry of sdk/
plus converters/ and devices/ under their installed names, with the editable hook switched off.

    .venv/bin/python tests/import_contract.py        # what `make lint` runs; exit 1 on a break
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: run in the staging folder: drop the editable install's finder, then import-linter's CLI
_RUNNER = (
    "import sys\n"
    "sys.meta_path[:] = [f for f in sys.meta_path\n"
    "                    if not type(f).__module__.startswith('_editable_')]\n"
    "from importlinter.cli import lint_imports_command\n"
    "lint_imports_command()\n"
)


def stage(root: Path = ROOT, into: Path | None = None) -> Path:
    """Lay out `into`/sdk as the wheel does (links, no copies); return `into`."""
    into = into or root / "build" / "importlint"
    pkg = into / "sdk"
    if pkg.exists():
        for entry in pkg.iterdir():
            entry.unlink()
    pkg.mkdir(parents=True, exist_ok=True)
    installed = ("converters", "devices")  # wheel.packages puts these under sdk/
    for entry in (root / "sdk").iterdir():
        if entry.name != "__pycache__" and entry.name not in installed:
            (pkg / entry.name).symlink_to(entry)
    for name in installed:
        (pkg / name).symlink_to(root / name)
    return into


def run(staged: Path, config: Path = ROOT / "pyproject.toml") -> subprocess.CompletedProcess[str]:
    """Run import-linter on a staged folder (see `stage`); its report is in the result's stdout."""
    env = {**os.environ, "PYTHONPATH": str(staged)}
    cmd = [sys.executable, "-c", _RUNNER, "--no-cache", str(config)]
    return subprocess.run(cmd, cwd=staged, env=env, capture_output=True, text=True, check=False)


def check(root: Path = ROOT, into: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Stage `root` (into build/importlint unless `into`) and run import-linter on it."""
    return run(stage(root, into), root / "pyproject.toml")


def main() -> int:
    result = check()
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
