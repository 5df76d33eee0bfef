"""Issue 15, the INT4 default: a weighted layer the INT8 rewrite keeps off int8 activations (an
STFT front end feeding a LOG) takes INT8 weights with float activations (LiteRT's dynamic-range
kernel, 1 byte a weight) in an int4 export, not float weights (4 bytes a weight).

oww_melspectrogram's STFT was 459 of its int4 file's 634 kB with the STFT float; with it hybrid
the file is 240,800 B (benchmarks/results/subbyte-fidelity-2026-12-07.md, stop 30 area E).
Ternary / 2-bit keep the float layer by default (`subbyte.HYBRID_KEPT_SCHEMES`); the option
`hybrid_kept` switches it either way. The report says per layer what it is and why.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_mixed_spend import _front_end_net

import sdk
from sdk.converters.quantize.plan import HYBRID_INT8
from sdk.converters.quantize.subbyte import build_plan
from sdk.converters.tflite import read_tflite
from sdk.run.fidelity import FidelityWarning

from conftest import requires_tf


def _front(res: sdk.ExportResult) -> str:
    """The front end's Dense (the only weighted layer kept off int8 activations)."""
    return next(n for n in res.precision if "front_1/" in n
                and res.precision[n] in ("float32", HYBRID_INT8.describe()))


def _front_op(path) -> object:
    model = read_tflite(path)
    return next(op for op in model.main.operators if op.type == "FULLY_CONNECTED"
                and op.inputs[1] is not None and op.inputs[1].shape[-1] == 128)


def _export(tmp_path, scheme: str, name: str, **kwargs):
    data = np.random.default_rng(1).standard_normal((64, 128)).astype(np.float32)
    return sdk.export(_front_end_net(), scheme, calibration=data, weight_method="rtn",
                      output=tmp_path / name, report=False, **kwargs)


@requires_tf
@pytest.mark.filterwarnings("ignore", category=FidelityWarning)
def test_int4_front_end_takes_int8_weights_with_float_activations(tmp_path) -> None:
    res = _export(tmp_path, "int4", "h.tflite")
    front = _front(res)
    assert res.precision[front] == "int8/float32"  # the old export: "float32"
    assert front not in res.fallbacks
    why = res.precision_notes[front]
    assert "INT8 weights with float activations" in why and "LOG" in why, why
    op = _front_op(res.path)  # a standard .tflite: FLOAT32 inputs, INT8 weights per channel
    assert op.inputs[0].dtype.name == "FLOAT32"
    assert op.inputs[1].dtype.name == "INT8"
    assert op.inputs[1].quant is not None and op.inputs[1].quant.is_per_channel
    assert res.fidelity is not None  # measured in stock LiteRT, no delegate (no custom op)
    assert not res.custom_ops

    kept = _export(tmp_path, "int4", "f.tflite", scheme_options={"hybrid_kept": False})
    assert kept.precision[_front(kept)] == "float32"
    assert _front_op(kept.path).inputs[1].dtype.name == "FLOAT32"
    # 128 x 256 weights at 1 byte, not 4; the per-channel scales cost a little back
    assert kept.size_bytes - res.size_bytes > 2.5 * 128 * 256


@requires_tf
@pytest.mark.filterwarnings("ignore", category=FidelityWarning)
def test_ternary_keeps_the_float_layer_unless_asked(tmp_path) -> None:
    res = _export(tmp_path, "ternary", "t.tflite")
    assert res.precision[_front(res)] == "float32"
    asked = _export(tmp_path, "ternary", "th.tflite", scheme_options={"hybrid_kept": True})
    assert asked.precision[_front(asked)] == "int8/float32"


@requires_tf
@pytest.mark.filterwarnings("ignore", category=FidelityWarning)
def test_a_layer_the_user_keeps_float_stays_float(tmp_path) -> None:
    res = _export(tmp_path, "int4", "p.tflite")
    front = _front(res)
    kept = _export(tmp_path, "int4", "u.tflite", precision={front: "float32"})
    assert kept.precision[front] == "float32"
    assert kept.fallbacks[front] == "kept in float by the precision plan"


def _computed_front_net():
    """As `_front_end_net`, but the front end's Dense reads a computed tensor (the input
    squared, as a mel filterbank reads a power spectrum), not the model input."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(3)
    inp = tf.keras.Input((128,), name="x")
    x = tf.keras.layers.Dense(256, use_bias=False, name="front")(tf.keras.ops.square(inp))
    x = tf.keras.ops.log(x * x + 1e-2)
    x = tf.keras.layers.Dense(256, activation="relu", name="mid")(x)
    return tf.keras.Model(inp, tf.keras.layers.Dense(16, name="head")(x), name="computed_net")


@requires_tf
@pytest.mark.filterwarnings("ignore", category=FidelityWarning)
def test_a_layer_reading_a_computed_tensor_stays_float(tmp_path) -> None:
    """The hybrid kernel quantises its input to int8 per inference: on a computed spectrum
    that rounds the quiet bins to 0 (oww_melspectrogram's mel MatMul: 22.86 -> 16.58 dB), so
    only a layer reading the model input (moved, not computed) takes it; the report says why
    the other stays float."""
    data = np.random.default_rng(1).standard_normal((64, 128)).astype(np.float32)
    res = sdk.export(_computed_front_net(), "int4", calibration=data, weight_method="rtn",
                     output=tmp_path / "c.tflite", report=False)
    front = _front(res)
    assert res.precision[front] == "float32"
    assert "input is computed" in res.fallbacks[front], res.fallbacks[front]
    assert _front_op(res.path).inputs[1].dtype.name == "FLOAT32"


def test_which_plans_take_it() -> None:
    from sdk.converters.ir import Graph, Model

    empty = Model([Graph("main")])
    assert build_plan("int4", empty).hybrid_kept
    assert not build_plan("int4", empty, activations="float32").hybrid_kept  # all hybrid then
    assert not build_plan("ternary", empty).hybrid_kept
    assert not build_plan("int2", empty).hybrid_kept
    assert build_plan("int2", empty, hybrid_kept=True).hybrid_kept
    assert not build_plan("int4", empty, hybrid_kept=False).hybrid_kept
