"""The OCR read-outs of the corpus (benchmarks/corpus/tasks.py): CTC strings from class scores.

ddddocr's recogniser outputs class scores [T, 1, 8210] (ddddocr takes their arg-max itself);
read as label indices they decode to noise and no string ever matched (0%, issue 12).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from corpus import tasks
from corpus.manifest import load_manifest


def _scores(labels: list[int], classes: int, layout: str) -> np.ndarray:
    s = np.full((len(labels), classes), -1.0, np.float32)
    s[np.arange(len(labels)), labels] = 5.0
    return s[:, None, :] if layout == "t1c" else s[None]   # [T, 1, C] or [1, T, C]


@pytest.mark.parametrize("layout", ["t1c", "1tc"])
def test_ctc_reads_class_scores_in_either_layout(layout):
    ref = _scores([0, 7, 7, 0, 7, 8209, 0], 8210, layout)
    same = ref + np.float32(0.5)                       # shifted scores: same arg-max
    flipped = ref.copy()
    flipped.reshape(-1, 8210)[5, 3] = 9.0              # one step's arg-max flips
    value = tasks.agreement({"type": "ctc"}, None, [[ref], [ref]], [[same], [flipped]])
    assert value == ("string_match", 0.5)


def test_ctc_indices_refuses_class_scores():
    scores = _scores([0, 3, 3], 10, "t1c") + np.float32(0.25)
    with pytest.raises(ValueError, match="class scores, not label indices; use task type 'ctc'"):
        tasks.agreement({"type": "ctc_indices"}, None, [[scores]], [[scores]])
    ids = np.array([[0, 3, 3, 0, 4]], np.int64)
    assert tasks.agreement({"type": "ctc_indices"}, None, [[ids]], [[ids]]) == \
        ("string_match", 1.0)


def test_ocr_recognisers_read_their_outputs_as_class_scores():
    """Every CTC recogniser in the corpus publishes class scores (none ships an ArgMax)."""
    rec = {m.name: m for m in load_manifest() if m.kind.startswith("ocr-rec")}
    assert {"ppocr_v4_rec", "ddddocr_rec"} <= set(rec)
    assert {m.task["type"] for m in rec.values()} == {"ctc"}
