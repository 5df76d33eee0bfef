"""benchmarks/subbyte_fidelity.py --mixed --peers (issue 15): ai-edge-quantizer's int4 / 2-bit
files beside edgesdk mixed at each file's size; which comparisons count as a win."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import subbyte_fidelity as sf


def _peer_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, theirs: dict[str, Any],
              ours: dict[str, Any], every: dict[str, Any] | None = None,
              ) -> tuple[dict[str, Any], list[tuple[str, int | None]]]:
    """mixed_peer_rows with the quantiser, the scoring and our export replaced: `theirs`:
    recipe -> (bytes, worst dB or inf / nan, sub-byte layers) or an exception; `ours`: the row
    our mixed export gives; `every`: the row of the int4 scheme with every layer INT4 (default
    `ours`)."""
    monkeypatch.setattr(sf, "float_tflite", lambda case: b"float")

    def quantize(source: bytes, recipe: str, case: Any) -> bytes:
        got = theirs[recipe]
        if isinstance(got, Exception):
            raise got
        return bytes(got[0])

    monkeypatch.setattr(sf, "aeq_quantize", quantize)
    by_size = {v[0]: v for v in theirs.values() if not isinstance(v, Exception)}
    monkeypatch.setattr(sf, "layer_counts", lambda path: {"CONV_2D": [
        by_size[Path(path).stat().st_size][2], 10]})
    case = SimpleNamespace(name="m", score=lambda data: SimpleNamespace(
        worst_sqnr_db=by_size[len(data)][1]))
    calls: list[tuple[str, int | None]] = []

    def run(label: str, scheme: str, **kw: Any) -> dict[str, Any]:
        calls.append((label, kw.get("budget_bytes")))
        if label.startswith("every-int4"):
            assert scheme == "int4" and kw["scheme_options"]["keep_first"] is False
            return dict(ours if every is None else every)
        return dict(ours)

    out: dict[str, Any] = {}
    sf.mixed_peer_rows(case, tmp_path, out, run)  # type: ignore[arg-type]
    return out, calls


def test_mixed_runs_at_each_peer_file_size_and_compares(monkeypatch, tmp_path) -> None:
    out, calls = _peer_run(
        monkeypatch, tmp_path,
        {"dynamic_wi4_afp32": (200, 4.0, 6), "dynamic_wi2c_afp32": (120, math.nan, 10)},
        {"size_bytes": 190, "worst_sqnr_db": 9.0, "subbyte_layers": 8})
    assert calls == [("mixed@dynamic_wi4_afp32", 200), ("every-int4@dynamic_wi4_afp32", None),
                     ("mixed@dynamic_wi2c_afp32", 120)]
    int4, int2 = out["peers"]
    assert int4["worst_sqnr_db"] == 4.0 and int4["subbyte_layers"] == 6
    assert int4["mixed_more_layers"] and int4["mixed_higher_sqnr_same_or_smaller"]
    # NaN outputs are said, and scored as the worst there is
    assert int2["worst_sqnr_db"] == -99.0 and "NaN" in int2["note"]
    assert not int2["mixed_more_layers"]  # 8 of 10 against its 10
    # ours over its size is no win, whatever the SQNR (the run returned 190 B > 120 B)
    assert not int2["mixed_higher_sqnr_same_or_smaller"]


def test_a_file_that_computes_the_float_model_cannot_be_beaten(monkeypatch, tmp_path) -> None:
    out, _ = _peer_run(
        monkeypatch, tmp_path,
        {"dynamic_wi4_afp32": (300, math.inf, 0),
         "dynamic_wi2c_afp32": RuntimeError("its quantiser raised")},
        {"size_bytes": 250, "worst_sqnr_db": 30.0, "subbyte_layers": 5})
    int4, int2 = out["peers"]
    assert int4["worst_sqnr_db"] is None and "no layer quantised" in int4["note"]
    assert int4["mixed_more_layers"] and not int4["mixed_higher_sqnr_same_or_smaller"]
    assert "its quantiser raised" in int2["error"] and "mixed_more_layers" not in int2


def test_one_search_per_peer_file_size(monkeypatch, tmp_path) -> None:
    """Both recipes give back the float file (MediaPipe's float16 weights): one mixed search
    at that size serves both rows."""
    out, calls = _peer_run(
        monkeypatch, tmp_path,
        {"dynamic_wi4_afp32": (300, math.inf, 0), "dynamic_wi2c_afp32": (300, math.inf, 0)},
        {"size_bytes": 250, "worst_sqnr_db": 30.0, "subbyte_layers": 5})
    assert calls == [("mixed@dynamic_wi4_afp32", 300), ("every-int4@dynamic_wi4_afp32", None)]
    assert all(p["mixed_more_layers"] for p in out["peers"])


def test_every_layer_int4_beside_its_int4_file(monkeypatch, tmp_path) -> None:
    """Where mixed keeps layers INT8 because they measure best (8 of 10 sub-byte against its
    10), the int4 scheme with every layer INT4 is measured beside its int4 file: as many
    sub-byte layers as it (more only where it leaves some float), and its SQNR at the same or
    smaller size."""
    out, _ = _peer_run(
        monkeypatch, tmp_path,
        {"dynamic_wi4_afp32": (200, 4.0, 10), "dynamic_wi2c_afp32": (120, math.nan, 10)},
        {"size_bytes": 190, "worst_sqnr_db": 9.0, "subbyte_layers": 8},
        every={"size_bytes": 195, "worst_sqnr_db": 5.0, "subbyte_layers": 10})
    int4, int2 = out["peers"]
    assert not int4["mixed_more_layers"]
    assert int4["every-int4_as_many_layers"] and not int4["every-int4_more_layers"]
    assert int4["every-int4_higher_sqnr_same_or_smaller"]
    assert "every-int4_more_layers" not in int2  # its 2-bit file: no every-INT4 row
