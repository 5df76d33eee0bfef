"""Issue 15, "Mixed precision under a budget": a cap on the search (`max_exports`,
`max_seconds`) so a large model's search ends on a small host (ddddocr_rec's 32 / 32 search
did not end in 65 minutes on a loaded 2-core host). The uniform probes are always made, so a
capped search still keeps the best uniform plan unless a measured mix beats it."""

from __future__ import annotations

import pytest
from mixed_nets import two_branch_data, two_branch_net

import sdk
from sdk.base.errors import ConversionError
from sdk.converters.quantize.mixed import MixedOptions, mixed_options
from sdk.run.fidelity import FidelityWarning

from conftest import requires_tf

#: both layers of the test net are first / last: let the budget decide them too
FREE = {"keep_first": False, "keep_last": False}
#: between the net's all-2-bit and all-INT4 files (test_mixed_precision.py's budget)
BUDGET = 6000


@pytest.fixture(scope="module")
def net():
    return two_branch_net()


def _export(net, tmp_path, name: str, **cap: object):
    return sdk.export(net, "mixed", calibration=two_branch_data(),
                      output=tmp_path / f"{name}.tflite", budget_bytes=BUDGET,
                      scheme_options={**FREE, **cap}, report=False)


def _probes(report) -> int:
    return sum(p.estimated_bytes is None for p in report.points)


@requires_tf
@pytest.mark.filterwarnings("ignore", category=FidelityWarning)
def test_max_exports_caps_the_search_after_the_probes(net, tmp_path) -> None:
    full = _export(net, tmp_path, "full").mixed
    probes = _probes(full)
    assert full.exports > probes + 1 and not full.capped  # the search makes more than one
    one = _export(net, tmp_path, "one", max_exports=1).mixed
    assert one.exports == len(one.points) == probes + 1
    assert "max_exports=1" in one.capped
    assert any(n.startswith("search capped") for n in one.notes)
    # the same first steps as the uncapped search: the cap cuts, it does not reorder
    assert [p.bits for p in one.points] == [p.bits for p in full.points[:probes + 1]]
    assert one.chosen_point.within_budget
    none = _export(net, tmp_path, "none", max_exports=0).mixed
    assert none.exports == probes and "max_exports=0" in none.capped
    # only the uniform plans were measured: the choice is the best of them within the budget
    assert none.chosen_point.estimated_bytes is None and none.chosen_point.within_budget
    timed = _export(net, tmp_path, "timed", max_seconds=0).mixed
    assert timed.exports == probes and "max_seconds=0" in timed.capped
    assert timed.to_dict()["capped"] == timed.capped


def test_cap_options_are_checked() -> None:
    assert MixedOptions().max_exports is None and MixedOptions().max_seconds is None
    assert mixed_options({"max_exports": 3, "max_seconds": 60.0}).max_exports == 3
    with pytest.raises(ValueError, match="max_exports"):
        mixed_options({"max_exports": -1})
    with pytest.raises(ValueError, match="max_seconds"):
        mixed_options({"max_seconds": float("nan")})


@requires_tf
def test_a_bad_cap_is_refused_before_the_search(net, tmp_path) -> None:
    with pytest.raises(ConversionError, match="max_exports"):
        _export(net, tmp_path, "bad", max_exports=-2)


def test_benchmark_flags_pass_the_cap() -> None:
    import argparse
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import subbyte_fidelity as sf

    ns = argparse.Namespace(mixed_max_exports=6, mixed_max_seconds=None, mixed_on=[])
    assert sf.search_cap(ns) == {"max_exports": 6}
    ns = argparse.Namespace(mixed_max_exports=None, mixed_max_seconds=900.0, mixed_on=[])
    assert sf.search_cap(ns) == {"max_seconds": 900.0}
    assert sf.search_cap(argparse.Namespace(mixed_max_exports=None, mixed_max_seconds=None,
                                            mixed_on=[])) == {}
    # --mixed-on FLAG (stop 29): MixedOptions flags switched on in every search
    ns = argparse.Namespace(mixed_max_exports=None, mixed_max_seconds=None,
                            mixed_on=["absmax_plans", "check_calibration"])
    assert sf.search_cap(ns) == {"absmax_plans": True, "check_calibration": True}
