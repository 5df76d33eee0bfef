"""Progress of a farm run: a live table per board (rich), or one log line per event."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from sdk.devices.farm.inventory import BoardConfig
from sdk.devices.farm.jobs import Job
from sdk.devices.farm.results import FarmEvent, JobResult, format_ms

_STYLE = {"waiting": "dim", "checking": "cyan", "running": "bold green", "cooldown": "blue",
          "quarantined": "bold red", "done": "green"}


def outcome(r: JobResult) -> str:
    """A finished job in a few words: its latency, or its validation's verdict."""
    v = r.validation
    if v is None:
        return f"p50 {format_ms(r.p50_ms)} ms p90 {format_ms(r.p90_ms)} ms"
    top1 = "" if v.top1_agreement is None else f", top-1 {100 * v.top1_agreement:.1f}%"
    if v.exact:
        return f"outputs exact ({v.samples} samples)"
    return (f"outputs differ: SQNR {v.sqnr_db:.1f} dB, max abs err {v.max_abs_error:.3g}"
            f"{top1} ({v.samples} samples)")


class _Tally:
    def __init__(self, boards: list[BoardConfig], jobs: list[Job], done: dict[str, JobResult]):
        self.started = time.monotonic()
        self.order = [b.name for b in boards]
        self.total = {b.name: 0 for b in boards}
        self.cached = {b.name: 0 for b in boards}
        for job in jobs:
            self.total[job.board] += 1
            if job.key in done:
                self.cached[job.board] += 1
        self.state = {b.name: "waiting" for b in boards}
        self.ok = dict.fromkeys(self.order, 0)
        self.failed = dict.fromkeys(self.order, 0)
        self.current: dict[str, str] = {}
        self.last: dict[str, str] = {}
        self.note: dict[str, str] = {}

    def update(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "board":
            name = data["board"]
            self.state[name] = data["state"]
            if data.get("reason"):
                self.note[name] = str(data["reason"])
            elif data.get("summary"):
                self.note.setdefault(name, str(data["summary"]))
        elif kind == "job_started":
            job: Job = data["job"]
            attempt = data.get("attempt", 1)
            self.current[job.board] = job.model.name + (f" (try {attempt})" if attempt > 1
                                                        else "")
        elif kind == "job_finished":
            result: JobResult = data["result"]
            self.current.pop(result.board, None)
            if result.ok:
                self.ok[result.board] += 1
                self.last[result.board] = f"{result.model.name}: {outcome(result)}"
            else:
                self.failed[result.board] += 1
                self.last[result.board] = f"{result.model.name}: FAILED {result.error_type}"


class LiveProgress(_Tally):
    """A rich Live table: board, state, done/total, failed, current job, last result."""

    def __init__(self, boards: list[BoardConfig], jobs: list[Job], done: dict[str, JobResult],
                 stream: TextIO | None = None):
        super().__init__(boards, jobs, done)
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream or sys.stderr)
        self.live = Live(self._render(), console=self.console, refresh_per_second=4,
                         transient=False)

    def _render(self) -> Any:
        from rich.table import Table

        elapsed = time.monotonic() - self.started
        table = Table(title=f"edgesdk farm  {elapsed:6.1f} s", title_justify="left",
                      expand=False)
        for column in ("board", "state", "done", "failed", "now", "last result / note"):
            table.add_column(column, no_wrap=column != "last result / note")
        for name in self.order:
            state = self.state[name]
            finished = self.ok[name] + self.failed[name] + self.cached[name]
            done = f"{finished}/{self.total[name]}"
            if self.cached[name]:
                done += f" ({self.cached[name]} cached)"
            note = self.note.get(name, "") if state == "quarantined" else \
                self.last.get(name, self.note.get(name, ""))
            table.add_row(name, f"[{_STYLE.get(state, '')}]{state}[/]", done,
                          str(self.failed[name]) if self.failed[name] else "",
                          self.current.get(name, ""), note[:70])
        return table

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        self.update(kind, data)
        if kind == "event":
            event: FarmEvent = data["event"]
            if event.kind in ("quarantined", "retry"):
                self.live.console.print(f"[yellow]{event.board}: {event.kind}: "
                                        f"{event.detail[:200]}[/]")
        self.live.update(self._render())

    def start(self) -> None:
        self.live.start()

    def stop(self) -> None:
        self.live.update(self._render())
        self.live.stop()


class LogProgress(_Tally):
    """One line per job and per incident (for logs and CI)."""

    def __init__(self, boards: list[BoardConfig], jobs: list[Job], done: dict[str, JobResult],
                 stream: TextIO | None = None):
        super().__init__(boards, jobs, done)
        self.stream = stream or sys.stderr
        cached = sum(self.cached.values())
        total = sum(self.total.values())
        print(f"farm: {total} jobs on {len(self.order)} boards"
              + (f", {cached} already done" if cached else ""), file=self.stream, flush=True)

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        self.update(kind, data)
        t = time.monotonic() - self.started
        line = None
        if kind == "job_finished":
            r: JobResult = data["result"]
            what = outcome(r) if r.ok else f"FAILED ({r.error_type}): {(r.error or '')[:160]}"
            line = f"[{t:7.1f}s] {r.board}: {r.model.name}: {what}"
        elif kind == "event":
            e: FarmEvent = data["event"]
            line = f"[{t:7.1f}s] {e.board}: {e.kind}: {e.detail[:200]}"
        if line:
            print(line, file=self.stream, flush=True)
