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
from typing import Any

LEVELS = ("debug", "info", "warning", "error")

#: native log lines dropped below `info`: LiteRT's minimal logger ("INFO: ...", "VERBOSE: ...")
#: and TensorFlow / absl C++ logs at severity I ("I0000 00:00:... file.cc:12] ...",
#: "2026-12-06 07:00:00.000000: I tensorflow/...")
NATIVE_INFO = re.compile(rb"^(?:INFO: |VERBOSE: |I\d{4} \d\d:\d\d:\d\d|"
                         rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: I )")
#: a LiteRT INFO line written while another writer's line is open (a progress bar redraw ends
#: without a newline, in an escape sequence or a carriage return): dropped from inside it
NATIVE_INFO_MIDLINE = re.compile(rb"(?<=\x1b\[0m|\x1b\[2K)(?:INFO|VERBOSE): [^\n]*\n|"
                                 rb"(?<=\r)(?:INFO|VERBOSE): [^\n]*\n")
_NATIVE_START = re.compile(rb"(?:INFO|VERBOSE): ")
_OPEN_AFTER = re.compile(rb"(?:\x1b\[[0-9;?]*[A-Za-z]|\r)\Z")
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


def stderr_is_terminal() -> bool:
    """The user's stderr is a terminal (also while fd 2 is the filter's pipe: sys.stderr is
    then a `_TerminalStderr` that says what it was)."""
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class _TerminalStderr:
    """sys.stderr while the filter holds fd 2: the same stream, answering isatty() as it did
    before (rich, the farm's live table and the progress bars ask it)."""

    def __init__(self, inner: Any, tty: bool) -> None:
        self._inner = inner
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty

    def write(self, text: str) -> int:
        return int(self._inner.write(text))

    def flush(self) -> None:
        self._inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _NativeFilter:
    """Forward what is written to fd 2, dropping native INFO lines (see the module doc)."""

    def __init__(self) -> None:
        sys.stderr.flush()
        self.stderr = sys.stderr
        tty = stderr_is_terminal()
        self.saved = os.dup(2)
        read, write = os.pipe()
        self.read = read
        os.dup2(write, 2)
        os.close(write)
        self.thread = threading.Thread(target=self._pump, name="edgesdk-stderr", daemon=True)
        self.thread.start()
        self.proxy = _TerminalStderr(self.stderr, tty)
        sys.stderr = self.proxy  # type: ignore[assignment]

    def _pump(self) -> None:
        tail = b""            # the last bytes forwarded
        line = b""            # the start of a line not decided yet
        # of the current line: "undecided", "pass", "drop", or "drop-line" (a native INFO line
        # inside another writer's open line: dropped up to its newline; LiteRT writes the
        # "INFO: " prefix and the message in separate writes)
        mode = "undecided"
        while True:
            try:
                chunk = os.read(self.read, 65536)
            except OSError:
                break
            if not chunk:
                break
            out: list[bytes] = []
            for k, piece in enumerate(chunk.splitlines(keepends=True)):
                if mode == "pass":
                    before = out[-1] if out else tail
                    # a write of its own (a new read, or after an escape sequence) starting a
                    # native INFO line, inside a line another writer left open
                    if _NATIVE_START.match(piece) and (k == 0 or _OPEN_AFTER.search(before)):
                        if not piece.endswith(b"\n"):
                            mode = "drop-line"
                        continue
                    out.append(NATIVE_INFO_MIDLINE.sub(b"", piece))
                elif mode == "drop-line":
                    if piece.endswith(b"\n"):
                        mode = "pass"  # the other writer's line is still open
                    continue
                elif mode == "undecided":
                    line += piece
                    first = line[:1]
                    if (piece.endswith((b"\n", b"\r")) or len(line) >= _DECIDE
                            or not (first in (b"I", b"V") or first.isdigit())):
                        mode = "drop" if NATIVE_INFO.match(line) else "pass"
                        if mode == "pass":
                            out.append(NATIVE_INFO_MIDLINE.sub(b"", line))
                        line = b""
                if piece.endswith((b"\n", b"\r")) and mode != "drop-line":
                    mode = "undecided"
            if out:
                data = b"".join(out)
                tail = (tail + data)[-16:]
                self._write(data)
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
        if sys.stderr is self.proxy:
            sys.stderr = self.stderr
        os.dup2(self.saved, 2)  # closes the pipe's write end: the pump sees EOF
        self.thread.join(5)
        os.close(self.read)
        os.close(self.saved)


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
