"""Mixed precision under a budget: ``sdk.export(model, "mixed", budget_bytes=... | budget_ms=...)``.

Every weighted layer (FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, ...) may take INT8 or, where
the sub-byte schemes can give it one (`sdk.converters.quantize.subbyte`: what LiteRT or the
edgesdk custom ops run), INT4, 2-bit or ternary weights; a layer the INT8 rewrite keeps in float
(an STFT front end) may also take INT8 weights with float activations (`HYBRID`). The search,
HAWQ-style:

1. Sensitivity, measured: one export per candidate with every layer that can take it at it
   (all-INT8, all-2-bit, all-ternary, all-INT4), each validated in LiteRT on the held-out
   samples; the "int4" and "ternary" schemes' own plans (first and last layer INT8) are
   measured as points too. The fidelity report's per-layer SQNR gives the error each layer
   adds at each format (`sdk.converters.quantize.fidelity.layer_losses`,
   `LayerLoss.added_noise`).
2. Choice: from all-INT8, greedily take the move (a layer to a smaller format) that adds the
   least estimated error per byte it saves, until the estimated size (the all-INT8 file minus
   the weight bytes saved) is within the budget.
3. Measurement: the chosen plan is exported and validated. If it is over the budget, the
   estimate's target shrinks by the overshoot; otherwise the per-layer losses it measured
   replace the estimates for those layers and formats and the choice is made again, until it
   repeats itself or `steps` exports were made.
4. The budget spent (`spend`): the smallest and the best measured points over the budget that
   beat the best one within it (the int4 plan where the budget is just under it) demote the
   layers of least estimated error per byte saved until they fit, then promote with what is
   left; the best point within the budget promotes the layers of most estimated gain per byte
   while the budget allows; the first / last layers held, then free. Each estimate starts
   from a measured size, and each result is measured. A layer the INT8 rewrite keeps in float
   (a LOG's front end: an STFT) counts 4 bytes a weight in all-INT8, not 1.
5. Measured trades from the best point within the budget: single-layer moves to the nearest
   format of other size (and same-size laterals, and the pinned first / last layers'
   demotions), swaps (the best promotions each with the demotion that pays for it), and the
   moves combined; `trade_rounds` rounds.

A latency budget (`budget_ms`, `mixed_latency`): every point's latency is estimated from
per-layer times of each format (the uniform probes profiled on this host by the face's
profiler, or a device's `LatencyTable`), the greedy saves milliseconds where the error per ms
is least, and the Pareto front is over size / SQNR / latency.

The export is the measured point within the budget with the best worst-output SQNR on the
worse half of the held-out samples (the uniform probes count: all-INT4 is chosen when nothing
mixed beats it), with one rule: a mix replaces the best uniform plan within the budget
(all-INT4, the int4 scheme's, ...) only where it beats it on each half of the held-out samples
too, or, where the halves disagree, on the worse half with no layer narrower than the uniform
plan's (`paired_choice`: the same samples' per-sample errors), not on their mean alone; with
`MixedOptions.check_calibration`, also on the calibration inputs (`calibration_accept`; a
mix refused there passes the choice to the next mix in rank).
`MixedReport` holds every point measured (bytes, worst-output SQNR, Pareto front, the chosen
one) and the bits per layer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from sdk.base.errors import EdgeSDKError, FidelityError
from sdk.base.samples import SampleSet
from sdk.converters.ir import DType, Model, Operator, QuantParams
from sdk.converters.quantize.fidelity import layer_losses
from sdk.converters.quantize.gptq import LayerHessian, collect_hessians, weight_key
from sdk.converters.quantize.lowbit import weight_sqnr_db
from sdk.converters.quantize.mixed_latency import (
    LatencyTable,
    add_probe,
    fill_missing,
    greedy_ms,
)
from sdk.converters.quantize.plan import (
    ACTIVATION_PRECISIONS,
    LayerPrecision,
    PrecisionPlan,
    layer_name,
    plan_for,
    register_scheme,
)
from sdk.converters.quantize.planner import MIN_CONFIDENT_SAMPLES, Attempt
from sdk.converters.quantize.ranges import symmetric_scales
from sdk.converters.quantize.row_split import (
    SPLIT_OPS,
    RowSplit,
    cheapest_rows,
    row_costs,
    rows_for,
)
from sdk.converters.quantize.rules import OP_RULES, hybrid_kernel
from sdk.converters.quantize.subbyte import (
    SUBBYTE_OPS,
    SubByteOptions,
    _legal_format,
    weighted_layers,
)
from sdk.converters.quantize.weights import (
    QuantizedWeights,
    WeightFormat,
    channel_absmax,
    channel_codes,
    register_weight_format,
    weight_format,
)
from sdk.run.fidelity import sqnr_db

#: the uniform probes, in the order they are exported (after all-INT8)
PROBES = ("int2", "ternary", "int4")
#: the sub-byte schemes whose plans (first / last layer INT8, weight SQNR floor) are measured too
SCHEME_PROBES = ("int4", "ternary")
DEFAULT_STEPS = 4
DEFAULT_TRADES = 6
_BITS = {DType.INT8: 8, DType.INT4: 4, DType.INT2: 2}


class BudgetError(FidelityError):
    """The byte budget is under the smallest model mixed precision can make (a bar that cannot
    be met, as an unreachable target_sqnr: the CLI's exit status 1)."""


@dataclass(frozen=True)
class MixedOptions:
    activations: str = "int8"
    custom_ops: bool = True
    steps: int = DEFAULT_STEPS
    #: the first / last weighted layer starts at INT8, as in the sub-byte schemes (they see the
    #: raw input and write the outputs; on the corpus both cost more than their own error
    #: says): the estimate-driven greedy never moves them, only a measured trade does (a large
    #: last layer at INT4 can pay for several inner layers at INT8). False: the greedy may too
    keep_first: bool = True
    keep_last: bool = True
    #: measured trades: this many of the largest layers are each exported once a format up and
    #: once a format down from the best point within the budget (0: none)
    trades: int = DEFAULT_TRADES
    #: rounds of trades, each from the best point so far (stops when a round gains nothing)
    trade_rounds: int = 2
    #: this many of the measured points over the byte budget that beat the best one within it
    #: are brought under it by splitting a layer's output channels (`row_split`: the least
    #: sensitive rows of the largest layer one format down) and measured (0: none)
    row_splits: int = 2
    #: this many of the measured points over the byte budget that beat the best one within it
    #: (the smallest, then the best: the int4 plan where the budget is just under it) are
    #: brought under it by `spend` (demote where the estimated error per byte saved is least,
    #: then promote with what is left) and measured, and the best point within the budget
    #: spends what it leaves (promote where the estimated gain per byte is most): a budget is
    #: spent, not left between the probes (0: neither)
    descents: int = 2
    #: a cap on the search for a slow host or a large model (None: none): at most this many
    #: exports after the uniform probes and the schemes' plans (the greedy steps, the budget
    #: spent, the trades, the row splits, in that order), and no such export started after
    #: `max_seconds` of the search. The probes are always made: they are the uniform plans
    #: the choice keeps unless a mix beats them, so a capped search can at worst tie the best
    #: of them. ddddocr_rec's (11 MB, 86 layers) exports take 1-10 minutes each on a loaded
    #: 2-core host, 30-60 of them uncapped
    max_exports: int | None = None
    max_seconds: float | None = None
    #: every INT4 layer may also take INT4 with its channels' absolute maximum as the scale
    #: (`ABSMAX_TWINS`: the same bytes, another rounding), chosen per layer by its output error
    #: on the calibration inputs (`hessian_losses`), not by the weights' squared error that
    #: INT4's MSE-searched scales minimise: the int4 plan with each layer at the scale of
    #: least estimated output error is measured first (see `scale_choice`), and the greedy,
    #: the budget spent and the trades' lateral moves may take it too
    absmax_int4: bool = True
    #: with `absmax_int4`: each uniform plan within the budget and the greedy's point are also
    #: measured with *every* INT4 layer at absmax ("..., absmax scales"), whatever the
    #: estimates say. Off by default: on 32 / 32 inputs (a89a0a7) the choice took such a point
    #: on oww_hey_mycroft (25.34 vs 15.93 dB on the selection inputs, both halves) and it held
    #: on the scored ones (18.68 vs 15.31), and took one on ppocr_mobile_v2_cls (33.24 vs 24.65
    #: on the selection inputs, both halves) that scored 12.30 against the int4 plan's 28.32:
    #: nothing the search measures tells the two apart, and the never-worse rule is the bar's
    absmax_plans: bool = False
    #: a layer the INT8 rewrite keeps in float (an STFT front end: 4 bytes a weight) may take
    #: INT8 weights with float activations (`HYBRID`, LiteRT's dynamic-range kernels, 1 byte
    #: a weight); int8 activations only (with float activations every layer is hybrid already)
    hybrid_float: bool = True
    #: a mix that replaces the best uniform plan (`paired_choice`) must also beat it on the
    #: worst output over the calibration inputs (`calibration_accept`), a second set the
    #: held-out one cannot outvote: on three corpus models the 32 selection inputs and the 32
    #: scored ones disagree on the int4 plan at absmax scales by 4-20 dB, and on two fresh
    #: sets of 32 and the calibration set the selection set was the odd one out on
    #: ppocr_mobile_v2_cls (absmax +8.3 dB there, -3.6 to -17.1 on the four others), while
    #: oww_hey_mycroft's absmax plan led on all five (stop 29). Needs the export's per-sample
    #: errors on the calibration inputs (`search(..., on_calibration=)`). A mix refused
    #: there passes the choice to the next mix in rank (stop 30: stop 29's check fell back
    #: to the uniform plan at the first refusal); off by default
    check_calibration: bool = False

    def check(self) -> None:
        if self.activations not in ACTIVATION_PRECISIONS or self.activations == "int16":
            raise ValueError(f"mixed: activations must be 'int8' or 'float32', not "
                             f"{self.activations!r}")
        if self.steps < 1:
            raise ValueError(f"mixed: steps must be at least 1, not {self.steps}")
        if self.max_exports is not None and self.max_exports < 0:
            raise ValueError(f"mixed: max_exports must be 0 or more, not {self.max_exports}")
        if self.max_seconds is not None and not self.max_seconds >= 0:
            raise ValueError(f"mixed: max_seconds must be 0 or more, not {self.max_seconds}")


def mixed_options(options: Mapping[str, object]) -> MixedOptions:
    known = set(MixedOptions.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"scheme 'mixed': unknown option(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(known))}")
    opts = MixedOptions(**options)  # type: ignore[arg-type]
    opts.check()
    return opts


def _int4_absmax(qmin: int) -> Callable[[np.ndarray, int, str], QuantizedWeights]:
    def quantize(w: np.ndarray, axis: int, method: str) -> QuantizedWeights:
        scales = symmetric_scales(channel_absmax(w, axis), 7)
        # the solver methods (gptq / adaround) choose codes for these scales; the others round
        scales, q = channel_codes(np.asarray(w, np.float32), axis, scales, qmin, 7, method)
        return QuantizedWeights(np.asarray(q).astype(np.int8),
                                QuantParams.per_channel(np.asarray(scales, np.float32), axis),
                                DType.INT4)
    return quantize


#: INT4 formats and their twin with absolute-maximum scales (ai-edge-quantizer's INT4 rule):
#: the same storage, one scale per channel = its absolute maximum / 7, whatever method the
#: export names for the rest (rtn / mse: rounded to nearest; gptq / adaround: codes chosen
#: for those scales). MSE-searched scales clip each channel's largest weights to lower its
#: squared error; where those weights carry the output (magika_v3_3: every layer INT4 with
#: float activations 37.56 dB absmax vs 35.56 MSE on 32 scored inputs, 32.52 vs 21.42 on 32
#: others) the clipping costs more than the finer step gains. Which one a layer takes is the
#: mixed search's per-layer choice (`MixedOptions.absmax_int4`)
ABSMAX_TWINS = {"int4": "int4-absmax", "int4-narrow": "int4-narrow-absmax"}
for _base, _twin in ABSMAX_TWINS.items():
    _fmt = weight_format(_base)
    register_weight_format(WeightFormat(
        _twin, DType.INT4, _fmt.qmin, _fmt.qmax, _int4_absmax(_fmt.qmin),
        f"symmetric per-channel INT4 in [{_fmt.qmin}, 7], scale = the channel's absolute "
        f"maximum / 7 (the mixed search's per-layer alternative to {_base}'s MSE clipping)",
        default_method="minmax"))


def _mixed_plan(model: Model, **options: object) -> PrecisionPlan:
    """The starting plan (all INT8); `search` chooses the rest once it can measure."""
    opts = mixed_options(options)
    return PrecisionPlan(scheme="mixed", default=LayerPrecision("int8", opts.activations))


register_scheme("mixed", _mixed_plan)


# ---------------------------------------------------------------------------- candidates
@dataclass
class LayerChoice:
    """One weighted layer: its formats (largest first) and their weight bytes."""

    name: str
    op_type: str
    elements: int
    formats: list[str]
    nbytes: list[float]
    #: a first / last layer under keep_first / keep_last: INT8 unless a measured trade moves it
    pinned: bool = False


def layer_groups(model: Model) -> dict[str, list[Operator]]:
    """The weighted ops by plan name, in execution order: the plan gives a name one precision,
    and several ops can share one (an ONNX LSTM lowered to one FULLY_CONNECTED per gate
    matrix): they move together."""
    groups: dict[str, list[Operator]] = {}
    for op in weighted_layers(model):
        groups.setdefault(layer_name(op), []).append(op)
    return groups


def layer_choices(model: Model, opts: MixedOptions) -> list[LayerChoice]:
    """One choice per plan name (its ops' weights together: a move of the name moves them
    all), with the formats every one of its ops can take."""
    sub = SubByteOptions(activations=opts.activations, custom_ops=opts.custom_ops)
    out = []
    layers = weighted_layers(model)
    first, last = (layer_name(layers[0]), layer_name(layers[-1])) if layers else ("", "")
    for name, group in layer_groups(model).items():
        n = 0
        formats = ["int8"]
        for k, op in enumerate(group):
            w = op.inputs[OP_RULES[op.type].weight]  # type: ignore[index]
            assert w is not None
            n += int(np.prod(w.shape)) if w.shape else 1
            legal = ["int8"]
            if op.type in SUBBYTE_OPS:
                for scheme in PROBES:
                    fmt, _ = _legal_format(op, scheme, sub)
                    if fmt is not None and fmt not in legal:
                        legal.append(fmt)
            formats = legal if k == 0 else [f for f in formats if f in legal]
        kept = (opts.keep_first and name == first) or (opts.keep_last and name == last)
        formats.sort(key=lambda f: -_bits(f))
        if opts.absmax_int4:  # each INT4 format's twin right after it (probes take the first)
            formats = [g for f in formats for g in (f, ABSMAX_TWINS.get(f)) if g is not None]
        out.append(LayerChoice(name, group[0].type, n, formats,
                               [n * _bits(f) / 8.0 for f in formats], pinned=kept))
    return out


#: INT8 weights with float activations (LiteRT's dynamic-range "hybrid" kernels), a format of
#: the layers the INT8 rewrite keeps in float (an STFT front end feeding a LOG: 4 bytes a
#: weight in every int8-activation plan). oww_melspectrogram's STFT (Conv_2) is 459 of its int4
#: plan's 634 kB: with this format the int4 plan is 240,800 B and scores 22.88 dB against its
#: 22.75 on 32 scored inputs, where without it nothing lay between 175 kB (the STFT at INT4)
#: and 601 kB, and the search chose both STFT convolutions hybrid (306,320 B, 32.63 dB at
#: all-INT4's size and at half of it; stop 29). Offered where all-INT8 has the layer float and
#: the op has per-channel hybrid kernels (`hybrid_layers`); the search estimates its weights'
#: error as INT8's (the same codes), and measures the rest.
HYBRID = "int8/float32"


def _storage(fmt: str) -> str:
    """The weight format a mixed format stores: INT8 for `HYBRID`, else itself."""
    return "int8" if fmt == HYBRID else fmt


def hybrid_layers(choices: list[LayerChoice], groups: Mapping[str, Sequence[Operator]],
                  first: Attempt, opts: MixedOptions) -> list[LayerChoice]:
    """The layers that may take `HYBRID`: with int8 activations, those all-INT8 (`first`)
    keeps in float whose every op has LiteRT's per-channel hybrid kernel (a weight input
    quantised per channel: `rules.hybrid_kernel`, the INT8 rewrite's and the int4 scheme's
    test)."""
    if not opts.hybrid_float or opts.activations != "int8":
        return []
    return [c for c in choices if first.precisions.get(c.name) == "float32"
            and HYBRID not in c.formats and all(hybrid_kernel(op) for op in groups[c.name])]


def _bits(fmt: str) -> int:
    fmt = _storage(fmt)
    return 8 if fmt == "int8" else _BITS[weight_format(fmt).dtype]


def _probe_format(choice: LayerChoice, probe: str, pinned_too: bool = False) -> str:
    """The format a uniform `probe` export gives this layer (int8 where it has none or it is
    pinned, unless `pinned_too`)."""
    if choice.pinned and not pinned_too:
        return "int8"
    family = {"int4": ("int4", "int4-narrow"), "int2": ("int2",),
              "ternary": ("ternary", "ternary-median", "ternary-bitnet")}[probe]
    for f in choice.formats:
        if f in family:
            return f
    if probe == "int2":  # int2 where LiteRT has none: the subbyte scheme falls back to int4
        for f in choice.formats:
            if f.startswith("int4"):
                return f
    return "int8"


def plan_of(bits: Mapping[str, str], base: PrecisionPlan,
            splits: Mapping[str, RowSplit] | None = None) -> PrecisionPlan:
    """`base` (its default, overrides and notes win) with the layers in `bits` not INT8 (and
    `splits`: layers with some output channels in a smaller format)."""
    acts = base.default.activations
    layers = {name: LayerPrecision("int8", "float32") if fmt == HYBRID
              else LayerPrecision(fmt, acts) for name, fmt in bits.items() if fmt != "int8"}
    layers.update(base.layers)
    notes = dict(base.notes)
    notes.update({name: f"{fmt}: chosen under the byte budget" for name, fmt in bits.items()
                  if name not in base.layers})
    for name, split in (splits or {}).items():
        notes[name] = (f"{bits.get(name, 'int8')} with {split.describe()} (the least sensitive"
                       f" output channels): chosen under the byte budget")
    return replace(base, scheme="mixed", layers=layers, notes=notes,
                   row_splits={**base.row_splits, **(splits or {})})


# ---------------------------------------------------------------------------- the choice
def halves_db(a: Attempt) -> list[float]:
    """The attempt's worst-output SQNR on each half of its held-out samples, the even-numbered
    ones and the odd-numbered ones, from its per-sample energies (`Attempt.sample_energies`);
    [] where they are not known for every output or there are fewer than 4 samples.
    Interleaved, not the first and the second half: a set put together class by class (a
    wake-word head's quiet clips, then its phrase spoken) would split by class, and a half of
    quiet outputs scores every point 0 dB (its signal is the rounding of a near-zero output):
    no mix could beat a uniform plan on it (oww_alexa 32 / 32, stop 27)."""
    names = [o.name for o in a.fidelity.outputs]
    if not names or any(n not in a.sample_energies for n in names):
        return []
    count = len(a.sample_energies[names[0]][0])
    if count < 4 or any(len(a.sample_energies[n][0]) != count for n in names):
        return []
    out = []
    for part in (slice(0, None, 2), slice(1, None, 2)):
        out.append(min(sqnr_db(float(np.sum(a.sample_energies[n][0][part])),
                               float(np.sum(a.sample_energies[n][1][part]))) for n in names))
    return out


def worse_half_db(p: MixedPoint) -> float:
    """The point's worst-output SQNR on the worse half of the held-out samples (`halves_db`):
    what the choice ranks by. The figure the bar scores on other samples is a worst output,
    and a mix's gain on the better half is the part least likely to hold there. Without
    per-sample errors, its figure on all the samples."""
    return min(p.halves_db) if p.halves_db else p.worst_sqnr_db


def never_worse(p: MixedPoint, ref: MixedPoint) -> bool:
    """Whether every layer of `p` has `ref`'s format or more bits (a layer with some output
    channels one format down, `splits`, only where its format has more bits than `ref`'s):
    then every per-layer error estimate says `p` is no worse than `ref`, whatever the
    held-out samples say. A layer all-INT8 keeps float is wider at "int8" than at `HYBRID`."""
    def wider(mine: str, fmt: str) -> bool:
        return _bits(mine) > _bits(fmt) or (mine == "int8" and fmt == HYBRID)

    for name, fmt in ref.bits.items():
        mine = p.bits.get(name, "int8")
        if name in p.splits:
            if not wider(mine, fmt):
                return False
        elif mine != fmt and not wider(mine, fmt):
            return False
    return True


#: a further test of a mix that the held-out samples let replace the uniform plan: (the mix's
#: index, the uniform plan's) -> (taken, a note saying why)
Accept = Callable[[int, int], tuple[bool, str]]


def paired_choice(points: Sequence[MixedPoint], inside: Sequence[int],
                  accept: Accept | None = None) -> tuple[int, str | None]:
    """The point chosen among `inside` (indices into `points`) and a note. Points rank by their
    worse half (`worse_half_db`). The best uniform plan within the budget (a probe or a
    scheme's plan: all-INT4, the int4 scheme's) is kept unless a mix beats it on evidence:
    a higher worst-output SQNR on all the held-out samples and on each half of them (the same
    samples' per-sample errors); or, where the halves disagree (the mix better on the worse
    half, worse on the other: magika_v3_3's 32 selection inputs put a mix at 36.64 / 26.66 dB
    against all-2-bit's 40.44 / 16.06), a higher worse half and every layer at the uniform
    plan's format or wider (`never_worse`: no per-layer estimate says it loses). A mix with no
    layer wider than the uniform plan's (the plan `never_worse` than it: a layer or its rows
    narrower, the rest the same) never replaces it, whatever the samples say: no per-layer
    estimate says it gains (oww_hey_mycroft's int4 plan with its last layer INT4 too led on
    both halves of 32 selection inputs, 22.71 / 21.83 vs 22.19 / 19.13 dB, and scored 0.02 dB
    under it on 32 others). The best of 10-40 points on a few samples is often the one that
    fits them; a gain on the worse half that holds on both halves, or that no layer's
    estimate contradicts, is less often luck.
    The uniform plan is always a candidate, so at its own size the choice can at worst tie
    it. Without per-sample errors, or without a uniform plan within the budget, the best
    worst-output SQNR on all the samples.
    `accept` (`calibration_accept`): a mix that passes the above must pass it too, or the next
    mix in rank is tried (not the uniform plan at once: the best-ranked mix is the one most
    likely to have fitted the held-out samples, and a set that refuses it may take the next)."""
    def mean_key(i: int) -> tuple[float, int]:
        return points[i].worst_sqnr_db, -points[i].size_bytes

    def key(i: int) -> tuple[float, float, int]:
        return worse_half_db(points[i]), points[i].worst_sqnr_db, -points[i].size_bytes

    def halves(i: int) -> str:
        return ", ".join(f"{h:.2f}" for h in points[i].halves_db)

    uniform = [i for i in inside if points[i].estimated_bytes is None]
    if not uniform:
        return max(inside, key=mean_key), None
    ref = max(uniform, key=key)
    r = points[ref]
    if not r.halves_db:
        best = max(inside, key=mean_key)
        return best, (None if best in uniform else
                      "chosen on the mean of the held-out samples: their per-sample errors "
                      "were not given, so no paired check against the uniform plans")
    refused: list[str] = []  # mixes the held-out samples took and `accept` did not
    for i in sorted((i for i in inside if i not in uniform), key=key, reverse=True):
        p = points[i]
        if not key(i) > key(ref):
            break
        if len(p.halves_db) != len(r.halves_db) or not p.worst_sqnr_db > r.worst_sqnr_db:
            continue
        if never_worse(r, p):  # no layer wider than the uniform plan's: no estimate says it
            continue  # gains, so its lead is the samples' (oww_hey_mycroft 32 / 32: -0.02 dB)
        if all(h > g for h, g in zip(p.halves_db, r.halves_db, strict=True)):
            why = (f"{p.label} beats {r.label} on all the held-out samples and on each "
                   f"half ({halves(i)} vs {halves(ref)} dB)")
        elif worse_half_db(p) > worse_half_db(r) and never_worse(p, r):
            why = (f"{p.label} beats {r.label} on all the held-out samples and on the "
                   f"worse half ({halves(i)} vs {halves(ref)} dB: the halves disagree), "
                   f"and every layer is at {r.label}'s format or wider")
        else:
            continue
        if accept is not None:
            taken, also = accept(i, ref)
            if not taken:
                refused.append(also)
                continue
            why += f"; {also}"
        return i, "; ".join([*_first(refused), why])
    if refused:
        return ref, "; ".join([*_first(refused), f"kept {r.label}"])
    top = max((i for i in inside if i not in uniform), key=key, default=ref)
    if top == ref or not key(top) > key(ref):
        return ref, None
    return ref, (f"kept {r.label} ({r.worst_sqnr_db:.2f} dB; halves {halves(ref)}): no mix "
                 f"beats it on each half of the held-out samples, or on the worse half with "
                 f"no layer narrower, with a layer wider (the best on the worse half, "
                 f"{points[top].label} at {points[top].worst_sqnr_db:.2f} dB, has "
                 f"{halves(top)} dB on the halves)")


def _first(notes: list[str], count: int = 3) -> list[str]:
    """The first `count` of `notes` and how many more (ppocr_mobile_v2_cls: 28 mixes refused)."""
    more = len(notes) - count
    return notes[:count] + ([f"{more} more mixes refused the same way"] if more > 0 else [])


#: points within this many dB of all-INT8 on the held-out samples are at its ceiling
CEILING_TIE_DB = 0.1


def ceiling_choice(points: Sequence[MixedPoint], inside: Sequence[int], best: int
                   ) -> tuple[int, str | None]:
    """Where the chosen point is at or above all-INT8's worst-output SQNR (within
    `CEILING_TIE_DB` of it, or over it), the held-out samples cannot rank the points: e.g.
    magika_v3_3's 8 selection inputs score 42.16-42.33 dB for every point from all-2-bit to
    all-INT8, while other inputs score all-2-bit 16 dB under all-INT4; and a sub-byte point
    over all-INT8 (the finest format of the search) is over it by the samples' luck, not by
    its bits: oww_hey_mycroft's 8 selection inputs score all-INT8 17.23 dB, the int4 plan
    20.88 and a mix with its dense layer 2-bit 22.90, which scores 1.15 dB under the int4 plan
    on 8 other inputs. Then the point at or above that ceiling with the most bytes within the
    budget: more bits where the samples cannot tell, not the fewest. Otherwise `best`,
    unchanged."""
    ceiling = next((p.worst_sqnr_db for p in points if p.label == "all-int8"), math.nan)
    if not math.isfinite(ceiling) or not points[best].worst_sqnr_db >= ceiling - CEILING_TIE_DB:
        return best, None
    tied = [i for i in inside if points[i].worst_sqnr_db >= ceiling - CEILING_TIE_DB]
    big = max(tied, key=lambda i: (points[i].size_bytes, points[i].worst_sqnr_db))
    if points[big].size_bytes <= points[best].size_bytes:
        return best, None
    return big, (f"{points[best].label} ({points[best].worst_sqnr_db:.2f} dB) and "
                 f"{points[big].label} ({points[big].worst_sqnr_db:.2f} dB) are at or above "
                 f"all-INT8's {ceiling:.2f} dB (within {CEILING_TIE_DB} dB, or over it): the "
                 f"held-out samples cannot rank them, so the one with the most bytes within "
                 f"the budget")


def worst_db(energies: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> float:
    """Worst-output SQNR from per-sample (signal, error) energies, as `halves_db` sums them."""
    if not energies:
        raise FidelityError("worst-output SQNR of no outputs: the run gave no per-sample "
                            "energies (check_calibration needs every output's, per sample)")
    return min(sqnr_db(float(np.sum(sig)), float(np.sum(err)))
               for sig, err in energies.values())


def calibration_accept(points: Sequence[MixedPoint], attempts: Sequence[Attempt],
                       on_calibration: Callable[[Attempt], Mapping[str, tuple[np.ndarray,
                                                                              np.ndarray]]],
                       ) -> Accept:
    """`paired_choice`'s `accept` for `MixedOptions.check_calibration`: a mix replaces the
    uniform plan only if it also beats it on the worst output over the calibration inputs
    (`on_calibration`: an attempt's per-sample energies there, each build run once). Another
    set of inputs, not the held-out set again: a rule over one set of 32 inputs cannot outvote
    that set (ppocr_mobile_v2_cls's selection set ranks its absmax plan 8.3 dB over the int4
    plan; the calibration set, the scored set and two fresh sets of 32 rank it 3.6-17.1 dB
    under, stop 29). A mix it refuses passes the choice to the next mix in rank, which must
    pass both sets too (stop 29's check fell back to the uniform plan at the first refusal)."""
    cache: dict[int, float] = {}

    def db(i: int) -> float:
        if i not in cache:
            cache[i] = worst_db(on_calibration(attempts[i]))
        return cache[i]

    def accept(i: int, ref: int) -> tuple[bool, str]:
        mine, theirs = db(i), db(ref)
        if mine > theirs:
            return True, (f"and on the calibration inputs ({mine:.2f} vs {theirs:.2f} dB)")
        return False, (f"{points[i].label} led {points[ref].label} on the held-out samples but "
                       f"not on the calibration inputs ({mine:.2f} vs {theirs:.2f} dB)")
    return accept


# ---------------------------------------------------------------------------- the report
@dataclass
class MixedPoint:
    """One measured export."""

    label: str
    size_bytes: int
    worst_sqnr_db: float
    #: the size the search estimated for it (None: a uniform probe)
    estimated_bytes: int | None
    bits: dict[str, str]
    on_front: bool = False
    chosen: bool = False
    within_budget: bool = False
    #: estimated from the per-layer latency table (None: no latency budget)
    latency_ms: float | None = None
    #: layers whose output channels are split between two formats (`row_split`): what moved
    splits: dict[str, str] = field(default_factory=dict)
    #: worst-output SQNR on each half of the held-out samples (`paired_choice`), where the
    #: per-sample errors are known
    halves_db: list[float] = field(default_factory=list)


@dataclass
class MixedReport:
    """What mixed precision tried and chose."""

    budget_bytes: int | None
    points: list[MixedPoint] = field(default_factory=list)
    budget_ms: float | None = None
    #: where the per-layer latencies came from (a profile of this host, a device's table)
    latency_source: str = ""
    chosen: int = -1
    exports: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: where `max_exports` / `max_seconds` stopped the search: what it did not do ("" where
    #: it ran to its end)
    capped: str = ""

    @property
    def chosen_point(self) -> MixedPoint:
        return self.points[self.chosen]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for p in d["points"]:
            if not math.isfinite(p["worst_sqnr_db"]):
                p["worst_sqnr_db"] = None if math.isnan(p["worst_sqnr_db"]) else (
                    "inf" if p["worst_sqnr_db"] > 0 else "-inf")
        d["kind"] = "mixed"
        return d

    def lines(self) -> list[str]:
        c = self.chosen_point
        counts: dict[str, int] = {}
        for f in c.bits.values():
            counts[f] = counts.get(f, 0) + 1
        budget = " and ".join(
            ([f"{self.budget_bytes:,} bytes"] if self.budget_bytes is not None else [])
            + ([f"{self.budget_ms:g} ms"] if self.budget_ms is not None else []))
        ms = "" if c.latency_ms is None else f", {c.latency_ms:.4g} ms"
        out = [f"  budget {budget}: chose {c.label}, {c.size_bytes:,} bytes{ms}, "
               f"worst output {c.worst_sqnr_db:.2f} dB ({self.exports} exports, "
               f"{self.seconds:.1f} s); layers: "
               + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))]
        axes = "size / SQNR" if self.budget_ms is None else "size / SQNR / latency"
        out.append(f"  points tried (* chosen, + on the {axes} Pareto front, "
                   "- over the budget):")
        if self.budget_ms is not None:
            out.append(f"  latency: estimated from per-layer times ({self.latency_source})")
        for p in sorted(self.points, key=lambda p: p.size_bytes):
            mark = "*" if p.chosen else "+" if p.on_front else " "
            over = "" if p.within_budget else " -"
            lat = "" if p.latency_ms is None else f" {p.latency_ms:10.4g} ms"
            out.append(f"  {mark} {p.size_bytes:>10,} B{lat} {p.worst_sqnr_db:7.2f} dB  "
                       f"{p.label}{over}")
        out += ascii_front(self.points)
        out += [f"  note: {n}" for n in self.notes]
        return out


def pareto_front(points: list[MixedPoint]) -> None:
    """Mark the points no other point beats on size and worst-output SQNR (and latency, where
    every point has one)."""
    timed = all(p.latency_ms is not None for p in points)

    def axes(p: MixedPoint) -> tuple[float, ...]:  # smaller is better on each
        return (p.size_bytes, -p.worst_sqnr_db) + ((p.latency_ms,) if timed else ())  # type: ignore[return-value]

    for p in points:
        a = axes(p)
        p.on_front = not any(
            q is not p and all(x <= y for x, y in zip(axes(q), a, strict=True))
            and axes(q) != a for q in points)


def ascii_front(points: list[MixedPoint], width: int = 48, height: int = 10) -> list[str]:
    """A small size (x) / worst-output SQNR (y) scatter: * chosen, o front, . other."""
    pts = [p for p in points if math.isfinite(p.worst_sqnr_db)]
    if len(pts) < 2:
        return []
    x0, x1 = min(p.size_bytes for p in pts), max(p.size_bytes for p in pts)
    y0, y1 = min(p.worst_sqnr_db for p in pts), max(p.worst_sqnr_db for p in pts)
    grid = [[" "] * width for _ in range(height)]
    rank = {" ": 0, ".": 1, "o": 2, "*": 3}
    for p in pts:
        x = 0 if x1 == x0 else round((p.size_bytes - x0) / (x1 - x0) * (width - 1))
        y = 0 if y1 == y0 else round((p.worst_sqnr_db - y0) / (y1 - y0) * (height - 1))
        ch = "*" if p.chosen else "o" if p.on_front else "."
        row = grid[height - 1 - y]
        if rank[ch] > rank[row[x]]:
            row[x] = ch
    out = [f"  {y1:6.1f} dB |" + "".join(grid[0])]
    out += ["            |" + "".join(r) for r in grid[1:-1]]
    out += [f"  {y0:6.1f} dB |" + "".join(grid[-1]),
            "            +" + "-" * width,
            f"             {x0:,} B" + " " * max(1, width - 24) + f"{x1:,} B"]
    return out


# ---------------------------------------------------------------------------- the search
Losses = dict[str, dict[str, float]]


def _losses_of(attempt: Attempt, model: Model) -> dict[str, float]:
    """Layer name -> error it adds (`LayerLoss.added_noise`), as measured in `attempt`."""
    found = layer_losses(attempt.fidelity, model, attempt.inputs_db)
    return {x.name: max(0.0, x.added_noise) for x in found.values()}


def _group_noise(group: Sequence[Operator], fmt: str) -> float:
    """`_weight_noise` of a plan name's ops: one op's own, or their mean by weight count."""
    if len(group) == 1:
        return _weight_noise(group[0], fmt)
    sizes = [float(op.inputs[OP_RULES[op.type].weight].numpy().size)  # type: ignore[index,union-attr]
             for op in group]
    return sum(k * _weight_noise(op, fmt) for k, op in zip(sizes, group, strict=True)) \
        / sum(sizes)


def _weight_noise(op: Operator, fmt: str) -> float:
    """Fallback for a layer the per-layer report does not measure: its weights' own relative
    error energy in `fmt`."""
    rule = OP_RULES[op.type]
    w = op.inputs[rule.weight]  # type: ignore[index]
    assert w is not None
    wf = weight_format(_storage(fmt))
    db = weight_sqnr_db(w.numpy(), wf.quantize(w.numpy(), rule.weight_axis, wf.default_method))
    return 0.0 if db == math.inf else 10.0 ** (-db / 10.0)


def hessian_losses(model: Model, samples: SampleSet, choices: list[LayerChoice],
                   hessians: Mapping[tuple[tuple[int, ...], str], LayerHessian] | None = None,
                   ) -> Losses:
    """Each layer's output error at each format, relative to its output's energy, from its
    float inputs X on the calibration samples (H = 2 X^T X / n, `gptq.collect_hessians`):
    tr(dW H dW^T) / tr(W H W^T), dW the format's rounding error. It does not depend on the
    other layers' formats (the uniform probes' per-layer losses do: deep in an all-2-bit
    model the inputs are already so noisy that a layer seems to add nothing)."""
    if hessians is None:
        hessians = collect_hessians(model, samples)
    groups = layer_groups(model)
    out: Losses = {}
    for c in choices:
        group = groups[c.name]
        # per op: its rows, its Hessian and its output energy tr(W H W^T) (once: they do not
        # depend on the format), then the error at each format; ops of one name summed
        noise = dict.fromkeys(c.formats, 0.0)
        signal = 0.0
        for op in group:
            rule = OP_RULES[op.type]
            w = op.inputs[rule.weight].numpy()  # type: ignore[index,union-attr]
            h = hessians.get(weight_key(w))
            if h is None:
                signal = 0.0
                break
            rows = np.moveaxis(np.asarray(w, np.float64), rule.weight_axis, 0)
            rows = rows.reshape(rows.shape[0], -1)
            hm = np.asarray(h.hessian, np.float64)
            form = "ck,ckl,cl->" if hm.ndim == 3 else "ck,kl,cl->"  # depthwise: [K, K] each
            energy = float(np.einsum(form, rows, hm, rows))
            if not energy > 0:
                signal = 0.0
                break
            signal += energy
            for f in c.formats:
                wf = weight_format(_storage(f))
                q = wf.quantize(w, rule.weight_axis, wf.default_method)
                deq = np.asarray(q.quant.dequantize(q.values), np.float64).reshape(w.shape)
                err = np.moveaxis(deq, rule.weight_axis, 0).reshape(rows.shape) - rows
                noise[f] += float(np.einsum(form, err, hm, err))
        out[c.name] = {f: noise[f] / signal if signal > 0 else _group_noise(group, f)
                       for f in c.formats}
    return out


def _other_rounding(fmt: str) -> str | None:
    """The INT4 format of the same bytes at the other rounding (`ABSMAX_TWINS`, either way:
    MSE-searched scales <-> absmax), None for a format without a twin."""
    return ABSMAX_TWINS.get(fmt) or next((b for b, t in ABSMAX_TWINS.items() if t == fmt), None)


def scale_choice(choices: list[LayerChoice], losses: Losses, bits: Mapping[str, str]
                 ) -> dict[str, str] | None:
    """`bits` with each INT4 layer at the INT4 twin (`ABSMAX_TWINS`: MSE-searched or absmax
    scales) of least estimated output error (`losses`); None where no layer moves."""
    out, moved = dict(bits), False
    for c in choices:
        f = bits[c.name]
        twin = _other_rounding(f)  # at a twin already: back to its MSE format where that gains
        if twin is not None and twin in c.formats and \
                losses[c.name][twin] < losses[c.name][f]:
            out[c.name], moved = twin, True
    return out if moved else None


def greedy(choices: list[LayerChoice], losses: Losses, base_bytes: float, target: float,
           allow_pinned: bool = False) -> dict[str, str] | None:
    """Bits per layer from all-INT8: the least estimated added error per byte saved, until
    the estimated size is within `target` (None: even every layer at its smallest is not).
    Pinned layers stay INT8 unless `allow_pinned`."""
    cur = {c.name: 0 for c in choices}
    movable = [c for c in choices if allow_pinned or not c.pinned]
    size = base_bytes
    while size > target:
        best = _cheapest_demotion(movable, cur, losses)
        if best is None:
            return None
        neg_saved, c, j = best
        size += neg_saved
        cur[c.name] = j
    return {c.name: c.formats[cur[c.name]] for c in choices}


def _cheapest_demotion(movable: list[LayerChoice], cur: Mapping[str, int], losses: Losses,
                       ) -> tuple[float, LayerChoice, int] | None:
    """The move of one of `movable` (format index now: `cur`) to a format of fewer bytes that
    adds the least estimated error per byte saved (the larger saving on a tie): (minus the
    bytes saved, layer, format index after); None where none saves bytes."""
    best: tuple[float, float, LayerChoice, int] | None = None
    for c in movable:
        i = cur[c.name]
        for j in range(i + 1, len(c.formats)):
            saved = c.nbytes[i] - c.nbytes[j]
            if saved <= 0:
                continue
            rate = (losses[c.name][c.formats[j]] - losses[c.name][c.formats[i]]) / saved
            if best is None or (rate, -saved) < (best[0], best[1]):
                best = (rate, -saved, c, j)
    return None if best is None else best[1:]


def spend(choices: list[LayerChoice], losses: Losses, bits: Mapping[str, str], size: float,
          target: float, allow_pinned: bool = False) -> dict[str, str] | None:
    """From a measured point (`bits`, `size` bytes; the estimate is anchored on what it
    measured, not on all-INT8): while the estimated size is over `target`, the demotion (a
    layer to any format of fewer bytes) of least estimated added error per byte saved; then,
    while a promotion fits, the one of most estimated error removed per byte it costs (a
    same-size lateral that gains costs nothing). None where even every movable layer at its
    smallest format is estimated over `target`. Pinned layers keep their format unless
    `allow_pinned`."""
    idx = {c.name: c.formats.index(bits[c.name]) for c in choices}
    movable = [c for c in choices if allow_pinned or not c.pinned]
    est = float(size)
    while est > target:
        down = _cheapest_demotion(movable, idx, losses)
        if down is None:
            return None
        est += down[0]
        idx[down[1].name] = down[2]
    while True:
        up: tuple[float, float, LayerChoice, int] | None = None
        for c in movable:
            i = idx[c.name]
            for j in range(len(c.formats)):
                cost = c.nbytes[j] - c.nbytes[i]
                gain = losses[c.name][c.formats[i]] - losses[c.name][c.formats[j]]
                if j == i or cost < 0 or gain <= 0 or est + cost > target:
                    continue
                rate = gain / max(cost, 1e-9)
                if up is None or (rate, gain) > (up[0], up[1]):
                    up = (rate, gain, c, j)
        if up is None:
            break
        c, j = up[2], up[3]
        est += c.nbytes[j] - c.nbytes[idx[c.name]]
        idx[c.name] = j
    return {c.name: c.formats[idx[c.name]] for c in choices}


def _spend_budget(choices: list[LayerChoice], measured: list[tuple[MixedPoint, Attempt]],
                  budget: int, count: int, losses: Losses,
                  run: Callable[[str, dict[str, str]], MixedPoint], exports: int = 2) -> None:
    """The budget spent from measured points (`spend`): the `count` smallest points over it
    that beat the best within it are brought under it (the greedy from all-INT8 and the trades
    around the best point do not reach the mixes between two probes: silero_vad at 194 kB kept
    a 124 kB point with nothing measured up to 230 kB): the smallest, then the best by
    worst-output SQNR (the int4 plan, where the budget is under it); and the best point within
    it promotes
    with the bytes it leaves. Each start, with the first / last layers held and then free,
    takes up to `exports` measured steps, each anchored on the last one's measured size (over:
    demote from it; under: promote from it)."""
    fits = [p for p, _ in measured if p.within_budget]
    best_in = max((p.worst_sqnr_db for p in fits), default=-math.inf)
    over = sorted((p for p, _ in measured if p.size_bytes > budget and not p.splits
                   and p.worst_sqnr_db > best_in), key=lambda p: (p.size_bytes,
                                                                 -p.worst_sqnr_db))
    # the smallest such point, then the best (all-INT8's descent is the greedy's: not again)
    int8 = {c.name: "int8" for c in choices}
    starts: list[MixedPoint] = []
    for p in over[:1] + sorted(over[1:], key=lambda p: (-p.worst_sqnr_db, p.size_bytes)):
        if len(starts) < count and p.bits != int8 and p.bits not in [s.bits for s in starts]:
            starts.append(p)
    if fits:
        starts.append(max(fits, key=lambda p: (p.worst_sqnr_db, -p.size_bytes)))
    tried = [p.bits for p, _ in measured if not p.splits]
    pinned = any(c.pinned for c in choices)
    for s in starts:
        # the first / last layers held, then moved too (a front end the INT8 rewrite keeps in
        # float holds 4 bytes a weight: silero_vad's STFT is 266 kB of its 419 kB int4 plan)
        for free in (False, True) if pinned else (False,):
            cur = s
            for step in range(exports):
                bits = spend(choices, losses, cur.bits, cur.size_bytes, budget, free)
                if bits is None or bits in tried:
                    break
                tried.append(bits)
                way = "descent" if s.size_bytes > budget else "ascent"
                cur = run(f"{way} from {s.label}" + (" (first / last free)" if free else "")
                          + (f", step {step + 1}" if step else ""), bits)


def estimate_bytes(choices: list[LayerChoice], bits: Mapping[str, str], base_bytes: float
                   ) -> float:
    saved = 0.0
    for c in choices:
        saved += c.nbytes[0] - c.nbytes[c.formats.index(bits[c.name])]
    return base_bytes - saved


def _noise(db: float) -> float:
    return 10.0 ** (-db / 10.0) if math.isfinite(db) else (0.0 if db > 0 else 1.0)


def _moves(choices: list[LayerChoice], bits: Mapping[str, str], losses: Losses, count: int,
           ) -> list[tuple[LayerChoice, int, int]]:
    """The `count` most promising single-layer moves each way, by estimated error per byte:
    (layer, format index now, format index after). Up / down go to the nearest format of more /
    fewer bytes (2-bit and ternary are the same size: a ternary layer's move up is INT4); a
    lateral move (the other format of the same size) counts as an up when it is estimated
    to gain."""
    ups, downs, sideways = [], [], []
    for c in choices:
        i = c.formats.index(bits[c.name])
        here = losses[c.name][c.formats[i]]
        up = [j for j in range(i) if c.nbytes[j] > c.nbytes[i]]
        down = [j for j in range(i + 1, len(c.formats)) if c.nbytes[j] < c.nbytes[i]]
        for js, into in ((_both_roundings(c, up[-1:]), ups),
                         (_both_roundings(c, down[:1]), downs)):
            for j in js:
                nbytes = abs(c.nbytes[j] - c.nbytes[i])
                rate = abs(losses[c.name][c.formats[j]] - here) / max(nbytes, 1e-9)
                into.append((rate, c, i, j))
        for j, f in enumerate(c.formats):
            if j != i and c.nbytes[j] == c.nbytes[i] and losses[c.name][f] < here:
                sideways.append((here - losses[c.name][f], c, i, j))
    ups.sort(key=lambda t: -t[0])
    downs.sort(key=lambda t: t[0])
    sideways.sort(key=lambda t: -t[0])
    # a pinned layer's demotion is always measured: no estimate moved it, and one large layer
    # freed can pay for several promotions
    pinned = [t for t in downs[count:] if t[1].pinned]
    return [(c, i, j) for _, c, i, j in ups[:count] + downs[:count] + pinned
            + sideways[:count]]


def _both_roundings(c: LayerChoice, js: list[int]) -> list[int]:
    """Format indices `js` and, for an INT4 one, its absmax twin's (`ABSMAX_TWINS`, the same
    bytes): a move up or down to the nearest format of other size is measured at both INT4
    roundings. List order took one blindly (cd141a5: every move up from 2-bit took the twin,
    listed last), and by the estimate alone magika_v3_3 at half of INT4 lost the point that
    beats all-ternary there (its last layer at the twin, up from 2-bit: 17.77 vs 15.01 dB on
    the scored inputs; taken by estimate, the move up was INT4 and repeated mixed step 1)."""
    out = []
    for j in js:
        other = _other_rounding(c.formats[j])
        out += [j] + ([c.formats.index(other)] if other in c.formats else [])
    return out


def _swaps(ups: list[tuple[float, float, str, str]], downs: list[tuple[float, float, str, str]],
           avail: float, base_bits: Mapping[str, str],
           run: Callable[[str, dict[str, str]], MixedPoint], count: int = 2) -> None:
    """Measure pairs, not only their sum: each of the `count` promotions that measured the
    best gain, with the one demotion that frees the bytes it needs for the least measured
    loss (the pairing by rates below adds losses that do not add: two moves' output noise is
    not the sum of each one's)."""
    seen: list[dict[str, str]] = []
    for _rate, cost, name, fmt in sorted(ups, key=lambda t: -t[0] * t[1])[:count]:
        need = cost - avail
        fits = [d for d in downs if d[2] != name and d[1] >= need]
        if need <= 0 or not fits:
            continue
        d = min(fits, key=lambda d: d[0] * d[1])
        bits = {**base_bits, name: fmt, d[2]: d[3]}
        if bits not in seen:
            seen.append(bits)
            run(f"swap {name} {fmt} / {d[2]} {d[3]}", bits)


def _split_trades(choices: list[LayerChoice], measured: list[tuple[MixedPoint, Attempt]],
                  budget: int, ops: Mapping[str, Operator],
                  hessians: Mapping[tuple[tuple[int, ...], str], LayerHessian],
                  report: MixedReport,
                  run: Callable[[str, dict[str, str], dict[str, RowSplit]], MixedPoint],
                  count: int) -> None:
    """Points measured over the budget that beat the best within it (a promotion whose bytes
    no whole-layer demotion pays for closely enough: one layer holding most of the weights)
    come under it with the least sensitive output channels of their largest splittable layer
    one format down, chosen by `row_split.row_costs` on that layer's input Hessian; measured
    (once more with the overshoot added, where the first is still over)."""
    fits = [p for p, _ in measured if p.within_budget]
    if not fits:
        return
    best = max(p.worst_sqnr_db for p in fits)
    over = sorted((p for p, _ in measured if not p.within_budget and not p.splits
                   and p.worst_sqnr_db > best), key=lambda p: -p.worst_sqnr_db)
    done, seen = 0, []
    for p in over:
        if done >= count:
            break
        if p.bits in seen:  # the same plan reached by another move
            continue
        seen.append(p.bits)
        donors = []
        for c in choices:
            op = ops.get(c.name)  # a name of one op (ops sharing a name are not split)
            if op is None:
                continue
            i = c.formats.index(p.bits[c.name])
            lower = [j for j in range(i + 1, len(c.formats)) if _bits(c.formats[j])
                     < _bits(c.formats[i])]
            # a hybrid layer (float activations) is not split: its rows would need two
            # activation types
            if op.type in SPLIT_OPS and lower and p.bits[c.name] != HYBRID:
                donors.append((c.elements, c, c.formats[lower[0]]))
        # the largest layer first; where its split cannot be written (a layer whose output
        # channels feed a RESHAPE: oww_melspectrogram's STFT) or cannot free the bytes, the
        # next: melspectrogram's swap 80 B over the int4 plan's size, better on both halves,
        # was never split because its largest layer could not be
        for _, c, fmt in sorted(donors, key=lambda d: -d[0]):
            if _split_under(p, c, fmt, budget, ops, hessians, report, run):
                done += 1
                break


#: exports a row split may take to come under the budget: the estimate, the estimate plus the
#: overshoot, then the rows that the first two measured sizes say are needed. Two were not
#: always enough: a row saves less than its weight bytes (flatbuffer alignment), and
#: oww_embedding's, nudenet_320n's and magika_v3_3's (float activations, at ai-edge-quantizer's
#: size) second tries came out 32, 16 and 64 B over (stop 29 and before)
SPLIT_TRIES = 3


def _split_under(p: MixedPoint, c: LayerChoice, fmt: str, budget: int,
                 ops: Mapping[str, Operator],
                 hessians: Mapping[tuple[tuple[int, ...], str], LayerHessian],
                 report: MixedReport,
                 run: Callable[[str, dict[str, str], dict[str, RowSplit]], MixedPoint]) -> bool:
    """`p` with the least sensitive rows of layer `c` at `fmt`, as few as bring it under the
    budget, measured (once more with the overshoot added, where the first is still over);
    whether any was measured."""
    w = ops[c.name].inputs[OP_RULES[ops[c.name].type].weight]  # type: ignore[index]
    assert w is not None
    h = hessians.get(weight_key(w.numpy()))
    costs = row_costs(w.numpy(), None if h is None else np.asarray(h.hessian),
                      [p.bits[c.name], fmt])
    channels = int(w.shape[0])
    row_saved = (c.elements // channels) * (_bits(p.bits[c.name]) - _bits(fmt)) / 8.0
    need, last, made = float(p.size_bytes - budget), 0, False
    tried: list[tuple[int, int]] = []  # (rows moved, bytes measured) of the tries over budget
    for _ in range(SPLIT_TRIES):
        rows = rows_for(costs, need, row_saved, channels)
        if rows is not None and len(rows) <= last:  # the overshoot rounds to no more rows
            rows = rows_for(costs, need + row_saved, row_saved, channels)
        if len(tried) >= 2:  # two sizes measured: what one more row saves, not the estimate
            (n0, s0), (n1, s1) = tried[-2:]
            if n1 > n0 and s0 > s1:
                rows = cheapest_rows(costs, n1 + math.ceil((s1 - budget) * (n1 - n0)
                                                           / (s0 - s1)), channels)
        if rows is None:
            break
        last = len(rows)
        split = {c.name: RowSplit(rows, fmt)}
        try:
            got = run(f"{p.label}, {c.name} split ({len(rows)} of {channels} rows {fmt})",
                      dict(p.bits), split)
        except EdgeSDKError as exc:  # a format that cannot hold the split's ops
            report.notes.append(f"row split of {c.name} not measured: {exc}")
            break
        made = True
        if got.within_budget:
            break
        tried.append((len(rows), got.size_bytes))
        need += got.size_bytes - budget
    return made


def _latency_table(latency: LatencyTable | LayerProfiler,
                   measured: list[tuple[MixedPoint, Attempt]], choices: list[LayerChoice],
                   model: Model) -> LatencyTable:
    """The per-layer latency table: `latency` itself, or the uniform probes profiled."""
    if isinstance(latency, LatencyTable):
        return latency
    table = LatencyTable()
    order = [(layer_name(op), op.type) for op in weighted_layers(model)]
    for p, a in measured:
        if p.label.startswith("all-"):
            add_probe(table, p.bits, order, latency(a, p.label), p.label)
    table.source = getattr(latency, "source", "") or "per-layer profile"
    return table


def _trade(choices: list[LayerChoice], measured: list[tuple[MixedPoint, Attempt]],
           budget: int, count: int, losses: Losses,
           run: Callable[[str, dict[str, str]], MixedPoint]) -> None:
    """From the best point within the budget, measure single-layer moves one format up and
    one down (the `count` most promising each way by `losses`; output noise measured, not
    estimated), then pair the promotions that gain most per byte with the demotions that lose
    least per byte freed while the pair gains, and measure that plan."""
    fits = [p for p, _ in measured if p.within_budget]
    if not fits:
        return
    start = max(fits, key=lambda p: (p.worst_sqnr_db, -p.size_bytes))
    base_noise, base_bits = _noise(start.worst_sqnr_db), dict(start.bits)
    ups: list[tuple[float, float, str, str]] = []    # (gain / byte, bytes, layer, format)
    sideways: list[tuple[float, str, str]] = []      # (gain, layer, format): same bytes
    downs: list[tuple[float, float, str, str]] = []  # (loss / byte, bytes freed, layer, format)
    for c, i, j in _moves(choices, base_bits, losses, count):
        bits = {**base_bits, c.name: c.formats[j]}
        got = run(f"trade {c.name} {c.formats[j]}", bits)
        delta = _noise(got.worst_sqnr_db) - base_noise
        nbytes = c.nbytes[j] - c.nbytes[i]
        if nbytes == 0:
            if delta < 0:  # the same bytes, measured better: free
                sideways.append((-delta, c.name, c.formats[j]))
        elif nbytes > 0 and delta < 0:
            ups.append((-delta / nbytes, nbytes, c.name, c.formats[j]))
        elif nbytes < 0:
            downs.append((max(delta, 0.0) / -nbytes, -nbytes, c.name, c.formats[j]))
    ups.sort(key=lambda t: -t[0])
    downs.sort(key=lambda t: t[0])
    avail = float(budget - start.size_bytes)
    _swaps(ups, downs, avail, base_bits, run)
    chosen: dict[str, str] = {}
    for _gain, name, fmt in sorted(sideways, reverse=True):
        chosen.setdefault(name, fmt)
    used_down = 0
    for gain_rate, cost, name, fmt in ups:
        freed, loss, take = 0.0, 0.0, used_down
        while avail + freed < cost and take < len(downs):
            d = downs[take]
            if d[2] not in chosen and d[2] != name:
                freed += d[1]
                loss += d[0] * d[1]
            take += 1
        if avail + freed < cost or loss >= gain_rate * cost:
            break
        for d in downs[used_down:take]:
            if d[2] not in chosen and d[2] != name:
                chosen[d[2]] = d[3]
        used_down = take
        chosen[name] = fmt
        avail += freed - cost
    if chosen:
        run("trades combined", {**base_bits, **chosen})


#: the face's per-layer profiler: (a measured export, its label) -> (op type, ms) per operator
LayerProfiler = Callable[[Attempt, str], Sequence[tuple[str, float]]]


class _Capped(Exception):
    """`MixedOptions.max_exports` / `max_seconds` reached: the search stops where it is."""


def search(model: Model, budget_bytes: int | None, attempt: Callable[[PrecisionPlan], Attempt],
           first: Attempt, options: Mapping[str, object] | None = None,
           samples: SampleSet | None = None,
           hessians: Mapping[tuple[tuple[int, ...], str], LayerHessian] | None = None,
           *, budget_ms: float | None = None,
           latency: LatencyTable | LayerProfiler | None = None,
           on_calibration: Callable[[Attempt], Mapping[str, tuple[np.ndarray, np.ndarray]]]
           | None = None,
           ) -> tuple[Attempt, MixedReport]:
    """Choose bits per layer under `budget_bytes` and / or `budget_ms` (see the module
    docstring). `first` is the all-INT8 export; `attempt(plan)` exports and validates one
    plan. With calibration `samples` (or GPTQ's `hessians`) the sensitivities are
    `hessian_losses`; without, the uniform probes' measured per-layer losses. A latency budget
    needs `latency`: a per-layer table (`mixed_latency.LatencyTable`, e.g. a device's) or a
    profiler the uniform probes are profiled with (`LayerProfiler`); every point's latency is
    the table's estimate. `on_calibration`: an attempt's per-sample (signal, error) energies
    on the calibration inputs, for `MixedOptions.check_calibration`."""
    start = time.perf_counter()
    opts = mixed_options(dict(options or {}))
    if budget_bytes is None and budget_ms is None:
        raise BudgetError("mixed precision needs a budget: budget_bytes or budget_ms")
    if budget_bytes is not None and budget_bytes <= 0:
        raise BudgetError(f"budget_bytes must be positive, not {budget_bytes}")
    if budget_ms is not None and not budget_ms > 0:
        raise BudgetError(f"budget_ms must be positive, not {budget_ms}")
    if budget_ms is not None and latency is None:
        raise BudgetError("budget_ms needs per-layer latencies: a LatencyTable or a profiler")
    size_limit = math.inf if budget_bytes is None else float(budget_bytes)
    choices = layer_choices(model, opts)
    groups = layer_groups(model)
    ops = {name: group[0] for name, group in groups.items() if len(group) == 1}
    report = MixedReport(budget_bytes=None if budget_bytes is None else int(budget_bytes),
                         budget_ms=budget_ms)
    measured: list[tuple[MixedPoint, Attempt]] = []
    table: LatencyTable | None = None

    def fits(p: MixedPoint) -> bool:
        return p.size_bytes <= size_limit and (
            budget_ms is None or (p.latency_ms is not None and p.latency_ms <= budget_ms))

    by_plan: dict[tuple[Any, ...], MixedPoint] = {}

    def plan_key(bits: Mapping[str, str], splits: Mapping[str, RowSplit] | None
                 ) -> tuple[Any, ...]:
        return (tuple(sorted(bits.items())),
                tuple(sorted((k, v.weights, v.rows) for k, v in (splits or {}).items())))

    def record(label: str, bits: dict[str, str], a: Attempt, estimated: float | None,
               splits: Mapping[str, RowSplit] | None = None) -> MixedPoint:
        p = MixedPoint(label, a.size_bytes, a.fidelity.min_sqnr_db,
                       None if estimated is None else round(estimated), dict(bits),
                       splits={k: v.describe() for k, v in (splits or {}).items()},
                       halves_db=[round(h, 3) for h in halves_db(a)])
        if table is not None:
            p.latency_ms = round(table.estimate_ms(bits), 6)
        p.within_budget = fits(p)
        measured.append((p, a))
        by_plan.setdefault(plan_key(bits, splits), p)
        return p

    def measure(label: str, bits: dict[str, str], splits: Mapping[str, RowSplit] | None = None
                ) -> MixedPoint:
        """Export and record a plan, once: a plan measured before (several moves or several
        layers of one name lead to it) is that point again, not another export."""
        seen = by_plan.get(plan_key(bits, splits))
        if seen is not None:
            return seen
        check_cap(label)
        return record(label, bits, attempt(plan_of(bits, first.plan, splits)),
                      estimate_bytes(choices, bits, base), splits)

    probed = 0  # the exports before the search proper: the cap counts those after them
    held = 0  # exports of `max_exports` kept for the row splits while the trades run

    def check_cap(label: str) -> None:
        made = len(measured) - probed
        if opts.max_exports is not None and made >= opts.max_exports - held:
            raise _Capped(f"max_exports={opts.max_exports}: {made} exports after the probes; "
                          f"stopped before {label!r}")
        spent = time.perf_counter() - start
        if opts.max_seconds is not None and spent >= opts.max_seconds:
            raise _Capped(f"max_seconds={opts.max_seconds:g}: {spent:.0f} s, {made} exports "
                          f"after the probes; stopped before {label!r}")

    int8_bits = {c.name: "int8" for c in choices}
    record("all-int8", int8_bits, first, None)
    for c in choices:  # a layer the INT8 rewrite keeps float (an STFT front end) holds 4 bytes
        if first.precisions.get(c.name) == "float32":  # a weight there, not 1
            c.nbytes[0] = c.elements * 4.0
    for c in hybrid_layers(choices, groups, first, opts):  # and may take INT8 weights with
        c.formats.insert(1, HYBRID)  # float activations: 1 byte a weight
        c.nbytes.insert(1, c.elements * 1.0)
    losses: Losses = {c.name: {} for c in choices}
    for name, v in _losses_of(first, model).items():
        if name in losses:
            losses[name]["int8"] = v
    for probe in PROBES:
        bits = {c.name: _probe_format(c, probe) for c in choices}
        if bits == int8_bits:
            continue
        a = attempt(plan_of(bits, first.plan))
        record(f"all-{probe}", bits, a, None)
        got = _losses_of(a, model)
        for c in choices:
            f = bits[c.name]
            if f != "int8" and c.name in got:
                losses[c.name].setdefault(f, got[c.name])
        if probe == PROBES[0] and a.size_bytes > size_limit:
            # the pinned first / last layers at INT8 are not the floor: try them at 2-bit too
            free = {c.name: "int2" if "int2" in c.formats else c.formats[-1]
                    for c in choices if c.pinned and len(c.formats) > 1}
            if free:
                bits = {**bits, **free}
                a = attempt(plan_of(bits, first.plan))
                record(f"all-{probe}, first / last too", bits, a, None)
                if a.size_bytes <= size_limit:
                    continue
            raise BudgetError(
                f"budget of {budget_bytes:,} bytes is under the smallest model mixed precision "
                f"makes of this model: {a.size_bytes:,} bytes (every weighted layer at its "
                f"smallest format; all-INT8 is {first.size_bytes:,} bytes)")
    for scheme in SCHEME_PROBES:  # the sub-byte schemes' own plans are points too
        sub_plan = plan_for(scheme, model, {"activations": opts.activations,
                                            "custom_ops": opts.custom_ops})
        bits = {c.name: sub_plan.layers[c.name].weights if c.name in sub_plan.layers
                and sub_plan.layers[c.name].weights in c.formats else "int8" for c in choices}
        if sub_plan.hybrid_kept and any(HYBRID in c.formats for c in choices):
            # the scheme's rewrite gives some float-kept layers INT8 weights with float
            # activations (`PrecisionPlan.hybrid_kept`, the int4 default since stop 30): its
            # file as the scheme writes it, each such layer `HYBRID` in the point's bits (as
            # any other plan, the rewrite says which: oww_melspectrogram's STFT, not its mel
            # MatMul). Without it the scheme's point was all-INT4's bits again (skipped), and
            # the int4 file (240,800 B there, not 634,496) no uniform point of the search
            a = attempt(replace(plan_of(bits, first.plan), hybrid_kept=True))
            bits = {n: HYBRID if a.precisions.get(n) == HYBRID else f for n, f in bits.items()}
            if bits not in [p.bits for p, _ in measured]:
                record(f"{scheme} scheme", bits, a, None)
            continue
        if bits in [p.bits for p, _ in measured]:
            continue
        record(f"{scheme} scheme", bits, attempt(plan_of(bits, first.plan)), None)
    if budget_ms is not None and not isinstance(latency, LatencyTable) \
            and any(c.pinned for c in choices):
        # the profiler needs the first / last layers' sub-byte times too: probes with them
        for probe in ("int4", "int2"):
            bits = {c.name: _probe_format(c, probe, pinned_too=True) for c in choices}
            if bits not in [p.bits for p, _ in measured]:
                record(f"all-{probe}, first / last too", bits,
                       attempt(plan_of(bits, first.plan)), None)
    if latency is not None:
        table = _latency_table(latency, measured, choices, model)
        report.latency_source = table.source
        report.notes += fill_missing(table, {c.name: c.formats for c in choices},
                                     {t: b for b, t in ABSMAX_TWINS.items()})
        for p, _ in measured:
            p.latency_ms = round(table.estimate_ms(p.bits), 6)
            p.within_budget = fits(p)
    for c in choices:  # what the per-layer report does not measure: the weights' own error
        for f in c.formats:
            losses[c.name].setdefault(f, _group_noise(groups[c.name], f) if f != "int8"
                                      else 0.0)
    measured_losses = samples is None and hessians is None
    if not measured_losses:
        start_h = time.perf_counter()
        if hessians is None:
            hessians = collect_hessians(model, samples)  # type: ignore[arg-type]
        losses = hessian_losses(model, samples, choices, hessians)  # type: ignore[arg-type]
        report.notes.append(f"sensitivity: each layer's output error at each format from its "
                            f"calibration inputs' Hessian ({time.perf_counter() - start_h:.1f} s)")
    else:
        report.notes.append("sensitivity: the uniform probes' measured per-layer losses")
    base = float(first.size_bytes)
    smallest = measured[1] if len(measured) > 1 else None  # the all-2-bit probe
    if smallest is not None:  # weight bytes alone miss scales and packing: scale the savings
        est_saved = base - estimate_bytes(choices, smallest[0].bits, base)
        if est_saved > 0:
            k = (base - smallest[0].size_bytes) / est_saved
            for c in choices:
                c.nbytes = [b * k for b in c.nbytes]
    tried: list[dict[str, str]] = [p.bits for p, _ in measured]
    probed = len(measured)
    try:  # every export from here goes through check_cap (measure calls it)
        if opts.absmax_int4 and budget_bytes is not None:
            # the uniform plans within the budget with each INT4 layer at the scale of least
            # estimated output error (a mean over the calibration inputs): first, so that a
            # capped search measures them too; then (`absmax_plans`) every INT4
            # layer at absmax (ai-edge-quantizer's rule): the worst output the choice ranks by
            # is set by a few inputs the mean does not weigh (magika_v3_3 with float
            # activations: no layer's estimate prefers absmax, every layer at absmax scores
            # 32.52 dB on 32 selection inputs against MSE scales' 21.42)
            for p in [p for p, _ in measured if p.within_budget]:
                bits = scale_choice(choices, losses, p.bits)
                if bits is not None:
                    measure(f"{p.label}, scales by output error", bits)
                bits = {n: ABSMAX_TWINS.get(f, f) for n, f in p.bits.items()}
                if opts.absmax_plans and bits != p.bits:
                    measure(f"{p.label}, absmax scales", bits)
        if table is not None and budget_ms is not None:
            names, fmts = [c.name for c in choices], {c.name: c.formats for c in choices}
            bits = greedy_ms(names, fmts, losses, table, budget_ms,
                             [c.name for c in choices if c.pinned])
            if bits is None:  # the first / last layer must move too
                bits = greedy_ms(names, fmts, losses, table, budget_ms)
            if bits is None:
                report.notes.append(f"no mix is estimated within {budget_ms:g} ms (the per-layer "
                                    f"table's fastest formats)")
            elif bits not in tried:
                tried.append(bits)
                check_cap("mixed latency")
                record("mixed latency", bits, attempt(plan_of(bits, first.plan)),
                       estimate_bytes(choices, bits, base))
        target = size_limit
        for step in range(opts.steps if budget_bytes is not None else 0):
            bits = greedy(choices, losses, base, target)
            if bits is None:  # a budget only met with the first / last layer below INT8
                bits = greedy(choices, losses, base, target, allow_pinned=True)
            if bits is None:
                report.notes.append(f"step {step + 1}: no plan fits the estimated target "
                                    f"{target:,.0f} bytes")
                break
            if bits in tried:
                break
            tried.append(bits)
            est = estimate_bytes(choices, bits, base)
            check_cap(f"mixed step {step + 1}")
            a = attempt(plan_of(bits, first.plan))
            record(f"mixed step {step + 1}", bits, a, est)
            if a.size_bytes > size_limit:  # the estimate was short: aim lower by the overshoot
                target -= a.size_bytes - size_limit
                report.notes.append(f"step {step + 1}: {a.size_bytes:,} bytes measured for "
                                    f"{est:,.0f} estimated; target lowered to {target:,.0f}")
                continue
            twin = {n: ABSMAX_TWINS.get(f, f) for n, f in bits.items()}
            if opts.absmax_int4 and opts.absmax_plans and twin != bits:  # the greedy's point
                # too, as the uniform plans (magika_v3_3 with float activations: the
                # greedy's every-layer-INT4 point, 21.42 dB on 32 selection inputs with MSE
                # scales, is ai-edge-quantizer's file with absmax: 32.52)
                measure(f"mixed step {step + 1}, absmax scales", twin)
            if not measured_losses:
                break
            for name, v in _losses_of(a, model).items():  # measured in this mix: refine
                if name in losses and bits.get(name, "int8") in losses[name]:
                    losses[name][bits[name]] = v
        if budget_bytes is not None and opts.descents:
            _spend_budget(choices, measured, int(size_limit), opts.descents, losses, measure)
        splitting = bool(budget_bytes is not None and opts.row_splits and hessians is not None)
        # under a cap the trades leave `row_splits` exports to the row splits: the trades
        # that beat the best point within the budget are often a few hundred bytes over it,
        # and only a split brings them under (ppocr_v4_rec, ddddocr_rec capped at 6: the
        # trades took all 6, so the INT8 trades 160-2,700 B over were never split)
        held = min(opts.row_splits, opts.max_exports or 0) if splitting else 0
        try:
            # trades move bytes: under a latency budget alone they are not made
            for _ in range(opts.trade_rounds if opts.trades > 0 and budget_bytes is not None
                           else 0):
                before = max((p.worst_sqnr_db for p, _ in measured if p.within_budget),
                             default=-math.inf)
                _trade(choices, measured, int(size_limit), opts.trades, losses, measure)
                if max((p.worst_sqnr_db for p, _ in measured if p.within_budget),
                       default=-math.inf) <= before:
                    break
        except _Capped as cap:
            if not held:
                raise
            report.capped = str(cap)  # the row splits may still be made: the trades were not
            report.notes.append(f"search capped in the trades ({cap}): {held} kept for the row "
                                f"splits")
        held = 0
        if splitting:
            _split_trades(choices, measured, int(size_limit), ops, hessians, report, measure,
                          opts.row_splits)
    except _Capped as cap:
        report.capped = str(cap)
        report.notes.append(f"search capped ({cap}): the choice is among the {len(measured)} "
                            f"points measured")
    points = [p for p, _ in measured]
    pareto_front(points)
    checked = first.fidelity.samples
    if checked < MIN_CONFIDENT_SAMPLES:  # the choice is the best of many on these samples
        report.notes.append(
            f"chosen on {checked} held-out samples: with fewer than {MIN_CONFIDENT_SAMPLES} the "
            f"best of {len(points)} points can be the one that fits them best (on the corpus, "
            f"8 samples chose mixes that scored under the int4 plan on others); pass more "
            f"validation= samples")
    inside = [i for i, p in enumerate(points) if p.within_budget]
    if not inside:
        budget = " and ".join(
            ([f"{budget_bytes:,} bytes"] if budget_bytes is not None else [])
            + ([f"{budget_ms:g} ms"] if budget_ms is not None else []))
        fastest = "" if table is None else (
            f"; fastest: {min(p.latency_ms or math.inf for p in points):.3f} ms estimated "
            f"({table.source})")
        raise BudgetError(f"no measured export fits the budget of {budget} "
                          f"(smallest: {min(p.size_bytes for p in points):,} bytes{fastest})")
    accept = None
    if opts.check_calibration:
        if on_calibration is None:
            report.notes.append("check_calibration: no per-sample errors on the calibration "
                                "inputs were given; the choice is the held-out samples' alone")
        else:
            accept = calibration_accept(points, [a for _, a in measured], on_calibration)
    best, why = paired_choice(points, inside, accept)
    if why is not None:
        report.notes.append(why)
    best, why = ceiling_choice(points, inside, best)
    if why is not None:
        report.notes.append(why)
    points[best].chosen = True
    report.points, report.chosen = points, best
    report.exports = len(points)
    report.seconds = round(time.perf_counter() - start, 3)
    return measured[best][1], report


__all__ = [
    "ABSMAX_TWINS",
    "CEILING_TIE_DB",
    "DEFAULT_STEPS",
    "PROBES",
    "BudgetError",
    "LayerChoice",
    "LayerProfiler",
    "MixedOptions",
    "MixedPoint",
    "MixedReport",
    "ascii_front",
    "calibration_accept",
    "ceiling_choice",
    "estimate_bytes",
    "greedy",
    "halves_db",
    "layer_choices",
    "mixed_options",
    "never_worse",
    "paired_choice",
    "pareto_front",
    "plan_of",
    "scale_choice",
    "search",
    "spend",
    "worse_half_db",
]
