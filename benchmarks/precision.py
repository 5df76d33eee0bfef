"""16x8 and accuracy-driven precision on the real-model corpus (issue 12).

    python benchmarks/precision.py run --models oww_alexa,silero_vad_16k_op15 --samples 32 \
        --json-out out/precision.json
    python benchmarks/precision.py table out/precision.json

Per model (each in its own process, with a time limit), on the corpus inputs
(`benchmarks/corpus/`, models cached by `make corpus`): the plain INT8 export (default
settings), the whole-model 16x8 export (`sdk.export(m, "int16x8")`) and the INT8 export with
`target_sqnr=TARGET` (the precision planner: 16x8 per layer first, then float). Figures are the
export's own fidelity report: every output of the exported file run in LiteRT against the
imported float model (worst output's SQNR), the file size, the layers kept wider by precision,
the number of exports, those measured per layer and the planner's time. The plain INT8 figures
are the planner's first export (the same export: `before_db`, `size_before`); `--plain` also
runs it on its own.

The protocol of `corpus.py` (`corpus/protocol.py`): 32 calibration samples (seed 1) and
`--heldout` held-out samples (default 32, seed 2). The held-out samples are never passed to
`sdk.export`: with `validation=` the planner would check its target on the very samples it is
then scored on. The export gets the calibration samples alone, holds out their last 20% for its
own check (the planner's, `*_db` / `met`) and calibrates on the rest; every file it writes is
then scored on the held-out samples against the published float model by `corpus.py`'s code
(`heldout_db`, `met_heldout`). `--heldout 0` skips that (the figures before 2026-12-06 16:20
UTC passed 8 held-out samples as `validation=`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus.manifest import cache_dir, load_manifest
from corpus.protocol import CALIBRATION_SEED, HELDOUT, HELDOUT_SEED

TARGET_DB = 30.0


def _worst(result: Any) -> float | None:
    if result.fidelity is None or not result.fidelity.outputs:
        return None
    return round(min(o.sqnr_db for o in result.fidelity.outputs), 2)


class _Recording:
    """A corpus runner that keeps what it returned (the per-sample outputs `score` does not
    report)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.names = inner.names
        self.outs: list[list[Any]] = []

    def __call__(self, sample: Any) -> list[Any]:
        out = self.inner(sample)
        self.outs.append(out)
        return out


def deciding_samples(ref_names: list[str], ref: list[list[Any]], rec: _Recording,
                     output: str) -> dict[str, Any]:
    """Which held-out samples hold the error of `output` (the worst one): each sample's share of
    its error energy, the fewest holding half of it where they are few
    (`planner.concentrated_error`), and the float model's largest value on each of those
    samples (a classifier's top probability: how near the decision boundary it is)."""
    import numpy as np
    from corpus.measure import align

    from sdk.converters.quantize.planner import concentrated_error

    idx = align(ref_names, [o.size for o in ref[0]], rec.names, [o.size for o in rec.outs[0]])
    k = ref_names.index(output)
    err = [float(np.sum((np.asarray(r[k], np.float64) - np.asarray(g[idx[k]], np.float64))
                        ** 2)) for r, g in zip(ref, rec.outs, strict=True)]
    total = sum(err) or 1.0
    picks = concentrated_error(err)
    return {"output": output, "shares": [round(e / total, 4) for e in err],
            "deciding": [[i, f, round(float(np.max(ref[i][k])), 4)] for i, f in picks]}


def measure(name: str, samples: int, target: float, plain: bool = False,
            heldout: int = HELDOUT, whole16: bool = True,
            cost: str | None = None) -> dict[str, Any]:
    """The exports of one corpus model (16x8, INT8 with the target; `plain`: INT8 too), each
    scored on `heldout` samples the export never saw. `cost`: the target's `target_cost`."""
    import warnings

    from corpus.measure import LiteRTRunner, _image_hw, float_reference, quiet, score, stacked
    from corpus.prepared import prepare

    import sdk

    warnings.simplefilter("ignore")
    prep = prepare(name, cache_dir())
    model, path = prep.model, prep.path
    cal = stacked(prep.samples(samples, CALIBRATION_SEED), prep.fed)
    common: dict[str, Any] = {"calibration": cal, "report": False, **prep.export_options()}
    row: dict[str, Any] = {"name": name, "kind": model.kind, "format": model.format,
                           "heldout": heldout, "cost": cost or "balanced"}
    order = prep.order
    held = prep.samples(heldout, HELDOUT_SEED) if heldout > 0 else []
    ref = float_reference(model, path, order, held) if held else None
    if ref is not None and ref.error:
        row["heldout_error"] = ref.error

    def scored(entry: dict[str, Any], file: str) -> None:
        """The written file on the held-out samples, as corpus.py scores it."""
        if ref is None or ref.error:
            return
        rec = _Recording(LiteRTRunner(Path(file).read_bytes(), order))
        res = score("edgesdk", model, _image_hw(model, prep.descs), ref.names, ref.outputs,
                    rec, held)
        assert res.worst_sqnr_db is not None
        entry["heldout_db"] = round(res.worst_sqnr_db, 2)
        entry["met_heldout"] = res.worst_sqnr_db >= target
        worst = min(res.outputs, key=lambda o: o.sqnr_db).name
        entry["heldout_errors"] = deciding_samples(ref.names, ref.outputs, rec, worst)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("int16x8", "int16x8", {})] * whole16 + [
            ("target", "int8", {"target_sqnr": target}
             | ({"target_cost": cost} if cost is not None else {}))]
        for key, scheme, extra in [("int8", "int8", {})] * plain + runs:
            start = time.perf_counter()
            try:
                with quiet():
                    res = sdk.export(str(path), scheme, output=f"{tmp}/{key}.tflite",
                                     **common, **extra)
            except Exception as exc:  # a failure is a figure too
                row[key] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:400],
                            "seconds": round(time.perf_counter() - start, 1)}
                continue
            entry: dict[str, Any] = {"ok": True, "worst_db": _worst(res),
                                     "size": res.size_bytes,
                                     "seconds": round(time.perf_counter() - start, 1)}
            try:
                scored(entry, f"{tmp}/{key}.tflite")
            except Exception as exc:
                entry["heldout_error"] = f"{type(exc).__name__}: {exc}"[:400]
            if key == "int16x8":
                entry["not_int16"] = {n: p for n, p in res.precision.items()
                                      if p not in ("int16x8", "int32")}
            if key == "target" and res.planner is not None:
                p = res.planner
                by: dict[str, int] = {}
                for k in p.kept:
                    by[k.precision] = by.get(k.precision, 0) + 1
                entry.update(met=p.met, kept=by, exports=p.exports,
                             layer_runs=getattr(p, "layer_runs", None), planner_s=p.seconds,
                             size_before=p.size_before, layers=len(res.precision),
                             latency_ms=[p.latency_before_ms, p.latency_after_ms],
                             estimated=[p.estimated_bytes, p.estimated_ms],
                             error_samples=p.error_samples, cost=p.cost,
                             deciding_db=getattr(p, "deciding_db", {}),
                             guaranteed=getattr(p, "guaranteed", True),
                             warnings=getattr(p, "warnings", []),
                             measured_ms=getattr(p, "measured_ms", None),
                             latency_source=getattr(p, "latency_source", ""),
                             kept_ms=[[k.name, k.precision, k.extra_ms,
                                       getattr(k, "measured_ms", None)] for k in p.kept],
                             steps=[ln.strip() for ln in p.lines() if ln.startswith("  step")])
                if "int8" not in row:  # the planner's first export is the plain one
                    row["int8"] = {"ok": True, "worst_db": round(min(p.before_db.values()), 2)
                                   if p.before_db else None, "size": p.size_before,
                                   "from": "target's first export"}
            row[key] = entry
    return row


def run(names: list[str], samples: int, target: float, timeout: float, plain: bool = False,
        json_out: str | None = None, heldout: int = HELDOUT,
        whole16: bool = True, cost: str | None = None) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        cmd = [sys.executable, __file__, "one", name, "--samples", str(samples),
               "--target", str(target), "--heldout", str(heldout)] + ["--plain"] * plain \
            + ["--no-16x8"] * (not whole16) + (["--cost", cost] if cost is not None else [])
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            row = json.loads(lines[-1]) if lines else {
                "name": name, "error": (proc.stderr.strip().splitlines() or ["?"])[-1][:300]}
        except subprocess.TimeoutExpired:
            row = {"name": name, "error": f"over the {timeout:.0f} s limit"}
        row.setdefault("cost", cost or "balanced")
        row["wall_s"] = round(time.perf_counter() - start, 1)
        print(json.dumps(row), flush=True)
        rows.append(row)
        if json_out:  # as it goes: a long run that is stopped keeps what it measured
            Path(json_out).parent.mkdir(parents=True, exist_ok=True)
            Path(json_out).write_text(json.dumps(rows, indent=1))
    return rows


def kernels(names: list[str], samples: int = 16) -> dict[str, dict[str, float]]:
    """ns per MAC (weighted ops) or per output element (the rest) of LiteRT's kernels here, by
    op class (`planner.op_work`) and precision: each model exported whole as int8, int16x8 and
    float (`precision={"*": "float32"}`), every operator timed alone
    (`sdk.profile(file, "local", layers=True)`, one thread), time over work summed per class
    and model; the median over the models (what `planner.KERNEL_NS` holds)."""
    import warnings

    from corpus.measure import quiet, stacked
    from corpus.prepared import prepare

    import sdk
    from sdk.converters import read_tflite
    from sdk.converters.quantize.planner import op_work
    from sdk.devices.profile import profile

    warnings.simplefilter("ignore")
    root = cache_dir()
    models = load_manifest()
    per: dict[str, dict[str, list[float]]] = {}
    for name in names:
        prep = prepare(name, root, models)
        path = prep.path
        common: dict[str, Any] = {
            "calibration": stacked(prep.samples(samples, CALIBRATION_SEED), prep.fed),
            "report": False, **prep.export_options()}
        with tempfile.TemporaryDirectory() as tmp:
            for prec, scheme, extra in [("int8", "int8", {}), ("int16x8", "int16x8", {}),
                                        ("float32", "int8", {"precision": {"*": "float32"}})]:
                out = f"{tmp}/{prec}.tflite"
                with quiet():
                    sdk.export(str(path), scheme, output=out, **common, **extra)
                ops = {}
                for op in read_tflite(out).main.operators:
                    ops.setdefault(op.name or (op.outputs[0].name if op.outputs else ""), op)
                prof = profile(out, "local", runs=10, warmup=2, threads=1, layers=True)
                sums: dict[str, list[float]] = {}
                for t in prof.per_layer or ():
                    op = ops.get(t.name)
                    if op is None or t.mean_ms is None or op.type in ("QUANTIZE", "DEQUANTIZE"):
                        continue
                    cls, work = op_work(op)
                    acc = sums.setdefault(cls, [0.0, 0.0])
                    acc[0] += t.mean_ms * 1e6
                    acc[1] += work
                for cls, (ns, work) in sums.items():
                    per.setdefault(cls, {}).setdefault(prec, []).append(ns / max(work, 1.0))
    return {cls: {prec: round(median(v), 3) for prec, v in d.items()} for cls, d in per.items()}


def save_host_table(measured: dict[str, dict[str, float]], models: str) -> str:
    """Cache `measured` (`kernels`) as this host's kernel table; a class or precision the
    models did not measure keeps the static table's figure, and the file says which."""
    from sdk.converters.quantize.host_kernel_ns import save
    from sdk.converters.quantize.planner import KERNEL_NS

    table = {c: dict(row) for c, row in KERNEL_NS.items()}
    static = []
    for cls, row in KERNEL_NS.items():
        for prec in row:
            got = measured.get(cls, {}).get(prec)
            if got is not None and got > 0:
                table[cls][prec] = float(got)
            else:
                static.append(f"{cls}/{prec}")
    how = f"benchmarks/precision.py kernels --models {models}" + (
        f"; from KERNEL_NS (not measured): {', '.join(static)}" if static else "")
    return str(save(table, how))


def _db(v: Any) -> str:
    return "-" if v is None else f"{v:.2f}"


def _held(e: dict[str, Any]) -> str:
    """An export's figure: the held-out one where measured, then the export's own check."""
    if not e.get("ok"):
        return "fails"
    if "heldout_db" in e:
        return f"{_db(e['heldout_db'])} ({_db(e.get('worst_db'))})"
    return _db(e.get("worst_db"))


def table(rows: list[dict[str, Any]], target: float = TARGET_DB) -> str:
    """Held-out figures first, the export's own check (on its calibration split) in brackets;
    rows measured before the held-out scoring show the export's own figure alone."""
    out = [f"| model | kind | int8 worst dB (check) | 16x8 worst dB held-out (check) | "
           f"target {target:g} worst dB held-out (check) | met held-out (check) | kept "
           "16x8 / float | bytes int8 -> target | exports (per layer) | planner s |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['name']} | {r.get('kind', '')} | {r['error']} | | | | | | | |")
            continue
        a, b, t = r.get("int8", {}), r.get("int16x8", {}), r.get("target", {})
        met = ("yes" if t.get("met") else "no") if t.get("ok") else \
            "no: " + t.get("error", "?")[:120]
        if t.get("ok") and "met_heldout" in t:
            met = f"{'yes' if t['met_heldout'] else '**no**'} ({met})"
        kept = t.get("kept", {})
        out.append(
            f"| {r['name']} | {r['kind']} | {_db(a.get('worst_db')) if a.get('ok') else 'fails'}"
            f" | {_held(b)} | {_held(t) if t.get('ok') else '-'} | {met} | "
            f"{kept.get('int16x8', 0)} / {kept.get('float32', 0)} | "
            f"{t.get('size_before', a.get('size', 0)):,} -> {t.get('size', 0):,} | "
            f"{t.get('exports', '-')}"
            + (f" ({t['layer_runs']})" if t.get("layer_runs") is not None else "")
            + (f" | {t['planner_s']:.0f} |" if t.get("planner_s") is not None else " | - |"))
    ok = [r for r in rows if r.get("target", {}).get("ok")]
    met = [r for r in ok if r["target"].get("met")]
    plain = [r for r in met if not r["target"].get("kept")]
    only16 = [r for r in met if r["target"].get("kept")
              and not r["target"]["kept"].get("float32")]
    int8s = [r["int8"]["worst_db"] for r in rows if r.get("int8", {}).get("worst_db")
             is not None]
    w16 = [r["int16x8"]["worst_db"] for r in rows if r.get("int16x8", {}).get("worst_db")
           is not None]
    out.append("")
    out.append(f"target {target:g} dB met on {len(met)} of {len(rows)} models by the export's "
               f"own check ({len(plain)} as exported, {len(only16)} with 16x8 layers only, "
               f"{len(met) - len(only16) - len(plain)} needed float layers); "
               f"median worst output: int8 {_db(median(int8s) if int8s else None)} dB, "
               f"16x8 {_db(median(w16) if w16 else None)} dB (the export's own check)")
    held = [r for r in ok if "met_heldout" in r["target"]]
    if held:
        short = [r["name"] for r in held if not r["target"]["met_heldout"]]
        h16 = [r["int16x8"]["heldout_db"] for r in rows if "heldout_db" in r.get("int16x8", {})]
        out.append(f"on {held[0].get('heldout', '?')} held-out samples: target met on "
                   f"{len(held) - len(short)} of {len(held)} scored"
                   + (f" (not: {', '.join(short)})" if short else "")
                   + f"; median 16x8 worst output {_db(median(h16) if h16 else None)} dB")
    times = [r["target"]["planner_s"] for r in ok if r["target"].get("planner_s") is not None]
    if times:
        out.append(f"planner time (the search after the first export): median {median(times):.0f}"
                   f" s, max {max(times):.0f} s over {len(times)} models")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="measure the models (default: all)")
    r.add_argument("--models", help="comma-separated corpus model names")
    r.add_argument("--samples", type=int, default=32, help="calibration samples per model")
    r.add_argument("--target", type=float, default=TARGET_DB, help="target_sqnr in dB")
    r.add_argument("--timeout", type=float, default=900, help="seconds per model")
    r.add_argument("--json-out", help="also write the rows here (after each model)")
    r.add_argument("--heldout", type=int, default=HELDOUT,
                   help=f"held-out samples each written file is scored on (default {HELDOUT}; "
                   "never passed to the export)")
    r.add_argument("--no-16x8", dest="whole16", action="store_false",
                   help="skip the whole-model 16x8 export (its held-out scoring runs LiteRT's "
                   "int16 reference kernels: minutes on the big models)")
    r.add_argument("--cost", help="target_cost of the target's export: bytes, latency, "
                   "balanced (default) or a number from 0 to 1")
    r.add_argument("--plain", action="store_true",
                   help="also run the plain INT8 export on its own (default: its figures are "
                   "the planner's first export)")
    o = sub.add_parser("one")
    o.add_argument("name")
    o.add_argument("--samples", type=int, default=32)
    o.add_argument("--target", type=float, default=TARGET_DB)
    o.add_argument("--plain", action="store_true")
    o.add_argument("--heldout", type=int, default=HELDOUT)
    o.add_argument("--no-16x8", dest="whole16", action="store_false")
    o.add_argument("--cost")
    k = sub.add_parser("kernels", help="ns per MAC of LiteRT's int8 / int16x8 / float kernels "
                       "here, per op class (the planner's KERNEL_NS)")
    k.add_argument("--models", default="magika_v3_3,oww_embedding,mp_face_detection_short_range")
    k.add_argument("--save", action="store_true",
                   help="cache it as this host's table, which the planner then estimates by "
                        "(sdk.converters.quantize.host_kernel_ns)")
    t = sub.add_parser("table", help="the Markdown table of a run's JSON")
    t.add_argument("json")
    args = ap.parse_args()
    if args.cmd == "one":
        print(json.dumps(measure(args.name, args.samples, args.target, args.plain,
                                 args.heldout, args.whole16, args.cost)))
        return 0
    if args.cmd == "kernels":
        measured = kernels(args.models.split(","))
        print(json.dumps(measured, indent=1))
        if args.save:
            print(f"saved: {save_host_table(measured, args.models)}")
        return 0
    if args.cmd == "table":
        print(table(json.loads(Path(args.json).read_text())))
        return 0
    names = args.models.split(",") if args.models else [m.name for m in load_manifest()]
    rows = run(names, args.samples, args.target, args.timeout, args.plain, args.json_out,
               args.heldout, args.whole16, args.cost)
    print(table(rows, args.target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
