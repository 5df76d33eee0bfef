"""target_sqnr= decides on a lower confidence bound of the check SQNR, not the point value."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sdk.base.errors import FidelityError
from sdk.converters.ir import DType, Graph, Model, Tensor
from sdk.converters.quantize.plan import PrecisionPlan
from sdk.converters.quantize.planner import (
    MIN_CONFIDENT_SAMPLES,
    Attempt,
    plan_to_target,
    sqnr_bound_db,
)
from sdk.run.fidelity import FidelityReport, LayerFidelity, OutputFidelity, sqnr_db


def _model() -> Model:
    out = Tensor("y", (1, 4), DType.FLOAT32)
    return Model([Graph("main", [out], [], [], [out])])


def _attempt(signal: np.ndarray, noise: np.ndarray, *, energies: bool = True) -> Attempt:
    point = sqnr_db(float(signal.sum()), float(noise.sum()))
    fid = FidelityReport(len(signal), "the last 20 % of the calibration samples",
                         [OutputFidelity("y", point, 1.0, 0.0, 0.0, None)],
                         layers=[LayerFidelity("op", "FULLY_CONNECTED", "int8", "y", point)])
    return Attempt(PrecisionPlan(), fid, 1000,
                   sample_energies={"y": (signal, noise)} if energies else {})


def _one_outlier(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n samples of equal signal; one holds ~90 % of the error (33 dB overall)."""
    signal = np.ones(n)
    noise = np.full(n, 1e-4)
    noise[0] = 0.0
    noise[0] = 10 ** (-3.3) * n - noise.sum()
    return signal, noise


def test_point_check_on_one_dominant_sample_is_not_met() -> None:
    signal, noise = _one_outlier(6)
    point = sqnr_db(float(signal.sum()), float(noise.sum()))
    assert point == pytest.approx(33.0, abs=0.01)  # the old planner: met at once
    bound = sqnr_bound_db(signal, noise)
    assert bound < 30.0 < point
    calls: list[PrecisionPlan] = []

    def attempt(plan: PrecisionPlan) -> Attempt:
        calls.append(plan)
        return _attempt(signal, noise)

    # nothing in this graph can be widened: the planner must say the target is not met
    with pytest.raises(FidelityError, match=r"lower bound .* on 6 check samples"):
        plan_to_target(_model(), PrecisionPlan(), 30.0, attempt,
                       first=_attempt(signal, noise))


def test_many_agreeing_samples_still_stop_at_the_first_export() -> None:
    rng = np.random.default_rng(1)
    n = 40
    signal = rng.uniform(0.9, 1.1, n)
    noise = signal * 10 ** (-3.3) * rng.uniform(0.8, 1.2, n)

    def attempt(plan: PrecisionPlan) -> Attempt:
        raise AssertionError("no re-export: the target holds on every sample")

    _, report = plan_to_target(_model(), PrecisionPlan(), 30.0, attempt,
                               first=_attempt(signal, noise))
    assert report.met and report.exports == 1 and not report.kept
    assert 30.0 <= report.after_bound_db["y"] <= report.after_db["y"]
    assert report.check_samples == n
    assert not any("too few" in note for note in report.notes)
    assert any("lower bound" in line for line in report.lines())


def test_few_samples_met_says_the_check_set_is_too_small() -> None:
    signal = np.ones(6)
    noise = np.full(6, 1e-4)  # 40 dB on every sample: the bound holds
    _, report = plan_to_target(_model(), PrecisionPlan(), 30.0, lambda p: _attempt(signal, noise),
                               first=_attempt(signal, noise))
    assert report.met and report.exports == 1
    note = next(n for n in report.notes if "too few" in n)
    assert "only 6 sample(s)" in note and str(MIN_CONFIDENT_SAMPLES) in note


def test_bound_is_below_the_point_and_seeded() -> None:
    signal, noise = _one_outlier(10)
    point = sqnr_db(float(signal.sum()), float(noise.sum()))
    b1, b2 = sqnr_bound_db(signal, noise), sqnr_bound_db(signal, noise)
    assert b1 == b2 and b1 < point
    assert sqnr_bound_db(np.ones(1), np.full(1, 1e-3)) == pytest.approx(30.0)
    assert math.isinf(sqnr_bound_db(np.ones(3), np.zeros(3)))


def test_without_per_sample_errors_the_point_value_decides_with_a_note() -> None:
    signal = np.ones(30)
    noise = np.full(30, 1e-4)
    _, report = plan_to_target(_model(), PrecisionPlan(), 30.0, lambda p: _attempt(signal, noise),
                               first=_attempt(signal, noise, energies=False))
    assert report.met and report.after_bound_db == {}
    assert any("no confidence bound" in n for n in report.notes)


def test_signal_in_one_sample_is_not_taken_for_thin_evidence() -> None:
    # a wake word's score: the signal sits in the one positive sample, the error is even
    signal = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    noise = np.full(6, 1e-5)
    point = sqnr_db(float(signal.sum()), float(noise.sum()))
    assert point - 0.01 <= sqnr_bound_db(signal, noise) <= point


def test_few_samples_hold_out_more_for_the_check_only_with_a_target(tmp_path) -> None:
    pytest.importorskip("tensorflow", reason="the test model is built with Keras")
    import tensorflow as tf

    import sdk

    tf.keras.utils.set_random_seed(3)
    inp = tf.keras.Input((8,))
    net = tf.keras.Model(inp, tf.keras.layers.Dense(4)(inp))
    data = np.random.default_rng(2).standard_normal((30, 8)).astype(np.float32)
    plain = sdk.export(net, "int8", calibration=data, output=tmp_path / "p.tflite")
    assert plain.fidelity.samples == 6  # the default split: the last 20 %
    res = sdk.export(net, "int8", calibration=data, output=tmp_path / "t.tflite",
                     target_sqnr=-100)
    assert res.fidelity.samples == res.planner.check_samples == 15  # half, short of 20
    assert any("15 of the 30 calibration samples held out" in n for n in res.notes)
    assert any("only 15 sample(s)" in n for n in res.planner.notes)


def test_target_check_samples_are_spread_over_ordered_data() -> None:
    """Calibration data in time order (windows of one stream): the planner's check is taken
    evenly over it, not from its tail (oww_silero_vad_v4's tail had no speech onset); the
    export without a target keeps its tail split."""
    from sdk.base.samples import InputSpec
    from sdk.exporter import _samples

    specs = [InputSpec("x", (1, 4), np.dtype(np.float32), True, ("x",))]
    data = np.repeat(np.arange(32, dtype=np.float32)[:, None], 4, axis=1)  # sample i holds i
    cal, check, _ = _samples(data, None, specs, 1000, 0.2, MIN_CONFIDENT_SAMPLES)
    got = sorted(int(v) for v in check.arrays[0][:, 0])
    assert got == list(range(1, 32, 2))  # every other sample, both halves of the stream
    assert sorted(int(v) for v in cal.arrays[0][:, 0]) == list(range(0, 32, 2))
    assert "evenly spaced" in check.source
    plain_cal, plain_check, _ = _samples(data, None, specs, 1000, 0.2)
    assert [int(v) for v in plain_check.arrays[0][:, 0]] == list(range(26, 32))
    assert len(plain_cal) == 26
