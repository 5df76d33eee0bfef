"""weight_method="auto"'s whole-model check (issue 15, `method_check`): the per-layer choice
beside the plain GPTQ and AdaRound exports, the best worst output on the calibration samples
kept."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_subbyte_auto import mixed_inputs, outputs_per_sample

from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
from sdk.converters.quantize import method_check
from sdk.converters.quantize.method_check import PER_LAYER, choose, halves, worst_output_db

K = 64


def _recurrent(seed: int = 3, steps: int = 2, gain: float = 2.0) -> Model:
    """x [1, 64] -> FC + TANH -> `steps` x (FC + TANH sharing one weight: an unrolled
    recurrence, `gain` times an orthogonal matrix) -> FC 10. The ternary scheme keeps the first
    and last INT8; the recurrent weight is shared by every step (GPTQ in the per-layer choice),
    so what the per-layer objective sees is one step, not what the steps make of its error."""
    rng = np.random.default_rng(seed)
    g = Graph(name="main")
    ts = [g.add_tensor(Tensor(f"t{i}", (1, K), DType.FLOAT32)) for i in range(steps + 2)]
    y = g.add_tensor(Tensor("y", (1, 10), DType.FLOAT32))

    def fc_tanh(name: str, x: Tensor, w: Tensor, out: Tensor) -> None:
        pre = g.add_tensor(Tensor(f"{name}_pre", (1, K), DType.FLOAT32))
        b = g.constant(f"{name}_b", np.zeros(K, np.float32))
        g.operators += [Operator("FULLY_CONNECTED", [x, w, b], [pre], name=name,
                                 attrs={"fused_activation_function": "NONE"}),
                        Operator("TANH", [pre], [out], name=f"{name}_tanh")]

    w_in = g.constant("w_in", (rng.standard_normal((K, K)) / 8).astype(np.float32))
    fc_tanh("fc_in", ts[0], w_in, ts[1])
    q, _ = np.linalg.qr(rng.standard_normal((K, K)))
    w_rec = g.constant("w_rec", (gain * q).astype(np.float32))
    for i in range(steps):
        fc_tanh(f"fc_rec{i}", ts[i + 1], w_rec, ts[i + 2])
    w_out = g.constant("w_out", (rng.standard_normal((10, K)) / 8).astype(np.float32))
    b_out = g.constant("b_out", np.zeros(10, np.float32))
    g.operators.append(Operator("FULLY_CONNECTED", [ts[-1], w_out, b_out], [y], name="fc_out",
                                attrs={"fused_activation_function": "NONE"}))
    g.inputs, g.outputs = [ts[0]], [y]
    return Model([g])


def _sqnr(data: bytes, ref: np.ndarray, x: np.ndarray) -> float:
    out = outputs_per_sample(data, x)
    return float(10 * np.log10((ref ** 2).sum() / ((ref - out) ** 2).sum()))


def _export(model: Model, method: str, cal: np.ndarray, val: np.ndarray, path: Path,
            scheme: str = "ternary") -> object:
    import sdk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sdk.export(model, scheme, calibration=cal, validation=val,
                          weight_method=method, output=path, report=False, per_layer=False)


def test_auto_is_not_worse_than_the_plain_methods_on_new_inputs(tmp_path: Path) -> None:
    """An unrolled recurrence where the per-layer choice (each layer's winner on held-out
    samples) is worse than plain AdaRound on 400 inputs no export saw (measured, 2-bit, 32
    calibration samples: gptq 2.30 dB, adaround 3.31): auto compares the candidates at the
    model's output on half the samples, keeps AdaRound, and says so. (At ternary the check
    leaves AdaRound out, `test_ternary_check_leaves_plain_adaround_out`: here auto 1.21 dB,
    gptq 1.77, adaround 2.57, the cost of that rule on this built model.)"""
    from sdk.converters.tflite import serialize

    model = _recurrent()
    rng = np.random.default_rng(103)
    cal, val, test = mixed_inputs(rng, 32), mixed_inputs(rng, 16), mixed_inputs(rng, 400)
    ref = outputs_per_sample(serialize(model)[0], test)
    files = {m: _export(model, m, cal, val, tmp_path / f"{m}.tflite", "int2").path.read_bytes()
             for m in ("gptq", "adaround")}
    r = _export(model, "auto", cal, val, tmp_path / "auto.tflite", "int2")
    sqnr = {m: _sqnr(data, ref, test) for m, data in files.items()}
    sqnr["auto"] = _sqnr(r.path.read_bytes(), ref, test)
    assert sqnr["auto"] >= max(sqnr["gptq"], sqnr["adaround"]) - 0.5, sqnr
    line = next(n for n in r.notes if "whole-model check" in n)
    assert "over the 32 scored" in line and "gptq" in line and "adaround" in line, line
    assert "kept plain adaround" in line, line
    assert "auto" in r.timings


def test_ternary_check_leaves_plain_adaround_out(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """At ternary the whole-model check builds the per-layer choice and plain GPTQ only (on the
    corpus the AdaRound it kept scored under the file kept without it on 4 of 5 pairs, equal on
    the fifth; `method_check.check_candidates`); INT4 and 2-bit keep all three. The old code
    built and kept plain AdaRound on this recurrence at ternary."""
    assert method_check.check_candidates("ternary") == (PER_LAYER, "gptq")
    for scheme in ("int4", "int2"):
        assert method_check.check_candidates(scheme) == (PER_LAYER, *method_check.PLAIN)
    import sdk.exporter as exporter

    built: list[str] = []
    real = exporter.choose_method

    def spy(build: Callable[[str, int], object], *args: object, **kwargs: object) -> object:
        def counted(name: str, fold: int) -> object:
            built.append(name)
            return build(name, fold)

        return real(counted, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(exporter, "choose_method", spy)
    r, _ = _counted_auto_export(tmp_path, monkeypatch, "evaluate", lambda a, k: None,
                                "ternary")
    assert built == [PER_LAYER, PER_LAYER, "gptq", "gptq"], built
    line = next(n for n in r.notes if "whole-model check" in n)  # type: ignore[attr-defined]
    assert "adaround" not in line and "gptq" in line, line


def _energies(db: float, signal: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """One output's (noise, signal) energies at `db`."""
    return np.array([signal * 10 ** (-db / 10)]), np.array([signal])


def test_choose_names_the_best_scored_candidate_per_layer_first() -> None:
    """Every candidate is built once per fold, the per-layer one first, each scored once; the
    best pooled figure named, ties to the earlier candidate."""
    built: list[tuple[str, int]] = []
    figures = {PER_LAYER: 12.0, "gptq": 15.0, "adaround": 15.0}

    def build(method: str, fold: int) -> str:
        built.append((method, fold))
        return method

    check = choose(build, lambda b, fold: _energies(figures[b]), 24)
    assert built == [(m, f) for m in (PER_LAYER, *method_check.PLAIN) for f in (0, 1)]
    assert check.chosen == "gptq" and check.samples == 24
    assert check.worst_db == pytest.approx(figures)
    assert "kept plain gptq" in check.describe() and "over the 24 scored" in check.describe()
    assert "2 folds" in check.describe()
    figures[PER_LAYER] = 15.0
    assert choose(build, lambda b, fold: _energies(figures[b]), 24).chosen == PER_LAYER
    one = choose(build, lambda b, fold: _energies(figures[b]), 12, folds=1)
    assert "measured on the other 12" in one.describe()


def test_choose_pools_both_folds() -> None:
    """A candidate far ahead on one fold and far behind on the other loses to one that holds
    on both (oww_alexa INT4 on its first calibration draw, the two folds: per-layer 9.31 /
    19.35 dB, GPTQ 24.92 / 13.59, AdaRound 19.68 / 18.67; here with equal signal energies):
    the single fold of the old check kept GPTQ."""
    per_fold = {PER_LAYER: (9.31, 19.35), "gptq": (24.92, 13.59), "adaround": (19.68, 18.67)}
    check = choose(lambda m, fold: m, lambda b, fold: _energies(per_fold[b][fold]), 64)
    assert check.chosen == "adaround", check
    assert check.per_fold["gptq"] == pytest.approx(per_fold["gptq"])
    # pooled: the noise of both folds over the signal of both (equal signals: the mean noise)
    pooled = 10 * np.log10(2 / (10 ** -2.492 + 10 ** -1.359))
    assert check.worst_db["gptq"] == pytest.approx(pooled)
    assert "gptq 16.29 dB (24.92 / 13.59)" in check.describe()


def test_fold_halves_swap_the_halves() -> None:
    (fit_a, check_a), (fit_b, check_b) = method_check.fold_halves(7)
    assert fit_a.tolist() == check_b.tolist() == [0, 2, 4, 6]
    assert check_a.tolist() == fit_b.tolist() == [1, 3, 5]


def test_halves_alternate() -> None:
    fit, check = halves(7)
    assert fit.tolist() == [0, 2, 4, 6] and check.tolist() == [1, 3, 5]


def test_worst_output_db_is_the_worst_output() -> None:
    ref = [np.ones((4, 3)), np.full((4, 2), 2.0)]
    got = [ref[0] + 0.1, ref[1] + 0.01]
    assert worst_output_db(ref, got) == pytest.approx(20.0)
    assert worst_output_db(ref, [ref[0], ref[1]]) == float("inf")


def _counted_auto_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                         record: Callable[[tuple[object, ...], dict[str, object]], object],
                         scheme: str, **options: object) -> tuple[object, list[object]]:
    """The recurrence exported with weight_method="auto" (32 calibration samples, 16 to
    validate) while sdk.exporter's `name` is wrapped: each call's `record(args, kwargs)`."""
    import sdk
    import sdk.exporter as exporter

    calls: list[object] = []
    real = getattr(exporter, name)

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(record(args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(exporter, name, counted)
    rng = np.random.default_rng(103)
    cal, val = mixed_inputs(rng, 32), mixed_inputs(rng, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = sdk.export(_recurrent(), scheme, calibration=cal, validation=val,
                       weight_method="auto", output=tmp_path / "auto.tflite", report=False,
                       **options)
    assert any("whole-model check" in n for n in r.notes), r.notes
    return r, calls


def test_empirical_bias_correction_runs_on_the_kept_build_only(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    """auto with bias_correction="empirical" corrects the one build it keeps, not its check's
    six candidates: each correction runs both models once per weighted layer (silero_vad INT4:
    about 12 CPU s), and a candidate corrected on all the calibration samples would be scored
    on samples its correction saw. The old code corrected all seven builds."""
    _, calls = _counted_auto_export(tmp_path, monkeypatch, "empirical_bias_correction",
                                    lambda args, kwargs: len(args[2]),  # type: ignore[arg-type]
                                    "int4", bias_correction="empirical", per_layer=False)
    assert calls == [32], calls  # once, on every calibration sample


def test_the_check_candidates_are_not_validated(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """auto's six check candidates are scored by the check on their held-out halves; the
    export's fidelity report (with per_layer, the default: every layer on every validation
    sample) is measured on the kept build only. The old code validated all seven builds."""
    r, calls = _counted_auto_export(tmp_path, monkeypatch, "evaluate",
                                    lambda args, kwargs: bool(kwargs.get("per_layer")),
                                    "ternary")
    assert calls == [True], calls  # the kept build's report, layer by layer
    assert r.fidelity is not None  # type: ignore[attr-defined]
