"""`read_onnx`: an ONNX model -> the edgesdk IR (float, NHWC inside, TFLite builtin ops).

Four steps: load and check the file (`loader`); fix input shapes, fold constants and shape
subgraphs, infer static shapes (`fold`); rewrite known patterns (`patterns`); lower every node to
TFLite ops with layout tracking (`lowering`, `ops`), then clean up (`passes`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

from sdk.base.errors import ConversionError, EdgeSDKError, UnsupportedOpError
from sdk.base.limits import LoadBudget, default_budget
from sdk.converters.ir import Model, SignatureDef
from sdk.converters.onnx import passes, patterns
from sdk.converters.onnx.constant_inputs import ConstantInputs, bind, check_disjoint
from sdk.converters.onnx.fold import fold
from sdk.converters.onnx.graph import Node, OnnxGraph
from sdk.converters.onnx.loader import (
    InputShapes,
    initializer_arrays,
    load_model,
    resolve_input_shapes,
)
from sdk.converters.onnx.lowering import Lowering, ir_dtype
from sdk.converters.onnx.ops import handler_for, supported_ops

IOLayout = Literal["nchw", "nhwc"]


def read_onnx(model: str | os.PathLike[str] | Any | bytes,
              input_shapes: InputShapes | None = None, *,
              io_layout: IOLayout = "nchw",
              external_data_dir: str | os.PathLike[str] | None = None,
              budget: LoadBudget | None = None,
              constant_inputs: ConstantInputs | None = None) -> Model:
    """Convert an ONNX model (a path, the file's bytes or an `onnx.ModelProto`) to the IR.

    `input_shapes` fixes dynamic dimensions: {input name: shape}, or {None: shape} for a model
    with one input. A dynamic batch dimension left open becomes 1.

    `constant_inputs` fixes inputs that are settings, not data, to one value ({name: value},
    e.g. silero-vad's sample rate `{"sr": 16000}`): each becomes a constant, whatever it selects
    (an `If` branch) folds, and the converted model has no such input.

    `io_layout="nchw"` (default) keeps ONNX's inputs and outputs exactly (same arrays as
    onnxruntime; a TRANSPOSE at each image input and output). `io_layout="nhwc"` makes image
    inputs and outputs (those the converted graph holds channels-last) channels-last instead,
    with no boundary transposes; `model.format_extras["onnx_io_perms"]` records the permutation
    applied to each.

    `external_data_dir`: where tensors stored outside the model file are read from (default:
    the model file's folder; bytes and ModelProto input have none, and external data is then an
    error). References must stay inside that folder. `budget` (default
    `sdk.base.limits.default_budget()`) bounds what the file may make the importer allocate and
    compute. Every problem with the file is an `EdgeSDKError` (ModelFormatError,
    ConversionError, UnsupportedOpError) naming the file and, where known, the node.
    """
    if io_layout not in ("nchw", "nhwc"):
        raise ValueError(f"io_layout must be 'nchw' or 'nhwc', not {io_layout!r}")
    if not isinstance(model, (str, os.PathLike, bytes, bytearray, memoryview)) and \
            type(model).__name__ != "ModelProto":
        raise TypeError(f"read_onnx takes a path, bytes or an onnx.ModelProto, not "
                        f"{type(model).__name__}")
    budget = budget or default_budget()
    stage = _Stage()
    try:
        return _convert(model, input_shapes, io_layout, external_data_dir, budget, stage,
                        constant_inputs)
    except EdgeSDKError:
        raise
    except Exception as exc:  # a bug or a library error on a malformed model: never escapes raw
        raise ConversionError(f"{stage.label}: {stage.where()}: {type(exc).__name__}: "
                              f"{exc}") from exc


@dataclass
class _Stage:
    """Where the conversion is, for errors that reach read_onnx's boundary."""

    label: str = "<onnx model>"
    step: str = "reading the model"
    node: str | None = None

    def where(self) -> str:
        return self.step + (f", node {self.node!r}" if self.node else "")


def _convert(model: Any, input_shapes: InputShapes | None, io_layout: IOLayout,
             external_data_dir: str | os.PathLike[str] | None, budget: LoadBudget,
             stage: _Stage, constant_inputs: ConstantInputs | None = None) -> Model:
    proto, label, size = load_model(model, external_data_dir, budget)
    stage.label = label
    budget = budget.for_file(size)
    initializers = initializer_arrays(proto, label, budget)
    if constant_inputs:
        check_disjoint(constant_inputs, input_shapes, label)
        initializers.update(bind(proto, initializers, constant_inputs, label))
    shapes = resolve_input_shapes(proto, initializers, input_shapes, label)
    stage.step = "folding constants"
    og = fold(proto, label, initializers, shapes, _is_supported, supported_ops(), budget)
    stage.step = "rewriting patterns"
    patterns.rewrite(og)
    _check_supported(og)
    stage.step = "lowering"
    ctx = lower(og, budget)
    graph = ctx.graph
    stage.step = "optimising the converted graph"
    passes.optimize(graph)
    io_perms: dict[str, dict[str, tuple[int, ...]]] = {"inputs": {}, "outputs": {}}
    if io_layout == "nhwc":
        io_perms = passes.channels_last_io(graph)
        graph.prune()
    try:
        graph.validate()
    except ValueError as exc:
        raise ConversionError(f"{label}: internal error, the converted graph is not well "
                              f"formed: {exc}") from exc
    signature = SignatureDef("serving_default", 0,
                             inputs={t.name: t for t in graph.inputs},
                             outputs={t.name: t for t in graph.outputs})
    producer = " ".join(p for p in (proto.producer_name, proto.producer_version) if p)
    description = f"edgesdk: converted from ONNX (opset {og.opset}" + (
        f", {producer})" if producer else ")")
    return Model(graphs=[graph], description=description, signatures=[signature],
                 format_extras={"onnx_io_perms": io_perms, "onnx_source": label})


def _is_supported(node: Node) -> bool:
    """Convertible, or an op a pattern rewrite may absorb (checked again after rewriting)."""
    return handler_for(node) is not None or (not node.domain and node.op_type in
                                             patterns.ABSORBED)


def _check_supported(og: OnnxGraph) -> None:
    for node in og.nodes:
        if handler_for(node) is None:
            raise UnsupportedOpError(node.qualified_type, node.name, supported_ops(),
                                     source=og.label,
                                     detail=patterns.ABSORBED.get(node.op_type, ""))


def lower(og: OnnxGraph, budget: LoadBudget | None = None) -> Lowering:
    ctx = Lowering(og, budget)
    for name in og.inputs:
        info = og.values[name]
        ctx.add_input(name, info.shape, ir_dtype(info.dtype, name))
    for node in og.nodes:
        ctx.node = node
        handler = handler_for(node)
        if handler is None:
            raise ctx.unsupported("no converter")
        try:
            handler(ctx, node)
        except EdgeSDKError:
            raise
        except Exception as exc:  # a malformed node the handler did not expect
            raise ConversionError(f"{og.label}: node {node.name!r} ({node.op_type}) cannot be "
                                  f"converted: {type(exc).__name__}: {exc}") from exc
    ctx.node = None
    for name in og.outputs:
        info = og.values.get(name)
        if info is None:
            raise ConversionError(f"{og.label}: graph output {name!r} has no value")
        if info.const is not None:
            raise ConversionError(f"{og.label}: graph output {name!r} is a constant (it does "
                                  "not depend on any input); nothing to convert")
        t = ctx.tensor(name, tuple(range(info.rank)))
        if t in ctx.graph.inputs or t in ctx.graph.outputs:
            t = _copy(ctx, t, name)
        _claim_name(ctx, t, name)
        ctx.graph.outputs.append(t)
    return ctx


def _copy(ctx: Lowering, t: Any, name: str) -> Any:
    """A distinct tensor equal to `t` (an output that is also an input or another output)."""
    out = ctx.new(f"{name}/copy", tuple(t.shape), t.dtype)
    ctx.emit("RESHAPE", [t, ctx.int32(f"{name}/copy_shape", t.shape)], [out])
    return out


def _claim_name(ctx: Lowering, t: Any, name: str) -> None:
    """Give the IR tensor of graph output `name` exactly that name."""
    if t.name == name:
        return
    for other in ctx.graph.tensors:
        if other.name == name and other is not t:
            other.name = f"{name}/internal"
    t.name = name
