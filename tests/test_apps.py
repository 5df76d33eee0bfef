"""The examples in apps/ run as users run them (`make demo` runs them with --emulated)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_deploy_and_profile_runs_every_model_on_the_device_and_writes_its_report(
        digits_int8_tflite, digits_export_pairs, tmp_path):
    edge = Path(digits_export_pairs["ternary"][1].path)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "apps" / "deploy_and_profile.py"), "--model",
         str(digits_int8_tflite), "--model", str(edge), "--device", "local", "--runs", "5",
         "--samples", "8", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads((out / "report.json").read_text())
    assert [(r["model"], r["device"], r["runner"]) for r in rows] == [
        (digits_int8_tflite.name, "local", "litert-python"), (edge.name, "local", "edge-run")]
    assert all(r["valid"] and r["p50_ms"] > 0 and not r["emulated"] for r in rows)
    # the .edge row names the native kernels that ran (the 2-bit GEMM of the ternary layers)
    assert "qc2w" in rows[1]["kernels"]
    table = (out / "report.md").read_text().splitlines()
    assert len(table) == 2 + len(rows) and edge.name in table[-1]
    for stem in (digits_int8_tflite.stem, edge.stem):
        assert (out / f"profile-{stem}-local.json").is_file()
        assert (out / f"validation-{stem}-local.json").is_file()
