"""What every `edgesdk` command prints, through one renderer (rich).

- Tables and key / value panels go to stdout; progress (bars with elapsed time and ETA on a
  terminal, one line per stage start and end otherwise) and messages go to stderr.
- `--json`: the command's result as one JSON document on stdout and nothing else there; an
  error becomes `{"error": {...}}` on stdout too (and its message on stderr).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from sdk.base.tables import Section, jsonable
from sdk.base.tables import Table as ReportTable
from sdk.cli.exit_codes import ExitCode
from sdk.cli.logs import stderr_is_terminal

ProgressFn = Callable[[str, int, int], None]

#: columns a table may use when stdout is a file or a pipe: wide enough that no cell is folded
#: (a row stays one line for grep and awk: layer names, paths, the command an error names);
#: tables are as wide as their content, never padded to this
PIPE_WIDTH = 4096


def stdout_console() -> Console:
    terminal = sys.stdout.isatty()
    return Console(file=sys.stdout, highlight=False, soft_wrap=False,
                   width=None if terminal else PIPE_WIDTH)


def stderr_console() -> Console:
    return Console(file=sys.stderr, highlight=False, force_terminal=stderr_is_terminal() or None)


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]],
          *, first_left: bool = True, console: Console | None = None) -> None:
    """A table on stdout: the first column left-aligned, the others right-aligned."""
    # no vertical rules: rows stay whitespace-separated columns (grep, awk, logs)
    out = Table(title=title, title_justify="left", header_style="bold", show_edge=False,
                pad_edge=False, box=box.SIMPLE_HEAD)
    for i, column in enumerate(columns):
        out.add_column(column, justify="left" if i == 0 and first_left else "right",
                       overflow="fold")
    for row in rows:  # Text: cells are data, never rich markup ("[1, 64]", layer names)
        out.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    (console or stdout_console()).print(out)


def fields(title: str | None, rows: Sequence[tuple[str, Any]],
           console: Console | None = None) -> None:
    """A key / value table on stdout (empty values left out)."""
    out = Table(title=title, title_justify="left", show_header=False, show_edge=False,
                pad_edge=False, box=None)
    out.add_column(style="bold")
    out.add_column(overflow="fold")
    for key, value in rows:
        if value is None or value == "":
            continue
        out.add_row(Text(key), Text(str(value)))
    (console or stdout_console()).print(out)


def report(sections: Sequence[Section]) -> None:
    """A library report (`ExportResult.sections()`, `FarmRun.sections()` ...): its lines as they
    are, its tables through `table`."""
    console = stdout_console()
    for section in sections:
        if isinstance(section, ReportTable):
            if section.title:
                print(section.title, flush=True)
            table(None, section.header, section.rows, console=console)
        else:
            print(section, flush=True)


def message(text: str) -> None:
    """A message for the user (not the result): stderr, so that stdout stays the result's."""
    print(text, file=sys.stderr, flush=True)


def emit_json(data: Any) -> None:
    """The command's result: one JSON document on stdout (non-finite floats as strings)."""
    print(json.dumps(jsonable(data), indent=2), flush=True)


def error_document(command: str, exc: BaseException, code: ExitCode) -> dict[str, Any]:
    """What `--json` prints on stdout when a command fails."""
    return {"error": {"command": command, "type": type(exc).__name__, "message": str(exc),
                      "exit_code": code.code, "exit_name": code.name}}


@dataclass
class _PlainProgress:
    """Progress where stderr is no terminal: a line when a stage starts and when it ends."""

    stream: TextIO
    stage: str | None = None
    started: float = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.finish()
            self.stage, self.started = stage, time.monotonic()
            print(f"{stage}: {total} ...", file=self.stream, flush=True)
        if total > 0 and done >= total:
            self.finish()

    def finish(self) -> None:
        if self.stage is not None:
            print(f"{self.stage}: done in {time.monotonic() - self.started:.1f}s",
                  file=self.stream, flush=True)
            self.stage = None


@contextmanager
def progress(enabled: bool = True) -> Iterator[ProgressFn | None]:
    """A `progress(stage, done, total)` for a command's long stages (None when disabled):
    on a terminal, one rich bar per stage with done/total, elapsed time and ETA."""
    if not enabled:
        yield None
        return
    console = stderr_console()
    if not console.is_terminal:
        plain = _PlainProgress(sys.stderr)
        try:
            yield plain
        finally:
            plain.finish()
        return
    with Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                  console=console, transient=False) as bars:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=max(total, 1))
            bars.update(tasks[stage], completed=done, total=max(total, 1))

        yield update


def human_bytes(value: int | float | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)  # pragma: no cover
