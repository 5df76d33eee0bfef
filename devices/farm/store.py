"""The results database: SQLite in WAL mode, one transaction per result, so nothing is lost.

A farm process that is killed (SIGKILL, power cut) leaves every result it had recorded; a new
run asks `done()` which job keys already have a good result and skips them. Failed results are
kept too (a later run tries those jobs again); the newest row of a key is what reports show.

Profiles and validations share the table (`kind`); a validation's comparison is stored whole
(`validation`, JSON) with its SQNR and top-1 agreement in columns of their own. A validation
run stores its pass thresholds with the run (`runs.request`, key `bounds`); results read back
carry their run's thresholds, so verdicts given later are the ones the run gave.

Only the process that schedules writes (Dask workers send their results back to it); other
processes (`edgesdk farm results`, reports) may read at any time.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sdk.base.tables import jsonable
from sdk.devices.farm.jobs import JobSettings, ModelInfo
from sdk.devices.farm.results import Bounds, FarmEvent, JobResult
from sdk.devices.results import Profile, Validation

SCHEMA_VERSION = 2

#: columns added since version 1 (ALTER TABLE adds them to older databases when opened for
#: writing; readers of an older database see every result as a profile)
_ADDED = (("kind", "TEXT NOT NULL DEFAULT 'profile'"), ("validation", "TEXT"),
          ("sqnr_db", "REAL"), ("top1_agreement", "REAL"))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL DEFAULT 'running',
    farm TEXT,
    host TEXT,
    pid INTEGER,
    backend TEXT,
    request TEXT
);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_key TEXT NOT NULL,
    run_id INTEGER REFERENCES runs(id),
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    model_sha256 TEXT NOT NULL,
    model_name TEXT NOT NULL,
    precision TEXT,
    board TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    started REAL NOT NULL,
    finished REAL NOT NULL,
    p50_ms REAL,
    p90_ms REAL,
    governor TEXT,
    temperature_c REAL,
    error TEXT,
    error_type TEXT,
    executed_by TEXT,
    model TEXT NOT NULL,
    settings TEXT NOT NULL,
    board_config TEXT NOT NULL,
    board_info TEXT,
    profile TEXT,
    kind TEXT NOT NULL DEFAULT 'profile',
    validation TEXT,
    sqnr_db REAL,
    top1_agreement REAL
);
CREATE INDEX IF NOT EXISTS results_by_key ON results (job_key, status, id);
CREATE INDEX IF NOT EXISTS results_by_run ON results (run_id);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER REFERENCES runs(id),
    time REAL NOT NULL,
    board TEXT,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


class ResultStore:
    """The farm's SQLite database. Use as a context manager or call `close()`."""

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False):
        self.path = Path(path)
        if readonly:
            if not self.path.exists():
                raise FileNotFoundError(f"no results database at {self.path}")
            self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30,
                                        check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed result survives a power cut too, not only a killed process
            self.conn.execute("PRAGMA synchronous=FULL")
            with self.conn:
                self.conn.executescript(_SCHEMA)
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                                  (str(SCHEMA_VERSION),))
                have = {row[1] for row in self.conn.execute("PRAGMA table_info(results)")}
                for name, declaration in _ADDED:
                    if name not in have:
                        self.conn.execute(f"ALTER TABLE results ADD COLUMN {name} {declaration}")
                self.conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                                  (str(SCHEMA_VERSION),))
        self.conn.row_factory = sqlite3.Row
        self.columns = {row[1] for row in self.conn.execute("PRAGMA table_info(results)")}
        self.conn.execute("PRAGMA busy_timeout=30000")
        self._bounds: dict[int, Bounds | None] = {}

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ runs
    def begin_run(self, *, farm: str | None, backend: str, request: dict[str, Any]) -> int:
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO runs (started, farm, host, pid, backend, request) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), farm, socket.gethostname(), os.getpid(), backend,
                 json.dumps(jsonable(request))))
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str = "finished") -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET finished = ?, status = ? WHERE id = ?",
                              (time.time(), status, run_id))

    def killed_run(self, run_id: int | None) -> None:
        """Mark a run whose process died holding the run lock ('running' -> 'killed')."""
        if run_id is None:
            return
        with self.conn:
            self.conn.execute("UPDATE runs SET status = 'killed' WHERE id = ? AND "
                              "status = 'running'", (run_id,))

    def runs(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM runs ORDER BY id").fetchall()
        return [dict(r) for r in rows]

    def run_bounds(self, run_id: int | None) -> Bounds | None:
        """The validation thresholds a run used (None: not a validation run, or unknown)."""
        if run_id is None:
            return None
        if run_id not in self._bounds:
            row = self.conn.execute("SELECT request FROM runs WHERE id = ?", (run_id,)).fetchone()
            request = json.loads(row["request"] or "{}") if row is not None else {}
            bounds = request.get("bounds") if isinstance(request, dict) else None
            self._bounds[run_id] = Bounds(**bounds) if isinstance(bounds, dict) else None
        return self._bounds[run_id]

    def last_run_id(self) -> int | None:
        row = self.conn.execute("SELECT max(id) FROM runs").fetchone()
        return None if row[0] is None else int(row[0])

    # ------------------------------------------------------------------ results
    def record(self, result: JobResult) -> None:
        """Store one result in its own transaction (committed before this returns)."""
        p, v = result.profile, result.validation
        info = p.device.to_dict() if p else (v.device.to_dict() if v else None)
        with self.conn:
            self.conn.execute(
                "INSERT INTO results (job_key, run_id, status, model_sha256, model_name, "
                "precision, board, attempts, started, finished, p50_ms, p90_ms, governor, "
                "temperature_c, error, error_type, executed_by, model, settings, board_config, "
                "board_info, profile, kind, validation, sqnr_db, top1_agreement) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (result.job_key, result.run_id, result.status, result.model.sha256,
                 result.model.name, result.model.precision, result.board, result.attempts,
                 result.started, result.finished, p.latency.p50_ms if p else None,
                 p.latency.p90_ms if p else None, p.governor if p else None,
                 p.temperature_c if p else None, result.error, result.error_type,
                 result.executed_by, _dump(result.model.to_dict()),
                 _dump(result.settings.to_dict()), _dump(dict(result.board_config)),
                 _dump(info) if info else None, _dump(p.to_dict()) if p else None,
                 result.kind, _dump(v.to_dict()) if v else None,
                 # SQLite REAL holds inf: an exact match sorts above every finite SQNR
                 v.sqnr_db if v else None, v.top1_agreement if v else None))

    def done(self, keys: Iterable[str]) -> dict[str, JobResult]:
        """The newest good result of each key that has one."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, JobResult] = {}
        for chunk in _chunks(keys, 500):
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"SELECT * FROM results WHERE id IN (SELECT max(id) FROM results WHERE status = "
                f"'ok' AND job_key IN ({marks}) GROUP BY job_key)", chunk).fetchall()
            for row in rows:
                out[row["job_key"]] = self._result(row)
        return out

    def latest(self, keys: Iterable[str]) -> dict[str, JobResult]:
        """The newest result of each key (good or failed)."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, JobResult] = {}
        for chunk in _chunks(keys, 500):
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"SELECT * FROM results WHERE id IN (SELECT max(id) FROM results WHERE job_key "
                f"IN ({marks}) GROUP BY job_key)", chunk).fetchall()
            for row in rows:
                out[row["job_key"]] = self._result(row)
        return out

    def results(self, *, run_id: int | None = None, model: str | None = None,
                board: str | None = None, status: str | None = None,
                kind: str | None = None, newest_only: bool = True) -> list[JobResult]:
        """Stored results, filtered; `newest_only` keeps the newest row per job key."""
        where, args = [], []
        if kind is not None:
            if "kind" in self.columns:
                where.append("kind = ?")
                args.append(kind)
            elif kind != "profile":  # a version-1 database holds profiles only
                return []
        if run_id is not None:
            where.append("run_id = ?")
            args.append(run_id)
        if model is not None:
            where.append("(model_name = ? OR model_sha256 = ? OR model_sha256 LIKE ?)")
            args += [model, model, f"{model}%"]
        if board is not None:
            where.append("board = ?")
            args.append(board)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        if newest_only:
            sql = (f"SELECT * FROM results WHERE id IN (SELECT max(id) FROM results{clause} "
                   "GROUP BY job_key) ORDER BY id")
        else:
            sql = f"SELECT * FROM results{clause} ORDER BY id"
        return [self._result(r) for r in self.conn.execute(sql, args).fetchall()]

    def count(self, *, status: str | None = None, run_id: int | None = None) -> int:
        where, args = [], []
        if status:
            where.append("status = ?")
            args.append(status)
        if run_id is not None:
            where.append("run_id = ?")
            args.append(run_id)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        return int(self.conn.execute(f"SELECT count(*) FROM results{clause}", args)
                   .fetchone()[0])

    # ------------------------------------------------------------------ events
    def event(self, run_id: int | None, board: str | None, kind: str, detail: str) -> FarmEvent:
        event = FarmEvent(time=time.time(), board=board, kind=kind, detail=detail)
        with self.conn:
            self.conn.execute("INSERT INTO events (run_id, time, board, kind, detail) "
                              "VALUES (?, ?, ?, ?, ?)",
                              (run_id, event.time, board, kind, detail))
        return event

    def events(self, run_id: int | None = None, *, board: str | None = None,
               kind: str | None = None) -> list[FarmEvent]:
        where, args = [], []
        for column, value in (("run_id", run_id), ("board", board), ("kind", kind)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        rows = self.conn.execute(f"SELECT * FROM events{clause} ORDER BY id", args).fetchall()
        return [FarmEvent(time=r["time"], board=r["board"], kind=r["kind"], detail=r["detail"])
                for r in rows]

    def integrity_ok(self) -> bool:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def _result(self, row: sqlite3.Row) -> JobResult:
        result = _result(row)
        if result.validation is None:
            return result
        return dataclasses.replace(result, bounds=self.run_bounds(result.run_id))


def _dump(value: Any) -> str:
    return json.dumps(jsonable(value), sort_keys=True)


def _chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def _result(row: sqlite3.Row) -> JobResult:
    from sdk.base.tables import from_jsonable

    profile = Profile.from_dict(from_jsonable(json.loads(row["profile"]))) \
        if row["profile"] else None
    validation = Validation.from_dict(json.loads(row["validation"])) \
        if "validation" in row.keys() and row["validation"] else None  # noqa: SIM118 (Row)
    return JobResult(
        job_key=row["job_key"], model=ModelInfo.from_dict(json.loads(row["model"])),
        board=row["board"], settings=JobSettings(**json.loads(row["settings"])),
        status=row["status"], attempts=int(row["attempts"]), started=float(row["started"]),
        finished=float(row["finished"]), profile=profile, error=row["error"],
        error_type=row["error_type"], run_id=row["run_id"], executed_by=row["executed_by"],
        board_config=json.loads(row["board_config"]), validation=validation)
