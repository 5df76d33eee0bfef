"""Re-apply the mixed search's choice rule to searches already measured (issue 15).

The search's exports do not depend on the rule that picks among them (`mixed.paired_choice` and
`mixed.ceiling_choice` run after it), so every recorded search (`--mixed` JSON of
`benchmarks/subbyte_fidelity.py`, or the `runs` of a results JSON holding several) can be
asked which point today's rule takes. Each row: the point the run chose and its figure on the
scored inputs, the point today's rule chooses, and that point's scored figure where the run
scored it (the chosen point, or a uniform plan the run scored as its own row: the int4 plan is
the `int4` row); "not scored" otherwise: a changed choice whose scored figure needs a new run.

    python benchmarks/mixed_choice_replay.py benchmarks/results/subbyte-mixed-2026-12-07.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdk.converters.quantize.mixed import MixedPoint, ceiling_choice, paired_choice

#: the uniform points the benchmark scores as rows of their own (label in the search -> row)
SCORED_ROWS = {"int4 scheme": "int4", "ternary scheme": "ternary"}


@dataclass
class Replay:
    run: str
    model: str
    row: str
    selection: int | None
    scored: int | None
    was: str
    was_db: float | None
    now: str
    now_db: float | None

    @property
    def changed(self) -> bool:
        return self.was != self.now


def points_of(raw: list[dict[str, Any]]) -> list[MixedPoint]:
    out = []
    for p in raw:
        db = p["worst_sqnr_db"]
        db = math.nan if db is None else float(db)
        out.append(MixedPoint(p["label"], p["size_bytes"], db, p["estimated_bytes"], p["bits"],
                              within_budget=p["within_budget"], splits=p.get("splits", {}),
                              halves_db=p.get("halves_db", [])))
    return out


def runs_of(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    data = json.loads(path.read_text())
    if "runs" in data:
        yield from data["runs"].items()
    else:
        yield path.stem, data


def replay(path: Path) -> Iterator[Replay]:
    for name, run in runs_of(path):
        for m in run.get("models", []):
            rows = {r["label"]: r for r in m.get("rows", [])}
            for r in m.get("rows", []):
                if "mixed" not in r:
                    continue
                points = points_of(r["mixed"]["points"])
                if not any(p.halves_db for p in points):
                    continue  # searched before the per-sample errors were kept
                inside = [i for i, p in enumerate(points) if p.within_budget]
                now, _ = paired_choice(points, inside)
                now, _ = ceiling_choice(points, inside, now)
                was = r["mixed"]["chosen"]
                now_db = r.get("worst_sqnr_db") if now == was else None
                same = [i for i, p in enumerate(points) if p.bits == points[now].bits
                        and p.splits == points[now].splits]
                if now_db is None and any(i == was for i in same):
                    now_db = r.get("worst_sqnr_db")  # the same plan, measured twice
                row = SCORED_ROWS.get(points[now].label)
                if now_db is None and row in rows:
                    now_db = rows[row].get("worst_sqnr_db")
                yield Replay(name, m["model"], r["label"], m.get("selection_samples"),
                             m.get("held_out_samples"), points[was].label,
                             r.get("worst_sqnr_db"), points[now].label, now_db)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("json", type=Path, nargs="+")
    p.add_argument("--all", action="store_true", help="also the rows whose choice is the same")
    args = p.parse_args(argv)
    changed = total = 0
    for path in args.json:
        for r in replay(path):
            total += 1
            changed += r.changed
            if not (r.changed or args.all):
                continue
            now = "not scored" if r.now_db is None else f"{r.now_db:.2f} dB"
            print(f"{r.run[:44]:44s} {r.model[:22]:22s} {r.row[:26]:26s} "
                  f"{r.selection}/{r.scored}: {r.was[:34]} ({r.was_db} dB) -> "
                  f"{'same' if not r.changed else r.now[:34]} ({now})")
    print(f"{changed} of {total} recorded choices change")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
