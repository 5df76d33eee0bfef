"""The bytes of INT8 exports of corpus models, for checking that a refactor leaves them the same.

    python benchmarks/export_bytes.py > before.jsonl
    python benchmarks/export_bytes.py --against before.jsonl
    python benchmarks/export_bytes.py --models mp_hand_landmark_lite --option target_sqnr=30 \
        --repeat 3

Each corpus model is exported as the corpus measurement exports it (benchmarks/corpus/measure.py:
`sdk.export(path, "int8", calibration=..., validation=...)` with the recipe's input shapes and
constant inputs, 32 calibration samples and the held-out ones) plus any `--option` (a keyword
of `sdk.export`, its value read as JSON where it parses). One JSON line per export: the model,
the options, the SHA-256 of the file, its size, the wall seconds (the load of a shared host
shows in them) and the export's own stage timings; with `--against`, whether the file is the
one an earlier run (its JSON lines) wrote for the same model and options. The exit status is 1
when one differs. The corpus models must be fetched first (`make corpus`; docs/real-models.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus.manifest import load_manifest
from corpus.measure import ours
from corpus.prepared import prepare
from corpus.protocol import CALIBRATION_SEED, HELDOUT, HELDOUT_SEED

from sdk.base.host import cpu_name

#: small models of four kinds (detector, audio embedding, landmarks with output heads, OCR
#: classifier) that take the stem rounding, the head rounding and the heads' mean shift
DEFAULT_MODELS = ("mp_face_detection_short_range", "oww_embedding", "mp_hand_landmark_lite",
                  "ppocr_mobile_v2_cls")


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _options(pairs: list[str]) -> dict[str, Any]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--option takes KEY=VALUE, not {pair!r}")
        options[key] = _value(value)
    return options


def _key(row: dict[str, Any]) -> str:
    return json.dumps([row["model"], row["options"]], sort_keys=True)


def export_rows(names: list[str], options: dict[str, Any], repeat: int, samples: int
                ) -> list[dict[str, Any]]:
    models = load_manifest()
    known = {m.name for m in models}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"not corpus models: {', '.join(unknown)}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgesdk-export-bytes-") as tmp:
        for name in names:
            prep = prepare(name, models=models)
            model, path, descs = prep.model, prep.path, prep.descs
            cal = prep.samples(samples, CALIBRATION_SEED)
            val = prep.samples(HELDOUT, HELDOUT_SEED)
            for run in range(repeat):
                data, result, seconds = ours(model, path, descs, cal, val, Path(tmp), **options)
                row = {"model": name, "options": options, "run": run,
                       "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                       "seconds": round(seconds, 2), "timings": result.timings,
                       "cpu": cpu_name(), "utc": time.strftime("%Y-%m-%d %H:%M",
                                                               time.gmtime())}
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS),
                    help="corpus model names, comma-separated")
    ap.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                    help="a keyword of sdk.export (the value as JSON where it parses)")
    ap.add_argument("--repeat", type=int, default=1, help="exports per model")
    ap.add_argument("--samples", type=int, default=32, help="calibration samples per model")
    ap.add_argument("--against", metavar="JSONL", help="an earlier run's lines to compare with")
    args = ap.parse_args(argv)
    earlier: dict[str, str] = {}
    if args.against:
        for line in Path(args.against).read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                earlier[_key(row)] = row["sha256"]
    rows = export_rows([n for n in args.models.split(",") if n], _options(args.option),
                       args.repeat, args.samples)
    if not args.against:
        return 0
    differ = 0
    for row in rows:
        was = earlier.get(_key(row))
        verdict = "not in the earlier run" if was is None else \
            "same bytes" if was == row["sha256"] else "DIFFERENT bytes"
        differ += was is not None and was != row["sha256"]
        print(f"{row['model']} {json.dumps(row['options'])} run {row['run']}: {verdict}",
              file=sys.stderr)
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
