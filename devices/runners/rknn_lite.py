"""`rknn-lite`: .rknn models on Rockchip boards, through rknn-toolkit-lite2's RKNNLite.

The board's own Python runs our script (`rknn_lite_runner.py`) with `from rknnlite.api import
RKNNLite`: load_rknn, init_runtime(core_mask) (timed together as the NPU's set-up), a first
inference timed apart from the steady-state ones. RKNNLite cannot say which layers the NPU
ran, nor the model's inputs: both come from the compile report that `edgesdk export --target
rk3588` writes beside the model (`<stem>.report.json`, whose `target.compiled_path` names the
.rknn), and from the INT8 .tflite it was compiled from.
"""

from __future__ import annotations

import json
import posixpath
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from sdk.devices.base import CommandResult, sha256_file
from sdk.devices.errors import RunnerError
from sdk.devices.inputs import random_inputs
from sdk.devices.npu import CORE_MASKS, NpuPlacement
from sdk.devices.runners.base import RunnerReport, RunRequest, StageProgress
from sdk.devices.runners.python_script import PYTHON_CANDIDATES, PythonScriptRunner

SCRIPT = Path(__file__).with_name("rknn_lite_runner.py")
REMOTE_NAME = "edgesdk_rknn_runner.py"


def compile_report(rknn: Path) -> tuple[dict[str, Any], Path] | None:
    """(the compile report's `target` section, the .tflite it was compiled from) for a .rknn
    written by `sdk.export(..., target="rk...")`; None when no report beside it names it."""
    for report in sorted(rknn.parent.glob("*.report.json")):
        try:
            target = json.loads(report.read_text()).get("target") or {}
        except (OSError, ValueError, AttributeError):
            continue
        compiled = target.get("compiled_path") if isinstance(target, dict) else None
        if compiled and Path(compiled).name == rknn.name:
            source = report.with_name(report.name[:-len(".report.json")] + ".tflite")
            return target, source
    return None


def placement_from_report(target: dict[str, Any]) -> NpuPlacement:
    """The compiler's per-layer placement as an NpuPlacement (source: the compile report)."""
    layers = target.get("layers") or []
    npu = tuple(f"{x['op_type']}#{i}" for i, x in enumerate(layers) if x["placement"] == "NPU")
    cpu = tuple(f"{x['op_type']}#{i}" for i, x in enumerate(layers) if x["placement"] != "NPU")
    return NpuPlacement(stack="rknn", runtime="RKNNLite", nodes=len(layers), npu=npu, cpu=cpu,
                        source=f"compile report ({target.get('compiler', 'rknn-toolkit2')} "
                               f"{target.get('compiler_version', '')}, {target.get('target')})")


class RknnLiteRunner(PythonScriptRunner):
    name = "rknn-lite"
    suffixes = (".rknn",)
    handles_min_duration = True
    SCRIPT = SCRIPT
    REMOTE_NAME = REMOTE_NAME
    needs = "rknn-toolkit-lite2"
    where = "board"

    def __init__(self, device: Any):
        super().__init__(device)
        self._inputs: tuple[str, ...] = ()
        self._placement: NpuPlacement | None = None

    def pythons(self) -> tuple[str, ...]:
        """npu.python, else runner.python, else PYTHON_CANDIDATES."""
        npu = self.device.config.npu
        configured = (npu.python if npu is not None else None) or self.device.config.runner.python
        return (configured,) if configured else PYTHON_CANDIDATES

    def prepare(self, progress: StageProgress | None = None) -> list[str]:
        npu = self.device.config.npu
        if npu is None or npu.stack != "rknn":
            raise RunnerError(".rknn models run on Rockchip NPUs: the device config needs "
                              "npu = { stack = \"rknn\" }", device=self.device.name)
        if not self.available():
            raise RunnerError(self.why_unavailable + ". Set npu.python in the device config to "
                              "a Python with rknn-toolkit-lite2 (rknnlite)",
                              device=self.device.name)
        return super().code_files()  # the script and runner_common.py

    def prepare_model(self, local_model: Path, progress: StageProgress | None = None) -> None:
        """The placement and the inputs, from the compile report beside the .rknn."""
        found = compile_report(local_model)
        if found is None:
            raise RunnerError(f"{local_model.name}: no compile report beside it names it "
                              "(RKNNLite cannot say which layers the NPU runs, nor the model's "
                              "inputs): keep the <stem>.report.json and the INT8 .tflite that "
                              "`edgesdk export --target rk...` wrote in the .rknn's folder",
                              device=self.device.name)
        target, source = found
        self._placement = placement_from_report(target)
        if not source.is_file():
            raise RunnerError(f"{source} (the model {local_model.name} was compiled from) is "
                              "missing: its inputs are what the board is given",
                              device=self.device.name)
        remote = []
        with tempfile.TemporaryDirectory(prefix="edgesdk-rknn-") as tmp:
            for k, array in enumerate(random_inputs(source, 1)):
                local = Path(tmp) / f"rknn_in_{k}.npy"
                np.save(local, array)
                remote.append(self.device.push(local, posixpath.join(
                    self.device.workdir, "models", sha256_file(local)[:16], local.name)))
        self._inputs = tuple(remote)

    def command(self, request: RunRequest) -> tuple[list[str], bool]:
        self.ready()
        npu = self.device.config.npu
        mask = CORE_MASKS[npu.core_mask] if npu is not None else 0
        inputs = request.inputs or self._inputs
        if not inputs:
            raise RunnerError("rknn-lite needs inputs (prepare_model finds them)",
                              device=self.device.name)
        return self.script_argv(request, "--core-mask", str(mask),
                                "--inputs", ",".join(inputs)), False

    def parse(self, result: CommandResult, request: RunRequest) -> RunnerReport:
        data = self.read_report(result)
        if self._placement is not None:
            data["npu_placement"] = self._placement.to_dict()
        stand_in = "stand-in" in str(data.get("runtime"))
        return self.script_report(
            data, isa=(), threads=None, per_layer=None, delegates=(),
            kernels="LiteRT on the CPU (stand-in RKNNLite, no NPU)" if stand_in else
            f"Rockchip NPU (RKNNLite, core_mask {data.get('core_mask')})")
