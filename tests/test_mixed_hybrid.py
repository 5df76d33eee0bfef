"""Issue 15, mixed precision under a budget: a layer the INT8 rewrite keeps in float (an STFT
front end feeding a LOG: 4 bytes a weight) may take INT8 weights with float activations
(`mixed.HYBRID`, LiteRT's dynamic-range kernels, 1 byte a weight).

oww_melspectrogram's STFT is 459 of its int4 plan's 634 kB: without this format no file of the
search lay between 175 kB (the STFT at INT4) and 601 kB, and at half of all-INT4's size the
search scored 16.56 dB against all-ternary's 22.02 (stop 28). With it (stop 29, 32 / 32): the
two STFT convolutions hybrid, 306,320 B, 32.63 dB at both budgets (all-INT4 22.75).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_mixed_spend import _front_end_net

import sdk
from sdk.converters.quantize.mixed import (
    HYBRID,
    MixedPoint,
    _bits,
    never_worse,
    plan_of,
)
from sdk.converters.quantize.mixed_latency import LatencyTable, fill_missing
from sdk.converters.quantize.plan import LayerPrecision, PrecisionPlan
from sdk.converters.tflite import read_tflite
from sdk.run.fidelity import FidelityWarning

from conftest import requires_tf


def _point(bits: dict[str, str]) -> MixedPoint:
    return MixedPoint("p", 0, 0.0, None, bits)


def test_hybrid_is_int8_weights_with_float_activations_in_the_plan() -> None:
    plan = plan_of({"front": HYBRID, "mid": "int4"}, PrecisionPlan(scheme="mixed"))
    assert plan.layers["front"] == LayerPrecision("int8", "float32")
    assert plan.layers["front"].is_hybrid
    assert plan.layers["mid"] == LayerPrecision("int4", "int8")
    assert _bits(HYBRID) == 8


def test_float_is_wider_than_hybrid_for_never_worse() -> None:
    hybrid, floating = _point({"front": HYBRID, "mid": "int4"}), \
        _point({"front": "int8", "mid": "int4"})
    assert never_worse(floating, hybrid)  # the float front end: every layer as wide or wider
    assert not never_worse(hybrid, floating)


def test_hybrid_takes_int8s_time_where_not_profiled() -> None:
    table = LatencyTable(source="t", layers={"front": {"int8": 3.0, "int2": 0.5}})
    fill_missing(table, {"front": ["int8", HYBRID, "int2"]})
    assert table.layers["front"][HYBRID] == 3.0  # a width-8 format, not 2-bit's 0.5


@requires_tf
@pytest.mark.filterwarnings("ignore", category=FidelityWarning)
def test_float_front_end_is_offered_hybrid(tmp_path) -> None:
    """At a budget under every plan with the front end float (the int4 plan is 275,728 B with
    it float, 4 bytes a weight), the search measures the front end hybrid, and the file
    written for such a point runs its front end on float inputs with INT8 weights."""
    data = np.random.default_rng(1).standard_normal((64, 128)).astype(np.float32)
    res = sdk.export(_front_end_net(), "mixed", calibration=data, output=tmp_path / "m.tflite",
                     budget_bytes=200_000, report=False)
    report = res.mixed
    lines = "\n".join(report.lines())
    front_name = next(n for n in report.chosen_point.bits if "front_1/" in n)
    hybrid = [p for p in report.points if p.bits.get(front_name) == HYBRID]
    assert hybrid, lines  # the old search had no such format
    assert any(p.within_budget for p in hybrid), lines
    assert all(p.bits.get(n) != HYBRID for p in report.points for n in p.bits
               if n != front_name), lines  # int8 activations there: no hybrid kernel needed
    if report.chosen_point.bits[front_name] == HYBRID:
        model = read_tflite(res.path)
        front = [op for op in model.main.operators if op.type == "FULLY_CONNECTED"
                 and op.inputs[1] is not None and op.inputs[1].shape[-1] == 128]
        assert front and front[0].inputs[0].dtype.name == "FLOAT32"
        assert front[0].inputs[1].dtype.name == "INT8"



@requires_tf
@pytest.mark.filterwarnings("ignore", category=FidelityWarning)
def test_the_int4_schemes_hybrid_front_end_is_a_uniform_point(tmp_path) -> None:
    """Since the int4 default takes the float-kept front end hybrid (`hybrid_kept`, stop 30),
    the int4 scheme's file is the search's int4 point: at its size the search measures it as a
    uniform plan (the reference a mix must beat), with the front end `HYBRID`. Before, its
    point was measured with the front end float, the same bits as all-INT4 (skipped), so the
    int4 file was no uniform point (oww_melspectrogram 240,800 B)."""
    data = np.random.default_rng(1).standard_normal((64, 128)).astype(np.float32)
    int4 = sdk.export(_front_end_net(), "int4", calibration=data, weight_method="rtn",
                      output=tmp_path / "i.tflite", report=False)
    res = sdk.export(_front_end_net(), "mixed", calibration=data, output=tmp_path / "m.tflite",
                     budget_bytes=int4.size_bytes, report=False,
                     scheme_options={"max_exports": 0})
    scheme = [p for p in res.mixed.points if p.label == "int4 scheme"]
    assert scheme, "\n".join(res.mixed.lines())
    front = next(n for n in scheme[0].bits if "front_1/" in n)
    assert scheme[0].bits[front] == HYBRID and scheme[0].estimated_bytes is None
    assert scheme[0].size_bytes == int4.size_bytes and scheme[0].within_budget
