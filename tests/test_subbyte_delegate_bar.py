"""benchmarks/subbyte.py's issue-17 bar (`never_slower`): the delegate never slower than stock
LiteRT on the same file. A cell whose stock or delegate run failed is reported, and the bar is not
met while one is (stop 25's third run had a failed stock process and still read `met`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import subbyte


def timed(median: float, fastest: float, nodes: int | None = None,
          ratio: tuple[float, float] | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"median_ms": median, "min_ms": fastest}
    if nodes is not None:
        row["delegate_nodes"] = nodes
    if ratio is not None:
        row["speedup_vs_same_file_litert"], row["speedup_vs_same_file_litert_min"] = ratio
    return row


def pair(label: str, threads: int, stock: dict[str, Any], delegate: dict[str, Any]
         ) -> dict[str, dict[str, Any]]:
    """A file's stock and delegate rows on `threads` threads, keyed as subbyte.speed keys them."""
    return {f"{label} | litert | {threads} thread(s)": stock,
            f"{label} | delegate | {threads} thread(s)": delegate}


def case(*pairs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"model": "fc_1024x1024", "runs": {k: v for p in pairs for k, v in p.items()}}]


def test_every_cell_timed_and_none_slower_is_met() -> None:
    bar = subbyte.never_slower(case(
        pair("int2", 1, timed(0.029, 0.028), timed(0.019, 0.018, 1, (1.53, 1.56))),
        pair("int8", 1, timed(0.05, 0.049), timed(0.05, 0.049, 0, (1.0, 1.0)))))
    assert bar["met"] is True
    assert bar["unmeasured"] == []
    assert [c["run"] for c in bar["cells"]] == ["int2 | delegate | 1 thread(s)",
                                                "int8 | delegate | 1 thread(s)"]
    assert bar["noise_floor"] == [1.0, 1.0]


def test_a_failed_stock_run_is_unmeasured_and_not_met() -> None:
    failed = {"error": "ModuleNotFoundError: No module named 'sdk.converters'"}
    bar = subbyte.never_slower(case(
        pair("int2", 1, failed, timed(0.019, 0.018, 1)),
        pair("int2", 2, timed(0.029, 0.028), timed(0.019, 0.018, 1, (1.53, 1.56)))))
    assert bar["slower"] == []
    assert bar["met"] is False
    assert bar["unmeasured"] == [{
        "model": "fc_1024x1024", "run": "int2 | delegate | 1 thread(s)",
        "errors": {"litert": "ModuleNotFoundError: No module named 'sdk.converters'"}}]


def test_a_failed_delegate_run_is_unmeasured() -> None:
    bar = subbyte.never_slower(case(pair("int4", 2, timed(0.03, 0.029), {"error": "exit -11"})))
    assert bar["met"] is False
    assert bar["unmeasured"][0]["errors"] == {"delegate": "exit -11"}


def test_custom_op_files_have_no_stock_cell() -> None:
    """A file with EDGE_* custom ops runs only with the delegate: no stock row, no cell."""
    bar = subbyte.never_slower(case({"int2 conv | delegate | 1 thread(s)": timed(0.02, 0.02, 2)}))
    assert bar["cells"] == [] and bar["unmeasured"] == []
    assert bar["met"] is True


def test_slower_on_both_figures_is_not_met() -> None:
    bar = subbyte.never_slower(case(
        pair("int4", 2, timed(0.02, 0.02), timed(0.03, 0.03, 2, (0.67, 0.67))),
        pair("int2", 2, timed(0.02, 0.02), timed(0.03, 0.019, 1, (0.67, 1.05)))))
    assert [c["run"] for c in bar["slower"]] == ["int4 | delegate | 2 thread(s)"]
    assert bar["met"] is False
