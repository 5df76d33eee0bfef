"""Issue 12: a float LOG deep in a network reads an int8 tensor. A log-mel's floor constant
(max(mel, 1e-6)) under half an int8 step rounds to 0 with the quiet bins, and LOG(0) = -inf
reached the output. The rewrite puts a float MAXIMUM before such a LOG (`log_guard`): the file
never computes log(0) for an input the float model keeps non-negative."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import requires_onnx


def _deep_log_mel(floor: float = 1e-6) -> Any:
    from test_quant_log_front_end import _log_mel_model

    from sdk.converters.quantize.int8 import FRONT_END_OPS

    # FRONT_END_OPS MatMul + Relu layers before the power spectrum: not a front end, the LOG
    # reads the int8 floor op's output
    return _log_mel_model(depth=FRONT_END_OPS, floor=floor)


def _outputs(model: Any, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    from test_quant_log_front_end import _audio

    from onnx_testing import run_onnx, run_tflite

    refs, gots = [], []
    for k in range(8):
        feeds = {"x": _audio(700 + k)}
        refs.append(run_onnx(model, feeds)[0])
        gots.append(run_tflite(data, feeds)[0])
    return np.concatenate(refs).astype(np.float64), np.concatenate(gots).astype(np.float64)


@requires_onnx
def test_deep_log_never_reads_zero(tmp_path: Any) -> None:
    import warnings

    from test_quant_log_front_end import _export

    model = _deep_log_mel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fidelity warning: this net is meant to be hard
        data, result = _export(model, tmp_path)
    assert any(v.startswith("LiteRT has no int8 kernel for LOG") for v in
               result.fallbacks.values()), result.fallbacks
    assert not [v for v in result.fallbacks.values() if "front end of" in v], result.fallbacks
    ref, got = _outputs(model, data)
    assert np.isfinite(ref).all()
    assert np.isfinite(got).all(), f"{np.isinf(got).sum()} of {got.size} outputs are -inf"
    # the floor is a fraction of a step: the guarded LOG reads nothing below it
    assert got.min() > np.log(1e-6), got.min()
    sqnr = 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - got) ** 2))
    assert sqnr > 8.0, sqnr
    # one MAXIMUM more than the model's own floor: the guard
    assert result.op_counts.get("MAXIMUM") == 2, result.op_counts


@requires_onnx
def test_guard_needs_an_int8_non_negative_input(tmp_path: Any) -> None:
    """A LOG whose front end stays float reads a float tensor: no guard is added."""
    from test_quant_log_front_end import _export, _log_mel_model

    _, result = _export(_log_mel_model(), tmp_path)
    assert result.op_counts.get("MAXIMUM") == 1, result.op_counts


def test_guard_rules() -> None:
    from sdk.converters.ir import DType, QuantParams, Tensor
    from sdk.converters.quantize.log_guard import FLOOR_STEPS, floor_for, needs_guard

    q = QuantParams.per_tensor(0.5, -128)
    x = Tensor("x", (1, 4), DType.INT8, quant=q)
    assert needs_guard(x, 0.0)
    assert not needs_guard(x, -0.1)  # the float model's value can be negative: not ours to fix
    assert not needs_guard(x, None)
    assert not needs_guard(Tensor("f", (1, 4), DType.FLOAT32), 0.0)
    assert not needs_guard(Tensor("w", (1, 4), DType.INT16, quant=q), 0.0)  # 16x8 stays 16x8
    assert floor_for(q) == pytest.approx(0.5 * FLOOR_STEPS)
