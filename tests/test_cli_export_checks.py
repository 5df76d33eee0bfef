"""`edgesdk export` fails (exit status 1) when --min-sqnr or --target-sqnr is not met."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdk.cli import main
from sdk.cli.exit_codes import CHECK_FAILED


@pytest.fixture(scope="module")
def mlp(tmp_path_factory) -> Path:
    from farm_support import build_mlp

    return build_mlp(tmp_path_factory.mktemp("cli_checks") / "mlp.tflite")


def _export(mlp: Path, out: Path, *extra: str) -> list[str]:
    return ["export", str(mlp), "-c", "synthetic", "-o", str(out), "--max-samples", "200",
            "--no-per-layer", "-q", *extra]


def test_min_sqnr_met_and_missed(mlp, tmp_path, capsys) -> None:
    out = tmp_path / "m.tflite"
    assert main(_export(mlp, out, "--json")) == 0
    report = json.loads(capsys.readouterr().out)
    worst = min(o["sqnr_db"] for o in report["fidelity"]["outputs"])
    assert report["passed"] is True and report["min_sqnr_db"] is None
    assert main(_export(mlp, out, "--min-sqnr", f"{worst - 1:.2f}")) == 0
    capsys.readouterr()
    assert main(_export(mlp, out, "--min-sqnr", f"{worst + 1:.2f}")) == CHECK_FAILED.code
    captured = capsys.readouterr()
    assert "FAILED: --min-sqnr" in captured.err and "dB" in captured.err
    assert out.exists()  # like validate: the file and its report stay for inspection
    assert main(_export(mlp, out, "--min-sqnr", f"{worst + 1:.2f}", "--json")) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["passed"] is False and doc["min_sqnr_db"] == pytest.approx(worst + 1, abs=0.01)


def test_unreachable_target_sqnr_is_a_failed_check(mlp, tmp_path, capsys) -> None:
    out = tmp_path / "t.tflite"
    # int8 model outputs: even with every layer kept wider, the output rounding caps the SQNR
    assert main(_export(mlp, out, "--target-sqnr", "300", "--output-type", "int8",
                        "--json")) == CHECK_FAILED.code
    doc = json.loads(capsys.readouterr().out)
    assert doc["error"]["type"] == "FidelityError" and doc["error"]["exit_name"] == "check-failed"
    assert "cannot be met" in doc["error"]["message"] and not out.exists()
