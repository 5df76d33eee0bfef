"""sdk.run.runner.paired_runners: the float model and its quantised version run side by side
(per-layer fidelity, empirical bias correction) on the same batches, every tensor kept."""

from __future__ import annotations

import numpy as np

from sdk.base.samples import InputSpec, synthetic
from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
from sdk.converters.tflite.writer import to_tflite_bytes
from sdk.run.runner import paired_runners


def _model(offset: float) -> tuple[bytes, Tensor]:
    """x -> ADD offset -> mid -> MUL mid * mid -> y (batch dimension dynamic)."""
    g = Graph(name="main")
    x, mid, y = (g.add_tensor(Tensor(n, (1, 4), DType.FLOAT32, shape_signature=(-1, 4)))
                 for n in ("x", "mid", "y"))
    act = {"fused_activation_function": "NONE"}
    g.operators = [
        Operator("ADD", [x, g.constant("c", np.full((1, 4), offset, np.float32))], [mid],
                 dict(act), name="add"),
        Operator("MUL", [mid, mid], [y], dict(act), name="square"),
    ]
    g.inputs, g.outputs = [x], [y]
    return to_tflite_bytes(Model([g])), mid


def test_both_models_run_the_same_batches_keeping_their_intermediates() -> None:
    (a, mid), (b, _) = _model(1.0), _model(2.0)
    samples = synthetic([InputSpec("x", (1, 4), np.dtype(np.float32), True)], 7)
    float_run, quant_run = paired_runners(a, b, samples)
    assert float_run.batch_size == quant_run.batch_size
    seen = 0
    for (n, fo), (m, _) in zip(float_run.run(samples), quant_run.run(samples), strict=True):
        assert n == m
        mid_index = next(t["index"] for t in float_run.interp.get_tensor_details()
                         if t["name"] == mid.name)
        f_mid, q_mid = float_run.tensor(mid_index), quant_run.tensor(mid_index)
        np.testing.assert_allclose(q_mid - f_mid, 1.0, rtol=1e-6)
        np.testing.assert_allclose(fo[0], f_mid.reshape(fo[0].shape) ** 2, rtol=1e-6)
        seen += n
    assert seen == 7
