"""Shared by the device tests: find processes without `ps` (fresh Debian images lack procps)."""

from __future__ import annotations

import os


def processes(marker: str) -> list[str]:
    """Command lines of the running processes that contain `marker` (this process excluded)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                args = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if marker in args:
            found.append(args)
    return found
