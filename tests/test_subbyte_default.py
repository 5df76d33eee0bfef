"""The sub-byte default weight method (issue 15, `method_default`): with real calibration data
`sdk.export(model, "int4" | "ternary" | "int2")` rounds by weight_method="auto", says so in its
notes; the INT8 export, synthetic calibration, target_sqnr= and QAT keep their old
default."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from test_subbyte_auto import mixed_inputs, outputs_per_sample

from sdk.converters.quantize import method_default
from sdk.converters.quantize.method_default import (
    AUTO_MAX_WEIGHTS,
    DEFAULT_SUBBYTE_METHOD,
    LARGE_MODEL_METHOD,
    SUBBYTE_SCHEMES,
    default_weight_method,
    float_weights,
)


def _export(model: object, scheme: str, cal: object, val: object, path: Path,
            **kw: object) -> object:
    import sdk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sdk.export(model, scheme, calibration=cal, validation=val, output=path,
                          report=False, per_layer=False, **kw)


def test_subbyte_default_with_calibration_is_auto(tmp_path: Path) -> None:
    """No weight_method, real samples, ternary: the export is weight_method="auto"'s, byte for
    byte (round to nearest before), its notes say which method ran and why, its time is in
    timings["auto"]; and on 400 inputs no export saw it beats round to nearest."""
    from sdk.converters.tflite import serialize

    model = _relu_stack()
    rng = np.random.default_rng(103)
    cal, val, test = mixed_inputs(rng, 32), mixed_inputs(rng, 16), mixed_inputs(rng, 400)
    default = _export(model, "ternary", cal, val, tmp_path / "default.tflite")
    auto = _export(model, "ternary", cal, val, tmp_path / "auto.tflite", weight_method="auto")
    rtn = _export(model, "ternary", cal, val, tmp_path / "rtn.tflite", weight_method="rtn")
    assert default.path.read_bytes() == auto.path.read_bytes()
    assert "auto" in default.timings
    line = next(n for n in default.notes if n.startswith("weight_method not given"))
    assert "auto" in line and "calibration data" in line and "rtn" in line, line
    assert any("whole-model check" in n for n in default.notes)
    ref = outputs_per_sample(serialize(model)[0], test)

    def sqnr(r: object) -> float:
        out = outputs_per_sample(r.path.read_bytes(), test)  # type: ignore[attr-defined]
        return float(10 * np.log10((ref ** 2).sum() / ((ref - out) ** 2).sum()))

    assert sqnr(default) > sqnr(rtn), (sqnr(default), sqnr(rtn))


def test_int8_and_synthetic_keep_their_default(tmp_path: Path) -> None:
    """The INT8 export is not touched (no note, no solver); synthetic calibration data keeps
    round to nearest for a sub-byte scheme and says why."""
    model = _relu_stack()
    rng = np.random.default_rng(5)
    cal, val = mixed_inputs(rng, 32), mixed_inputs(rng, 16)
    int8 = _export(model, "int8", cal, val, tmp_path / "int8.tflite")
    assert not any(n.startswith("weight_method not given") for n in int8.notes)
    assert not {"auto", "gptq", "adaround"} & set(int8.timings)
    synthetic = _export(model, "int4", "synthetic", None, tmp_path / "s.tflite")
    line = next(n for n in synthetic.notes if n.startswith("weight_method not given"))
    assert "synthetic" in line and "round to nearest" in line, line
    assert "auto" not in synthetic.timings


def test_default_weight_method_rules() -> None:
    for scheme in SUBBYTE_SCHEMES:
        assert default_weight_method(scheme, synthetic=False).method == DEFAULT_SUBBYTE_METHOD
        assert default_weight_method(scheme, synthetic=True).method is None
        assert default_weight_method(scheme, synthetic=False, target_sqnr=20.0).method is None
        assert default_weight_method(scheme, synthetic=False, qat=True).method is None
        big = default_weight_method(scheme, synthetic=False, weights=AUTO_MAX_WEIGHTS + 1)
        assert big.method == LARGE_MODEL_METHOD != DEFAULT_SUBBYTE_METHOD
        assert "weight_method='auto'" in big.note(), big.note()
        assert default_weight_method(scheme, synthetic=False,
                                     weights=AUTO_MAX_WEIGHTS).method == DEFAULT_SUBBYTE_METHOD
    for scheme in ("int8", "int16x8", "mixed"):
        assert default_weight_method(scheme, synthetic=False).method is None
        assert default_weight_method(scheme, synthetic=False, weights=10**9).method is None


def test_large_model_default_is_gptq(tmp_path: Path, monkeypatch: object) -> None:
    """Over the weight bound the sub-byte default is GPTQ's export byte for byte, and the note
    says why and how to run auto anyway (the bound lowered to this net's 12,938 weights)."""
    model = _relu_stack()
    n = float_weights(model)
    assert n == 3 * 64 * 64 + 3 * 64 + 10 * 64 + 10, n
    monkeypatch.setattr(method_default, "AUTO_MAX_WEIGHTS", n - 1)  # type: ignore[attr-defined]
    rng = np.random.default_rng(7)
    cal, val = mixed_inputs(rng, 32), mixed_inputs(rng, 16)
    default = _export(model, "int4", cal, val, tmp_path / "default.tflite")
    gptq = _export(model, "int4", cal, val, tmp_path / "gptq.tflite", weight_method="gptq")
    assert default.path.read_bytes() == gptq.path.read_bytes()
    assert "auto" not in default.timings
    line = next(n for n in default.notes if n.startswith("weight_method not given"))
    assert "gptq" in line and f"{n:,} weights" in line and "weight_method='auto'" in line, line


def _relu_stack(seed: int = 4) -> object:
    """x [1, 64] -> 3 x FC 64 + RELU -> FC 10: ops the .edge writer takes."""
    from sdk.converters.ir import DType, Graph, Model, Operator, Tensor

    rng = np.random.default_rng(seed)
    g = Graph(name="main")
    x = g.add_tensor(Tensor("x", (1, 64), DType.FLOAT32))
    t = x
    for i, width in enumerate((64, 64, 64, 10)):
        out = g.add_tensor(Tensor(f"t{i}", (1, width), DType.FLOAT32))
        w = g.constant(f"w{i}", (rng.standard_normal((width, 64)) / 8).astype(np.float32))
        b = g.constant(f"b{i}", (rng.standard_normal(width) / 10).astype(np.float32))
        g.operators.append(Operator("FULLY_CONNECTED", [t, w, b], [out], name=f"fc{i}", attrs={
            "fused_activation_function": "RELU" if width == 64 else "NONE"}))
        t = out
    g.inputs, g.outputs = [x], [t]
    return Model([g])


def test_edge_and_tflite_defaults_keep_the_same_candidate(tmp_path: Path) -> None:
    """The whole-model check scores an .edge export's candidates as their .tflite (the same
    quantised model): both formats run the check (the .edge export skipped it before) and keep
    the same candidate on the same figures, so the two files hold the same codes."""
    model = _relu_stack()
    rng = np.random.default_rng(11)
    cal, val = mixed_inputs(rng, 32), mixed_inputs(rng, 16)
    tfl = _export(model, "ternary", cal, val, tmp_path / "m.tflite")
    edge = _export(model, "ternary", cal, val, tmp_path / "m.edge")
    lines = [next(n for n in r.notes if "whole-model check" in n) for r in (tfl, edge)]
    assert lines[0] == lines[1], lines
    assert tfl.precision == edge.precision
