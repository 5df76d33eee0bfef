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
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sdk.converters.ir import Model
from sdk.converters.targets.macs import op_macs
from sdk.converters.targets.names import Target
from sdk.converters.targets.report import CPU, NPU, NpuLayer, NpuReport, SimulatorFidelity
from sdk.converters.targets.toolchain import find_toolchain, install_command
from sdk.converters.tflite import read_tflite
from sdk.errors import ToolchainError
from sdk.fidelity import compare_outputs
from sdk.fileio import atomic_write_bytes

WORKER = Path(__file__).with_name("rknn_worker.py")
#: the most seconds one compile + simulation may take
DEFAULT_TIMEOUT_S = 1800.0
#: most bytes of the toolkit's verbose log read back
MAX_LOG_BYTES = 32 << 20
#: a row of the op table the toolkit prints while building: ID, OpType, DataType, Target, ...
_ROW = re.compile(r"^\s*(?P<id>\d+)\s+(?P<op>[A-Za-z][\w.]*)\s+(?P<dtype>[A-Z]+\d*)\s+"
                  r"(?P<target>NPU|CPU|GPU)\s+(?P<rest>.*)$")


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
        from sdk.runner import LiteRTRunner

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
    layers, notes = placement(source, log)
    report = NpuReport(target=target.name, compiler="rknn-toolkit2",
                       compiler_version=str(reply.get("version", toolchain.version)),
                       compiled_path=output, layers=layers, warnings=rknn_warnings(log),
                       config={"platform": target.name, "toolchain": str(toolchain.path)},
                       notes=notes, compile_time_s=round(elapsed, 3))
    if runner is not None and outputs:
        report.simulator = simulator_fidelity(runner, samples or [], outputs)
    return report


def simulator_fidelity(runner: object, samples: Sequence[Sequence[np.ndarray]],
                       outputs: list[list[np.ndarray]]) -> SimulatorFidelity:
    """LiteRT's outputs (the host reference) vs the simulator's, per model output."""
    from sdk.runner import LiteRTRunner

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
        compared.append(compare_outputs(detail.name, want, np.concatenate(got)))
    return SimulatorFidelity("rknn-toolkit2 x86 simulator", "LiteRT (host, XNNPACK)",
                             len(samples), compared)


def placement(source: Model, log: str) -> tuple[list[NpuLayer], list[str]]:
    """Layers from the toolkit's op table. Its ops are its own (fused: ConvRelu, ...), so the
    table's rows become the layers; MACs are attributed from the source model by output
    shape order where the toolkit does not say which TFLite op a row came from."""
    rows = [m for m in (_ROW.match(line.split("RKNN:", 1)[-1]) for line in log.splitlines())
            if m]
    notes: list[str] = []
    # the table is printed once per build; keep the last one
    seen: dict[int, re.Match[str]] = {}
    for m in rows:
        seen[int(m.group("id"))] = m
    layers = []
    for _, m in sorted(seen.items()):
        op = m.group("op")
        if op in ("InputOperator", "OutputOperator"):
            continue
        rest = m.group("rest").split()
        name = rest[-1] if rest else op
        layers.append(NpuLayer(name=name, op_type=op,
                               placement=NPU if m.group("target") == NPU else CPU,
                               reason="" if m.group("target") == NPU else
                               f"rknn-toolkit2 placed {op} on the {m.group('target')}"))
    total = sum(op_macs(op) for op in source.main.operators)
    if not layers:
        notes.append("rknn-toolkit2 printed no op table: placement unknown")
        layers = [NpuLayer(name=op.outputs[0].name if op.outputs else op.label,
                           op_type=op.type, placement=NPU, macs=op_macs(op),
                           reason="") for op in source.main.operators]
        notes.append("all ops listed as NPU by assumption")
        return layers, notes
    # MACs: each weighted TFLite op to the first unclaimed toolkit row of a conv/FC kind
    weighted = [op_macs(op) for op in source.main.operators if op_macs(op)]
    kinds = [layer for layer in layers if re.search(r"conv|gemm|matmul|fullyconnected",
                                                    layer.op_type, re.I)]
    for layer, macs in zip(kinds, weighted, strict=False):
        layer.macs = macs
    if len(kinds) != len(weighted):
        notes.append(f"{len(weighted)} weighted TFLite ops vs {len(kinds)} conv/matmul rows in "
                     f"rknn-toolkit2's table: MACs per row are approximate ({total:,} in all)")
    return layers, notes


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
