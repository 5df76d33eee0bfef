"""The runner interface, its report, and the choice of runner for a device and a model."""

from __future__ import annotations

import json
import os
import posixpath
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.devices.base import CommandResult, Device
from sdk.devices.errors import DeviceCommandError, RunnerError

#: progress(stage, done, total), as elsewhere in edgesdk (drawn by sdk.cli.output)
StageProgress = Callable[[str, int, int], None]

#: ELF e_machine -> ABI
_ELF_ABI = {183: "arm64-v8a", 40: "armeabi-v7a", 62: "x86_64"}


@dataclass(frozen=True)
class LayerTime:
    """One layer's share of a run, where the runner measures it."""

    name: str
    op: str
    mean_ms: float | None
    kernel: str = ""


@dataclass(frozen=True)
class RunRequest:
    """What to run: the model on the device, and how."""

    model: str                                  #: device path
    runs: int = 50
    warmup: int = 5
    threads: int | None = None
    cpus: str | None = None
    inputs: tuple[str, ...] = ()                #: device paths of .npy files (samples on axis 0)
    outputs_dir: str | None = None              #: where outputs go (validation)
    profile_layers: bool = False
    timeout: float | None = None
    #: time runs until both `runs` runs and this many seconds are done (MLPerf-style)
    min_duration_s: float = 0.0


@dataclass(frozen=True)
class RunnerReport:
    """What a runner measured, and what really ran (never what we hoped ran)."""

    runner: str                     #: edge-run, litert-python, benchmark_model
    runtime: str                    #: "ai_edge_litert 2.3.0", "edge-run (.edge 1.0)", ...
    machine: str | None             #: the architecture the runner's code executed as
    kernels: str                    #: "XNNPACK", "LiteRT builtin", "qs8_gemm...__dotprod", ...
    isa: tuple[str, ...]            #: SIMD features the CPU (as the runner saw it) offers
    threads: int | None
    init_ms: float | None
    first_run_ms: float | None
    latencies_ms: tuple[float, ...] = ()
    #: when the runner gives only statistics (benchmark_model, edge-run): name -> ms
    latency_stats_ms: Mapping[str, float] = field(default_factory=dict)
    #: timed runs the runner says it did (with a minimum duration it may do more than asked;
    #: None when it does not say)
    timed_runs: int | None = None
    peak_memory_bytes: int | None = None
    per_layer: tuple[LayerTime, ...] | None = None
    outputs: tuple[str, ...] = ()   #: device paths of output .npy files
    delegates: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict)
    #: CPU time per timed run, all threads, spinning included (edge-run: its process CPU clock
    #: around the timed runs over the runs); None where the runner does not measure it
    cpu_ms: float | None = None


class Runner(ABC):
    """Runs models of some kinds on one device."""

    name: str = ""
    #: model suffixes this runner runs
    suffixes: tuple[str, ...] = ()
    #: True when the runner can write the model's outputs (needed by validate)
    returns_outputs: bool = True
    #: True when one invocation takes every sample (inputs stacked on axis 0)
    batched_inputs: bool = True
    #: True when the runner pins itself to `cpus` (no taskset needed)
    pins_itself: bool = False
    #: True when the runner itself keeps timing until `min_duration_s` (else profile() runs
    #: it again with more runs)
    handles_min_duration: bool = False

    def __init__(self, device: Device):
        self.device = device

    @property
    def bindir(self) -> str:
        return posixpath.join(self.device.workdir, "bin")

    @abstractmethod
    def prepare(self, progress: StageProgress | None = None) -> list[str]:
        """Put what the runner needs on the device (idempotent); returns the device paths."""

    def prepare_model(self, local_model: Path, progress: StageProgress | None = None) -> None:
        """Anything a particular model needs besides the runner (delegates); default nothing."""
        return None

    @abstractmethod
    def command(self, request: RunRequest) -> tuple[list[str], bool]:
        """(argv, native): `native` when argv[0] is a binary of the device's ABI."""

    def code_files(self) -> list[str]:
        """Device paths of the code the command loads besides argv[0] (a script, delegate
        libraries): those we pushed are checksummed on the device right before the run."""
        return []

    @abstractmethod
    def parse(self, result: CommandResult, request: RunRequest) -> RunnerReport:
        """The report from the finished command."""

    def run(self, request: RunRequest, *, retries: int | None = None) -> RunnerReport:
        argv, native = self.command(request)
        retries = self.device.config.retries if retries is None else retries
        try:
            result = self.device.run(argv, timeout=request.timeout, native=native,
                                     cpus=None if self.pins_itself else request.cpus,
                                     retries=retries, check=False, verify=self.code_files())
        except DeviceCommandError as exc:  # pragma: no cover - check=False
            raise RunnerError(str(exc), device=self.device.name) from exc
        if result.exit_code == 127 or (result.exit_code == 126 and not result.stdout):
            raise RunnerError(
                f"{self.name} could not start (exit code {result.exit_code}): "
                f"{(result.stderr or result.stdout).strip()[-500:]}", device=self.device.name,
                command=result.command)
        return self.parse(result, request)

    def describe(self) -> dict[str, Any]:
        return {"runner": self.name}

    def configured_binary(self, setting: str, spec: str) -> tuple[str | None, Path]:
        """The binary the device config's `runner.<setting>` names: (its device path, the same
        path) when it is `device:/path` (checked there), else (None, the host file to push)."""
        path, on_device = host_or_device_path(spec)
        if on_device:
            if not self.device.exists(path):
                raise RunnerError(f"runner.{setting} {path} is not on the device",
                                  device=self.device.name)
            return path, Path(path)
        local = Path(path)
        if not local.is_file():
            raise RunnerError(f"runner.{setting} {local} does not exist", device=self.device.name)
        return None, local

    def push_binary(self, local: Path, name: str, progress: StageProgress | None) -> str:
        """Push an executable of the device's ABI (refused before the push when it is not) to
        the bin folder as `name`; its device path."""
        check_binary_abi(local, self.device, name)
        return self.device.push(
            local, posixpath.join(self.bindir, name), mode=0o755,
            progress=(lambda d, t: progress(f"push {name}", d, t)) if progress else None)


# ---------------------------------------------------------------------------- helpers
def elf_abi(path: str | os.PathLike[str]) -> str | None:
    """The ABI an ELF executable is built for (None when not an ELF we know)."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(20)
    except OSError:
        return None
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    return _ELF_ABI.get(machine)


def check_binary_abi(path: Path, device: Device, what: str, *, abi: str | None = None) -> None:
    """Refuse to push a binary of another ABI: a clear error instead of 'Exec format error'.
    `abi`: the ABI that will load it, when not the device's."""
    device_abi = abi or device.abi
    built = elf_abi(path)
    if built is None:
        raise RunnerError(f"{what} at {path} is not an ELF executable for Linux/Android",
                          device=device.name)
    if device_abi and built != device_abi:
        raise RunnerError(f"wrong ABI: {what} at {path} is built for {built}, but the device's "
                          f"ABI is {device_abi}", device=device.name)


def parse_marked_json(result: CommandResult, mark: str, runner: str, device: Device
                      ) -> dict[str, Any]:
    """The JSON object on the line starting with `mark` (or the last `{...}` block)."""
    for line in reversed(result.stdout.splitlines()):
        if mark and line.startswith(mark):
            try:
                data = json.loads(line[len(mark):])
            except ValueError as exc:
                raise RunnerError(f"{runner} printed a broken report: {exc}",
                                  device=device.name, command=result.command) from exc
            break
    else:
        text = result.stdout
        start = text.find("{")
        try:
            data = json.loads(text[start:]) if start >= 0 else None
        except ValueError:
            data = None
        if data is None:
            detail = (result.stderr or result.stdout).strip()[-800:]
            raise RunnerError(f"{runner} failed (exit code {result.exit_code}) without a report"
                              + (f": {detail}" if detail else ""), device=device.name,
                              command=result.command)
    if not isinstance(data, dict):
        raise RunnerError(f"{runner} report is not a JSON object", device=device.name)
    if "error" in data:
        raise RunnerError(f"{runner}: {data['error']}", device=device.name,
                          command=result.command)
    if result.exit_code != 0:
        raise RunnerError(f"{runner} exited with {result.exit_code}: "
                          f"{(result.stderr or '').strip()[-800:]}", device=device.name,
                          command=result.command)
    return data


@dataclass(frozen=True)
class PythonProbe:
    """What `probe_python` found: the Python that ran the script's `--check` and its report,
    or (python None) why none of the candidates did."""

    python: str | None
    check: dict[str, Any] | None
    reasons: tuple[str, ...] = ()


def probe_python(device: Device, runner: str, local_script: Path, remote_script: str,
                 script_sha256: str, candidates: tuple[str, ...], mark: str,
                 check_args: tuple[str, ...] = (),
                 support: tuple[tuple[Path, str], ...] = ()) -> PythonProbe:
    """Push a Python runner script (and the `support` files it imports: (local, device path))
    and ask each candidate Python to run its `--check`.

    The answer is kept for the device's session (`Device.session_facts`, cleared when the
    link is reopened), keyed by the script's SHA-256, the candidates and the check's
    arguments: a farm running many jobs on one open device asks once, not once per job. The
    script itself is pushed every time (a checksum round trip when it is already there).
    """
    for local, remote in support:
        device.push(local, remote)
    device.push(local_script, remote_script)
    key = (f"{runner} --check", remote_script, script_sha256, candidates, check_args)
    known = device.session_facts.get(key)
    if known is not None:
        return PythonProbe(*known)
    reasons = []
    for python in candidates:
        result = device.run([python, remote_script, "--check", *check_args], check=False,
                            timeout=120, verify=[remote_script, *(r for _, r in support)])
        if result.exit_code == 127:
            reasons.append(f"{python}: not found")
            continue
        try:
            check = parse_marked_json(result, mark, runner, device)
        except RunnerError as exc:
            reasons.append(f"{python}: {str(exc).split(': ', 2)[-1]}")
            continue
        device.session_facts[key] = (python, check)
        return PythonProbe(python, check)
    return PythonProbe(None, None, tuple(reasons))


def host_or_device_path(spec: str) -> tuple[str, bool]:
    """`device:/path` -> ("/path", True); anything else is a host path (expanded)."""
    if spec.startswith("device:"):
        return spec[len("device:"):], True
    return os.path.expanduser(spec), False
