"""Arm Ethos-U: compile an INT8 .tflite with Vela (`ethos-u-vela`, the `[npu]` extra) and read
back what it decided.

Vela runs in a subprocess (`python -m ethosu.vela`, with a time limit) in a private folder.
What is kept:
- the compiled .tflite (one `ethos-u` custom op per NPU subgraph, CPU ops left as they were);
- per layer: NPU or CPU (from the compiled file: an op that is still a TFLite op runs on the CPU),
  Vela's cycle estimate and memory access cycles (its per-layer CSV, `--verbose-performance`),
  the op's MACs (from the model's shapes), and for a CPU op the reason Vela gave;
- whole network: cycles, inference time at the NPU clock, SRAM / DRAM / flash used (its
  summary CSV), and every warning it printed.
"""

from __future__ import annotations

import csv
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from sdk.base.errors import EdgeSDKError, ToolchainError
from sdk.base.fileio import atomic_write_bytes
from sdk.converters.ir import Model, Operator
from sdk.converters.quantize import layer_name
from sdk.converters.targets.macs import op_macs
from sdk.converters.targets.names import VELA_SYSTEM, Target
from sdk.converters.targets.report import CPU, NPU, NpuLayer, NpuReport
from sdk.converters.tflite import read_tflite

#: the most seconds one Vela run may take (the digits models take ~2 s, MobileNet v2 ~1 min)
DEFAULT_TIMEOUT_S = 900.0
INSTALL_HINT = "pip install 'edgesdk[npu]' (or: pip install ethos-u-vela)"
#: Vela's own warnings that do not apply: we always pass a config, system config and memory mode
_IGNORED = ("No configuration file specified", "No system configuration specified",
            "No memory mode specified")
_SUPPORT = re.compile(
    r"Warning \(supported operators\) operator: (?P<op>\w+), ofm: '(?P<ofm>.*?)'\n"
    r"(?P<body>(?:.+\n?)*)")
_DYNAMIC = re.compile(r"^Tensor '(.*)' has a dynamic signature in axis (\d+)\. "
                      r"Setting shape axis \d+ to (\d+)", re.M)


def vela_version() -> str:
    """The installed Vela's version; ToolchainError naming the install command if missing."""
    if importlib.util.find_spec("ethosu") is None or \
            importlib.util.find_spec("ethosu.vela") is None:
        raise ToolchainError(f"Vela (ethos-u-vela) is not installed: {INSTALL_HINT}")
    return metadata.version("ethos-u-vela")


def compile_vela(model_path: str | Path, target: Target, *, output: str | Path,
                 system_config: str | None = None, memory_mode: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> NpuReport:
    """Compile the INT8 .tflite at `model_path` for `target` (an Ethos-U config) and write
    Vela's .tflite to `output`. Returns the placement / estimate report."""
    version = vela_version()
    model_path = Path(model_path)
    family_system, family_memory = VELA_SYSTEM[target.family]
    system_config = system_config or family_system
    memory_mode = memory_mode or family_memory
    source = read_tflite(model_path)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgesdk-vela-") as tmp:
        work = Path(tmp)
        shutil.copyfile(model_path, work / "model.tflite")
        cmd = [sys.executable, "-m", "ethosu.vela", "model.tflite",
               "--config", "Arm/vela.ini", "--accelerator-config", target.name,
               "--system-config", system_config, "--memory-mode", memory_mode,
               "--output-dir", "out", "--verbose-performance", "--show-cpu-operations"]
        try:
            proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True,
                                  timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ToolchainError(f"Vela did not finish compiling {model_path} for {target.name} "
                                 f"in {timeout_s:.0f} s") from exc
        log = proc.stdout + "\n" + proc.stderr
        compiled = work / "out" / "model_vela.tflite"
        if proc.returncode != 0 or not compiled.is_file():
            tail = "\n".join(log.strip().splitlines()[-12:])
            raise ToolchainError(f"Vela failed to compile {model_path} for {target.name} "
                                 f"(exit status {proc.returncode}):\n{tail}")
        layers_csv = _read_csv(work / "out" / "model_per-layer.csv")
        summary_rows = _read_csv(next((work / "out").glob("model_summary_*.csv"), work / "-"))
        data = compiled.read_bytes()
    elapsed = time.perf_counter() - start

    try:
        compiled_model = read_tflite(data)
    except EdgeSDKError as exc:
        raise ToolchainError(f"Vela's output for {model_path} does not read back: {exc}") from exc
    reasons = cpu_reasons(log)
    layers = placement(source, compiled_model, layers_csv, reasons)
    output = Path(output)
    atomic_write_bytes(output, data)
    summary = summary_rows[0] if summary_rows else {}
    report = NpuReport(
        target=target.name, compiler="vela", compiler_version=version, compiled_path=output,
        layers=layers, warnings=vela_warnings(log),
        cycles_total=_int(summary.get("cycles_total")),
        clock_hz=_float(summary.get("core_clock")),
        inference_time_s=_float(summary.get("inference_time")),
        sram_bytes=_kib(summary.get("sram_memory_used")),
        dram_bytes=_kib(summary.get("dram_memory_used")),
        flash_bytes=_flash(summary),
        config={"accelerator": target.name, "system_config": system_config,
                "memory_mode": memory_mode},
        compile_time_s=round(elapsed, 3),
    )
    if not summary:
        report.notes.append("Vela wrote no summary CSV: no whole-network estimate")
    return report


def placement(source: Model, compiled: Model, rows: list[dict[str, str]],
              reasons: dict[str, str]) -> list[NpuLayer]:
    """One NpuLayer per operator of `source`: on the CPU if it is still a TFLite op in Vela's
    output (matched by its output tensor's name), with the estimate rows Vela gave for it."""
    cpu_outputs = {op.outputs[0].name: op for op in compiled.main.operators
                   if op.outputs and not _is_npu_op(op)}
    ops = list(source.main.operators)
    layers = [NpuLayer(name=layer_name(op), op_type=op.type, tensor=_name(op),
                       placement=CPU if _name(op) in cpu_outputs else NPU, macs=op_macs(op))
              for op in ops]
    for layer in layers:
        if layer.placement == CPU:
            layer.reason = reasons.get(layer.tensor) or \
                "left on the CPU by Vela (no reason given)"
    by_name = {layer.tensor: layer for layer in layers}
    producers = {id(t): (op, layer) for op, layer in zip(ops, layers, strict=True)
                 for t in op.outputs}
    op_of = {id(layer): op for op, layer in zip(ops, layers, strict=True)}
    previous: tuple[str, NpuLayer] | None = None
    for row in rows:
        original = _norm(row.get("Original Operator", ""))
        layer = _row_layer(row, layers, by_name, producers, op_of)
        if layer is None and previous is not None and previous[0] == original:
            layer = previous[1]  # an unnamed part (e.g. "#87") of the op listed just before
        if layer is None:
            continue
        previous = (original, layer)
        for attr, column in (("cycles", "Op Cycles"), ("npu_cycles", "NPU"),
                             ("sram_access_cycles", "SRAM AC"), ("dram_access_cycles", "DRAM AC")):
            value = _int(row.get(column))
            if value is not None:
                setattr(layer, attr, (getattr(layer, attr) or 0) + value)
        flash = sum(_int(row.get(c)) or 0 for c in ("OnFlash AC", "OffFlash AC"))
        layer.flash_access_cycles = (layer.flash_access_cycles or 0) + flash
    # CPU ops Vela made that the source does not have (none seen so far): report them too
    known = {layer.tensor for layer in layers}
    for name, op in cpu_outputs.items():
        if name not in known:
            layers.append(NpuLayer(name=layer_name(op), op_type=op.type, placement=CPU,
                                   tensor=name,
                                   reason=reasons.get(name, "added by Vela, runs on the CPU")))
    return layers


def _is_npu_op(op: Operator) -> bool:
    return op.type == "CUSTOM" and (op.custom_code or "").startswith("ethos-u")


def _name(op: Operator) -> str:
    return op.outputs[0].name if op.outputs else op.label


def _norm(op_type: str) -> str:
    return op_type.replace("_", "").lower()


def _row_layer(row: dict[str, str], layers: list[NpuLayer], by_name: dict[str, NpuLayer],
               producers: dict[int, tuple[Operator, NpuLayer]],
               op_of: dict[int, Operator]) -> NpuLayer | None:
    """The source op a per-layer CSV row belongs to. Vela names an NPU operation after its
    output tensor, with suffixes for the parts of a lowered op; an op fused with the ones after
    it (a depthwise conv and its HARD_SWISH) takes the last one's output name, so a named op of
    another type is followed back through its producers to the op of the row's type."""
    name, original = row.get("Name", "").strip(), _norm(row.get("Original Operator", ""))
    same_type = [layer for layer in layers if _norm(layer.op_type) == original]
    named = by_name.get(name)
    if named is not None:
        if not same_type or named in same_type:
            return named
        op: Operator | None = op_of[id(named)]
        for _ in range(4):
            first = op.inputs[0] if op is not None and op.inputs else None
            if first is None or id(first) not in producers:
                break
            op, layer = producers[id(first)]
            if layer in same_type:
                return layer
    prefixed = [layer for layer in same_type if name.startswith(layer.tensor)]
    if prefixed:
        return max(prefixed, key=lambda layer: len(layer.tensor))
    if len(same_type) == 1:
        return same_type[0]
    return None


def cpu_reasons(log: str) -> dict[str, str]:
    """{output tensor name: reason} from Vela's "Warning (supported operators)" blocks."""
    reasons: dict[str, str] = {}
    for match in _SUPPORT.finditer(log):
        body = [line.strip() for line in match.group("body").splitlines() if line.strip()]
        text = " ".join(line.removeprefix("Reason:").strip() for line in body)
        reasons.setdefault(match.group("ofm"), f"{match.group('op')}: {text}")
    return reasons


def vela_warnings(log: str) -> list[str]:
    """Vela's warnings, one line each (supported-operator blocks folded into one line; the
    per-tensor dynamic-batch messages counted into one)."""
    out: list[str] = []
    for match in _SUPPORT.finditer(log):
        body = [line.strip() for line in match.group("body").splitlines() if line.strip()]
        out.append(f"{match.group('op')} (output {match.group('ofm')!r}): " + " ".join(body))
    for line in log.splitlines():
        line = line.strip()
        if line.startswith("Warning") and not line.startswith("Warning (supported operators)") \
                and not any(text in line for text in _IGNORED):
            out.append(line)
    dynamic = _DYNAMIC.findall(log)
    if dynamic:
        out.append(f"{len(dynamic)} tensor(s) have a dynamic dimension (e.g. {dynamic[0][0]!r} "
                   f"axis {dynamic[0][1]}); Vela fixed it to {dynamic[0][2]}")
    return out


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
                for row in csv.DictReader(f)]


def _float(value: str | None) -> float | None:
    try:
        return None if value in (None, "") else float(value)  # type: ignore[arg-type]
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    number = _float(value)
    return None if number is None else round(number)


def _kib(value: str | None) -> int | None:
    number = _float(value)
    return None if number is None else round(number * 1024)


def _flash(summary: dict[str, str]) -> int | None:
    parts = [_kib(summary.get(k)) for k in ("on_chip_flash_memory_used",
                                             "off_chip_flash_memory_used")]
    known = [p for p in parts if p is not None]
    return sum(known) if known else None
