"""The partly rounded model's tensors computed incrementally (converters/quantize/upstream_cache.py,
issue 15's export speed): the same values as a run of the whole prefix, before and after a
layer's weights change, and the same GPTQ codes as the whole-prefix path."""

from __future__ import annotations

import numpy as np
import pytest

from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
from sdk.converters.quantize.subgraph import computing
from sdk.converters.quantize.upstream_cache import UpstreamCache
from sdk.converters.tflite import serialize
from sdk.run.runner import LiteRTRunner

CONV = {"padding": "SAME", "stride_w": 1, "stride_h": 1, "fused_activation_function": "RELU",
        "dilation_w_factor": 1, "dilation_h_factor": 1}


def _residual_net(seed: int = 0) -> tuple[Model, dict[str, Tensor], list[Operator]]:
    """x -> conv1 -> a -> conv2 -> b; ADD(a, b) -> c -> conv3 -> y: a skip connection, so `a`
    must stay cached past conv2 (read again by the ADD)."""
    rng = np.random.default_rng(seed)
    g = Graph(name="main")
    t = {n: g.add_tensor(Tensor(n, (1, 6, 6, 8), DType.FLOAT32)) for n in ("a", "b", "c", "y")}
    t["x"] = g.add_tensor(Tensor("x", (1, 6, 6, 3), DType.FLOAT32))
    convs = []
    for name, src, dst, cin in (("conv1", "x", "a", 3), ("conv2", "a", "b", 8),
                                ("conv3", "c", "y", 8)):
        w = g.constant(f"{name}/w", (rng.standard_normal((8, 3, 3, cin)) / 4).astype(np.float32))
        b = g.constant(f"{name}/b", (0.1 * rng.standard_normal(8)).astype(np.float32))
        convs.append(Operator("CONV_2D", [t[src], w, b], [t[dst]], dict(CONV), name=name))
    add = Operator("ADD", [t["a"], t["b"]], [t["c"]], {"fused_activation_function": "NONE"},
                   name="skip")
    g.operators = [convs[0], convs[1], add, convs[2]]
    g.inputs, g.outputs = [t["x"]], [t["y"]]
    return Model([g]), t, convs


def _samples(model: Model, n: int = 6):
    from sdk.converters.quantize import as_samples
    from sdk.exporter import input_specs

    x = np.random.default_rng(1).standard_normal((n, 6, 6, 3)).astype(np.float32)
    return as_samples(x, input_specs(model))


def _prefix(model: Model, tensor: Tensor, samples) -> list[np.ndarray]:
    """`tensor` per sample from a run of the whole prefix (the path the cache replaces)."""
    runner = LiteRTRunner(serialize(computing(model, [tensor]))[0], reference=True)
    return [runner.invoke([x])[0] for _, (x,) in samples.batches(1)]


def test_cached_values_are_the_whole_prefix_values() -> None:
    model, t, convs = _residual_net()
    samples = _samples(model)
    cache = UpstreamCache(model, samples, budget_bytes=1 << 24)
    assert UpstreamCache.supported(model)
    for conv in convs:                                   # each layer's input, in order
        x = conv.inputs[0]
        got = cache.tensor_values(x, len(samples))
        want = _prefix(model, x, samples)
        assert len(got) == len(samples)
        for g_, w_ in zip(got, want, strict=True):
            np.testing.assert_allclose(g_, w_, rtol=1e-6, atol=1e-6)
        if conv is convs[1]:
            assert id(t["a"]) in cache.values            # conv2's input, read by the ADD too
    # `a` dropped once its last reader (the ADD) ran; c kept for conv3, which has not run
    assert id(t["a"]) not in cache.values and id(t["c"]) in cache.values
    # conv1's input is the graph input: two cut-out runs of 6 samples, no op run twice
    assert cache.invokes == 2 * len(samples)


def test_a_layer_rounded_invalidates_what_it_feeds() -> None:
    model, t, convs = _residual_net()
    samples = _samples(model)
    cache = UpstreamCache(model, samples, budget_bytes=1 << 24)
    cache.tensor_values(t["a"], len(samples))           # conv2's input
    before_c = [v.copy() for v in cache.tensor_values(t["c"], len(samples))]
    w2 = convs[1].inputs[1]
    w2.data = (np.round(w2.numpy() * 2) / 2).astype(np.float32)   # conv2 "rounded"
    cache.invalidate([convs[1]])
    assert id(t["c"]) not in cache.values
    after_c = cache.tensor_values(t["c"], len(samples))
    want = _prefix(model, t["c"], samples)
    for g_, w_ in zip(after_c, want, strict=True):
        np.testing.assert_allclose(g_, w_, rtol=1e-6, atol=1e-6)
    assert not all(np.allclose(a, b) for a, b in zip(after_c, before_c, strict=True))


def test_a_value_past_the_budget_is_recomputed() -> None:
    model, t, _ = _residual_net()
    samples = _samples(model)
    cache = UpstreamCache(model, samples, budget_bytes=0)        # keeps nothing
    cache.tensor_values(t["a"], len(samples))
    assert cache.values == {}
    got = cache.tensor_values(t["c"], len(samples))
    for g_, w_ in zip(got, _prefix(model, t["c"], samples), strict=True):
        np.testing.assert_allclose(g_, w_, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("method", ["gptq", "adaround"])
def test_solver_codes_match_the_whole_prefix_path(method, monkeypatch) -> None:
    """The sequential solver's codes and scales with the cache equal those from whole-prefix
    runs (the path before the cache), layer by layer, int4 and ternary."""
    from sdk.converters.quantize import upstream_cache
    from sdk.converters.quantize.gptq import weight_solver
    from sdk.converters.quantize.weights import weight_format

    model, _, convs = _residual_net(seed=3)
    samples = _samples(model, n=16)

    def solve_all(cut: bool) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
        if not cut:
            monkeypatch.setattr(upstream_cache.UpstreamCache, "supported",
                                staticmethod(lambda m: False))
        solver = weight_solver(method, model, samples, max_rows=128)
        out = []
        with solver:
            for conv, scheme in zip(convs, ("int4", "ternary", "int4"), strict=True):
                q = weight_format(scheme).quantize(conv.inputs[1].numpy(), 0, method)
                out.append((q.values, np.asarray(q.quant.scale)))
        monkeypatch.undo()
        return out, len(solver.compensated)

    new, compensated = solve_all(True)
    old, _ = solve_all(False)
    assert compensated >= 1                              # the path under test was taken
    for (qn, sn), (qo, so) in zip(new, old, strict=True):
        np.testing.assert_array_equal(qn, qo)
        np.testing.assert_allclose(sn, so, rtol=1e-5)


def test_a_failed_cut_is_not_retried_at_every_layer(monkeypatch) -> None:
    """Once the cache cannot cut the graph, the solver runs whole prefixes from then on: it
    does not build a new cache (which starts again from the graph inputs) at each layer."""
    from sdk.converters.quantize import gptq, upstream_cache
    from sdk.converters.quantize.gptq import weight_solver
    from sdk.converters.quantize.weights import weight_format

    model, _, convs = _residual_net(seed=3)
    samples = _samples(model, n=16)
    built = []
    real_init = upstream_cache.UpstreamCache.__init__

    def counting_init(self, *args, **kwargs) -> None:
        built.append(1)
        real_init(self, *args, **kwargs)

    def refuse(self, tensor, count):
        raise ValueError("cannot cut here")

    monkeypatch.setattr(gptq.UpstreamCache, "__init__", counting_init)
    monkeypatch.setattr(gptq.UpstreamCache, "tensor_values", refuse)
    solver = weight_solver("gptq", model, samples, max_rows=128)
    with solver:
        for conv in convs:
            weight_format("int4").quantize(conv.inputs[1].numpy(), 0, "gptq")
    assert len(solver.compensated) >= 2                  # several layers took the rounded path
    assert len(built) == 1
