"""Running the float model over calibration samples with every intermediate tensor kept, within
a memory budget, and handing each batch's tensors to a reducer as read-only views.

LiteRT's builtin kernels with `preserve_all_tensors` keep every intermediate of a run: the arena
of one invoke holds all of them at once, so a batch of B samples needs B times what one sample
needs (basic-pitch's CQT front end: 338 MiB a sample, and a run peaks at twice that; at
LiteRTRunner's batch of 32, 21 GB). The sweep measures what one sample keeps after the first run
and plans around the budget (`sdk.base.limits`: `EDGESDK_MEMORY_BUDGET`, 2 GiB by default):

- samples per invoke: the runner's batch (when the model's batch axis is dynamic and batching
  gives the same results; `LiteRTRunner.check_batching` already cuts it to the budget), cut so
  that a run's peak (`PEAK_FACTOR` times the tensors it keeps) stays within the budget; a single
  sample over the budget is a `CalibrationError` that names the largest tensors;
- interpreters: up to `workers` (default 2, at most the CPU count), each holding its own arena,
  while the budget allows; one invokes the next batch while the caller reduces the last one
  (LiteRT releases the GIL while it runs). Batches are reduced in sample order whatever the
  number of interpreters, so sums accumulate in the same order.

Every pass over the samples uses the same batches, so a second pass sees bit for bit what the
first one saw. `invocations` counts interpreter runs.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from sdk.base.errors import CalibrationError
from sdk.base.limits import ENV_VAR, default_budget
from sdk.base.samples import SampleSet
from sdk.run.runner import PEAK_FACTOR, LiteRTRunner

#: reads tensor `index` of the batch being reduced (a view: valid only during the call)
Reader = Callable[[int], np.ndarray]
Reducer = Callable[[Reader, int], None]

#: interpreters run side by side by default
DEFAULT_WORKERS = 2


@dataclass(frozen=True)
class SweepPlan:
    """How the samples are fed: decided after the first run."""

    batch: int
    workers: int
    #: bytes one sample's run keeps (every non-constant tensor of the model)
    bytes_per_sample: int
    budget_bytes: int

    def describe(self) -> str:
        return (f"{self.batch} sample(s) per invoke, {self.workers} interpreter(s), "
                f"{self.bytes_per_sample / 2**20:.1f} MiB of tensors per sample, budget "
                f"{self.budget_bytes / 2**20:.0f} MiB")


class FloatSweep:
    """The float model (`data`, a .tflite flatbuffer) over `samples`, every tensor kept.

    `constants`: interpreter indices of constant tensors (not counted as run memory).
    `xnnpack`: run in XNNPACK, reading graph outputs (the caller made every tensor it reads
    one) instead of the builtin kernels' preserved intermediates."""

    def __init__(self, data: bytes, samples: SampleSet, *, constants: set[int] | None = None,
                 budget_bytes: int | None = None, workers: int | None = None,
                 xnnpack: bool = False):
        # xnnpack: `data` makes every tensor to be read a graph output (XNNPACK keeps outputs)
        self._make = lambda batch: LiteRTRunner(data, reference=not xnnpack,
                                                preserve_all_tensors=not xnnpack,
                                                batch_size=batch)
        self.samples = samples
        self.constants = constants or set()
        self.budget = int(budget_bytes if budget_bytes is not None
                          else default_budget().memory_bytes)
        self.max_workers = max(1, workers if workers is not None
                               else min(DEFAULT_WORKERS, os.cpu_count() or 1))
        first = self._make(32)
        self.runners = [first]
        self.invocations = 0
        self.plan: SweepPlan | None = None
        self._batches: list[tuple[int, list[np.ndarray]]] | None = None
        if first.batch_size > 1 and len(samples) > 1 and samples.batchable:
            # a pair and two single runs; then the interpreter holds one sample's tensors
            first.check_batching(samples)
            self.invocations += 3
        else:
            first.batch_size = 1
        self._batch = first.batch_size if samples.batchable else 1
        if self._batch > 1:
            self._batch = self._fit(self._measure(first, 1))

    # ------------------------------------------------------------------ planning
    def _measure(self, runner: LiteRTRunner, count: int) -> int:
        """Bytes per sample the last run of `runner` kept."""
        return max(1, runner.tensor_bytes(self.constants) // max(count, 1))

    def _fit(self, per_sample: int) -> int:
        """Samples per invoke for `per_sample` bytes each (raises if one is over budget)."""
        peak = per_sample * PEAK_FACTOR
        if peak > self.budget:
            raise CalibrationError(
                f"calibration keeps every intermediate tensor of a run: one sample keeps "
                f"{per_sample:,} bytes ({self._largest()}) and its run peaks near {peak:,}, "
                f"over the memory budget of {self.budget:,} bytes; raise it with "
                f"{ENV_VAR}=<size> if this machine has the memory, or calibrate on smaller "
                "inputs (input_shapes=)")
        return max(1, min(self._batch, self.budget // peak))

    def _largest(self) -> str:
        interp = self.runners[0].interp
        sizes = sorted(((int(np.prod(d["shape"])) * np.dtype(d["dtype"]).itemsize, d["name"])
                        for d in interp.get_tensor_details()
                        if d["index"] not in self.constants and len(d["shape"])),
                       reverse=True)[:3]
        return "largest: " + ", ".join(f"{name} {size / 2**20:.0f} MiB" for size, name in sizes)

    def _settle(self, per_sample: int) -> None:
        """After the first batch: how many interpreters the budget holds."""
        self._fit(per_sample)
        arena = per_sample * PEAK_FACTOR * self._batch
        workers = max(1, min(self.max_workers, self.budget // arena,
                             len(self._batches or ())))
        self.plan = SweepPlan(self._batch, workers, per_sample, self.budget)
        while len(self.runners) < workers:
            self.runners.append(self._make(self._batch))

    # ------------------------------------------------------------------ running
    def run(self, reduce: Reducer, on_batch: Callable[[int, int], None] | None = None) -> None:
        """One pass: `reduce(read, count)` per batch, in sample order."""
        if self._batches is None:
            self._batches = list(self.samples.batches(self._batch))
        batches = self._batches
        total = len(self.samples)
        done = 0

        def finish(runner: LiteRTRunner, count: int) -> None:
            nonlocal done
            interp = runner.interp
            reduce(lambda index: interp.tensor(index)(), count)
            done += count
            if on_batch is not None:
                on_batch(done, total)

        if not batches:
            return
        start = 0
        if self.plan is None:  # the first batch alone, then plan from what it kept
            count, feeds = batches[0]
            self.runners[0].invoke(feeds, fetch=False)
            self.invocations += 1
            finish(self.runners[0], count)
            self._settle(self._measure(self.runners[0], count))
            start = 1
        assert self.plan is not None
        workers = self.plan.workers
        if workers == 1:
            for count, feeds in batches[start:]:
                self.runners[0].invoke(feeds, fetch=False)
                self.invocations += 1
                finish(self.runners[0], count)
            return
        with ThreadPoolExecutor(workers, thread_name_prefix="calibration") as pool:
            pending: deque[tuple[int, Future[object]]] = deque()

            def submit(i: int) -> None:
                runner = self.runners[i % workers]
                pending.append((i, pool.submit(runner.invoke, batches[i][1], fetch=False)))
                self.invocations += 1

            for i in range(start, min(start + workers, len(batches))):
                submit(i)
            following = start + workers
            while pending:
                i, future = pending.popleft()
                future.result()
                finish(self.runners[i % workers], batches[i][0])
                if following < len(batches):  # that interpreter is free again
                    submit(following)
                    following += 1


def constant_indices(index: Mapping[object, int]) -> set[int]:
    """Interpreter indices of the constant tensors in a serialize() tensor map."""
    return {i for t, i in index.items() if getattr(t, "is_constant", False)}
