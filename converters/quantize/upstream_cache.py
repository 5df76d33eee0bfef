"""The partly rounded model's tensors, per calibration sample, computed incrementally.

GPTQ / AdaRound's sequential compensation (`gptq.WeightSolver`) needs, for each layer in
execution order, the layer's input in the float model whose earlier layers are already rounded.
Running that model from its graph inputs for every layer costs O(layers^2) op executions: on
PP-OCRv4's detector (61 solved layers, 640 x 640 inputs) 3,041 LiteRT invokes of a model prefix
took 117 of 213 s of an INT4 GPTQ export. `UpstreamCache` keeps, per sample, the values of the
tensors a later layer may still read (the live frontier: each has a consumer not yet run) and
runs only the ops between that frontier and the tensor asked for, as a small LiteRT model cut
out of the graph (builtin kernels, batch 1). Rounding a layer's weights invalidates what its
outputs feed (`invalidate`); a layer's own input never depends on its weights, so in execution
order nothing cached is dropped and every op runs about once per sample in the whole export.

The values are those of the builtin kernels op by op, as in a run of the whole prefix (batch 1;
the whole-prefix run batched samples where the model allows, whose sums may differ in the last
bits). Values are kept while they fit in `budget_bytes`; a tensor past it is not kept (a later
layer that reads it recomputes it from further up). Graphs with variables or side-effect ops
are not cut (`supported`): the caller runs the whole prefix as before.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from sdk.base.errors import ConversionError
from sdk.base.samples import SampleSet
from sdk.converters.ir import Model, Operator, Tensor

if TYPE_CHECKING:
    from sdk.run.runner import LiteRTRunner


@dataclass
class UpstreamCache:
    """Per-sample values of `model`'s tensors (its main graph), `model` being changed in place
    between requests only through weights that `invalidate` is told of."""

    model: Model
    samples: SampleSet
    budget_bytes: int
    #: id(tensor) -> one array per sample (samples 0 .. len - 1), raw dtype, batch axis kept
    values: dict[int, list[np.ndarray]] = field(default_factory=dict)
    #: ids of ops whose outputs were computed from valid inputs since the last invalidation
    done: set[int] = field(default_factory=set)
    invokes: int = 0
    _producers: dict[int, Operator] = field(default_factory=dict)
    _consumers: dict[int, list[Operator]] = field(default_factory=dict)
    _inputs: dict[int, int] = field(default_factory=dict)  # id(graph input) -> sample array

    def __post_init__(self) -> None:
        graph = self.model.main
        self._producers = {id(t): op for op in graph.operators for t in op.outputs}
        for op in graph.operators:
            for t in op.inputs:
                if t is not None:
                    self._consumers.setdefault(id(t), []).append(op)
        self._inputs = {id(t): i for i, t in enumerate(graph.inputs)}

    @staticmethod
    def supported(model: Model) -> bool:
        """Whether the main graph can be cut anywhere: no variables, no side-effect ops, no
        ops that call other subgraphs."""
        graph = model.main
        return len(model.graphs) == 1 and not any(t.is_variable for t in graph.tensors) and \
            not any(op.format_extras.get("side_effects") for op in graph.operators)

    @property
    def held_bytes(self) -> int:
        return sum(v.nbytes for vs in self.values.values() for v in vs)

    # ------------------------------------------------------------------ requests
    def tensor_values(self, tensor: Tensor, count: int) -> list[np.ndarray]:
        """`tensor`'s value for samples 0 .. count - 1 (batch axis kept), computed from the
        cached frontier by a cut-out model; raises ConversionError where the graph cannot be cut
        there, and LiteRT's ValueError / RuntimeError where it cannot run the cut (the caller
        then runs the whole prefix)."""
        count = min(count, len(self.samples))
        cached = self.values.get(id(tensor))
        if cached is not None and len(cached) >= count:
            return cached[:count]
        if id(tensor) in self._inputs:
            return [self._value(tensor, i) for i in range(count)]
        ops, frontier = self._cone(tensor, count)
        if not ops:
            raise ConversionError(f"{tensor.name!r} has no producer and no value")
        outputs = [tensor] + [t for t in self._live(ops) if t is not tensor]
        runner, in_index, out_index = self._runner(ops, frontier, outputs)
        results: dict[int, list[np.ndarray]] = {id(t): [] for t in outputs}
        for i in range(count):
            for t in frontier:
                runner.interp.set_tensor(in_index[id(t)], self._value(t, i))
            runner.interp.invoke()
            self.invokes += 1
            for t in outputs:
                results[id(t)].append(np.array(runner.interp.get_tensor(out_index[id(t)]),
                                               copy=True))
        self.done.update(id(op) for op in ops)
        self._keep(outputs, results)
        return results[id(tensor)]

    def invalidate(self, ops: list[Operator]) -> None:
        """`ops`' weights (or biases) changed: drop every value computed from their outputs."""
        stack = [t for op in ops for t in op.outputs]
        seen: set[int] = set()
        while stack:
            t = stack.pop()
            if id(t) in seen:
                continue
            seen.add(id(t))
            self.values.pop(id(t), None)
            for op in self._consumers.get(id(t), []):
                self.done.discard(id(op))
                stack.extend(op.outputs)
        for op in ops:
            self.done.discard(id(op))

    # ------------------------------------------------------------------ internals
    def _value(self, t: Tensor, i: int) -> np.ndarray:
        if id(t) in self.values:
            return self.values[id(t)][i]
        spec_index = self._inputs[id(t)]
        spec, arr = self.samples.specs[spec_index], self.samples.arrays[spec_index]
        value = arr[i:i + 1] if spec.batched else arr[i]
        return np.ascontiguousarray(value)

    def _cone(self, tensor: Tensor, count: int) -> tuple[list[Operator], list[Tensor]]:
        """(ops to run, in graph order; the tensors they read from the cache or the graph
        inputs) to compute `tensor` for `count` samples."""
        need: set[int] = set()
        frontier: dict[int, Tensor] = {}
        stack = [tensor]
        while stack:
            t = stack.pop()
            cached = self.values.get(id(t))
            if t is not tensor and cached is not None and len(cached) >= count:
                frontier[id(t)] = t
                continue
            op = self._producers.get(id(t))
            if op is None:
                if id(t) in self._inputs:
                    frontier[id(t)] = t
                    continue
                if t.is_constant:
                    continue
                raise ConversionError(f"{t.name!r} has no producer and is no graph input")
            if id(op) in need:
                continue
            need.add(id(op))
            stack.extend(x for x in op.inputs if x is not None and not x.is_constant)
        ops = [op for op in self.model.main.operators if id(op) in need]
        return ops, list(frontier.values())

    def _live(self, ops: list[Operator]) -> list[Tensor]:
        """The tensors `ops` compute that an op outside them (not yet run) still reads."""
        inside = {id(op) for op in ops}
        out = []
        for op in ops:
            for t in op.outputs:
                readers = self._consumers.get(id(t), [])
                if any(id(r) not in inside and id(r) not in self.done for r in readers):
                    out.append(t)
        return out

    def _runner(self, ops: list[Operator], frontier: list[Tensor], outputs: list[Tensor]
                ) -> tuple[LiteRTRunner, dict[int, int], dict[int, int]]:
        from sdk.converters.tflite import serialize
        from sdk.run.runner import LiteRTRunner

        graph = self.model.main
        sub = copy.copy(graph)
        sub.operators = ops
        sub.inputs, sub.outputs = list(frontier), list(outputs)
        sub.keep_referenced_tensors()  # a new list: the model's graph keeps its own
        cut = copy.copy(self.model)
        cut.graphs = [sub]
        cut.signatures = []
        data, maps = serialize(cut)
        runner = LiteRTRunner(data, reference=True)
        index = {id(t): i for t, i in maps[0].items()}
        return runner, {id(t): index[id(t)] for t in frontier}, \
            {id(t): index[id(t)] for t in outputs}

    def _keep(self, outputs: list[Tensor], results: dict[int, list[np.ndarray]]) -> None:
        """Cache the new values, then drop those no op still to run reads; values past the
        budget are not kept."""
        for t in outputs:
            self.values[id(t)] = results[id(t)]
        for key in list(self.values):
            if key in self._inputs:
                continue
            readers = self._consumers.get(key, [])
            if not any(id(r) not in self.done for r in readers):
                del self.values[key]
        held = self.held_bytes
        for t in reversed(outputs):
            if held <= self.budget_bytes:
                break
            vs = self.values.pop(id(t), None)
            if vs is not None:
                held -= sum(v.nbytes for v in vs)


__all__ = ["UpstreamCache"]
