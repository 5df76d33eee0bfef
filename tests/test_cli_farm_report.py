"""The farm report's plots in a real headless browser: no point dropped outside its axis
(negative, -inf and exact SQNR), labels that neither overlap nor get cut."""

from __future__ import annotations

import re

import pytest
from farm_support import Elements, browser, rendered_dom

from sdk.devices.farm.report import html_from_data

LONG_BOARD = "lab-rack-03-slot-12-raspberry-pi-5-8gb-with-active-cooler-and-nvme-hat"
#: (precision, size KiB, min SQNR): sizes close together and SQNRs too, so labels collide
MODELS = [("float16", 200.0, 60.0), ("int8", 100.0, 31.0), ("int4", 101.0, 30.2),
          ("int2", 102.0, -4.5), ("ternary", 103.0, "-inf"), ("int8", 104.0, "inf")]
LAYER = "model/backbone/stage4/block12/depthwise_conv_with_a_very_long_scope_name"


def _data() -> dict:
    models, jobs = [], []
    for i, (precision, kib, sqnr) in enumerate(MODELS):
        sha = f"{i:064x}"
        models.append({"name": f"m{i}_{precision}.{'edge' if i == 5 else 'tflite'}",
                       "sha256": sha, "size_bytes": int(kib * 1024), "precision": precision,
                       "format": "edge" if i == 5 else "tflite", "scheme": precision,
                       "fidelity": {"min_sqnr_db": sqnr, "top1_agreement": None,
                                    "source": "export report"}})
        for board in (LONG_BOARD, "pi4"):
            samples = [1.0 + 0.01 * k + 0.1 * i for k in range(40)]
            jobs.append({
                "key": f"{sha}-{board}", "model": sha, "model_name": models[-1]["name"],
                "precision": precision, "board": board, "status": "ok", "attempts": 1,
                "cached": False, "error": None, "error_type": None, "kind": "profile",
                "settings": {"runs": 40, "min_duration_s": 0, "warmup": 2}, "run_id": 1,
                "latency": {"p50_ms": samples[20], "p90_ms": samples[36],
                            "p99_ms": samples[39], "max_ms": samples[39],
                            "mean_ms": samples[20], "runs": 40},
                "samples": samples, "init_ms": 3.0, "first_run_ms": 2.0, "timed_s": 0.1,
                "peak_memory_bytes": 1 << 20, "runner": "edge-run", "runtime": "edge-run",
                "kernels": "edgesdk", "machine": "aarch64", "threads": 1, "cpus": None,
                "governor": None, "temperature_c": None, "temperature_before_c": None,
                "temperature_after_c": None, "device": "aarch64", "emulated": None,
                "layers": [{"name": f"{LAYER}_{k}", "op": "DEPTHWISE_CONV_2D",
                            "kernel": "edgesdk", "mean_ms": 0.1 * (k + 1)} for k in range(4)],
                "notes": []})
    boards = [{"name": name, "state": "ok", "reason": None, "jobs_ok": len(MODELS),
               "jobs_failed": 0, "summary": "aarch64", "tags": {}, "transport": "ssh",
               "disagrees": []} for name in (LONG_BOARD, "pi4")]
    return {"title": "t", "generated": "2026-12-06 08:00:00",
            "run": {"id": 1, "started": 0.0, "finished": 1.0, "wall_s": 1.0,
                    "database": "db.sqlite", "backend": "asyncio", "ok": len(jobs),
                    "failed": 0, "cached": 0},
            "kinds": ["profile"], "bounds": {"min_sqnr_db": 30.0, "min_top1": 0.99},
            "flagged": {}, "boards": boards, "models": models,
            "precisions": ["float16", "int8", "int4", "int2", "ternary"], "jobs": jobs,
            "events": [], "layer_board": LONG_BOARD}


def _boxes_overlap(a: list[float], b: list[float]) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


@pytest.fixture(scope="module")
def dom(tmp_path_factory):
    try:
        browser()
    except Exception as exc:  # pragma: no cover - the [dev] setup installs one
        pytest.skip(f"no headless browser: {exc}")
    page = tmp_path_factory.mktemp("report") / "report.html"
    page.write_text(html_from_data(_data(), "edgesdk farm run 1"))
    markup = rendered_dom(page)
    return markup, Elements(markup)


def test_no_fidelity_point_is_dropped_or_off_its_axis(dom) -> None:
    markup, elements = dom
    body = elements.find("body")[0]
    assert body.get("data-rendered") == "true", body.get("data-render-error")
    svg = markup[markup.index('id="tradeoff-svg"'):]
    svg = svg[:svg.index("</svg>")]
    points = Elements(svg)
    circles = points.find("circle", "fidelity-point")
    edges = points.find("path", "fidelity-point")
    # every model has a fidelity: negative, -inf and exact ones are drawn too
    assert len(circles) + len(edges) == len(MODELS)
    assert sorted(p["data-edge"] for p in edges) == ["bottom", "top"]
    axis_top, axis_bottom = 20, 340 - 50  # the trade-off plot's top and bottom margins
    for c in circles:
        assert axis_top <= float(c["cy"]) <= axis_bottom, c


def test_labels_neither_overlap_nor_get_cut(dom) -> None:
    markup, elements = dom
    boxes = [[float(v) for v in t["data-box"].split()] for t in elements.find("text", "label")
             if t.get("data-box")]
    assert len(boxes) == 2 * len(MODELS)  # one per point, both panels
    for i, a in enumerate(boxes):
        assert a[0] >= 0 and a[2] <= 900 and a[1] >= 0, a
        for b in boxes[i + 1:]:
            assert not _boxes_overlap(a, b), (a, b)
    # right-aligned labels (board names, layer names) start inside the picture
    anchored = [t for t in elements.find("text", "label") if t.get("data-w")]
    assert len(anchored) >= 2 + 4
    for t in anchored:
        assert float(t["x"]) - float(t["data-w"]) >= 0, t
    # the long board name is shortened from its start, never cut off by the edge
    assert re.search(r">…[^<]*cooler-and-nvme-hat<", markup) or LONG_BOARD in markup


def _npu(nodes: int, on_npu: int, fallback: str | None = None) -> dict:
    """An NPU board's placement as jobs carry it (NpuPlacement.to_dict)."""
    from sdk.devices.npu import NpuPlacement

    names = [f"CONV_2D#{k}" for k in range(nodes)]
    taken = () if fallback else tuple(names[:on_npu])
    return NpuPlacement(stack="ethos-u", runtime="libethosu_delegate.so", nodes=nodes,
                        npu=taken, cpu=tuple(n for n in names if n not in taken),
                        fallback=fallback).to_dict()


def test_npu_board_placement_column_and_legend(dom, tmp_path) -> None:
    # a run of CPU boards only: no NPU column, no NPU legend
    markup, elements = dom
    assert "<th>NPU</th>" not in markup and not elements.find("g", "legend", data_legend="npu")
    # the second board has an NPU: m0 with 2 of 6 nodes on it, m1 fell back to the CPU
    data = _data()
    for job in data["jobs"]:
        if job["board"] == "pi4" and job["model"] == f"{0:064x}":
            job["npu"] = _npu(6, 2)
        elif job["board"] == "pi4" and job["model"] == f"{1:064x}":
            job["npu"] = _npu(6, 0, fallback="delegate claimed no node")
        else:
            job["npu"] = None
    page = tmp_path / "report.html"
    page.write_text(html_from_data(data, "edgesdk farm run 1"))
    markup = rendered_dom(page)
    elements = Elements(markup)
    body = elements.find("body")[0]
    assert body.get("data-rendered") == "true", body.get("data-render-error")
    table = markup[markup.index('id="results-table"'):]
    table = table[:table.index("</table>")]
    assert "<th>NPU</th>" in table
    rows = {(m, b): row for row in table.split("<tr")[2:]
            for m, b in [(re.search(r'data-model="([0-9a-f]+)"', row)[1],
                          re.search(r'data-board="([^"]+)"', row)[1])]}
    assert len(rows) == 2 * len(MODELS)
    assert ">NPU 33% (2/6) · ethos-u</td>" in rows[(f"{0:064x}", "pi4")]
    assert ">CPU only (fallback: delegate claimed no node) · ethos-u</td>" in \
        rows[(f"{1:064x}", "pi4")]
    assert ">-</td>" in rows[(f"{0:064x}", LONG_BOARD)]
    # the latency chart (first model): the NPU board's runs are drawn apart, with a legend
    svg = markup[markup.index('id="latency-svg"'):]
    svg = Elements(svg[:svg.index("</svg>")])
    assert svg.count("rect", "npu") == 40 and svg.count("circle", "sample") == 40
    assert svg.find("g", data_board="pi4")[0]["data-npu"] == "NPU 33% (2/6) · ethos-u"
    assert len(svg.find("g", "legend", data_legend="npu")) == 1
    assert "NPU board" in markup[markup.index('data-legend="npu"'):]
