"""Range estimation and weight quantisation: the arithmetic under the INT8 quantiser."""

from __future__ import annotations

import numpy as np
import pytest

from sdk.converters.quantize.ranges import (
    TensorStats,
    affine_params,
    estimate_range,
    softmax_input_range,
)
from sdk.converters.quantize.weights import WEIGHT_FORMATS, symmetric_per_channel


def _stats(x: np.ndarray, **kw) -> TensorStats:
    s = TensorStats()
    s.observe(x, **kw)
    s.start_histogram()
    s.histogram(x)
    return s


def _quant_mse(x: np.ndarray, lo: float, hi: float) -> float:
    p = affine_params(lo, hi)
    scale, zp = float(p.scale[0]), int(p.zero_point[0])
    q = np.clip(np.round(x / scale) + zp, -128, 127)
    return float((((q - zp) * scale - x) ** 2).mean())


@pytest.mark.parametrize("lo, hi", [(0.0, 1.0), (-1.0, 1.0), (-3.7, 0.2), (0.5, 2.0),
                                    (-5.0, -1.0), (0.0, 0.0)])
def test_affine_params_represent_zero_exactly(lo: float, hi: float) -> None:
    p = affine_params(lo, hi)
    assert p.scale[0] > 0
    assert -128 <= p.zero_point[0] <= 127
    # 0.0 quantises to the zero point and back to exactly 0.0
    q = np.round(0.0 / p.scale[0]) + p.zero_point[0]
    assert p.dequantize(np.array([q]))[0] == 0.0
    # the range ends are within half a step of representable values
    if hi > lo:
        for v in (min(lo, 0.0), max(hi, 0.0)):
            q = np.clip(np.round(v / p.scale[0]) + p.zero_point[0], -128, 127)
            assert abs(p.dequantize(np.array([q]))[0] - v) <= p.scale[0] * 0.51


def test_image_range_matches_tflite() -> None:
    p = affine_params(0.0, 1.0)
    assert np.isclose(p.scale[0], 1 / 255) and p.zero_point[0] == -128


def test_mse_beats_minmax_on_heavy_tails() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(200_000), [40.0, -35.0]]).astype(np.float32)
    s = _stats(x)
    mm = estimate_range(s, "minmax")
    mse = estimate_range(s, "mse")
    pct = estimate_range(s, "percentile", percentile=99.9)
    assert mm == (pytest.approx(-35.0), pytest.approx(40.0))
    assert mse[1] - mse[0] < 0.8 * (mm[1] - mm[0])
    assert pct[1] - pct[0] < 0.2 * (mm[1] - mm[0])
    # the search really minimises the error it claims to: measured on the data itself
    assert _quant_mse(x, *mse) < 0.8 * _quant_mse(x, *mm)
    assert _quant_mse(x, *mse) < _quant_mse(x, *pct)


def test_mse_keeps_range_of_uniform_data() -> None:
    x = np.random.default_rng(1).uniform(-1, 3, 100_000).astype(np.float32)
    lo, hi = estimate_range(_stats(x), "mse")
    assert lo == pytest.approx(-1, abs=0.05) and hi == pytest.approx(3, abs=0.1)


def test_relu_zeros_do_not_shrink_the_range() -> None:
    """Exact zeros cost nothing: a ReLU output that is 90% zeros keeps its positive range."""
    rng = np.random.default_rng(2)
    x = np.maximum(rng.standard_normal(100_000) - 1.3, 0).astype(np.float32)
    s = _stats(x)
    assert s.zeros > 80_000
    lo, hi = estimate_range(s, "mse")
    assert lo == 0.0 and hi > 0.6 * x.max()


def test_softmax_input_range_clips_only_irrelevant_logits() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 8, (500, 10)).astype(np.float32)
    logits[np.arange(500), rng.integers(0, 10, 500)] += 25  # confident rows
    s = TensorStats()
    s.observe(logits, rows=True)
    lo, hi = softmax_input_range(s)
    assert hi == pytest.approx(float(logits.max()))
    assert lo > float(logits.min())
    # every row's maximum is far inside the range: the probabilities that matter are kept
    assert (logits.max(axis=1) - lo).min() >= np.log(256 * 10)


def test_symmetric_per_channel_weights() -> None:
    rng = np.random.default_rng(4)
    w = rng.standard_normal((6, 3, 3, 4)).astype(np.float32)
    w[2] = 0.0  # an all-zero channel still gets a valid scale
    w[3] *= 100.0
    scales, q = symmetric_per_channel(w, 0, 127)
    assert scales.shape == (6,) and (scales > 0).all()
    assert q.min() >= -127 and q.max() <= 127
    assert np.all(np.abs(q).reshape(6, -1).max(axis=1)[[0, 1, 3, 4, 5]] == 127)
    err = np.abs(q * scales[:, None, None, None] - w)
    assert (err <= scales[:, None, None, None] / 2 + 1e-6).all()
    mse_scales, mse_q = symmetric_per_channel(w, 0, 127, method="mse")
    e_minmax = ((q * scales[:, None, None, None] - w) ** 2).sum()
    e_mse = ((mse_q * mse_scales[:, None, None, None] - w) ** 2).sum()
    assert e_mse <= e_minmax


def test_int8_weight_format_axis() -> None:
    w = np.random.default_rng(5).standard_normal((1, 3, 3, 8)).astype(np.float32)
    out = WEIGHT_FORMATS["int8"].quantize(w, 3, "minmax")
    assert out.quant.axis == 3 and out.quant.scale.shape == (8,)
    assert out.values.dtype == np.int8


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _sigmoid_error(x: np.ndarray, lo: float, hi: float) -> float:
    p = affine_params(lo, hi)
    scale, zp = float(p.scale[0]), int(p.zero_point[0])
    q = (np.clip(np.round(x / scale) + zp, -128, 127) - zp) * scale
    return float(((_sigmoid(q) - _sigmoid(x)) ** 2).mean())


def test_logistic_input_range_minimises_the_output_error() -> None:
    """Score logits: background anchors well below 0 and confident objects well above, where
    the sigmoid is flat, and the undecided ones near 0. The range that minimises the logits' own
    error covers everything evenly; the one that minimises the sigmoid's error clips the flat
    ends and spends its steps near the decision (issue 12: score outputs lost most)."""
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.uniform(-8, -6, 100_000), rng.uniform(6, 8, 40_000),
                        rng.normal(0.0, 1.5, 60_000)])
    s = _stats(x.astype(np.float32))
    relevant = (-8.0, 8.0)  # what calibrate gives a LOGISTIC input anyway
    plain = estimate_range(s, "mse", relevant=relevant)
    by_output = estimate_range(s, "mse", relevant=relevant, transfer="LOGISTIC")
    assert by_output[0] > plain[0] + 0.5 and by_output[1] < plain[1] - 0.5
    assert _sigmoid_error(x, *by_output) < 0.8 * _sigmoid_error(x, *plain)


def test_values_beyond_the_relevant_interval_read_as_its_bound() -> None:
    """A RELU6 input mostly saturated above 6: its output reads 6 there, so a range ending at
    3 costs (6 - 3)^2 for each of them, not nothing."""
    rng = np.random.default_rng(6)
    x = np.concatenate([rng.uniform(0, 3, 50_000), rng.uniform(6, 40, 50_000)])
    s = _stats(x.astype(np.float32))
    _, hi = estimate_range(s, "mse", relevant=(0.0, 6.0))
    assert hi > 5.9


def test_the_plain_and_streaming_observers_add_values_one_way() -> None:
    """TensorStats.add_values (observe's extent, count and zeros, which the streaming observer's
    two paths share): a batch with NaN and inf adds only its finite values, both ways alike."""
    from sdk.converters.quantize.streaming import Reducer

    s = TensorStats()
    s.add_values(-1.0, 2.0, 5, 1)
    s.add_values(0.5, 3.0, 2, 0)
    assert (s.min, s.max, s.count, s.zeros) == (-1.0, 3.0, 7, 1)
    x = np.array([[0.0, -2.5, np.nan], [np.inf, 1.5, 0.0]], np.float32)
    plain, streamed = TensorStats(), TensorStats()
    plain.observe(x, channels=True, rows=True)
    assert Reducer(chunk=2).observe(streamed, x, channels=True, rows=True) is False
    for t in (plain, streamed):
        assert (t.min, t.max, t.count, t.zeros) == (-2.5, 1.5, 4, 2)
