"""Malformed .tflite input: a clear ModelFormatError naming the file, never a deep traceback."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from sdk.converters.tflite import read_tflite
from sdk.errors import EdgeSDKError, ModelFormatError

from conftest import requires_tf

pytestmark = requires_tf


@pytest.fixture(scope="module")
def good(digits_float_tflite) -> bytes:
    return digits_float_tflite.read_bytes()


def test_truncated_file(tmp_path, good) -> None:
    for cut in (3, 16, len(good) // 3, len(good) - 100):
        path = tmp_path / f"cut{cut}.tflite"
        path.write_bytes(good[:cut])
        with pytest.raises(ModelFormatError) as info:
            read_tflite(path)
        assert str(path) in str(info.value)


def test_not_a_flatbuffer(tmp_path) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(b"PK\x03\x04 this is a zip file, not a model" * 4)
    with pytest.raises(ModelFormatError, match="file identifier"):
        read_tflite(path)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ModelFormatError, match="cannot read"):
        read_tflite(tmp_path / "nope.tflite")


def test_flipped_bytes_never_crash(good) -> None:
    """Random corruption either still reads or raises our error type — nothing else."""
    rng = np.random.default_rng(7)
    for _ in range(60):
        data = bytearray(good)
        for pos in rng.integers(8, len(data), size=8):
            data[pos] ^= int(rng.integers(1, 256))
        with contextlib.suppress(EdgeSDKError):
            read_tflite(bytes(data))
