"""What each operator of a .tflite file costs here: a quick local run, one operator at a time.

The precision planner chooses by a per-MAC table of LiteRT's kernels (`planner.KERNEL_NS`),
measured on one host; on another CPU its ratios can be wrong in sign (int8 depthwise ~18x
slower than float on an Intel Xeon, faster on the AMD EPYC the table came from). What the
report prints a kept layer costs comes from here instead (`planner.measured_latency`): the
plain and the chosen file cut into one-operator models (as `sdk.devices.runners.layers` does
for `sdk.profile`), each run alone in LiteRT (default kernels: XNNPACK where it takes the op,
one thread) on random inputs of its types, its median time kept by the name of its first
output tensor. Isolated times leave out what operators share inside a whole graph: the sum
differs from an end-to-end run (the report prints that too, measured on the whole files).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sdk.converters.ir import Graph, Model
from sdk.converters.tflite.reader import read_tflite
from sdk.converters.tflite.writer import to_tflite_bytes

#: timed invokes per operator at most, and at least this many ...
RUNS = 7
MIN_RUNS = 3
#: ... within this many seconds per operator
OP_SECONDS = 0.05
#: the whole file's measurement stops after this many seconds (the rest: not measured)
FILE_SECONDS = 30.0
#: operators LiteRT cannot run alone (control flow, variables)
_SKIP = ("WHILE", "IF", "CALL_ONCE", "ASSIGN_VARIABLE", "READ_VARIABLE", "VAR_HANDLE")


def op_key(op: Any) -> str:
    """The name an operator is known by in a written file: its first output tensor's (TFLite
    operators have no names of their own)."""
    return op.outputs[0].name if op.outputs else ""


def _feed(detail: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    shape = [max(int(d), 1) for d in detail["shape"]]
    dtype = np.dtype(detail["dtype"])
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = max(int(info.min), -128), min(int(info.max), 127)
        return rng.integers(lo, hi + 1, size=shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


#: `OpTimes.left_out` reasons that make a file's operator sum incomplete (the operator runs in
#: the file but was not timed); the others (`_SKIP`, no input to feed) are the file's structure
INCOMPLETE = ("time bound", "failed")


@dataclass
class OpTimes(Mapping[str, tuple[str, float]]):
    """(op type, median ms) by `op_key` of the operators of a file that were timed, and the
    operators that were not, with why: the sum over the file lacks those left out for a
    reason in `INCOMPLETE` (`incomplete`)."""

    times: dict[str, tuple[str, float]] = field(default_factory=dict)
    #: op_key -> (op type, why not timed: "time bound", "failed: <error>", "cannot run alone")
    left_out: dict[str, tuple[str, str]] = field(default_factory=dict)

    def __getitem__(self, key: str) -> tuple[str, float]:
        return self.times[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.times)

    def __len__(self) -> int:
        return len(self.times)

    def incomplete(self) -> dict[str, tuple[str, str]]:
        """The operators left out that the file runs (so its sum lacks them)."""
        return {k: v for k, v in self.left_out.items() if v[1].startswith(INCOMPLETE)}


def op_times_ms(data: bytes, *, delegates: list[Any] | None = None,
                seconds: float = FILE_SECONDS) -> OpTimes:
    """(op type, median ms) of each operator of the .tflite `data` run alone here, by
    `op_key`. Operators that cannot run alone (by kind, or LiteRT or the writer refused them)
    and those after `seconds` are left out, each named with why (`OpTimes.left_out`)."""
    from sdk.run.litert import backend

    graph = read_tflite(data).main
    rng = np.random.default_rng(0)
    out = OpTimes()
    start = time.perf_counter()
    for op in graph.operators:
        if time.perf_counter() - start > seconds:
            out.left_out[op_key(op)] = (op.type, "time bound")
            continue
        if op.type in _SKIP or any(t is not None and t.is_variable for t in op.inputs):
            out.left_out[op_key(op)] = (op.type, "cannot run alone")
            continue
        inputs = [t for t in op.inputs if t is not None and not t.is_constant]
        if not inputs or not op.outputs:
            out.left_out[op_key(op)] = (op.type, "cannot run alone")
            continue
        tensors = list(dict.fromkeys([*(t for t in op.inputs if t is not None), *op.outputs]))
        try:
            blob = to_tflite_bytes(Model(graphs=[Graph(
                name="op", tensors=tensors, operators=[op], inputs=inputs,
                outputs=list(op.outputs))]))
            interp = backend().interpreter(model_content=blob, num_threads=1,
                                           delegates=delegates)
            interp.allocate_tensors()
            for d in interp.get_input_details():
                interp.set_tensor(d["index"], _feed(d, rng))
            interp.invoke()  # warm-up
            times: list[float] = []
            for _ in range(RUNS):
                t0 = time.perf_counter()
                interp.invoke()
                times.append(time.perf_counter() - t0)
                if len(times) >= MIN_RUNS and sum(times) > OP_SECONDS:
                    break
        except Exception as e:  # LiteRT or the writer cannot take it alone: named, not timed
            out.left_out[op_key(op)] = (op.type, f"failed: {type(e).__name__}: {e}"[:200])
            continue
        out.times[op_key(op)] = (op.type, 1000.0 * statistics.median(times))
    return out


__all__ = ["INCOMPLETE", "OpTimes", "op_key", "op_times_ms"]
