"""Round to nearest's figure in weight_method="auto"'s whole-model check, without the solves
(issue 15): one JSON line per model and scheme.

    python benchmarks/subbyte_check_half.py --models magika_v3_3,oww_alexa --schemes int4,int2

Since rtn became the check's fourth candidate (`method_check.PLAIN`, the sub-byte default's
floor) an auto row measured before keeps its figure unless rtn's check-half figure beats the
kept candidate's (ties go to the earlier candidates); then the row is plain rtn's. The check
builds rtn with the export's own calibration ranges (rtn solves nothing, so "solved on half the
samples" is the plain rtn export) and scores its worst output against the float model on the
alternate half of the calibration samples (`method_check.halves`): this script writes that rtn
export with the benchmark's samples (`subbyte_fidelity.corpus_case`, 64 calibration inputs,
seed 1) and scores it the same way, for the corpus rows measured before the change.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import subbyte_fidelity as sf


def check_half_rtn(name: str, scheme: str, samples: int, work: Path) -> dict[str, object]:
    """rtn's worst output SQNR (dB) on the check half of `name`'s calibration samples, as
    auto's whole-model check measures it, and its held-out figure (the benchmark's score)."""
    from corpus.measure import quiet

    from sdk.base.samples import as_samples
    from sdk.converters.frontends import load_model
    from sdk.converters.quantize.method_check import halves, outputs_of, worst_output_db
    from sdk.converters.tflite import serialize
    from sdk.exporter import input_specs
    from sdk.run.runner import LiteRTRunner

    start = time.perf_counter()
    case = sf.corpus_case(name, samples)
    if isinstance(case, str):
        return {"model": name, "scheme": scheme, "error": case}
    cal = case.stacked(case.cal)
    with quiet():
        r = sf._export(str(case.path), scheme, "rtn", cal, case.stacked(case.val),
                       work / f"{name}_{scheme}_rtn.tflite", input_shapes=case.shapes)
        float_model = load_model(str(case.path), input_shapes=case.shapes).model
        cal_set = as_samples(cal, input_specs(float_model), max_samples=1000)
        held = cal_set.subset(halves(len(cal_set))[1])
        floats = LiteRTRunner(serialize(float_model)[0]).outputs_for(held)
        got = outputs_of(r.path.read_bytes(), held, sf._delegates(r))
        scored = case.score(r.path.read_bytes(), sf._delegates(r))
    return {"model": name, "scheme": scheme, "method": "rtn",
            "check_half_worst_sqnr_db": round(worst_output_db(floats, got), 2),
            "check_samples": len(held), "worst_sqnr_db": round(scored.worst_sqnr_db, 2),
            "seconds": round(time.perf_counter() - start, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", required=True, help="corpus model names, comma-separated")
    p.add_argument("--schemes", default=",".join(sf.SCHEMES))
    p.add_argument("--samples", type=int, default=64)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="subbyte_check_half_") as tmp:
        for name in args.models.split(","):
            for scheme in args.schemes.split(","):
                try:
                    row = check_half_rtn(name, scheme, args.samples, Path(tmp))
                except Exception as exc:  # one failed export is a result
                    row = {"model": name, "scheme": scheme,
                           "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
                print(json.dumps(row), flush=True)
                print(row, file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
