"""Shared fixtures: models made in the tests (no downloads), cached for the session."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# the planner's tests pin its choices to the static kernel table, whatever a developer has
# measured and cached on this host (`host_kernel_ns`; tests/test_host_kernel_ns.py unsets it)
os.environ.setdefault("EDGESDK_KERNEL_NS", "static")


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


#: the markers declared in pyproject.toml for an optional extra: a test carrying one is skipped,
#: saying why, where the extra is not installed; `pytest -m "not onnx"` leaves them out
EXTRAS: dict[str, tuple[tuple[str, ...], str]] = {
    "tf": (("tensorflow",), "needs the [tf] extra"),
    "onnx": (("onnx", "onnxruntime"), "needs the [onnx] extra"),
}
requires_tf = pytest.mark.tf
requires_onnx = pytest.mark.onnx


def host_cpu_flags() -> set[str]:
    """This machine's CPU features as its kernel lists them (/proc/cpuinfo flags / Features of
    the first CPU): what host-dependent asserts are keyed to."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("flags", "features"):
                    return set(value.split())
    except OSError:
        pass
    return set()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = {marker: reason for marker, (modules, reason) in EXTRAS.items()
               if not all(_have(m) for m in modules)}
    for item in items:
        for marker, reason in missing.items():
            if item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def digits_data():
    from sdk.examples import digits

    return digits()


@pytest.fixture(scope="session")
def digits_keras(digits_data):
    pytest.importorskip("tensorflow")
    from sdk.examples import digits_cnn

    return digits_cnn(digits_data)


@pytest.fixture(scope="session")
def digits_float_tflite(digits_keras, tmp_path_factory):
    """The digits CNN as a float .tflite file (TensorFlow's converter)."""
    import tensorflow as tf

    path = tmp_path_factory.mktemp("digits") / "digits_float.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(digits_keras).convert())
    return path


# ---------------------------------------------------------------- devices (issue 6)
# Emulated devices, started once per session: a real sshd on loopback as an aarch64 board, and
# our ADB daemon as an aarch64 phone. Tests that break a device start their own.
@pytest.fixture(scope="session")
def emulated_board(tmp_path_factory):
    from sdk.devices.emulated import EmulatedBoard

    with EmulatedBoard(arch="aarch64", root=tmp_path_factory.mktemp("board")) as board:
        yield board


@pytest.fixture(scope="session")
def emulated_phone(tmp_path_factory):
    from sdk.devices.emulated import EmulatedPhone

    root = tmp_path_factory.mktemp("phone")
    with EmulatedPhone(arch="aarch64", root=root / "phone", host_key=root / "adbkey") as phone:
        yield phone


@pytest.fixture(scope="session")
def digits_int8_tflite(digits_keras, digits_data, tmp_path_factory):
    """The digits CNN exported to full-integer INT8 .tflite by sdk.export (float I/O)."""
    import sdk

    path = tmp_path_factory.mktemp("digits_int8") / "digits_int8.tflite"
    sdk.export(digits_keras, "int8", calibration=digits_data.x_train[:256], output=path,
               report=False)
    return path


# ---------------------------------------------------------------- board farm (issue 7)
@pytest.fixture(scope="session")
def mlp_models(tmp_path_factory):
    """A small MLP as float32 / int8 / int4 / ternary .tflite files (built without TensorFlow:
    our IR writer, sdk.export, ai-edge-quantizer's INT4 / ternary INT2 recipes)."""
    from farm_support import mlp_models

    return mlp_models(tmp_path_factory.mktemp("mlp"))


# ---------------------------------------------------------------- .edge vs .tflite (integration)
@pytest.fixture(scope="session")
def digits_export_pairs(digits_float_tflite, digits_data, tmp_path_factory):
    """The digits CNN exported by sdk.export in int8 / int4 / int2 / ternary, each to .tflite and
    to .edge with the same settings: {scheme: (tflite ExportResult, edge ExportResult)}."""
    from edge_helpers import SCHEMES, export_pair

    out = tmp_path_factory.mktemp("digits_pairs")
    return {scheme: export_pair(digits_float_tflite, scheme, out, "digits",
                                digits_data.x_train[:256]) for scheme in SCHEMES}


#: a hang guard for bounded_work, not a speed limit: tests never assert on time
HANG_GUARD_S = 300


class WorkBoundExceeded(BaseException):
    """Raised inside the code under test when it passes its work bound (a BaseException, so a
    loader's `except Exception` cannot turn it into an answer)."""


class Work:
    """The Python function calls made in a `bounded_work` block: a step count that is the same
    on every host, unlike wall time."""

    def __init__(self, limit: int | None) -> None:
        self.calls = 0
        self.limit = limit

    def profile(self, frame: object, event: str, arg: object) -> None:
        if event in ("call", "c_call"):
            self.calls += 1
            if self.limit is not None and self.calls > self.limit:
                raise WorkBoundExceeded(f"over {self.limit:,} Python calls")


@contextlib.contextmanager
def bounded_work(calls: int | None = None) -> Iterator[Work]:
    """Count the Python calls made in the block, stopping it past `calls`; a SIGALRM hang guard
    (HANG_GUARD_S) reports a hang instead of waiting for ever."""
    work = Work(calls)

    def hang(signum: int, frame: object) -> None:
        raise WorkBoundExceeded(f"hang guard: no answer after {HANG_GUARD_S} s "
                                f"({work.calls:,} calls so far)")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(HANG_GUARD_S)
    sys.setprofile(work.profile)
    try:
        yield work
    except WorkBoundExceeded as exc:
        raise AssertionError(f"unbounded work: {exc}") from None
    finally:
        sys.setprofile(None)
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def refused_within(fn: Callable[[], object], *, mib: float | None, calls: int,
                   error: type[Exception] | None = None, match: str | None = None) -> Exception:
    """Run fn, which must raise `error` (ModelFormatError by default, matching `match`) having
    done bounded work: at most `calls` Python function calls (a step count, the same on every
    host) and `mib` MiB of Python allocations, so a hostile file is refused before it costs
    anything (`mib=None`: allocations not traced); return the error."""
    from sdk.base.errors import ModelFormatError

    if mib is not None:
        tracemalloc.start()
    try:
        with bounded_work(calls), pytest.raises(error or ModelFormatError, match=match) as info:
            fn()
        peak = tracemalloc.get_traced_memory()[1] if mib is not None else 0
    finally:
        tracemalloc.stop()
    if mib is not None:
        assert peak < mib * (1 << 20), f"peak {peak / (1 << 20):.0f} MiB"
    return info.value
