"""`benchmarks/corpus.py float`: the float import of corpus models against the publisher's own
runtime (onnxruntime for ONNX, LiteRT for .tflite), before any quantisation. Runs on the two
smallest files of each format when the corpus cache exists (`make corpus`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from corpus.manifest import cache_dir, load_manifest  # noqa: E402

BY_NAME = {m.name: m for m in load_manifest()}


@pytest.mark.parametrize("name, floor_db", [("oww_timer", 100.0), ("oww_silero_vad_v4", 100.0),
                                            ("mp_hand_recrop", 200.0)])
def test_float_import_matches_the_publisher_runtime(name: str, floor_db: float) -> None:
    from corpus.float_check import check

    model = BY_NAME[name]
    if not model.path().is_file():
        pytest.skip(f"{name} not in {cache_dir()}: run `make corpus`")
    result = check(model, samples=2)
    assert result.error is None, result.error
    assert result.worst_sqnr_db is not None and result.worst_sqnr_db >= floor_db, result.line()


def test_a_file_the_runtime_cannot_load_is_reported_not_raised() -> None:
    from corpus.float_check import check

    model = BY_NAME["mp_face_landmark_with_attention"]
    if not model.path().is_file():
        pytest.skip(f"not in {cache_dir()}: run `make corpus`")
    result = check(model, samples=1)
    assert result.error is not None and "Landmarks2TransformMatrix" in result.error
    assert "\n" not in result.line()
