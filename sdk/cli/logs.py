"""How loud `edgesdk` is: `-q`, `-v`/`-vv`, `--log-level`, for Python and for native code.

LiteRT (and TensorFlow's C++ core) print to the process's stderr file descriptor directly
("INFO: Created TensorFlow Lite XNNPACK delegate for CPU."), past Python's `sys.stderr`, and
LiteRT's minimal logger has no switch (TF_CPP_MIN_LOG_LEVEL does not reach it). So below
`info` the command runs with file descriptor 2 on a pipe, and a thread forwards everything but
those native INFO lines to the real stderr, byte for byte (progress bars' carriage returns too).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

LEVELS = ("debug", "info", "warning", "error")

#: native log lines dropped below `info`: LiteRT's minimal logger ("INFO: ...", "VERBOSE: ...")
#: and TensorFlow / absl C++ logs at severity I ("I0000 00:00:... file.cc:12] ...",
#: "2026-12-06 07:00:00.000000: I tensorflow/...")
NATIVE_INFO = re.compile(rb"^(?:INFO: |VERBOSE: |I\d{4} \d\d:\d\d:\d\d|"
                         rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: I )")
#: the longest prefix NATIVE_INFO needs to decide
_DECIDE = 32


def level_from(quiet: bool, verbose: int, log_level: str | None) -> str:
    """--log-level wins; else -q is `error`, -v `info`, -vv `debug`, nothing `warning`."""
    if log_level:
        return log_level
    if quiet:
        return "error"
    return ("warning", "info", "debug")[min(verbose, 2)]


def configure(level: str) -> None:
    """Python's logging and warnings for one command at `level`."""
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s", force=True)
    # TensorFlow's own C++ logs, if a frontend imports it later (0 all ... 3 errors only)
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = {"debug": "0", "info": "0", "warning": "2",
                                          "error": "3"}[level]
    if level != "debug":
        # deprecation noise from dependencies (TensorFlow, onnx, torch, dask ...); edgesdk's
        # own warnings (FidelityWarning ...) are UserWarnings and stay
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category)
    if level == "error":
        warnings.filterwarnings("ignore")


#: whether stderr was a terminal when the filter took fd 2 over (rich asks sys.stderr, which
#: is the filter's pipe by then)
_STDERR_TTY = [False]


def stderr_is_terminal() -> bool:
    """The user's stderr is a terminal (true also while fd 2 is the filter's pipe)."""
    try:
        return _STDERR_TTY[0] or os.isatty(2)
    except OSError:
        return False


class _NativeFilter:
    """Forward what is written to fd 2, dropping native INFO lines (see the module doc)."""

    def __init__(self) -> None:
        sys.stderr.flush()
        _STDERR_TTY[0] = os.isatty(2)
        self.saved = os.dup(2)
        read, write = os.pipe()
        self.read = read
        os.dup2(write, 2)
        os.close(write)
        self.thread = threading.Thread(target=self._pump, name="edgesdk-stderr", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        line = b""            # the start of a line not decided yet
        mode = "undecided"    # of the current line: "undecided", "pass" or "drop"
        while True:
            try:
                chunk = os.read(self.read, 65536)
            except OSError:
                break
            if not chunk:
                break
            out = []
            for piece in chunk.splitlines(keepends=True):
                if mode == "pass":
                    out.append(piece)
                elif mode == "undecided":
                    line += piece
                    first = line[:1]
                    if (piece.endswith((b"\n", b"\r")) or len(line) >= _DECIDE
                            or not (first in (b"I", b"V") or first.isdigit())):
                        mode = "drop" if NATIVE_INFO.match(line) else "pass"
                        if mode == "pass":
                            out.append(line)
                        line = b""
                if piece.endswith((b"\n", b"\r")):
                    mode = "undecided"
            if out:
                self._write(b"".join(out))
        if line and not NATIVE_INFO.match(line):
            self._write(line)

    def _write(self, data: bytes) -> None:
        while data:
            try:
                written = os.write(self.saved, data)
            except OSError:
                return
            data = data[written:]

    def close(self) -> None:
        sys.stderr.flush()
        os.dup2(self.saved, 2)  # closes the pipe's write end: the pump sees EOF
        self.thread.join(5)
        os.close(self.read)
        os.close(self.saved)
        _STDERR_TTY[0] = False


@contextmanager
def native_log_filter(level: str) -> Iterator[None]:
    """Below `info`, drop native INFO lines from fd 2 while the block runs."""
    if level in ("debug", "info"):
        yield
        return
    try:
        keep = _NativeFilter()
    except OSError:  # no fd 2 (a daemon, a closed stderr): nothing to filter
        yield
        return
    try:
        yield
    finally:
        keep.close()
