"""Whole models through .edge: the digits CNN, converted to full-integer INT8 by TensorFlow's own
converter and read with `read_tflite`, gives LiteRT's builtin-kernel outputs bit for bit in the
.edge runtime (any thread count) and in edge-run on x86, aarch64 (with and without dotprod) and
armv7 under qemu; INT4 weights equal LiteRT's INT4 path too.

Models with 2-bit and ternary weights, which stock LiteRT cannot run, are checked against
LiteRT + the edgesdk delegate in tests/test_edge_vs_delegate.py (every scheme, `sdk.export` to
both formats); here their .edge files are checked for agreement across ISAs and builds."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from edge_helpers import run_litert

from sdk.base import native
from sdk.converters.edge import write_edge
from sdk.converters.ir import DType, QuantParams, Tensor
from sdk.converters.tflite import read_tflite, to_tflite_bytes
from sdk.run import EdgeModel

from conftest import requires_tf

pytestmark = requires_tf

QEMU = {
    "arm64-v8a": [["qemu-aarch64-static", "-cpu", "max"],  # dotprod and i8mm
                  ["qemu-aarch64-static", "-cpu", "neoverse-n1"],  # dotprod, no i8mm
                  ["qemu-aarch64-static", "-cpu", "cortex-a53"]],
    "armeabi-v7a": [["qemu-arm-static", "-cpu", "cortex-a15"]],
}


def _convert_int8(keras_model, data, int8_io: bool) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([data.x_train[i:i + 1]] for i in range(64))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


@pytest.fixture(scope="module")
def digits_int8(digits_keras, digits_data) -> bytes:
    """The digits CNN as TensorFlow's full-integer INT8 .tflite with int8 input and output."""
    return _convert_int8(digits_keras, digits_data, int8_io=True)


@pytest.fixture(scope="module")
def digits_int8_float_io(digits_keras, digits_data) -> bytes:
    return _convert_int8(digits_keras, digits_data, int8_io=False)


def _quantized_inputs(tflite: bytes, images: np.ndarray) -> np.ndarray:
    from sdk.run.litert import backend

    detail = backend().interpreter(model_content=tflite).get_input_details()[0]
    scale, zp = detail["quantization"]
    return np.clip(np.round(images / scale) + zp, -128, 127).astype(np.int8)


def test_digits_int8_bit_exact_with_litert(digits_int8, digits_data, tmp_path) -> None:
    path = tmp_path / "digits.edge"
    write_edge(read_tflite(digits_int8), path)
    xs = _quantized_inputs(digits_int8, digits_data.x_test[:64])
    one = EdgeModel(path, threads=1)
    two = EdgeModel(path, threads=2)
    assert [d["name"] for d in one.get_input_details()] == \
        [d["name"] for d in _litert_inputs(digits_int8)]
    for x in xs:
        ref = run_litert(digits_int8, [x[None]])[0]
        assert np.array_equal(one.run(x[None])[0], ref)
        assert np.array_equal(two.run(x[None])[0], ref)
    kernels = dict(zip([s.op for s in one.layer_stats()], one.kernels(), strict=False))
    assert kernels["CONV_2D"] and kernels["FULLY_CONNECTED"] and kernels["DEPTHWISE_CONV_2D"]


def _litert_inputs(tflite: bytes) -> list[dict]:
    from sdk.run.litert import backend

    return backend().interpreter(model_content=tflite).get_input_details()


def test_digits_float_io_bit_exact_and_accurate(digits_int8_float_io, digits_data) -> None:
    model = EdgeModel(read_and_encode(digits_int8_float_io))
    correct = 0
    for x, y in zip(digits_data.x_test[:100], digits_data.y_test[:100], strict=True):
        ref = run_litert(digits_int8_float_io, [x[None]])[0]
        ours = model.run(x[None])[0]
        assert np.array_equal(ours, ref)
        correct += int(np.argmax(ours) == y)
    assert correct >= 85


def read_and_encode(tflite: bytes, **options) -> bytes:
    from sdk.converters.edge import to_edge_bytes

    return to_edge_bytes(read_tflite(tflite), **options)


def _low_bit_weights(model, dtype: DType = DType.INT4, levels: tuple[int, int] = (-8, 7)):
    """The IR with every CONV_2D / FULLY_CONNECTED weight re-quantised per channel to the
    signed `levels` (symmetric: scale = max|w| / max(|lo|, hi)), stored as `dtype`."""
    lo, hi = levels
    for op in model.main.operators:
        if op.type not in ("CONV_2D", "FULLY_CONNECTED"):
            continue
        w = op.inputs[1]
        n = w.shape[0]
        real = w.numpy().astype(np.float64) * np.broadcast_to(w.quant.scale, (n,)).reshape(
            (n,) + (1,) * (w.rank - 1))
        scale = (np.abs(real.reshape(n, -1)).max(axis=1) / max(-lo, hi)).astype(np.float32)
        q = np.clip(np.round(real / scale.reshape((n,) + (1,) * (w.rank - 1))), lo, hi)
        op.inputs[1] = Tensor(w.name, w.shape, dtype, data=q.astype(np.int8),
                              quant=QuantParams.per_channel(scale, axis=0))
        x, b = op.inputs[0], op.inputs[2]
        bias_scale = (np.float64(x.quant.scale[0]) * scale).astype(np.float32)
        real_b = b.numpy() * np.float64(x.quant.scale[0]) * np.broadcast_to(w.quant.scale, (n,))
        op.inputs[2] = Tensor(b.name, b.shape, DType.INT32,
                              data=np.round(real_b / bias_scale).astype(np.int32),
                              quant=QuantParams.per_channel(bias_scale, axis=0))
    model.main.prune()
    return model


def test_digits_int4_weights_bit_exact_with_litert(digits_int8, digits_data) -> None:
    model = _low_bit_weights(read_tflite(digits_int8))
    tflite = to_tflite_bytes(model)
    from sdk.converters.edge import to_edge_bytes

    edge = EdgeModel(to_edge_bytes(model))
    for x in _quantized_inputs(digits_int8, digits_data.x_test[:32]):
        assert np.array_equal(edge.run(x[None])[0], run_litert(tflite, [x[None]])[0])


@pytest.mark.qemu
@pytest.mark.parametrize("weights", ["int8", "ternary"])
def test_digits_edge_run_on_arm_matches_x86(weights, digits_int8, digits_data, tmp_path) -> None:
    """The same .edge file and input through edge-run for x86, aarch64 (i8mm, dotprod, neither) and
    armv7: identical outputs (equal to LiteRT's for int8), and the kernels each build reports."""
    model = read_tflite(digits_int8)
    if weights == "ternary":
        model = _low_bit_weights(model, DType.INT2, (-1, 1))
    path = tmp_path / "digits.edge"
    write_edge(model, path)
    x = _quantized_inputs(digits_int8, digits_data.x_test[:1])
    inp = tmp_path / "x.npy"
    np.save(inp, x)
    ref = run_litert(digits_int8, [x])[0] if weights == "int8" else None
    runs = [("x86_64", [])] + [(abi, p) for abi, prefixes in QEMU.items() for p in prefixes]
    for abi, prefix in runs:
        out = tmp_path / f"out-{abi}-{len(prefix) and prefix[-1]}.npy"
        r = subprocess.run([*prefix, str(native.edge_run_path(abi)), str(path), "--inputs",
                            str(inp), "--runs", "1", "--warmup", "0", "--outputs", str(out),
                            "--json"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, (abi, prefix, r.stderr)
        report = json.loads(r.stdout)
        if ref is None:
            ref = np.load(out)  # the x86 result is the reference for sub-byte weights
        assert np.array_equal(np.load(out), ref), (abi, prefix)
        for op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            ks = [layer["kernel"] for layer in report["layers"] if layer["op"] == op]
            assert ks and all(ks), (op, report["layers"])
            if abi == "arm64-v8a" and "max" in prefix:  # where the core has them
                best = "__i8mm" if op == "CONV_2D" else "__dotprod"  # i8mm: GEMMs only
                assert any(k.endswith(best) for k in ks), (op, ks)
            elif abi == "arm64-v8a" and "neoverse-n1" in prefix:
                assert all(k.endswith("__dotprod") for k in ks), (op, prefix, ks)
            elif abi != "x86_64":
                assert all(k.endswith("__neon") for k in ks), (op, prefix, ks)
