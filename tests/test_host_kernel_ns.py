"""The planner's kernel table measured on this host and cached (`host_kernel_ns`): used where
one is cached under this host's key and whole, the static `KERNEL_NS` otherwise, and the report
names which."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_planner_latency import _dw_net

from sdk.converters.ir import Model, Operator
from sdk.converters.quantize import host_kernel_ns as hk
from sdk.converters.quantize.plan import INT8, PrecisionPlan
from sdk.converters.quantize.planner import (
    KERNEL_NS,
    KERNEL_NS_SOURCE,
    CostModel,
    KeptLayer,
    PlannerReport,
    cost_model,
    host_kernels,
)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test with an empty cache of its own, the table not forced static."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(hk.ENV, raising=False)


def _dw() -> tuple[Model, Operator]:
    """test_planner_latency's net: a 3x3 depthwise convolution (16x16x8) and a RELU."""
    model = _dw_net()
    return model, model.main.operators[0]


def _options(model: Model, op: Operator) -> list[str]:
    """What the "latency" cost offers the int8 depthwise layer, widest last."""
    costs = cost_model("latency").for_model(model, PrecisionPlan(), 10_000)
    return [c.name for c in costs.options(op, INT8)]


#: a host where 16x8 depthwise runs near int8 and float depthwise is slow (the static table
#: has it the other way round: 16x8 in LiteRT's reference kernels, 120x float's time)
HOST = {c: dict(row) for c, row in KERNEL_NS.items()}
HOST["depthwise"] = {"int8": 0.08, "int16x8": 0.2, "float32": 1.0}


def test_without_a_cached_table_the_planner_takes_the_static_one() -> None:
    assert hk.load(KERNEL_NS) is None
    table = host_kernels()
    assert table.table is KERNEL_NS and table.source == KERNEL_NS_SOURCE and table.path is None
    assert CostModel().kernel_ns is KERNEL_NS
    model, dw = _dw()
    assert _options(model, dw) == ["float32"]  # 16x8 slower than float: never worth it


def test_a_table_measured_here_drives_the_estimate_and_the_choice() -> None:
    path = hk.save(HOST, "test")
    assert path.is_file() and path.parent == hk.cache_dir()
    table = host_kernels()
    assert table.path == path and "measured on this host" in table.source
    costs = CostModel()
    assert costs.kernel_ns == HOST and costs.kernel_ns_source == table.source
    model, dw = _dw()
    ns = costs.latency_ns(dw, INT8)
    assert ns == pytest.approx(16 * 16 * 8 * 9 * 0.08)
    assert _options(model, dw) == ["int16x8", "float32"]  # 16x8 now cheaper than float here
    # the report names the table it estimated by, and does not call it another host's
    report = PlannerReport(30.0, True, {}, {}, kept=[
        KeptLayer("dw", "DEPTHWISE_CONV_2D", "float32", 1, 20.0, 0.01, 100, extra_ms=0.5)],
        estimated_ms=0.5, kernel_ns_source=costs.kernel_ns_source)
    (line,) = [line for line in report.lines() if "estimated (cost model" in line]
    assert "measured on this host" in line and "not necessarily this host" not in line
    assert PlannerReport.from_dict(report.to_dict()) == report


def test_the_static_table_is_named_as_another_hosts() -> None:
    report = PlannerReport(30.0, True, {}, {}, kept=[
        KeptLayer("dw", "DEPTHWISE_CONV_2D", "float32", 1, 20.0, 0.01, 100, extra_ms=0.5)],
        estimated_ms=0.5)
    (line,) = [line for line in report.lines() if "estimated (cost model" in line]
    assert KERNEL_NS_SOURCE in line and "not necessarily this host" in line


def test_another_hosts_table_is_not_used() -> None:
    path = hk.save(HOST, "test")
    data = json.loads(path.read_text())
    data["key"]["cpu"] = "some other CPU"
    path.write_text(json.dumps(data))
    assert hk.load(KERNEL_NS) is None and host_kernels().table is KERNEL_NS
    # under the other host's own key it would be another file: this host's stays its own
    assert hk.cache_path(data["key"]) != path


@pytest.mark.parametrize("broken", ["missing class", "nan", "zero", "not json"])
def test_a_table_that_is_not_whole_is_not_used(broken: str) -> None:
    table = {c: dict(row) for c, row in HOST.items()}
    if broken == "missing class":
        del table["movement"]
    elif broken == "nan":
        table["matmul"]["int8"] = float("nan")
    elif broken == "zero":
        table["elementwise"]["float32"] = 0.0
    path = hk.save(table, "test")
    if broken == "not json":
        path.write_text("{")
    assert hk.load(KERNEL_NS) is None
    assert host_kernels().source == KERNEL_NS_SOURCE


def test_the_environment_keeps_the_static_table(monkeypatch: pytest.MonkeyPatch) -> None:
    hk.save(HOST, "test")
    monkeypatch.setenv(hk.ENV, "static")
    assert host_kernels().table is KERNEL_NS
    monkeypatch.delenv(hk.ENV)
    assert host_kernels().table == HOST


def test_the_key_names_the_cpu_its_isa_and_the_versions() -> None:
    key = hk.host_key()
    assert set(key) == {"cpu", "isa", "edgesdk", hk.RUNTIME}
    assert all(f in hk.ISA_FLAGS for f in key["isa"].split(",") if f)
    assert key["cpu"]


def test_the_table_and_its_source_come_from_one_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """CostModel reads the cache once: its table and the source it names are one file's (stop
    27's review: one read per field, so a table cached between the two was named as another)."""
    from sdk.converters.quantize import planner

    reads: list[int] = []

    def counted() -> hk.KernelTable:
        reads.append(1)
        return hk.KernelTable(HOST, f"read {len(reads)}", None)

    monkeypatch.setattr(planner, "host_kernels", counted)
    costs = CostModel()
    assert len(reads) == 1
    assert costs.kernel_ns is HOST and costs.kernel_ns_source == "read 1"
    model, _ = _dw()
    scaled = costs.for_model(model, PrecisionPlan(), 10_000)  # a copy: no read of its own
    assert len(reads) == 1 and scaled.kernel_ns is HOST and scaled.kernel_ns_source == "read 1"
    given = CostModel(kernel_ns=KERNEL_NS)  # a caller's table: nothing read, not named a file
    assert len(reads) == 1 and given.kernel_ns is KERNEL_NS
    assert given.kernel_ns_source == "a kernel table given to CostModel"
