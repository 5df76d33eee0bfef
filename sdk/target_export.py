"""`export_for_target`: `sdk.export` to INT8 .tflite, then the NPU compiler, with the compiler's
report attached to the export's (`result.target`, `"target"` in the JSON report).

    result = export_for_target(model, target="ethos-u55-128", calibration=x,
                               input_type="int8", output_type="int8", output="model_int8.tflite")
    print(result.target.summary())
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from sdk.base.errors import ConversionError, EdgeSDKError
from sdk.base.fileio import atomic_write_bytes, atomic_write_text
from sdk.converters.quantize import SampleSet
from sdk.converters.targets import compile_for_target, compiled_path_for
from sdk.converters.targets.names import Target, parse_target
from sdk.converters.targets.report import CPU, NpuReport

#: held-out samples the simulator (where the toolchain has one) runs
SIMULATOR_SAMPLES = 64


def export_for_target(model: Any, scheme: str = "int8", *, target: str,
                      **export_args: Any) -> Any:
    """`sdk.export(model, **export_args)`, then compile the INT8 file for the NPU `target`
    ("ethos-u55-128", "rk3588", ... see `sdk.converters.targets.all_targets()`). The returned
    ExportResult carries the compiler's report in `result.target`. The simulator (RKNN) runs
    on the validation samples (`validation=`, else the held-out end of the calibration data,
    as the export's own fidelity report)."""
    from sdk.exporter import export

    fmt = export_args.get("format")
    output = export_args.get("output")
    if fmt is None and output is not None and str(output).lower().endswith(".edge"):
        fmt = "edge"
    tgt = check_target(target, scheme, fmt, export_args.get("activations", "int8"))
    result = export(model, scheme, **export_args)
    samples = _validation_samples(result, export_args)
    attach_target(result, tgt, samples, write_report=export_args.get("report", True))
    return result


def _validation_samples(result: Any, args: dict[str, Any]) -> SampleSet:
    """The export's held-out samples again (the same rule: `held_out_samples`), as floats for
    the model's inputs."""
    from sdk.converters.tflite import read_tflite
    from sdk.exporter import held_out_samples, input_specs

    specs = [dataclasses.replace(s, dtype=np.dtype(np.float32))
             for s in input_specs(read_tflite(result.path))]
    return held_out_samples(specs, args.get("calibration"), validation=args.get("validation"),
                            max_samples=args.get("max_samples", 1000),
                            validation_split=args.get("validation_split", 0.2),
                            target_sqnr=args.get("target_sqnr"))


def check_target(target: str, scheme: str, format_name: str | None,
                 activations: str = "int8") -> Target:
    """The target, or a ConversionError before any work when the export cannot feed it: NPU
    compilers take full-integer INT8 .tflite files."""
    tgt = parse_target(target)
    if scheme != "int8" or activations != "int8":
        raise ConversionError(f"target {tgt.name}: NPUs run full-integer INT8 models; scheme "
                              f"{scheme!r} with {activations} activations cannot be compiled")
    if format_name not in (None, "tflite"):
        raise ConversionError(f"target {tgt.name}: the NPU compiler reads .tflite, not "
                              f"format {format_name!r}")
    return tgt


def simulator_samples(samples: SampleSet, limit: int = SIMULATOR_SAMPLES) -> list[list[Any]]:
    """Up to `limit` samples, one at a time with a batch axis of 1, as floats."""
    out: list[list[Any]] = []
    for _, feeds in samples.subset(slice(0, limit)).batches(1):
        out.append([np.asarray(x) for x in feeds])
    return out


def attach_target(result: Any, target: Target, samples: SampleSet, *,
                  write_report: bool) -> NpuReport:
    """Compile `result.path` for `target`, set `result.target` and rewrite the JSON report. If
    the compiler fails, the export's files are removed (no model without its compile) and the
    error propagates."""
    out = compiled_path_for(result.path, target)
    try:
        report = compile_for_target(result.path, target, output=out,
                                    samples=simulator_samples(samples))
    except EdgeSDKError:
        result.path.unlink(missing_ok=True)
        if result.report_path is not None:
            result.report_path.unlink(missing_ok=True)
        raise
    if target.compiler == "vela" and report.cpu_layers:
        report = _keep_on_npu(result, target, out, report, samples)
    result.target = report
    in_float = [t.name for t in result.inputs if t.dtype == "float32"]
    out_float = [t.name for t in result.outputs if t.dtype == "float32"]
    if in_float or out_float:
        report.notes.append("the model's float inputs/outputs are converted by QUANTIZE / "
                            "DEQUANTIZE ops; pass input_type='int8', output_type='int8' "
                            "(--input-type/--output-type int8) to leave the conversion to the "
                            "application")
    if write_report and result.report_path is not None:
        atomic_write_text(result.report_path, result.to_json() + "\n")
    return report


def _keep_on_npu(result: Any, target: Target, out: Path, report: NpuReport,
                 samples: SampleSet) -> NpuReport:
    """Rewrite the ops Vela left on the CPU where a rewrite keeps them on the NPU (checked in
    LiteRT), write the rewritten INT8 model over the export's and compile it again."""
    from sdk.converters.targets.vela_rewrites import rewrite_cpu_ops

    outcome = rewrite_cpu_ops(result.path.read_bytes(), report.cpu_layers,
                              simulator_samples(samples))
    if outcome.model is None:
        report.rewrites = outcome.rewrites
        return report
    atomic_write_bytes(result.path, outcome.model)
    result.size_bytes = len(outcome.model)
    again = compile_for_target(result.path, target, output=out,
                               samples=simulator_samples(samples))
    where = {layer.tensor: layer.placement for layer in again.layers}
    for rewrite in outcome.rewrites:
        rewrite.placement_after = where.get(rewrite.tensor, "") if rewrite.applied else CPU
    again.rewrites = outcome.rewrites
    applied = [r.node for r in outcome.rewrites if r.applied]
    again.notes.append(f"rewritten to stay on the NPU: {', '.join(applied)} (the INT8 model "
                       f"{result.path.name} holds the rewrite)")
    return again
