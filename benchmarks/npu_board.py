"""NPU boards, board side (issue 18), on the emulated SSH board with the stand-in NPU stacks.

    .venv/bin/python benchmarks/npu_board.py [--runs 200] [--out benchmarks/results/x.md]

The digits CNN and the MobileNet-style digits net (sdk.examples), exported INT8 with int8 I/O,
profiled on the emulated aarch64 board (loopback sshd; its Python runner is this host's x86-64
Python) three ways: as a CPU board (XNNPACK), with the stand-in Ethos-U stack (the edgesdk
delegate as the board's npu.delegate) and with a missing NPU delegate (the CPU fallback), and
as a stand-in RKNN board (the stand-in RKNNLite running a stand-in .rknn of the same .tflite).
Per row: the placement the profile reports, init, first run, steady-state p50 / p90. Nothing
here is an NPU: the numbers say what the profile reports and what the stand-ins cost on this
host, not how fast an NPU is.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import sdk
from sdk.converters.targets import NpuLayer, NpuReport
from sdk.devices.emulated import EmulatedBoard
from sdk.devices.emulated.npu import make_standin_rknn, npu_board_config
from sdk.devices.npu import placement_cell


def _models(folder: Path) -> dict[str, Path]:
    from sdk.examples import digits, digits_cnn, digits_mobilenet

    data = digits()
    out = {}
    for name, build in (("digits CNN", digits_cnn), ("MobileNet-style", digits_mobilenet)):
        model = build(data)
        result = sdk.export(model, "int8", calibration=data.x_train[:256], input_type="int8",
                            output_type="int8", output=folder / f"{build.__name__}_int8.tflite",
                            per_layer=False)
        out[name] = result.path
    return out


def _standin_rknn(tflite: Path) -> Path:
    """A stand-in .rknn and a compile report naming it (every op on the NPU: the placement is
    not the toolkit's here, only the report's plumbing is exercised)."""
    from sdk.converters import read_tflite

    rknn = make_standin_rknn(tflite, tflite.with_name(tflite.stem + "_rk3588.rknn"))
    ops = [op.type for op in read_tflite(tflite).graphs[0].operators]
    report = NpuReport(target="rk3588", compiler="rknn-toolkit2 (not run: stand-in)",
                       compiler_version="-", compiled_path=rknn,
                       layers=[NpuLayer(name=op, op_type=op, placement="NPU") for op in ops])
    path = tflite.with_name(tflite.stem + ".report.json")
    data = json.loads(path.read_text()) if path.exists() else {}
    data["target"] = report.to_dict()
    path.write_text(json.dumps(data))
    return rknn


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--out", default="benchmarks/results/npu-board-2026-12-06.md")
    args = parser.parse_args()
    cpu = subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True,
                         text=True).stdout.split(":", 1)[-1].strip()
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgesdk-npu-board-") as tmp, \
            EmulatedBoard(arch="aarch64", root=Path(tmp) / "board") as board:
        models = _models(Path(tmp))
        setups = {
            "CPU board (XNNPACK)": board.device_config(),
            "stand-in Ethos-U delegate": npu_board_config(board, "ethos-u"),
            "missing NPU delegate (fallback)": npu_board_config(
                board, "vx", delegate=str(Path(tmp) / "libvx_delegate.so")),
        }
        for model_name, path in models.items():
            for setup, config in setups.items():
                p = sdk.profile(path, config, runs=args.runs, warmup=10, layers=False)
                warn = sum(n.startswith("warning:") for n in p.notes)
                rows.append((model_name, setup, placement_cell(p.npu), p.init_ms,
                             p.first_run_ms, p.latency.p50_ms, p.latency.p90_ms, warn))
            rknn = _standin_rknn(path)
            p = sdk.profile(rknn, npu_board_config(board, "rknn"), runs=args.runs, warmup=10)
            rows.append((model_name, "stand-in RKNNLite (.rknn)", placement_cell(p.npu),
                         p.init_ms, p.first_run_ms, p.latency.p50_ms, p.latency.p90_ms,
                         sum(n.startswith("warning:") for n in p.notes)))
    lines = [
        "# NPU boards, board side: what the profile reports (stand-ins, emulated board)", "",
        f"{time.strftime('%Y-%m-%d')}, CPU: {cpu} (2 cores, shared with other jobs). "
        f"`.venv/bin/python benchmarks/npu_board.py --runs {args.runs}`.", "",
        "The emulated aarch64 board's Python runner is this host's x86-64 Python, and the NPU "
        "stacks are stand-ins (docs/npu.md, On the board): no NPU ran. Times are this host's.",
        "", "| model | board | NPU placement | init ms | first run ms | p50 ms | p90 ms | "
        "warnings |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for m, s, cell, init, first, p50, p90, warn in rows:
        lines.append(f"| {m} | {s} | {cell} | {init:.2f} | {first:.3f} | {p50:.4f} | "
                     f"{p90:.4f} | {warn} |")
    lines += ["", "Warnings: on the Ethos-U rows, that the model has no Vela `ethos-u` op (the "
              "INT8 .tflite was profiled, not its `_vela.tflite`: the real delegate would take "
              "nothing); on the fallback rows, that the NPU delegate could not be loaded and the "
              "model ran on the CPU. The RKNN rows' placement is the compile report this script "
              "writes (every op on the NPU), not rknn-toolkit2's: only the plumbing is measured. "
              "The stand-in delegate is slower than XNNPACK alone: its int8 kernels are "
              "not XNNPACK's (the placement check's second interpreter is not timed)."]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
