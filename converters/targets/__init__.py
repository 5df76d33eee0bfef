"""NPU compile targets: Arm Ethos-U through Vela, Rockchip RKNN through rknn-toolkit2 (in its own
virtual environment, see `sdk.converters.targets.toolchain`).

    report = compile_for_target("model_int8.tflite", "ethos-u55-128")
    report.npu_mac_share, report.cpu_layers, report.cycles_total

`sdk.export(..., target=...)` runs this on the INT8 model it wrote; the report becomes
`result.target`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sdk.converters.targets.names import ETHOS_U, RKNN, Target, all_targets, parse_target
from sdk.converters.targets.report import NpuLayer, NpuReport, SimulatorFidelity


def compiled_path_for(model_path: Path, target: Target) -> Path:
    """Where the compiled model goes: `<stem>_vela.tflite` or `<stem>_<platform>.rknn` beside
    the INT8 model."""
    if target.compiler == "vela":
        return model_path.with_name(f"{model_path.stem}_vela.tflite")
    return model_path.with_name(f"{model_path.stem}_{target.name}.rknn")


def compile_for_target(model_path: str | Path, target: str | Target, *,
                       output: str | Path | None = None,
                       samples: Sequence[Sequence[np.ndarray]] | None = None) -> NpuReport:
    """Compile the INT8 .tflite at `model_path` for an NPU `target`.

    samples: model inputs (one list of arrays per sample, as the .tflite takes them) on which
        a simulator, where the toolchain has one (RKNN), is compared with LiteRT.
    """
    model_path = Path(model_path)
    tgt = target if isinstance(target, Target) else parse_target(target)
    out = Path(output) if output is not None else compiled_path_for(model_path, tgt)
    if tgt.compiler == "vela":
        from sdk.converters.targets.vela import compile_vela

        return compile_vela(model_path, tgt, output=out)
    from sdk.converters.targets.rknn import compile_rknn

    return compile_rknn(model_path, tgt, output=out, samples=samples)


__all__ = ["ETHOS_U", "RKNN", "NpuLayer", "NpuReport", "SimulatorFidelity", "Target",
           "all_targets", "compile_for_target", "compiled_path_for", "parse_target"]
