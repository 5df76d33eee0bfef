"""Issue 12, class 4, "never silent": an output under 15 dB SQNR is a loud warning in the report,
the CLI's summary and Python's warnings, naming the layer that loses most on its way."""

from __future__ import annotations

import json

import numpy as np
import pytest

import sdk
from sdk.run.fidelity import LOW_SQNR_DB, FidelityReport, FidelityWarning

from conftest import requires_tf

pytestmark = requires_tf


def _cancelling_net():
    """Dense(16) with large activations, then a Dense that subtracts pairs of nearly equal
    ones: the result is small against its input's int8 step (catastrophic cancellation), so
    the second Dense is where the output is lost."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(11)
    inp = tf.keras.Input((8,))
    first = tf.keras.layers.Dense(16, name="wide")
    second = tf.keras.layers.Dense(2, name="difference")
    model = tf.keras.Model(inp, second(first(inp)))
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 8)).astype(np.float32) * 20
    first.set_weights([np.concatenate([w, w * 1.002], axis=1), np.zeros(16, np.float32)])
    d = np.zeros((16, 2), np.float32)
    d[0, 0], d[8, 0], d[1, 1], d[9, 1] = -1, 1, -1, 1
    second.set_weights([d, np.zeros(2, np.float32)])
    return model


def test_low_output_is_a_loud_warning_naming_the_layer(tmp_path) -> None:
    x = np.random.default_rng(1).standard_normal((200, 8)).astype(np.float32)
    with pytest.warns(FidelityWarning, match="under 15 dB"):
        res = sdk.export(_cancelling_net(), "int8", calibration=x, output=tmp_path / "c.tflite")
    assert res.fidelity.min_sqnr_db < LOW_SQNR_DB
    (warning,) = res.fidelity.warnings
    worst = [name for name in res.precision if name.startswith("FULLY_CONNECTED")]
    assert len(worst) == 2
    # the layer that loses most is the subtraction, not the wide layer before it
    difference = next(name for name in worst if "wide" not in name)
    assert f"loses most on its way is {difference}" in warning, warning
    summary = res.summary()
    assert summary.splitlines()[0].startswith("wrote")
    assert summary.count("WARNING:") == 2 and difference in summary
    # the JSON report carries it too
    saved = json.loads(res.report_path.read_text())
    assert saved["fidelity"]["warnings"] == [warning]
    assert FidelityReport.from_dict(saved["fidelity"]).warnings == [warning]


def test_no_warning_for_a_faithful_output(tmp_path, digits_float_tflite, digits_data) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", FidelityWarning)
        res = sdk.export(digits_float_tflite, "int8", calibration=digits_data.x_train[:200],
                         output=tmp_path / "d.tflite", per_layer=False)
    assert res.fidelity.warnings == [] and "WARNING" not in res.summary()
