"""Constant folding and static shapes: the first pass over an ONNX graph.

With the graph inputs' shapes fixed, every node whose inputs are all constant (initializers,
Constant nodes, or values folded before it) is evaluated now, with the onnx package's reference
implementation, and becomes a constant. `Shape` and `Size` of a value with a static shape are
constants too, so the shape-computing subgraphs of PyTorch and Paddle exports (Shape, Gather,
Cast, Range, ConstantOfShape, Expand, Slice, Split, Unsqueeze, Concat...) disappear. Each node
that remains gets static output shapes from ONNX's own per-node shape inference, given the
constant inputs it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from sdk.converters.onnx.graph import Node, OnnxGraph, ValueInfo
from sdk.errors import ConversionError, ModelFormatError, UnsupportedOpError

# Constants larger than this are not handed to shape inference (it only needs small ones:
# shapes, axes, scales, pads); weights would just be copied for nothing.
_SHAPE_DATA_LIMIT = 4096

_NONDETERMINISTIC = frozenset({"RandomNormal", "RandomNormalLike", "RandomUniform",
                               "RandomUniformLike", "Multinomial", "Bernoulli"})


def topological(nodes: list[Any], available: set[str], label: str) -> list[Any]:
    """NodeProtos in an order where each runs after its inputs' producers (stable; ONNX files
    are usually sorted already, which takes one pass)."""
    ready = set(available) | {""}
    order: list[Any] = []
    pending = list(nodes)
    while pending:
        rest = []
        for n in pending:
            if all(x in ready for x in n.input):
                order.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            stuck = rest[0]
            raise ModelFormatError(f"the graph has a cycle through node "
                                   f"{stuck.name or stuck.op_type!r}", path=label)
        pending = rest
    return order


def fold(model: Any, label: str, initializers: Mapping[str, np.ndarray],
         input_shapes: Mapping[str, tuple[int, ...]],
         is_supported: Callable[[Node], bool], supported: list[str]) -> OnnxGraph:
    """Fold constants and fix shapes. Raises UnsupportedOpError for the first node that is
    neither foldable nor supported, naming the others the graph also lacks."""
    from onnx import helper

    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                default=1)
    g = model.graph
    values: dict[str, ValueInfo] = {n: ValueInfo.constant(a) for n, a in initializers.items()}
    declared = {vi.name: vi for vi in g.input}
    for name, shape in input_shapes.items():
        elem = declared[name].type.tensor_type.elem_type
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(elem)) if elem else np.dtype(np.float32)
        values[name] = ValueInfo(tuple(shape), dtype)
    protos = topological(list(g.node), set(values), label)
    nodes = [Node.from_proto(p, i) for i, p in enumerate(protos)]
    kept: list[Node] = []
    folder = _Folder(opset, label)
    for node in nodes:
        ins = [values.get(n) if n else None for n in node.inputs]
        if any(n and v is None for n, v in zip(node.inputs, ins, strict=True)):
            missing = [n for n, v in zip(node.inputs, ins, strict=True) if n and v is None]
            raise ConversionError(f"{label}: node {node.name!r} ({node.op_type}) reads "
                                  f"{missing}, which have no value")
        folded = folder.try_fold(node, ins)
        if folded is not None:
            for name, arr in zip(node.outputs, folded, strict=False):
                if name:
                    values[name] = ValueInfo.constant(arr)
            continue
        if not is_supported(node):
            others = sorted({n.qualified_type for n in nodes if not is_supported(n)}
                            - {node.qualified_type})
            detail = ""
            if node.op_type in _NONDETERMINISTIC:
                detail = "random ops are not converted"
            elif all(v is not None for v in ins) and not node.domain:
                detail = "only supported when all its inputs are constant"
            if others:
                detail += ("; " if detail else "") + "the graph also uses " + ", ".join(others)
            raise UnsupportedOpError(node.qualified_type, node.name, supported, source=label,
                                     detail=detail)
        for name, info in folder.infer(node, ins).items():
            values[name] = info
        kept.append(node)
    graph_inputs = [vi.name for vi in g.input if vi.name in input_shapes]
    outputs = [o.name for o in g.output]
    return OnnxGraph(g.name or "main", kept, values, graph_inputs, outputs, opset, label)


class _Folder:
    def __init__(self, opset: int, label: str):
        self.opset = opset
        self.label = label

    def try_fold(self, node: Node, ins: list[ValueInfo | None]) -> list[np.ndarray] | None:
        if node.domain:
            return None
        if node.op_type in ("Shape", "Size") and ins and ins[0] is not None:
            shape = np.array(ins[0].shape, dtype=np.int64)
            if node.op_type == "Size":
                return [np.array(int(np.prod(shape)), dtype=np.int64)]
            start = int(node.attr("start", 0))
            end = node.attr("end")
            return [shape[start:None if end is None else int(end)]]
        if node.op_type in _NONDETERMINISTIC:
            return None
        present = [v for v in ins if v is not None]
        if not all(v.is_const for v in present):
            return None
        if node.op_type in ("Identity", "Dropout"):
            outs = [present[0].const]
            if node.op_type == "Dropout" and node.output_used(1):
                outs.append(np.ones(present[0].shape, dtype=bool))
            return outs  # type: ignore[return-value]
        return self.evaluate(node, ins)

    def evaluate(self, node: Node, ins: list[ValueInfo | None]) -> list[np.ndarray]:
        from onnx.reference import ReferenceEvaluator

        feeds = {n: v.const for n, v in zip(node.inputs, ins, strict=True)
                 if n and v is not None}
        try:
            evaluator = ReferenceEvaluator(node.proto, opsets={"": self.opset})
            results = evaluator.run(None, feeds)
        except Exception as exc:
            raise ConversionError(
                f"{self.label}: cannot fold constant node {node.name!r} ({node.op_type}): "
                f"{type(exc).__name__}: {exc}") from exc
        return [np.asarray(r) for r in results]

    def infer(self, node: Node, ins: list[ValueInfo | None]) -> dict[str, ValueInfo]:
        from onnx import TypeProto, defs, helper, numpy_helper, shape_inference

        if node.domain:
            raise ConversionError(f"{self.label}: node {node.name!r}: no shape inference for "
                                  f"domain {node.domain!r}")
        try:
            schema = defs.get_schema(node.op_type, self.opset, "")
        except Exception as exc:
            raise ConversionError(f"{self.label}: node {node.name!r}: ONNX opset {self.opset} "
                                  f"has no {node.op_type}") from exc
        types: dict[str, TypeProto] = {}
        data: dict[str, Any] = {}
        for name, v in zip(node.inputs, ins, strict=True):
            if not name or v is None:
                continue
            elem = helper.np_dtype_to_tensor_dtype(v.dtype)
            types[name] = helper.make_tensor_type_proto(elem, list(v.shape))
            if v.is_const and v.const.size <= _SHAPE_DATA_LIMIT:  # type: ignore[union-attr]
                data[name] = numpy_helper.from_array(np.asarray(v.const), name)
        try:
            out_types = shape_inference.infer_node_outputs(
                schema, node.proto, types, data,
                opset_imports=[helper.make_opsetid("", self.opset)])
        except Exception as exc:
            raise ConversionError(
                f"{self.label}: node {node.name!r} ({node.op_type}): shape inference failed: "
                f"{exc}") from exc
        result: dict[str, ValueInfo] = {}
        for name in node.outputs:
            if not name:
                continue
            t = out_types.get(name)
            if t is None or not t.HasField("tensor_type"):
                raise ConversionError(
                    f"{self.label}: node {node.name!r} ({node.op_type}): cannot infer the type "
                    f"of output {name!r}")
            tt = t.tensor_type
            dims = [d for d in tt.shape.dim] if tt.HasField("shape") else None
            if dims is None or any(not d.HasField("dim_value") for d in dims):
                raise ConversionError(
                    f"{self.label}: node {node.name!r} ({node.op_type}): the shape of output "
                    f"{name!r} is not static; fix the model's dynamic dimensions with "
                    "input_shapes={name: shape}")
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type))
            result[name] = ValueInfo(tuple(int(d.dim_value) for d in dims), dtype)
        return result
