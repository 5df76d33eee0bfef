"""`Farm`: profile models on many boards at once, from Python.

    import sdk
    farm = sdk.Farm("farm.toml")
    run = farm.profile(["mlp_int8.tflite", "mlp_ternary.tflite"], boards="tag:pi4", runs=100,
                       report="out/")
    print(run.table())
    for r in run.failed:
        print(r.board, r.error)

Results go to the farm's SQLite database as they arrive; calling `profile` again with the same
models, boards and settings measures only what is not done yet (`fresh=True` measures all).
With `scheduler="tcp://host:8786"` (or a `distributed.Client`), jobs run on Dask workers that
own the boards (`edgesdk farm worker`); without, everything runs in this process.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdk.devices.farm.inventory import BoardConfig, FarmConfig, load_farm
from sdk.devices.farm.jobs import Job, JobSettings, ModelInfo, board_fingerprint
from sdk.devices.farm.results import BoardReport, FarmRun, JobResult
from sdk.devices.farm.scheduler import Executor, FarmScheduler, Listener, LocalExecutor
from sdk.devices.farm.store import ResultStore

ModelArg = str | os.PathLike[str]


@dataclass(frozen=True)
class BoardStatus:
    """`Farm.status()`: a board as configured, and as it answered a health check now."""

    name: str
    transport: str
    address: str
    tags: dict[str, str]
    host: str | None
    disabled: bool
    checked: bool
    healthy: bool | None
    error: str | None = None
    summary: str = ""
    governor: str | None = None
    temperature_c: float | None = None
    results_ok: int = 0
    results_failed: int = 0
    quarantined_in_last_run: str | None = None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


class Farm:
    """A board farm described by a farm.toml (see `sdk.devices.farm.inventory`)."""

    def __init__(self, farm: str | os.PathLike[str] | FarmConfig, *,
                 database: str | os.PathLike[str] | None = None, scheduler: Any = None):
        self.config = farm if isinstance(farm, FarmConfig) else load_farm(farm)
        self.database = Path(database) if database is not None else self.config.database
        self.scheduler_address = scheduler

    @property
    def boards(self) -> list[BoardConfig]:
        return list(self.config.boards.values())

    def select(self, boards: str | Iterable[str] | None = None) -> list[BoardConfig]:
        return self.config.select(boards)

    # ------------------------------------------------------------------ jobs
    def jobs(self, models: ModelArg | Sequence[ModelArg], *, boards: Any = None,
             runs: int | None = None, warmup: int | None = None,
             min_duration_s: float | None = None, threads: int | None = None,
             cpus: str | None = None, layers: bool = False, timeout: float | None = None,
             reference: ModelArg | None = None) -> list[Job]:
        """The jobs for these models on these boards: each board's measurement settings from
        farm.toml, overridden by the arguments that are not None."""
        paths = [models] if isinstance(models, str | os.PathLike) else list(models)
        if not paths:
            raise ValueError("no models given")
        infos = [ModelInfo.from_path(p, reference=reference) for p in paths]
        selected = self.select(boards)
        if not selected:
            raise ValueError(f"no boards selected by {boards!r}")
        out = []
        for info in infos:
            for board in selected:
                m = board.measurement
                settings = JobSettings(
                    runs=m.runs if runs is None else runs,
                    warmup=m.warmup if warmup is None else warmup,
                    min_duration_s=m.min_duration_s if min_duration_s is None
                    else float(min_duration_s),
                    threads=threads if threads is not None else board.device.threads,
                    cpus=cpus if cpus is not None else board.device.cpus,
                    layers=layers)
                out.append(Job(model=info, board=board.name, settings=settings,
                               board_fingerprint=board_fingerprint(board),
                               timeout_s=float(timeout if timeout is not None
                                               else self.config.settings.job_timeout),
                               label=f"{info.name} @ {board.name}"))
        return out

    # ------------------------------------------------------------------ profile
    def profile(self, models: ModelArg | Sequence[ModelArg], *, boards: Any = None,
                runs: int | None = None, warmup: int | None = None,
                min_duration_s: float | None = None, threads: int | None = None,
                cpus: str | None = None, layers: bool = False, timeout: float | None = None,
                retries: int | None = None, fresh: bool = False,
                reference: ModelArg | None = None,
                report: str | os.PathLike[str] | None = None, progress: Any = None,
                layer_board: str | None = None) -> FarmRun:
        """Profile every model on every selected board; returns a `FarmRun` (see module doc).

        `progress`: None (a live table when stderr is a terminal), True (the live table),
        "log" (a line per event on stderr), False, or a listener `f(kind, data)`.
        `report`: a folder for report.html / report.json / report.md.
        """
        return asyncio.run(self.profile_async(
            models, boards=boards, runs=runs, warmup=warmup, min_duration_s=min_duration_s,
            threads=threads, cpus=cpus, layers=layers, timeout=timeout, retries=retries,
            fresh=fresh, reference=reference, report=report, progress=progress,
            layer_board=layer_board))

    async def profile_async(self, models: ModelArg | Sequence[ModelArg], *, boards: Any = None,
                            runs: int | None = None, warmup: int | None = None,
                            min_duration_s: float | None = None, threads: int | None = None,
                            cpus: str | None = None, layers: bool = False,
                            timeout: float | None = None, retries: int | None = None,
                            fresh: bool = False,
                            reference: ModelArg | None = None,
                            report: str | os.PathLike[str] | None = None,
                            progress: Any = None, layer_board: str | None = None) -> FarmRun:
        """`profile` for callers that already run an event loop."""
        import dataclasses

        jobs = self.jobs(models, boards=boards, runs=runs, warmup=warmup,
                         min_duration_s=min_duration_s, threads=threads, cpus=cpus,
                         layers=layers, timeout=timeout, reference=reference)
        selected = self.select(boards)
        settings = self.config.settings
        if retries is not None:
            settings = dataclasses.replace(settings, retries=retries)
        started = time.time()
        executor = await self._executor(selected)
        request = {"models": [j.model.path for j in jobs[::len(selected)]],
                   "boards": [b.name for b in selected], "jobs": len(jobs), "fresh": fresh,
                   "settings": jobs[0].settings.to_dict(), "argv": sys.argv}
        with ResultStore(self.database) as store:
            run_id = store.begin_run(farm=str(self.config.path), backend=executor.name,
                                     request=request)
            done = {} if fresh else store.done(j.key for j in jobs)
            todo = [j for j in jobs if j.key not in done]
            listener, display = _listener(progress, selected, jobs, done)
            scheduler = FarmScheduler(selected, executor, store, run_id, settings,
                                      listener=listener)
            status = "interrupted"
            try:
                if display is not None:
                    display.start()
                await scheduler.run(todo)
                status = "finished"
            finally:
                if display is not None:
                    display.stop()
                await executor.close()
                store.finish_run(run_id, status)
            fresh_results = {r.job_key: r for r in scheduler.results}
            results = [fresh_results.get(j.key) or dataclasses.replace(done[j.key], cached=True)
                       for j in jobs]
            boards_report = _merge_cached_counts(scheduler.board_reports(), results)
            run = FarmRun(run_id=run_id, results=results, boards=boards_report,
                          events=scheduler.events, started=started, finished=time.time(),
                          database=str(self.database), backend=executor.name)
        if report is not None:
            from sdk.devices.farm.report import write_report

            write_report(run, report, layer_board=layer_board)
        return run

    async def _executor(self, boards: list[BoardConfig]) -> Executor:
        if self.scheduler_address is None:
            return LocalExecutor(threads=sum(b.max_jobs for b in boards) + 2)
        from sdk.devices.farm.dask_backend import DaskExecutor

        return await DaskExecutor.connect(self.scheduler_address, boards)

    # ------------------------------------------------------------------ status and results
    def status(self, boards: Any = None, *, check: bool = True,
               timeout: float | None = None) -> list[BoardStatus]:
        """Every selected board (disabled ones too), health-checked now unless `check=False`
        (from this process, or by the Dask workers that own the boards when the farm has a
        scheduler), with its result counts and whether the last run quarantined it."""
        from concurrent.futures import ThreadPoolExecutor

        from sdk.devices.farm import worker

        selected = self.config.select(boards, include_disabled=True)
        timeout = timeout if timeout is not None else self.config.settings.health_timeout
        checks: dict[str, dict[str, Any]] = {}
        live = [b for b in selected if not b.disabled]
        if check and self.scheduler_address is not None:
            checks = asyncio.run(self._remote_health(live, timeout))
        elif check:
            with ThreadPoolExecutor(max_workers=max(len(live), 1)) as pool:
                outcomes = pool.map(lambda b: worker.check_board(b, timeout), live)
                checks = {b.name: o for b, o in zip(live, outcomes, strict=True)}
            worker.close_all()
        counts: dict[str, tuple[int, int]] = {}
        quarantined: dict[str, str] = {}
        if self.database.exists():
            with ResultStore(self.database, readonly=True) as store:
                for r in store.results():
                    ok, bad = counts.get(r.board, (0, 0))
                    counts[r.board] = (ok + r.ok, bad + (not r.ok))
                last = store.last_run_id()
                if last is not None:
                    for e in store.events(last, kind="quarantined"):
                        quarantined[e.board or ""] = e.detail
        out = []
        for b in selected:
            c = checks.get(b.name)
            out.append(BoardStatus(
                name=b.name, transport=b.device.transport, address=b.device.address,
                tags=dict(b.tags), host=b.host, disabled=b.disabled, checked=c is not None,
                healthy=None if c is None else bool(c.get("ok")),
                error=None if c is None or c.get("ok") else str(c.get("error")),
                summary="" if c is None else c.get("summary", ""),
                governor=None if c is None else c.get("governor"),
                temperature_c=None if c is None else c.get("temperature_c"),
                results_ok=counts.get(b.name, (0, 0))[0],
                results_failed=counts.get(b.name, (0, 0))[1],
                quarantined_in_last_run=quarantined.get(b.name)))
        return out

    async def _remote_health(self, boards: list[BoardConfig], timeout: float
                             ) -> dict[str, dict[str, Any]]:
        from sdk.devices.farm.dask_backend import DaskExecutor

        executor = await DaskExecutor.connect(self.scheduler_address, boards)
        try:
            outcomes = await asyncio.gather(*(executor.health(b, timeout) for b in boards))
        finally:
            await executor.close()
        return {b.name: o for b, o in zip(boards, outcomes, strict=True)}

    def results(self, *, model: str | None = None, board: str | None = None,
                run: int | str | None = None, status: str | None = None) -> list[JobResult]:
        """Stored results, newest per job (`run="latest"` for the last run only)."""
        if not self.database.exists():
            return []
        with ResultStore(self.database, readonly=True) as store:
            run_id = store.last_run_id() if run == "latest" else (
                int(run) if run is not None else None)
            return store.results(run_id=run_id, model=model, board=board, status=status)

    def run_record(self, run: int | str = "latest") -> FarmRun:
        """A past run, rebuilt from the database (for reports of earlier runs)."""
        with ResultStore(self.database, readonly=True) as store:
            run_id = store.last_run_id() if run == "latest" else int(run)
            if run_id is None:
                raise ValueError(f"no runs in {self.database}")
            meta = next((r for r in store.runs() if r["id"] == run_id), None)
            if meta is None:
                raise ValueError(f"no run {run_id} in {self.database}")
            import dataclasses
            import json

            request = json.loads(meta["request"] or "{}")
            results = store.results(run_id=run_id)
            keys = {r.job_key for r in results}
            models = request.get("models", [])
            names = request.get("boards", [])
            # jobs of that run that were already done then: their newest good result
            extra = [r for r in store.results(status="ok")
                     if r.job_key not in keys and r.board in names and r.model.path in models]
            results += [dataclasses.replace(r, cached=True) for r in extra]
            events = store.events(run_id)
        quarantined = {e.board: e.detail for e in events if e.kind == "quarantined"}
        boards = []
        for name in names or sorted({r.board for r in results}):
            mine = [r for r in results if r.board == name]
            b = self.config.boards.get(name)
            boards.append(BoardReport(
                name=name, state="quarantined" if name in quarantined else "ok",
                reason=quarantined.get(name), jobs_ok=sum(r.ok for r in mine),
                jobs_failed=sum(not r.ok for r in mine),
                summary=_summary_of(mine), tags=dict(b.tags) if b else {},
                transport=b.device.transport if b else ""))
        return FarmRun(run_id=run_id, results=results, boards=boards, events=events,
                       started=float(meta["started"]),
                       finished=float(meta["finished"] or meta["started"]),
                       database=str(self.database), backend=str(meta["backend"]))


def _summary_of(results: list[JobResult]) -> str:
    for r in results:
        if r.profile:
            return r.profile.device.summary()
    return ""


def _merge_cached_counts(reports: list[BoardReport], results: list[JobResult]
                         ) -> list[BoardReport]:
    import dataclasses

    out = []
    for b in reports:
        mine = [r for r in results if r.board == b.name]
        summary = b.summary or _summary_of(mine)
        out.append(dataclasses.replace(b, jobs_ok=sum(r.ok for r in mine),
                                       jobs_failed=sum(not r.ok for r in mine),
                                       summary=summary))
    return out


def _listener(progress: Any, boards: list[BoardConfig], jobs: list[Job],
              done: dict[str, JobResult]) -> tuple[Listener | None, Any]:
    if callable(progress):
        return progress, None
    if progress is False:
        return None, None
    if progress == "log":
        from sdk.devices.farm.progress import LogProgress

        return LogProgress(boards, jobs, done), None
    if progress is None and not sys.stderr.isatty():
        return None, None
    from sdk.devices.farm.progress import LiveProgress

    live = LiveProgress(boards, jobs, done)
    return live, live
