"""Rockchip RKNN: compile an INT8 .tflite with rknn-toolkit2, which runs in its own virtual
environment (`sdk.converters.targets.toolchain`), driven through `rknn_worker.py` by a
subprocess with a JSON request and reply.

The toolkit loads the .tflite as it is (already quantised: no re-quantisation), builds for the
platform and exports the .rknn; then its x86 simulator runs the samples and its outputs are
compared with LiteRT running the same .tflite on the host (SQNR, top-1 agreement). The op table
the toolkit prints while building (`verbose=True`) gives each op's placement (NPU or CPU).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sdk.base.errors import ToolchainError
from sdk.base.fileio import atomic_write_bytes
from sdk.converters.targets.macs import op_macs
from sdk.converters.targets.names import Target
from sdk.converters.targets.report import CPU, NPU, NpuLayer, NpuReport, SimulatorFidelity
from sdk.converters.targets.toolchain import find_toolchain, install_command
from sdk.converters.tflite import read_tflite
from sdk.run.fidelity import compare_outputs

WORKER = Path(__file__).with_name("rknn_worker.py")
#: the most seconds one compile + simulation may take
DEFAULT_TIMEOUT_S = 1800.0
#: most bytes of the toolkit's verbose log read back
MAX_LOG_BYTES = 32 << 20


def compile_rknn(model_path: str | Path, target: Target, *, output: str | Path,
                 samples: Sequence[Sequence[np.ndarray]] | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> NpuReport:
    """Build `model_path` for the Rockchip platform `target`; run `samples` (model inputs as
    floats, one list per sample, batch 1) in the simulator and compare with LiteRT."""
    toolchain = find_toolchain("rknn")
    model_path = Path(model_path)
    source = read_tflite(model_path)
    runner = None
    feeds: list[list[np.ndarray]] = []
    if samples:
        from sdk.run.runner import LiteRTRunner

        runner = LiteRTRunner(model_path.read_bytes())
        feeds = [[d.from_float(x) for d, x in zip(runner.inputs, sample, strict=True)]
                 for sample in samples]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgesdk-rknn-") as tmp:
        work = Path(tmp)
        inputs = []
        for i, sample in enumerate(feeds):
            paths = []
            for k, x in enumerate(sample):
                path = work / f"in_{i}_{k}.npy"
                np.save(path, x, allow_pickle=False)
                paths.append(str(path))
            inputs.append(paths)
        (work / "results").mkdir()
        request = {"model": str(model_path.resolve()), "platform": target.name,
                   "output": str(work / "model.rknn"), "inputs": inputs,
                   "results_dir": str(work / "results"), "reply": str(work / "reply.json"),
                   "log": str(work / "rknn.log"), "data_format": "nhwc"}
        (work / "request.json").write_text(json.dumps(request))
        # run a copy, isolated (-I): the script's own folder holds this module, rknn.py, which
        # would shadow the toolkit's `rknn` package
        shutil.copyfile(WORKER, work / "worker.py")
        try:
            proc = subprocess.run([str(toolchain.python), "-I", str(work / "worker.py"),
                                   str(work / "request.json")],
                                  cwd=work, capture_output=True, text=True, timeout=timeout_s,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise ToolchainError(f"rknn-toolkit2 did not finish {model_path} for {target.name} "
                                 f"in {timeout_s:.0f} s") from exc
        log = _read_log(work / "rknn.log") + "\n" + proc.stdout
        reply = _reply(work / "reply.json", proc, toolchain.path)
        if not reply.get("ok"):
            stage = reply.get("stage", "?")
            tail = "\n".join(log.strip().splitlines()[-10:])
            raise ToolchainError(f"rknn-toolkit2 failed at {stage} compiling {model_path} for "
                                 f"{target.name}: {reply.get('error')}\n{tail}")
        data = (work / "model.rknn").read_bytes()
        outputs = [[np.load(p, allow_pickle=False) for p in paths] for paths in reply["outputs"]]
    elapsed = time.perf_counter() - start
    output = Path(output)
    atomic_write_bytes(output, data)
    layers, notes = placement(log)
    weighted = sum(op_macs(op) for op in source.main.operators)
    if layers and weighted != sum(layer.macs for layer in layers):
        notes.append(f"MACs are counted on rknn-toolkit2's ops ({sum(x.macs for x in layers):,}"
                     f"); the TFLite model's conv/FC ops have {weighted:,} (the toolkit turns "
                     "some other ops, e.g. MEAN, into convolutions)")
    cycles = [layer.cycles for layer in layers if layer.cycles is not None]
    report = NpuReport(target=target.name, compiler="rknn-toolkit2",
                       compiler_version=str(reply.get("version", toolchain.version)),
                       compiled_path=output, layers=layers, warnings=rknn_warnings(log),
                       config={"platform": target.name, "toolchain": str(toolchain.path)},
                       notes=notes, compile_time_s=round(elapsed, 3),
                       cycles_total=sum(cycles) if cycles else None)
    if runner is not None and outputs:
        report.simulator = simulator_fidelity(runner, samples or [], outputs)
    return report


def simulator_fidelity(runner: object, samples: Sequence[Sequence[np.ndarray]],
                       outputs: list[list[np.ndarray]]) -> SimulatorFidelity:
    """LiteRT's outputs (the host reference) vs the simulator's, per model output."""
    from sdk.run.runner import LiteRTRunner

    assert isinstance(runner, LiteRTRunner)
    ref = [runner.invoke(list(sample)) for sample in samples]
    compared = []
    for k, detail in enumerate(runner.outputs):
        want = np.concatenate([r[k].reshape(1, -1) for r in ref])
        got = []
        for out in outputs:
            value = np.asarray(out[k])
            if np.issubdtype(value.dtype, np.integer):
                value = detail.to_float(value)
            got.append(value.astype(np.float32).reshape(1, -1))
        compared.append(compare_outputs(detail.name, want, np.concatenate(got),
                                        outputs=len(runner.outputs)))
    return SimulatorFidelity("rknn-toolkit2 x86 simulator", "LiteRT (host, XNNPACK)",
                             len(samples), compared)


def placement(log: str) -> tuple[list[NpuLayer], list[str]]:
    """Layers from the "Network Layer Information Table" the toolkit prints while building:
    its own (fused) ops, e.g. ConvClip for CONV_2D + RELU6, each with its target and cycle
    estimate (DDR/NPU/Total). MACs of Conv / MatMul rows come from the row's shapes."""
    rows = _layer_table(log)
    notes: list[str] = []
    if not rows:
        notes.append("rknn-toolkit2 printed no layer table: placement unknown")
    layers = []
    for row in rows:
        if row["op"] in ("InputOperator", "OutputOperator"):
            continue
        on = NPU if row["target"] == NPU else CPU
        ddr, npu, total = (_int_or_none(v) for v in [*row["cycles"].split("/"), "", ""][:3])
        layers.append(NpuLayer(
            name=row["name"], op_type=row["op"], placement=on, tensor=row["name"],
            macs=_row_macs(row["op"], row["inputs"], row["outputs"]),
            cycles=total, npu_cycles=npu, dram_access_cycles=ddr,
            reason="" if on == NPU else f"rknn-toolkit2 placed {row['op']} on the "
                                        f"{row['target']} (no reason given)"))
    return layers, notes


_SHAPE = re.compile(r"\(([\d,]*)\)")


def _shapes(text: str) -> list[tuple[int, ...]]:
    return [tuple(int(d) for d in m.group(1).split(",") if d) for m in _SHAPE.finditer(text)]


def _row_macs(op: str, inputs: str, outputs: str) -> int:
    """MACs of a Conv* row: output elements x weight elements per output (NCHW, weights
    (O, I/groups, KH, KW)); of a MatMul / Gemm / FullyConnected row: output elements x K."""
    ins, outs = _shapes(inputs), _shapes(outputs)
    if not outs or len(ins) < 2:
        return 0
    out = math.prod(outs[0])
    if op.startswith(("Conv", "DepthwiseConv")):
        x, w, y = ins[0], ins[1], outs[0]
        if len(w) == 4 and w[0] == 1 and len(x) == 4 and len(y) == 4 and w[1] == y[1] == x[1] \
                and y[1] > 1:  # depthwise: weights (1, C, KH, KW)
            return out * w[2] * w[3]
        return out * math.prod(w[1:])
    if op.startswith(("MatMul", "Gemm", "FullyConnected", "exMatMul")):
        return out * (ins[0][-1] if ins[0] else 1)
    return 0


def _layer_table(log: str) -> list[dict[str, str]]:
    """Rows of the last "Network Layer Information Table" in the log."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", log)
    lines = [re.sub(r"^.*?RKNN: \[[\d:.]+\]\s?", "", line) for line in text.splitlines()]
    tables: list[list[dict[str, str]]] = []
    inside = False
    for line in lines:
        if "Network Layer Information Table" in line:
            tables.append([])
            inside = True
            continue
        if not inside:
            continue
        parts = line.split()
        if parts[:2] == ["ID", "OpType"] or set(line.strip()) <= {"-"}:
            if tables[-1] and set(line.strip()) <= {"-"} and line.strip():
                inside = False
            continue
        if len(parts) >= 9 and parts[0].isdigit() and parts[3] in ("NPU", "CPU", "GPU"):
            tables[-1].append({"id": parts[0], "op": parts[1], "dtype": parts[2],
                               "target": parts[3], "inputs": parts[4], "outputs": parts[5],
                               "cycles": parts[6], "name": " ".join(parts[8:])})
        elif tables[-1]:
            inside = False
    return tables[-1] if tables else []


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def rknn_warnings(log: str) -> list[str]:
    out = []
    for line in log.splitlines():
        text = line.strip()
        if text.startswith(("W ", "W RKNN", "E ")) or " W RKNN:" in text:
            out.append(text)
    return list(dict.fromkeys(out))[:50]


def _read_log(path: Path) -> str:
    if not path.is_file():
        return ""
    with path.open("rb") as f:
        return f.read(MAX_LOG_BYTES).decode("utf-8", "replace")


def _reply(path: Path, proc: subprocess.CompletedProcess[str], venv: Path) -> dict:
    try:
        reply = json.loads(path.read_text())
    except (OSError, ValueError):
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
        raise ToolchainError(f"the rknn toolchain in {venv} did not answer (exit status "
                             f"{proc.returncode}); reinstall it with: "
                             f"{install_command('rknn', force=True)}\n{tail}") from None
    if not isinstance(reply, dict):
        raise ToolchainError(f"the rknn toolchain in {venv} answered {type(reply).__name__}")
    if not reply.get("ok") and reply.get("stage") == "import":
        raise ToolchainError(f"the rknn toolchain in {venv} is broken ({reply.get('error')}); "
                             f"reinstall it with: {install_command('rknn', force=True)}")
    return reply
