"""`litert-python`: .tflite models run by the device's own Python through our runner script."""

from __future__ import annotations

import functools
import json
import posixpath
from pathlib import Path
from typing import Any

from sdk.devices.base import CommandResult
from sdk.devices.errors import RunnerError
from sdk.devices.runners.base import (
    LayerTime,
    RunnerReport,
    RunRequest,
    StageProgress,
)
from sdk.devices.runners.delegates import cpu_fallback_delegates, delegates_for
from sdk.devices.runners.python_script import PythonScriptRunner, scripts_sha256

SCRIPT = Path(__file__).with_name("litert_runner.py")
REMOTE_NAME = "edgesdk_litert_runner.py"


@functools.cache
def script_sha256() -> str:
    """SHA-256 of the runner script (and runner_common.py) this edgesdk pushes (its session
    cache key)."""
    return scripts_sha256(SCRIPT)


class LiteRTPythonRunner(PythonScriptRunner):
    name = "litert-python"
    suffixes = (".tflite",)
    handles_min_duration = True
    SCRIPT = SCRIPT
    REMOTE_NAME = REMOTE_NAME
    needs = "LiteRT"

    def __init__(self, device: Any):
        super().__init__(device)
        self._delegate_args: list[str] | None = None
        self._local_model: Path | None = None

    def script_sha256(self) -> str:
        return script_sha256()

    def check_args(self) -> tuple[str, ...]:
        backend = self.device.config.runner.litert_backend
        return ("--backend", backend) if backend else ()

    def prepare(self, progress: StageProgress | None = None) -> list[str]:
        if not self.available():
            raise RunnerError(self.why_unavailable + ". Set runner.python in the device config "
                              "to a Python with ai-edge-litert or tflite-runtime",
                              device=self.device.name)
        return super().code_files()  # the script and runner_common.py

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
        """The runner script, runner_common.py and the delegate libraries it loads."""
        args = self._delegate_args or []
        return [*super().code_files(), *(args[i + 1] for i, a in enumerate(args[:-1])
                                         if a == "--delegate")]

    def command(self, request: RunRequest) -> tuple[list[str], bool]:
        argv: list[str] = []
        threads = request.threads or self.device.config.threads
        if threads:
            argv += ["--threads", str(threads)]
        if request.inputs:
            argv += ["--inputs", ",".join(request.inputs)]
        argv += self._delegate_args or []
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
        # the device's Python is its own program, never exec_prefix'd
        return self.script_argv(request, *argv), False

    def parse(self, result: CommandResult, request: RunRequest) -> RunnerReport:
        data = self.read_report(result)
        xnnpack = bool(data.get("xnnpack", True))
        delegates = tuple(data.get("delegates") or ())
        kernels = "XNNPACK (LiteRT's default CPU delegate)" if xnnpack else \
            "LiteRT builtin kernels (no XNNPACK)"
        if delegates:
            kernels += " + delegates " + ", ".join(posixpath.basename(d) for d in delegates)
        return self.script_report(data, kernels=kernels,
                                  isa=tuple(data.get("isa") or ()), threads=data.get("threads"),
                                  per_layer=_layers(data), delegates=delegates)


def _layers(data: dict[str, Any]) -> tuple[LayerTime, ...] | None:
    """Isolated-op times from the runner's --layers (see sdk.devices.runners.layers)."""
    from sdk.devices.runners.layers import ISOLATED

    layers = data.get("layers")
    if not layers:
        return None
    return tuple(LayerTime(name=str(x["name"]), op=str(x["op"]),
                           mean_ms=None if x.get("mean_ms") is None else float(x["mean_ms"]),
                           kernel=ISOLATED) for x in layers)
