"""The `edgesdk` command line: entry point wiring and the `info` command."""

from __future__ import annotations

import json
import subprocess
import sys

from sdk.cli import main


def test_info_json(capsys) -> None:
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["arch"] in ("x86_64", "aarch64", "armv7")
    assert info["physical_cores"] >= 1
    assert info["litert"]["name"] == "ai_edge_litert"


def test_console_script_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "sdk", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.startswith("edgesdk ")
