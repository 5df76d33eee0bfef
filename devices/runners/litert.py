"""`litert-python`: .tflite models run by the device's own Python through our runner script."""

from __future__ import annotations

import functools
import json
import posixpath
from pathlib import Path
from typing import Any

from sdk.devices.base import CommandResult, sha256_file
from sdk.devices.errors import RunnerError
from sdk.devices.runners.base import (
    LayerTime,
    Runner,
    RunnerReport,
    RunRequest,
    StageProgress,
    parse_marked_json,
    probe_python,
)
from sdk.devices.runners.delegates import cpu_fallback_delegates, delegates_for

SCRIPT = Path(__file__).with_name("litert_runner.py")
REMOTE_NAME = "edgesdk_litert_runner.py"
MARK = "EDGESDK_RESULT "
#: tried in order when the device config names no Python
PYTHON_CANDIDATES = ("python3", "python")


@functools.cache
def script_sha256() -> str:
    """SHA-256 of the runner script this edgesdk pushes (its session cache key)."""
    return sha256_file(SCRIPT)


class LiteRTPythonRunner(Runner):
    name = "litert-python"
    suffixes = (".tflite",)
    handles_min_duration = True

    def __init__(self, device: Any):
        super().__init__(device)
        self.python: str | None = None
        self.check: dict[str, Any] | None = None
        self.why_unavailable = ""
        self._delegate_args: list[str] | None = None
        self._local_model: Path | None = None

    @property
    def script(self) -> str:
        return posixpath.join(self.bindir, REMOTE_NAME)

    def available(self) -> bool:
        """Is there a Python with LiteRT on the device? (pushes the script to ask it; the
        answer is kept for the session, see `probe_python`)"""
        if self.check is not None:
            return True
        configured = self.device.config.runner.python
        backend = self.device.config.runner.litert_backend
        found = probe_python(self.device, self.name, SCRIPT, self.script, script_sha256(),
                             (configured,) if configured else PYTHON_CANDIDATES, MARK,
                             ("--backend", backend) if backend else ())
        self.python, self.check = found.python, found.check
        if found.python is None:
            self.why_unavailable = ("no Python with LiteRT on the device ("
                                    + "; ".join(found.reasons) + ")")
        return found.python is not None

    def prepare(self, progress: StageProgress | None = None) -> list[str]:
        if not self.available():
            raise RunnerError(self.why_unavailable + ". Set runner.python in the device config "
                              "to a Python with ai-edge-litert or tflite-runtime",
                              device=self.device.name)
        return [self.script]

    def prepare_model(self, local_model: Path, progress: StageProgress | None = None) -> None:
        """Delegates this model needs (our custom-op delegate; the device's NPU delegates)."""
        self._local_model = local_model
        self._delegate_args = []
        from sdk.devices.config import abi_for_arch

        if self.check is None:
            self.prepare()
        machine = (self.check or {}).get("machine") or ""
        for path, options in delegates_for(self.device, local_model, progress,
                                           runner_abi=abi_for_arch(machine)):
            self._delegate_args += ["--delegate", path, "--delegate-options",
                                    json.dumps(dict(options))]
        for path in cpu_fallback_delegates(self.device):
            self._delegate_args += ["--cpu-fallback", path]

    def code_files(self) -> list[str]:
        """The runner script and the delegate libraries it loads."""
        args = self._delegate_args or []
        return [self.script, *(args[i + 1] for i, a in enumerate(args[:-1])
                               if a == "--delegate")]

    def command(self, request: RunRequest) -> tuple[list[str], bool]:
        if self.python is None:
            self.prepare()
        assert self.python is not None
        argv = [self.python, self.script, request.model, "--runs", str(request.runs),
                "--warmup", str(request.warmup)]
        threads = request.threads or self.device.config.threads
        if threads:
            argv += ["--threads", str(threads)]
        if request.inputs:
            argv += ["--inputs", ",".join(request.inputs)]
        if request.outputs_dir:
            argv += ["--outputs-dir", request.outputs_dir]
        argv += self._delegate_args or []
        if request.min_duration_s > 0:
            argv += ["--min-duration", repr(float(request.min_duration_s))]
        if request.profile_layers and self._local_model is not None:
            # LiteRT's Python API has no op profiler: time every operator alone
            from sdk.devices.runners.layers import bundle_file

            try:
                bundle = bundle_file(self._local_model)
            except Exception:  # a model our reader refuses: LiteRT's own error will say why
                bundle = None
            if bundle is not None:
                argv += ["--layers", self.device.push(bundle, posixpath.join(
                    self.device.workdir, "models", bundle.name))]
        if not self.device.config.runner.xnnpack:
            argv.append("--no-xnnpack")
        if self.device.config.runner.litert_backend:
            argv += ["--backend", self.device.config.runner.litert_backend]
        return argv, False  # the device's Python is its own program, never exec_prefix'd

    def parse(self, result: CommandResult, request: RunRequest) -> RunnerReport:
        data = parse_marked_json(result, MARK, self.name, self.device)
        xnnpack = bool(data.get("xnnpack", True))
        delegates = tuple(data.get("delegates") or ())
        kernels = "XNNPACK (LiteRT's default CPU delegate)" if xnnpack else \
            "LiteRT builtin kernels (no XNNPACK)"
        if delegates:
            kernels += " + delegates " + ", ".join(posixpath.basename(d) for d in delegates)
        return RunnerReport(
            runner=self.name,
            runtime=f"{data.get('runtime')} {data.get('runtime_version')} (Python "
                    f"{data.get('python')}, numpy {data.get('numpy')})",
            machine=data.get("machine"), kernels=kernels, isa=tuple(data.get("isa") or ()),
            threads=data.get("threads"), init_ms=data.get("init_ms"),
            first_run_ms=data.get("first_run_ms"),
            latencies_ms=tuple(float(x) for x in data.get("latencies_ms") or ()),
            peak_memory_bytes=data.get("peak_rss_bytes"), per_layer=_layers(data),
            outputs=tuple(data.get("outputs") or ()), delegates=delegates, raw=data)


def _layers(data: dict[str, Any]) -> tuple[LayerTime, ...] | None:
    """Isolated-op times from the runner's --layers (see sdk.devices.runners.layers)."""
    from sdk.devices.runners.layers import ISOLATED

    layers = data.get("layers")
    if not layers:
        return None
    return tuple(LayerTime(name=str(x["name"]), op=str(x["op"]),
                           mean_ms=None if x.get("mean_ms") is None else float(x["mean_ms"]),
                           kernel=ISOLATED) for x in layers)
