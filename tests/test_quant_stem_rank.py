"""Stem rounding (GPTQ on the layers near the input) needs a Hessian of full rank: a dense head
on 32 calibration samples of 1536 features has a rank-32 Hessian, GPTQ then fits those 32 rows
and not the layer (oww_alexa 29.4 -> 22.9 dB). Such a layer keeps round-to-nearest."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize(("rows", "rounded"), [(32, False), (512, True)])
def test_stem_rounding_needs_rows(rows: int, rounded: bool) -> None:
    from sdk.converters.quantize.gptq import LayerHessian, weight_key
    from sdk.converters.quantize.stem import MIN_ROWS_PER_INPUT, StemRounding

    k = 64
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.2, (8, k)).astype(np.float32)
    x = rng.normal(0, 1.0, (rows, k))
    h = 2 * x.T @ x / rows
    stem = StemRounding({weight_key(w): LayerHessian(["fc"], "FULLY_CONNECTED", h, rows)})
    scales = np.abs(w).max(axis=1) / 127
    got = stem.codes(w, 0, scales, -127, 127)
    assert (got is not None) is rounded, (rows, MIN_ROWS_PER_INPUT * k)
