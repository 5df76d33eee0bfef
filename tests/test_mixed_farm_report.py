"""Issue 15: the farm report shows a mixed-precision export's size / fidelity / latency Pareto
front (from the export report beside the model) with the chosen point and its p50 per board."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from sdk.converters.quantize.mixed import MixedPoint, MixedReport, pareto_front
from sdk.devices.farm.report import (
    html_from_data,
    markdown,
    mixed_fronts,
    mixed_plain,
    report_data,
)


def _run(tmp_path: Path) -> SimpleNamespace:
    pts = [MixedPoint("all-int8", 9000, 30.0, None, {}, latency_ms=2.0),
           MixedPoint("all-int4", 5000, 12.0, None, {}, latency_ms=1.5, within_budget=True),
           MixedPoint("mixed step 1", 5200, 9.0, 5100, {}, latency_ms=1.6, within_budget=True),
           MixedPoint("trades combined", 4900, 14.0, 4950, {}, latency_ms=1.4,
                      within_budget=True)]
    pareto_front(pts)
    pts[3].chosen = True
    report = MixedReport(budget_bytes=5000, points=pts, chosen=3, budget_ms=1.8,
                         latency_source="this host (test CPU)")
    model = tmp_path / "m_mixed.tflite"
    model.write_bytes(b"TFL3")
    model.with_name("m_mixed.report.json").write_text(
        json.dumps({"scheme": "mixed", "mixed": report.to_dict()}))
    info = SimpleNamespace(path=str(model), name=model.name, sha256="ab" * 32, size_bytes=4900,
                           precision="int4", format="tflite", scheme="mixed", fidelity=None)
    other = SimpleNamespace(**{**vars(info), "name": "plain.tflite", "sha256": "cd" * 32,
                               "scheme": "int8", "path": str(tmp_path / "plain.tflite")})

    def job(m, board: str, p50: float) -> SimpleNamespace:
        lat = SimpleNamespace(p50_ms=p50, p90_ms=p50 * 1.1)
        return SimpleNamespace(model=m, board=board, ok=True, kind="profile",
                               profile=SimpleNamespace(latency=lat, npu=None), validation=None)

    return SimpleNamespace(results=[job(info, "pi4", 3.25), job(info, "pi5", 1.5),
                                    job(other, "pi4", 2.0)])


def test_fronts_read_the_export_report(tmp_path) -> None:
    (front,) = mixed_fronts(_run(tmp_path))  # the int8 model has no mixed search
    assert front["budget_bytes"] == 5000 and front["budget_ms"] == 1.8
    assert front["board_p50_ms"] == {"pi4": 3.25, "pi5": 1.5}
    marks = {p["label"]: (p["on_front"], p["chosen"]) for p in front["points"]}
    assert marks["trades combined"] == (True, True)
    assert marks["mixed step 1"] == (False, False)  # dominated by the chosen point
    assert [p["size_bytes"] for p in front["points"]] == sorted(p["size_bytes"]
                                                                for p in front["points"])


def test_markdown_plain_and_html_show_the_front(tmp_path) -> None:
    run = _run(tmp_path)
    run.results[2].model.path = "/nonexistent/plain.tflite"
    run.__dict__.update(boards=[], ok=run.results, cached=[], failed=[], wall_s=1.0,
                        backend="asyncio", run_id=7, flagged={})
    md = markdown(run)  # type: ignore[arg-type]
    assert "## Mixed precision: m_mixed.tflite (budget 5,000 bytes and 1.8 ms)" in md
    assert "| chosen | 4,900 | 14.00 | 1.400 | trades combined | yes |" in md
    assert "mixed step 1" not in md  # off the front, only counted
    assert "4 points measured, 2 on the Pareto front" in md and "pi4 3.25 ms" in md
    plain = mixed_plain(mixed_fronts(run))  # type: ignore[arg-type]
    assert "trades combined" in plain and "latency ms (est.)" in plain
    page = html_from_data({"mixed": mixed_fronts(run)}, "t")  # type: ignore[arg-type]
    assert '<tr class="chosen"><td>chosen</td><td>4,900</td>' in page
    assert "Mixed precision: m_mixed.tflite" in page
    assert report_data.__doc__  # the JSON carries the same fronts under "mixed"
