"""Typed results of a farm run (dataclasses; `to_dict()` gives JSON-ready data)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sdk.base.tables import Section, Table, jsonable, render_plain
from sdk.devices.farm.jobs import VALIDATE, JobSettings, ModelInfo
from sdk.devices.npu import placement_cell
from sdk.devices.results import Profile, Validation

OK, FAILED = "ok", "failed"


def format_ms(value: float | None) -> str:
    """Milliseconds with 3 significant digits (0.00123, 1.23, 123), "-" for None."""
    if value is None:
        return "-"
    return f"{value:.3g}" if value < 1000 else f"{value:.0f}"


@dataclass(frozen=True)
class Bounds:
    """When a validation passes: bit-exact, or SQNR and top-1 agreement at least these."""

    min_sqnr_db: float = 30.0
    min_top1: float = 0.99

    def to_dict(self) -> dict[str, float]:
        return {"min_sqnr_db": self.min_sqnr_db, "min_top1": self.min_top1}

    def describe(self) -> str:
        return f"bit-exact, or SQNR >= {self.min_sqnr_db:g} dB and top-1 agreement >= " \
               f"{100 * self.min_top1:g}%"


@dataclass(frozen=True)
class JobResult:
    """One job's outcome: a profile, or the error that ended it."""

    job_key: str
    model: ModelInfo
    board: str
    settings: JobSettings
    status: str                           #: "ok" or "failed"
    attempts: int
    started: float                        #: epoch seconds
    finished: float
    profile: Profile | None = None
    error: str | None = None
    error_type: str | None = None         #: the exception class, "quarantined", "timeout"...
    run_id: int | None = None             #: the farm run that measured it
    board_config: Mapping[str, Any] = field(default_factory=dict)
    #: True when this run found it already done in the database and did not measure again
    cached: bool = False
    #: the process that drove the board: a Dask worker's name, or host:pid
    executed_by: str | None = None
    #: validation jobs: the device's outputs against the host's
    validation: Validation | None = None
    #: validation jobs: the thresholds of the run that validated it (stored with the run); None
    #: for profiles and for runs that did not record them
    bounds: Bounds | None = None

    @property
    def ok(self) -> bool:
        """The job ran to the end (for a validation: it compared; see `agrees`)."""
        return self.status == OK

    @property
    def kind(self) -> str:
        return self.settings.kind

    def agrees(self, bounds: Bounds | None = None) -> bool | None:
        """A validation's verdict: the device's outputs pass `bounds` (default: the thresholds
        of the run that validated it, else `Bounds()`); None when this is no finished
        validation."""
        if self.validation is None:
            return None
        b = bounds or self.bounds or Bounds()
        return self.validation.passed(min_sqnr_db=b.min_sqnr_db, min_top1=b.min_top1)

    @property
    def p50_ms(self) -> float | None:
        return self.profile.latency.p50_ms if self.profile else None

    @property
    def p90_ms(self) -> float | None:
        return self.profile.latency.p90_ms if self.profile else None

    def to_dict(self) -> dict[str, Any]:
        return jsonable({
            "job_key": self.job_key, "model": self.model.to_dict(), "board": self.board,
            "settings": self.settings.to_dict(), "status": self.status,
            "attempts": self.attempts, "started": self.started, "finished": self.finished,
            "error": self.error, "error_type": self.error_type, "run_id": self.run_id,
            "cached": self.cached, "executed_by": self.executed_by,
            "board_config": dict(self.board_config),
            "profile": self.profile.to_dict() if self.profile else None,
            "kind": self.kind,
            "validation": self.validation.to_dict() if self.validation else None,
            "bounds": self.bounds.to_dict() if self.bounds else None,
            "agrees": self.agrees(),
        })


@dataclass(frozen=True)
class BoardReport:
    """How a board fared in a run."""

    name: str
    state: str                            #: "ok", "quarantined", "unhealthy"
    reason: str | None = None             #: why it was quarantined
    jobs_ok: int = 0
    jobs_failed: int = 0
    summary: str = ""                     #: DeviceInfo.summary()
    tags: Mapping[str, str] = field(default_factory=dict)
    transport: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "reason": self.reason,
                "jobs_ok": self.jobs_ok, "jobs_failed": self.jobs_failed,
                "summary": self.summary, "tags": dict(self.tags), "transport": self.transport}


@dataclass(frozen=True)
class FarmEvent:
    time: float
    board: str | None
    kind: str                             #: retry, health_failed, quarantined, timeout...
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.time, "board": self.board, "kind": self.kind, "detail": self.detail}


@dataclass
class FarmRun:
    """What `Farm.profile` did: every job's result (measured now or found done), per board."""

    run_id: int
    results: list[JobResult]
    boards: list[BoardReport]
    events: list[FarmEvent]
    started: float
    finished: float
    database: str
    backend: str = "asyncio"              #: "asyncio" (one host) or "dask"
    #: validations: what passes
    bounds: Bounds = field(default_factory=Bounds)

    @property
    def ok(self) -> list[JobResult]:
        return [r for r in self.results if r.ok]

    @property
    def failed(self) -> list[JobResult]:
        return [r for r in self.results if not r.ok]

    @property
    def cached(self) -> list[JobResult]:
        return [r for r in self.results if r.cached]

    @property
    def quarantined(self) -> list[str]:
        return [b.name for b in self.boards if b.state == "quarantined"]

    @property
    def validations(self) -> list[JobResult]:
        """Validation jobs that compared outputs (whatever the verdict)."""
        return [r for r in self.results if r.validation is not None]

    @property
    def disagreeing(self) -> list[JobResult]:
        """Validations whose device outputs do not pass `bounds`."""
        return [r for r in self.validations if not r.agrees(self.bounds)]

    @property
    def flagged(self) -> dict[str, list[str]]:
        """Boards whose outputs disagree with the host: board -> model names."""
        out: dict[str, list[str]] = {}
        for r in self.disagreeing:
            out.setdefault(r.board, []).append(r.model.name)
        return out

    @property
    def wall_s(self) -> float:
        return self.finished - self.started

    def get(self, model: str, board: str) -> JobResult | None:
        """The result of the model (file name or SHA-256) on the board."""
        for r in self.results:
            if r.board == board and model in (r.model.name, r.model.sha256, r.model.path):
                return r
        return None

    def to_dict(self) -> dict[str, Any]:
        return jsonable({
            "run_id": self.run_id, "started": self.started, "finished": self.finished,
            "wall_s": self.wall_s, "database": self.database, "backend": self.backend,
            "bounds": self.bounds.to_dict(), "flagged": self.flagged,
            "boards": [b.to_dict() for b in self.boards],
            "events": [e.to_dict() for e in self.events],
            "results": [r.to_dict() for r in self.results],
        })

    def table(self) -> str:
        """A plain-text table: one row per job (profiles, then validations)."""
        return render_plain(self.sections())

    def sections(self) -> list[Section]:
        """`table()`'s tables and lines, for a renderer of its own (the `edgesdk` command)."""
        profiles = [r for r in self.results if r.kind != VALIDATE]
        checks = [r for r in self.results if r.kind == VALIDATE]
        lines: list[Section] = [self._profile_table(profiles)] if profiles else []
        if checks:
            lines.append(validation_rows(checks, self.bounds))
        for b in self.boards:
            if b.state != "ok":
                lines.append(f"  board {b.name}: {b.state.upper()}: {b.reason}")
        for board, models in self.flagged.items():
            lines.append(f"  board {board}: OUTPUTS DISAGREE with the host for "
                         f"{', '.join(models)} (pass: {self.bounds.describe()})")
        lines.append(f"  {len(self.ok)} ok ({len(self.cached)} already done), "
                     f"{len(self.failed)} failed, {self.wall_s:.1f} s; results in "
                     f"{self.database} (run {self.run_id})")
        return lines

    def _profile_table(self, results: list[JobResult]) -> Table:
        rows = []
        for r in sorted(results, key=lambda r: (r.model.name, r.board)):
            if r.ok and r.profile:
                p = r.profile
                temp = p.temperature_c
                rows.append((r.model.name, r.board, r.model.precision, format_ms(p.latency.p50_ms),
                             format_ms(p.latency.p90_ms), str(p.latency.runs),
                             p.governor or "-", "-" if temp is None else f"{temp:.0f}",
                             "cached" if r.cached else "ok"))
            else:
                rows.append((r.model.name, r.board, r.model.precision, "-", "-", "-", "-", "-",
                             f"FAILED ({r.error_type}): {(r.error or '')[:60]}"))
        columns = ("model", "board", "precision", "p50 ms", "p90 ms", "runs", "governor",
                   "temp C", "status")
        if any(r.profile is not None and r.profile.npu is not None for r in results):
            # issue 18: NPU boards' placement beside the latency (CPU boards: "-")
            rows = [(*row[:5], placement_cell(r.profile.npu if r.ok and r.profile else None),
                     *row[5:]) for row, r in zip(rows, sorted(
                         results, key=lambda r: (r.model.name, r.board)), strict=True)]
            columns = (*columns[:5], "NPU", *columns[5:])
        return Table(None, columns, rows, first_width=40)


def format_db(value: float | None) -> str:
    if value is None:
        return "-"
    if value == float("inf"):
        return "exact"
    return f"{value:.1f}"


def validation_table(results: list[JobResult], bounds: Bounds | None = None) -> list[str]:
    """Plain-text rows of validation results: samples, exact, SQNR, max abs error, top-1 and
    the verdict (PASS / DISAGREES / FAILED with the error)."""
    return validation_rows(results, bounds).lines()


def validation_rows(results: list[JobResult], bounds: Bounds | None = None) -> Table:
    """`validation_table`'s table."""
    rows = []
    for r in sorted(results, key=lambda r: (r.model.name, r.board)):
        v = r.validation
        if r.ok and v is not None:
            top1 = v.top1_agreement
            verdict = "pass" if r.agrees(bounds) else "DISAGREES"
            rows.append((r.model.name, r.board, r.model.precision, str(v.samples),
                         "yes" if v.exact else "no", format_db(v.sqnr_db),
                         f"{v.max_abs_error:.3g}", "-" if top1 is None else f"{100 * top1:.1f}%",
                         verdict + (" (cached)" if r.cached else "")))
        else:
            rows.append((r.model.name, r.board, r.model.precision, "-", "-", "-", "-", "-",
                         f"FAILED ({r.error_type}): {(r.error or '')[:60]}"))
    return Table(None, ("model", "board", "precision", "samples", "exact", "SQNR dB",
                        "max abs err", "top-1", "verdict"), rows, first_width=40)
