"""The farm's scheduler: an asyncio loop that leases boards to jobs.

* Each board has `max_jobs` lanes (default 1): a lane takes the board's next job, so a board
  runs that many jobs at once and boards run in parallel.
* A board is health-checked before it gets work, and again after any fault.
* A transient fault (link dropped, board rebooting, run past its time limit) is retried up to
  `retries` times with exponential back-off; a permanent one (the model does not run) fails the
  job at once. Board faults (transient ones, failed health checks, full disk, refused auth) count
  against the board; `quarantine_after` of them in a row quarantine it: its remaining jobs are
  failed with the reason, the rest of the farm goes on.
* Every result is written to the database the moment it exists (one transaction each).
* `cooldown_s` separates two jobs on one board.
* A job is a profile (`sdk.profile`) or a validation (`sdk.validate`, `Job.kind`); both kinds go
  through the same leases, checks, retries, quarantine and time limits.

Where jobs run is the executor's business: threads in this process (`LocalExecutor`) or Dask
workers on the hosts the boards hang off (`sdk.devices.farm.dask_backend.DaskExecutor`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from sdk.base.tables import from_jsonable
from sdk.devices.farm import worker
from sdk.devices.farm.inventory import BoardConfig, FarmSettings
from sdk.devices.farm.jobs import Job
from sdk.devices.farm.results import FAILED, OK, BoardReport, FarmEvent, JobResult
from sdk.devices.farm.store import ResultStore
from sdk.devices.results import Profile, Validation

#: listener(kind, data): kinds "board" (state change), "job_started", "job_finished", "event"
Listener = Callable[[str, dict[str, Any]], None]


class Executor(Protocol):
    name: str

    async def health(self, board: BoardConfig, timeout: float) -> dict[str, Any]: ...

    async def run(self, board: BoardConfig, job: Job, timeout: float) -> dict[str, Any]: ...

    async def abort(self, board: BoardConfig) -> None: ...

    async def close(self) -> None: ...


def _timeout_outcome(what: str, seconds: float) -> dict[str, Any]:
    return {"ok": False, "error": f"{what} gave no answer within {seconds:g} s",
            "error_type": "timeout", "transient": True, "board_fault": True}


class LocalExecutor:
    """Runs health checks and jobs in threads of this process (one host, no server)."""

    name = "asyncio"

    def __init__(self, threads: int = 8):
        self._pool = ThreadPoolExecutor(max_workers=max(threads, 2),
                                        thread_name_prefix="edgesdk-farm")

    async def _call(self, seconds: float, what: str, fn: Callable[..., dict[str, Any]],
                    *args: Any) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, fn, *args)
        try:
            return await asyncio.wait_for(asyncio.shield(future), seconds)
        except asyncio.TimeoutError:
            return _timeout_outcome(what, seconds)

    async def health(self, board: BoardConfig, timeout: float) -> dict[str, Any]:
        return await self._call(timeout + 15, "health check", worker.check_board, board,
                                timeout)

    async def run(self, board: BoardConfig, job: Job, timeout: float) -> dict[str, Any]:
        return await self._call(timeout, "job", worker.run_job, board, job.to_dict())

    async def abort(self, board: BoardConfig) -> None:
        worker.abort(board.name)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, worker.close_all)
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class BoardState:
    board: BoardConfig
    queue: deque[Job] = field(default_factory=deque)
    state: str = "waiting"            #: waiting, checking, running, cooldown, quarantined, done
    needs_check: bool = True
    failures: int = 0                 #: consecutive board faults
    quarantined: str | None = None
    summary: str = ""
    governor: str | None = None
    temperature_c: float | None = None
    cooldown_until: float = 0.0
    ok: int = 0
    failed: int = 0
    running: int = 0
    check_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class FarmScheduler:
    """Runs jobs on boards; see the module docstring."""

    def __init__(self, boards: list[BoardConfig], executor: Executor, store: ResultStore,
                 run_id: int, settings: FarmSettings, *, listener: Listener | None = None):
        self.executor = executor
        self.store = store
        self.run_id = run_id
        self.settings = settings
        self.listener = listener
        self.states = {b.name: BoardState(b) for b in boards}
        self.results: list[JobResult] = []
        self.events: list[FarmEvent] = []

    # ------------------------------------------------------------------ plumbing
    def _emit(self, kind: str, **data: Any) -> None:
        if self.listener is not None:
            try:
                self.listener(kind, data)
            except Exception:  # a display must never stop the farm
                self.listener = None

    def _set(self, st: BoardState, state: str) -> None:
        st.state = state
        self._emit("board", board=st.board.name, state=state, ok=st.ok, failed=st.failed,
                   queued=len(st.queue), running=st.running, reason=st.quarantined,
                   summary=st.summary, governor=st.governor, temperature_c=st.temperature_c)

    def _event(self, board: str | None, kind: str, detail: str) -> None:
        event = self.store.event(self.run_id, board, kind, detail)
        self.events.append(event)
        self._emit("event", event=event)

    def _record(self, st: BoardState, result: JobResult) -> None:
        self.store.record(result)  # committed before anything else happens
        self.results.append(result)
        if result.ok:
            st.ok += 1
        else:
            st.failed += 1
        self._emit("job_finished", result=result)

    def _backoff(self, attempt: int) -> float:
        return min(self.settings.retry_backoff * 2 ** max(attempt - 1, 0), 30.0)

    # ------------------------------------------------------------------ board faults
    def _board_fault(self, st: BoardState, error: str) -> None:
        st.failures += 1
        st.needs_check = True
        if st.quarantined is None and st.failures >= self.settings.quarantine_after:
            st.quarantined = f"{st.failures} failures in a row; last: {error}"
            self._event(st.board.name, "quarantined", st.quarantined)
            self._set(st, "quarantined")

    async def _health(self, st: BoardState) -> bool:
        async with st.check_lock:  # lanes of one board share one check
            if not st.needs_check or st.quarantined:
                return st.quarantined is None
            self._set(st, "checking")
            outcome = await self.executor.health(st.board, self.settings.health_timeout)
            if outcome.get("ok"):
                st.needs_check = False
                st.summary = outcome.get("summary", "")
                st.governor = outcome.get("governor")
                st.temperature_c = outcome.get("temperature_c")
                self._set(st, "running" if st.running else "waiting")
                return True
            error = str(outcome.get("error"))
            self._event(st.board.name, "health_failed", error)
            self._board_fault(st, f"health check: {error}")
            return False

    # ------------------------------------------------------------------ jobs
    def _result(self, job: Job, status: str, attempts: int, started: float, *,
                profile: Profile | None = None, validation: Validation | None = None,
                error: str | None = None, error_type: str | None = None,
                executed_by: str | None = None) -> JobResult:
        board = self.states[job.board].board
        return JobResult(job_key=job.key, model=job.model, board=job.board,
                         settings=job.settings, status=status, attempts=attempts,
                         started=started, finished=time.time(), profile=profile,
                         validation=validation, error=error, error_type=error_type,
                         run_id=self.run_id, board_config=board.to_dict(),
                         executed_by=executed_by)

    async def _run_job(self, st: BoardState, job: Job) -> JobResult:
        started = time.time()
        attempts = 0
        last: dict[str, Any] = {}
        while True:
            if st.quarantined:
                return self._result(job, FAILED, attempts, started, error_type="quarantined",
                                    error=f"board {st.board.name} quarantined "
                                          f"({st.quarantined})")
            if st.needs_check and not await self._health(st):
                if not st.quarantined:
                    await asyncio.sleep(self._backoff(st.failures))
                continue
            wait = st.cooldown_until - time.monotonic()
            if wait > 0:
                self._set(st, "cooldown")
                await asyncio.sleep(wait)
            attempts += 1
            st.running += 1
            self._set(st, "running")
            self._emit("job_started", board=st.board.name, job=job, attempt=attempts)
            # the runner's own limit is job.timeout_s; this bounds the whole job (pushes too)
            grace = max(30.0, 0.5 * job.timeout_s)
            try:
                outcome = await self.executor.run(st.board, job, job.timeout_s + grace)
            finally:
                st.running -= 1
                st.cooldown_until = time.monotonic() + st.board.cooldown_s
            if outcome.get("error_type") == "timeout":
                await self.executor.abort(st.board)
            if outcome.get("orphans_killed"):
                self._event(st.board.name, "orphans_killed",
                            f"{job.model.name}: killed {outcome['orphans_killed']} run(s) of "
                            "this job that an earlier farm process left running, before "
                            "measuring")
            if outcome.get("ok"):
                st.failures = 0
                profile = validation = None
                if outcome.get("validation") is not None:
                    validation = Validation.from_dict(outcome["validation"])
                else:
                    profile = Profile.from_dict(from_jsonable(outcome["profile"]))
                return self._result(job, OK, attempts, started, profile=profile,
                                    validation=validation,
                                    executed_by=outcome.get("executed_by"))
            last = outcome
            error = str(outcome.get("error"))
            if outcome.get("board_fault"):
                self._board_fault(st, error)
            if not outcome.get("transient") or attempts > self.settings.retries:
                if outcome.get("transient"):
                    error = f"failed after {attempts} attempts; last error: {error}"
                return self._result(job, FAILED, attempts, started, error=error,
                                    error_type=str(last.get("error_type")),
                                    executed_by=last.get("executed_by"))
            self._event(st.board.name, "retry",
                        f"{job.model.name}: attempt {attempts} failed ({error}); retrying")
            await asyncio.sleep(self._backoff(attempts))

    async def _lane(self, st: BoardState) -> None:
        while st.queue:
            job = st.queue.popleft()
            try:
                result = await self._run_job(st, job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a scheduler bug must not lose the other results
                result = self._result(job, FAILED, 0, time.time(),
                                      error=f"internal error: {exc!r}", error_type="internal")
            self._record(st, result)
            if not st.quarantined:
                self._set(st, "waiting" if st.queue else ("running" if st.running else "done"))

    async def run(self, jobs: list[Job]) -> list[JobResult]:
        for job in jobs:
            self.states[job.board].queue.append(job)
        lanes = []
        for st in self.states.values():
            self._set(st, "waiting" if st.queue else "done")
            lanes += [self._lane(st) for _ in range(min(st.board.max_jobs, len(st.queue)))]
        await asyncio.gather(*lanes)
        for st in self.states.values():
            if not st.quarantined:
                self._set(st, "done")
        return self.results

    def board_reports(self) -> list[BoardReport]:
        out = []
        for st in self.states.values():
            state = "quarantined" if st.quarantined else ("unhealthy" if st.failures else "ok")
            out.append(BoardReport(name=st.board.name, state=state, reason=st.quarantined,
                                   jobs_ok=st.ok, jobs_failed=st.failed, summary=st.summary,
                                   tags=dict(st.board.tags),
                                   transport=st.board.device.transport))
        return out
