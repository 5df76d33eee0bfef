"""A dependency-free progress bar for long stages (calibration, validation) on stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Call as `bar(stage, done, total)`. On a terminal it redraws one line per stage; otherwise
    it prints a line when a stage starts and when it ends (logs stay readable)."""

    def __init__(self, stream: TextIO | None = None, width: int = 30, interval: float = 0.1):
        self.stream = stream or sys.stderr
        self.width = width
        self.interval = interval
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.stage: str | None = None
        self.last = 0.0
        self.started = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != self.stage:
            self.finish()
            self.stage, self.started, self.last = stage, now, 0.0
            if not self.tty:
                print(f"{stage}: {total} samples ...", file=self.stream, flush=True)
        finished = total > 0 and done >= total
        if self.tty and (finished or now - self.last >= self.interval):
            self.last = now
            frac = done / total if total else 1.0
            filled = round(frac * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            print(f"\r{stage:<28} [{bar}] {done}/{total} {now - self.started:5.1f}s", end="",
                  file=self.stream, flush=True)
        if finished:
            self.finish()

    def finish(self) -> None:
        if self.stage is None:
            return
        if self.tty:
            print(file=self.stream, flush=True)
        else:
            print(f"{self.stage}: done in {time.monotonic() - self.started:.1f}s",
                  file=self.stream, flush=True)
        self.stage = None
