"""benchmarks/layer_ratios.py on a tiny int8 model (3x3 conv, stride-2 depthwise, 1x1 conv, ADD,
built with the IR, no TensorFlow): every profiled layer is paired with its own .edge operator,
the XNNPACK single layer of each conv / depthwise layer has that operator's input and output
shapes, the ADD says why it has none, and the JSON carries every field. No time is asserted."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from sdk.converters.edge import read_edge
from sdk.converters.ir import DType, Graph, Model, Operator, QuantParams, Tensor
from sdk.converters.tflite.writer import to_tflite_bytes

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import layer_ratios  # noqa: E402  (benchmarks/ is not a package)


def _act(g: Graph, name: str, shape: tuple[int, ...], scale: float, zp: int) -> Tensor:
    return g.add_tensor(Tensor(name, shape, DType.INT8, quant=QuantParams.per_tensor(scale, zp)))


def _conv(g: Graph, op: str, x: Tensor, y: Tensor, w: np.ndarray, stride: int, pad: str,
          rng: np.random.Generator) -> Operator:
    n = w.shape[0] if op == "CONV_2D" else w.shape[-1]
    scales = np.full(n, 0.01, np.float32)
    axis = 0 if op == "CONV_2D" else 3
    f = g.constant(f"w{len(g.operators)}", w, DType.INT8,
                   quant=QuantParams(scales, np.zeros(n, np.int64), axis=axis))
    bs = (scales * np.float32(x.quant.scale[0])).astype(np.float32)
    b = g.constant(f"b{len(g.operators)}", rng.integers(-500, 500, n).astype(np.int32),
                   DType.INT32, quant=QuantParams(bs, np.zeros(n, np.int64), axis=0))
    attrs = {"padding": pad, "stride_h": stride, "stride_w": stride, "dilation_h_factor": 1,
             "dilation_w_factor": 1, "fused_activation_function": "RELU6"}
    if op == "DEPTHWISE_CONV_2D":
        attrs["depth_multiplier"] = 1
    o = Operator(op, [x, f, b], [y], attrs=attrs, version=3)
    g.operators.append(o)
    return o


def tiny_int8() -> bytes:
    rng = np.random.default_rng(1)
    g = Graph("main")
    x = _act(g, "x", (1, 12, 12, 4), 0.05, 3)
    a = _act(g, "a", (1, 12, 12, 16), 0.1, -2)
    d = _act(g, "d", (1, 6, 6, 16), 0.1, -1)
    c = _act(g, "c", (1, 6, 6, 8), 0.2, 0)
    c2 = _act(g, "c2", (1, 6, 6, 8), 0.2, 1)
    s = _act(g, "s", (1, 6, 6, 8), 0.3, 0)
    q = lambda *shape: rng.integers(-127, 128, shape).astype(np.int8)  # noqa: E731
    _conv(g, "CONV_2D", x, a, q(16, 3, 3, 4), 1, "SAME", rng)
    _conv(g, "DEPTHWISE_CONV_2D", a, d, q(1, 3, 3, 16), 2, "SAME", rng)
    _conv(g, "CONV_2D", d, c, q(8, 1, 1, 16), 1, "VALID", rng)
    _conv(g, "CONV_2D", d, c2, q(8, 1, 1, 16), 1, "VALID", rng)  # same shape: timed once
    g.operators.append(Operator("ADD", [c, c2], [s], attrs={"fused_activation_function": "NONE"}))
    g.inputs, g.outputs = [x], [s]
    return to_tflite_bytes(Model([g], description="layer_ratios test"))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    rep = layer_ratios.run(tiny_int8(), model="tiny", scheme="int4", size=12, threads=1,
                  litert_level="native", isa=None, runs=3, rounds=1, batch_ms=0.2,
                  workdir=tmp_path_factory.mktemp("lr"))
    return json.loads(json.dumps(asdict(rep)))


def test_layers_matched_by_shape(report: dict, tmp_path: Path) -> None:
    edge_path = layer_ratios.write_format(tiny_int8(), "int4", tmp_path / "t.edge")
    edge = read_edge(edge_path)
    rows = report["layers"]
    assert [r["index"] for r in rows] == [op.index for op in edge.operators]
    assert [r["op"] for r in rows] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "CONV_2D",
                                       "ADD"]
    for row, op in zip(rows, edge.operators, strict=True):
        want = {"input": list(edge.tensors[op.inputs[0]].shape),
                "output": list(edge.tensors[op.outputs[0]].shape)}
        assert row["edge_io"] == want
        if row["op"] == "ADD":
            assert row["xnnpack_ms"] is None and "ADD" in row["why_no_xnnpack"]
            continue
        assert row["xnnpack_io"] == want, row  # XNNPACK ran this layer's shape, not another's
        assert row["xnnpack_ms"] > 0 and row["xnnpack_over_ours"] > 0
        assert row["kernel"]
    assert rows[2]["xnnpack_ms"] == rows[3]["xnnpack_ms"]  # one shape, timed once


def test_json_complete(report: dict) -> None:
    assert {"model", "format", "threads", "isa", "litert_isa", "host", "layers", "totals",
            "xnnpack_kernels"} <= report.keys()
    t = report["totals"]
    for key in ("edge_run_profiled", "edge_run", "litert_int8"):
        assert t[key]["p50_ms"] > 0 and t[key]["min_ms"] > 0
    rows = report["layers"]
    assert t["ours_layers_ms"] == pytest.approx(sum(r["ours_ms"] for r in rows), abs=1e-3)
    assert t["xnnpack_matched_layers_ms"] == pytest.approx(
        sum(r["xnnpack_ms"] for r in rows if r["xnnpack_ms"]), abs=1e-3)
    assert sum(r["share_of_ours"] for r in rows) == pytest.approx(1.0, abs=1e-3)
    assert t["litert_int8_over_edge_run"]["p50_ms"] > 0


def test_mismatched_profile_is_refused(tmp_path: Path) -> None:
    edge = read_edge(layer_ratios.write_format(tiny_int8(), "int8", tmp_path / "t.edge"))
    profile = [{"index": op.index, "op": op.op} for op in edge.operators]
    assert len(layer_ratios.match_layers(edge, profile)) == len(profile)
    swapped = [profile[1] | {"index": 0}, profile[0] | {"index": 1}, *profile[2:]]
    with pytest.raises(ValueError, match=r"is not \.edge operator"):
        layer_ratios.match_layers(edge, swapped)
    with pytest.raises(ValueError, match="layers"):
        layer_ratios.match_layers(edge, profile[:-1])


def test_layers_by_cost(report: dict) -> None:
    """by_cost: every layer once, the ones with an XNNPACK twin first by ours - XNNPACK's
    (largest first), then the rest by our time; the markdown table has a row per layer."""
    rows = {r["index"]: r for r in report["layers"]}
    order = report["by_cost"]
    assert sorted(order) == sorted(rows)
    twins = [i for i in order if rows[i]["xnnpack_ms"] is not None]
    assert order[:len(twins)] == twins
    costs = [rows[i]["cost_ms"] for i in twins]
    assert costs == sorted(costs, reverse=True)
    for i in twins:
        r = rows[i]
        assert r["cost_ms"] == pytest.approx(r["ours_ms"] - r["xnnpack_ms"], abs=2e-6)
    assert all(rows[i]["cost_ms"] is None for i in order[len(twins):])
    rep = layer_ratios.LayerReport(**{k: v for k, v in report.items() if k != "layers"
                                      and k != "totals"},
                                   layers=[layer_ratios.LayerRow(**r)
                                           for r in report["layers"]])
    table = layer_ratios.cost_table(rep).splitlines()
    assert len(table) == 2 + len(rows)
    assert [int(line.split("|")[1]) for line in table[2:]] == order
