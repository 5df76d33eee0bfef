"""Graph rewrites that keep an op on the Ethos-U NPU where Vela would leave it on the CPU.

Each rewrite answers one reason Vela gives for a fallback, and only one seen in Vela (5.2)
itself refusing the op and then accepting the rewritten form:

- MEAN whose reduced width is over Vela's limit (4096: "Reduced axis is too large"), e.g. a
  global average over a long 1-D signal (1, 1, 8192, C): the input is reshaped to
  (1, a, b, C) with a * b = H * W and both under the limit, and the MEAN reduces axes 1 and 2
  of that. The sum and the count are the same, so the int8 result is too.
- DEPTH_TO_SPACE, block 2 ("Unsupported opType"; MediaPipe's detectors upsample with it): a
  TRANSPOSE_CONV, stride 2, whose one-hot weights copy each channel group to its pixel, exactly.

A rewrite is applied to the INT8 model and checked in LiteRT (builtin kernels) on the validation
samples before it is kept: an output that moves by more than one int8 step refuses it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from sdk.converters.ir import DType, Graph, Model, Operator, QuantParams, Tensor
from sdk.converters.quantize import layer_name
from sdk.converters.targets.report import NpuLayer, NpuRewrite
from sdk.converters.tflite import read_tflite, to_tflite_bytes
from sdk.run.fidelity import compare_outputs
from sdk.run.litert import backend

#: Vela's largest reduced width (and height, kept under it too) for MEAN
MEAN_AXIS_MAX = 4096
#: the most an output may move, in int8 steps, for a rewrite to be kept
MAX_STEPS = 1


@dataclass
class RewriteOutcome:
    """The rewritten model (None if nothing was kept) and what was done or refused."""

    model: bytes | None
    rewrites: list[NpuRewrite] = field(default_factory=list)


def _divisor_split(n: int, limit: int) -> tuple[int, int] | None:
    """(a, b) with a * b == n, b the largest divisor of n not over `limit`, a not over it."""
    for b in range(min(n, limit), 1, -1):
        if n % b == 0:
            return (n // b, b) if n // b <= limit else None
    return None


def _mean_wide(graph: Graph, op: Operator) -> str | None:
    """MEAN over a width > MEAN_AXIS_MAX -> RESHAPE to two axes under it + MEAN over both."""
    x, axes_t = op.inputs[0], op.inputs[1]
    if x is None or axes_t is None or not axes_t.is_constant or len(x.shape) != 4 \
            or x.shape[0] != 1:
        return None
    _, h, w, c = x.shape
    axes = sorted({int(a) % 4 for a in np.asarray(axes_t.numpy()).ravel()})
    if w <= MEAN_AXIS_MAX or axes not in ([1, 2], [2]) or (axes == [2] and h != 1):
        return None
    split = _divisor_split(h * w, MEAN_AXIS_MAX)
    if split is None:
        return None
    a, b = split
    folded = graph.add_tensor(Tensor(graph.unique_name(f"{x.name}/vela_fold"), (1, a, b, c),
                                     x.dtype, quant=x.quant))
    shape = graph.constant(f"{x.name}/vela_fold_shape", np.array([1, a, b, c], np.int32),
                           DType.INT32)
    reshape = Operator("RESHAPE", [x, shape], [folded], attrs={"new_shape": [1, a, b, c]})
    graph.operators.insert(graph.operators.index(op), reshape)
    op.inputs = [folded, graph.constant(f"{axes_t.name}/vela_fold", np.array([1, 2], np.int32),
                                        DType.INT32)]
    return (f"input ({h}, {w}) reshaped to ({a}, {b}) (both <= {MEAN_AXIS_MAX}); "
            f"MEAN over axes 1, 2")


def _depth_to_space(graph: Graph, op: Operator) -> str | None:
    """DEPTH_TO_SPACE (block 2, same int8 quantisation in and out) -> TRANSPOSE_CONV, stride 2,
    2x2 kernel, VALID, whose one-hot weights (int8 1, scale 1.0) copy channel (i*2+j)*C + c to
    pixel (i, j) channel c: the requantisation multiplier is exactly 1."""
    x, y = op.inputs[0], op.outputs[0]
    block = int(op.attrs.get("block_size", 0))
    if x is None or block != 2 or len(x.shape) != 4 or x.quant is None or y.quant is None \
            or x.dtype != DType.INT8 or not _same_quant(x, y):
        return None
    n, h, w, cin = x.shape
    c = cin // (block * block)
    weights = np.zeros((c, block, block, cin), np.int8)
    for i in range(block):
        for j in range(block):
            weights[np.arange(c), i, j, (i * block + j) * c + np.arange(c)] = 1
    one = QuantParams(scale=np.array([1.0], np.float32), zero_point=np.array([0], np.int64))
    w_t = graph.constant(f"{y.name}/vela_d2s_weights", weights, DType.INT8, quant=one)
    bias_q = QuantParams(scale=np.asarray(x.quant.scale, np.float32).ravel()[:1],
                         zero_point=np.array([0], np.int64))
    b_t = graph.constant(f"{y.name}/vela_d2s_bias", np.zeros(c, np.int32), DType.INT32,
                         quant=bias_q)
    shape = graph.constant(f"{y.name}/vela_d2s_shape",
                           np.array([n, h * block, w * block, c], np.int32), DType.INT32)
    index = graph.operators.index(op)
    graph.operators[index] = Operator(
        "TRANSPOSE_CONV", [shape, w_t, x, b_t], [y],
        attrs={"padding": "VALID", "stride_w": block, "stride_h": block,
               "fused_activation_function": "NONE"},
        name=op.name, version=3, format_extras={"tflite_options_type": "TransposeConvOptions"})
    return (f"TRANSPOSE_CONV stride {block}, {block}x{block} one-hot int8 weights "
            f"(scale 1.0: an exact copy)")


def _same_quant(a: Tensor, b: Tensor) -> bool:
    qa, qb = a.quant, b.quant
    return qa is not None and qb is not None and np.array_equal(np.asarray(qa.scale).ravel(),
                                                                np.asarray(qb.scale).ravel()) \
        and np.array_equal(np.asarray(qa.zero_point).ravel(), np.asarray(qb.zero_point).ravel())


#: op type -> (a phrase Vela's reason must contain, the rewrite)
RULES: dict[str, tuple[str, Callable[[Graph, Operator], str | None]]] = {
    "MEAN": ("Reduced axis", _mean_wide),
    "DEPTH_TO_SPACE": ("Unsupported opType", _depth_to_space),
}


def rewrite_cpu_ops(model_bytes: bytes, cpu_layers: Sequence[NpuLayer],
                    samples: Sequence[Sequence[np.ndarray]]) -> RewriteOutcome:
    """Apply the rewrites for the ops Vela left on the CPU (`cpu_layers`, with its reasons) to
    the INT8 model, one at a time, each kept only if LiteRT's outputs on `samples` stay within
    MAX_STEPS int8 steps of the original model's."""
    model = read_tflite(model_bytes)
    graph = model.main
    by_tensor = {op.outputs[0].name: op for op in graph.operators if op.outputs}
    reference = _run(model_bytes, samples)
    current = model_bytes
    done: list[NpuRewrite] = []
    for layer in cpu_layers:
        rule = RULES.get(layer.op_type)
        op = by_tensor.get(layer.tensor)
        if rule is None or op is None or rule[0] not in layer.reason:
            continue
        before_ops = list(graph.operators)
        before_inputs = list(op.inputs)
        action = rule[1](graph, op)
        if action is None:
            continue
        candidate = to_tflite_bytes(model)
        outputs = _run(candidate, samples)
        steps, sqnr = _difference(reference, outputs, model)
        record = NpuRewrite(op_type=layer.op_type, node=layer_name(op), tensor=layer.tensor,
                            vela_reason=layer.reason, action=action, sqnr_db=sqnr,
                            max_steps=steps, applied=steps <= MAX_STEPS)
        if record.applied:
            current = candidate
        else:
            record.action = f"refused ({steps} int8 steps > {MAX_STEPS}): {action}"
            graph.operators[:] = before_ops
            op.inputs = before_inputs
            graph.prune()
        done.append(record)
    applied = any(r.applied for r in done)
    return RewriteOutcome(model=current if applied else None, rewrites=done)


def _run(model_bytes: bytes, samples: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """Each output over all samples (stacked on axis 0), LiteRT builtin kernels."""
    interp = backend().interpreter(model_content=model_bytes, xnnpack=False)
    interp.allocate_tensors()
    ins, outs = interp.get_input_details(), interp.get_output_details()
    got: list[list[np.ndarray]] = [[] for _ in outs]
    for feeds in samples:
        for detail, value in zip(ins, feeds, strict=True):
            interp.set_tensor(detail["index"], _as_input(np.asarray(value), detail))
        interp.invoke()
        for i, detail in enumerate(outs):
            got[i].append(interp.get_tensor(detail["index"]).copy())
    return [np.concatenate(g) for g in got]


def _as_input(value: np.ndarray, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    value = value.reshape(detail["shape"])
    if dtype.kind == "f" or value.dtype == dtype:
        return value.astype(dtype)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(value / scale) + zero, info.min, info.max).astype(dtype)


def _difference(ref: list[np.ndarray], new: list[np.ndarray],
                model: Model) -> tuple[int, float]:
    """(largest change in int8 steps over all outputs, lowest SQNR in dB)."""
    steps, sqnr = 0, float("inf")
    scales = _output_steps(model)
    for i, (a, b) in enumerate(zip(ref, new, strict=True)):
        step = scales[i] if i < len(scales) else None
        if a.dtype.kind in "iu":
            diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
            moved = int(diff.max()) if diff.size else 0
        elif step:
            moved = int(np.ceil(np.abs(a - b).max() / step - 1e-6)) if a.size else 0
        else:
            moved = 0 if np.array_equal(a, b) else MAX_STEPS + 1
        steps = max(steps, moved)
        sqnr = min(sqnr, compare_outputs(f"output{i}", a.astype(np.float64),
                                         b.astype(np.float64)).sqnr_db)
    return steps, sqnr


def _output_steps(model: Model) -> list[float | None]:
    """One int8 step of each output: its scale, or for a float output written by DEQUANTIZE the
    scale of the DEQUANTIZE's input."""
    graph = model.main
    producers = {id(t): op for op in graph.operators for t in op.outputs}
    out: list[float | None] = []
    for t in graph.outputs:
        src: Tensor | None = t
        op = producers.get(id(t))
        if t.dtype.is_float and op is not None and op.type == "DEQUANTIZE":
            src = op.inputs[0]
        q = src.quant if src is not None else None
        out.append(float(np.asarray(q.scale).ravel()[0]) if q is not None else None)
    return out
