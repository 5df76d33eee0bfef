"""Resource budgets for loading untrusted model files.

A model file is hostile until proven otherwise: a few hundred bytes can declare tensors of
gigabytes, constant folds that materialise a gigabyte, or loops that never end. Every loader
(read_tflite, read_edge, the ONNX importer, the native .edge runtime) checks what it is about to
allocate or compute against one budget, and fails with a `ModelFormatError` naming the tensor,
node or table and the limit, instead of exhausting the machine.

The budget is user-settable:
- in Python, `LoadBudget(memory_bytes=..., ...)` passed where a loader takes `budget=`, or the
  process-wide default from `default_budget()`;
- from the environment, `EDGESDK_MEMORY_BUDGET` (bytes, or with a K/M/G/T suffix: `2G`), which
  sets the default for Python and native loaders alike (edge-run also takes `--memory-budget`).

Limits tied to the file's size catch what an absolute budget would let through: a file cannot
legitimately hold more tables, tensors or ops than it has bytes to describe them, and constant
data that a loader makes from a small file (folding) may grow only by a bounded factor.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace

from sdk.base.errors import ModelFormatError

#: Default memory budget: the most bytes one load may materialise (tensors, folded constants,
#: activation arena). Large enough for real edge models (a 640x640 detector's arena is tens of MB).
DEFAULT_MEMORY_BYTES = 2 << 30
#: Folded constants may grow to this many times the file's size (or FOLD_FLOOR_BYTES, if larger).
FOLD_GROWTH = 16
FOLD_FLOOR_BYTES = 64 << 20
#: Most loop steps a loader evaluates while importing (ONNX Loop / If folding: iterations x
#: body nodes, nested loops included; one step costs ~0.3 ms in onnx's reference evaluator).
DEFAULT_MAX_LOOP_ITERATIONS = 1 << 12
#: Most nodes / tensors the importer may create in all, whatever the file says.
DEFAULT_MAX_GRAPH_ITEMS = 1 << 20

ENV_VAR = "EDGESDK_MEMORY_BUDGET"
_SIZE = re.compile(r"^\s*(\d+)\s*([kKmMgGtT]?)[iI]?[bB]?\s*$")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """'2G' -> 2147483648; plain digits are bytes. Raises ValueError on anything else."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (write bytes, or a number with K, M, G or T)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


@dataclass(frozen=True)
class LoadBudget:
    """What one load of one file may cost. `file_bytes` ties the per-file limits to its size."""

    memory_bytes: int = DEFAULT_MEMORY_BYTES
    max_loop_iterations: int = DEFAULT_MAX_LOOP_ITERATIONS
    max_graph_items: int = DEFAULT_MAX_GRAPH_ITEMS
    file_bytes: int | None = None

    def for_file(self, file_bytes: int) -> LoadBudget:
        return replace(self, file_bytes=int(file_bytes))

    @property
    def fold_bytes(self) -> int:
        """Most bytes of constants that folding may make for this file."""
        if self.file_bytes is None:
            return self.memory_bytes
        return min(self.memory_bytes, max(FOLD_FLOOR_BYTES, FOLD_GROWTH * self.file_bytes))

    def check_bytes(self, what: str, nbytes: int, *, limit: int | None = None,
                    path: str | None = None) -> None:
        """Raise if `what` would take more than `limit` (default: the memory budget) bytes."""
        cap = self.memory_bytes if limit is None else limit
        if nbytes > cap:
            raise ModelFormatError(
                f"{what} needs {nbytes:,} bytes, over the load budget of {cap:,} bytes "
                f"(raise it with {ENV_VAR}=<size> or LoadBudget(memory_bytes=...) if the model "
                "is trusted)", path=path)

    def check_count(self, what: str, count: int, limit: int, *, path: str | None = None) -> None:
        if count > limit:
            raise ModelFormatError(f"{what}: {count:,} is over the limit of {limit:,}", path=path)


def default_budget() -> LoadBudget:
    """The process-wide budget: `EDGESDK_MEMORY_BUDGET` if set, else the defaults."""
    raw = os.environ.get(ENV_VAR)
    if not raw:
        return LoadBudget()
    try:
        return LoadBudget(memory_bytes=parse_size(raw))
    except ValueError as exc:
        raise ModelFormatError(f"{ENV_VAR}: {exc}") from None
