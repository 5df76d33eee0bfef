"""Per layer, ours against XNNPACK: one model of edge_models.py, one weight format; JSON out.

    nice .venv/bin/python benchmarks/layer_ratios.py --model mobilenet-like --format int4 \\
        --litert-isa avx2 --threads 1 [--output layers.json]

Ours: the `.edge` file edge_models.py writes for the model and format (`requantize_weights`),
run by `edge-run --profile-layers --json`; each layer's time is the profile's `min_ms` (its
fastest run) and its kernel the profile's `kernel` (docs/kernels.md's names).
Theirs: LiteRT's Python interpreter has no per-op profiler, so every distinct layer shape of the
.edge file (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED) runs as a single-layer int8 .tflite in
XNNPACK, built by benchmarks/kernels.py's `build()` (random weights, its quantisation
parameters, SAME padding, no fused activation); its time is the fastest of `--rounds` batches of
~`--batch-ms` of invoke() (~0.5 us of Python per call), the rounds going over every shape in
turn. Shapes come from the .edge file itself
(read_edge), matched to the profile by operator index and op type; a layer whose padding is not
TFLite's SAME for its shape, or that kernels.py cannot build (ADD, MEAN, pooling...), gets no
XNNPACK time and says why. `xnnpack_io` / `edge_io` give both sides' input and output shapes.

The two totals (sum of our layer minimums, sum of XNNPACK's single layers over the matched
layers) stand beside the whole-model times of the same run: edge-run's (profiled run and a plain
run) and LiteRT INT8's (`edge_models.time_litert`), so the harness difference is visible. Ratios
are XNNPACK time / ours (above 1: ours is faster). Two harnesses: say so when quoting a ratio.

`by_cost` lists the layers by what each costs us against XNNPACK (`cost_ms` = ours - XNNPACK's,
largest first; layers with no twin after, by our time): the order to work through. The same
table goes to stderr as markdown.

`--litert-isa LEVEL` restricts XNNPACK to that x86 level and our kernels to the same
(litert_isa.py); `--isa` overrides ours alone (edge-run --isa).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import edge_models
import kernels as kernel_bench
import litert_isa
import numpy as np

from sdk import layer_models
from sdk.base import native
from sdk.converters.edge import read_edge, write_edge
from sdk.converters.edge.reader import EdgeFile, EdgeOperator
from sdk.converters.tflite import read_tflite

MODELS = {"mobilenet-like": edge_models.mobilenet_like, "resnet-like": edge_models.resnet_like}
#: .edge op -> kernels.py layer kind
KINDS = {"CONV_2D": "conv", "DEPTHWISE_CONV_2D": "dwconv", "FULLY_CONNECTED": "fc"}


@dataclass
class LayerShape:
    """One .edge operator as kernels.py describes a layer, or why it has no XNNPACK twin."""

    layer: kernel_bench.Layer | None
    edge_io: dict[str, list[int]]
    why_not: str | None = None


@dataclass
class LayerRow:
    index: int
    op: str
    kernel: str
    shape: str | None
    ours_ms: float
    share_of_ours: float
    xnnpack_ms: float | None
    xnnpack_over_ours: float | None
    edge_io: dict[str, list[int]]
    xnnpack_io: dict[str, list[int]] | None = None
    why_no_xnnpack: str | None = None
    #: ours - XNNPACK's, ms: what this layer costs us against XNNPACK (negative: a gain)
    cost_ms: float | None = None


@dataclass
class Totals:
    ours_layers_ms: float
    ours_matched_layers_ms: float
    xnnpack_matched_layers_ms: float
    xnnpack_over_ours_matched: float | None
    edge_run_profiled: dict[str, float]
    edge_run: dict[str, float]
    litert_int8: dict[str, float]
    litert_int8_over_edge_run: dict[str, float]


@dataclass
class LayerReport:
    model: str
    format: str
    size: int
    threads: int
    isa: str
    litert_isa: str
    host: dict[str, Any]
    layers: list[LayerRow] = field(default_factory=list)
    totals: Totals | None = None
    xnnpack_kernels: dict[str, list[str]] = field(default_factory=dict)
    #: layer indices, largest cost_ms first, then the layers with no twin by our time
    by_cost: list[int] = field(default_factory=list)


# ---------------------------------------------------------------------------- shapes
def _same_padding(size: int, k: int, stride: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + k - size)
    return total // 2, total - total // 2


def layer_shape(edge: EdgeFile, op: EdgeOperator) -> LayerShape:
    """`op`'s shape as a kernels.py Layer, when kernels.py's builders make the same layer."""
    shape_of = [tuple(edge.tensors[i].shape) if i >= 0 else None for i in op.inputs]
    io = {"input": list(shape_of[0] or ()), "output": list(edge.tensors[op.outputs[0]].shape)}
    kind = KINDS.get(op.op)
    if kind is None:
        return LayerShape(None, io, f"kernels.py has no single-layer {op.op}")
    x, w = shape_of[0], shape_of[1]
    if x is None or w is None:
        return LayerShape(None, io, "no input or weight shape")
    name = f"{op.op.lower()}_{'x'.join(map(str, x))}_w{'x'.join(map(str, w))}"
    if kind == "fc":
        k, n = w[1], w[0]
        m = int(np.prod(x)) // k
        return LayerShape(kernel_bench.Layer(name, "fc", {"m": m, "k": k, "n": n}, m * k * n), io)
    o = op.options
    kh, kw = w[1], w[2]
    sh, sw = o.get("stride_h", 1), o.get("stride_w", 1)
    if kh != kw or sh != sw or o.get("dilation_h", 1) != 1 or o.get("dilation_w", 1) != 1:
        return LayerShape(None, io, "kernels.py builds square kernels, equal strides, no dilation")
    if kind == "dwconv" and o.get("depth_multiplier", 1) != 1:
        return LayerShape(None, io, "kernels.py builds depth multiplier 1")
    _, h, wd, c = x
    pad = o.get("padding", {})
    if ((pad.get("top", 0), pad.get("bottom", 0)) != _same_padding(h, kh, sh)
            or (pad.get("left", 0), pad.get("right", 0)) != _same_padding(wd, kw, sw)):
        return LayerShape(None, io, f"padding {pad} is not SAME for this shape")
    oh, ow = -(-h // sh), -(-wd // sw)
    if kind == "conv":
        return LayerShape(kernel_bench.Layer(name, "conv", {"h": h, "w": wd, "cin": c,
                                                            "cout": w[0], "k": kh, "stride": sh},
                                             oh * ow * w[0] * kh * kw * c), io)
    return LayerShape(kernel_bench.Layer(name, "dwconv", {"h": h, "w": wd, "c": w[3], "k": kh,
                                                          "stride": sh}, oh * ow * c * kh * kw), io)


def match_layers(edge: EdgeFile, profile: list[dict[str, Any]]) -> list[tuple[dict[str, Any],
                                                                              LayerShape]]:
    """Pairs each profiled layer with its .edge operator: same count, index and op type, or
    ValueError (a profile of another model, or a runtime that fused or reordered operators)."""
    if len(profile) != len(edge.operators):
        raise ValueError(f"profile has {len(profile)} layers, the .edge file "
                         f"{len(edge.operators)} operators")
    pairs = []
    for prof, op in zip(profile, edge.operators, strict=True):
        if prof["index"] != op.index or prof["op"] != op.op:
            raise ValueError(f"profile layer {prof['index']} ({prof['op']}) is not .edge "
                             f"operator {op.index} ({op.op})")
        pairs.append((prof, layer_shape(edge, op)))
    return pairs


# ---------------------------------------------------------------------------- timing
def time_xnnpack(layers: dict[str, kernel_bench.Layer], threads: int, rounds: int,
                 batch_s: float) -> dict[str, tuple[float, dict[str, list[int]]]]:
    """XNNPACK's int8 single layer of each shape: (the fastest of `rounds` batches of ~`batch_s`,
    ms per call; its input / output shapes). Rounds go over every shape in turn, so a busy
    minute on a shared host hits all shapes alike rather than a few of them wholly."""
    runners = {}
    io = {}
    sizes = {}
    for key, layer in layers.items():
        _, theirs = kernel_bench.build(layer, np.random.default_rng(0))
        model, x, _ = theirs["int8"]
        run = kernel_bench._litert_runner(model, x, threads)
        it = layer_models.interpreter(model, kernels="xnnpack", num_threads=threads)
        io[key] = {"input": [int(d) for d in it.get_input_details()[0]["shape"]],
                   "output": [int(d) for d in it.get_output_details()[0]["shape"]]}
        run(3)
        sizes[key] = max(1, int(batch_s / max(run(5) / 5, 1e-7)))
        runners[key] = run
    best = dict.fromkeys(layers, float("inf"))
    for _ in range(rounds):
        for key, run in runners.items():
            best[key] = min(best[key], run(sizes[key]) / sizes[key])
    return {key: (best[key] * 1e3, io[key]) for key in layers}


def profile_edge(path: Path, threads: int, runs: int, isa: str | None) -> dict[str, Any]:
    exe = native.edge_run_path("x86_64" if platform.machine() == "x86_64" else "arm64-v8a")
    cmd = [str(exe), str(path), "--runs", str(runs), "--warmup", "10", "--threads",
           str(threads), "--profile-layers", "--json"]
    if isa:
        cmd += ["--isa", isa]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def _lat(d: dict[str, Any]) -> dict[str, float]:
    return {"p50_ms": round(float(d["p50_ms"]), 6), "min_ms": round(float(d["min_ms"]), 6)}


def layer_table(edge_path: Path, int8_tflite: bytes, threads: int, isa: str | None, runs: int,
                rounds: int, batch_s: float) -> tuple[list[LayerRow], Totals]:
    edge = read_edge(edge_path)
    prof = profile_edge(edge_path, threads, runs, isa)
    pairs = match_layers(edge, prof["layers"])
    ours_total = sum(p["min_ms"] for p, _ in pairs)
    def key(layer: kernel_bench.Layer) -> str:
        return json.dumps([layer.kind, layer.shape], sort_keys=True)

    shapes = {key(s.layer): s.layer for _, s in pairs if s.layer is not None}
    timed = time_xnnpack(shapes, threads, rounds, batch_s)
    rows = []
    for p, shape in pairs:
        row = LayerRow(p["index"], p["op"], p["kernel"], None, round(p["min_ms"], 6),
                       round(p["min_ms"] / ours_total, 4), None, None, shape.edge_io,
                       why_no_xnnpack=shape.why_not)
        if shape.layer is not None:
            t, row.xnnpack_io = timed[key(shape.layer)]
            row.shape = f"{shape.layer.kind} {shape.layer.shape}"
            row.xnnpack_ms = round(t, 6)
            row.xnnpack_over_ours = round(t / p["min_ms"], 3)
            row.cost_ms = round(p["min_ms"] - t, 6)
        rows.append(row)
    matched = [r for r in rows if r.xnnpack_ms is not None]
    ours_m = sum(r.ours_ms for r in matched)
    xnn_m = sum(r.xnnpack_ms or 0.0 for r in matched)
    plain = edge_models.time_edge(edge_path, threads, runs, 10)
    lite = edge_models.time_litert(int8_tflite, threads, runs, 10)
    lat = prof["latency_ms"]
    totals = Totals(round(ours_total, 6), round(ours_m, 6), round(xnn_m, 6),
                    round(xnn_m / ours_m, 3) if ours_m else None,
                    _lat({"p50_ms": lat["p50"], "min_ms": lat["min"]}), _lat(plain), _lat(lite),
                    {k: round(lite[k] / plain[k], 3) for k in ("p50_ms", "min_ms")})
    return rows, totals


def by_cost(rows: list[LayerRow]) -> list[int]:
    """Layer indices by what each costs us against XNNPACK, largest first; the layers with no
    XNNPACK twin after them, by our time."""
    twin = sorted((r for r in rows if r.cost_ms is not None), key=lambda r: -(r.cost_ms or 0.0))
    other = sorted((r for r in rows if r.cost_ms is None), key=lambda r: -r.ours_ms)
    return [r.index for r in twin + other]


def cost_table(report: LayerReport) -> str:
    """`by_cost` as a markdown table (ms)."""
    rows = {r.index: r for r in report.layers}
    lines = ["| # | op | kernel | shape | ours | XNNPACK | cost | XNNPACK / ours | share |",
             "|---|---|---|---|---|---|---|---|---|"]
    for i in report.by_cost:
        r = rows[i]
        xnn = "-" if r.xnnpack_ms is None else f"{r.xnnpack_ms:.4f}"
        cost = "-" if r.cost_ms is None else f"{r.cost_ms:+.4f}"
        ratio = "-" if r.xnnpack_over_ours is None else f"{r.xnnpack_over_ours:.2f}x"
        lines.append(f"| {i} | {r.op} | {r.kernel} | {r.shape or r.edge_io} | {r.ours_ms:.4f} | "
                     f"{xnn} | {cost} | {ratio} | {100 * r.share_of_ours:.1f} % |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- models
def int8_model(name: str, size: int) -> bytes:
    """edge_models.py's full-integer INT8 .tflite of `name` (its builders and seed)."""
    rng = np.random.default_rng(0)
    keras_model = MODELS[name](size)
    edge_models._randomize_batchnorm(keras_model, rng)
    return edge_models.convert(keras_model, size, True, rng)


def write_format(int8_tflite: bytes, scheme: str, path: Path) -> Path:
    """The .edge file edge_models.py times for `scheme`."""
    ir = read_tflite(int8_tflite)
    if scheme != "int8":
        ir, _ = edge_models.requantize_weights(ir, scheme)
    write_edge(ir, path, recipe=scheme if scheme == "int8" else f"{scheme} (benchmark)")
    return path


def host_info() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"machine": platform.machine(), "cpu": model, "cpus": os.cpu_count(),
            "loadavg": os.getloadavg()[0],
            "cpu_features": sorted(k for k, v in native.cpu_features().items() if v is True)}


def run(int8_tflite: bytes, *, model: str, scheme: str, size: int, threads: int,
        litert_level: str, isa: str | None, runs: int, rounds: int, batch_ms: float,
        workdir: Path) -> LayerReport:
    ours_isa = isa or (None if litert_level == "native" else litert_level)
    report = LayerReport(model, scheme, size, threads, ours_isa or "best", litert_level,
                         host_info())
    path = write_format(int8_tflite, scheme, workdir / f"{model}_{scheme}.edge")
    report.layers, report.totals = layer_table(path, int8_tflite, threads, ours_isa, runs,
                                               rounds, batch_ms / 1e3)
    report.by_cost = by_cost(report.layers)
    report.xnnpack_kernels = litert_isa.kernels_report(litert_level)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mobilenet-like", choices=tuple(MODELS))
    ap.add_argument("--format", default="int4", choices=edge_models.SCHEMES)
    ap.add_argument("--size", type=int, default=160, help="input height and width")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--litert-isa", default="native", choices=("native", *litert_isa.LEVELS),
                    help="run XNNPACK and our kernels at this x86 level (litert_isa.py)")
    ap.add_argument("--isa", help="our kernels' ISA (edge-run --isa); default: the level")
    ap.add_argument("--runs", type=int, default=200, help="edge-run / LiteRT whole-model runs")
    ap.add_argument("--rounds", type=int, default=20,
                    help="XNNPACK rounds over every layer shape (one batch each)")
    ap.add_argument("--batch-ms", type=float, default=2.0, help="time per XNNPACK batch")
    ap.add_argument("--output", help="also write the JSON here")
    args = ap.parse_args(argv)
    litert_isa.select_isa(args.litert_isa)
    print(f"# {args.model} {args.format}: converting ...", file=sys.stderr)
    int8 = int8_model(args.model, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        report = run(int8, model=args.model, scheme=args.format, size=args.size,
                     threads=args.threads, litert_level=args.litert_isa, isa=args.isa,
                     runs=args.runs, rounds=args.rounds, batch_ms=args.batch_ms,
                     workdir=Path(tmp))
    print(cost_table(report), file=sys.stderr)
    return edge_models.emit_report(asdict(report), args.output, indent=1)


if __name__ == "__main__":
    sys.exit(main())
