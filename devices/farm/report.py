"""Farm reports: one self-contained HTML page with plots, plus JSON and a Markdown table.

The HTML page needs no network when viewed: the data is embedded as JSON and drawn as SVG by a
small script of our own (`report.js`, inlined). Plots:

* latency distribution per board (every kept run as a dot, with p50/p90 and the box of the
  middle half), for a chosen model;
* results per job (p50, p90, runs), with an NPU column when any board has an NPU (share of
  the nodes on it, n/m, its stack, or the fallback's reason); NPU boards' runs are drawn as
  squares in the latency plot (issue 18);
* per-layer breakdown for a chosen board and model (when the jobs timed layers);
* board x precision table of p50 latency, failures and quarantines marked;
* size / fidelity / latency trade-off across the precisions (int8, int4, int2, ternary...);
* for validation runs (`Farm.validate`): a board x model table of the device's outputs against
  the host's (exact, SQNR, max abs error, top-1 agreement), boards that disagree flagged;
* for a model `sdk.export(..., "mixed", budget_bytes= / budget_ms=)` made (its export report
  beside it): the size / fidelity (/ latency) Pareto front of the points its search measured,
  the chosen point marked, with the chosen file's p50 on each board (`mixed_fronts`).

Every file is written atomically (temp name, then rename).
"""

from __future__ import annotations

import html
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdk.base.fileio import atomic_write_text
from sdk.base.tables import Section, Table, jsonable, render_plain
from sdk.devices.farm.jobs import PRECISIONS, VALIDATE, export_report_path
from sdk.devices.farm.results import FarmRun, JobResult, format_ms
from sdk.devices.npu import placement_cell

#: latency samples per job embedded in the HTML page (report.json keeps what the profile kept)
HTML_SAMPLES = 400


@dataclass(frozen=True)
class ReportPaths:
    html: Path
    json: Path
    markdown: Path


def _precision_order(p: str) -> int:
    return PRECISIONS.index(p) if p in PRECISIONS else len(PRECISIONS)


def _thin(values: tuple[float, ...] | list[float], limit: int) -> list[float]:
    if len(values) <= limit:
        return list(values)
    return [values[i * len(values) // limit] for i in range(limit)]


def report_data(run: FarmRun, *, samples: int | None = None,
                layer_board: str | None = None) -> dict[str, Any]:
    """Everything the report shows, as JSON-ready data."""
    models: dict[str, dict[str, Any]] = {}
    jobs = []
    for r in run.results:
        m = r.model
        models.setdefault(m.sha256, {
            "name": m.name, "sha256": m.sha256, "size_bytes": m.size_bytes,
            "precision": m.precision, "format": m.format, "scheme": m.scheme,
            "fidelity": None if m.fidelity is None else {
                "min_sqnr_db": m.fidelity.min_sqnr_db,
                "top1_agreement": m.fidelity.top1_agreement, "source": m.fidelity.source}})
        jobs.append(_job(r, samples))
    flagged = run.flagged
    boards = [{**b.to_dict(), "disagrees": flagged.get(b.name, [])} for b in run.boards]
    for job, r in zip(jobs, run.results, strict=True):
        if r.validation is not None:
            job["validation"]["passed"] = bool(r.agrees(run.bounds))
    model_list = sorted(models.values(), key=lambda x: (_precision_order(x["precision"]),
                                                        x["name"]))
    with_layers = [b.name for b in run.boards
                   if any(j["board"] == b.name and j.get("layers") for j in jobs)]
    kinds = sorted({j["kind"] for j in jobs})
    return jsonable({
        "title": "edgesdk board farm report",
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "run": {"id": run.run_id, "started": run.started, "finished": run.finished,
                "wall_s": run.wall_s, "database": run.database, "backend": run.backend,
                "ok": len(run.ok), "failed": len(run.failed), "cached": len(run.cached)},
        "kinds": kinds,
        "bounds": run.bounds.to_dict(),
        "flagged": flagged,
        "boards": boards,
        "models": model_list,
        "precisions": sorted({m["precision"] for m in model_list}, key=_precision_order),
        "jobs": jobs,
        "events": [e.to_dict() for e in run.events],
        "layer_board": layer_board if layer_board in with_layers else
        (with_layers[0] if with_layers else None),
        "mixed": mixed_fronts(run),
    })


def _job(r: JobResult, samples: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"key": r.job_key, "model": r.model.sha256, "model_name": r.model.name,
                           "precision": r.model.precision, "board": r.board,
                           "status": r.status, "attempts": r.attempts, "cached": r.cached,
                           "error": r.error, "error_type": r.error_type,
                           "settings": r.settings.to_dict(), "run_id": r.run_id,
                           "kind": r.kind}
    v = r.validation
    if v is not None:
        out["device"] = v.device.summary()
        out["validation"] = {
            "samples": v.samples, "exact": v.exact, "sqnr_db": v.sqnr_db,
            "max_abs_error": v.max_abs_error, "top1_agreement": v.top1_agreement,
            "runner": v.runner, "runtime": v.runtime, "machine": v.machine,
            "reference": v.reference, "emulated": v.emulated, "notes": list(v.notes),
            "outputs": [{"name": o.name, "dtype": o.dtype, "shape": list(o.shape),
                         "exact": o.exact, "mismatched": o.mismatched,
                         "max_abs_error": o.max_abs_error,
                         "max_abs_error_raw": o.max_abs_error_raw, "sqnr_db": o.sqnr_db,
                         "top1_agreement": o.top1_agreement} for o in v.outputs]}
    p = r.profile
    if p is not None:
        out.update({
            "latency": vars(p.latency).copy(),
            "samples": _thin(p.latencies_ms, samples) if samples else list(p.latencies_ms),
            "init_ms": p.init_ms, "first_run_ms": p.first_run_ms, "timed_s": p.timed_s,
            "peak_memory_bytes": p.peak_memory_bytes, "cpu_ms": p.cpu_ms, "runner": p.runner,
            "runtime": p.runtime, "kernels": p.kernels, "machine": p.machine,
            "threads": p.threads, "cpus": p.cpus, "governor": p.governor,
            "temperature_c": p.temperature_c,
            "temperature_before_c": p.state_before.max_temperature_c,
            "temperature_after_c": p.state_after.max_temperature_c,
            "device": p.device.summary(), "emulated": p.emulated,
            "layers": [vars(x).copy() for x in p.per_layer or ()],
            "notes": list(p.notes),
            # issue 18: what an NPU board's NPU took (None on CPU boards)
            "npu": None if p.npu is None else p.npu.to_dict()})
    return out


# ---------------------------------------------------------------------------- Markdown

def _models_of(results: list[JobResult]) -> list[tuple[str, str, str, int]]:
    """(SHA-256, label, precision, size) of each model; the label is the file name, with the
    hash's start when two models share a name."""
    models = {r.model.sha256: r.model for r in results}
    names = [m.name for m in models.values()]
    out = [(sha, m.name if names.count(m.name) == 1 else f"{m.name} ({sha[:8]})", m.precision,
            m.size_bytes) for sha, m in models.items()]
    return sorted(out, key=lambda x: (_precision_order(x[2]), x[1]))


def _validation_cell(r: JobResult | None, run: FarmRun) -> str:
    if r is None:
        return ""
    v = r.validation
    if not r.ok or v is None:
        return f"FAILED ({r.error_type})"
    if v.exact:
        return "exact"
    top1 = "" if v.top1_agreement is None else f", top-1 {100 * v.top1_agreement:.1f}%"
    text = f"SQNR {v.sqnr_db:.1f} dB{top1}"
    return text if r.agrees(run.bounds) else f"**DISAGREES** ({text})"


def markdown(run: FarmRun) -> str:
    """A Markdown summary: p50 / p90 per model and board (profiles), the device's outputs
    against the host's per model and board (validations), board states, failures."""
    boards = [b.name for b in run.boards]
    profiles = [r for r in run.results if r.kind != VALIDATE]
    checks = [r for r in run.results if r.kind == VALIDATE]
    lines = [f"# Board farm run {run.run_id}", "",
             f"{len(run.ok)} jobs ok ({len(run.cached)} from earlier runs), "
             f"{len(run.failed)} failed, on {len(boards)} boards; {run.wall_s:.1f} s "
             f"({run.backend}).", ""]
    if profiles:
        cell: dict[tuple[str, str], JobResult] = {(r.model.sha256, r.board): r
                                                  for r in profiles}
        lines += ["p50 / p90 latency in ms (min runs and min duration per job as set).", "",
                  "| model | precision | size KiB | " + " | ".join(boards) + " |",
                  "|---|---|---:|" + "---:|" * len(boards)]
        for sha, name, precision, size in _models_of(profiles):
            row = []
            for board in boards:
                r = cell.get((sha, board))
                if r is None:
                    row.append("")
                elif r.ok and r.profile:
                    stats = r.profile.latency
                    npu = "" if r.profile.npu is None else \
                        f" ({placement_cell(r.profile.npu)})"  # an NPU board's placement
                    row.append(f"{format_ms(stats.p50_ms)} / {format_ms(stats.p90_ms)}{npu}")
                else:
                    row.append(f"FAILED ({r.error_type})")
            lines.append(f"| {name} | {precision} | {size / 1024:.1f} | " + " | ".join(row)
                         + " |")
    if checks:
        cell = {(r.model.sha256, r.board): r for r in checks}
        samples = sorted({r.validation.samples for r in checks if r.validation})
        lines += ([""] if profiles else []) + ["## Validation: device outputs vs this host", "",
                  f"Same inputs ({', '.join(map(str, samples)) or '?'} samples) on each board "
                  f"and on this host; pass = {run.bounds.describe()}.", "",
                  "| model | precision | " + " | ".join(boards) + " |",
                  "|---|---|" + "---|" * len(boards)]
        for sha, name, precision, _ in _models_of(checks):
            row = [_validation_cell(cell.get((sha, board)), run) for board in boards]
            lines.append(f"| {name} | {precision} | " + " | ".join(row) + " |")
        for board, models in run.flagged.items():
            lines.append(f"\n**{board}: outputs disagree with the host** for "
                         f"{', '.join(models)}.")
    lines += ["", "| board | state | ok | failed | device |", "|---|---|---:|---:|---|"]
    flagged = run.flagged
    for b in run.boards:
        state = b.state.upper() if b.state != "ok" else "ok"
        if b.name in flagged:
            state += ", OUTPUTS DISAGREE"
        lines.append(f"| {b.name} | {state} | {b.jobs_ok} | {b.jobs_failed} | "
                     f"{b.summary.replace('|', '/')} |")
    for b in run.boards:
        if b.reason:
            lines.append(f"\n**{b.name} quarantined:** {b.reason}")
    lines += mixed_markdown(mixed_fronts(run))
    failures = run.failed
    if failures:
        lines += ["", "## Failures", "", "| model | board | error | attempts |",
                  "|---|---|---|---:|"]
        for r in failures:
            text = (r.error or "").replace("|", "/").replace("\n", " ")[:300]
            lines.append(f"| {r.model.name} | {r.board} | {r.error_type}: {text} | "
                         f"{r.attempts} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- HTML
def html_page(run: FarmRun, *, layer_board: str | None = None) -> str:
    data = report_data(run, samples=HTML_SAMPLES, layer_board=layer_board)
    return html_from_data(data, f"edgesdk farm run {run.run_id}")


def html_from_data(data: dict[str, Any], title_text: str) -> str:
    """The page for `report_data`'s data (the plots are drawn from it in the browser)."""
    blob = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    script = (Path(__file__).with_name("report.js")).read_text()
    style = (Path(__file__).with_name("report.css")).read_text()
    title = html.escape(title_text)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{title}</title>"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<style>{style}</style></head><body>"
        f"<header><h1>{title}</h1><p id=\"summary\"></p></header>"
        "<main>"
        "<section><h2>Boards</h2><div id=\"boards\"></div></section>"
        "<section id=\"validation-section\"><h2>Validation: device outputs vs this host</h2>"
        "<div id=\"validation\"></div></section>"
        "<section class=\"profile-only\"><h2>Latency distribution per board</h2>"
        "<label>model <select id=\"latency-model\"></select></label>"
        "<div id=\"plot-latency\" class=\"plot\"></div></section>"
        "<section class=\"profile-only\"><h2>Results per job</h2>"
        "<div id=\"results\"></div></section>"
        "<section class=\"profile-only\"><h2>Board &times; precision: p50 latency (ms)</h2>"
        "<div id=\"precision-table\"></div></section>"
        "<section class=\"profile-only\"><h2>Size, fidelity and latency across precisions</h2>"
        "<label>latency on <select id=\"tradeoff-board\"></select></label>"
        "<div id=\"plot-tradeoff\" class=\"plot\"></div></section>"
        "<section class=\"profile-only\"><h2>Per-layer breakdown</h2>"
        "<label>board <select id=\"layers-board\"></select></label> "
        "<label>model <select id=\"layers-model\"></select></label>"
        "<div id=\"plot-layers\" class=\"plot\"></div></section>"
        + mixed_html(data.get("mixed") or []) +
        "<section><h2>Failures and incidents</h2><div id=\"failures\"></div></section>"
        "<section class=\"profile-only\"><h2>Measurement conditions</h2><details>"
        "<summary>runs, duration, warm-up, "
        "governor, temperature, pinning, runner per job</summary><div id=\"conditions\">"
        "</div></details></section>"
        "</main>"
        f"<script type=\"application/json\" id=\"farm-data\">{blob}</script>"
        f"<script>{script}</script></body></html>\n")


# ---------------------------------------------------------------------------- mixed precision
def mixed_fronts(run: FarmRun) -> list[dict[str, Any]]:
    """Per model of the run that mixed precision made (scheme "mixed", its export report
    beside it): the budget, the points its search measured (size, worst-output SQNR, the
    estimated latency where it had a latency budget), which are on the Pareto front and which
    was chosen, and the chosen file's measured p50 per board."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for r in run.results:
        m = r.model
        if m.scheme != "mixed" or m.sha256 in seen:
            continue
        seen.add(m.sha256)
        try:
            mixed = json.loads(export_report_path(Path(m.path)).read_text()).get("mixed")
        except (OSError, ValueError):
            continue
        if not isinstance(mixed, dict) or not mixed.get("points"):
            continue
        p50 = {x.board: x.profile.latency.p50_ms for x in run.results
               if x.model.sha256 == m.sha256 and x.ok and x.profile is not None}
        points = [{k: p.get(k) for k in ("label", "size_bytes", "worst_sqnr_db", "latency_ms",
                                         "on_front", "chosen", "within_budget")}
                  for p in mixed["points"]]
        out.append({"model": m.name, "sha256": m.sha256,
                    "budget_bytes": mixed.get("budget_bytes"),
                    "budget_ms": mixed.get("budget_ms"),
                    "latency_source": mixed.get("latency_source") or "",
                    "points": sorted(points, key=lambda p: p["size_bytes"]),
                    "board_p50_ms": p50})
    return out


def _budget(front: dict[str, Any]) -> str:
    parts = ([f"{front['budget_bytes']:,} bytes"] if front.get("budget_bytes") else []) + (
        [f"{front['budget_ms']:g} ms"] if front.get("budget_ms") else [])
    return " and ".join(parts) or "?"


def _sqnr(v: Any) -> str:
    return f"{v:.2f}" if isinstance(v, (int, float)) else str(v)


def _front_rows(front: dict[str, Any]) -> list[list[str]]:
    """The front's points and the chosen one (the others only counted)."""
    timed = front.get("budget_ms") is not None
    rows = []
    for p in front["points"]:
        if not (p["on_front"] or p["chosen"]):
            continue
        mark = "chosen" if p["chosen"] else "front"
        row = [mark, f"{p['size_bytes']:,}", _sqnr(p["worst_sqnr_db"])]
        if timed:
            row.append("" if p.get("latency_ms") is None else f"{p['latency_ms']:.3f}")
        row += [p["label"], "yes" if p["within_budget"] else "no"]
        rows.append(row)
    return rows


def _front_head(front: dict[str, Any]) -> list[str]:
    return ["", "size B", "worst SQNR dB"] + (
        ["latency ms (est.)"] if front.get("budget_ms") is not None else []) + \
        ["point", "within budget"]


def _front_note(front: dict[str, Any]) -> str:
    on = sum(1 for p in front["points"] if p["on_front"])
    boards = ", ".join(f"{b} {format_ms(ms)} ms" for b, ms in sorted(front["board_p50_ms"]
                                                                      .items()))
    src = f"; latency estimated from {front['latency_source']}" if front.get("budget_ms") \
        is not None else ""
    return (f"{len(front['points'])} points measured, {on} on the Pareto front{src}"
            + (f"; the chosen file's p50 on the boards: {boards}" if boards else ""))


def mixed_markdown(fronts: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for f in fronts:
        head = _front_head(f)
        lines += ["", f"## Mixed precision: {f['model']} (budget {_budget(f)})", "",
                  _front_note(f) + ".", "", "| " + " | ".join(head) + " |",
                  "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |"
                  for row in _front_rows(f)]
    return lines


def mixed_plain(fronts: list[dict[str, Any]]) -> str:
    """The same fronts as plain-text tables."""
    sections: list[Section] = []
    for f in fronts:
        sections += [f"mixed precision: {f['model']} (budget {_budget(f)}): {_front_note(f)}",
                     Table(None, tuple(_front_head(f)), [tuple(r) for r in _front_rows(f)])]
    return render_plain(sections)


def mixed_html(fronts: list[dict[str, Any]]) -> str:
    out = []
    for f in fronts:
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in _front_head(f))
        rows = "".join(
            f"<tr class=\"{'chosen' if row[0] == 'chosen' else 'front'}\">"
            + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in _front_rows(f))
        out.append(f"<section class=\"mixed-front\"><h2>Mixed precision: {esc(f['model'])} "
                   f"(budget {esc(_budget(f))})</h2><p>{esc(_front_note(f))}</p>"
                   f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
                   "</section>")
    return "".join(out)


def write_report(run: FarmRun, out_dir: str | os.PathLike[str], *,
                 layer_board: str | None = None) -> ReportPaths:
    """Write report.html, report.json and report.md into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(html=out / "report.html", json=out / "report.json",
                        markdown=out / "report.md")
    data = report_data(run, layer_board=layer_board)
    atomic_write_text(paths.json, json.dumps(data, indent=1) + "\n")
    atomic_write_text(paths.markdown, markdown(run))
    atomic_write_text(paths.html, html_page(run, layer_board=layer_board))
    return paths
