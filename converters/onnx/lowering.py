"""The state of one conversion: the IR graph being built and where each ONNX value lives in it.

Each ONNX value is produced once, in some axis order (its "home" perm, see `layout`). An op that
needs the value in another order asks `tensor(name, perm)`; the first such request emits a
TRANSPOSE (or a RESHAPE when only unit dimensions move) and later ones reuse it. Layout-neutral
ops keep their input's order, so transposes appear only where an op's semantics need them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sdk.base.errors import ConversionError, ModelFormatError, UnsupportedOpError
from sdk.base.limits import LoadBudget, default_budget
from sdk.converters.ir import DType, Graph, Operator, Tensor
from sdk.converters.onnx import layout
from sdk.converters.onnx.graph import Node, OnnxGraph, ValueInfo
from sdk.converters.onnx.layout import Perm
from sdk.converters.onnx.registry import supported_ops


def ir_dtype(dtype: np.dtype, where: str = "") -> DType:
    """The IR type that holds an ONNX element type: floats compute in float32, 64-bit integers
    become int32 (what TFLite's index and shape operands use)."""
    dt = np.dtype(dtype)
    if dt in (np.float16, np.float32, np.float64) or dt.name == "bfloat16":
        return DType.FLOAT32
    if dt == np.bool_:
        return DType.BOOL
    if dt in (np.int64, np.uint64, np.int32, np.uint32):
        return DType.INT32
    if dt == np.int16:
        return DType.INT16
    if dt == np.int8:
        return DType.INT8
    if dt == np.uint8:
        return DType.UINT8
    raise ConversionError(f"{where}: element type {dt} is not supported")


def ir_array(data: np.ndarray, where: str = "") -> np.ndarray:
    """Constant data in its IR type (see `ir_dtype`); int64 values must fit int32."""
    arr = np.asarray(data)
    target = ir_dtype(arr.dtype, where)
    if target is DType.INT32 and arr.dtype != np.int32 and arr.size:
        lo, hi = np.iinfo(np.int32).min, np.iinfo(np.int32).max
        if arr.min() < lo or arr.max() > hi:
            raise ConversionError(f"{where}: integer constant does not fit int32 "
                                  f"(range {arr.min()}..{arr.max()})")
    return np.ascontiguousarray(arr.astype(target.numpy, copy=False))


#: ops whose first registered version in LiteRT's op resolver is not 1
_MIN_VERSION = {"BROADCAST_TO": 2}

#: TFLite's kernels for these types are quantised ones (they need scales and zero points, and
#: some abort without them): only data movement may touch such tensors in a float graph
_QUANTISED_TYPES = (DType.INT8, DType.UINT8, DType.INT16)
_DATA_MOVEMENT = frozenset({"CAST", "RESHAPE", "TRANSPOSE", "GATHER", "STRIDED_SLICE", "SPLIT",
                            "SPLIT_V", "CONCATENATION", "TILE", "BROADCAST_TO"})


class Lowering:
    """Builds the IR graph for one ONNX graph."""

    def __init__(self, og: OnnxGraph, budget: LoadBudget | None = None):
        self.og = og
        self.budget = budget or default_budget()
        self.items = 0  # IR tensors and operators made, against budget.max_graph_items
        self.const_bytes = 0  # constant data made, against budget.memory_bytes
        self.graph = Graph(name=og.name)
        self.home: dict[str, tuple[Tensor, Perm]] = {}
        self._views: dict[tuple[str, Perm], Tensor] = {}
        self._consts: dict[tuple[str, Perm], Tensor] = {}
        self._producers: dict[str, Node] | None = None  # for errors, made on first use
        self._names: set[str] = set()
        self._next: dict[str, int] = {}
        self.node: Node | None = None

    # ------------------------------------------------------------------ ONNX values
    def info(self, name: str) -> ValueInfo:
        return self.og.values[name]

    def shape(self, name: str) -> tuple[int, ...]:
        return self.og.values[name].shape

    def rank(self, name: str) -> int:
        return len(self.og.values[name].shape)

    def const(self, name: str | None) -> np.ndarray | None:
        return self.og.const(name)

    def is_const(self, name: str | None) -> bool:
        return self.const(name) is not None

    def perm(self, name: str) -> Perm:
        """The order a value is held in (constants: ONNX order; they are permuted on use)."""
        if name in self.home:
            return self.home[name][1]
        return layout.identity(self.rank(name))

    def temp_value(self, base: str, shape: tuple[int, ...], dtype: Any = np.float32) -> str:
        """A new intermediate ONNX-level value (for ops lowered to several IR ops)."""
        name = self.og.fresh(base)
        self.og.values[name] = ValueInfo(tuple(int(d) for d in shape), np.dtype(dtype))
        return name

    def const_value(self, base: str, data: np.ndarray) -> str:
        name = self.og.fresh(base)
        self.og.values[name] = ValueInfo.constant(np.asarray(data))
        return name

    # ------------------------------------------------------------------ errors
    @property
    def label(self) -> str:
        return self.node.name if self.node is not None else ""

    def unsupported(self, detail: str) -> UnsupportedOpError:
        node = self.node
        assert node is not None
        return UnsupportedOpError(node.qualified_type, node.name, supported_ops(),
                                  source=self.og.label, detail=detail)

    def check_alloc(self, what: str, nbytes: int) -> None:
        """Raise before making `nbytes` of constant data (counted against the budget)."""
        self.const_bytes += int(nbytes)
        node = f"node {self.label!r} ({self.node.op_type}): " if self.node else ""
        self.budget.check_bytes(f"{node}{what} (constants made while converting, in all)",
                                self.const_bytes, path=self.og.label)

    def count_items(self, n: int = 1) -> None:
        self.items += n
        if self.items > self.budget.max_graph_items:
            node = f" (at node {self.label!r})" if self.node else ""
            raise ModelFormatError(f"the converted graph would have over "
                                   f"{self.budget.max_graph_items:,} tensors and operators"
                                   f"{node}, the limit (LoadBudget.max_graph_items)",
                                   path=self.og.label)

    def require_const(self, name: str | None, what: str) -> np.ndarray:
        value = self.const(name)
        if value is None:
            from sdk.converters.onnx.branches import runtime_origin

            origin = ""
            if name and name in self.og.values:
                if self._producers is None:
                    self._producers = self.og.producers()
                origin = f" ({name!r} is {runtime_origin(name, self._producers, self.og.values)})"
            raise self.unsupported(f"{what} must be a constant (an initializer, or computed "
                                   f"only from constants and static shapes){origin}")
        return value

    # ------------------------------------------------------------------ IR tensors
    def _unique(self, base: str) -> str:
        name = base
        i = self._next.get(base, 1)  # where the search for `base` stopped last time
        while name in self._names:
            name = f"{base}_{i}"
            i += 1
        self._next[base] = i
        self._names.add(name)
        return name

    def new(self, base: str, shape: tuple[int, ...], dtype: DType = DType.FLOAT32) -> Tensor:
        self.count_items()
        return self.graph.add_tensor(Tensor(self._unique(base), tuple(shape), dtype))

    def constant(self, base: str, data: np.ndarray, dtype: DType | None = None) -> Tensor:
        arr = ir_array(data, self.label) if dtype is None else np.asarray(data, dtype.numpy)
        dt = DType.from_numpy(arr.dtype) if dtype is None else dtype
        arr = np.ascontiguousarray(arr)
        self.count_items()
        self.check_alloc(f"constant {base!r}", arr.nbytes)
        return self.graph.add_tensor(Tensor(self._unique(base), arr.shape, dt, data=arr))

    def int32(self, base: str, values: Any) -> Tensor:
        """An int32 constant (shapes, axes, pads, multiples): values past int32 are an error."""
        try:
            arr = np.asarray(values, dtype=np.int64)
        except OverflowError:
            arr = None
        if arr is None or (arr.size and (arr.min() < -(1 << 31) or arr.max() >= 1 << 31)):
            message = f"{base}: values that do not fit int32 ({values!r:.200})"
            if self.node is None:
                raise ConversionError(f"{self.og.label}: {message}")
            raise self.unsupported(message)
        return self.constant(base, arr.astype(np.int32), DType.INT32)

    def add_input(self, name: str, shape: tuple[int, ...], dtype: DType) -> Tensor:
        t = self.new(name, shape, dtype)
        self.graph.inputs.append(t)
        self.define(name, t, layout.identity(len(shape)))
        return t

    def define(self, name: str, tensor: Tensor, perm: Perm) -> None:
        """Value `name` is now held by `tensor` in `perm` order."""
        expected = layout.permute(self.shape(name), perm)
        if tuple(tensor.shape) != expected:
            raise ConversionError(
                f"{self.og.label}: internal error converting node {self.label!r}: value {name!r} "
                f"held as {list(tensor.shape)}, expected {list(expected)} (perm {perm})")
        self.home[name] = (tensor, tuple(perm))

    def tensor(self, name: str, perm: Perm | None = None) -> Tensor:
        """The IR tensor holding value `name` in `perm` order (default: its home order)."""
        info = self.info(name)
        if info.const is not None:
            p = layout.identity(info.rank) if perm is None else tuple(perm)
            key = (name, p)
            if key not in self._consts:
                self._consts[key] = self.constant(name, np.transpose(info.const, p))
            return self._consts[key]
        if name not in self.home:
            raise ConversionError(f"{self.og.label}: internal error: value {name!r} used before "
                                  "it was converted")
        t, home = self.home[name]
        if perm is None or tuple(perm) == home:
            return t
        p = tuple(perm)
        key = (name, p)
        if key not in self._views:
            rel = layout.relative(home, p)
            shape = layout.permute(info.shape, p)
            tag = "nchw" if layout.is_identity(p) else "nhwc" if p == layout.channels_last(
                len(p)) else "t" + "".join(map(str, p))
            out = self.new(f"{name}/{tag}", shape, t.dtype)
            if layout.moves_only_unit_dims(t.shape, rel):
                self.emit("RESHAPE", [t, self.int32(f"{out.name}/shape", shape)], [out])
            else:
                self.emit("TRANSPOSE", [t, self.int32(f"{out.name}/perm", rel)], [out])
            self._views[key] = out
        return self._views[key]

    def cost(self, name: str, perm: Perm) -> int:
        """1 when getting `name` in `perm` order takes a real TRANSPOSE not emitted yet."""
        if self.is_const(name) or name not in self.home:
            return 0
        t, home = self.home[name]
        p = tuple(perm)
        if p == home or (name, p) in self._views:
            return 0
        return 0 if layout.moves_only_unit_dims(t.shape, layout.relative(home, p)) else 1

    # ------------------------------------------------------------------ IR ops
    def emit(self, op_type: str, inputs: list[Tensor | None], outputs: list[Tensor],
             **attrs: Any) -> Operator:
        if op_type not in _DATA_MOVEMENT and any(
                t is not None and not t.is_constant and t.dtype in _QUANTISED_TYPES
                for t in inputs):
            raise self.unsupported(
                "arithmetic on int8/uint8/int16 tensors (TFLite's kernels for those types are "
                "quantised ones); cast to float first")
        self.count_items()
        op = Operator(op_type, list(inputs), list(outputs), dict(attrs), name=self.label,
                      version=_MIN_VERSION.get(op_type, 1))
        self.graph.operators.append(op)
        return op

    def reshape(self, t: Tensor, shape: tuple[int, ...], base: str | None = None) -> Tensor:
        shape = tuple(int(d) for d in shape)
        if tuple(t.shape) == shape:
            return t
        out = self.new(base or f"{t.name}/reshape", shape, t.dtype)
        self.emit("RESHAPE", [t, self.int32(f"{out.name}/shape", shape)], [out])
        return out
