"""One .tflite in stock LiteRT and with one or more edgesdk delegate builds, timed in turns.

    python benchmarks/delegate_alternate.py --model fc.tflite --delegate head=PATH \\
        --delegate base=PATH --threads 1,2 --rounds 8 > alternate.json

`benchmarks/subbyte.py` times every engine in its own process, one after the other, so a cell of
20 us on 2 threads can land on a near pair of vCPUs for one engine and a far pair for the next.
Here every engine lives in one process and they take turns: each round runs every engine for a
block of `--calls` invokes (the first `--skip` of a block are not kept: the pool may have gone to
sleep while the others ran), with a pause of `--gap-ms` between blocks so that the last engine's
spinning workers have gone to sleep before the next one is timed. `--calls 1 --skip 0` alternates
call by call. Only `invoke()` is timed (the input is set once). Before each round the CPU0 <->
CPU1 round trip (`--pingpong`, a binary that prints nanoseconds) and the load average are read,
so that each round's figures carry the placement they ran on.

Per engine and thread count: the median and fastest invoke over all rounds, and per round the
median; per delegate, stock / delegate on the medians of each round (the spread shows whether a
difference is larger than the host's noise).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Engine:
    name: str        # "stock" or the delegate's label
    threads: int
    interp: Any
    times_us: list[float] = field(default_factory=list)
    round_medians_us: list[float] = field(default_factory=list)


@dataclass
class Round:
    index: int
    pingpong_ns: int | None
    loadavg: str


def make_engines(model: bytes, threads: int, delegates: dict[str, str],
                 options: dict[str, str]) -> list[Engine]:
    from ai_edge_litert.interpreter import Interpreter, load_delegate

    engines = [Engine("stock", threads, Interpreter(model_content=model, num_threads=threads))]
    for label, path in delegates.items():
        d = load_delegate(path, {"num_threads": str(threads), **options})
        engines.append(Engine(label, threads, Interpreter(model_content=model, num_threads=threads,
                                                          experimental_delegates=[d])))
    rng = np.random.default_rng(0)
    for e in engines:
        e.interp.allocate_tensors()
        inp = e.interp.get_input_details()[0]
        lo, hi = (-128, 127) if inp["dtype"] == np.int8 else (-1, 1)
        x = (rng.integers(lo, hi, inp["shape"]) if inp["dtype"] == np.int8
             else rng.standard_normal(inp["shape"])).astype(inp["dtype"])
        e.interp.set_tensor(inp["index"], x)
        for _ in range(20):
            e.interp.invoke()
    return engines


def pingpong(binary: str) -> int | None:
    if not binary:
        return None
    out = subprocess.run([binary], capture_output=True, text=True, check=False)
    try:
        return int(out.stdout.strip())
    except ValueError:
        return None


def run(engines: list[Engine], rounds: int, calls: int, skip: int, gap_s: float,
        pp_binary: str) -> list[Round]:
    clock = time.perf_counter_ns
    log = []
    for r in range(rounds):
        log.append(Round(r, pingpong(pp_binary), Path("/proc/loadavg").read_text().split()[0]))
        order = engines if r % 2 == 0 else engines[::-1]  # ABBA: no engine always goes first
        per_round: dict[str, list[float]] = {e.name: [] for e in engines}
        if calls == 1:  # call by call: every engine once per turn
            for _ in range(skip + 200):
                for e in order:
                    t0 = clock()
                    e.interp.invoke()
                    per_round[e.name].append((clock() - t0) / 1e3)
            per_round = {k: v[skip:] for k, v in per_round.items()}
        else:
            for e in order:
                time.sleep(gap_s)
                block = []
                for _ in range(calls):
                    t0 = clock()
                    e.interp.invoke()
                    block.append((clock() - t0) / 1e3)
                per_round[e.name] = block[skip:]
        for e in engines:
            e.times_us.extend(per_round[e.name])
            e.round_medians_us.append(float(np.median(per_round[e.name])))
    return log


def summary(engines: list[Engine]) -> dict[str, Any]:
    stock = engines[0]
    out: dict[str, Any] = {}
    for e in engines:
        row: dict[str, Any] = {"median_us": round(float(np.median(e.times_us)), 2),
                               "min_us": round(float(np.min(e.times_us)), 2),
                               "p90_us": round(float(np.percentile(e.times_us, 90)), 2),
                               "calls": len(e.times_us),
                               "round_medians_us": [round(v, 2) for v in e.round_medians_us]}
        if e is not stock:
            ratios = [s / d for s, d in zip(stock.round_medians_us, e.round_medians_us,
                                               strict=True)]
            row["stock_over_this_median"] = round(float(np.median(stock.times_us)) /
                                                  float(np.median(e.times_us)), 3)
            row["stock_over_this_min"] = round(float(np.min(stock.times_us)) /
                                               float(np.min(e.times_us)), 3)
            row["stock_over_this_per_round"] = [round(v, 3) for v in ratios]
        out[e.name] = row
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True, help=".tflite (repeatable)")
    parser.add_argument("--delegate", action="append", default=[],
                        help="LABEL=PATH of a libedgesdk_delegate.so (repeatable)")
    parser.add_argument("--delegate-option", action="append", default=[],
                        help="KEY=VALUE for every delegate (e.g. claim=all)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--calls", type=int, default=300,
                        help="invokes per block (1: call by call)")
    parser.add_argument("--skip", type=int, default=20, help="first invokes of a block not kept")
    parser.add_argument("--gap-ms", type=float, default=5.0)
    parser.add_argument("--pingpong", default="", help="binary printing the CPU0<->CPU1 round trip")
    args = parser.parse_args()
    delegates = dict(d.split("=", 1) for d in args.delegate)
    options = dict(o.split("=", 1) for o in args.delegate_option)
    out: dict[str, Any] = {"argv": sys.argv[1:], "cpu_count": os.cpu_count(),
                           "delegates": delegates, "delegate_options": options, "cells": []}
    for path in args.model:
        model = Path(path).read_bytes()
        for t in (int(v) for v in args.threads.split(",")):
            engines = make_engines(model, t, delegates, options)
            start = time.strftime("%H:%M:%S", time.gmtime())
            rounds = run(engines, args.rounds, args.calls, args.skip, args.gap_ms / 1e3,
                         args.pingpong)
            out["cells"].append({"model": Path(path).name, "threads": t, "start_utc": start,
                                 "end_utc": time.strftime("%H:%M:%S", time.gmtime()),
                                 "rounds": [asdict(r) for r in rounds],
                                 "engines": summary(engines)})
            print(json.dumps(out["cells"][-1]["engines"]), file=sys.stderr)
            del engines
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
