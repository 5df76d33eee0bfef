"""Sub-byte rounding fidelity (issue 15): the per-layer choice of the rounding method on held-out
calibration samples (weight_method="auto", `method_choice`) and the solver's objective centred
for the analytic bias correction."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from test_subbyte_gptq import rtn_scales

from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
from sdk.converters.quantize.gptq import LayerHessian, WeightSolver, output_error, weight_key
from sdk.converters.quantize.method_choice import (
    CANDIDATES,
    LayerChoice,
    describe,
    held_out_choice,
)

K = 64


def _fc_stack(seed: int) -> Model:
    """x [1, 64] -> FC 64 (ReLU) -> FC 64 (ReLU) -> FC 10: the ternary scheme keeps the first
    and last INT8 and makes the middle one ternary."""
    rng = np.random.default_rng(seed)
    g = Graph(name="main")
    ts = [g.add_tensor(Tensor(n, (1, d), DType.FLOAT32))
          for n, d in (("x", K), ("h1", K), ("h2", K), ("y", 10))]
    for i, (name, n, act) in enumerate((("fc1", K, "RELU"), ("fc2", K, "RELU"),
                                        ("fc3", 10, "NONE"))):
        w = g.constant(f"{name}_w", (rng.standard_normal((n, K)) / 8).astype(np.float32))
        b = g.constant(f"{name}_b", (0.1 * rng.standard_normal(n)).astype(np.float32))
        g.operators.append(Operator("FULLY_CONNECTED", [ts[i], w, b], [ts[i + 1]], name=name,
                                    attrs={"fused_activation_function": act}))
    g.inputs, g.outputs = [ts[0]], [ts[-1]]
    return Model([g])


def mixed_inputs(rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` correlated inputs of K values (also test_method_check's)."""
    mix = np.random.default_rng(7).normal(size=(K, K)) * 0.4 + np.eye(K)
    return (rng.normal(size=(n, K)) @ mix).astype(np.float32)


def outputs_per_sample(data: bytes, x: np.ndarray) -> np.ndarray:
    """The model `data`'s output for each row of `x`, run one sample at a time."""
    from sdk.run.runner import LiteRTRunner

    run = LiteRTRunner(data)
    return np.concatenate([run.invoke([x[i:i + 1]])[0] for i in range(len(x))])


def test_auto_export_takes_the_better_rounding_per_layer(tmp_path: Path) -> None:
    """weight_method="auto" on a small built model: every layer's choice is reported, and on
    inputs no export saw the result is at least as good as the better of GPTQ and AdaRound
    (measured, ternary: rtn 10.29, gptq 12.68, adaround 12.73, auto 12.96 dB)."""
    import sdk
    from sdk.converters.tflite import serialize

    model = _fc_stack(0)
    rng = np.random.default_rng(100)
    cal, val, test = mixed_inputs(rng, 200), mixed_inputs(rng, 16), mixed_inputs(rng, 300)
    ref = outputs_per_sample(serialize(model)[0], test)
    sqnr, notes = {}, {}
    for method in ("rtn", "gptq", "adaround", "auto"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = sdk.export(model, "ternary", calibration=cal, validation=val,
                           weight_method=method, output=tmp_path / f"{method}.tflite",
                           report=False, per_layer=False)
        out = outputs_per_sample(r.path.read_bytes(), test)
        sqnr[method] = 10 * np.log10((ref ** 2).sum() / ((ref - out) ** 2).sum())
        notes[method] = r.notes
    assert sqnr["auto"] >= max(sqnr["gptq"], sqnr["adaround"]) - 0.2, sqnr
    assert sqnr["auto"] > sqnr["rtn"] + 1.0, sqnr
    check = next(n for n in notes["auto"] if "whole-model check" in n)
    if "kept the per-layer choice" in check:
        line = next(n for n in notes["auto"] if n.startswith("weight_method=auto: per layer"))
        for layer in ("fc1", "fc2", "fc3"):
            assert f"{layer}: " in line, line
    else:  # here the per-layer choice and plain AdaRound tie on the check (12.07-12.08 dB)
        kept = check.split("kept plain ")[1].split(" ")[0]
        assert sqnr["auto"] == sqnr[kept], (check, sqnr)
    assert "auto" in r.timings


def test_held_out_choice_prefers_what_holds_on_other_samples() -> None:
    """A candidate that fits the rows it was solved on (a noisy H) loses to one that holds on
    the other half; the report line names each layer's choice beside the runner-up."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((8, 16))
    x2 = rng.standard_normal((400, 16))
    check = 2 * x2.T @ x2 / 400
    good = np.round(w * 4) / 4
    overfit = good + 0.3 * rng.standard_normal(w.shape)   # far from w on any inputs

    def solve(deq: np.ndarray):
        return lambda: (deq, np.ones_like(deq))

    choice = held_out_choice("fc", w, {"rtn": solve(overfit), "gptq": solve(good)}, check)
    assert choice.chosen == "gptq" and set(choice.held_out) == {"rtn", "gptq"}
    assert choice.sqnr_db("gptq") > choice.sqnr_db("rtn")
    text = describe([choice, LayerChoice("conv", "adaround", {"adaround": 0.01, "gptq": 0.02})])
    assert "gptq 1, adaround 1" in text and "fc: gptq" in text and "conv: adaround 20.0 dB" in text
    assert set(CANDIDATES) >= {"rtn", "gptq", "adaround"}


def _biased_fc(w: np.ndarray) -> Operator:
    g = Graph(name="main")
    x = g.add_tensor(Tensor("x", (1, w.shape[1]), DType.FLOAT32))
    y = g.add_tensor(Tensor("y", (1, w.shape[0]), DType.FLOAT32))
    wt = g.constant("w", w)
    b = g.constant("b", np.zeros(w.shape[0], np.float32))
    return Operator("FULLY_CONNECTED", [x, wt, b], [y], name="fc")


@pytest.mark.parametrize("scheme", ["ternary", "int2"])
def test_solver_minimises_the_error_the_bias_correction_leaves(scheme: str) -> None:
    """After the analytic bias correction the output error of a weight error dW is
    dW (x - E[x]): on inputs with a large mean (after a ReLU) GPTQ solved with the centred
    Hessian leaves less of it on new inputs than solved with H = 2 E[x x^T]."""
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(K, K)) * 0.3 + np.eye(K)

    def rows(n: int) -> np.ndarray:
        return np.maximum(rng.normal(size=(n, K)) @ mix + 1.0, 0)

    w = rng.normal(size=(16, K)).astype(np.float32)
    x, test = rows(4000), rows(20000)
    h = 2 * x.T @ x / len(x)
    cov = 2 * np.cov(test.T, bias=True)
    qmin, qmax = (-1, 1) if scheme == "ternary" else (-2, 1)
    scales, _ = rtn_scales(scheme, w.astype(np.float64))
    errors = {}
    for centred in (False, True):
        solver = WeightSolver("gptq", sequential=False, centred=centred)
        solver.hessians[weight_key(w)] = LayerHessian(["fc"], "FULLY_CONNECTED", h, len(x),
                                                      [_biased_fc(w)], x.mean(0))
        solved = solver.solve(w, 0, qmin, qmax, scales=scales)
        assert solved is not None
        errors[centred] = output_error(w, solved[1] * solved[0][:, None], cov)
    assert errors[True] < errors[False], errors


@pytest.mark.parametrize("drift,centred", [(1.0, True), (3.0, False)])
def test_auto_centres_only_where_the_mean_carries_over(drift: float, centred: bool) -> None:
    """A biased layer: "auto" also solves for the centred H (the error the bias correction
    leaves) and scores every candidate on the held-out half after a correction fitted on the
    first half. Where both halves share the inputs' mean the centred fit wins; where the held-out
    mean drifts away (x3) the correction does not carry over and an uncentred fit wins.
    Measured, ternary: adaround-centred 9.42 vs adaround 9.26 dB; drifted adaround 11.76 vs
    adaround-centred 9.33."""
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(K, K)) * 0.3 + np.eye(K)
    w = rng.normal(size=(16, K)).astype(np.float32)

    def rows(n: int, shift: float) -> np.ndarray:
        return np.maximum(rng.normal(size=(n, K)) @ mix + shift, 0)

    def hess(z: np.ndarray) -> np.ndarray:
        return 2 * z.T @ z / len(z)

    a, b = rows(2000, 1.0), rows(2000, drift)
    x = np.concatenate([a, b])
    solver = WeightSolver("auto", sequential=False)
    solver.hessians[weight_key(w)] = LayerHessian(["fc"], "FULLY_CONNECTED", hess(x), len(x),
                                                  [_biased_fc(w)], x.mean(0))
    solver._float_split = lambda entry: (hess(a), hess(b), a.mean(0), b.mean(0),  # type: ignore
                                         a.mean(0), x.mean(0))
    scales, _ = rtn_scales("ternary", w.astype(np.float64))
    assert solver.solve(w, 0, -1, 1, scales=scales) is not None
    (choice,) = solver.choices
    assert len(choice.held_out) == 2 * 5
    assert choice.chosen.endswith("-centred") == centred, choice
    solver.bias_corrected = False                   # no bias correction: no centred candidates
    solver.choices = []
    assert solver.solve(w, 0, -1, 1, scales=scales) is not None
    assert not any(m.endswith("-centred") for m in solver.choices[0].held_out)
