"""Measure which builtins LiteRT runs with 16x8 activations: the evidence for `INT16_KERNELS`.

    python -m sdk.converters.quantize.int16x8_probe        # needs the [tf] extra

For each op of the INT8 rules (`rules.OP_RULES`) it builds a one-op float model with TensorFlow's
converter, exports it with `sdk.export(model, "int16x8")` (every op offered int16, the op under
test given a kernel entry if the table has none), runs it in LiteRT and compares with the float
model: ``ok`` when the op ran in int16 and its output is within int16 rounding of the float one
(SQNR >= `OK_SQNR_DB`), ``wrong`` when it runs but the result is off, ``rejected`` when LiteRT
refuses to prepare it, ``not built`` when TensorFlow's converter does not emit that op alone.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import redirect_stderr
from dataclasses import dataclass
from typing import Any

import numpy as np

from sdk.converters.quantize import int16x8
from sdk.converters.quantize.int16x8 import INT16_KERNELS, Int16Kernel

#: worst-output SQNR above which a one-op 16x8 model counts as right (int16 rounding of one op
#: gives 60-90 dB; int8 gives 30-45)
OK_SQNR_DB = 50.0
#: the same for ops with int8 weights, whose rounding dominates (43-48 dB): at least this, and
#: above the op's int8 export
OK_WEIGHTED_SQNR_DB = 40.0
#: ops the probe builds in the IR: TensorFlow's converter writes RESHAPE for them
_IR_CASES = ("SQUEEZE", "EXPAND_DIMS")


@dataclass(frozen=True)
class ProbeResult:
    op: str
    outcome: str  # ok | wrong | rejected | not built
    sqnr_db: float | None = None
    int8_sqnr_db: float | None = None
    detail: str = ""


def _cases() -> dict[str, tuple[Callable[..., Any], list[tuple[int, ...]], dict[str, Any]]]:
    """op -> (function of float inputs, input shapes, fixed parameters of an int16 kernel the
    probe should assume)"""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    w4 = tf.constant(rng.standard_normal((3, 3, 8, 8)).astype(np.float32) * 0.2)
    wd = tf.constant(rng.standard_normal((3, 3, 8, 1)).astype(np.float32) * 0.2)
    wf = tf.constant(rng.standard_normal((32, 16)).astype(np.float32) * 0.2)
    wt = tf.constant(rng.standard_normal((3, 3, 4, 8)).astype(np.float32) * 0.2)
    bias = tf.constant(rng.standard_normal(8).astype(np.float32) * 0.1)
    img, vec = (1, 8, 8, 8), (2, 32)
    fixed = {"fixed_output": (1.0 / 32768, 0)}
    prelu = tf.keras.layers.PReLU(shared_axes=[1, 2])
    prelu.build(img)
    prelu.set_weights([rng.random((1, 1, 8)).astype(np.float32)])
    return {
        "CONV_2D": (lambda x: tf.nn.conv2d(x, w4, 1, "SAME") + bias, [img], {}),
        "DEPTHWISE_CONV_2D": (lambda x: tf.nn.depthwise_conv2d(x, wd, [1, 1, 1, 1], "SAME")
                              + bias, [img], {}),
        "FULLY_CONNECTED": (lambda x: tf.matmul(x, wf) + bias[:1], [vec], {}),
        "TRANSPOSE_CONV": (lambda x: tf.nn.conv2d_transpose(x, wt, (1, 16, 16, 4), 2, "SAME"),
                           [img], {}),
        "BATCH_MATMUL": (lambda x: tf.matmul(x, tf.constant(
            rng.standard_normal((2, 16, 8)).astype(np.float32))), [(2, 4, 16)], {}),
        "ADD": (lambda x, y: x + y, [img, img], {}),
        "SUB": (lambda x, y: x - y, [img, img], {}),
        "MUL": (lambda x, y: x * y, [img, img], {}),
        "SQUARED_DIFFERENCE": (lambda x, y: tf.math.squared_difference(x, y), [img, img], {}),
        "MEAN": (lambda x: tf.reduce_mean(x, axis=[1, 2], keepdims=True), [img], {}),
        "SUM": (lambda x: tf.reduce_sum(x, axis=[1, 2], keepdims=True), [img], {}),
        "RELU": (tf.nn.relu, [img], {}),
        "RELU6": (tf.nn.relu6, [img], {}),
        "RELU_N1_TO_1": (lambda x: tf.clip_by_value(x, -1.0, 1.0), [img], {}),
        "LEAKY_RELU": (lambda x: tf.nn.leaky_relu(x, 0.1), [img], {}),
        "HARD_SWISH": (lambda x: x * tf.nn.relu6(x + 3.0) / 6.0, [img], {}),
        "PRELU": (prelu, [img], {}),
        "ELU": (tf.nn.elu, [img], {}),
        "GELU": (lambda x: tf.nn.gelu(x, approximate=False), [img], {}),
        "ABS": (tf.abs, [img], {}),
        "RSQRT": (lambda x: tf.math.rsqrt(tf.abs(x) + 0.5), [img], {}),
        "LOGISTIC": (tf.sigmoid, [img], fixed),
        "SOFTMAX": (tf.nn.softmax, [vec], fixed),
        "TANH": (tf.tanh, [img], fixed),
        "LOG_SOFTMAX": (tf.nn.log_softmax, [vec], {}),
        "L2_NORMALIZATION": (lambda x: tf.math.l2_normalize(x, axis=-1), [img], {}),
        "MAX_POOL_2D": (lambda x: tf.nn.max_pool2d(x, 2, 2, "VALID"), [img], {}),
        "AVERAGE_POOL_2D": (lambda x: tf.nn.avg_pool2d(x, 2, 2, "VALID"), [img], {}),
        "RESHAPE": (lambda x: tf.reshape(x, (1, 64, 8)), [img], {}),
        "SQUEEZE": (lambda x: tf.squeeze(x, 0), [img], {}),
        "EXPAND_DIMS": (lambda x: tf.expand_dims(x, 1), [img], {}),
        "TRANSPOSE": (lambda x: tf.transpose(x, (0, 3, 1, 2)), [img], {}),
        "CONCATENATION": (lambda x, y: tf.concat([x, y], -1), [img, img], {}),
        "PAD": (lambda x: tf.pad(x, [[0, 0], [1, 1], [2, 2], [0, 0]]), [img], {}),
        "PADV2": (lambda x: tf.pad(x, [[0, 0], [1, 1], [2, 2], [0, 0]], constant_values=0.5),
                  [img], {}),
        "MIRROR_PAD": (lambda x: tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], "REFLECT"),
                       [img], {}),
        "SLICE": (lambda x: tf.slice(x, [0, 1, 1, 0], [1, 4, 4, 8]), [img], {}),
        "STRIDED_SLICE": (lambda x: x[:, ::2, 1:7, :], [img], {}),
        "GATHER": (lambda x: tf.gather(x, [3, 1, 2], axis=-1), [img], {}),
        "SPLIT": (lambda x: tf.split(x, 2, axis=-1)[0] * 1.0, [img], {}),
        "SPLIT_V": (lambda x: tf.split(x, [3, 5], axis=-1)[1], [img], {}),
        "PACK": (lambda x, y: tf.stack([x, y], 1), [vec, vec], {}),
        "UNPACK": (lambda x: tf.unstack(x, axis=0)[1], [vec], {}),
        "TILE": (lambda x: tf.tile(x, [1, 2, 1, 1]), [img], {}),
        "BROADCAST_TO": (lambda x: tf.broadcast_to(x, (4, 8, 8, 8)), [img], {}),
        "RESIZE_BILINEAR": (lambda x: tf.compat.v1.image.resize_bilinear(x, (16, 16)),
                            [img], {}),
        "RESIZE_NEAREST_NEIGHBOR": (lambda x: tf.compat.v1.image.resize_nearest_neighbor(
            x, (16, 16)), [img], {}),
        "SPACE_TO_DEPTH": (lambda x: tf.nn.space_to_depth(x, 2), [img], {}),
        "DEPTH_TO_SPACE": (lambda x: tf.nn.depth_to_space(x, 2), [img], {}),
        "SPACE_TO_BATCH_ND": (lambda x: tf.space_to_batch_nd(x, [2, 2], [[0, 0], [0, 0]]),
                              [img], {}),
        "BATCH_TO_SPACE_ND": (lambda x: tf.compat.v1.batch_to_space_nd(
            x, [2, 2], [[0, 0], [0, 0]]), [(4, 4, 4, 8)], {}),
        "MAXIMUM": (tf.maximum, [img, img], {}),
        "MINIMUM": (tf.minimum, [img, img], {}),
        "REDUCE_MAX": (lambda x: tf.reduce_max(x, axis=[1, 2], keepdims=True), [img], {}),
        "REDUCE_MIN": (lambda x: tf.reduce_min(x, axis=[1, 2], keepdims=True), [img], {}),
        "SELECT": (lambda x, y: tf.where(x > 0, x, y), [img, img], {}),
        "ARG_MAX": (lambda x: tf.cast(tf.argmax(x, -1), tf.float32), [vec], {}),
        "ARG_MIN": (lambda x: tf.cast(tf.argmin(x, -1), tf.float32), [vec], {}),
    }


def _float_tflite(fn: Callable[..., Any], shapes: list[tuple[int, ...]]) -> bytes:
    import tensorflow as tf

    specs = [tf.TensorSpec(s, tf.float32) for s in shapes]
    concrete = tf.function(fn).get_concrete_function(*specs)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    return converter.convert()


def _ir_model(op: str) -> bytes:
    """A one-op float model written from the IR (ops TensorFlow folds into RESHAPE)."""
    from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
    from sdk.converters.tflite.writer import to_tflite_bytes

    g = Graph(name="probe")
    x = g.add_tensor(Tensor("x", (1, 8, 8, 8), DType.FLOAT32))
    if op == "SQUEEZE":
        y = g.add_tensor(Tensor("y", (8, 8, 8), DType.FLOAT32))
        g.operators.append(Operator("SQUEEZE", [x], [y], attrs={"squeeze_dims": [0]}))
    else:
        axis = g.constant("axis", np.array([1], np.int32))
        y = g.add_tensor(Tensor("y", (1, 1, 8, 8, 8), DType.FLOAT32))
        g.operators.append(Operator("EXPAND_DIMS", [x, axis], [y]))
    g.inputs, g.outputs = [x], [y]
    return to_tflite_bytes(Model([g]))


def probe_op(op: str) -> ProbeResult:
    """Export a one-op model of `op` to 16x8 and to INT8, run both, compare with float."""
    from sdk.converters.frontends import load_model

    if op in _IR_CASES:
        return _run(op, _ir_model(op), np.random.default_rng(1).uniform(
            -3, 3, (64, 8, 8, 8)).astype(np.float32), {})
    fn, shapes, kernel_extra = _cases()[op]
    try:
        data = _float_tflite(fn, shapes)
    except Exception as exc:
        return ProbeResult(op, "not built", detail=str(exc).splitlines()[0][:100])
    ops = load_model(data).model.op_counts()
    if op not in ops:
        return ProbeResult(op, "not built", detail=f"TensorFlow wrote {sorted(ops)}")
    rng = np.random.default_rng(1)
    cal = [rng.uniform(-3, 3, (64, *s[1:]) if s[0] == 1 else (64 * s[0], *s[1:]))
           .astype(np.float32) for s in shapes]
    if all(s[0] == 1 for s in shapes):
        calibration: Any = cal[0] if len(cal) == 1 else cal
    else:
        return _probe_batched(op, data, shapes, kernel_extra)
    return _run(op, data, calibration, kernel_extra)


def _probe_batched(op: str, data: bytes, shapes: list[tuple[int, ...]],
                   kernel_extra: dict[str, Any]) -> ProbeResult:
    rng = np.random.default_rng(1)
    # a batch dimension other than 1 is part of the model: one sample is one full input
    cal = [rng.uniform(-3, 3, (16, *s)).astype(np.float32) for s in shapes]
    return _run(op, data, cal[0] if len(cal) == 1 else cal, kernel_extra, batched=True)


def _run(op: str, data: bytes, calibration: Any, kernel_extra: dict[str, Any],
         batched: bool = False) -> ProbeResult:
    import tempfile

    import sdk

    added = op not in INT16_KERNELS
    if added:
        INT16_KERNELS[op] = Int16Kernel(**kernel_extra)
    refused = int16x8.INT16_REFUSED.pop(op, None)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            kwargs: dict[str, Any] = {"calibration": calibration, "validation": calibration}
            if batched:
                kwargs["max_samples"] = 16
            try:
                int8 = sdk.export(data, "int8", output=f"{tmp}/a.tflite", equalize=False,
                                  **kwargs)
                int8_db = int8.fidelity.min_sqnr_db if int8.fidelity else None
            except Exception:
                int8_db = None
            try:
                with redirect_stderr(io.StringIO()):
                    res = sdk.export(data, "int16x8", output=f"{tmp}/b.tflite", **kwargs)
            except Exception as exc:
                return ProbeResult(op, "rejected", None, int8_db,
                                   str(exc).splitlines()[0][:160])
        ran = [p for name, p in res.precision.items() if name.startswith(op + ":")
               or p == "int16x8"]
        if "int16x8" not in ran:
            return ProbeResult(op, "not built", None, int8_db,
                               f"the op did not run in int16: {res.precision}")
        db = res.fidelity.min_sqnr_db if res.fidelity else None
        if op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV",
                  "BATCH_MATMUL"):
            ok = db is not None and db >= OK_WEIGHTED_SQNR_DB and db > (int8_db or -np.inf)
        else:
            ok = db is not None and db >= OK_SQNR_DB
        outcome = "ok" if ok else "wrong"
        return ProbeResult(op, outcome, db, int8_db)
    finally:
        if added:
            del INT16_KERNELS[op]
        if refused is not None:
            int16x8.INT16_REFUSED[op] = refused


def main(ops: list[str] | None = None) -> list[ProbeResult]:
    import warnings

    from sdk.converters.quantize.rules import OP_RULES

    warnings.simplefilter("ignore")
    cases = _cases()
    results = []
    print("| op | 16x8 in LiteRT | worst SQNR 16x8 | int8 | detail |")
    print("|---|---|---|---|---|")
    for op in ops or sorted(OP_RULES):
        if op not in cases and op not in _IR_CASES:
            results.append(ProbeResult(op, "not built", detail="no probe case"))
        else:
            results.append(probe_op(op))
        r = results[-1]
        fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        print(f"| {r.op} | {r.outcome} | {fmt(r.sqnr_db)} | {fmt(r.int8_sqnr_db)} | "
              f"{r.detail} |", flush=True)
    return results


if __name__ == "__main__":
    import sys

    main(sys.argv[1:] or None)
