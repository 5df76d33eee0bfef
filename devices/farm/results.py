"""Typed results of a farm run (dataclasses; `to_dict()` gives JSON-ready data)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sdk.devices.farm.jobs import JobSettings, ModelInfo
from sdk.devices.results import Profile
from sdk.tables import format_table, jsonable

OK, FAILED = "ok", "failed"


def format_ms(value: float | None) -> str:
    """Milliseconds with 3 significant digits (0.00123, 1.23, 123), "-" for None."""
    if value is None:
        return "-"
    return f"{value:.3g}" if value < 1000 else f"{value:.0f}"


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

    @property
    def ok(self) -> bool:
        return self.status == OK

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
            "boards": [b.to_dict() for b in self.boards],
            "events": [e.to_dict() for e in self.events],
            "results": [r.to_dict() for r in self.results],
        })

    def table(self) -> str:
        """A plain-text table: one row per job."""
        rows = []
        for r in sorted(self.results, key=lambda r: (r.model.name, r.board)):
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
        lines = format_table(("model", "board", "precision", "p50 ms", "p90 ms", "runs",
                              "governor", "temp C", "status"), rows, first_width=40)
        for b in self.boards:
            if b.state != "ok":
                lines.append(f"  board {b.name}: {b.state.upper()}: {b.reason}")
        lines.append(f"  {len(self.ok)} ok ({len(self.cached)} already done), "
                     f"{len(self.failed)} failed, {self.wall_s:.1f} s; results in "
                     f"{self.database} (run {self.run_id})")
        return "\n".join(lines)
