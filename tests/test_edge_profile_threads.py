"""The .edge profile says per layer how many threads ran it and why (issue 17), and its fastest
run: a 40x40 convolution is split over the pool, a 1-pixel one is too small to hand over, and
a 1-thread model says it has one thread. Built without TensorFlow (sdk.layer_models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sdk import layer_models
from sdk.converters.edge import write_edge
from sdk.converters.tflite import read_tflite
from sdk.run import EdgeModel


def _conv_edge(tmp_path: Path, size: int, channels: int = 32) -> Path:
    rng = np.random.default_rng(0)
    filt = rng.integers(-127, 128, (channels, 3, 3, 16), dtype=np.int8)
    scales = np.full(channels, 0.01, np.float32)
    bias = rng.integers(-500, 500, channels, dtype=np.int32)
    tfl = layer_models.int8_conv2d(filt, scales, bias, input_shape=(1, size, size, 16),
                                   input_scale=0.05, input_zero_point=-3, output_scale=0.2,
                                   output_zero_point=1)
    path = tmp_path / f"conv{size}x{channels}.edge"
    write_edge(read_tflite(tfl), path)
    return path


def test_profile_reports_threads_and_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No serial back-off: on a loaded CI host the pool would run some jobs on the caller alone
    # (the profile says so too, but this test checks the plain parallel case).
    monkeypatch.setenv("EDGE_POOL_BACKOFF_US", "0")
    x = np.random.default_rng(1).integers(-128, 128, (1, 40, 40, 16), dtype=np.int8)
    outputs = []
    for threads in (1, 2):
        model = EdgeModel(_conv_edge(tmp_path, 40), threads=threads, profile=True)
        for _ in range(3):
            outputs.append(model.run(x)[0])
        (conv,) = model.layer_stats()
        assert conv.runs == 3 and 0 < conv.min_ms <= conv.mean_ms
        if threads == 1:
            assert conv.threads == 1 and conv.threads_why == "1 thread: the interpreter has one"
        else:
            assert conv.threads == 2
            assert conv.threads_why.startswith("2 threads (pool jobs per run: ")
    assert all(np.array_equal(o, outputs[0]) for o in outputs)  # 1 or 2 threads, same bytes

    # One output pixel, one 16-channel tile: a single task on any ISA's split.
    small = EdgeModel(_conv_edge(tmp_path, 1, channels=16), threads=2, profile=True)
    small.run(np.zeros((1, 1, 1, 16), np.int8))
    (conv,) = small.layer_stats()
    assert conv.threads == 1 and conv.threads_why.startswith("1 thread")


def test_unprofiled_layers_say_so(tmp_path: Path) -> None:
    model = EdgeModel(_conv_edge(tmp_path, 8), threads=2)
    model.run(np.zeros((1, 8, 8, 16), np.int8))
    (conv,) = model.layer_stats()
    assert conv.runs == 0 and conv.min_ms == 0 and conv.threads_why == "not profiled"
