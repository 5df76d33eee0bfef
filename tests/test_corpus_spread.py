"""benchmarks/corpus_spread.py's per-set figures, on outputs whose errors are known."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from corpus_spread import compare, per_set_stats  # noqa: E402


def _rows(values: list[float]) -> list[list[np.ndarray]]:
    return [[np.array([v])] for v in values]


def _shift_logit(p: float, d: float) -> float:
    z = math.log(p / (1 - p)) + d
    return 1 / (1 + math.exp(-z))


# two sets of 3 tail probabilities; the decisive sample (largest p) is the 2nd of set 0 and the
# 3rd of set 1
REF = [1e-5, 1e-3, 2e-5, 3e-5, 1e-5, 5e-4]


def test_the_decisive_sample_is_the_largest_float_value_of_each_set() -> None:
    errors = [0.2, -0.05, 0.3, 0.1, -0.4, 0.02]  # logit errors; larger on the small values
    got = [_shift_logit(p, d) for p, d in zip(REF, errors, strict=True)]
    res = per_set_stats(_rows(REF), _rows(got), sets=2, set_size=3)
    assert res["decisive_logit_error"] == pytest.approx([-0.05, 0.02], abs=1e-9)
    assert res["logit_error_rms"] == pytest.approx(
        math.sqrt(sum(e * e for e in errors) / len(errors)), rel=1e-6)
    assert res["decisive_logit_error_rms"] == pytest.approx(math.sqrt((0.05 ** 2 + 0.02 ** 2) / 2),
                                                            rel=1e-6)
    # the decisive sample sets the set's SQNR: set 1's small relative error reads higher
    assert res["per_set_db"][1] > res["per_set_db"][0]
    assert len(res["quartiles_db"]) == 2


def test_compare_counts_the_sets_and_decisive_samples_ours_wins() -> None:
    ours = per_set_stats(_rows(REF), _rows([_shift_logit(p, d) for p, d in
                                            zip(REF, [0, -0.05, 0, 0, 0, 0.2], strict=True)]),
                         sets=2, set_size=3)
    peer = per_set_stats(_rows(REF), _rows([_shift_logit(p, d) for p, d in
                                            zip(REF, [0, 0.1, 0, 0, 0, 0.01], strict=True)]),
                         sets=2, set_size=3)
    c = compare(ours, peer)
    assert c["sets"] == 2
    assert c["sets_ours_at_least_peer"] == 1
    assert c["decisive_ours_no_larger"] == 1
    d = [a - b for a, b in zip(ours["per_set_db"], peer["per_set_db"], strict=True)]
    assert c["median_difference_db"] == pytest.approx(sum(d) / 2)


def test_outputs_that_are_not_tail_probabilities_have_no_logit_figures() -> None:
    ref = [1.0, -2.0, 3.0, 0.5]
    res = per_set_stats(_rows(ref), _rows([v + 0.01 for v in ref]), sets=2, set_size=2)
    assert "logit_error_rms" not in res and "decisive_logit_error" not in res
    assert res["all_samples_db"] == pytest.approx(
        10 * math.log10(sum(v * v for v in ref) / (4 * 0.01 ** 2)), rel=1e-6)
