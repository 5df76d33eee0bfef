"""`Farm`: profile models on many boards at once, from Python.

    import sdk
    farm = sdk.Farm("farm.toml")
    run = farm.profile(["mlp_int8.tflite", "mlp_ternary.tflite"], boards="tag:pi4", runs=100,
                       report="out/")
    print(run.table())
    for r in run.failed:
        print(r.board, r.error)

`farm.validate(models, inputs)` runs the same inputs through every model on every board and
on this host and compares the outputs (`sdk.validate` as a job of the same scheduler).

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdk.devices.farm.inventory import BoardConfig, FarmConfig, load_farm
from sdk.devices.farm.jobs import (
    JOB_KINDS,
    PROFILE,
    VALIDATE,
    InputSet,
    Job,
    JobSettings,
    ModelInfo,
    board_fingerprint,
)
from sdk.devices.farm.lock import RunLock
from sdk.devices.farm.results import BoardReport, Bounds, FarmEvent, FarmRun, JobResult
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
                 database: str | os.PathLike[str] | None = None, scheduler: Any = None,
                 certs: str | os.PathLike[str] | None = None, allow_insecure: bool = False):
        """`scheduler`: a Dask scheduler's address (or a `distributed.Client`); the cluster
        speaks mutual TLS with the certificates of `edgesdk farm certs` (`certs`, default
        farm.toml's `[farm] certs`); a plain-TCP cluster is refused unless `allow_insecure`."""
        self.config = farm if isinstance(farm, FarmConfig) else load_farm(farm)
        self.database = Path(database) if database is not None else self.config.database
        self.scheduler_address = scheduler
        self.certs = Path(certs) if certs is not None else self.config.settings.certs
        self.allow_insecure = allow_insecure

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
             reference: ModelArg | None = None, kind: str = PROFILE,
             inputs: InputSet | Mapping[str, InputSet] | None = None) -> list[Job]:
        """The jobs for these models on these boards: each board's measurement settings from
        farm.toml, overridden by the arguments that are not None.

        `kind="validate"`: validation jobs, with `inputs` (one InputSet for every model, or
        {model SHA-256: InputSet}); runs, warm-up, duration, pinning and layers do not apply.
        """
        if kind not in JOB_KINDS:
            raise ValueError(f"unknown job kind {kind!r}; kinds: {', '.join(JOB_KINDS)}")
        paths = [models] if isinstance(models, str | os.PathLike) else list(models)
        if not paths:
            raise ValueError("no models given")
        infos = [ModelInfo.from_path(p, reference=reference) for p in paths]
        selected = self.select(boards)
        if not selected:
            raise ValueError(f"no boards selected by {boards!r}")
        out = []
        for info in infos:
            given = inputs.get(info.sha256) if isinstance(inputs, Mapping) else inputs
            if kind == VALIDATE and given is None:
                raise ValueError(f"no validation inputs for {info.name}")
            for board in selected:
                m = board.measurement
                thread_count = threads if threads is not None else board.device.threads
                if kind == VALIDATE:
                    assert given is not None
                    settings = JobSettings.validation(inputs=given.sha256, threads=thread_count)
                else:
                    settings = JobSettings(
                        runs=m.runs if runs is None else runs,
                        warmup=m.warmup if warmup is None else warmup,
                        min_duration_s=m.min_duration_s if min_duration_s is None
                        else float(min_duration_s),
                        threads=thread_count,
                        cpus=cpus if cpus is not None else board.device.cpus,
                        layers=layers)
                out.append(Job(model=info, board=board.name, settings=settings,
                               board_fingerprint=board_fingerprint(board),
                               timeout_s=float(timeout if timeout is not None
                                               else self.config.settings.job_timeout),
                               label=f"{info.name} @ {board.name}",
                               inputs=given if kind == VALIDATE else None))
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
        jobs = self.jobs(models, boards=boards, runs=runs, warmup=warmup,
                         min_duration_s=min_duration_s, threads=threads, cpus=cpus,
                         layers=layers, timeout=timeout, reference=reference)
        return await self._run(jobs, boards, kind=PROFILE, retries=retries, fresh=fresh,
                               report=report, progress=progress, layer_board=layer_board)

    # ------------------------------------------------------------------ validate
    def validate(self, models: ModelArg | Sequence[ModelArg], inputs: Any = None, *,
                 samples: int | None = None, seed: int = 0, boards: Any = None,
                 threads: int | None = None, timeout: float | None = None,
                 retries: int | None = None, fresh: bool = False,
                 min_sqnr_db: float = 30.0, min_top1: float = 0.99,
                 reference: ModelArg | None = None,
                 report: str | os.PathLike[str] | None = None,
                 progress: Any = None) -> FarmRun:
        """Run the same inputs through every model on every selected board and on this host,
        and compare the outputs (`sdk.validate` per job: SQNR, max abs error, top-1
        agreement). Returns a `FarmRun` whose results carry `validation`; `run.flagged` names
        the boards whose outputs disagree with the host (not exact, and SQNR below
        `min_sqnr_db` or top-1 agreement below `min_top1`).

        inputs: an array (one model input), a list of arrays, a {name: array} dict, or a .npy
        / .npz file, samples on axis 0 (the first `samples` are used); None: `samples` (default
        16) seeded random inputs made for each model from its input signature. The jobs go
        through the same scheduler, leases, retries, quarantine, time limits and results
        database as `profile`, so a killed validation resumes too.
        """
        return asyncio.run(self.validate_async(
            models, inputs, samples=samples, seed=seed, boards=boards, threads=threads,
            timeout=timeout, retries=retries, fresh=fresh, min_sqnr_db=min_sqnr_db,
            min_top1=min_top1, reference=reference, report=report, progress=progress))

    async def validate_async(self, models: ModelArg | Sequence[ModelArg], inputs: Any = None,
                             *, samples: int | None = None, seed: int = 0, boards: Any = None,
                             threads: int | None = None, timeout: float | None = None,
                             retries: int | None = None, fresh: bool = False,
                             min_sqnr_db: float = 30.0, min_top1: float = 0.99,
                             reference: ModelArg | None = None,
                             report: str | os.PathLike[str] | None = None,
                             progress: Any = None) -> FarmRun:
        """`validate` for callers that already run an event loop."""
        paths = [models] if isinstance(models, str | os.PathLike) else list(models)
        input_sets = self._input_sets(paths, inputs, samples, seed)
        jobs = self.jobs(paths, boards=boards, threads=threads, timeout=timeout,
                         reference=reference, kind=VALIDATE, inputs=input_sets)
        return await self._run(jobs, boards, kind=VALIDATE, retries=retries, fresh=fresh,
                               report=report, progress=progress,
                               bounds=Bounds(min_sqnr_db=min_sqnr_db, min_top1=min_top1))

    @property
    def inputs_folder(self) -> Path:
        """Where validation input sets are kept (beside the database, by content)."""
        return self.database.with_name(self.database.stem + "-inputs")

    def _input_sets(self, paths: list[ModelArg], inputs: Any, samples: int | None,
                    seed: int) -> dict[str, InputSet]:
        """{model SHA-256: InputSet}: the given inputs for every model, or random ones made
        for each model's inputs."""
        import numpy as np

        from sdk.devices.base import sha256_file
        from sdk.devices.inputs import random_inputs

        if samples is not None and samples < 1:
            raise ValueError("samples must be >= 1")
        if inputs is None:
            count = samples or 16
            out = {}
            for p in paths:
                out[sha256_file(p)] = InputSet.save(
                    random_inputs(p, count, seed=seed), self.inputs_folder,
                    source=f"random ({count} samples, seed {seed})")
            return out
        source = "given arrays"
        if isinstance(inputs, str | os.PathLike):
            file = Path(inputs)
            if file.suffix.lower() not in (".npy", ".npz") or not file.is_file():
                raise ValueError(f"inputs {file}: give an existing .npy or .npz file")
            source = file.name
            if file.suffix.lower() == ".npy":
                inputs = np.load(file, allow_pickle=False)
            else:
                with np.load(file, allow_pickle=False) as npz:
                    inputs = {k: npz[k] for k in npz.files}
        if samples is not None:
            if isinstance(inputs, Mapping):
                inputs = {k: np.asarray(v)[:samples] for k, v in inputs.items()}
            elif isinstance(inputs, list | tuple):
                inputs = [np.asarray(v)[:samples] for v in inputs]
            else:
                inputs = np.asarray(inputs)[:samples]
        shared = InputSet.save(dict(inputs) if isinstance(inputs, Mapping) else inputs,
                               self.inputs_folder, source=source)
        return {sha256_file(p): shared for p in paths}

    # ------------------------------------------------------------------ running jobs
    async def _run(self, jobs: list[Job], boards: Any, *, kind: str, retries: int | None,
                   fresh: bool, report: str | os.PathLike[str] | None, progress: Any,
                   layer_board: str | None = None, bounds: Bounds | None = None) -> FarmRun:
        """Schedule `jobs` (one kind) on the selected boards; results to the database."""
        import dataclasses

        selected = self.select(boards)
        settings = self.config.settings
        if retries is not None:
            settings = dataclasses.replace(settings, retries=retries)
        bounds = bounds or Bounds()
        started = time.time()
        # one run per database at a time: taken before anything is read or measured
        lock = RunLock(self.database).acquire()
        try:
            executor = await self._executor(selected)
        except BaseException:
            lock.release()
            raise
        request = {"kind": kind, "models": [j.model.path for j in jobs[::len(selected)]],
                   "boards": [b.name for b in selected], "jobs": len(jobs), "fresh": fresh,
                   "settings": jobs[0].settings.to_dict(), "argv": sys.argv}
        if kind == VALIDATE:
            request["bounds"] = bounds.to_dict()
            request["inputs"] = {j.model.sha256: j.inputs.to_dict()
                                 for j in jobs if j.inputs is not None}
        with lock, ResultStore(self.database) as store:
            run_id = store.begin_run(farm=str(self.config.path), backend=executor.name,
                                     request=request)
            lock.set_run(run_id)
            takeover: list[FarmEvent] = []
            if lock.previous is not None:
                store.killed_run(lock.previous.run_id)
                takeover.append(store.event(
                    run_id, None, "lock_taken_over", f"the run lock was left by "
                    f"{lock.previous.describe()}, which is no longer running"))
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
            if kind == VALIDATE:
                results = _judged_by(results, bounds)
            boards_report = _merge_cached_counts(scheduler.board_reports(), results)
            run = FarmRun(run_id=run_id, results=results, boards=boards_report,
                          events=[*takeover, *scheduler.events], started=started,
                          finished=time.time(),
                          database=str(self.database), backend=executor.name, bounds=bounds)
        if report is not None:
            from sdk.devices.farm.report import write_report

            write_report(run, report, layer_board=layer_board)
        return run

    async def _executor(self, boards: list[BoardConfig]) -> Executor:
        if self.scheduler_address is None:
            return LocalExecutor(threads=sum(b.max_jobs for b in boards) + 2)
        from sdk.devices.farm.dask_backend import DaskExecutor

        return await DaskExecutor.connect(self.scheduler_address, boards, certs=self.certs,
                                          allow_insecure=self.allow_insecure)

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

        executor = await DaskExecutor.connect(self.scheduler_address, boards, certs=self.certs,
                                              allow_insecure=self.allow_insecure)
        try:
            outcomes = await asyncio.gather(*(executor.health(b, timeout) for b in boards))
        finally:
            await executor.close()
        return {b.name: o for b, o in zip(boards, outcomes, strict=True)}

    def results(self, *, model: str | None = None, board: str | None = None,
                run: int | str | None = None, status: str | None = None,
                kind: str | None = None) -> list[JobResult]:
        """Stored results, newest per job (`run="latest"` for the last run only; `kind`:
        "profile" or "validate")."""
        if not self.database.exists():
            return []
        with ResultStore(self.database, readonly=True) as store:
            run_id = store.last_run_id() if run == "latest" else (
                int(run) if run is not None else None)
            return store.results(run_id=run_id, model=model, board=board, status=status,
                                 kind=kind)

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
            kind = request.get("kind", PROFILE)
            results = store.results(run_id=run_id)
            keys = {r.job_key for r in results}
            models = request.get("models", [])
            names = request.get("boards", [])
            inputs = {sha: d.get("sha256") for sha, d in (request.get("inputs") or {}).items()}
            # jobs of that run that were already done then: their newest good result
            extra = [r for r in store.results(status="ok", kind=kind)
                     if r.job_key not in keys and r.board in names and r.model.path in models
                     and (kind != VALIDATE or r.settings.inputs == inputs.get(r.model.sha256))]
            results += [dataclasses.replace(r, cached=True) for r in extra]
            events = store.events(run_id)
        bounds = Bounds(**request["bounds"]) if request.get("bounds") else Bounds()
        if kind == VALIDATE:
            results = _judged_by(results, bounds)
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
                       database=str(self.database), backend=str(meta["backend"]),
                       bounds=bounds)


def _judged_by(results: list[JobResult], bounds: Bounds) -> list[JobResult]:
    """The validations of one run carry that run's thresholds (results it found already done
    included), so `JobResult.agrees()` gives the run's verdict."""
    import dataclasses

    return [dataclasses.replace(r, bounds=bounds) if r.validation is not None else r
            for r in results]


def _summary_of(results: list[JobResult]) -> str:
    for r in results:
        if r.profile:
            return r.profile.device.summary()
        if r.validation:
            return r.validation.device.summary()
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
