"""Reports that tell the truth: size against the input file, one report per model file
(m.tflite and m.edge), an already quantised model refused before calibration, a .edge model's
precision from its metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdk.cli import main
from sdk.cli.exit_codes import BAD_INPUT


@pytest.fixture(scope="module")
def mlp(tmp_path_factory) -> Path:
    from farm_support import build_mlp

    return build_mlp(tmp_path_factory.mktemp("cli_reports") / "mlp.tflite")


def _export(model: Path, out: Path, *extra: str) -> list[str]:
    return ["export", str(model), *extra, "-c", "synthetic", "-o", str(out), "--max-samples",
            "200", "--no-per-layer"]


def test_size_is_compared_with_the_input_file(mlp, tmp_path, capsys) -> None:
    out = tmp_path / "m.tflite"
    assert main([*_export(mlp, out), "-q"]) == 0
    text = capsys.readouterr().out
    size = out.stat().st_size
    assert (f"{size:,} bytes, {size / mlp.stat().st_size:.0%} of the input file's "
            f"{mlp.stat().st_size:,} bytes") in text and "of the float graph's" in text
    assert main([*_export(mlp, out), "-q", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["input_size_bytes"] == mlp.stat().st_size
    assert report["size_bytes"] == out.stat().st_size


def test_tflite_and_edge_keep_one_report_each(mlp, tmp_path, capsys) -> None:
    from sdk.devices.farm.jobs import ModelInfo

    tflite, edge = tmp_path / "m.tflite", tmp_path / "m.edge"
    assert main([*_export(mlp, tflite, "int8"), "-q"]) == 0
    assert main([*_export(mlp, edge, "ternary"), "-q"]) == 0
    capsys.readouterr()
    reports = {p.name: json.loads(p.read_text()) for p in tmp_path.glob("*.report.json")}
    assert set(reports) == {"m.report.json", "m.edge.report.json"}
    assert reports["m.report.json"]["path"] == str(tflite)
    assert reports["m.edge.report.json"]["path"] == str(edge)
    assert reports["m.edge.report.json"]["scheme"] == "ternary"
    # the farm reads each model's own report
    assert ModelInfo.from_path(tflite).scheme == "int8"
    assert ModelInfo.from_path(edge).scheme == "ternary"


def test_edge_precision_comes_from_its_metadata(mlp, tmp_path, capsys) -> None:
    from sdk.devices.farm.jobs import ModelInfo

    for scheme in ("ternary", "int8"):
        edge = tmp_path / f"{scheme}.edge"
        assert main([*_export(mlp, edge, scheme), "-q"]) == 0
        (tmp_path / f"{scheme}.edge.report.json").unlink()  # no report: the file alone
        info = ModelInfo.from_path(edge)
        assert info.scheme is None and info.precision == scheme, info


def test_already_quantised_models_are_refused_before_calibration(mlp, tmp_path,
                                                                 capsys) -> None:
    import sdk

    int8 = tmp_path / "int8.tflite"
    dynamic = tmp_path / "dynamic.tflite"
    sdk.export(mlp, "int8", calibration="synthetic", output=int8, report=False,
               per_layer=False)
    sdk.export(mlp, "int8", calibration="synthetic", output=dynamic, report=False,
               per_layer=False, activations="float32")  # int8 weights, float activations
    for model, what in ((int8, "tensor"), (dynamic, "weights")):
        out = tmp_path / f"again_{model.name}"
        assert main(_export(model, out)) == BAD_INPUT.code
        err = capsys.readouterr().err
        assert f"{model.name}: the model is already quantised" in err and what in err, err
        assert "calibrating" not in err  # refused at load, before any calibration
        assert not out.exists()


def test_synthetic_calibration_is_noted_once(mlp, tmp_path, capsys) -> None:
    """The report said 'calibrated on synthetic ...' three times: the sample set's note, the
    exporter's copy of it and the fidelity section's. One note for the ranges, one for the
    fidelity figures."""
    assert main([*_export(mlp, tmp_path / "m.tflite"), "-q"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "synthetic" in ln]
    assert sum("activation ranges are not representative" in ln for ln in lines) == 1, lines
    assert sum("these numbers say nothing about real inputs" in ln for ln in lines) == 1, lines
