"""Metrics fit the output: top-1 agreement and cosine only for class scores (not landmarks, maps
or single values), and reports say which kind each output was taken for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sdk.cli import main
from sdk.run.fidelity import (
    CLASS_SCORES,
    MAP,
    SCALAR,
    VECTOR,
    FidelityReport,
    compare_outputs,
    output_kind,
)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_output_kinds() -> None:
    rng = np.random.default_rng(0)
    n = 16
    assert output_kind(rng.random((n, 1))).kind == SCALAR                  # a [1, 1] flag
    assert output_kind(rng.random((n, 1, 1, 1))).kind == SCALAR
    assert output_kind(rng.random((n, 2016, 18))).kind == MAP              # a detection grid
    assert output_kind(rng.random((n, 64, 64, 39))).kind == MAP            # heatmaps
    assert output_kind(rng.random((n, 21, 3))).kind == MAP                 # a landmark table
    landmarks = 100 * rng.random((n, 63))
    assert output_kind(landmarks, outputs=4).kind == VECTOR                # hand landmarks
    assert output_kind(rng.random((n, 1, 1, 1404)), outputs=2).kind == VECTOR
    assert output_kind(rng.random((n, 4)), outputs=1).kind == VECTOR       # a crop box
    probs = _softmax(rng.standard_normal((n, 10)))
    assert output_kind(probs, outputs=3).kind == CLASS_SCORES              # softmax rows
    assert output_kind(probs[:, None, :]).kind == CLASS_SCORES
    logits = rng.standard_normal((n, 1000))
    assert output_kind(logits, outputs=1).kind == CLASS_SCORES             # a classifier
    assert "only output" in output_kind(logits).reason


def test_top1_and_cosine_only_for_class_scores() -> None:
    rng = np.random.default_rng(1)
    landmarks = 100 * rng.random((8, 63))
    noisy = landmarks + rng.standard_normal(landmarks.shape)
    lm = compare_outputs("Identity", landmarks, noisy, outputs=4)
    assert lm.top1_agreement is None and lm.kind == VECTOR
    grid = compare_outputs("regressors", rng.random((8, 896, 16)), rng.random((8, 896, 16)))
    assert grid.top1_agreement is None and grid.kind == MAP
    flag = compare_outputs("flag", rng.random((8, 1)), rng.random((8, 1)), outputs=4)
    assert flag.top1_agreement is None and flag.kind == SCALAR
    probs = _softmax(rng.standard_normal((8, 10)))
    cls = compare_outputs("probs", probs, probs, outputs=4)
    assert cls.top1_agreement == 1.0 and cls.kind == CLASS_SCORES
    table = FidelityReport(8, "test", [lm, grid, flag, cls]).table()
    rows = {line.split()[0]: line.split() for line in table.splitlines()
            if line.strip().split(" ")[0] in ("Identity", "regressors", "flag", "probs")}
    assert rows["Identity"][-4] == "-" and rows["Identity"][-1] == "-"   # cosine, top-1
    assert rows["probs"][-1] == "100.00%"
    assert "Identity: vector (63 values per sample, one of 4 outputs" in table
    assert "probs: class scores (10 probabilities per sample): SQNR, |err|, cosine, top-1" in table


def _two_head_model(path: Path) -> Path:
    """A hand-landmark-like model: one trunk, a [1, 63] landmark head and a [1, 1] flag."""
    from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
    from sdk.converters.tflite.writer import write_tflite

    rng = np.random.default_rng(2)
    g = Graph(name="main")
    x = g.add_tensor(Tensor("input", (1, 32), DType.FLOAT32))

    def dense(name: str, src: Tensor, k: int, n: int, act: str) -> Tensor:
        w = g.add_tensor(Tensor(f"{name}/weights", (n, k), DType.FLOAT32,
                                data=(rng.standard_normal((n, k)) / np.sqrt(k))
                                .astype(np.float32)))
        b = g.add_tensor(Tensor(f"{name}/bias", (n,), DType.FLOAT32,
                                data=rng.random(n).astype(np.float32)))
        out = g.add_tensor(Tensor(name, (1, n), DType.FLOAT32))
        g.operators.append(Operator("FULLY_CONNECTED", [src, w, b], [out],
                                    attrs={"fused_activation_function": act}))
        return out

    trunk = dense("trunk", x, 32, 64, "RELU")
    g.inputs, g.outputs = [x], [dense("landmarks", trunk, 64, 63, "RELU"),
                                dense("flag", trunk, 64, 1, "NONE")]
    write_tflite(Model(graphs=[g]), path)
    return path


def test_export_report_says_which_metrics(tmp_path, capsys) -> None:
    model = _two_head_model(tmp_path / "hand.tflite")
    out = tmp_path / "hand_int8.tflite"
    assert main(["export", str(model), "-c", "synthetic", "-o", str(out), "--max-samples",
                 "200", "--no-per-layer", "-q", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    outputs = {o["name"]: o for o in report["fidelity"]["outputs"]}
    assert outputs["landmarks"]["kind"] == VECTOR and outputs["flag"]["kind"] == SCALAR
    assert outputs["landmarks"]["top1_agreement"] is None
    assert outputs["flag"]["top1_agreement"] is None
    assert report["fidelity"]["outputs"][0]["kind_reason"]
    assert main(["export", str(model), "-c", "synthetic", "-o", str(out), "--max-samples",
                 "200", "--no-per-layer", "-q"]) == 0
    text = capsys.readouterr().out
    assert "landmarks: vector (63 values per sample, one of 2 outputs" in text
    assert "flag: scalar (one value per sample): SQNR, |err|" in text


@pytest.mark.parametrize("outputs", [1, 3])
def test_validation_top1_only_for_class_scores(outputs: int) -> None:
    from sdk.devices.results import compare_output

    rng = np.random.default_rng(3)
    host = (100 * rng.random((8, 63))).astype(np.float32)
    device = host + rng.standard_normal(host.shape).astype(np.float32)
    out = compare_output("landmarks", device, host, outputs=outputs)
    # a single 63-value output reads as logits; next to other outputs, as landmarks
    assert (out.top1_agreement is None) == (outputs > 1)
    assert out.kind == (CLASS_SCORES if outputs == 1 else VECTOR)


def test_batched_and_per_pixel_class_scores() -> None:
    rng = np.random.default_rng(4)
    batch = rng.standard_normal((8, 2, 10))                     # a model run on 2 images
    kind = output_kind(batch, outputs=1)
    assert kind.kind == CLASS_SCORES and kind.row == 10 and "in 2 rows" in kind.reason
    assert output_kind(batch, outputs=2).kind == MAP
    seg = _softmax(rng.standard_normal((4, 32, 32, 3)))         # per-pixel class probabilities
    assert output_kind(seg, outputs=1).kind == CLASS_SCORES
    heat = rng.standard_normal((4, 64, 64, 39))                 # heatmaps: too many rows
    assert output_kind(heat, outputs=1).kind == MAP
    out = compare_outputs("y", batch, batch.copy())
    assert out.top1_agreement == 1.0


def test_infinite_or_nan_error_is_the_worst_sqnr() -> None:
    """A quantised output holding -inf (int8 LOG of a value that rounded to 0) or NaN scores
    -inf dB: sqnr_db raised 'math domain error' on it, and a NaN figure would pass every
    threshold check."""
    ref = np.array([[1.0, 2.0, 3.0]], np.float32)
    for bad in (-np.inf, np.nan):
        out = compare_outputs("y", ref, np.array([[1.0, bad, 3.0]], np.float32))
        assert out.sqnr_db == -np.inf
