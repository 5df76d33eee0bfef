"""`export(..., target=...)` runs the NPU simulator on the samples the export measured its own
fidelity on: one rule (`sdk.exporter.held_out_samples`), not a copy of it in sdk.target_export
that had drifted (with target_sqnr= the export holds out an evenly spread check set of at least
MIN_CONFIDENT_SAMPLES; the copy took the last 20 %)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from farm_support import build_mlp

from sdk.converters.quantize.planner import MIN_CONFIDENT_SAMPLES
from sdk.converters.tflite import read_tflite
from sdk.exporter import _samples, input_specs
from sdk.target_export import _validation_samples


@pytest.mark.parametrize("extra", [{}, {"target_sqnr": 30.0}, {"validation_split": 0.5}])
def test_the_simulator_gets_the_exports_held_out_samples(tmp_path, extra) -> None:
    model = build_mlp(tmp_path / "mlp.tflite", sizes=(8, 4))
    x = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    specs = input_specs(read_tflite(model))
    split = extra.get("validation_split", 0.2)
    floor = MIN_CONFIDENT_SAMPLES if "target_sqnr" in extra else 0
    want = _samples(x, None, specs, 1000, split, floor)[1]  # what export() measures on
    got = _validation_samples(SimpleNamespace(path=model), {"calibration": x, **extra})
    assert len(got) == len(want) == max(round(50 * split), floor)
    assert np.array_equal(got.arrays[0], want.arrays[0])


def test_given_validation_samples_are_used_as_they_are(tmp_path) -> None:
    model = build_mlp(tmp_path / "mlp.tflite", sizes=(8, 4))
    rng = np.random.default_rng(1)
    x, v = (rng.standard_normal((n, 8)).astype(np.float32) for n in (40, 12))
    got = _validation_samples(SimpleNamespace(path=model), {"calibration": x, "validation": v})
    assert np.array_equal(got.arrays[0], v)
