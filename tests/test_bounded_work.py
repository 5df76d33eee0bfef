"""conftest's bounded_work / refused_within: the step count that replaces wall-time asserts."""

from __future__ import annotations

import pytest

from sdk.base.errors import ModelFormatError

from conftest import bounded_work, refused_within


def _spin_inside_a_broad_except() -> None:
    """A loader that never answers, and that turns any Exception into an answer."""
    try:
        while True:
            len("x")
    except Exception as exc:  # the bound must not be swallowed here
        raise ModelFormatError("swallowed the bound") from exc


def test_work_past_the_bound_is_stopped_and_reported() -> None:
    with pytest.raises(AssertionError, match=r"unbounded work: over 1,000 Python calls"), \
            bounded_work(1000):
        _spin_inside_a_broad_except()


def test_the_count_is_the_work_not_the_time() -> None:
    def calls(n: int) -> int:
        with bounded_work() as work:
            for _ in range(n):
                len("x")
        return work.calls

    assert calls(500) - calls(250) == 250  # one call per len(), whatever the host


def test_refused_within_checks_the_error_and_the_bound() -> None:
    def refuse() -> None:
        raise ModelFormatError("bad file")

    assert str(refused_within(refuse, mib=1, calls=100)) == "bad file"
    with pytest.raises(AssertionError, match="unbounded work"):
        refused_within(_spin_inside_a_broad_except, mib=None, calls=10_000)
