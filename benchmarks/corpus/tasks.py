"""Task-level agreement between a float model's outputs and a quantised model's.

Each function takes, per evaluation sample, the float outputs and the quantised outputs (lists
of arrays in the float model's output order) and returns a fraction in [0, 1] (1 = the task
result is the same), or None when the task has no reading here.
- top1: the same arg-max class;
- ssd: MediaPipe-style SSD heads (regressors + logits per anchor, anchors from the strides):
  boxes decoded, scores > 0.5, NMS 0.3; F1 of boxes matched at IoU >= 0.5;
- yolov8: [1, 4 + classes, anchors] (cx, cy, w, h in pixels + class scores), score > 0.25,
  NMS 0.45; F1 of (class, IoU >= 0.5) matches;
- yolox: raw YOLOX head [1, anchors, 5 + classes] decoded on its grid; same F1;
- ctc / ctc_indices: the CTC-decoded label sequence (arg-max over the last axis of class
  scores for ctc, e.g. [1, T, C] or [T, 1, C]; label indices as they are for ctc_indices; merge
  repeats, drop blank 0) is identical (the decoded string, without needing the character list);
- mask: IoU of output > threshold (segmentation, OCR text maps, note activations);
- landmarks: mean absolute coordinate error in input pixels (not a fraction: lower is better);
- fired: the detector (wake word, VAD) fires (output > threshold) in both or in neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Outputs = Sequence[np.ndarray]


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a [N, 4] with b [M, 4], xyxy."""
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=-1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=-1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, thr: float,
        keep_max: int = 100) -> np.ndarray:
    order = np.argsort(-scores)
    keep: list[int] = []
    while order.size and len(keep) < keep_max:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        ious = _iou(boxes[i:i + 1], boxes[rest])[0]
        order = rest[(ious < thr) | (classes[rest] != classes[i])]
    return np.asarray(keep, dtype=np.int64)


def match_f1(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """F1 of detections b against a: (boxes xyxy, classes); greedy at IoU >= 0.5."""
    (ba, ca), (bb, cb) = a, b
    if len(ba) == 0 and len(bb) == 0:
        return 1.0
    if len(ba) == 0 or len(bb) == 0:
        return 0.0
    ious = _iou(ba, bb) * (ca[:, None] == cb[None, :])
    used: set[int] = set()
    hits = 0
    for i in range(len(ba)):
        for j in np.argsort(-ious[i]):
            if ious[i, j] < 0.5:
                break
            if int(j) not in used:
                used.add(int(j))
                hits += 1
                break
    return 2 * hits / (len(ba) + len(bb))


def ssd_anchors(strides: Sequence[int], size: tuple[int, int], count: int) -> np.ndarray:
    """MediaPipe SsdAnchorsCalculator centres (x, y), normalised; strides repeated in a row
    share a grid (one anchor per layer per cell, two for the interpolated scale)."""
    h, w = size
    groups: list[tuple[int, int]] = []
    for s in strides:
        if groups and groups[-1][0] == s:
            groups[-1] = (s, groups[-1][1] + 1)
        else:
            groups.append((s, 1))
    cells = sum((-(-h // s)) * (-(-w // s)) * n for s, n in groups)
    per = max(1, count // cells) if cells else 1    # 2 with interpolated scale, else 1
    centres = []
    for s, n in groups:
        fh, fw = -(-h // s), -(-w // s)
        ys, xs = np.meshgrid((np.arange(fh) + 0.5) / fh, (np.arange(fw) + 0.5) / fw,
                             indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=-1)
        centres.append(np.repeat(grid, n * per, axis=0))
    anchors = np.concatenate(centres)
    if anchors.shape[0] != count:
        raise ValueError(f"SSD anchors from strides {list(strides)} give {anchors.shape[0]} "
                         f"anchors, the model has {count}")
    return anchors


def ssd_detections(outs: Outputs, size: tuple[int, int], strides: Sequence[int]
                   ) -> tuple[np.ndarray, np.ndarray]:
    reg_out = max(outs, key=lambda o: o.shape[-1])
    reg = reg_out.reshape(-1, reg_out.shape[-1])
    logits = min(outs, key=lambda o: o.shape[-1]).reshape(-1)
    anchors = ssd_anchors(strides, size, reg.shape[0])
    h, w = size
    cx = reg[:, 0] / w + anchors[:, 0]
    cy = reg[:, 1] / h + anchors[:, 1]
    bw, bh = reg[:, 2] / w, reg[:, 3] / h
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=-1)
    scores = 1 / (1 + np.exp(-np.clip(logits, -100, 100)))
    sel = scores > 0.5
    boxes, scores = boxes[sel], scores[sel]
    classes = np.zeros(len(boxes), np.int64)
    keep = nms(boxes, scores, classes, 0.3)
    return boxes[keep], classes[keep]


def yolov8_detections(out: np.ndarray, thr: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    p = out.reshape(out.shape[-2], out.shape[-1]).T          # [anchors, 4 + classes]
    scores = p[:, 4:].max(axis=1)
    classes = p[:, 4:].argmax(axis=1)
    sel = scores > thr
    b = p[sel, :4]
    boxes = np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2,
                      b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], axis=-1)
    keep = nms(boxes, scores[sel], classes[sel], 0.45)
    return boxes[keep], classes[sel][keep]


def yolox_detections(out: np.ndarray, size: tuple[int, int], strides: Sequence[int],
                     thr: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    p = out.reshape(-1, out.shape[-1]).astype(np.float64)
    grids, expanded = [], []
    for s in strides:
        fh, fw = size[0] // s, size[1] // s
        ys, xs = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        grids.append(np.stack([xs.ravel(), ys.ravel()], axis=-1))
        expanded.append(np.full((fh * fw, 1), s))
    grid, stride = np.concatenate(grids), np.concatenate(expanded)
    xy = (p[:, :2] + grid) * stride
    wh = np.exp(np.clip(p[:, 2:4], -20, 20)) * stride
    scores_all = p[:, 4:5] * p[:, 5:]
    scores, classes = scores_all.max(axis=1), scores_all.argmax(axis=1)
    sel = scores > thr
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=-1)[sel]
    keep = nms(boxes, scores[sel], classes[sel], 0.45)
    return boxes[keep], classes[sel][keep]


def ctc_decode(seq: np.ndarray) -> tuple[int, ...]:
    out: list[int] = []
    prev = -1
    for v in seq.tolist():
        if v != prev and v != 0:
            out.append(int(v))
        prev = v
    return tuple(out)


def agreement(task: dict[str, Any], input_hw: tuple[int, int] | None,
              ref: list[Outputs], got: list[Outputs]) -> tuple[str, float] | None:
    """(metric name, value) over all evaluation samples, or None."""
    kind = task["type"]
    if kind == "none":
        return None
    k = int(task.get("output", 0))
    if kind == "top1":
        same = [int(np.argmax(r[k])) == int(np.argmax(g[k])) for r, g in zip(ref, got,
                                                                              strict=True)]
        return "top1", float(np.mean(same))
    if kind == "fired":
        thr = float(task.get("threshold", 0.5))
        same = [bool((r[k] > thr).any()) == bool((g[k] > thr).any())
                for r, g in zip(ref, got, strict=True)]
        return "fired_agree", float(np.mean(same))
    if kind == "mask":
        thr = float(task.get("threshold", 0.5))
        inter = sum(float(((r[k] > thr) & (g[k] > thr)).sum()) for r, g in zip(ref, got,
                                                                               strict=True))
        union = sum(float(((r[k] > thr) | (g[k] > thr)).sum()) for r, g in zip(ref, got,
                                                                              strict=True))
        return "mask_iou", 1.0 if union == 0 else inter / union
    if kind == "landmarks":
        err = [float(np.abs(r[k].astype(np.float64) - g[k]).mean()) for r, g in zip(ref, got,
                                                                                    strict=True)]
        return "landmark_px", float(np.mean(err))
    if kind in ("ctc", "ctc_indices"):
        def seq(o: np.ndarray) -> tuple[int, ...]:
            o = np.asarray(o)
            if kind == "ctc":   # logits / probabilities: [..., T, classes] -> arg-max per step
                return ctc_decode(o.reshape(-1, o.shape[-1]).argmax(1))
            # label indices: whole numbers; logits read as indices decode to noise
            if o.size and not np.array_equal(o, np.rint(o)):
                raise ValueError(f"task 'ctc_indices': output {k} holds non-integer values "
                                 f"(shape {list(o.shape)}): class scores, not label indices; "
                                 "use task type 'ctc'")
            return ctc_decode(np.rint(o.reshape(-1)).astype(np.int64))
        same = [seq(r[k]) == seq(g[k]) for r, g in zip(ref, got, strict=True)]
        return "string_match", float(np.mean(same))
    if kind in ("ssd", "yolov8", "yolox"):
        assert input_hw is not None
        f1 = []
        for r, g in zip(ref, got, strict=True):
            if kind == "ssd":
                dr = ssd_detections(r, input_hw, task["strides"])
                dg = ssd_detections(g, input_hw, task["strides"])
            elif kind == "yolov8":
                dr, dg = yolov8_detections(r[k]), yolov8_detections(g[k])
            else:
                dr = yolox_detections(r[k], input_hw, task["strides"])
                dg = yolox_detections(g[k], input_hw, task["strides"])
            f1.append(match_f1(dr, dg))
        return "det_f1", float(np.mean(f1))
    raise ValueError(f"unknown task type {kind!r}")
