"""The sub-byte support matrix export relies on, re-measured on the installed LiteRT: a row that
changes (a fix in LiteRT, or a new bug) fails here and must be updated in litert_support.py."""

from __future__ import annotations

import pytest

from sdk.converters.ir import DType
from sdk.converters.tflite.litert_probe import build_probe, measure, run_probe
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


def test_lookup() -> None:
    assert litert_runs("FULLY_CONNECTED", DType.INT2, "int8")
    assert not litert_runs("CONV_2D", DType.INT2, "int8")
    assert litert_runs("FULLY_CONNECTED", DType.INT4, "float32", blockwise=True)
    assert litert_runs("CONV_2D", DType.INT8, "int8")
    assert support("TRANSPOSE_CONV", DType.INT4, "int8") is None
    assert not litert_runs("TRANSPOSE_CONV", DType.INT4, "int8")
