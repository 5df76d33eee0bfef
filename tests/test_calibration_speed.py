"""Calibration speed and memory (issue 12): the statistics are reduced from views of each run's
tensors, the runs are planned within the memory budget, and the ranges are what a plain
computation over every value gives.

No timing asserts: these count interpreter runs, samples per run and copies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sdk.base.errors import CalibrationError
from sdk.base.limits import ENV_VAR
from sdk.converters.frontends import load_model
from sdk.converters.quantize import as_samples, calibrate
from sdk.converters.quantize.calibrate import _sole_consumer_types, activation_tensors
from sdk.converters.quantize.ranges import TensorStats, estimate_range
from sdk.converters.quantize.streaming import Reducer
from sdk.converters.quantize.sweep import PEAK_FACTOR, FloatSweep, constant_indices
from sdk.converters.tflite import serialize
from sdk.exporter import input_specs
from sdk.run.litert import backend
from sdk.run.runner import LiteRTRunner

pytest.importorskip("onnx")
from onnx import helper

from onnx_testing import make_model, random


def _net() -> Any:
    """Conv -> Relu -> Conv -> Sigmoid, and a Softmax head: channel means (weighted layers'
    inputs), a LOGISTIC input (transfer), SOFTMAX rows."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c2"], ["s"]),
        helper.make_node("Softmax", ["c2"], ["p"], axis=-1),
    ]
    return make_model(nodes, {"x": [1, 3, 12, 12]}, ["s", "p"],
                      {"w1": random((8, 3, 3, 3), seed=1, scale=0.4),
                       "w2": random((4, 8, 3, 3), seed=2, scale=0.4)})


def _model(dynamic_batch: bool = False) -> Any:
    model = load_model(_net().SerializeToString()).model
    if dynamic_batch:  # as a .tflite with a [-1, ...] signature: LiteRTRunner batches samples
        x = model.main.inputs[0]
        x.shape_signature = (-1, *x.shape[1:])
    return model


def _samples(model: Any, n: int, seed: int = 3) -> Any:
    x = random((n, 1, 3, 12, 12), seed=seed, scale=2.0)
    x[0, 0, 0] = 0.0  # exact zeros in the input
    return as_samples(x, input_specs(model))


def _reference(model: Any, samples: Any) -> dict[Any, TensorStats]:
    """Every value of every float activation, kept: one interpreter run per sample, the plain
    TensorStats definitions over the concatenation of all samples."""
    data, maps = serialize(model)
    index = maps[0]
    interp = backend().interpreter(model_content=data, xnnpack=False, preserve_all_tensors=True)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    values: dict[Any, list[np.ndarray]] = {}
    tensors = [t for t in activation_tensors(model) if t in index]
    for k in range(len(samples)):
        interp.set_tensor(inp, samples.arrays[0][k:k + 1].astype(np.float32))
        interp.invoke()
        for t in tensors:
            values.setdefault(t, []).append(interp.get_tensor(index[t]))
    out = {}
    for t, parts in values.items():
        s = TensorStats()
        s.observe(np.concatenate([p.reshape(-1, p.shape[-1]) for p in parts]), channels=True)
        s.start_histogram()
        s.histogram(np.concatenate([p.reshape(-1) for p in parts]))
        out[t] = s
    return out


@pytest.mark.parametrize("method", ["minmax", "percentile", "mse"])
def test_ranges_are_the_plain_computation_over_every_value(method: str) -> None:
    model = _model()
    samples = _samples(model, 12)
    cal = calibrate(model, samples, method, workers=2)
    ref = _reference(model, samples)
    plain = {k for k, v in _sole_consumer_types(model).items() if v[0] in ("RELU", "SOFTMAX",
                                                                            "LOGISTIC")}
    assert set(cal.ranges) == set(ref)
    compared = 0
    for t, r in ref.items():
        s = cal.stats[t]
        assert (s.min, s.max, s.count, s.zeros) == (r.min, r.max, r.count, r.zeros), t.name
        if method != "minmax":
            assert s.hist is not None and np.array_equal(s.hist, r.hist), t.name
        if t in cal.means:
            np.testing.assert_allclose(cal.means[t], r.mean_per_channel(), rtol=1e-6,
                                       atol=1e-7)
        if id(t) not in plain and t not in model.main.inputs and t not in model.main.outputs:
            assert cal.ranges[t] == estimate_range(r, method), t.name
            compared += 1
    assert compared >= 1
    # one run per sample and pass: no batching check, no copies of the tensors
    assert cal.invocations == len(samples) * (1 if method == "minmax" else 2)


def test_tensors_are_read_without_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    copies = []
    original = LiteRTRunner.tensor
    monkeypatch.setattr(LiteRTRunner, "tensor",
                        lambda self, i: copies.append(i) or original(self, i))
    model = _model()
    cal = calibrate(model, _samples(model, 4), "mse")
    assert cal.ranges
    assert copies == []


def _batches_fed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    fed: list[int] = []
    original = LiteRTRunner.invoke

    def invoke(self: LiteRTRunner, feeds: Any, **kw: Any) -> Any:
        fed.append(int(feeds[0].shape[0]))
        return original(self, feeds, **kw)

    monkeypatch.setattr(LiteRTRunner, "invoke", invoke)
    return fed


def test_batches_stay_within_the_memory_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model(dynamic_batch=True)
    samples = _samples(model, 40)
    unbounded = calibrate(model, samples, "minmax")
    data, maps = serialize(model)
    probe = FloatSweep(data, samples, constants=constant_indices(maps[0]), workers=1)
    probe.run(lambda read, count: None)
    assert probe.plan is not None and probe.plan.batch == 32  # LiteRTRunner's batch
    per_sample = probe.plan.bytes_per_sample
    monkeypatch.setenv(ENV_VAR, str(per_sample * PEAK_FACTOR * 3 + per_sample))
    fed = _batches_fed(monkeypatch)
    cal = calibrate(model, samples, "minmax", workers=1)
    # the batching check (a pair, two singles), then at most 3 samples a run
    assert fed[:3] == [2, 1, 1]
    assert max(fed[3:]) == 3 and sum(fed[3:]) == len(samples)
    assert cal.invocations == len(fed) == 3 + 14
    assert "3 sample(s) per invoke" in cal.sweep
    # the same samples, fed 3 at a time: the same ranges (batching gives what single runs give)
    for t, r in unbounded.ranges.items():
        np.testing.assert_allclose(cal.ranges[t], r, rtol=1e-5, atol=1e-6)


def test_two_interpreters_only_where_the_budget_holds_both(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    model = _model()
    samples = _samples(model, 6)
    cal = calibrate(model, samples, "minmax", workers=2)
    assert "2 interpreter(s)" in cal.sweep
    data, maps = serialize(model)
    probe = FloatSweep(data, samples, constants=constant_indices(maps[0]), workers=1)
    probe.run(lambda read, count: None)
    assert probe.plan is not None
    monkeypatch.setenv(ENV_VAR, str(probe.plan.bytes_per_sample * PEAK_FACTOR * 3 // 2))
    cal = calibrate(model, samples, "minmax", workers=2)
    assert "1 interpreter(s)" in cal.sweep
    assert cal.invocations == len(samples)


def test_a_sample_over_the_budget_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    model = _model()
    monkeypatch.setenv(ENV_VAR, "1K")
    with pytest.raises(CalibrationError, match=f"over the memory budget of 1,024 bytes.*{ENV_VAR}"
                       ) as info:
        calibrate(model, _samples(model, 4), "mse")
    assert "largest:" in str(info.value) and "MiB" in str(info.value)


def test_streaming_statistics_equal_the_plain_definitions() -> None:
    rng = np.random.default_rng(0)
    reducer = Reducer(chunk=1000)  # several chunks per tensor
    for trial in range(200):
        shape = tuple(int(d) for d in rng.integers(1, 40, size=int(rng.integers(1, 4))))
        parts = []
        for _ in range(3):
            x = (rng.standard_normal(shape) * rng.choice([1e-3, 1.0, 50.0])).astype(np.float32)
            if rng.random() < 0.5:
                x = np.maximum(x, 0)
            if rng.random() < 0.2:
                x[...] = 0
            if rng.random() < 0.1:
                x.reshape(-1)[0] = np.nan
            if rng.random() < 0.1:
                x.reshape(-1)[-1] = np.inf
            parts.append(x)
        plain, fast = TensorStats(), TensorStats()
        finite = all(np.isfinite(x).all() for x in parts)
        all_finite = True
        for x in parts:
            plain.observe(x, channels=finite, rows=finite)
            all_finite &= reducer.observe(fast, x, channels=finite, rows=finite)
        assert all_finite == finite
        assert (plain.min, plain.max, plain.count, plain.zeros, plain.min_row_max,
                plain.row_length) == (fast.min, fast.max, fast.count, fast.zeros,
                                      fast.min_row_max, fast.row_length), trial
        if plain.channel_sum is not None:
            assert np.array_equal(plain.channel_sum, fast.channel_sum)
        if not plain.seen:
            continue
        plain.start_histogram()
        fast.start_histogram()
        for x in parts:
            plain.histogram(x)
            reducer.histogram(fast, x, finite=all_finite)
        assert np.array_equal(plain.hist, fast.hist), trial


def test_every_run_that_keeps_all_tensors_batches_within_the_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only calibration: the per-layer fidelity check and bias correction feed batches
    through LiteRTRunner with every tensor kept; its batching check cuts them."""
    model = _model(dynamic_batch=True)
    samples = _samples(model, 40)
    data, _ = serialize(model)
    probe = LiteRTRunner(data, reference=True, preserve_all_tensors=True)
    probe.check_batching(samples)
    assert probe.batch_size == 32
    one = probe.tensor_bytes()
    probe.invoke([samples.arrays[0][:2]])
    per_sample = probe.tensor_bytes() - one
    monkeypatch.setenv(ENV_VAR, str(per_sample * PEAK_FACTOR * 5 + per_sample))
    fed = _batches_fed(monkeypatch)
    runner = LiteRTRunner(data, reference=True, preserve_all_tensors=True)
    assert sum(count for count, _ in runner.run(samples)) == len(samples)
    assert fed[:3] == [2, 1, 1] and max(fed[3:]) == 5 and sum(fed[3:]) == len(samples)


def test_xnnpack_calibration_reads_graph_outputs_and_stays_close() -> None:
    """kernels="xnnpack": every activation a graph output, no tensor kept by the builtin
    kernels; its values (and so the ranges) may differ from the builtin kernels' in the last
    digits only."""
    model = _model()
    samples = _samples(model, 12)
    outputs = list(model.main.outputs)
    builtin = calibrate(model, samples, "mse")
    fast = calibrate(model, samples, "mse", kernels="xnnpack")
    assert model.main.outputs == outputs  # the caller's model is left as it was
    assert set(fast.ranges) == set(builtin.ranges)
    assert fast.invocations == builtin.invocations == 2 * len(samples)
    for t, (lo, hi) in builtin.ranges.items():
        s, r = fast.stats[t], builtin.stats[t]
        assert s.count == r.count and s.zeros == r.zeros, t.name
        np.testing.assert_allclose([s.min, s.max], [r.min, r.max], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(fast.ranges[t], (lo, hi), rtol=0.05, atol=1e-6)
    with pytest.raises(CalibrationError, match="unknown calibration kernels"):
        calibrate(model, samples, "mse", kernels="gpu")


def test_per_layer_fidelity_measures_a_bounded_subset(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    """Outputs are compared on every held-out sample, per-layer SQNR (two more runs with every
    tensor kept) on the first PER_LAYER_SAMPLES; all of them when asked."""
    import sdk
    from sdk.converters.quantize import fidelity

    measured: list[int] = []
    original = fidelity.per_layer_sqnr

    def counted(*a: Any, **k: Any) -> Any:
        measured.append(len(a[6]))
        return original(*a, **k)

    monkeypatch.setattr(fidelity, "per_layer_sqnr", counted)
    model = _model()
    cal = random((20, 1, 3, 12, 12), seed=5, scale=2.0)
    val = random((fidelity.PER_LAYER_SAMPLES + 8, 1, 3, 12, 12), seed=6, scale=2.0)
    out = sdk.export(model, "int8", calibration=cal, validation=val, report=False,
                     output=tmp_path / "m.tflite")
    assert out.fidelity is not None and out.fidelity.samples == len(val)
    assert measured == [fidelity.PER_LAYER_SAMPLES]
    assert out.fidelity.layers
    assert f"the first {fidelity.PER_LAYER_SAMPLES} of the {len(val)}" in \
        out.fidelity.layer_kernels


def test_equalisation_reads_only_the_tensors_it_rescales(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """Equalisation's run makes its few tensors graph outputs (builtin kernels, nothing else
    kept): the same per-channel maxima as reading them from a run that keeps every tensor."""
    from sdk.converters.quantize.equalize import candidate_pairs, channel_absmax

    model = _model()
    samples = _samples(model, 5)
    tensors = [a.outputs[0] for a, _ in candidate_pairs(model)] or activation_tensors(model)[1:3]
    assert tensors
    ref = _reference(model, samples)
    kept: list[bool] = []
    original = LiteRTRunner.__init__

    def init(self: LiteRTRunner, *a: Any, **k: Any) -> None:
        kept.append(bool(k.get("preserve_all_tensors")))
        original(self, *a, **k)

    monkeypatch.setattr(LiteRTRunner, "__init__", init)
    outputs = list(model.main.outputs)
    found = channel_absmax(model, tensors, samples)
    assert kept == [False] and model.main.outputs == outputs
    assert set(found) == set(tensors)
    for t in tensors:
        r = ref[t]
        # the reference kept min / max over all channels: the channels' maxima reach them
        assert float(found[t].max()) == max(abs(r.min), abs(r.max)), t.name


def test_float_outputs_run_once_for_every_build(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    """target_sqnr= quantises and evaluates several times: the float model's held-out outputs
    are run once and reused (the float model does not change between builds)."""
    import sdk
    import sdk.exporter
    from sdk.converters.quantize import fidelity

    evaluations: list[int] = []
    runs: list[int] = []
    evaluate, outputs_for = fidelity.evaluate, LiteRTRunner.outputs_for
    monkeypatch.setattr(sdk.exporter, "evaluate",
                        lambda *a, **k: evaluations.append(1) or evaluate(*a, **k))
    monkeypatch.setattr(LiteRTRunner, "outputs_for",
                        lambda self, *a, **k: runs.append(1) or outputs_for(self, *a, **k))
    model = _model()
    cal = random((24, 1, 3, 12, 12), seed=5, scale=2.0)
    sdk.export(model, "int8", calibration=cal, report=False, target_sqnr=60.0,
               output=tmp_path / "m.tflite")
    assert len(evaluations) >= 2
    # one float run over the held-out samples, one quantised run per build
    assert len(runs) == len(evaluations) + 1
