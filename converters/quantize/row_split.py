"""A layer's output channels split between two weight formats (mixed precision within a layer).

One large layer can hold most of a model's weights (openWakeWord's alexa head: one
FULLY_CONNECTED, 88 %): per-layer formats then jump from INT8 to INT4 over most of the file at
once, and nothing lies between. Split instead: the rows (output channels) whose rounding costs
least take the smaller format, the rest keep the layer's own, chosen from the layer's
calibration-input Hessian (`row_costs`). In the file the layer becomes

    y_keep = OP(x, W[keep], b[keep])     # the layer's own format
    y_move = OP(x, W[move], b[move])     # the smaller format
    y      = GATHER(CONCATENATION([y_keep, y_move], -1), order, axis=-1)

which stock LiteRT runs (FULLY_CONNECTED and CONV_2D; the GATHER puts the channels back in
their order, so the consumers are unchanged). The first op keeps the layer's name and its
format; the second is named `<layer>/rows <format>` and has the smaller one. The three
activations take the layer's output range (a subset of rows stays within it), so the int8
CONCATENATION and GATHER move codes without rounding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from sdk.base.errors import ConversionError
from sdk.converters.ir import DType, Graph, Operator, Tensor
from sdk.converters.quantize.plan import LayerPrecision, PrecisionPlan, layer_name
from sdk.converters.quantize.rules import OP_RULES
from sdk.converters.quantize.weights import weight_format

#: the ops whose output channels can be split: weights [out, ...], channels last in the output
SPLIT_OPS = ("FULLY_CONNECTED", "CONV_2D")
#: bytes a split adds besides its rows' weights: the GATHER's INT32 indices (4 a channel) and
#: about this much for the two ops and three tensors in the flatbuffer
SPLIT_OVERHEAD_BYTES = 640


@dataclass(frozen=True)
class RowSplit:
    """The output channels `rows` of a layer take `weights` (the rest keep the layer's own)."""

    rows: tuple[int, ...]
    weights: str

    def describe(self) -> str:
        return f"{self.weights} x{len(self.rows)} rows"


def split_name(layer: str, split: RowSplit) -> str:
    """The plan name of the op holding a split's rows."""
    return f"{layer}/rows {split.weights}"


def row_costs(w: np.ndarray, hessian: np.ndarray | None, formats: Sequence[str],
              axis: int = 0) -> np.ndarray:
    """Each output channel's added output error in `formats[1]` over `formats[0]`:
    e H e^T with e the row's rounding error (H the layer's input Hessian; the identity
    without one)."""
    rows = np.moveaxis(np.asarray(w, np.float64), axis, 0).reshape(w.shape[axis], -1)
    out = []
    for f in formats[:2]:
        wf = weight_format(f)
        q = wf.quantize(np.asarray(w, np.float32), axis, wf.default_method)
        deq = np.asarray(q.quant.dequantize(q.values), np.float64).reshape(w.shape)
        err = np.moveaxis(deq, axis, 0).reshape(rows.shape) - rows
        if hessian is None or hessian.ndim != 2 or hessian.shape[0] != rows.shape[1]:
            out.append((err * err).sum(axis=1))
        else:
            out.append(np.einsum("ck,kl,cl->c", err, np.asarray(hessian, np.float64), err))
    return out[1] - out[0]


def rows_for(costs: np.ndarray, need_bytes: float, row_bytes_saved: float,
             channels: int) -> tuple[int, ...] | None:
    """The cheapest rows whose move frees `need_bytes` (with the split's overhead), or None
    where that takes half the layer or more (a whole-layer move is the better candidate)."""
    if row_bytes_saved <= 0:
        return None
    n = math.ceil((need_bytes + SPLIT_OVERHEAD_BYTES + 4 * channels) / row_bytes_saved)
    return cheapest_rows(costs, n, channels)


def cheapest_rows(costs: np.ndarray, n: int, channels: int) -> tuple[int, ...] | None:
    """The `n` rows of least cost, or None where that is none or half the layer or more."""
    if n < 1 or n * 2 > channels:
        return None
    return tuple(sorted(int(i) for i in np.argsort(costs, kind="stable")[:n]))


def split_rows(graph: Graph, splits: Mapping[str, RowSplit],
               ranges: dict[Tensor, tuple[float, float]]) -> dict[str, str]:
    """Rewrite each layer of `graph` named in `splits` (float, in place) as the module
    docstring says; `ranges` gains the new activations (the layer output's range).
    Returns {new op's name: its format}."""
    added: dict[str, str] = {}
    done = set()
    for op in list(graph.operators):
        name = layer_name(op)
        split = splits.get(name)
        if split is None:
            continue
        if op.type not in SPLIT_OPS:
            raise ConversionError(f"{op.label}: output channels of {op.type} cannot be split "
                                  f"(only {', '.join(SPLIT_OPS)})")
        rule = OP_RULES[op.type]
        assert rule.weight is not None
        w = op.inputs[rule.weight]
        if w is None or not w.is_constant:
            raise ConversionError(f"{op.label}: a row split needs constant weights")
        n = int(w.shape[0])
        move = sorted(set(split.rows))
        if not move or len(move) >= n or move[0] < 0 or move[-1] >= n:
            raise ConversionError(f"{op.label}: rows {move[:4]}... of {n} output channels "
                                  f"cannot be split off (1 to {n - 1} rows in [0, {n}))")
        moved = set(move)  # once: a set built per channel made this quadratic in channels
        keep = [i for i in range(n) if i not in moved]
        out = op.outputs[0]
        if out.shape and out.shape[-1] != n:
            raise ConversionError(f"{op.label}: output {out.name} does not end in its {n} "
                                  f"channels")
        bias = op.inputs[rule.bias] if rule.bias is not None and rule.bias < len(op.inputs) \
            else None
        wdata, bdata = w.numpy(), None if bias is None else bias.numpy()
        parts: list[Tensor] = []
        ops: list[Operator] = []
        for label, idx in (("", keep), (f"/rows {split.weights}", move)):
            wt = graph.constant(f"{w.name}{label or '/rows kept'}", wdata[idx], w.dtype)
            inputs = list(op.inputs)
            inputs[rule.weight] = wt
            if bias is not None and bdata is not None:
                assert rule.bias is not None
                inputs[rule.bias] = graph.constant(f"{bias.name}{label or '/rows kept'}",
                                                   bdata[idx], bias.dtype)
            y = graph.add_tensor(Tensor(graph.unique_name(f"{out.name}{label or '/rows kept'}"),
                                        (*out.shape[:-1], len(idx)), out.dtype))
            if out in ranges:
                ranges[y] = ranges[out]
            parts.append(y)
            if label:
                new = Operator(op.type, inputs, [y], dict(op.attrs), name=split_name(name, split),
                               version=op.version)
                added[new.name] = split.weights
                ops.append(new)
            else:
                op.inputs, op.outputs = inputs, [y]
                if not op.name:
                    op.name = name
                ops.append(op)
        joined = graph.add_tensor(Tensor(graph.unique_name(f"{out.name}/rows joined"),
                                         out.shape, out.dtype))
        if out in ranges:
            ranges[joined] = ranges[out]
        order = np.empty(n, np.int32)
        order[np.asarray(keep + move)] = np.arange(n, dtype=np.int32)
        indices = graph.constant(f"{out.name}/rows order", order, DType.INT32)
        axis = len(out.shape) - 1
        ops.append(Operator("CONCATENATION", parts, [joined],
                            {"axis": axis, "fused_activation_function": "NONE"}))
        ops.append(Operator("GATHER", [joined, indices], [out], {"axis": axis, "batch_dims": 0}))
        at = graph.operators.index(op)
        graph.operators[at:at + 1] = ops
        done.add(name)
    missing = sorted(set(splits) - done)
    if missing:
        raise ConversionError(f"row split: no layer named {', '.join(missing)}")
    return added


def apply(graph: Graph, plan: PrecisionPlan, ranges: dict[Tensor, tuple[float, float]]
          ) -> PrecisionPlan:
    """`split_rows` for `plan.row_splits` (what `quantize_int8` calls on its copy of the float
    model): the plan with the new ops' precisions (the smaller format, the layer's
    activations)."""
    by_name = {layer_name(op): op for op in graph.operators}
    acts = {name: plan.for_op(by_name[name]).activations for name in plan.row_splits
            if name in by_name}
    added = split_rows(graph, plan.row_splits, ranges)
    layers = dict(plan.layers)
    for name, split in plan.row_splits.items():
        layers[split_name(name, split)] = LayerPrecision(split.weights, acts.get(
            name, plan.default.activations))
    assert set(added) <= set(layers)
    return replace(plan, layers=layers)


__all__ = ["SPLIT_OPS", "SPLIT_OVERHEAD_BYTES", "RowSplit", "apply", "cheapest_rows", "row_costs",
           "rows_for", "split_name", "split_rows"]
