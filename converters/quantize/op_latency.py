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


def op_times_ms(data: bytes, *, delegates: list[Any] | None = None,
                seconds: float = FILE_SECONDS) -> dict[str, tuple[str, float]]:
    """(op type, median ms) of each operator of the .tflite `data` run alone here, by
    `op_key`. Operators that cannot run alone, and those after `seconds`, are left out."""
    from sdk.run.litert import backend

    graph = read_tflite(data).main
    rng = np.random.default_rng(0)
    out: dict[str, tuple[str, float]] = {}
    start = time.perf_counter()
    for op in graph.operators:
        if time.perf_counter() - start > seconds:
            break
        if op.type in _SKIP or any(t is not None and t.is_variable for t in op.inputs):
            continue
        inputs = [t for t in op.inputs if t is not None and not t.is_constant]
        if not inputs or not op.outputs:
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
        except Exception:  # an operator LiteRT or the writer cannot take alone: not measured
            continue
        out[op_key(op)] = (op.type, 1000.0 * statistics.median(times))
    return out


__all__ = ["op_key", "op_times_ms"]
