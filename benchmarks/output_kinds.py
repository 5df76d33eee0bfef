"""Honest reports on the real-model corpus (issue 16): for every corpus model, whether export's
load-time check takes it for already quantised (it must not: they are all float), and the kind
`sdk.run.fidelity.output_kind` gives each output (which decides whether top-1 agreement and
cosine are reported for it).

    python benchmarks/output_kinds.py > benchmarks/results/cli-reports-DATE.md

Each model is imported as `sdk.export` imports it and run, as float, in LiteRT on 8 seeded
uniform [0, 1) inputs (the kinds depend on shapes and on whether rows are probabilities, which
any input shows). Prints a Markdown table and the counts per kind.
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus.manifest import load_manifest

from sdk.base.errors import EdgeSDKError
from sdk.base.host import cpu_name
from sdk.converters.frontends import load_model
from sdk.converters.quantize.int8 import check_float_model
from sdk.converters.tflite.writer import serialize
from sdk.run.fidelity import output_kind
from sdk.run.runner import LiteRTRunner

SAMPLES = 8


def main() -> int:
    rng = np.random.default_rng(0)
    kinds: Counter[str] = Counter()
    accepted = refused = 0
    print(f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {cpu_name()} "
          "(`python benchmarks/output_kinds.py`).\n")
    print("| model | kind | already quantised? | outputs: kind (why) |")
    print("|---|---|---|---|")
    for m in load_manifest():
        extra = {"constant_inputs": m.constant_inputs} if m.constant_inputs else {}
        try:
            loaded = load_model(str(m.path()), input_shapes=m.input_shapes or None, **extra)
        except EdgeSDKError as exc:
            print(f"| {m.name} | {m.kind} | not imported: {exc} | |")
            continue
        try:
            check_float_model(loaded.model)
            verdict = "no (float)"
            accepted += 1
        except EdgeSDKError as exc:
            verdict = f"REFUSED: {exc}"
            refused += 1
        data, _ = serialize(loaded.model)
        run = LiteRTRunner(data)
        outs: list[list[np.ndarray]] = [[] for _ in run.outputs]
        for _ in range(SAMPLES):
            feeds = [rng.uniform(0, 1, d.shape).astype(d.dtype)
                     if np.issubdtype(d.dtype, np.floating)
                     else rng.integers(0, 2, d.shape).astype(d.dtype) for d in run.inputs]
            for acc, out in zip(outs, run.invoke(feeds), strict=True):
                acc.append(out)
        cells = []
        for d, acc in zip(run.outputs, outs, strict=True):
            kind = output_kind(np.stack(acc), outputs=len(run.outputs))
            kinds[kind.kind] += 1
            cells.append(f"`{d.name}` {list(d.shape)}: {kind.kind} ({kind.reason})")
        print(f"| {m.name} | {m.kind} | {verdict} | " + "<br>".join(cells) + " |")
    print(f"\n{accepted} models taken for float, {refused} refused as already quantised; "
          "outputs per kind: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + ".")
    return 0


if __name__ == "__main__":
    sys.exit(main())
