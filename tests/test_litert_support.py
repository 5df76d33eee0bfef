"""The sub-byte support matrix export relies on, re-measured on the installed LiteRT: a row that
changes (a fix in LiteRT, or a new bug) fails here and must be updated in litert_support.py."""

from __future__ import annotations

import pytest

from sdk.converters.ir import DType
from sdk.converters.quantize.litert_probe import build_probe, measure, run_probe
from sdk.converters.tflite.litert_support import MATRIX, OK, litert_runs, support


@pytest.mark.parametrize("row", MATRIX, ids=lambda r: f"{r.op}-{r.weights.name}-{r.activations}"
                         f"{'-block' if r.blockwise else ''}")
def test_matrix_row_still_holds(row) -> None:
    assert measure(row) == (row.xnnpack, row.builtin)


def test_blockwise_fc_is_right_without_fused_activation() -> None:
    """The repair export applies (activation as a separate op) really repairs it."""
    probe = build_probe("FULLY_CONNECTED", DType.INT4, "float32", blockwise=True,
                        activation="NONE")
    assert run_probe(probe, xnnpack=True) == OK and run_probe(probe, xnnpack=False) == OK


@pytest.mark.parametrize("acts", ["int8", "float32"])
@pytest.mark.parametrize("op", ["FULLY_CONNECTED", "CONV_2D"])
def test_most_negative_int4(op, acts) -> None:
    """-8 in INT4 weights: right everywhere except the builtin dynamic-range FC (weights_min)."""
    probe = build_probe(op, DType.INT4, acts, extreme=True)
    broken = op == "FULLY_CONNECTED" and acts == "float32"
    assert run_probe(probe, xnnpack=True) == OK
    assert (run_probe(probe, xnnpack=False) == OK) != broken
    assert (support(op, DType.INT4, acts).weights_min == -7) == broken


def test_lookup() -> None:
    assert litert_runs("FULLY_CONNECTED", DType.INT2, "int8")
    assert not litert_runs("CONV_2D", DType.INT2, "int8")
    assert litert_runs("FULLY_CONNECTED", DType.INT4, "float32", blockwise=True)
    assert litert_runs("CONV_2D", DType.INT8, "int8")
    assert support("TRANSPOSE_CONV", DType.INT4, "int8") is None
    assert not litert_runs("TRANSPOSE_CONV", DType.INT4, "int8")
