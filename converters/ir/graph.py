"""The model IR: tensors, operators, graphs (subgraphs) and the model that holds them.

Layout is NHWC as in TFLite. Operators name their type with TFLite's builtin operator names
(`CONV_2D`, `FULLY_CONNECTED`, ...) or `CUSTOM` plus a `custom_code`; attributes are a dict with
snake_case keys (`stride_w`, `fused_activation_function`), enum-valued attributes by name
(`padding="SAME"`). Operators refer to tensors by object, not index; writers number them.

Everything a particular file format needs only to reproduce itself exactly (TFLite's options
union type, sparsity, ...) lives in a `format_extras` dict that other writers ignore.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sdk.converters.ir.dtypes import DType
from sdk.converters.ir.quant import QuantParams


@dataclass(eq=False)
class Tensor:
    """A value in a graph. Constant tensors carry `data` (numpy, unpacked for sub-byte types)."""

    name: str
    shape: tuple[int, ...]
    dtype: DType
    data: np.ndarray | bytes | None = None
    quant: QuantParams | None = None
    #: shape with -1 where a dimension is dynamic; None when equal to `shape`
    shape_signature: tuple[int, ...] | None = None
    is_variable: bool = False
    format_extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.shape = tuple(int(d) for d in self.shape)
        self.dtype = DType(self.dtype)
        if self.shape_signature is not None:
            self.shape_signature = tuple(int(d) for d in self.shape_signature)
            if self.shape_signature == self.shape:
                self.shape_signature = None

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def num_elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        """Bytes the tensor occupies when stored (packed for sub-byte types)."""
        if isinstance(self.data, bytes):
            return len(self.data)
        return (self.num_elements * self.dtype.bits + 7) // 8

    @property
    def is_dynamic(self) -> bool:
        return self.shape_signature is not None and any(d < 0 for d in self.shape_signature)

    def numpy(self) -> np.ndarray:
        """The constant data as an array of the IR's numpy type for this dtype."""
        if self.data is None:
            raise ValueError(f"tensor {self.name!r} is not a constant")
        if isinstance(self.data, bytes):
            raise TypeError(f"tensor {self.name!r} of type {self.dtype.name} holds raw bytes")
        return self.data

    def __repr__(self) -> str:
        kind = "const " if self.is_constant else ""
        q = " quantized" if self.quant is not None else ""
        return f"Tensor({self.name!r}, {kind}{self.dtype.name}{list(self.shape)}{q})"


@dataclass(eq=False)
class Operator:
    """One node. Missing optional inputs are None (TFLite's -1)."""

    type: str
    inputs: list[Tensor | None]
    outputs: list[Tensor]
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    version: int = 1
    custom_code: str | None = None
    custom_options: bytes | None = None
    format_extras: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How errors and reports name this node: its name, or its type and first output."""
        if self.name:
            return self.name
        out = self.outputs[0].name if self.outputs else "?"
        kind = self.custom_code if self.type == "CUSTOM" and self.custom_code else self.type
        return f"{kind}:{out}"

    def __repr__(self) -> str:
        ins = ", ".join(t.name if t is not None else "-" for t in self.inputs)
        outs = ", ".join(t.name for t in self.outputs)
        kind = f"CUSTOM[{self.custom_code}]" if self.type == "CUSTOM" else self.type
        return f"Operator({kind}: {ins} -> {outs})"


@dataclass(eq=False)
class Graph:
    """A subgraph: its tensors in storage order, operators in execution order, inputs, outputs."""

    name: str = ""
    tensors: list[Tensor] = field(default_factory=list)
    operators: list[Operator] = field(default_factory=list)
    inputs: list[Tensor] = field(default_factory=list)
    outputs: list[Tensor] = field(default_factory=list)
    format_extras: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ building
    def add_tensor(self, tensor: Tensor) -> Tensor:
        self.tensors.append(tensor)
        return tensor

    def constant(self, name: str, data: np.ndarray, dtype: DType | None = None,
                 quant: QuantParams | None = None) -> Tensor:
        """Add a constant tensor holding `data`."""
        arr = np.asarray(data)
        dt = DType.from_numpy(arr.dtype) if dtype is None else DType(dtype)
        arr = np.ascontiguousarray(arr.astype(dt.numpy, copy=False))
        return self.add_tensor(Tensor(self.unique_name(name), arr.shape, dt, data=arr, quant=quant))

    def unique_name(self, base: str) -> str:
        taken = {t.name for t in self.tensors}
        if base not in taken:
            return base
        for i in itertools.count(1):
            candidate = f"{base}_{i}"
            if candidate not in taken:
                return candidate
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ queries
    def producers(self) -> dict[Tensor, Operator]:
        return {t: op for op in self.operators for t in op.outputs}

    def consumers(self) -> dict[Tensor, list[Operator]]:
        out: dict[Tensor, list[Operator]] = {}
        for op in self.operators:
            for t in op.inputs:
                if t is not None:
                    out.setdefault(t, []).append(op)
        return out

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.operators:
            key = f"CUSTOM:{op.custom_code}" if op.type == "CUSTOM" else op.type
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    def referenced_tensors(self) -> Iterator[Tensor]:
        """Every tensor used by an op or as graph input/output, each once, in first-use order."""
        seen: set[int] = set()
        for t in itertools.chain(self.inputs, self.outputs,
                                 (t for op in self.operators for t in (*op.inputs, *op.outputs))):
            if t is not None and id(t) not in seen:
                seen.add(id(t))
                yield t

    # ------------------------------------------------------------------ edits
    def replace_uses(self, old: Tensor, new: Tensor) -> None:
        """Make every consumer (and graph output) of `old` read `new` instead."""
        for op in self.operators:
            op.inputs = [new if t is old else t for t in op.inputs]
        self.outputs = [new if t is old else t for t in self.outputs]

    def prune(self) -> None:
        """Drop operators whose outputs nobody needs and tensors nobody references."""
        needed = {id(t) for t in self.outputs}
        keep: list[Operator] = []
        for op in reversed(self.topological_order()):
            if any(id(t) in needed for t in op.outputs) or op.format_extras.get("side_effects"):
                keep.append(op)
                needed.update(id(t) for t in op.inputs if t is not None)
        keep.reverse()
        self.operators = keep
        self.keep_referenced_tensors()

    def keep_referenced_tensors(self) -> None:
        """`tensors` (a new list): those the inputs, outputs and operators reference, in their
        order, then the referenced ones never registered (built by passes) at the end."""
        used = {id(t) for t in self.referenced_tensors()}
        self.tensors = [t for t in self.tensors if id(t) in used]
        registered = {id(t) for t in self.tensors}
        self.tensors.extend(t for t in self.referenced_tensors() if id(t) not in registered)

    def topological_order(self) -> list[Operator]:
        """Operators sorted so each runs after the producers of its inputs (stable)."""
        producers = self.producers()
        order: list[Operator] = []
        state: dict[int, int] = {}  # 1 = visiting, 2 = done

        def visit(op: Operator) -> None:
            mark = state.get(id(op))
            if mark == 2:
                return
            if mark == 1:
                raise ValueError(f"graph {self.name!r} has a cycle through {op.label}")
            state[id(op)] = 1
            for t in op.inputs:
                if t is not None and t in producers:
                    visit(producers[t])
            state[id(op)] = 2
            order.append(op)

        for op in self.operators:
            visit(op)
        return order

    def validate(self) -> None:
        """Check the graph is well formed: every non-constant input is produced or a graph input,
        each tensor has at most one producer, and operators are in execution order."""
        produced: set[int] = {id(t) for t in self.inputs}
        writers: dict[int, Operator] = {}
        for op in self.operators:
            for t in op.inputs:
                if t is None or t.is_constant or t.is_variable:
                    continue
                if id(t) not in produced:
                    raise ValueError(
                        f"graph {self.name!r}: {op.label} reads {t.name!r} before anything "
                        "produces it")
            for t in op.outputs:
                if id(t) in writers:
                    raise ValueError(
                        f"graph {self.name!r}: tensor {t.name!r} is written by both "
                        f"{writers[id(t)].label} and {op.label}")
                writers[id(t)] = op
                produced.add(id(t))
        for t in self.outputs:
            if id(t) not in produced and not t.is_constant:
                raise ValueError(f"graph {self.name!r}: output {t.name!r} is never produced")


@dataclass(eq=False)
class SignatureDef:
    """A named entry point (TFLite signature): input/output names mapped to tensors."""

    key: str
    graph_index: int
    inputs: dict[str, Tensor]
    outputs: dict[str, Tensor]


@dataclass(eq=False)
class Model:
    graphs: list[Graph]
    description: str = ""
    version: int = 3
    #: named metadata blobs (TFLite: `metadata` entries pointing at buffers)
    metadata: dict[str, bytes] = field(default_factory=dict)
    signatures: list[SignatureDef] = field(default_factory=list)
    format_extras: dict[str, Any] = field(default_factory=dict)

    @property
    def main(self) -> Graph:
        """The entry graph (subgraph 0)."""
        return self.graphs[0]

    def op_counts(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for g in self.graphs:
            for k, v in g.op_counts().items():
                total[k] = total.get(k, 0) + v
        return dict(sorted(total.items()))

    def all_operators(self) -> Iterable[Operator]:
        for g in self.graphs:
            yield from g.operators
