"""The corpus benchmarks' measurement protocol (`benchmarks/corpus/protocol.py`): 32 held-out
samples for every model whatever the calibration count, for `corpus.py` and `precision.py`
alike, and the held-out samples never reach `sdk.export` in `precision.py` (its planner would
check `target_sqnr=` on the samples it is then scored on). No model file is read: the sample
maker and the export are replaced, so this runs without `make corpus`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import precision  # noqa: E402
from corpus import inputs, measure  # noqa: E402
from corpus.inputs import InputDesc  # noqa: E402
from corpus.manifest import load_manifest  # noqa: E402
from corpus.protocol import CALIBRATION_SEED, HELDOUT, HELDOUT_SEED  # noqa: E402

MODEL = next(m for m in load_manifest() if m.name == "oww_alexa")


class _Stop(Exception):
    """Ends run_model once its samples are drawn."""


def _drawn(monkeypatch: pytest.MonkeyPatch, module: Any, stop_after: int | None
           ) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []

    def make_samples(model: Any, path: Path, n: int, seed: int, ctx: Any) -> list[Any]:
        calls.append((n, seed))
        if stop_after is not None and len(calls) == stop_after:
            raise _Stop
        return [{"x": np.zeros((1, 4), np.float32)} for _ in range(n)]

    monkeypatch.setattr(module, "make_samples", make_samples)
    monkeypatch.setattr(module, "model_inputs",
                        lambda model, path: [InputDesc("x", (1, 4), np.dtype(np.float32))])
    return calls


def test_the_protocol_holds_out_as_many_samples_as_it_calibrates_on():
    assert HELDOUT == 32
    assert (CALIBRATION_SEED, HELDOUT_SEED) == (1, 2)  # the seeds of every earlier table


@pytest.mark.parametrize("samples", [16, 32, 64])
def test_corpus_run_holds_out_32_samples_whatever_the_calibration_count(
        monkeypatch, tmp_path, samples):
    # before: max(8, samples // 4), i.e. 8, 8 and 16 held-out samples here
    calls = _drawn(monkeypatch, inputs, stop_after=2)
    with pytest.raises(_Stop):
        measure.run_model(MODEL, samples, peers=False, cache=tmp_path)
    assert calls == [(samples, CALIBRATION_SEED), (HELDOUT, HELDOUT_SEED)]


def test_corpus_run_can_reproduce_the_old_eight_held_out_samples(monkeypatch, tmp_path):
    calls = _drawn(monkeypatch, inputs, stop_after=2)
    with pytest.raises(_Stop):
        measure.run_model(MODEL, 32, peers=False, cache=tmp_path, heldout=8)
    assert calls[1] == (8, HELDOUT_SEED)


def test_precision_never_passes_the_held_out_samples_to_the_export(monkeypatch, tmp_path):
    import sdk

    calls = _drawn(monkeypatch, inputs, stop_after=None)
    monkeypatch.setattr(measure, "float_reference",
                        lambda model, path, order, val: measure.Reference([], [], "not run"))
    monkeypatch.setattr(precision, "cache_dir", lambda: tmp_path)
    seen: list[dict[str, Any]] = []

    def export(path: str, scheme: str, **kwargs: Any) -> None:
        seen.append(kwargs)
        raise RuntimeError("not exported in this test")

    monkeypatch.setattr(sdk, "export", export)
    row = precision.measure(MODEL.name, 32, 30.0)
    assert calls == [(32, CALIBRATION_SEED), (HELDOUT, HELDOUT_SEED)]
    assert row["heldout"] == HELDOUT
    assert len(seen) == 2  # the 16x8 export and the one with the target
    for kwargs in seen:
        assert "validation" not in kwargs  # the export checks on its own calibration split
        assert len(kwargs["calibration"]["x"]) == 32
    assert seen[1]["target_sqnr"] == 30.0


def test_every_corpus_int8_export_is_measure_ours_with_its_options(monkeypatch, tmp_path):
    """measure.ours is the one corpus export call (export_bytes.py and head_bias_reuse.py make
    theirs through it): the recipe's input shapes and constant inputs, the constant inputs left
    out of the samples, the held-out samples as validation, and any further sdk.export keyword."""
    import sdk

    model = next(m for m in load_manifest() if m.name == "silero_vad_v6")
    seen: list[dict[str, Any]] = []

    def export(path: str, scheme: str, **kwargs: Any) -> str:
        seen.append(kwargs)
        Path(kwargs["output"]).write_bytes(b"int8 file")
        return "result"

    monkeypatch.setattr(sdk, "export", export)
    descs = [InputDesc("input", (1, 512), np.dtype(np.float32)),
             InputDesc("sr", (), np.dtype(np.int64))]
    cal = [{"input": np.zeros((1, 512), np.float32), "sr": np.int64(16000)}] * 3
    val = cal[:2]
    data, result, _ = measure.ours(model, Path("m.onnx"), descs, cal, val, tmp_path,
                                   target_sqnr=30.0)
    assert (data, result) == (b"int8 file", "result")
    (kwargs,) = seen
    assert kwargs["target_sqnr"] == 30.0
    assert kwargs["constant_inputs"] == {"sr": 16000}
    assert list(kwargs["calibration"]) == ["input"] and len(kwargs["calibration"]["input"]) == 3
    assert len(kwargs["validation"]["input"]) == 2
    assert kwargs["input_shapes"] == (dict(model.input_shapes) or None)


def test_the_corpus_litert_runner_takes_delegates() -> None:
    """measure.LiteRTRunner runs a file with the edgesdk delegate (subbyte_fidelity.py's runs of
    files with custom ops) the same as without it where the file has none."""
    from sdk.base.errors import EdgeSDKError
    from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
    from sdk.converters.tflite.writer import to_tflite_bytes
    from sdk.run.delegate import load_delegate

    try:
        delegate = load_delegate()
    except EdgeSDKError as exc:
        pytest.skip(f"the edgesdk delegate is not built on this host: {exc}")
    g = Graph(name="main")
    x, y = (g.add_tensor(Tensor(n, (1, 4), DType.FLOAT32)) for n in ("x", "y"))
    g.operators = [Operator("ADD", [x, g.constant("one", np.ones((1, 4), np.float32))], [y],
                            {"fused_activation_function": "NONE"}, name="add")]
    g.inputs, g.outputs = [x], [y]
    data = to_tflite_bytes(Model([g]))
    sample = {"x": np.arange(4, dtype=np.float32).reshape(1, 4)}
    plain = measure.LiteRTRunner(data, ["x"])(sample)
    delegated = measure.LiteRTRunner(data, ["x"], [delegate])(sample)
    assert np.array_equal(plain[0], sample["x"] + 1) and np.array_equal(delegated[0], plain[0])
