"""Constant folding and static shapes: the first pass over an ONNX graph.

With the graph inputs' shapes fixed, every node whose inputs are all constant (initializers,
Constant nodes, or values folded before it) is evaluated now, with the onnx package's reference
implementation, and becomes a constant. `Shape` and `Size` of a value with a static shape are
constants too, so the shape-computing subgraphs of PyTorch and Paddle exports (Shape, Gather,
Cast, Range, ConstantOfShape, Expand, Slice, Split, Unsqueeze, Concat...) disappear. Each node
that remains gets static output shapes from ONNX's own per-node shape inference, given the
constant inputs it reads.

Folding runs code the file chooses, so it is budgeted (`sdk.base.limits.LoadBudget`): before a node
is evaluated its attributes are checked (`validate`), the size of what it will make is worked
out from shape inference and checked against the folding budget (`fold_bytes`, in all), and so
is the arithmetic of the heavy ops; Loop and If run in our own interpreter (`control`), which
counts iterations and body nodes against `max_loop_iterations`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from sdk.base.errors import ConversionError, EdgeSDKError, ModelFormatError, UnsupportedOpError
from sdk.base.limits import LoadBudget, default_budget
from sdk.converters.onnx import branches, control
from sdk.converters.onnx.graph import Node, OnnxGraph, ValueInfo
from sdk.converters.onnx.loader import check_shape
from sdk.converters.onnx.order import topological
from sdk.converters.onnx.validate import check_node

# Constants larger than this are not handed to shape inference (it only needs small ones:
# shapes, axes, scales, pads); weights would just be copied for nothing.
_SHAPE_DATA_LIMIT = 4096

_NONDETERMINISTIC = frozenset({"RandomNormal", "RandomNormalLike", "RandomUniform",
                               "RandomUniformLike", "Multinomial", "Bernoulli"})


#: most multiply-adds one folded node may cost (the reference evaluator runs about 3e8/s)
FOLD_WORK_LIMIT = 1 << 28
#: ops onnx's reference evaluator computes with Python loops (about 10 us to 2 ms per output
#: value, measured): lower limits on their work (multiply-adds, or output values), ~1 s each
_SLOW_OPS = {"GridSample": 1 << 9, "DeformConv": 1 << 12, "RoiAlign": 1 << 12,
             "MaxRoiPool": 1 << 12, "NonMaxSuppression": 1 << 12, "Col2Im": 1 << 13,
             "Resize": 1 << 15, "Upsample": 1 << 15, "MaxUnpool": 1 << 16, "MaxPool": 1 << 17,
             "AveragePool": 1 << 17, "LpPool": 1 << 17, "ConvTranspose": 1 << 18,
             "CenterCropPad": 1 << 16, "STFT": 1 << 20}
#: ops whose output size shape inference cannot know, but which never make more than they read
_BOUNDED_BY_INPUTS = frozenset({
    "NonZero", "Unique", "Compress", "NonMaxSuppression", "TopK", "SequenceConstruct",
    "SequenceAt", "SequenceInsert", "SequenceErase", "SequenceLength", "SplitToSequence",
    "ConcatFromSequence", "Identity", "Optional", "OptionalGetElement", "OptionalHasElement",
    "StringNormalizer", "Shape", "Size", "Squeeze", "Unsqueeze", "Reshape", "Flatten",
    "Cast", "CastLike", "Transpose", "Slice", "GatherElements", "Concat", "Split", "Not",
    "Abs", "Neg"})


#: element-wise ops: one output, the broadcast of the inputs' shapes
_BROADCASTING = frozenset({
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Equal", "Less",
    "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Not", "Neg", "Abs", "Relu",
    "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Sign",
    "Mod", "BitShift", "Where", "Erf", "Sin", "Cos", "IsNaN", "IsInf", "Cast", "Clip"})


def input_dtype(value_info: Any, label: str) -> np.dtype:
    from onnx import helper

    elem = value_info.type.tensor_type.elem_type
    if not elem:
        return np.dtype(np.float32)
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"input {value_info.name!r} has an unknown element type {elem}",
                               path=label) from exc


def fold(model: Any, label: str, initializers: Mapping[str, np.ndarray],
         input_shapes: Mapping[str, tuple[int, ...]],
         is_supported: Callable[[Node], bool], supported: list[str],
         budget: LoadBudget | None = None) -> OnnxGraph:
    """Fold constants and fix shapes. Raises UnsupportedOpError for the first node that is
    neither foldable nor supported, naming the others the graph also lacks."""
    budget = budget or default_budget()
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                default=1)
    g = model.graph
    budget.check_count(f"{label}: graph nodes", len(g.node), budget.max_graph_items)
    values: dict[str, ValueInfo] = {n: ValueInfo.constant(a) for n, a in initializers.items()}
    declared = {vi.name: vi for vi in g.input}
    for name, shape in input_shapes.items():
        values[name] = ValueInfo(tuple(shape), input_dtype(declared[name], label))
    protos = topological(list(g.node), set(values), label)
    nodes = []
    for i, p in enumerate(protos):
        try:
            nodes.append(Node.from_proto(p, i))
        except EdgeSDKError:
            raise
        except Exception as exc:  # a malformed attribute (bad tensor, bad type)
            raise ModelFormatError(f"node {p.name or p.op_type!r} ({p.op_type}): malformed "
                                   f"attribute: {type(exc).__name__}: {exc}",
                                   path=label) from exc
    kept: list[Node] = []
    folder = Folder(opset, label, budget)
    queue, count = deque(nodes), len(nodes)
    producers = {o: n for n in nodes for o in n.outputs if o}
    checks: dict[str, branches.SelectCheck] = {}
    while queue:
        node = queue.popleft()
        try:
            branch = branches.expand(node, values, label, count)  # If, constant condition
            if branch is None and branches.runtime_condition(node, values, producers):
                branch, made = branches.select(node, values, label, count)
                checks.update((c.output, c) for c in made)
            if branch is not None:
                count += len(branch)
                budget.check_count(f"{label}: graph nodes (If branches inlined)", count,
                                   budget.max_graph_items)
                producers.update((o, n) for n in branch for o in n.outputs if o)
                queue.extendleft(reversed(branch))
                continue
            for out in node.outputs:
                if out in checks:
                    checks.pop(out).check(values, label)
            if _fold_or_infer(node, values, folder, is_supported, producers, supported,
                              label):
                kept.append(node)
        except EdgeSDKError:
            raise
        except Exception as exc:
            raise ConversionError(f"{label}: node {node.name!r} ({node.op_type}): "
                                  f"{type(exc).__name__}: {exc}") from exc
    graph_inputs = [vi.name for vi in g.input if vi.name in input_shapes]
    outputs = [o.name for o in g.output]
    return OnnxGraph(g.name or "main", kept, values, graph_inputs, outputs, opset, label)


def _fold_or_infer(node: Node, values: dict[str, ValueInfo], folder: Folder,
                   is_supported: Callable[[Node], bool], producers: Mapping[str, Node],
                   supported: list[str], label: str) -> bool:
    """Fold `node` into constants (False) or give its outputs static shapes (True: kept)."""
    ins = [values.get(n) if n else None for n in node.inputs]
    if any(n and v is None for n, v in zip(node.inputs, ins, strict=True)):
        missing = [n for n, v in zip(node.inputs, ins, strict=True) if n and v is None]
        raise ConversionError(f"{label}: node {node.name!r} ({node.op_type}) reads "
                              f"{missing}, which have no value")
    check_node(node, [v.shape if v is not None else None for v in ins], label)
    folded = folder.try_fold(node, ins, values)
    if folded is not None:
        for name, arr in zip(node.outputs, folded, strict=False):
            if name:
                values[name] = ValueInfo.constant(arr)
        return False
    if not is_supported(node):
        others = sorted({n.qualified_type for n in producers.values()
                         if not is_supported(n) and n.op_type != "Constant"}
                        - {node.qualified_type})
        detail = ""
        if node.op_type in _NONDETERMINISTIC:
            detail = "random ops are not converted"
        elif node.op_type == "If" and not node.domain:
            detail = branches.refusal(node, producers, values)
        elif all(v is not None for v in ins) and not node.domain:
            detail = "only supported when all its inputs are constant"
        if others:
            detail += ("; " if detail else "") + "the graph also uses " + ", ".join(others)
        raise UnsupportedOpError(node.qualified_type, node.name, supported, source=label,
                                 detail=detail)
    try:
        inferred = folder.infer(node, ins)
    except NotStatic as exc:
        raise _not_static(exc, node, ins, producers, values, label) from None
    for name, info in inferred.items():
        values[name] = info
    return True


class NotStatic(ConversionError):
    """A node's output shape does not follow from static shapes and constants."""


def _not_static(exc: NotStatic, node: Node, ins: Sequence[ValueInfo | None],
                producers: Mapping[str, Node], values: Mapping[str, ValueInfo],
                label: str) -> ConversionError:
    """Every input shape is static here, so a shape that is not comes from an input that is
    read as a size (a Reshape's shape, a Range's limit, ...) computed at run time: name it."""
    runtime = [(i, n) for i, (n, v) in enumerate(zip(node.inputs, ins, strict=True))
               if i > 0 and n and v is not None and not v.is_const and v.dtype.kind in "iu"]
    if not runtime:
        return exc
    i, name = runtime[0]
    origin = branches.runtime_origin(name, producers, values)
    settings = branches.settings(branches.model_inputs_of(name, producers, values), values)
    pairs = ", ".join(f"{n!r}: <value>" for n in settings)
    fix = (f"fix {settings} with constant_inputs={{{pairs}}}" if settings else
           "here it is computed from the data, which a static TFLite graph cannot follow")
    return NotStatic(f"{label}: node {node.name!r} ({node.op_type}): its output shape is not "
                     f"static: it depends on input {i} ({name!r}), {origin}, computed at run "
                     "time; sizes must fold to constants (from initializers, Constant nodes, "
                     f"static shapes and constant_inputs): {fix}")


def nbytes(value: Any) -> int:
    """Bytes held by a folded value (an array, or a sequence of them)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v) for v in value)
    return int(np.asarray(value).nbytes) if value is not None else 0


class Folder:
    """Evaluates constant nodes within one load's budget (bytes made, work, loop steps)."""

    def __init__(self, opset: int, label: str, budget: LoadBudget):
        self.opset = opset
        self.label = label
        self.budget = budget
        self.bytes_made = 0
        self.loop_steps = 0
        self._evaluators: dict[bytes, Any] = {}

    # ------------------------------------------------------------------ budget
    def where(self, node: Node) -> str:
        return f"node {node.name!r} ({node.op_type})"

    def spend_bytes(self, node: Node, n: int) -> None:
        self.bytes_made += n
        if self.bytes_made > self.budget.fold_bytes:
            raise ModelFormatError(
                f"{self.where(node)}: constant folding would make {self.bytes_made:,} bytes in "
                f"all, over the folding budget of {self.budget.fold_bytes:,} bytes (tied to the "
                "file's size; raise EDGESDK_MEMORY_BUDGET or pass budget= if the model is "
                "trusted)", path=self.label)

    def spend_loop_steps(self, node: Node, n: int) -> None:
        self.loop_steps += n
        if self.loop_steps > self.budget.max_loop_iterations:
            raise ModelFormatError(
                f"{self.where(node)}: folding its loop takes over "
                f"{self.budget.max_loop_iterations:,} steps (iterations x body nodes, nested "
                "loops included), the limit (LoadBudget.max_loop_iterations)", path=self.label)

    # ------------------------------------------------------------------ folding
    def try_fold(self, node: Node, ins: list[ValueInfo | None],
                 scope: Mapping[str, ValueInfo]) -> list[Any] | None:
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
        if control.has_subgraphs(node) and not control.outer_values_constant(node, scope):
            return None
        if node.op_type in ("Identity", "Dropout") and present:
            outs = [present[0].const]
            if node.op_type == "Dropout" and node.output_used(1):
                outs.append(np.ones(present[0].shape, dtype=bool))
            return outs
        return self.fold_node(node, ins, scope)

    def fold_node(self, node: Node, ins: list[ValueInfo | None],
                  scope: Mapping[str, ValueInfo]) -> list[Any]:
        """Evaluate one node whose inputs (and outer-scope reads) are all constant."""
        if node.op_type in ("Loop", "If"):
            results = control.run(self, node, ins, scope)
        elif control.has_subgraphs(node):
            raise ConversionError(f"{self.label}: {self.where(node)}: constant {node.op_type} "
                                  "nodes are not folded (Loop and If are)")
        else:
            self.check_before(node, ins)
            results = self.evaluate(node, ins)
        self.spend_bytes(node, sum(nbytes(r) for r in results))
        return results

    def check_before(self, node: Node, ins: list[ValueInfo | None]) -> None:
        """What evaluating `node` will make and cost, checked before it runs."""
        shapes = self.output_shapes(node, ins)
        if any(s is None for s in shapes):
            if node.op_type not in _BOUNDED_BY_INPUTS:
                raise ConversionError(
                    f"{self.label}: {self.where(node)}: cannot tell how large its constant "
                    "output would be before computing it, so it is not folded")
            need = sum(nbytes(v.const) for v in ins if v is not None) * 2
        else:
            need = sum(int(np.prod(s, dtype=object)) * 8 for s in shapes)  # type: ignore
        if self.bytes_made + need > self.budget.fold_bytes:
            self.spend_bytes(node, need)  # raises with the totals
        work = _work(node, ins, shapes)
        limit = _SLOW_OPS.get(node.op_type, FOLD_WORK_LIMIT)
        if node.op_type in _SLOW_OPS and not work:
            work = sum(int(np.prod(s, dtype=object)) for s in shapes if s is not None)
            if node.op_type == "NonMaxSuppression" and ins and ins[0] is not None:
                work = int(np.prod(ins[0].shape, dtype=object))
        if work > limit:
            raise ModelFormatError(
                f"{self.where(node)}: folding it takes about {work:,} steps (multiply-adds or "
                f"output values), over the limit of {limit:,} for {node.op_type}",
                path=self.label)

    def output_shapes(self, node: Node, ins: list[ValueInfo | None]
                      ) -> list[tuple[int, ...] | None]:
        if node.op_type in _BROADCASTING:  # cheaper than onnx's shape inference (loop bodies)
            try:
                shape = np.broadcast_shapes(*(v.shape for v in ins if v is not None))
            except ValueError as exc:
                raise ModelFormatError(f"{self.where(node)}: inputs of shapes "
                                       f"{[v.shape for v in ins if v is not None]} do not "
                                       "broadcast", path=self.label) from exc
            return [check_shape(shape, f"{self.where(node)}: the output", self.label)]
        try:
            types = self._infer_types(node, ins)
        except ConversionError:
            return [None]  # unknown: folded only if the op never makes more than it reads
        out = []
        for name, t in types.items():
            if name not in node.outputs:
                continue
            out.append(self._static_shape(node, name, t))
        if len(out) < len([o for o in node.outputs if o]):
            out.append(None)
        return out

    def _static_shape(self, node: Node, name: str, t: Any) -> tuple[int, ...] | None:
        if t is None or not t.HasField("tensor_type"):
            return None
        tt = t.tensor_type
        if not tt.HasField("shape") or any(not d.HasField("dim_value") for d in tt.shape.dim):
            return None
        return check_shape([d.dim_value for d in tt.shape.dim],
                           f"{self.where(node)}: output {name!r}", self.label)

    def evaluator(self, node: Node) -> Any:
        from onnx.reference import ReferenceEvaluator

        key = node.proto.SerializeToString()  # loop bodies run the same nodes again
        ev = self._evaluators.get(key)
        if ev is None:
            ev = ReferenceEvaluator(_one_node_model(node.proto, self.opset))
            self._evaluators[key] = ev
        return ev

    def evaluate(self, node: Node, ins: list[ValueInfo | None]) -> list[Any]:
        feeds = {n: v.const for n, v in zip(node.inputs, ins, strict=True)
                 if n and v is not None}
        try:
            results = self.evaluator(node).run(None, feeds)
        except Exception as exc:
            raise ConversionError(
                f"{self.label}: cannot fold constant node {node.name!r} ({node.op_type}): "
                f"{type(exc).__name__}: {exc}") from exc
        made = iter(r if isinstance(r, list) else np.asarray(r) for r in results)
        # the one-node model's outputs are the node's named ones: put them back in place
        return [next(made, None) if name else None for name in node.outputs]

    # ------------------------------------------------------------------ shapes
    def _infer_types(self, node: Node, ins: list[ValueInfo | None]) -> dict[str, Any]:
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
            try:
                elem = helper.np_dtype_to_tensor_dtype(v.dtype)
            except (KeyError, TypeError, ValueError):
                continue  # a sequence or an exotic type: shape inference goes without it
            types[name] = helper.make_tensor_type_proto(elem, list(v.shape))
            if v.is_const and v.const.size <= _SHAPE_DATA_LIMIT:  # type: ignore[union-attr]
                data[name] = numpy_helper.from_array(np.asarray(v.const), name)
        try:
            return dict(shape_inference.infer_node_outputs(
                schema, node.proto, types, data,
                opset_imports=[helper.make_opsetid("", self.opset)]))
        except Exception as exc:
            raise ConversionError(
                f"{self.label}: node {node.name!r} ({node.op_type}): shape inference failed: "
                f"{exc}") from exc

    def infer(self, node: Node, ins: list[ValueInfo | None]) -> dict[str, ValueInfo]:
        from onnx import helper

        if node.op_type in _BROADCASTING and not node.domain and node.op_type != "Cast" and \
                all(v is not None for v in ins[:1]):
            # element-wise: the broadcast of the inputs' shapes (ONNX's schemas of the ops
            # defined as functions, GreaterOrEqual and LessOrEqual, infer no shape at all)
            name = node.outputs[0] if node.outputs else ""
            shape = self.output_shapes(node, ins)[0]
            if name and shape is not None:
                return {name: ValueInfo(shape, _elementwise_dtype(node, ins))}
        out_types = self._infer_types(node, ins)
        result: dict[str, ValueInfo] = {}
        for name in node.outputs:
            if not name:
                continue
            t = out_types.get(name)
            if t is None or not t.HasField("tensor_type"):
                raise ConversionError(
                    f"{self.label}: node {node.name!r} ({node.op_type}): cannot infer the type "
                    f"of output {name!r}")
            shape = self._static_shape(node, name, t)
            if shape is None:
                raise NotStatic(
                    f"{self.label}: node {node.name!r} ({node.op_type}): the shape of output "
                    f"{name!r} is not static; fix the model's dynamic dimensions with "
                    "input_shapes={name: shape}")
            try:
                dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.tensor_type.elem_type))
            except (KeyError, TypeError, ValueError) as exc:
                raise ConversionError(
                    f"{self.label}: node {node.name!r} ({node.op_type}): output {name!r} has "
                    f"the unknown element type {t.tensor_type.elem_type}") from exc
            result[name] = ValueInfo(shape, dtype)
        return result


_BOOLEAN_RESULT = frozenset({"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
                             "And", "Or", "Xor", "Not", "IsNaN", "IsInf"})


def _elementwise_dtype(node: Node, ins: Sequence[ValueInfo | None]) -> np.dtype:
    """The element type of an element-wise op's output, from ONNX's type rules."""
    if node.op_type in _BOOLEAN_RESULT:
        return np.dtype(bool)
    if node.op_type == "Where" and len(ins) > 1 and ins[1] is not None:
        return ins[1].dtype
    first = next(v for v in ins if v is not None)
    return first.dtype


def _one_node_model(proto: Any, opset: int) -> Any:
    """`proto` alone in a model that imports the graph's opset. onnx's ReferenceEvaluator
    ignores `opsets=` for a bare NodeProto and runs the newest version of the op, so an
    opset-12 Unsqueeze (axes an attribute) ran as opset 13's (axes an input) and failed."""
    from onnx import TypeProto, helper

    names = [n for n in proto.input if n]
    graph = helper.make_graph([proto], "fold", [helper.make_value_info(n, TypeProto())
                                                for n in dict.fromkeys(names)],
                              [helper.make_value_info(n, TypeProto()) for n in proto.output
                               if n])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _work(node: Node, ins: Sequence[ValueInfo | None],
          out_shapes: Sequence[tuple[int, ...] | None]) -> int:
    """Multiply-adds of the ops whose cost is not linear in what they read and make."""
    op = node.op_type
    if not out_shapes or out_shapes[0] is None:
        return 0
    out = int(np.prod(out_shapes[0], dtype=object))
    shapes = [v.shape if v is not None else () for v in ins]
    if op in ("Conv", "ConvTranspose", "ConvInteger", "DeformConv") and len(shapes) > 1:
        w = shapes[1]
        if op == "ConvTranspose":  # weights [C_in, C_out / group, k...]: per output C_in / g
            per = int(np.prod(w, dtype=object)) // max(1, w[1] if len(w) > 1 else 1)
        else:
            per = int(np.prod(w[1:], dtype=object))
        return out * max(per, 1)
    if op in ("MatMul", "Gemm", "MatMulInteger", "QLinearMatMul", "Einsum") and shapes:
        a = shapes[0]
        k = a[-1] if a else 1
        if op == "Gemm" and int(node.attr("transA", 0)) and len(a) == 2:
            k = a[0]
        if op == "Einsum":
            return int(np.prod([np.prod(s, dtype=object) for s in shapes], dtype=object))
        return out * max(int(k), 1)
    kernel = node.attr("kernel_shape")
    if kernel:
        return out * int(np.prod(kernel, dtype=object))
    return 0
