"""The output heads' mean shift (converters/quantize/head_bias.py) with its float side kept for
every build of an export (`FloatHeads`, as the exporter does) against a fresh one per build (as
before: the float model serialised and run again on every build; target_sqnr= builds up to 10
times).

    python benchmarks/head_bias_reuse.py --model mp_hand_landmark_lite --rounds 5

The corpus model is exported once at the defaults (as benchmarks/export_bytes.py does) to get
the first build's arguments of `correct_head_biases` (the float model, the int8 model before its
heads' biases are corrected, the calibration samples); then `correct_head_biases` alone runs
`--rounds` times each way, alternating, with the int8 model's tensors restored before each
call. Prints one JSON object: the seconds of each call, the medians, whether both ways wrote the
same biases and notes, and how many times the kept float side ran the float model (1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus.measure import ours
from corpus.prepared import prepare
from corpus.protocol import CALIBRATION_SEED, HELDOUT, HELDOUT_SEED

from sdk.base.host import cpu_name


def main(argv: list[str] | None = None) -> int:
    import sdk.exporter as exporter
    from sdk.converters.quantize.head_bias import FloatHeads, correct_head_biases

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mp_hand_landmark_lite", help="a corpus model with heads")
    ap.add_argument("--rounds", type=int, default=5, help="calls each way")
    ap.add_argument("--samples", type=int, default=32, help="calibration samples")
    args = ap.parse_args(argv)

    first: list[Any] = []

    def capture(float_model: Any, quantized: Any, samples: Any, side: Any = None) -> list[str]:
        if not first:
            saved = [(t, t.data.copy()) for g in quantized.model.graphs for t in g.tensors
                     if isinstance(t.data, np.ndarray)]
            first.append((float_model, quantized, samples, saved))
        return correct_head_biases(float_model, quantized, samples, side)

    prep = prepare(args.model)
    model, path, descs = prep.model, prep.path, prep.descs
    cal = prep.samples(args.samples, CALIBRATION_SEED)
    val = prep.samples(HELDOUT, HELDOUT_SEED)
    exporter.correct_head_biases = capture  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory(prefix="edgesdk-head-bias-") as tmp:
            ours(model, path, descs, cal, val, Path(tmp))
    finally:
        exporter.correct_head_biases = correct_head_biases
    if not first:
        raise SystemExit(f"{args.model}: no output heads to correct at the defaults")
    float_model, quantized, samples, saved = first[0]

    def restore() -> None:
        for t, data in saved:
            t.data = data.copy()

    def biases() -> list[np.ndarray]:
        return [np.array(t.data, copy=True) for t, _ in saved]

    kept = FloatHeads(float_model, samples)
    restore()
    correct_head_biases(float_model, quantized, samples, kept)  # the first build: it runs
    times: dict[str, list[float]] = {"fresh": [], "kept": []}
    written: dict[str, tuple[list[str], list[np.ndarray]]] = {}
    for r in range(args.rounds):
        for way in ("fresh", "kept") if r % 2 == 0 else ("kept", "fresh"):
            restore()
            side = kept if way == "kept" else FloatHeads(float_model, samples)
            start = time.perf_counter()
            notes = correct_head_biases(float_model, quantized, samples, side)
            times[way].append(time.perf_counter() - start)
            written[way] = (notes, biases())
    same = written["fresh"][0] == written["kept"][0] and all(
        np.array_equal(a, b) for a, b in zip(written["fresh"][1], written["kept"][1],
                                             strict=True))
    print(json.dumps({
        "model": args.model, "samples": len(samples), "cpu": cpu_name(),
        "utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "fresh_s": [round(x, 3) for x in times["fresh"]],
        "kept_s": [round(x, 3) for x in times["kept"]],
        "median_fresh_s": round(statistics.median(times["fresh"]), 3),
        "median_kept_s": round(statistics.median(times["kept"]), 3),
        "same_biases_and_notes": same, "float_runs_kept": kept.runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
