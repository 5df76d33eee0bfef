"""Issue 12, audio front ends: TFLite's 16x8 scheme (int16 activations, int8 weights, int64
biases), whole-model and per layer inside an INT8 model, and the precision planner trying it
before float. Every file is run in LiteRT and compared with the float model."""

from __future__ import annotations

import numpy as np
import pytest
from test_int8_ops import CASES, X, _data, build

import sdk
from sdk.cli import main
from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
from sdk.converters.quantize.int16x8 import INT16_KERNELS, INT16_REFUSED
from sdk.converters.quantize.plan import INT16X8, parse_precision
from sdk.converters.tflite import read_tflite, to_tflite_bytes
from sdk.run.runner import LiteRTRunner

FRAMES, BINS, MELS = 8, 32, 12
EPS = 4.0
#: the default INT8 keeps a LOG's front end in float (int8.keep_log_front_ends); these tests
#: compare 16x8 with the front end in int8, so they ask for int8 by name
INT8_FRONT_END = {name: "int8" for name in ("stft", "power", "mel", "floor")}


def _front_end() -> Model:
    """An audio front end as converters write it: frames -> FULLY_CONNECTED "stft" (a real DFT
    basis) -> MUL (power: x * x) -> FULLY_CONNECTED "mel" (triangular filters) -> ADD EPS ->
    LOG (float: no int8 kernel). Power spectra span decades: one int8 scale keeps the loud bins
    and rounds the quiet ones to the floor, which the log makes visible."""
    rng = np.random.default_rng(0)
    n = np.arange(BINS)
    k = np.arange(BINS // 2)[:, None]
    basis = np.concatenate([np.cos(2 * np.pi * k * n / BINS), np.sin(2 * np.pi * k * n / BINS)])
    mel = np.maximum(0.0, 1 - np.abs(np.linspace(0, BINS - 1, MELS)[:, None] - n[None, :]) / 3)
    g = Graph(name="main")
    x = g.add_tensor(Tensor("frames", (FRAMES, BINS), DType.FLOAT32))
    spec = g.add_tensor(Tensor("spec", (FRAMES, BINS), DType.FLOAT32))
    power = g.add_tensor(Tensor("power", (FRAMES, BINS), DType.FLOAT32))
    mels = g.add_tensor(Tensor("mels", (FRAMES, MELS), DType.FLOAT32))
    floor = g.add_tensor(Tensor("floored", (FRAMES, MELS), DType.FLOAT32))
    out = g.add_tensor(Tensor("log_mels", (FRAMES, MELS), DType.FLOAT32))
    fc = {"fused_activation_function": "NONE", "weights_format": "DEFAULT",
          "keep_num_dims": False, "asymmetric_quantize_inputs": False}
    add = {"fused_activation_function": "NONE"}
    g.operators = [
        Operator("FULLY_CONNECTED", [x, g.constant("dft", basis.astype(np.float32)),
                                     g.constant("dft_bias", rng.normal(0, 1e-3, BINS)
                                                .astype(np.float32))], [spec], dict(fc),
                 name="stft"),
        Operator("MUL", [spec, spec], [power], dict(add), name="power"),
        Operator("FULLY_CONNECTED", [power, g.constant("mel_w", mel.astype(np.float32)),
                                     g.constant("mel_b", np.zeros(MELS, np.float32))],
                 [mels], dict(fc), name="mel"),
        Operator("ADD", [mels, g.constant("eps", np.full((1, MELS), EPS, np.float32))],
                 [floor], dict(add), name="floor"),
        Operator("LOG", [floor], [out], name="log", format_extras={"tflite_options_type": None}),
    ]
    g.inputs, g.outputs = [x], [out]
    return Model(graphs=[g])


def _audio(n: int, seed: int) -> np.ndarray:
    """Frames of tones whose loudness spans 40 dB, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(BINS)
    amp = 10.0 ** rng.uniform(-2, 0, (n, FRAMES, 1, 3))
    freq = rng.integers(1, BINS // 2, (n, FRAMES, 1, 3))
    phase = rng.uniform(0, 2 * np.pi, (n, FRAMES, 1, 3))
    tones = (amp * np.sin(2 * np.pi * freq * t[None, None, :, None] / BINS + phase)).sum(-1)
    return (tones + rng.normal(0, 1e-4, tones.shape)).astype(np.float32)


def _sqnr(want: np.ndarray, got: np.ndarray) -> float:
    noise = float(np.mean((want.astype(np.float64) - got) ** 2))
    return 10 * np.log10(float(np.mean(want.astype(np.float64) ** 2)) / max(noise, 1e-30))


def _run_sqnr(model: Model, path, data: np.ndarray) -> float:
    """SQNR of the exported file against the float model, both run in LiteRT here."""
    want_run = LiteRTRunner(to_tflite_bytes(model), reference=True)
    got_run = LiteRTRunner(path.read_bytes(), reference=True)
    want = np.concatenate([want_run.invoke([d])[0] for d in data])
    got = np.concatenate([got_run.invoke([d])[0] for d in data])
    return _sqnr(want, got)


@pytest.fixture(scope="module")
def cal() -> np.ndarray:
    return _audio(48, 1)


@pytest.fixture(scope="module")
def val() -> np.ndarray:
    return _audio(16, 2)


def test_precision_names() -> None:
    for name in ("int16x8", "16x8", "int16"):
        assert parse_precision(name) == INT16X8
    assert INT16X8.describe() == "int16x8" and INT16X8.is_int16 and not INT16X8.is_float
    assert "int16x8" in sdk.converters.quantize.SCHEMES


def test_whole_model_16x8_is_tflite_16x8_and_faithful(cal, val, tmp_path) -> None:
    model = _front_end()
    int8 = sdk.export(model, "int8", calibration=cal, validation=val,
                      output=tmp_path / "a.tflite", precision=INT8_FRONT_END)
    res = sdk.export(model, "int16x8", calibration=cal, validation=val,
                     output=tmp_path / "b.tflite")
    assert res.precision.pop("log") == "float32"  # LOG has no integer kernel
    assert set(res.precision.values()) == {"int16x8"}
    q = read_tflite(res.path)
    for op in q.main.operators:
        if op.type in ("QUANTIZE", "DEQUANTIZE", "LOG"):
            continue
        acts = [t for t in (*op.inputs, *op.outputs) if t is not None and not t.is_constant]
        for t in acts:  # int16 activations, symmetric: zero point 0, one scale
            assert t.dtype is DType.INT16, (op.type, t.name, t.dtype)
            assert t.quant.zero_point.tolist() == [0] and t.quant.scale.size == 1
    for name in ("stft", "mel"):
        fc = [op for op in q.main.operators if op.type == "FULLY_CONNECTED"
              and (op.name == name or name in op.outputs[0].name)] or \
            [op for op in q.main.operators if op.type == "FULLY_CONNECTED"]
        w, b = fc[0].inputs[1], fc[0].inputs[2]
        assert w.dtype is DType.INT8 and not w.quant.zero_point.any()
        assert w.quant.scale.size == w.shape[0]  # per output channel
        assert int(np.abs(w.numpy()).max()) <= 127  # narrow range [-127, 127]
        assert b.dtype is DType.INT64
        x_scale = float(fc[0].inputs[0].quant.scale[0])
        np.testing.assert_allclose(b.quant.scale, x_scale * w.quant.scale, rtol=1e-5)
    (add,) = [op for op in q.main.operators if op.type == "ADD"]
    assert add.attrs.get("pot_scale_int16") is False  # general int16 scales
    # LiteRT runs it (builtin kernels) and it is far closer to float than INT8
    db16 = _run_sqnr(model, res.path, val)
    db8 = _run_sqnr(model, int8.path, val)
    assert db16 >= 40 and db16 >= db8 + 15, (db16, db8)
    assert res.fidelity.min_sqnr_db == pytest.approx(db16, abs=1.0)


def test_one_layer_16x8_inside_int8_has_requantising_quantize_at_both_ends(cal, val,
                                                                           tmp_path) -> None:
    model = _front_end()
    res = sdk.export(model, "int8", calibration=cal, validation=val,
                     output=tmp_path / "m.tflite",
                     precision={**INT8_FRONT_END, "power": "int16x8"})
    assert res.precision["power"] == "int16x8"
    assert res.precision["stft"] == res.precision["mel"] == "int8"
    q = read_tflite(res.path)
    producers = q.main.producers()
    (mul,) = [op for op in q.main.operators if op.type == "MUL"]
    assert mul.outputs[0].dtype is DType.INT16
    for x in mul.inputs:  # int8 stft output -> int16
        assert x.dtype is DType.INT16
        quant = producers[x]
        assert quant.type == "QUANTIZE" and quant.inputs[0].dtype is DType.INT8
    (mel,) = [op for op in q.main.operators if op.type == "FULLY_CONNECTED"
              and op.inputs[0] is not mul.outputs[0] and producers.get(op.inputs[0]) is not None
              and producers[op.inputs[0]].type == "QUANTIZE"
              and producers[op.inputs[0]].inputs[0] is mul.outputs[0]]
    assert mel.inputs[0].dtype is DType.INT8  # int16 power -> int8 for the int8 mel layer
    assert mel.inputs[2].dtype is DType.INT32
    quantizes = [(op.inputs[0].dtype, op.outputs[0].dtype) for op in q.main.operators
                 if op.type == "QUANTIZE"]
    assert (DType.INT8, DType.INT16) in quantizes and (DType.INT16, DType.INT8) in quantizes
    db = _run_sqnr(model, res.path, val)  # LiteRT runs the requantising QUANTIZE ops
    assert np.isfinite(db) and db == pytest.approx(res.fidelity.min_sqnr_db, abs=1.0)


def test_op_without_int16_kernel_gets_what_the_table_says(tmp_path) -> None:
    g = Graph(name="main")
    x = g.add_tensor(Tensor("x", X, DType.FLOAT32))
    h = g.add_tensor(Tensor("h", X, DType.FLOAT32))
    y = g.add_tensor(Tensor("y", X, DType.FLOAT32))
    idx = g.add_tensor(Tensor("idx", X[:3], DType.INT32))
    g.operators = [
        Operator("HARD_SWISH", [x], [h], name="hs", format_extras={"tflite_options_type": None}),
        Operator("RELU", [h], [y], name="relu", format_extras={"tflite_options_type": None}),
        Operator("ARG_MAX", [y, g.constant("axis", np.array([3], np.int32))], [idx],
                 {"output_type": "INT32"}, name="argmax"),
    ]
    g.inputs, g.outputs = [x], [y, idx]
    model = Model(graphs=[g])
    data = _data(X, 32, 0, 3.0, False)
    res = sdk.export(model, "int16x8", calibration=data, validation=data,
                     output=tmp_path / "m.tflite")
    assert res.precision == {"hs": "float32", "relu": "int16x8", "argmax": "int8"}
    assert "HARD_SWISH" in res.fallbacks["hs"] and "int16" in res.fallbacks["hs"]
    assert res.fidelity.outputs[0].sqnr_db > 60


_WEIGHTED = {"BATCH_MATMUL"}
#: int16 kernels that evaluate a lookup table: max error about 0.5% of the output's span
_LOOKUP = {"RSQRT"}


@pytest.mark.parametrize("op_type", sorted((set(INT16_KERNELS) | set(INT16_REFUSED))
                                           & set(CASES)))
def test_each_op_of_the_table_runs_as_it_says(op_type: str, tmp_path) -> None:
    """The table is what LiteRT does: ops listed as int16 run in int16 and match float to
    int16 rounding; refused ones get the fallback the table names and still run."""
    make, opts = CASES[op_type]
    shape = opts.get("shape", X)
    model = build(op_type, make, shape, second=opts.get("second", False))
    n_in = len(model.main.inputs)
    data = [_data(shape, 48, seed, opts.get("scale", 1.0), opts.get("positive", False))
            for seed in range(n_in)]
    calibration = data[0] if n_in == 1 else {k: d for k, d in zip("xy", data, strict=False)}
    res = sdk.export(model, "int16x8", calibration=calibration, validation=calibration,
                     output=tmp_path / "m.tflite", per_layer=False)
    (precision,) = res.precision.values()
    expected = "int16x8" if op_type in INT16_KERNELS else INT16_REFUSED[op_type][0]
    assert precision == expected, res.fallbacks
    q = read_tflite(res.path)
    (qop,) = [op for op in q.main.operators if op.type == op_type]
    if expected == "int16x8":
        assert all(t.dtype is DType.INT16 for t in (*qop.inputs, *qop.outputs)
                   if t is not None and not t.is_constant and t.dtype is not DType.INT32)
    float_run = LiteRTRunner(to_tflite_bytes(model), reference=True)
    run = LiteRTRunner(res.path.read_bytes(), reference=True)
    tol = 0.02 if op_type in _WEIGHTED or expected == "int8" else \
        0.01 if op_type in _LOOKUP else 0.003
    for i in range(0, 48, 12):
        feeds = [d[i:i + 1] if shape[0] == 1 else d[i] for d in data]
        for w, got, t in zip(float_run.invoke(feeds), run.invoke(feeds), q.main.outputs,
                             strict=True):
            if t.dtype is DType.INT32:  # ARG_MAX / ARG_MIN indices
                assert (w == got).mean() >= 0.9
                continue
            span = float(np.abs(w).max()) or 1.0
            assert float(np.abs(w - got).max()) <= tol * span, (op_type, tol)


#: the planner weighing bytes alone: by default it weighs latency too, and on these tiny graphs
#: LiteRT's int16 reference kernels cost more than float (tests/test_planner_cost.py)
BYTES_ONLY = {"target_cost": "bytes"}


def test_planner_tries_16x8_before_float(cal, val, tmp_path) -> None:
    model = _front_end()
    plain = sdk.export(model, "int8", calibration=cal, validation=val,
                       output=tmp_path / "p.tflite", precision=INT8_FRONT_END)
    assert plain.fidelity.min_sqnr_db < 30
    res = sdk.export(model, "int8", calibration=cal, validation=val,
                     output=tmp_path / "t.tflite", target_sqnr=30, precision=INT8_FRONT_END,
                     **BYTES_ONLY)
    planner = res.planner
    assert planner.met and res.fidelity.min_sqnr_db >= 30 and planner.cost == "bytes"
    assert planner.candidates[:2] == ["int16x8", "float32"]
    kept = {k.name: k.precision for k in planner.kept}
    assert kept and set(kept.values()) == {"int16x8"}, kept  # no float needed here
    assert all(res.precision[n] == "int16x8" for n in kept)
    # 16x8 costs next to nothing in the file (int64 biases, boundary QUANTIZE ops)
    assert planner.size_after - planner.size_before < 0.25 * plain.size_bytes
    text = "\n".join(planner.lines())
    assert "kept wider (" in text and "int16x8" in text
    assert _run_sqnr(model, res.path, val) >= 30


def test_cli_exports_int16x8(cal, tmp_path, capsys) -> None:
    src = tmp_path / "fe.tflite"
    src.write_bytes(to_tflite_bytes(_front_end()))
    npy = tmp_path / "cal.npy"
    np.save(npy, cal)
    out = tmp_path / "fe_16x8.tflite"
    rc = main(["export", str(src), "int16x8", "-c", str(npy), "-o", str(out), "-q"])
    assert rc == 0, capsys.readouterr()
    q = read_tflite(out)
    assert any(t.dtype is DType.INT16 for op in q.main.operators for t in op.outputs)
    # one layer 16x8 inside INT8
    one = tmp_path / "fe_one.tflite"
    rc = main(["export", str(src), "-c", str(npy), "-o", str(one), "-q", "--int16-layer",
               "MUL:*"])  # .tflite has no op names: the report names it by op and output
    assert rc == 0, capsys.readouterr()
    q = read_tflite(one)
    assert [op.outputs[0].dtype for op in q.main.operators if op.type == "MUL"] == [DType.INT16]
    # the rest of the LOG's front end: float by default (int8.keep_log_front_ends)
    assert [op.outputs[0].dtype for op in q.main.operators
            if op.type == "FULLY_CONNECTED"] == [DType.FLOAT32, DType.FLOAT32]


def test_planner_goes_float_where_16x8_keeps_the_loss(tmp_path) -> None:
    """A layer whose int8 weights lose the signal (one large weight per row sets the scale, the
    small ones round to 0): 16x8 keeps those weights, so the planner tries it and then keeps the
    layer in float."""
    g = Graph(name="main")
    x = g.add_tensor(Tensor("x", (1, 4), DType.FLOAT32))
    y = g.add_tensor(Tensor("y", (1, 2), DType.FLOAT32))
    w = np.array([[1000, 1, 1, 1], [1, 1, 1, 1]], np.float32)
    g.operators = [Operator("FULLY_CONNECTED", [x, g.constant("w", w),
                                                g.constant("b", np.zeros(2, np.float32))], [y],
                            {"fused_activation_function": "NONE", "weights_format": "DEFAULT",
                             "keep_num_dims": False, "asymmetric_quantize_inputs": False},
                            name="fc")]
    g.inputs, g.outputs = [x], [y]
    rng = np.random.default_rng(0)
    data = rng.standard_normal((64, 4)).astype(np.float32)
    data[:, 0] *= 1e-3  # the large weight's input is small: the small weights carry the signal
    res = sdk.export(Model(graphs=[g]), "int8", calibration=data, validation=data[:16],
                     output=tmp_path / "m.tflite", target_sqnr=30, **BYTES_ONLY)
    planner = res.planner
    assert planner.before_db["y"] < 10 and planner.met
    assert [(k.name, k.precision) for k in planner.kept] == [("fc", "float32")]
    assert res.precision["fc"] == "float32"
    # 16x8 was tried first and fell short: the step before float has the layer at 16x8
    assert planner.steps[0].layers == ["fc"] and planner.steps[0].outputs_db["y"] < 10
    assert planner.after_db["y"] >= 30
    # the report says why float: the layer was at 16x8 and the output still short
    assert planner.kept[0].reason == "at 16x8 since step 1 and the outputs still short"
    assert "at 16x8 since step 1" in "\n".join(planner.lines())
