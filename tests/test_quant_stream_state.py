"""Issue 12 (the silero VADs: their LSTM state output at 17.5 dB): a streamed recurrent state.
A VAD hands its LSTM cell state back on every 32 ms chunk; the cell state integrates over the
stream and drifts beyond what the calibration chunks reached, and int8 clips it. The layers that
write it run 16x8 by default (TFLite's LSTM quantisation keeps the cell state in int16), with a
margin on their int16 ranges (`stream_state`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from conftest import requires_onnx

HIDDEN = 8


def _cell() -> Any:
    """One LSTM step, X [1, 1, 6], states h0 / c0 in and Y_h / Y_c out; the forget gate's bias
    keeps f near 0.95, so the cell state integrates over the stream."""
    from test_onnx_recurrent import recurrent_model

    return _remembering(recurrent_model("LSTM", steps=1, batch=1, size=6, hidden=HIDDEN,
                                        states=True, seed=4))


def _remembering(model: Any) -> Any:
    """`model` with 3 added to its forget gate's bias (f near 0.95: the state integrates)."""
    for init in model.graph.initializer:
        if init.name == "B":  # ONNX gate order i, o, f, c: the input bias of f
            from onnx import numpy_helper

            b = numpy_helper.to_array(init).copy()
            b[0, 2 * HIDDEN:3 * HIDDEN] += 3.0
            init.CopyFrom(numpy_helper.from_array(b, "B"))
    return model


def _stream(model: Any, steps: int, seed: int) -> list[dict[str, np.ndarray]]:
    """The chunks of one stream, each with the state the float model carried into it."""
    from onnx_testing import run_onnx

    rng = np.random.default_rng(seed)
    h = np.zeros((1, 1, HIDDEN), np.float32)
    c = np.zeros((1, 1, HIDDEN), np.float32)
    out = []
    for _ in range(steps):
        feeds = {"X": rng.normal(0.5, 1.0, (1, 1, 6)).astype(np.float32), "h0": h, "c0": c}
        out.append(feeds)
        _, h, c = run_onnx(model, feeds)
    return out


def _cell_state_sqnr(model: Any, data: bytes, chunks: list[dict[str, np.ndarray]]) -> float:
    from onnx_testing import run_onnx, run_tflite

    ref = np.concatenate([run_onnx(model, f)[2].ravel() for f in chunks]).astype(np.float64)
    got = np.concatenate([run_tflite(data, f)[2].ravel() for f in chunks]).astype(np.float64)
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((ref - got) ** 2)))


@requires_onnx
def test_state_tensors_are_the_cell_state_path() -> None:
    from sdk.converters.frontends import load_model
    from sdk.converters.quantize.stream_state import state_tensors

    g = load_model(_cell()).model.main
    names = {t.name for t in state_tensors(g)}
    assert {"c0", "Y_c"} <= names, names
    assert not names & {"h0", "Y_h", "Y", "X"}, names  # h = o * tanh(c) is bounded


@requires_onnx
def test_a_residual_connection_is_not_a_state() -> None:
    """y = x + block(x) with x and y of one shape joins a model input to a model output through
    an ADD, but no gate multiplies it: no state, and an INT8 export stays int8 everywhere (it
    wrote an int16 QUANTIZE of the input that the .edge runtime refused)."""
    from sdk.converters.frontends import load_model
    from sdk.converters.quantize.stream_state import state_tensors

    from test_onnx_models import mobilenet_v3_block

    assert state_tensors(load_model(mobilenet_v3_block()).model.main) == set()


@requires_onnx
def test_streamed_cell_state_is_16x8_with_a_margin(tmp_path: Any) -> None:
    import sdk
    from sdk.converters.quantize.stream_state import REASON

    model = _cell()
    stream = _stream(model, 96, seed=0)
    cal, held_out = stream[:32], stream[64:]  # later chunks: the state has drifted further
    result = sdk.export(model, "int8", calibration=cal, output=str(tmp_path / "s.tflite"),
                        report=False)
    assert REASON in result.precision_notes.values(), result.precision_notes
    assert "int16x8" in result.precision.values(), result.precision
    ours = _cell_state_sqnr(model, (tmp_path / "s.tflite").read_bytes(), held_out)
    forced = sdk.export(model, "int8", calibration=cal, output=str(tmp_path / "i.tflite"),
                        report=False, precision={"*": "int8"})
    assert REASON not in forced.precision_notes.values()
    int8 = _cell_state_sqnr(model, (tmp_path / "i.tflite").read_bytes(), held_out)
    assert ours > int8 + 6.0 and ours > 30.0, (ours, int8)


def _sequence() -> Any:
    """An LSTM over 16 steps (a wake-word head's: Keras LSTM through tf2onnx), Y_h out."""
    from test_onnx_recurrent import recurrent_model

    return _remembering(recurrent_model("LSTM", steps=16, batch=1, size=6, hidden=HIDDEN,
                                        seed=7))


def _sequences(n: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"X": rng.normal(0.3, 1.0, (16, 1, 6)).astype(np.float32)} for _ in range(n)]


def _last_state_sqnr(model: Any, data: bytes) -> float:
    from onnx_testing import run_onnx, run_tflite

    feeds = _sequences(16, 500)
    ref = np.concatenate([run_onnx(model, f)[1].ravel() for f in feeds]).astype(np.float64)
    got = np.concatenate([run_tflite(data, f)[1].ravel() for f in feeds]).astype(np.float64)
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((ref - got) ** 2)))


@requires_onnx
def test_recurrent_cell_runs_16x8(tmp_path: Any) -> None:
    import sdk
    from sdk.converters.frontends import load_model
    from sdk.converters.quantize.stream_state import CELL_REASON, recurrent_layers

    model = _sequence()
    cells = recurrent_layers(load_model(model).model.main)
    assert len(cells) == 1, cells
    (cell,) = cells
    cal = _sequences(32, 0)
    result = sdk.export(model, "int8", calibration=cal, output=str(tmp_path / "q.tflite"),
                        report=False)
    assert result.precision[cell] == "int16x8", result.precision
    assert result.precision_notes[cell] == CELL_REASON
    ours = _last_state_sqnr(model, (tmp_path / "q.tflite").read_bytes())
    forced = sdk.export(model, "int8", calibration=cal, output=str(tmp_path / "i.tflite"),
                        report=False, precision={cell: "int8"})
    assert forced.precision[cell] == "int8"
    int8 = _last_state_sqnr(model, (tmp_path / "i.tflite").read_bytes())
    assert ours > int8 + 6.0, (ours, int8)
