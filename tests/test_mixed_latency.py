"""Issue 15, mixed precision under a latency budget: `sdk.export(model, "mixed",
budget_ms=..., latency_profile=...)`, per-layer times of each candidate format from a table
(a device's) or profiled on this host."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from mixed_nets import two_branch_data, two_branch_net

import sdk
from sdk.cli import main
from sdk.converters.quantize.mixed import BudgetError, MixedPoint, pareto_front
from sdk.converters.quantize.mixed_latency import (
    LatencyTable,
    LatencyTableError,
    add_probe,
    fill_missing,
    greedy_ms,
)
from sdk.run.fidelity import FidelityWarning

from conftest import requires_tf

FREE = {"keep_first": False, "keep_last": False}


# ---------------------------------------------------------------------------- pure parts
def test_probe_profiles_make_the_table() -> None:
    order = [("a", "CONV_2D"), ("b", "FULLY_CONNECTED")]
    table = LatencyTable(source="t")
    prof8 = [("QUANTIZE", 0.1), ("CONV_2D", 2.0), ("RELU", 0.2), ("FULLY_CONNECTED", 1.0),
             ("DEQUANTIZE", 0.1)]
    add_probe(table, {"a": "int8", "b": "int8"}, order, prof8, "all-int8")
    # 2-bit convolutions are edgesdk custom ops in the file: still layer "a"
    add_probe(table, {"a": "int2", "b": "int4"}, order,
              [("QUANTIZE", 0.1), ("EDGE_CONV_2D_INT2", 0.5), ("FULLY_CONNECTED", 0.7)],
              "all-int2")
    assert table.other_ms == pytest.approx(0.4)
    assert table.layers == {"a": {"int8": 2.0, "int2": 0.5}, "b": {"int8": 1.0, "int4": 0.7}}
    assert table.estimate_ms({"a": "int2", "b": "int8"}) == pytest.approx(1.9)
    notes = fill_missing(table, {"a": ["int8", "int2", "ternary"], "b": ["int8", "int4"]})
    assert table.layers["a"]["ternary"] == 0.5 and len(notes) == 1 and "ternary" in notes[0]
    with pytest.raises(LatencyTableError, match="1 weighted operators, the model has 2"):
        add_probe(table, {"a": "int8", "b": "int8"}, order, [("CONV_2D", 1.0)], "x.tflite")
    with pytest.raises(LatencyTableError, match="'c' at int8"):
        table.estimate_ms({"c": "int8"})
    back = LatencyTable.from_dict(json.loads(table.to_json()))
    assert back.layers == table.layers and back.other_ms == table.other_ms


def test_greedy_ms_saves_time_where_error_is_cheapest() -> None:
    table = LatencyTable({"slow": {"int8": 4.0, "int4": 1.0}, "fast": {"int8": 1.0,
                                                                       "int4": 0.5}}, 0.5)
    losses = {"slow": {"int8": 0.0, "int4": 0.3}, "fast": {"int8": 0.0, "int4": 0.01}}
    fmts = {"slow": ["int8", "int4"], "fast": ["int8", "int4"]}
    # 0.02 / ms for "fast" beats 0.1 / ms for "slow", but only "slow" reaches 3 ms
    assert greedy_ms(["slow", "fast"], fmts, losses, table, 5.1) == {"slow": "int8",
                                                                     "fast": "int4"}
    assert greedy_ms(["slow", "fast"], fmts, losses, table, 3.0) == {"slow": "int4",
                                                                     "fast": "int4"}
    assert greedy_ms(["slow", "fast"], fmts, losses, table, 1.9) is None
    assert greedy_ms(["slow", "fast"], fmts, losses, table, 3.0, pinned=["slow"]) is None


def test_front_with_latency_keeps_the_faster_point() -> None:
    pts = [MixedPoint("a", 100, 10.0, None, {}, latency_ms=2.0),
           MixedPoint("b", 100, 9.0, None, {}, latency_ms=1.0),
           MixedPoint("c", 120, 9.0, None, {}, latency_ms=1.0)]
    pareto_front(pts)
    # without the latency axis "b" is dominated by "a"; with it, it is the fastest
    assert [p.on_front for p in pts] == [True, True, False]


# ---------------------------------------------------------------------------- exports
@pytest.fixture(scope="module")
def net():
    return two_branch_net()


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return two_branch_data()


def _names(res) -> dict[str, str]:
    return {k: next(n for n in res.mixed.chosen_point.bits if k in n)
            for k in ("centred", "plain")}


@requires_tf
@pytest.mark.filterwarnings("ignore", category=FidelityWarning)
def test_device_table_budget(net, data, tmp_path) -> None:
    """A device's table where sub-byte layers are faster: the budget forces one layer down,
    and the search takes the insensitive one ("plain")."""
    probe = sdk.export(net, "mixed", calibration=data, output=tmp_path / "p.tflite",
                       budget_bytes=10**9, scheme_options=FREE, report=False)
    names = list(probe.mixed.chosen_point.bits)
    layers = {n: {"int8": 2.0, "int4": 1.0, "int4-narrow": 1.0, "int2": 0.6, "ternary": 0.6}
              for n in names}
    path = tmp_path / "device.json"
    path.write_text(LatencyTable(layers, 0.5, "test board").to_json())
    res = sdk.export(net, "mixed", calibration=data, output=tmp_path / "m.tflite",
                     budget_ms=3.6, latency_profile=path, scheme_options=FREE, report=False)
    report = res.mixed
    chosen = report.chosen_point
    assert chosen.latency_ms is not None and chosen.latency_ms <= 3.6 and chosen.within_budget
    assert report.budget_ms == 3.6 and report.latency_source == f"test board ({path})"
    n = _names(res)
    assert chosen.bits[n["centred"]] == "int8" and chosen.bits[n["plain"]] != "int8"
    assert all(p.latency_ms is not None for p in report.points)
    int8 = next(p for p in report.points if p.label == "all-int8")
    assert int8.latency_ms == pytest.approx(4.5) and not int8.within_budget
    assert chosen.on_front
    assert "size / SQNR / latency Pareto front" in "\n".join(report.lines())
    with pytest.raises(BudgetError, match=r"1\.5 ms .*fastest: 1\.7\d* ms"):
        sdk.export(net, "mixed", calibration=data, output=tmp_path / "x.tflite",
                   budget_ms=1.5, latency_profile=path, scheme_options=FREE, report=False)


@requires_tf
@pytest.mark.filterwarnings("ignore", category=FidelityWarning)
def test_host_profile_is_measured_and_cached(net, data, tmp_path, monkeypatch,
                                             capsys) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = tmp_path / "net.keras"
    net.save(model)
    cal = tmp_path / "cal.npy"
    np.save(cal, data)
    out = tmp_path / "m.tflite"
    code = main(["export", str(model), "mixed", "-c", str(cal), "-o", str(out),
                 "--budget-ms", "1000", "--json", "-O", "keep_first=false",
                 "-O", "keep_last=false"])
    assert code == 0 and out.is_file()
    d = json.loads(capsys.readouterr().out)["mixed"]
    assert d["budget_ms"] == 1000 and "this host" in d["latency_source"]
    chosen = d["points"][d["chosen"]]
    assert chosen["chosen"] and chosen["latency_ms"] is not None
    assert all(math.isfinite(p["latency_ms"]) and p["latency_ms"] > 0 for p in d["points"])
    cached = sorted((tmp_path / "cache" / "edgesdk" / "mixed-latency").glob("*.json"))
    assert len(cached) >= 2  # all-int8 and at least one sub-byte probe, profiled once each
    assert all(json.loads(p.read_text())["layers"] for p in cached)


@requires_tf
@pytest.mark.filterwarnings("ignore", category=FidelityWarning)
def test_pinned_layers_are_profiled_below_int8(net, data, tmp_path, monkeypatch) -> None:
    """keep_first / keep_last (default) pin both layers at INT8 in the uniform probes; under a
    latency budget their sub-byte times are profiled too, not copied from INT8."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    res = sdk.export(net, "mixed", calibration=data, output=tmp_path / "m.tflite",
                     budget_ms=1000.0, report=False)
    labels = [p.label for p in res.mixed.points]
    assert "all-int4, first / last too" in labels and "all-int2, first / last too" in labels
    assert not [n for n in res.mixed.notes if "not profiled" in n and "int4" in n]


def test_ops_sharing_a_layer_name_add_up() -> None:
    """An LSTM lowered to one FULLY_CONNECTED per gate matrix, all named "lstm": the plan moves
    them together, so the layer's time at a format is their sum (before: the last op's)."""
    order = [("lstm", "FULLY_CONNECTED"), ("lstm", "FULLY_CONNECTED"), ("out", "CONV_2D")]
    table = LatencyTable(source="t")
    add_probe(table, {"lstm": "int8", "out": "int8"}, order,
              [("FULLY_CONNECTED", 1.0), ("FULLY_CONNECTED", 2.0), ("CONV_2D", 0.5)], "all-int8")
    add_probe(table, {"lstm": "int8", "out": "int4"}, order,
              [("FULLY_CONNECTED", 1.5), ("FULLY_CONNECTED", 2.5), ("CONV_2D", 0.25)], "int4")
    assert table.layers == {"lstm": {"int8": 4.0}, "out": {"int8": 0.5, "int4": 0.25}}
