"""The ONNX graph as the importer works on it: decoded nodes, and for every value its static
shape, element type and (when it is a constant) its data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: our own node types (pattern rewrites) live in this domain; they are never in an ONNX file
INTERNAL_DOMAIN = "edgesdk"


@dataclass
class ValueInfo:
    """One ONNX value: static shape, numpy element type, data when constant."""

    shape: tuple[int, ...]
    dtype: np.dtype
    const: np.ndarray | None = None

    @classmethod
    def constant(cls, data: np.ndarray) -> ValueInfo:
        arr = np.asarray(data)
        return cls(tuple(int(d) for d in arr.shape), arr.dtype, arr)

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_const(self) -> bool:
        return self.const is not None


@dataclass(eq=False)
class Node:
    op_type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    domain: str = ""
    proto: Any = None

    @classmethod
    def from_proto(cls, proto: Any, index: int) -> Node:
        from onnx import helper, numpy_helper

        attrs: dict[str, Any] = {}
        for a in proto.attribute:
            value = helper.get_attribute_value(a)
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            elif isinstance(value, list) and value and isinstance(value[0], bytes):
                value = [v.decode("utf-8", "replace") for v in value]
            elif hasattr(value, "data_type") and hasattr(value, "dims"):  # TensorProto
                value = numpy_helper.to_array(value)
            attrs[a.name] = value
        domain = "" if proto.domain == "ai.onnx" else proto.domain
        name = proto.name or f"{proto.op_type}_{index}"
        return cls(proto.op_type, name, list(proto.input), list(proto.output), attrs, domain,
                   proto)

    @property
    def qualified_type(self) -> str:
        return f"{self.domain}.{self.op_type}" if self.domain else self.op_type

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def input(self, i: int) -> str | None:
        """The name of input `i`, or None when absent (past the end or the empty name)."""
        if i < len(self.inputs) and self.inputs[i]:
            return self.inputs[i]
        return None

    def output_used(self, i: int) -> bool:
        return i < len(self.outputs) and bool(self.outputs[i])

    def __repr__(self) -> str:
        return f"Node({self.qualified_type} {self.name!r}: {self.inputs} -> {self.outputs})"


@dataclass
class OnnxGraph:
    """The graph after constant folding: only nodes that compute on model inputs remain."""

    name: str
    nodes: list[Node]
    values: dict[str, ValueInfo]
    inputs: list[str]
    outputs: list[str]
    opset: int
    label: str

    def consumers(self) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = {}
        for node in self.nodes:
            for name in node.inputs:
                if name:
                    out.setdefault(name, []).append(node)
        return out

    def producers(self) -> dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs if o}

    def const(self, name: str | None) -> np.ndarray | None:
        if not name:
            return None
        v = self.values.get(name)
        return None if v is None else v.const

    def fresh(self, base: str) -> str:
        """A value name not used yet."""
        if base not in self.values:
            return base
        i = 1
        while f"{base}_{i}" in self.values:
            i += 1
        return f"{base}_{i}"
