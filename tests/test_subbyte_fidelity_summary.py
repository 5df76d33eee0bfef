"""benchmarks/subbyte_fidelity.py's summary (issue 15): which exports a median counts, and the
merge of one-model runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import subbyte_fidelity as sf


def _model(name: str, subbyte: int, sqnr: dict[str, float]) -> dict:
    return {"model": name, "int8_worst_sqnr_db": 30.0, "exports": [
        {"scheme": "int4", "method": m, "worst_sqnr_db": v, "subbyte_layers": subbyte,
         "export_s": 10.0 * (i + 1)} for i, (m, v) in enumerate(sqnr.items())]}


def test_medians_count_only_exports_with_a_sub_byte_layer(tmp_path: Path) -> None:
    a = _model("a", 5, {"rtn": 10.0, "gptq": 18.0, "adaround": 21.0})
    b = _model("b", 3, {"rtn": 12.0, "gptq": 21.0, "adaround": 23.0})
    all_int8 = _model("c", 0, {"rtn": 40.0, "gptq": 40.0, "adaround": 40.0})
    s = sf.summarise([a, b, all_int8])
    assert s["int4/rtn"]["median_worst_sqnr_db"] == 11.0
    assert s["int4/adaround"]["model_names"] == ["a", "b"]
    assert s["int4/gptq"]["median_export_s"] == 20.0
    assert s["bars"]["int4"]["met_by"] == ["adaround"]

    paths = []
    for i, m in enumerate((a, b, all_int8)):
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps({"date": "d", "cpu": "c", "partial": True,
                                         "models": [m]}))
    out = tmp_path / "all.json"
    assert sf.merge(paths, out) == 0
    merged = json.loads(out.read_text())
    assert [m["model"] for m in merged["models"]] == ["a", "b", "c"]
    assert "partial" not in merged and merged["summary"] == json.loads(json.dumps(s))


def test_merge_joins_runs_of_one_model(tmp_path: Path) -> None:
    """Runs of the same model with other methods (e.g. rtn first, the solved methods later, one
    without the INT8 ceiling) merge into one model entry with every row."""
    rtn = _model("a", 5, {"rtn": 10.0})
    solved = _model("a", 5, {"gptq": 18.0, "adaround": 21.0})
    del solved["int8_worst_sqnr_db"]
    paths = [tmp_path / "rtn.json", tmp_path / "solved.json"]
    for p, m in zip(paths, (rtn, solved), strict=True):
        p.write_text(json.dumps({"date": "d", "cpu": "c", "models": [m]}))
    out = tmp_path / "all.json"
    assert sf.merge(paths, out) == 0
    (model,) = json.loads(out.read_text())["models"]
    assert [e["method"] for e in model["exports"]] == ["rtn", "gptq", "adaround"]
    assert model["int8_worst_sqnr_db"] == 30.0
