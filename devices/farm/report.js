// edgesdk farm report: draws the plots of report.html from the embedded JSON as SVG.
// Self-contained on purpose (no libraries, no network): the page works offline forever; why
// it is not a charting library's bundle: docs/cli.md, "Farm report charts".
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("farm-data").textContent);
  // profiles (latency plots) and validations (device outputs vs the host's)
  const PJOBS = DATA.jobs.filter((j) => j.kind !== "validate");
  const VJOBS = DATA.jobs.filter((j) => j.kind === "validate");
  const NS = "http://www.w3.org/2000/svg";
  const PRECISION_COLORS = {
    float32: "#6b7585", float16: "#8c6bb1", int8: "#2b6cb0", int4: "#2f9e6e",
    int2: "#d97706", ternary: "#c2410c", unknown: "#94a3b8",
  };
  const BOARD_COLORS = ["#2b6cb0", "#c2410c", "#2f9e6e", "#8c6bb1", "#d97706", "#0e7490",
                        "#be185d", "#4d7c0f", "#6b7585", "#a16207"];

  // ------------------------------------------------------------------ small helpers
  function el(tag, attrs, parent, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  function sv(tag, attrs, parent, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  function title(node, text) { sv("title", {}, node, text); return node; }
  function fmt(ms) {
    if (ms === null || ms === undefined || !isFinite(ms)) return "-";
    if (ms >= 100) return ms.toFixed(0);
    if (ms >= 10) return ms.toFixed(1);
    if (ms >= 1) return ms.toFixed(2);
    if (ms >= 0.01) return ms.toFixed(3);
    return ms.toPrecision(2);
  }
  function kib(bytes) { return (bytes / 1024).toFixed(bytes < 10240 ? 1 : 0) + " KiB"; }
  function quantile(sorted, q) {
    if (!sorted.length) return NaN;
    const pos = (sorted.length - 1) * q, lo = Math.floor(pos);
    const hi = Math.min(lo + 1, sorted.length - 1);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
  }
  function median(xs) { return quantile(xs.slice().sort((a, b) => a - b), 0.5); }
  function boardColor(name) {
    const i = DATA.boards.findIndex((b) => b.name === name);
    return BOARD_COLORS[(i < 0 ? 0 : i) % BOARD_COLORS.length];
  }
  // p50 where the runner gave samples; the mean where it gave only statistics
  function p50of(job) {
    return job.latency.p50_ms !== null ? job.latency.p50_ms : job.latency.mean_ms;
  }
  function jobsOf(pred) { return PJOBS.filter(pred); }
  // an NPU board's placement (issue 18): `NPU 33% (2/6) · ethos-u`, or `CPU only (fallback:
  // why) · stack`; "-" for a CPU board. NPU_RUN: any profile carried a placement.
  const NPU_RUN = PJOBS.some((j) => j.npu);
  function npuCell(job) {
    const n = job.npu;
    if (!n) return "-";
    if (n.fallback !== null && n.fallback !== undefined) {
      return `CPU only (fallback: ${n.fallback}) · ${n.stack}`;
    }
    const share = (100 * (n.nodes ? n.npu.length / n.nodes : 0)).toFixed(0);
    return `NPU ${share}% (${n.npu.length}/${n.nodes}) · ${n.stack}`;
  }
  function fill(select, options, chosen) {
    select.innerHTML = "";
    for (const [value, label] of options) {
      const o = el("option", { value: value }, select, label);
      if (value === chosen) o.selected = true;
    }
  }

  // A scale: linear, or log10 when the data spans more than `logRatio`.
  function scale(lo, hi, a, b, logRatio) {
    const useLog = lo > 0 && hi / lo > (logRatio || 30);
    if (useLog) {
      const l0 = Math.log10(lo), l1 = Math.log10(hi);
      const f = (v) => a + (Math.log10(Math.max(v, lo)) - l0) / (l1 - l0 || 1) * (b - a);
      f.ticks = () => {
        const out = [];
        for (let e = Math.floor(l0); e <= Math.ceil(l1); e++) {
          for (const m of [1, 2, 5]) {
            const v = m * Math.pow(10, e);
            if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
          }
        }
        return out.length >= 2 ? out : [lo, hi];
      };
      f.log = true;
      return f;
    }
    const span = hi - lo || Math.abs(hi) || 1;
    const f = (v) => a + (v - lo) / span * (b - a);
    f.ticks = () => {
      const raw = span / 5, mag = Math.pow(10, Math.floor(Math.log10(raw)));
      const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= 6);
      const out = [];
      for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
      return out;
    };
    f.log = false;
    return f;
  }
  // `signed`: the range may go below zero (SQNR in dB), else it stops at 0 (times, sizes)
  function padRange(lo, hi, log, signed) {
    if (log) return [lo / 1.3, hi * 1.3];
    const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
    return [signed ? lo - pad : Math.max(0, lo - pad), hi + pad];
  }
  // The width of `text` drawn with class `cls` in `svg`, measured by the browser (an estimate
  // where it cannot measure): margins are sized from it so that no label is cut.
  function textWidth(svg, text, cls) {
    const probe = sv("text", { x: 0, y: 0, class: cls || "label", visibility: "hidden" }, svg,
                     text);
    let w = 0;
    try { w = probe.getComputedTextLength(); } catch (err) { w = 0; }
    probe.remove();
    return w > 0 ? w : text.length * 7;
  }
  // `text` shortened from its start ("…" + its end, the distinctive part of a layer or board
  // name) until it fits `maxW` pixels; the full text goes in the element's title.
  function fitText(svg, text, maxW, cls) {
    if (textWidth(svg, text, cls) <= maxW) return text;
    let keep = text.length - 1;
    while (keep > 1 && textWidth(svg, "…" + text.slice(-keep), cls) > maxW) keep--;
    return "…" + text.slice(-keep);
  }
  // A label beside a point, placed where it overlaps no label placed before it and stays
  // inside [x0, x1] x [y0, y1]; moved labels get a leader line to their point. Every label
  // records its box (data-box: x0 y0 x1 y1) so tests can check the layout.
  function placeLabel(svg, parent, placed, px, py, text, area, cls) {
    const w = textWidth(svg, text, cls || "label"), h = 14;
    const fits = (bx, by) => bx >= area[0] && bx + w <= area[1] && by - h + 3 >= area[2] &&
      by + 3 <= area[3] && placed.every((b) => bx + w <= b[0] || bx >= b[2] ||
                                          by + 3 <= b[1] || by - h + 3 >= b[3]);
    const candidates = [[px + 9, py - 7], [px + 9, py + 15], [px - 9 - w, py - 7],
                        [px - 9 - w, py + 15], [px - w / 2, py - 11], [px - w / 2, py + 21]];
    for (let step = 1; step <= 24; step++) {
      for (const dy of [-step * h, step * h]) {
        candidates.push([px + 9, py - 7 + dy], [px - 9 - w, py - 7 + dy]);
      }
    }
    let spot = candidates.find(([bx, by]) => fits(bx, by));
    if (!spot) {  // nowhere free: keep it inside the area at least
      spot = [Math.min(Math.max(px + 9, area[0]), area[1] - w),
              Math.min(Math.max(py - 7, area[2] + h - 3), area[3] - 3)];
    }
    const [bx, by] = spot;
    const box = [bx, by - h + 3, bx + w, by + 3];
    placed.push(box);
    if (Math.hypot(bx - px, by - py) > 24 && !(bx <= px && px <= bx + w)) {
      sv("line", { class: "leader", x1: px, y1: py, x2: bx < px ? bx + w : bx,
                   y2: by - 4, stroke: "#9aa3b0", "stroke-width": 0.8 }, parent);
    }
    return sv("text", { x: bx.toFixed(1), y: by.toFixed(1), class: cls || "label",
                        "data-box": box.map((v) => v.toFixed(1)).join(" ") }, parent, text);
  }
  function xAxis(svg, x, y0, x0, x1, label) {
    const g = sv("g", { class: "axis" }, svg);
    sv("line", { x1: x0, x2: x1, y1: y0, y2: y0 }, g);
    for (const t of x.ticks()) {
      sv("line", { x1: x(t), x2: x(t), y1: y0, y2: y0 + 4 }, g);
      sv("text", { x: x(t), y: y0 + 16, "text-anchor": "middle" }, g, fmt(t));
    }
    sv("text", { x: (x0 + x1) / 2, y: y0 + 32, "text-anchor": "middle" }, g, label);
    return g;
  }
  function yAxis(svg, y, x0, y0, y1, label, format) {
    const g = sv("g", { class: "axis" }, svg);
    sv("line", { x1: x0, x2: x0, y1: y0, y2: y1 }, g);
    for (const t of y.ticks()) {
      sv("line", { x1: x0 - 4, x2: x0, y1: y(t), y2: y(t) }, g);
      sv("text", { x: x0 - 6, y: y(t) + 4, "text-anchor": "end" }, g, (format || fmt)(t));
    }
    sv("text", { x: 12, y: (y0 + y1) / 2, transform: `rotate(-90 12 ${(y0 + y1) / 2})`,
                 "text-anchor": "middle" }, g, label);
    return g;
  }

  // ------------------------------------------------------------------ summary and boards
  function summary() {
    const r = DATA.run;
    document.getElementById("summary").textContent =
      `${r.ok} jobs ok (${r.cached} from earlier runs), ${r.failed} failed, ` +
      `${DATA.boards.length} boards, ${DATA.models.length} models; ${r.wall_s.toFixed(1)} s ` +
      `wall (${r.backend}); generated ${DATA.generated}; results: ${r.database}`;
  }

  function boards() {
    const host = document.getElementById("boards");
    const t = el("table", { id: "boards-table" }, host);
    const head = el("tr", {}, t);
    for (const h of ["board", "state", "tags", "ok", "failed", "device", "why"]) {
      el("th", {}, head, h);
    }
    for (const b of DATA.boards) {
      const tr = el("tr", { "data-board": b.name, "data-state": b.state }, t);
      el("td", {}, tr, b.name);
      const td = el("td", {}, tr);
      el("span", { class: "badge " + b.state }, td, b.state);
      if (b.disagrees && b.disagrees.length) {
        tr.setAttribute("data-flagged", "true");
        const flag = el("span", { class: "badge disagree" }, td, "outputs disagree");
        flag.title = "device outputs disagree with the host for " + b.disagrees.join(", ");
      }
      el("td", {}, tr, Object.entries(b.tags).map(([k, v]) => (v ? `${k}=${v}` : k))
        .join(", "));
      el("td", { class: "num" }, tr, String(b.jobs_ok));
      el("td", { class: "num" }, tr, String(b.jobs_failed));
      el("td", {}, tr, b.summary || "");
      el("td", { class: b.reason ? "error" : "" }, tr, b.reason || "");
    }
  }

  // ------------------------------------------------------------------ latency distribution
  function latency(modelId) {
    const host = document.getElementById("plot-latency");
    host.innerHTML = "";
    const rows = DATA.boards.map((b) => ({
      board: b.name,
      job: PJOBS.find((j) => j.model === modelId && j.board === b.name),
    })).filter((r) => r.job);
    const okRows = rows.filter((r) => r.job.status === "ok");
    const all = [].concat(...okRows.map((r) => r.job.samples));
    const W = 900, rowH = 34, top = 16;
    const npuLegend = okRows.some((r) => r.job.npu);  // a row under the axis for its legend
    const H = top + rows.length * rowH + 46 + (npuLegend ? 18 : 0);
    const svg = sv("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H,
                            id: "latency-svg", "data-plot": "latency" }, host);
    const stats = (job) => `p50 ${fmt(p50of(job))} · p90 ${fmt(job.latency.p90_ms)} ms · ` +
      `${job.latency.runs} runs`;
    // margins wide enough for the longest board name and the longest statistics line
    const left = Math.min(W / 3, Math.max(
      150, 20 + Math.max(0, ...rows.map((r) => textWidth(svg, r.board)))));
    const right = Math.max(250, 24 + Math.max(0, ...okRows.map(
      (r) => textWidth(svg, stats(r.job), "small"))));
    if (!all.length) {
      sv("text", { x: left, y: top + 20, class: "failed-row" }, svg,
         "no successful runs of this model");
    }
    // the axis spans the fastest run to the slowest board's p99: rarer outliers sit at the
    // right edge (drawn as open circles) instead of squeezing everything else
    const lo = all.length ? Math.min(...all) : 0.1;
    const hi = all.length ? Math.max(lo * 1.01, ...okRows.map(
      (r) => (r.job.latency.p99_ms !== null ? r.job.latency.p99_ms : r.job.latency.max_ms)))
      : 1;
    const probe = scale(lo, hi, 0, 1);
    const [a, b] = padRange(lo, hi, probe.log);
    const x = scale(a, b, left, W - right, probe.log ? 1 : 1e12);
    for (const t of x.ticks()) {
      sv("line", { class: "grid", x1: x(t), x2: x(t), y1: top, y2: top + rows.length * rowH },
         svg);
    }
    rows.forEach((r, i) => {
      const cy = top + i * rowH + rowH / 2;
      const label = sv("text", { x: left - 10, y: cy + 4, "text-anchor": "end",
                                 class: "label" }, svg, fitText(svg, r.board, left - 20));
      label.setAttribute("data-w", textWidth(svg, label.textContent).toFixed(1));
      title(label, r.board + (r.job.device ? ": " + r.job.device : "") +
            (r.job.npu ? "; " + npuCell(r.job) : ""));
      if (r.job.status !== "ok") {
        sv("text", { x: left + 6, y: cy + 4, class: "failed-row", "data-board": r.board }, svg,
           `failed (${r.job.error_type})`);
        return;
      }
      const s = r.job.samples.slice().sort((p, q) => p - q);
      const color = boardColor(r.board);
      const g = sv("g", { "data-board": r.board }, svg);
      // the middle half as a box, p50 and p90 as marks, every kept run as a dot
      if (s.length) {
        const q1 = quantile(s, 0.25), q3 = quantile(s, 0.75);
        sv("rect", { class: "box", x: x(q1), y: cy - 10, width: Math.max(x(q3) - x(q1), 1),
                     height: 20, fill: color, "fill-opacity": 0.15, stroke: color }, g);
      }
      let seed = 7;
      const jitter = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
      // an NPU board's runs are squares with a dark edge (legend below the axis)
      const onNpu = Boolean(r.job.npu);
      if (onNpu) g.setAttribute("data-npu", npuCell(r.job));
      for (const v of r.job.samples) {
        const out = v > b;
        const cx = x(Math.min(v, b)), cyv = cy - 8 + 16 * jitter();
        if (onNpu) {
          sv("rect", { class: out ? "sample npu outlier" : "sample npu",
                       x: (cx - 2.2).toFixed(1), y: (cyv - 2.2).toFixed(1), width: 4.4,
                       height: 4.4, fill: out ? "none" : color, stroke: "#1d2430",
                       "stroke-width": 0.6, "fill-opacity": 0.55 }, g);
          continue;
        }
        sv("circle", { class: out ? "sample outlier" : "sample",
                       cx: cx.toFixed(1), cy: cyv.toFixed(1), r: out ? 2.5 : 1.8,
                       fill: out ? "none" : color, stroke: out ? color : "none",
                       "fill-opacity": 0.45 }, g);
      }
      const p50 = p50of(r.job), p90 = r.job.latency.p90_ms;
      title(sv("line", { class: "p50", x1: x(p50), x2: x(p50), y1: cy - 13, y2: cy + 13,
                         stroke: "#1d2430", "stroke-width": 2.5 }, g), `p50 ${fmt(p50)} ms`);
      if (p90 !== null) {
        title(sv("line", { class: "p90", x1: x(p90), x2: x(p90), y1: cy - 9, y2: cy + 9,
                           stroke: "#1d2430", "stroke-width": 1.2, "stroke-dasharray": "3 2" },
                 g), `p90 ${fmt(p90)} ms`);
      }
      sv("text", { x: W - right + 14, y: cy + 4, class: "small" }, g, stats(r.job));
    });
    xAxis(svg, x, top + rows.length * rowH, left, W - right,
          "latency per run, ms" + (x.log ? " (log scale)" : ""));
    if (npuLegend) {
      const ly = top + rows.length * rowH + 56;
      const g = sv("g", { class: "legend", "data-legend": "npu" }, svg);
      sv("circle", { cx: left + 4, cy: ly - 4, r: 2.2, fill: "#6b7585" }, g);
      sv("text", { x: left + 12, y: ly, class: "small" }, g, "CPU board");
      sv("rect", { x: left + 86, y: ly - 6.2, width: 4.4, height: 4.4, fill: "#6b7585",
                   stroke: "#1d2430", "stroke-width": 0.6 }, g);
      sv("text", { x: left + 96, y: ly, class: "small" }, g,
         "NPU board (its placement: hover the board's name; table below)");
    }
    el("p", { class: "note" }, host,
       "Dots: timed runs (up to 400 per board shown; open circles at the right edge: slower " +
       "than the axis, which ends at the slowest board's p99); box: middle half; solid mark: " +
       "p50; dashed: p90. Emulated boards run Arm code under qemu: their times are not Arm speed.");
  }

  // ------------------------------------------------------------------ results per job
  function results() {
    const host = document.getElementById("results");
    const t = el("table", { id: "results-table" }, host);
    const head = el("tr", {}, t);
    const cols = ["model", "board", "p50 ms", "p90 ms", "runs"];
    for (const h of NPU_RUN ? [...cols, "NPU"] : cols) el("th", {}, head, h);
    for (const m of DATA.models) {
      for (const b of DATA.boards) {
        const j = PJOBS.find((q) => q.model === m.sha256 && q.board === b.name);
        if (!j) continue;
        const tr = el("tr", { "data-board": b.name, "data-model": m.sha256 }, t);
        el("td", {}, tr, j.model_name + (j.cached ? " (earlier run)" : ""));
        el("td", {}, tr, j.board);
        if (j.status !== "ok") {
          el("td", { class: "cell-failed", colspan: 3 }, tr, `failed (${j.error_type})`);
        } else {
          el("td", { class: "num" }, tr, fmt(p50of(j)));
          el("td", { class: "num" }, tr, fmt(j.latency.p90_ms));
          el("td", { class: "num" }, tr, String(j.latency.runs));
        }
        if (!NPU_RUN) continue;
        const n = j.npu;
        const td = el("td", { class: n ? (n.fallback ? "npu-cell npu-fallback" : "npu-cell")
                                       : "cell-empty", "data-npu": n ? "true" : "false" },
                      tr, j.status === "ok" ? npuCell(j) : "-");
        if (n) {
          td.title = `${n.runtime} (${n.source}${n.exact ? "" : ", XNNPACK left on"}); ` +
            `on the NPU: ${n.npu.join(", ") || "none"}; on the CPU: ${n.cpu.join(", ") || "none"}`;
        }
      }
    }
    if (NPU_RUN) {
      el("p", { class: "note" }, host, "NPU: share of the model's nodes the board's NPU took " +
         "(n/m nodes) and its stack; CPU only when the delegate fell back, with the reason; " +
         "- on CPU boards.");
    }
  }

  // ------------------------------------------------------------------ board x precision
  function precisionTable() {
    const host = document.getElementById("precision-table");
    const precisions = DATA.precisions;
    const t = el("table", { id: "precision-matrix" }, host);
    const head = el("tr", {}, t);
    el("th", {}, head, "board");
    for (const p of precisions) el("th", {}, head, p);
    for (const b of DATA.boards) {
      const tr = el("tr", { "data-board": b.name }, t);
      el("td", {}, tr, b.name + (b.state === "quarantined" ? " (quarantined)" : ""));
      const cells = precisions.map((p) => jobsOf((j) => j.board === b.name &&
                                                   j.precision === p));
      const best = Math.min(...cells.flat().filter((j) => j.status === "ok").map(p50of));
      precisions.forEach((p, i) => {
        const jobs = cells[i];
        const ok = jobs.filter((j) => j.status === "ok");
        if (!jobs.length) { el("td", { class: "cell-empty" }, tr, ""); return; }
        if (!ok.length) {
          const quarantined = jobs.some((j) => j.error_type === "quarantined");
          const td = el("td", { class: quarantined ? "cell-quarantined cell-failed"
                                                   : "cell-failed" }, tr,
                        quarantined ? "quarantined" : "failed");
          td.title = jobs.map((j) => `${j.model_name}: ${j.error}`).join("\n");
          return;
        }
        const j = ok.reduce((m, q) => (p50of(q) < p50of(m) ? q : m));
        const ratio = p50of(j) / best;
        // green for the board's fastest precision, towards amber/red as it gets slower
        const hue = Math.max(0, 130 - 60 * Math.log2(ratio));
        const td = el("td", { class: "num cell-ok", "data-p50": p50of(j),
                              style: `background: hsl(${hue}, 60%, 88%)` }, tr, fmt(p50of(j)));
        td.title = `${j.model_name}: p50 ${fmt(p50of(j))} ms, p90 ` +
          `${fmt(j.latency.p90_ms)} ms, ${ratio.toFixed(2)}x the board's fastest`;
      });
    }
    el("p", { class: "note" }, host, "p50 latency in ms of the fastest model of each " +
       "precision on each board; colour: relative to that board's fastest precision.");
  }

  // ------------------------------------------------------------------ trade-off
  function tradeoff(boardChoice) {
    const host = document.getElementById("plot-tradeoff");
    host.innerHTML = "";
    const points = [];
    for (const m of DATA.models) {
      const ok = jobsOf((j) => j.model === m.sha256 && j.status === "ok" &&
                        (boardChoice === "*" || j.board === boardChoice));
      if (!ok.length) continue;
      points.push({ model: m, latency: median(ok.map(p50of)),
                    n: ok.length });
    }
    const W = 900, H = 340, top = 20, bottom = 50, left = 64, gap = 70;
    const panel = (W - left - gap - 20) / 2;
    const svg = sv("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H,
                            id: "tradeoff-svg", "data-plot": "tradeoff" }, host);
    if (!points.length) {
      sv("text", { x: left, y: top + 20, class: "failed-row" }, svg,
         "no successful runs to compare");
      return;
    }
    const sizes = points.map((p) => p.model.size_bytes / 1024);
    const sx = padRange(Math.min(...sizes), Math.max(...sizes), true);
    const x1 = scale(sx[0], sx[1], left, left + panel, 1);
    const x2 = scale(sx[0], sx[1], left + panel + gap, left + 2 * panel + gap, 1);
    const lat = points.map((p) => p.latency);
    const ly = padRange(Math.min(...lat), Math.max(...lat), false);
    const y1 = scale(ly[0], ly[1], H - bottom, top, 1e12);
    // SQNR as a number: report.json writes non-finite values as "inf" / "-inf" / "nan"
    const sqnr = (v) => (v === "inf" ? Infinity : v === "-inf" ? -Infinity :
      v === "nan" || v === null || v === undefined ? NaN : Number(v));
    const fid = points.filter((p) => p.model.fidelity &&
                              !Number.isNaN(sqnr(p.model.fidelity.min_sqnr_db)));
    // the axis spans every finite SQNR, negative ones too; an exact model (inf) sits on the
    // top edge and an all-error one (-inf) on the bottom edge, marked, never dropped
    const fv = fid.map((p) => sqnr(p.model.fidelity.min_sqnr_db)).filter((v) => isFinite(v));
    const fy = fv.length ? padRange(Math.min(...fv), Math.max(...fv), false, true) : [0, 40];
    const y2 = scale(fy[0], fy[1], H - bottom, top, 1e12);
    xAxis(svg, x1, H - bottom, left, left + panel, "model size, KiB (log)");
    yAxis(svg, y1, left, H - bottom, top, "p50 latency, ms");
    xAxis(svg, x2, H - bottom, left + panel + gap, left + 2 * panel + gap,
          "model size, KiB (log)");
    const ax2 = yAxis(svg, y2, left + panel + gap, H - bottom, top, "",
                      (v) => v.toFixed(0));
    sv("text", { x: left + panel + gap - 40, y: top - 6 }, ax2, "fidelity: min SQNR, dB");
    const areas = { latency: [left + 2, left + panel + gap - 44, top, H - bottom - 2],
                    fidelity: [left + panel + gap + 2, W - 2, top, H - bottom - 2] };
    const placed = { latency: [], fidelity: [] };
    const drawPoint = (p, x, y, cls, extra, edge) => {
      const color = PRECISION_COLORS[p.model.precision] || PRECISION_COLORS.unknown;
      const g = sv("g", { class: cls, "data-model": p.model.name,
                          "data-precision": p.model.precision }, svg);
      const point = edge ?
        sv("path", { class: `${cls}-point tradeoff-point clipped`, "data-edge": edge,
                     d: edge === "top" ? `M${x - 7},${y + 6} L${x + 7},${y + 6} L${x},${y - 6}Z`
                                       : `M${x - 7},${y - 6} L${x + 7},${y - 6} L${x},${y + 6}Z`,
                     fill: color, stroke: "#fff", "stroke-width": 1.5 }, g) :
        sv("circle", { class: cls + "-point tradeoff-point", cx: x, cy: y, r: 6,
                       fill: color, stroke: "#fff", "stroke-width": 1.5 }, g);
      title(point, `${p.model.name}: ${p.model.precision}, ${kib(p.model.size_bytes)}, ` +
            extra);
      placeLabel(svg, g, placed[cls], x, y, p.model.precision +
                 (p.model.format !== "tflite" ? " ." + p.model.format : "") +
                 (edge === "top" ? " (exact)" : edge === "bottom" ? " (-inf dB)" : ""),
                 areas[cls]);
    };
    for (const p of points) {
      drawPoint(p, x1(p.model.size_bytes / 1024), y1(p.latency), "latency",
                `p50 ${fmt(p.latency)} ms` + (boardChoice === "*" ?
                  ` (median of ${p.n} boards)` : ""));
    }
    for (const p of fid) {
      const f = p.model.fidelity, v = sqnr(f.min_sqnr_db);
      const edge = v === Infinity ? "top" : v === -Infinity ? "bottom" : null;
      const y = edge === "top" ? top : edge === "bottom" ? H - bottom : y2(v);
      drawPoint(p, x2(p.model.size_bytes / 1024), y, "fidelity",
                (edge === "top" ? "bit-exact (SQNR inf)" : edge === "bottom" ?
                  "SQNR -inf dB (the output is all error)" : `SQNR ${v.toFixed(1)} dB`) +
                (f.top1_agreement !== null ?
                  `, top-1 agreement ${(100 * f.top1_agreement).toFixed(1)}%` : "") +
                ` (${f.source})`, edge);
    }
    const missing = points.filter((p) => !fid.includes(p)).map((p) => p.model.name);
    const notes = el("p", { class: "note" }, host,
      "Left: latency (p50" + (boardChoice === "*" ? ", median over boards" :
        " on " + boardChoice) + ") against size. Right: fidelity against the float model " +
      "(from each model's export report, or measured on the host with --reference).");
    if (missing.length) {
      notes.textContent += " No fidelity for: " + missing.join(", ") + ".";
    }
  }

  // ------------------------------------------------------------------ per-layer breakdown
  function layers(board, modelId) {
    const host = document.getElementById("plot-layers");
    host.innerHTML = "";
    const job = PJOBS.find((j) => j.board === board && j.model === modelId);
    if (!job || !job.layers || !job.layers.length) {
      el("p", { class: "note" }, host, board ? `no per-layer times for this board and ` +
         `model (profile with --layers)` : "no job timed its layers (profile with --layers)");
      return;
    }
    const rows = job.layers;
    const W = 900, rowH = 22, top = 10, right = 120;
    const H = top + rows.length * rowH + 44;
    const svg = sv("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H,
                            id: "layers-svg", "data-plot": "layers" }, host);
    const layerLabel = (r, i) =>
      `${i}: ${r.op}  ${r.name.length > 26 ? "…" + r.name.slice(-25) : r.name}`;
    const left = Math.min(W / 2, Math.max(
      280, 16 + Math.max(...rows.map((r, i) => textWidth(svg, layerLabel(r, i))))));
    const labelW = left - 12;
    const times = rows.map((r) => r.mean_ms || 0);
    const x = scale(0, Math.max(...times) * 1.05 || 1, left, W - right, 1e12);
    for (const t of x.ticks()) {
      sv("line", { class: "grid", x1: x(t), x2: x(t), y1: top, y2: top + rows.length * rowH },
         svg);
    }
    const total = times.reduce((s, v) => s + v, 0);
    rows.forEach((r, i) => {
      const y = top + i * rowH;
      const g = sv("g", { "data-layer": r.name }, svg);
      const label = sv("text", { x: left - 8, y: y + rowH / 2 + 4, "text-anchor": "end",
                                 class: "label" }, g, fitText(svg, layerLabel(r, i), labelW));
      label.setAttribute("data-w", textWidth(svg, label.textContent).toFixed(1));
      title(label, `${r.op} ${r.name}`);
      if (r.mean_ms === null) {
        sv("text", { x: left + 4, y: y + rowH / 2 + 4, class: "failed-row" }, g,
           "not timed (the operator did not run alone)");
        return;
      }
      title(sv("rect", { class: "layer-bar", x: left, y: y + 3,
                         width: Math.max(x(r.mean_ms) - left, 1), height: rowH - 6,
                         fill: boardColor(board) }, g),
            `${r.op} ${r.name}: ${fmt(r.mean_ms)} ms (${(100 * r.mean_ms / total)
              .toFixed(1)}%)` + (r.kernel ? `; ${r.kernel}` : ""));
      sv("text", { x: x(r.mean_ms) + 6, y: y + rowH / 2 + 4, class: "small" }, g,
         `${fmt(r.mean_ms)} ms · ${(100 * r.mean_ms / total).toFixed(0)}%`);
    });
    xAxis(svg, x, top + rows.length * rowH, left, W - right, "ms per operator");
    const isolated = rows.every((r) => r.kernel === "isolated op");
    el("p", { class: "note" }, host, `Sum of layers ${fmt(total)} ms; end to end p50 ` +
       `${fmt(job.latency ? p50of(job) : NaN)} ms. ` + (isolated ?
         "Each operator was timed alone in an interpreter of its own (LiteRT's Python API " +
         "has no op profiler), so the sum differs from an end-to-end run." :
         `Times from ${job.runner}'s own per-layer profiling.`));
  }

  // ------------------------------------------------------------------ validation
  function pct(x) { return x === null || x === undefined ? "-" : (100 * x).toFixed(1) + "%"; }
  function db(x) {
    if (x === "inf" || x === Infinity) return "exact";
    if (x === "-inf") return "-inf dB";
    return typeof x === "number" ? x.toFixed(1) + " dB" : String(x);
  }
  function validation() {
    const host = document.getElementById("validation");
    const b = DATA.bounds;
    const models = DATA.models.filter((m) => VJOBS.some((j) => j.model === m.sha256));
    const t = el("table", { id: "validation-matrix" }, host);
    const head = el("tr", {}, t);
    el("th", {}, head, "board");
    for (const m of models) el("th", {}, head, `${m.name} (${m.precision})`);
    for (const board of DATA.boards) {
      const tr = el("tr", { "data-board": board.name,
                            "data-flagged": board.disagrees.length ? "true" : "false" }, t);
      el("td", {}, tr, board.name + (board.disagrees.length ? " (outputs disagree)" : ""));
      for (const m of models) {
        const j = VJOBS.find((q) => q.board === board.name && q.model === m.sha256);
        if (!j) { el("td", { class: "cell-empty" }, tr, ""); continue; }
        if (j.status !== "ok" || !j.validation) {
          const quarantined = j.error_type === "quarantined";
          const td = el("td", { class: quarantined ? "cell-quarantined cell-failed"
                                                   : "cell-failed" }, tr,
                        quarantined ? "quarantined" : "failed");
          td.title = `${j.error_type}: ${j.error}`;
          continue;
        }
        const v = j.validation;
        const text = v.exact ? "exact" :
          `${db(v.sqnr_db)} · top-1 ${pct(v.top1_agreement)}`;
        const td = el("td", { class: v.passed ? "cell-pass" : "cell-disagree",
                              "data-passed": String(v.passed) }, tr,
                      v.passed ? text : "disagrees: " + text);
        td.title = `${v.samples} samples; max abs error ${v.max_abs_error}; ` +
          `${v.runner} (${v.machine}) vs ${v.reference}`;
      }
    }
    el("p", { class: "note" }, host,
       `Each board ran the same inputs as this host; pass = bit-exact, or SQNR ≥ ` +
       `${b.min_sqnr_db} dB and top-1 agreement ≥ ${(100 * b.min_top1).toFixed(0)}%. ` +
       `Boards that fail it are flagged.`);
    const d = el("table", { id: "validation-table" }, host);
    const h = el("tr", {}, d);
    for (const c of ["model", "board", "samples", "exact", "mismatched", "SQNR",
                     "max abs error", "top-1 agreement", "device runner", "host reference",
                     "verdict"]) el("th", {}, h, c);
    for (const j of VJOBS.filter((q) => q.status === "ok" && q.validation)) {
      const v = j.validation;
      const tr = el("tr", { "data-board": j.board, "data-passed": String(v.passed) }, d);
      el("td", {}, tr, j.model_name + (j.cached ? " (earlier run)" : ""));
      el("td", {}, tr, j.board);
      el("td", { class: "num" }, tr, String(v.samples));
      el("td", {}, tr, v.exact ? "yes" : "no");
      el("td", { class: "num" }, tr,
         String(v.outputs.reduce((s, o) => s + o.mismatched, 0)));
      el("td", { class: "num" }, tr, db(v.sqnr_db));
      el("td", { class: "num" }, tr, Number(v.max_abs_error).toPrecision(3));
      el("td", { class: "num" }, tr, pct(v.top1_agreement));
      el("td", {}, tr, `${v.runner} (${v.machine}): ${v.runtime}`);
      el("td", {}, tr, v.reference);
      el("td", { class: v.passed ? "" : "error" }, tr, v.passed ? "pass" : "DISAGREES");
    }
  }

  // ------------------------------------------------------------------ failures, conditions
  function failures() {
    const host = document.getElementById("failures");
    const failed = DATA.jobs.filter((j) => j.status !== "ok");
    if (!failed.length && !DATA.events.length) {
      el("p", { class: "note" }, host, "none: every job succeeded at its first attempt");
      return;
    }
    if (failed.length) {
      const t = el("table", { id: "failures-table" }, host);
      const head = el("tr", {}, t);
      for (const h of ["model", "board", "error", "attempts"]) el("th", {}, head, h);
      for (const j of failed) {
        const tr = el("tr", { "data-board": j.board }, t);
        el("td", {}, tr, j.model_name);
        el("td", {}, tr, j.board);
        el("td", { class: "error" }, tr, `${j.error_type}: ${j.error}`);
        el("td", { class: "num" }, tr, String(j.attempts));
      }
    }
    if (DATA.events.length) {
      el("h3", {}, host, "Incidents");
      const t = el("table", { id: "events-table" }, host);
      const t0 = DATA.run.started;
      for (const e of DATA.events) {
        const tr = el("tr", { "data-kind": e.kind }, t);
        el("td", { class: "num" }, tr, `+${(e.time - t0).toFixed(1)} s`);
        el("td", {}, tr, e.board || "");
        el("td", {}, tr, e.kind);
        el("td", {}, tr, e.detail);
      }
    }
  }

  function conditions() {
    const host = document.getElementById("conditions");
    const t = el("table", { id: "conditions-table" }, host);
    const head = el("tr", {}, t);
    for (const h of ["model", "board", "runs", "timed s (sum of runs)", "warm-up", "governor",
                     "temp °C before → after", "pinned", "threads", "init ms", "CPU ms / run",
                     "peak RSS (VmHWM)", "runner", "notes"]) el("th", {}, head, h);
    for (const j of PJOBS.filter((q) => q.status === "ok")) {
      const tr = el("tr", {}, t);
      const s = j.settings;
      el("td", {}, tr, j.model_name + (j.cached ? " (earlier run)" : ""));
      el("td", {}, tr, j.board);
      el("td", { class: "num" }, tr, `${j.latency.runs} (min ${s.runs})`);
      el("td", { class: "num" }, tr, `${j.timed_s.toFixed(2)} (wall ≥ ${s.min_duration_s})`);
      el("td", { class: "num" }, tr, String(s.warmup));
      el("td", {}, tr, j.governor || "unreadable");
      const tb = j.temperature_before_c, ta = j.temperature_after_c;
      el("td", {}, tr, tb === null && ta === null ? "unreadable" :
        `${tb === null ? "?" : tb.toFixed(1)} → ${ta === null ? "?" : ta.toFixed(1)}`);
      el("td", {}, tr, j.cpus || "no");
      el("td", { class: "num" }, tr, j.threads === null ? "default" : String(j.threads));
      el("td", { class: "num" }, tr, fmt(j.init_ms));
      el("td", { class: "num" }, tr, fmt(j.cpu_ms));  // null: the runner does not measure it
      el("td", { class: "num" }, tr, j.peak_memory_bytes ?
        (j.peak_memory_bytes / 1048576).toFixed(1) + " MiB" : "-");
      el("td", {}, tr, `${j.runner}: ${j.runtime}; ${j.kernels}`);
      el("td", {}, tr, [j.emulated && !j.notes.length ? "emulated: " + j.emulated : "",
                        ...j.notes]
        .filter((x) => x).join("; "));
    }
  }

  // ------------------------------------------------------------------ wiring
  function init() {
    summary();
    boards();
    // a run profiles or validates: show the sections of what it did
    if (VJOBS.length) {
      validation();
    } else {
      document.getElementById("validation-section").style.display = "none";
    }
    if (!PJOBS.length) {
      for (const s of document.querySelectorAll("section.profile-only")) {
        s.style.display = "none";
      }
      failures();
      document.body.setAttribute("data-rendered", "true");
      return;
    }
    const models = DATA.models.map((m) => [m.sha256, `${m.name} (${m.precision})`]);
    const latencySelect = document.getElementById("latency-model");
    fill(latencySelect, models, models.length ? models[0][0] : "");
    latencySelect.onchange = () => latency(latencySelect.value);
    latency(latencySelect.value);

    results();
    precisionTable();

    const tradeoffSelect = document.getElementById("tradeoff-board");
    fill(tradeoffSelect, [["*", "median of boards"],
                          ...DATA.boards.map((b) => [b.name, b.name])], "*");
    tradeoffSelect.onchange = () => tradeoff(tradeoffSelect.value);
    tradeoff("*");

    const withLayers = DATA.boards.map((b) => b.name)
      .filter((name) => PJOBS.some((j) => j.board === name && j.layers && j.layers.length));
    const layerBoard = document.getElementById("layers-board");
    const layerModel = document.getElementById("layers-model");
    fill(layerBoard, withLayers.map((n) => [n, n]), DATA.layer_board || withLayers[0]);
    const modelsFor = (board) => DATA.models.filter((m) => PJOBS.some(
      (j) => j.board === board && j.model === m.sha256 && j.layers && j.layers.length))
      .map((m) => [m.sha256, `${m.name} (${m.precision})`]);
    const refreshModels = () => {
      const options = modelsFor(layerBoard.value);
      fill(layerModel, options, options.length ? options[0][0] : "");
      layers(layerBoard.value, layerModel.value);
    };
    layerBoard.onchange = refreshModels;
    layerModel.onchange = () => layers(layerBoard.value, layerModel.value);
    refreshModels();

    failures();
    conditions();
    document.body.setAttribute("data-rendered", "true");
  }

  try {
    init();
  } catch (err) {
    document.body.setAttribute("data-render-error", String(err));
    el("pre", { class: "error" }, document.querySelector("main"), "report error: " + err);
  }
})();
