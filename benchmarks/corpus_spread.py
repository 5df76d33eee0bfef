"""How much one corpus row's worst-output SQNR owes to which held-out samples were drawn.

    python benchmarks/corpus_spread.py oww_hey_jarvis --sets 32
    python benchmarks/corpus_spread.py oww_hey_jarvis --sets 32 --cal-seed 11
    python benchmarks/corpus_spread.py oww_hey_jarvis --sets 64 --layernorm-margin 0.1

`benchmarks/corpus.py run` scores a model on 32 held-out samples (seed 2; 8 before 2026-12-06
16:20 UTC, `corpus/protocol.py`). On an output whose values sit in a sigmoid's tail (a wake
word's p ~ 1e-5 .. 1e-3 on non-wake audio), the SQNR over 8 such values is set by the one most
probable sample: p's error there is p times the
logit's error, and that sample outweighs the others by its p squared. This script exports the
model once, as `corpus.py` does (the same 32 calibration samples, `sdk.export` defaults; and
onnxruntime's QDQ for ONNX files), then scores both on `--sets` held-out sets of `--set-size`
samples (default the protocol's 32; `--set-size 8` the old one; seeds 2, 1002, 2002, ...; the
first is corpus.py's): per set the worst-output SQNR, and over
all of them its median, min and max, the SQNR over every sample at once and, for an output that
is a probability under 0.5, the logit's error (rms and mean; what moves a threshold decision)
and, per set, the logit error on its decisive sample (the one of largest float output, which
holds most of the set's signal power). With a peer, `compare` says on how many sets ours is at
least the peer's SQNR, and the quartiles of both. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path
from statistics import median, quantiles
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import measure
from corpus.prepared import prepare
from corpus.protocol import CALIBRATION, HELDOUT, HELDOUT_SEED


def _sqnr(ref: np.ndarray, got: np.ndarray) -> float:
    err = float(np.sum((ref - got) ** 2))
    return math.inf if err == 0 else 10 * math.log10(float(np.sum(ref ** 2)) / err)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def spread(name: str, sets: int, cal_seed: int = 1, peers: bool = True,
           set_size: int = HELDOUT) -> dict[str, Any]:
    prep = prepare(name)
    model, path, descs, order = prep.model, prep.path, prep.descs, prep.order
    cal = prep.samples(CALIBRATION, cal_seed)
    held = [prep.samples(set_size, HELDOUT_SEED + 1000 * k) for k in range(sets)]
    flat = [s for group in held for s in group]
    runners: dict[str, measure.Runner] = {}
    with tempfile.TemporaryDirectory(prefix="edgesdk-spread-") as tmp:
        work = Path(tmp)
        data, _, _ = measure.ours(model, path, descs, cal, held[0], work)
        runners["edgesdk"] = measure.LiteRTRunner(data, order)
        if peers and model.format == "onnx":
            peer, _ = measure.ort_qdq(path, cal, work)
            runners["onnxruntime"] = measure.OrtRunner(peer)
        ref_runner: measure.Runner = (measure.OrtRunner(str(path)) if model.format == "onnx"
                                      else measure.LiteRTRunner(path.read_bytes(), order))
        ref_out = [ref_runner(s) for s in flat]
        idx_ref = list(range(len(ref_out[0])))
        out: dict[str, Any] = {"model": name, "cal_seed": cal_seed, "sets": sets,
                               "set_size": set_size, "tools": {}}
        for tool, runner in runners.items():
            got_out = [runner(s) for s in flat]
            idx = measure.align(ref_runner.names, [o.size for o in ref_out[0]], runner.names,
                                [o.size for o in got_out[0]])
            ref_rows = [[np.ravel(ref_out[i][r]) for r in idx_ref] for i in range(len(flat))]
            got_rows = [[np.ravel(got_out[i][j]) for j in idx] for i in range(len(flat))]
            res = per_set_stats(ref_rows, got_rows, sets, set_size)
            out["tools"][tool] = res
    if len(out["tools"]) == 2:
        peer = next(v for k, v in out["tools"].items() if k != "edgesdk")
        out["compare"] = compare(out["tools"]["edgesdk"], peer)
    return out


def per_set_stats(ref_rows: list[list[np.ndarray]], got_rows: list[list[np.ndarray]],
                  sets: int, set_size: int) -> dict[str, Any]:
    """One tool's figures from its outputs and the float ones, per sample a list of the
    outputs in the same order (`sets` consecutive sets of `set_size` samples): per set the
    worst-output SQNR, their median, quartiles, min and max, the SQNR over all samples of the
    first output and, where that output is a probability under 0.5, the logit's error (rms,
    mean) and, for one value per sample, its error on each set's decisive sample (the largest
    float value: the one that holds most of the set's signal power)."""
    per_set = []
    for k in range(sets):
        rows = range(k * set_size, (k + 1) * set_size)
        per_set.append(min(
            _sqnr(np.concatenate([ref_rows[i][r] for i in rows]).astype(float),
                  np.concatenate([got_rows[i][r] for i in rows]).astype(float))
            for r in range(len(ref_rows[0]))))
    ref0 = np.array([o[0] for o in ref_rows], float)
    got0 = np.array([o[0] for o in got_rows], float)
    res: dict[str, Any] = {
        "first_set_db": per_set[0], "median_db": median(per_set),
        "min_db": min(per_set), "max_db": max(per_set),
        "all_samples_db": _sqnr(ref0, got0), "per_set_db": per_set}
    if len(per_set) >= 2:
        q1, _, q3 = quantiles(per_set, n=4)
        res["quartiles_db"] = [q1, q3]
    if ref0.size and ref0.min() >= 0 and ref0.max() < 0.5:
        err = _logit(got0) - _logit(ref0)
        res["logit_error_rms"] = float(np.sqrt(np.mean(err ** 2)))
        res["logit_error_mean"] = float(np.mean(err))
        if ref0.shape[1] == 1:
            top = [k * set_size + int(np.argmax(ref0[k * set_size:(k + 1) * set_size, 0]))
                   for k in range(sets)]
            decisive = err[top, 0]
            res["decisive_logit_error"] = [float(e) for e in decisive]
            res["decisive_logit_error_rms"] = float(np.sqrt(np.mean(decisive ** 2)))
    return res


def compare(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    """Ours against the peer set by set (`per_set_stats` of each, the same sets): on how many
    sets ours is at least the peer's SQNR, the median difference and, where both have them,
    on how many sets our decisive-sample logit error is no larger than the peer's."""
    a, b = ours["per_set_db"], peer["per_set_db"]
    out: dict[str, Any] = {
        "sets": len(a), "sets_ours_at_least_peer": sum(x >= y for x, y in zip(a, b, strict=True)),
        "median_difference_db": median(x - y for x, y in zip(a, b, strict=True))}
    if "decisive_logit_error" in ours and "decisive_logit_error" in peer:
        out["decisive_ours_no_larger"] = sum(
            abs(x) <= abs(y) for x, y in zip(ours["decisive_logit_error"],
                                             peer["decisive_logit_error"], strict=True))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--sets", type=int, default=32)
    ap.add_argument("--cal-seed", type=int, default=1)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--set-size", type=int, default=HELDOUT,
                    help=f"held-out samples per set (default {HELDOUT}, the corpus protocol's)")
    ap.add_argument("--layernorm-margin", type=float, default=None,
                    help="widen each LayerNorm's int8 input and output range by this fraction "
                         "of its width (layernorm.RANGE_MARGIN; default: the export's default)")
    args = ap.parse_args(argv)
    if args.layernorm_margin is not None:
        from sdk.converters.quantize import layernorm

        layernorm.RANGE_MARGIN = args.layernorm_margin
    with measure.quiet():
        result = spread(args.model, args.sets, args.cal_seed, peers=not args.no_peers,
                        set_size=args.set_size)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
