"""AdaRound settings side by side on one corpus model (issue 15): the same export as
`subbyte_fidelity.py`'s `--methods adaround` row, with `adaround_quantize`'s keyword arguments
(iterations, lam, lr, warmup, damp) overridden for every layer of the export, scored the same way
(worst output SQNR in dB over the held-out corpus inputs), one JSON line per setting.

    OPENBLAS_NUM_THREADS=1 python benchmarks/adaround_variants.py oww_embedding int4 \
        base iterations=300 lam=100
    python benchmarks/adaround_variants.py silero_vad_16k_op15 int4 base gptq rtn

A setting is `base` (the defaults), `gptq` / `rtn` / `auto` (that weight_method instead), or
`key=value[+key=value]`. Each line also gives the export's CPU seconds and, per layer solved by
AdaRound, its gain over round to nearest on the layer's own objective (dB; 0: AdaRound's codes
lost there and round to nearest was kept). Only for measuring: the override is a patch of this
process, not an export option.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: adaround_quantize's keyword arguments a setting may override, and their types
KEYS: dict[str, type] = {"iterations": int, "lam": float, "lr": float, "warmup": float,
                         "damp": float, "max_work": float}
METHODS = ("gptq", "rtn", "auto")


def parse(setting: str) -> tuple[str, dict[str, Any]]:
    """(weight_method, adaround overrides) of a setting; a bad one is a ValueError naming it."""
    if setting == "base":
        return "adaround", {}
    if setting in METHODS:
        return setting, {}
    kw: dict[str, Any] = {}
    for part in setting.split("+"):
        key, sep, value = part.partition("=")
        if not sep or key not in KEYS:
            raise ValueError(f"setting {setting!r}: {part!r} is not key=value with key one of "
                             f"{sorted(KEYS)}")
        kw[key] = KEYS[key](value)
    return "adaround", kw


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("scheme", choices=("int4", "ternary", "int2"))
    ap.add_argument("settings", nargs="+")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--work", type=Path, default=Path("/tmp/adaround_variants"))
    args = ap.parse_args(argv)
    plans = [(s, *parse(s)) for s in args.settings]

    import subbyte_fidelity as sf
    from corpus.measure import quiet

    import sdk.converters.quantize.adaround as ada
    import sdk.converters.quantize.gptq as gptq

    case = sf.corpus_case(args.model, args.samples)
    if isinstance(case, str):
        print(f"{args.model}: {case}", file=sys.stderr)
        return 1
    args.work.mkdir(parents=True, exist_ok=True)
    original = ada.adaround_quantize
    for setting, method, kw in plans:
        gains: list[float] = []

        def patched(*a: Any, _kw: dict[str, Any] = kw, _gains: list[float] = gains,
                    **k: Any) -> ada.AdaRoundResult:
            res = original(*a, **{**k, **_kw})
            _gains.append(10.0 * float(np.log10(res.rtn_error / res.error))
                          if res.error > 0 else 0.0)
            return res

        gptq.adaround_quantize = patched  # type: ignore[assignment]
        start = time.process_time()
        try:
            with quiet():
                r = sf._export(str(case.path), args.scheme, method, case.stacked(case.cal),
                               case.stacked(case.val),
                               args.work / f"{args.model}_{args.scheme}_{setting}.tflite",
                               input_shapes=case.shapes)
                res = case.score(r.path.read_bytes(), sf._delegates(r))
        finally:
            gptq.adaround_quantize = original  # type: ignore[assignment]
        print(json.dumps({"model": args.model, "scheme": args.scheme, "setting": setting,
                          "worst_sqnr_db": round(res.worst_sqnr_db, 2),
                          "export_cpu_s": round(time.process_time() - start, 1),
                          "layer_gain_db": [round(g, 2) for g in gains]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
