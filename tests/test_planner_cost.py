"""target_sqnr= weighs latency with bytes: a layer goes 16x8 only where that costs less than
float (LiteRT runs int16 in its reference kernels, 45-100x int8's time per MAC)."""

from __future__ import annotations

import numpy as np

from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
from sdk.converters.quantize.plan import FLOAT, INT8, INT16X8, PrecisionPlan, layer_name
from sdk.converters.quantize.planner import (
    FLOAT_CANDIDATE,
    INT16X8_CANDIDATE,
    Attempt,
    CostModel,
    op_work,
    plan_to_target,
)
from sdk.run.fidelity import FidelityReport, LayerFidelity, OutputFidelity


def _const(name: str, shape: tuple[int, ...]) -> Tensor:
    return Tensor(name, shape, DType.FLOAT32, np.zeros(shape, np.float32))


def _two_heads() -> tuple[Model, Operator, Operator]:
    """"conv": a 3x3 convolution over a 128x128x32 map (151M MACs, 9K weights): 16x8 would make
    it ~60x slower. "fc": a 2048x512 dense layer on one vector (1M MACs, 1M weights): float
    would add 3 MB, 16x8 a few ms to a model whose time is the convolution's."""
    img = Tensor("img", (1, 128, 128, 32), DType.FLOAT32)
    vec = Tensor("vec", (1, 512), DType.FLOAT32)
    y1 = Tensor("y1", (1, 128, 128, 32), DType.FLOAT32)
    y2 = Tensor("y2", (1, 2048), DType.FLOAT32)
    conv = Operator("CONV_2D", [img, _const("w1", (32, 3, 3, 32)), _const("b1", (32,))], [y1],
                    name="conv")
    fc = Operator("FULLY_CONNECTED", [vec, _const("w2", (2048, 512)), _const("b2", (2048,))],
                  [y2], name="fc")
    g = Graph("main", [img, vec, y1, y2, *conv.inputs[1:], *fc.inputs[1:]], [conv, fc],
              [img, vec], [y1, y2])
    return Model([g]), conv, fc


def _attempt_fn(model: Model, tried: list[dict[str, str]]):
    """A stand-in for the exporter: each output reads 20 dB until its layer is kept wider (any
    wider format), then 45 dB; the plain file is 1.1 MB, float weights add 3 bytes each."""

    def attempt(plan: PrecisionPlan) -> Attempt:
        prec = {layer_name(op): plan.for_op(op).describe() for op in model.main.operators}
        tried.append(prec)
        db = {"y1": 45.0 if prec["conv"] != "int8" else 20.0,
              "y2": 45.0 if prec["fc"] != "int8" else 20.0}
        fid = FidelityReport(
            32, "validation data",
            [OutputFidelity(o, v, 1.0, 0.0, 0.0, None) for o, v in db.items()],
            layers=[LayerFidelity("conv", "CONV_2D", prec["conv"], "y1", db["y1"]),
                    LayerFidelity("fc", "FULLY_CONNECTED", prec["fc"], "y2", db["y2"])])
        size = 1_100_000 + sum(3 * 1_048_576 for v in prec.values() if v == "float32")
        return Attempt(plan, fid, size, precisions=prec)

    return attempt


def test_op_work_counts_macs_of_weighted_ops() -> None:
    _, conv, fc = _two_heads()
    assert op_work(conv) == ("matmul", 128 * 128 * 32 * 9 * 32)
    assert op_work(fc) == ("matmul", 2048 * 512)


def test_float_replaces_16x8_where_the_int16_kernel_costs_more() -> None:
    model, conv, fc = _two_heads()
    costs = CostModel().for_model(model, PrecisionPlan(), 1_100_000)
    # the convolution: 16x8 costs ~60x its int8 time, float 1 KB more and ~2x: float only
    assert costs.cost(conv, INT8, INT16X8_CANDIDATE) > costs.cost(conv, INT8, FLOAT_CANDIDATE)
    assert costs.options(conv, INT8) == [FLOAT_CANDIDATE]
    # the dense layer: float triples the file, 16x8 adds ~2 ms to a ~6 ms model: both offered
    assert costs.options(fc, INT8) == [INT16X8_CANDIDATE, FLOAT_CANDIDATE]
    # bytes alone (no latency weight): 16x8 is the cheaper for both, as before
    by_bytes = CostModel(latency_weight=0.0).for_model(model, PrecisionPlan(), 1_100_000)
    assert by_bytes.options(conv, INT8) == [INT16X8_CANDIDATE, FLOAT_CANDIDATE]


def test_planner_keeps_the_heavy_convolution_float_and_the_dense_layer_16x8() -> None:
    model, _, _ = _two_heads()
    tried: list[dict[str, str]] = []
    attempt = _attempt_fn(model, tried)
    chosen, report = plan_to_target(model, PrecisionPlan(), 30.0, attempt,
                                    first=attempt(PrecisionPlan()))
    assert report.met
    kept = {k.name: k.precision for k in report.kept}
    assert kept == {"conv": "float32", "fc": "int16x8"}, kept
    # no export ever ran the convolution at 16x8 (the old planner's first step did)
    assert all(p["conv"] != "int16x8" for p in tried), tried
    why = next(k.reason for k in report.kept if k.name == "conv")
    assert "float costs less than 16x8" in why and "ms" in why
    assert chosen.plan.for_op(model.main.operators[0]) == FLOAT
    assert chosen.plan.for_op(model.main.operators[1]) == INT16X8


def test_ops_sharing_a_layer_name_are_costed_together() -> None:
    """An ONNX Conv imported as RESHAPE + CONV_2D under one name: the plan's override widens
    both, so the layer's cost is the convolution's too, not the reshape's alone."""
    model, conv, _ = _two_heads()
    g = model.main
    flat = Tensor("flat", (1, 128, 128, 32), DType.FLOAT32)
    reshape = Operator("RESHAPE", [g.inputs[0]], [flat], name="conv")
    conv.inputs[0] = flat
    g.tensors.append(flat)
    g.operators.insert(0, reshape)
    costs = CostModel().for_model(model, PrecisionPlan(), 1_100_000)
    assert costs.latency_ns(reshape, INT16X8) == costs.latency_ns(conv, INT16X8)
    assert costs.extra_bytes(reshape, INT8, FLOAT_CANDIDATE) \
        == costs.extra_bytes(conv, INT8, FLOAT_CANDIDATE) > 3 * 9000
    assert costs.options(reshape, INT8) == [FLOAT_CANDIDATE]


# ---------------------------------------------------------------- target_cost: the user's choice
def test_cost_model_names_and_weights() -> None:
    from sdk.converters.quantize.planner import COST_WEIGHTS, cost_model

    assert cost_model().name == cost_model("balanced").name == "balanced"
    assert (cost_model("bytes").bytes_weight, cost_model("bytes").latency_weight) \
        == COST_WEIGHTS["bytes"] == (1.0, 0.0)
    assert (cost_model("latency").bytes_weight, cost_model("latency").latency_weight) == (0, 1)
    assert cost_model(0.0).name == "bytes" and cost_model("1").name == "latency"
    assert cost_model(0.5).name == "balanced"
    mid = cost_model(0.25)
    assert mid.name == "latency share 0.25" and (mid.bytes_weight, mid.latency_weight) \
        == (0.75, 0.25)


def test_cost_model_refuses_what_it_does_not_know() -> None:
    import pytest

    from sdk.base.errors import ConversionError
    from sdk.converters.quantize.planner import cost_model

    for bad in ("fast", 1.5, -0.1, True, "nan", float("nan")):
        with pytest.raises(ConversionError, match=r"target_cost must be one of 'bytes', "
                                                  r"'latency', 'balanced' or a number"):
            cost_model(bad)  # type: ignore[arg-type]


def test_target_cost_changes_the_plan() -> None:
    """The same stand-in model and measurements, three settings, three plans: "bytes" keeps
    both layers 16x8 (the smallest file; the convolution ~60x slower), "latency" both float
    (the fastest; the dense layer's 3 MB), "balanced" the convolution float and the dense
    layer 16x8. Each report says which setting chose it and what it costs."""
    from sdk.converters.quantize.planner import cost_model

    model, conv, fc = _two_heads()
    kept: dict[str, dict[str, str]] = {}
    for setting in ("bytes", "latency", "balanced"):
        attempt = _attempt_fn(model, [])
        _, report = plan_to_target(model, PrecisionPlan(), 30.0, attempt,
                                   first=attempt(PrecisionPlan()),
                                   cost_model=cost_model(setting))
        assert report.met and report.cost == setting
        assert any(f"cost: {setting}" in line for line in report.lines())
        kept[setting] = {k.name: k.precision for k in report.kept}
        # what each kept layer costs over int8, estimated, and the totals the report prints
        costs = cost_model(setting).for_model(model, PrecisionPlan(), 1_100_000)
        for k in report.kept:
            op = conv if k.name == "conv" else fc
            wider = FLOAT_CANDIDATE if k.precision == "float32" else INT16X8_CANDIDATE
            assert k.extra_bytes == int(costs.extra_bytes(op, INT8, wider))
            assert k.extra_ms == round(costs.extra_ns(op, INT8, wider) / 1e6, 6)
        assert report.estimated_ms == round(
            sum(costs.extra_ns(conv if k.name == "conv" else fc, INT8,
                               FLOAT_CANDIDATE if k.precision == "float32"
                               else INT16X8_CANDIDATE) for k in report.kept) / 1e6, 6)
        assert report.estimated_bytes > sum(k.extra_bytes for k in report.kept)  # + overheads
    assert kept["bytes"] == {"conv": "int16x8", "fc": "int16x8"}, kept
    assert kept["latency"] == {"conv": "float32", "fc": "float32"}, kept
    assert kept["balanced"] == {"conv": "float32", "fc": "int16x8"}, kept


def test_concentrated_error_names_the_deciding_samples() -> None:
    from sdk.converters.quantize.planner import concentrated_error

    noise = np.full(32, 0.01)
    noise[7] = 0.68 / 0.32 * 0.31
    picks = concentrated_error(noise)
    assert [i for i, _ in picks] == [7] and abs(picks[0][1] - 0.68) < 0.01
    assert concentrated_error(np.full(32, 0.01)) == []  # spread: no few samples decide it
    assert concentrated_error([0.0, 0.0]) == [] and concentrated_error([1.0]) == []


def test_report_names_the_samples_the_target_rests_on() -> None:
    """A met target whose check error sits in one sample says so (and keeps it in the JSON
    report); a target that cannot be met names the samples that hold the miss."""
    import pytest

    from sdk.base.errors import FidelityError
    from sdk.converters.quantize.planner import PlannerReport

    model, _, _ = _two_heads()
    noise = np.full(32, 1e-5)
    noise[6] = 32 * 1e-5 * 3  # one of the 32 check samples holds ~3/4 of the error

    def attempt(plan: PrecisionPlan, db: float = 45.0) -> Attempt:
        base = _attempt_fn(model, [])(plan)
        energies = {o.name: (np.ones(32), noise * 10 ** ((45.0 - db) / 10))
                    for o in base.fidelity.outputs}
        return Attempt(plan, base.fidelity, base.size_bytes, precisions=base.precisions,
                       sample_energies=energies)

    _, report = plan_to_target(model, PrecisionPlan(), 20.0, attempt,
                               first=attempt(PrecisionPlan()))
    assert report.met and set(report.error_samples) == {"y1", "y2"}
    assert [i for i, _ in report.error_samples["y1"]] == [6]
    assert any("1 of 32 check sample(s) hold" in line and "6: " in line
               for line in report.lines())
    assert PlannerReport.from_dict(report.to_dict()) == report
    with pytest.raises(FidelityError, match=r"check sample\(s\) 6 \(\d+ %\) hold most"):
        plan_to_target(model, PrecisionPlan(), 60.0, attempt, first=attempt(PrecisionPlan()))
