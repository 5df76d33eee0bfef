"""Runners whose program is a script of ours run by the device's own Python (litert-python,
rknn-lite): the script and runner_common.py pushed to the device, the Python that can run it
found once per session, the argv every such script takes, the report they print."""

from __future__ import annotations

import functools
import hashlib
import posixpath
from pathlib import Path
from typing import Any

from sdk.devices.base import CommandResult, sha256_file
from sdk.devices.runners.base import (
    Runner,
    RunnerReport,
    RunRequest,
    parse_marked_json,
    probe_python,
)

#: the module the runner scripts share, and its name beside them on the device
COMMON = Path(__file__).with_name("runner_common.py")
REMOTE_COMMON = "edgesdk_runner_common.py"
MARK = "EDGESDK_RESULT "
#: tried in order when the device config names no Python
PYTHON_CANDIDATES = ("python3", "python")


@functools.cache
def scripts_sha256(script: Path) -> str:
    """One SHA-256 over a runner script and runner_common.py (the session cache's key: a new
    edgesdk that changes either asks the device's Pythons again)."""
    return hashlib.sha256((sha256_file(script) + sha256_file(COMMON)).encode()).hexdigest()


class PythonScriptRunner(Runner):
    """A runner script (`SCRIPT`, pushed as `REMOTE_NAME` to the device's bin folder) that the
    device's Python runs; subclasses say which Python, what else the command takes and how the
    report reads."""

    SCRIPT: Path
    REMOTE_NAME: str
    #: "no Python with <needs> on the <where>"
    needs = ""
    where = "device"

    def __init__(self, device: Any):
        super().__init__(device)
        self.python: str | None = None
        self.check: dict[str, Any] | None = None
        self.why_unavailable = ""

    @property
    def script(self) -> str:
        return posixpath.join(self.bindir, self.REMOTE_NAME)

    @property
    def common(self) -> str:
        return posixpath.join(self.bindir, REMOTE_COMMON)

    def script_sha256(self) -> str:
        return scripts_sha256(self.SCRIPT)

    def pythons(self) -> tuple[str, ...]:
        """The Pythons to try: the one the device config names, else PYTHON_CANDIDATES."""
        configured = self.device.config.runner.python
        return (configured,) if configured else PYTHON_CANDIDATES

    def check_args(self) -> tuple[str, ...]:
        """What the script's `--check` is given besides."""
        return ()

    def available(self) -> bool:
        """Is there a Python on the device that runs the script? (pushes it to ask; the answer
        is kept for the session, see `probe_python`)"""
        if self.check is not None:
            return True
        found = probe_python(self.device, self.name, self.SCRIPT, self.script,
                             self.script_sha256(), self.pythons(), MARK, self.check_args(),
                             support=((COMMON, self.common),))
        self.python, self.check = found.python, found.check
        if found.python is None:
            self.why_unavailable = (f"no Python with {self.needs} on the {self.where} ("
                                    + "; ".join(found.reasons) + ")")
        return found.python is not None

    def code_files(self) -> list[str]:
        """The script and the module it imports (checksummed on the device before a run)."""
        return [self.script, self.common]

    def ready(self) -> str:
        """The device's Python that runs the script (prepare() finds it, or says why not)."""
        if self.python is None:
            self.prepare()
        assert self.python is not None
        return self.python

    def script_argv(self, request: RunRequest, *middle: str) -> list[str]:
        """python script MODEL --runs --warmup, then `middle`, then what the request asks of
        every script (its outputs folder, its minimum duration)."""
        python = self.ready()
        argv = [python, self.script, request.model, "--runs", str(request.runs),
                "--warmup", str(request.warmup), *middle]
        if request.outputs_dir:
            argv += ["--outputs-dir", request.outputs_dir]
        if request.min_duration_s > 0:
            argv += ["--min-duration", repr(float(request.min_duration_s))]
        return argv

    def script_report(self, data: dict[str, Any], **fields: Any) -> RunnerReport:
        """The script's report line (`read_report`) as a RunnerReport: what every script
        measures, plus `fields` (the runner's kernels, isa, threads, per_layer, delegates)."""
        return RunnerReport(
            runner=self.name,
            runtime=f"{data.get('runtime')} {data.get('runtime_version')} (Python "
                    f"{data.get('python')}, numpy {data.get('numpy')})",
            machine=data.get("machine"), init_ms=data.get("init_ms"),
            first_run_ms=data.get("first_run_ms"),
            latencies_ms=tuple(float(x) for x in data.get("latencies_ms") or ()),
            # VmHWM of the script's own process (runner_common.peak_rss_bytes)
            peak_memory_bytes=data.get("peak_rss_bytes"),
            outputs=tuple(data.get("outputs") or ()), raw=data, **fields)

    def read_report(self, result: CommandResult) -> dict[str, Any]:
        """The JSON object of the script's EDGESDK_RESULT line (a RunnerError when it reports
        an error or none)."""
        return parse_marked_json(result, MARK, self.name, self.device)
