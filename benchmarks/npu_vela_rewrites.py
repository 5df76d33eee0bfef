"""Ethos-U placement of the corpus's .tflite models before and after the Vela rewrites
(converters/targets/vela_rewrites.py): INT8 export (synthetic uniform calibration, int8 in/out),
Vela for ethos-u55-128 on the export as written, then `export_for_target` (rewrites applied).

    .venv/bin/python benchmarks/npu_vela_rewrites.py [model.tflite ...]

Without arguments: every .tflite under 3 MB in ~/.cache/edgesdk/corpus/models.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import sdk
from sdk.converters.targets import compile_for_target
from sdk.converters.tflite import read_tflite
from sdk.target_export import export_for_target

CORPUS = Path.home() / ".cache" / "edgesdk" / "corpus" / "models"


def main(paths: list[Path]) -> None:
    print("| model | NPU/CPU ops before | after | cycles before | after | rewrites "
          "(op: max int8 steps, SQNR) |")
    print("|---|---|---|---|---|---|")
    for src in paths:
        shapes = [tuple(max(1, d) for d in t.shape) for t in read_tflite(src).main.inputs]
        rng = np.random.default_rng(0)
        cal = [rng.random((16, *s[1:]), dtype=np.float32) for s in shapes]
        args = {"calibration": cal if len(cal) > 1 else cal[0], "max_samples": 16,
                "input_type": "int8", "output_type": "int8"}
        with tempfile.TemporaryDirectory() as tmp:
            plain = sdk.export(str(src), output=Path(tmp) / "plain.tflite", **args)
            before = compile_for_target(plain.path, "ethos-u55-128")
            after = export_for_target(str(src), target="ethos-u55-128",
                                      output=Path(tmp) / "int8.tflite", **args).target
        done = "; ".join(f"{r.op_type}: {r.max_steps}, {r.sqnr_db:.1f} dB"
                         + ("" if r.applied else " (refused)") for r in after.rewrites) or "-"
        print(f"| {src.stem} | {len(before.npu_layers)}/{len(before.cpu_layers)} | "
              f"{len(after.npu_layers)}/{len(after.cpu_layers)} | {before.cycles_total:,} | "
              f"{after.cycles_total:,} | {done} |", flush=True)


if __name__ == "__main__":
    args = [Path(a) for a in sys.argv[1:]]
    main(args or sorted(p for p in CORPUS.rglob("*.tflite") if p.stat().st_size < 3 << 20))
