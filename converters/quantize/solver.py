"""The weight solver of the export in progress: what the weight formats (`weights`, `lowbit`)
ask for codes when the method is "gptq". `sdk.converters.quantize.gptq.WeightSolver` sets it
for the length of an export (`ACTIVE`); the formats read it with `active_solver()` and so need
nothing of gptq itself."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Protocol

import numpy as np

#: a group's scale from its (error-updated) weight columns
ScaleFn = Callable[[np.ndarray], np.ndarray]


class Solver(Protocol):
    def solve(self, w: np.ndarray, axis: int, qmin: int, qmax: int, *,
              scales: np.ndarray | None = None, group_size: int = 0,
              group_scale: ScaleFn | None = None, refit: bool = True
              ) -> tuple[np.ndarray, np.ndarray] | None:
        """(scales, codes shaped like w), or None (the caller rounds to nearest)."""
        ...


ACTIVE: contextvars.ContextVar[Solver | None] = contextvars.ContextVar(
    "edgesdk_gptq_solver", default=None)


def active_solver() -> Solver | None:
    """The solver of the export in progress, if it asked for GPTQ."""
    return ACTIVE.get()


__all__ = ["ACTIVE", "ScaleFn", "Solver", "active_solver"]
