"""benchmarks/subbyte.py and benchmarks/kernels.py take "all threads" from the physical cores
this process may run on (`usable_core_count`, what the runtime's and the delegate's pools take),
not the machine's cores (stop 27's review: they took `physical_core_count`, so under `taskset
-c 0` their "all threads" cells ran 2 threads taking turns on one CPU while the runtime ran 1)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import kernels as bench_kernels
import subbyte

from sdk.base import native

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"),
                                reason="no sched_setaffinity on this platform")


@pytest.fixture
def one_cpu() -> Iterator[None]:
    """This thread confined to one CPU (as `taskset -c 0` would), its affinity restored after."""
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(saved)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


def test_usable_core_count_follows_the_affinity(one_cpu: None) -> None:
    assert native.usable_core_count() == 1
    assert native.physical_core_count() >= 1


def test_all_threads_are_the_usable_cores(one_cpu: None) -> None:
    assert subbyte.speed_threads() == [1]
    assert bench_kernels.thread_counts("1,all") == [1]
    assert bench_kernels.thread_counts("2") == [2]  # an explicit count is taken as given


def test_all_threads_unrestricted() -> None:
    cores = native.usable_core_count()
    assert 1 <= cores <= native.physical_core_count()
    assert subbyte.speed_threads() == sorted({1, cores})
    assert bench_kernels.thread_counts("all") == [cores]
