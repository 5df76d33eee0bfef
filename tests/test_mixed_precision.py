"""Issue 15, "Mixed precision under a budget": `sdk.export(model, "mixed", budget_bytes=N)`
gives each weighted layer INT8, INT4, 2-bit or ternary weights by measured sensitivity."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mixed_nets import two_branch_data, two_branch_net

import sdk
from sdk.base.errors import ConversionError
from sdk.cli import main
from sdk.converters.quantize.mixed import BudgetError, MixedPoint, pareto_front
from sdk.run.fidelity import FidelityWarning

from conftest import requires_tf

pytestmark = [requires_tf, pytest.mark.filterwarnings("ignore", category=FidelityWarning)]
#: both layers of the test net are first / last: let the budget decide them too
FREE = {"keep_first": False, "keep_last": False}
#: between the net's all-2-bit (4,864 B) and all-INT4 (6,912 B) files: only a mix fits whole
BUDGET = 6000
_BITS = {"int8": 8, "int4": 4, "int4-narrow": 4, "int2": 2, "ternary": 2}


@pytest.fixture(scope="module")
def net():
    return two_branch_net()


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return two_branch_data()


@pytest.fixture(scope="module")
def mixed(net, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("mixed") / "m.tflite"
    return sdk.export(net, "mixed", calibration=data, output=out, budget_bytes=BUDGET,
                      scheme_options=FREE)


def _bits(res, keyword: str) -> int:
    (name,) = [n for n in res.precision if keyword in n]
    return _BITS[res.precision[name].split("/")[0]]


def test_budget_is_respected(mixed) -> None:
    assert mixed.size_bytes <= BUDGET
    assert mixed.path.stat().st_size == mixed.size_bytes
    chosen = mixed.mixed.chosen_point
    assert chosen.size_bytes == mixed.size_bytes and chosen.within_budget
    assert mixed.fidelity.min_sqnr_db == pytest.approx(chosen.worst_sqnr_db)
    assert mixed.timings["mixed"] > 0
    # all-INT8 of the same net does not fit: the budget made it choose
    all_int8 = next(p for p in mixed.mixed.points if p.label == "all-int8")
    assert all_int8.size_bytes > BUDGET


def test_sensitive_layer_gets_more_bits(mixed) -> None:
    assert _bits(mixed, "centred") > _bits(mixed, "plain")
    # and the chosen mix beats every uniform point that fits the budget
    uniform = [p for p in mixed.mixed.points if p.label.startswith("all-") and p.within_budget]
    assert uniform and all(mixed.fidelity.min_sqnr_db > p.worst_sqnr_db for p in uniform)


def test_chosen_point_is_on_the_front(mixed) -> None:
    report = mixed.mixed
    assert report.chosen_point.on_front and report.chosen_point.chosen
    assert sum(p.chosen for p in report.points) == 1
    d = json.loads(mixed.to_json())["mixed"]
    assert d["points"][d["chosen"]]["chosen"] and d["points"][d["chosen"]]["on_front"]
    assert "mixed precision under a byte budget:" in mixed.summary()


def test_pareto_front_marks_only_undominated_points() -> None:
    pts = [MixedPoint("a", 100, 10.0, None, {}), MixedPoint("b", 120, 9.0, None, {}),
           MixedPoint("c", 150, 20.0, None, {}), MixedPoint("d", 100, 12.0, None, {})]
    pareto_front(pts)
    assert [p.on_front for p in pts] == [False, False, True, True]


def test_impossible_budget_names_the_minimum(net, data, tmp_path) -> None:
    with pytest.raises(BudgetError, match=r"smallest model .* [\d,]+ bytes"):
        sdk.export(net, "mixed", calibration=data, output=tmp_path / "x.tflite",
                   budget_bytes=1000, scheme_options=FREE)
    with pytest.raises(ConversionError, match="budget_bytes"):
        sdk.export(net, "int8", calibration=data, output=tmp_path / "y.tflite",
                   budget_bytes=1000)


def test_cli_impossible_budget_exit_code(net, data, tmp_path, capsys) -> None:
    model = tmp_path / "net.keras"
    net.save(model)
    cal = tmp_path / "cal.npy"
    np.save(cal, data)
    out = tmp_path / "m.tflite"
    free = ["-O", "keep_first=false", "-O", "keep_last=false"]
    code = main(["export", str(model), "mixed", "-c", str(cal), "-o", str(out),
                 "--budget-bytes", "1000", *free])
    assert code == 1
    err = capsys.readouterr().err
    assert "1,000 bytes" in err and "smallest model" in err
    assert not out.exists()
    code = main(["export", str(model), "mixed", "-c", str(cal), "-o", str(out),
                 "--budget-bytes", "7000", *free])
    assert code == 0 and 0 < out.stat().st_size <= 7000
    assert "points tried" in capsys.readouterr().out


def test_greedy_spends_error_where_it_is_cheapest_per_byte() -> None:
    from sdk.converters.quantize.mixed import LayerChoice, estimate_bytes, greedy

    fmts = ["int8", "int4", "int2"]
    big = LayerChoice("big", "CONV_2D", 1000, fmts, [1000.0, 500.0, 250.0])
    small = LayerChoice("small", "CONV_2D", 100, fmts, [100.0, 50.0, 25.0])
    losses = {"big": {"int8": 0.0, "int4": 0.01, "int2": 0.1},
              "small": {"int8": 0.0, "int4": 0.5, "int2": 2.0}}
    bits = greedy([big, small], losses, 1100.0, 600.0)
    assert bits == {"big": "int4", "small": "int8"}
    assert estimate_bytes([big, small], bits, 1100.0) <= 600.0
    bits = greedy([big, small], losses, 1100.0, 300.0)
    assert bits == {"big": "int2", "small": "int4"}
    assert greedy([big, small], losses, 1100.0, 200.0) is None  # under 250 + 25


def test_pinned_first_last_layers_move_when_the_budget_needs_it(net, data, tmp_path) -> None:
    """keep_first / keep_last (the default) pin both layers of the net at INT8, which is over
    7000 bytes: the pinned layers are the starting point, not a floor."""
    res = sdk.export(net, "mixed", calibration=data, output=tmp_path / "p.tflite",
                     budget_bytes=7000, report=False)
    assert res.size_bytes <= 7000
    assert min(_bits(res, "centred"), _bits(res, "plain")) < 8


def test_each_plan_is_measured_once(mixed) -> None:
    """Trades, swaps and the combined move can lead to a plan already measured (two moves to
    the same mix, or several ops of one layer name): it is that point again, not another
    export and another point."""
    points = mixed.mixed.points
    plans = [(tuple(sorted(p.bits.items())), tuple(sorted(p.splits.items()))) for p in points]
    assert len(set(plans)) == len(plans)
    assert mixed.mixed.exports == len(points)


def test_the_choice_is_made_on_enough_held_out_samples(net, data, tmp_path) -> None:
    """Without validation=, mixed holds out at least MIN_CONFIDENT_SAMPLES (20) calibration
    samples to choose by, as target_sqnr does (validation_split 0.2 of 40 would leave 8: on
    the corpus, 8 chose mixes that scored under the int4 plan on other inputs); with fewer
    given as validation=, the report says the choice may fit them."""
    from sdk.converters.quantize.planner import MIN_CONFIDENT_SAMPLES

    res = sdk.export(net, "mixed", calibration=data[:40], output=tmp_path / "a.tflite",
                     budget_bytes=7000, scheme_options=FREE, report=False)
    assert res.fidelity.samples == MIN_CONFIDENT_SAMPLES == 20
    assert any("20 of the 40 calibration samples held out" in n for n in res.notes)
    assert not any("held-out samples: with fewer" in n for n in res.mixed.notes)
    few = sdk.export(net, "mixed", calibration=data[:40], validation=data[40:48],
                     output=tmp_path / "b.tflite", budget_bytes=7000, scheme_options=FREE,
                     report=False)
    assert few.fidelity.samples == 8
    assert any("chosen on 8 held-out samples" in n for n in few.mixed.notes)
