"""The MSE scale search (`weights.symmetric_per_channel`, methods mse / rtn / gptq / adaround /
auto) runs once per weights, axis and range: a sub-byte export searched every layer twice (its
plan's weight SQNR, then the rewrite) and a mixed-precision search again in each of its 10-40
exports (ddddocr_rec: 167 of an INT4 export's 203 s). Cached, the scales and codes are the same
bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from sdk.converters.quantize import weights


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = weights._channel_error

    def counting(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(weights, "_channel_error", counting)
    monkeypatch.setattr(weights, "_MSE_SCALES", {})
    return calls


def test_the_same_weights_are_searched_once(counted: list[int]) -> None:
    w = np.random.default_rng(4).standard_normal((16, 3, 3, 8)).astype(np.float32)
    first = weights.symmetric_per_channel(w, 0, 7, "rtn", qmin=-8)
    searched = counted[0]
    assert searched == 51  # the absmax scale and 50 shrunk ones
    again = weights.symmetric_per_channel(w.copy(), 0, 7, "mse", qmin=-8)
    assert counted[0] == searched
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    # what is returned is a copy: changing it changes no later answer
    again[0][:] = 0
    np.testing.assert_array_equal(weights.symmetric_per_channel(w, 0, 7, "rtn", qmin=-8)[0],
                                  first[0])


def test_other_weights_axis_or_range_are_searched(counted: list[int]) -> None:
    w = np.random.default_rng(5).standard_normal((8, 32)).astype(np.float32)
    weights.symmetric_per_channel(w, 0, 7, "rtn", qmin=-8)
    weights.symmetric_per_channel(w, 0, 7, "rtn")  # another range
    weights.symmetric_per_channel(w, 1, 7, "rtn", qmin=-8)  # another axis
    changed = w.copy()
    changed[3, 4] += 1.0
    weights.symmetric_per_channel(changed, 0, 7, "rtn", qmin=-8)
    assert counted[0] == 4 * 51
    weights.symmetric_per_channel(w, 0, 7, "minmax", qmin=-8)  # no search
    assert counted[0] == 4 * 51


def test_cached_scales_are_those_of_a_fresh_search(counted: list[int]) -> None:
    w = np.random.default_rng(6).standard_normal((12, 40)).astype(np.float32) * 0.1
    cached = weights.symmetric_per_channel(w, 0, 127, "rtn")
    weights._MSE_SCALES.clear()
    fresh = weights.symmetric_per_channel(w, 0, 127, "rtn")
    for a, b in zip(cached, fresh, strict=True):
        np.testing.assert_array_equal(a, b)
