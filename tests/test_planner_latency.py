"""The time a kept layer costs, as the planner's report prints it, is measured here (its
operators run alone in the plain and in the chosen file), not taken from the KERNEL_NS table of
another host (issue 12: that table was wrong in sign for depthwise on an Intel Xeon)."""

from __future__ import annotations

import numpy as np

from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
from sdk.converters.quantize.op_latency import OpTimes, op_times_ms
from sdk.converters.quantize.planner import (
    KERNEL_NS_SOURCE,
    KeptLayer,
    PlannerReport,
    measured_latency,
)


def _dw_net() -> Model:
    x = Tensor("x", (1, 16, 16, 8), DType.FLOAT32)
    y = Tensor("y", (1, 16, 16, 8), DType.FLOAT32)
    z = Tensor("z", (1, 16, 16, 8), DType.FLOAT32)
    w = Tensor("w", (1, 3, 3, 8), DType.FLOAT32, np.ones((1, 3, 3, 8), np.float32))
    b = Tensor("b", (8,), DType.FLOAT32, np.zeros(8, np.float32))
    dw = Operator("DEPTHWISE_CONV_2D", [x, w, b], [y],
                  {"padding": "SAME", "stride_w": 1, "stride_h": 1, "depth_multiplier": 1,
                   "fused_activation_function": "NONE"}, name="dw")
    relu = Operator("RELU", [y], [z], name="relu")
    return Model([Graph("main", [x, y, z, w, b], [dw, relu], [x], [z])])


def test_measured_latency_is_chosen_minus_plain_per_kept_layer() -> None:
    model = _dw_net()
    report = PlannerReport(30.0, True, {}, {}, kept=[
        KeptLayer("dw", "DEPTHWISE_CONV_2D", "float32", 1, 20.0, 0.01, 100, extra_ms=0.5)])
    # plain: the int8 depthwise conv (its output renamed as a written file may), its relu;
    # chosen: a float depthwise conv, a DEQUANTIZE before it
    plain = {"y_int8": ("DEPTHWISE_CONV_2D", 1.2), "z": ("RELU", 0.1)}
    chosen = {"x_dq": ("DEQUANTIZE", 0.05), "y": ("DEPTHWISE_CONV_2D", 0.06),
              "z": ("RELU", 0.1)}
    measured_latency(report, model, plain, chosen)
    (k,) = report.kept
    assert abs(k.measured_ms - (0.06 - 1.2)) < 1e-9  # faster float: negative, unlike the table
    assert abs(report.measured_ms - (0.21 - 1.3)) < 1e-9
    assert "1 of 1 kept layers" in report.latency_source
    lines = report.lines()
    assert any("-1.14 ms measured here" in line and "~+0.5 ms est." in line for line in lines)
    assert any(line.startswith("  measured here: -1.09 ms") for line in lines)
    assert any(KERNEL_NS_SOURCE in line for line in lines)
    assert PlannerReport.from_dict(report.to_dict()) == report


def test_a_layer_missing_from_a_file_keeps_the_table_estimate_only() -> None:
    model = _dw_net()
    report = PlannerReport(30.0, True, {}, {}, kept=[
        KeptLayer("dw", "DEPTHWISE_CONV_2D", "float32", 1, 20.0, 0.01, 100, extra_ms=0.5)])
    measured_latency(report, model, {"z": ("RELU", 0.1)}, {"z": ("RELU", 0.1)})
    assert report.kept[0].measured_ms is None
    assert "0 of 1 kept layers" in report.latency_source
    report = PlannerReport(30.0, True, {}, {})
    measured_latency(report, model, {}, {})  # nothing measured: nothing claimed
    assert report.measured_ms is None and report.latency_source == ""


def test_op_times_of_a_written_file() -> None:
    from sdk.converters.tflite.writer import to_tflite_bytes

    times = op_times_ms(to_tflite_bytes(_dw_net()))
    assert set(times) == {"y", "z"}
    assert times["y"][0] == "DEPTHWISE_CONV_2D" and times["z"][0] == "RELU"
    assert all(ms > 0 for _, ms in times.values())


def test_operators_not_timed_are_named_with_why() -> None:
    """The time bound cuts a file's measurement: each operator left out is named, not dropped
    silently (a sum over part of a file read as the whole file's)."""
    from sdk.converters.tflite.writer import to_tflite_bytes

    times = op_times_ms(to_tflite_bytes(_dw_net()), seconds=0.0)
    assert dict(times) == {}
    assert times.left_out == {"y": ("DEPTHWISE_CONV_2D", "time bound"),
                              "z": ("RELU", "time bound")}
    assert set(times.incomplete()) == {"y", "z"}


def test_no_whole_file_figure_from_sums_over_different_operators() -> None:
    """The chosen file's measurement was cut before its RELU: its sum lacks an operator the
    plain sum has, so chosen minus plain is no whole-file figure (it read -1.19 ms, the RELU's
    time counted as a saving); the kept layer's own figure stands."""
    model = _dw_net()
    report = PlannerReport(30.0, True, {}, {}, kept=[
        KeptLayer("dw", "DEPTHWISE_CONV_2D", "float32", 1, 20.0, 0.01, 100, extra_ms=0.5)])
    plain = OpTimes({"y_int8": ("DEPTHWISE_CONV_2D", 1.2), "z": ("RELU", 0.1)})
    chosen = OpTimes({"x_dq": ("DEQUANTIZE", 0.05), "y": ("DEPTHWISE_CONV_2D", 0.06)},
                     {"z": ("RELU", "time bound")})
    measured_latency(report, model, plain, chosen)
    assert abs(report.kept[0].measured_ms - (0.06 - 1.2)) < 1e-9
    assert report.measured_ms is None
    assert "no whole-file figure" in report.latency_source
    assert "chosen file 1 (z RELU: time bound)" in report.latency_source
    # the same operator failing alone in both files: both sums lack it, the figure stands
    fails = ("RELU", "failed: RuntimeError: test")
    measured_latency(report, model, OpTimes({"y_int8": ("DEPTHWISE_CONV_2D", 1.2)},
                                            {"z": fails}),
                     OpTimes({"y": ("DEPTHWISE_CONV_2D", 0.06)}, {"z": fails}))
    assert report.measured_ms is not None and abs(report.measured_ms - (0.06 - 1.2)) < 1e-9
