"""Error-aware rounding for small output heads: a FULLY_CONNECTED whose output the model returns.

A landmark net's last layers are small FCs on globally pooled features. Where such a head's
output cancels (MediaPipe's hand lite world landmarks: +-0.08 from weights of +-1 on features
of 0..6), rounding its int8 weights to nearest keeps their relative error in the output: that
one layer in float lifts the worst output 10.7 -> 14.0 dB. Its int8 codes can instead be chosen
against the layer's calibration inputs (GPTQ, `sdk.converters.quantize.gptq`, with the stem's
scale refit), as `sdk.converters.quantize.stem` does for the layers next to the input.

A head reads one pooled row per sample: 32 calibration samples give 32 rows for 672+ inputs, a
rank-deficient Hessian, and GPTQ then fits those rows rather than the layer (all-layer GPTQ took
hand lite's flag 25.8 -> 12.7 dB). So each head is checked on a held-out split of the
calibration samples (`stem.held_out_split`: the Hessian comes from the rest): its GPTQ codes are
kept only where they lower the head's own output error (bias correction included, as the
rewrite applies it) on the held-out inputs by `stem.MIN_GAIN`, and only where that error
matters (`MAX_RTN_DB`). The error is computed exactly from the held-out inputs' second
moments; a head's output is the model's (or its score's logit), so no model-level check is
made. The float model, cut at the heads' inputs, runs once over the samples. Cost: hand lite
4 s on a loaded 2-core host (its export 10 s).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from sdk.base.errors import EdgeSDKError
from sdk.base.samples import SampleSet
from sdk.converters.ir import Graph, Model, Operator
from sdk.converters.quantize.gptq import gptq_quantize, refit_scales, weight_key
from sdk.converters.quantize.plan import layer_name
from sdk.converters.quantize.score_ranges import returned_tensors
from sdk.converters.quantize.stem import MIN_GAIN, StemChoice, describe_choices, held_out_split
from sdk.converters.quantize.subgraph import computing
from sdk.converters.quantize.weights import symmetric_per_channel

#: heads with more weights than this round to nearest (bounds the solve; hand full's world
#: landmarks have 72,576)
MAX_HEAD_WEIGHTS = 1 << 18
#: a head whose rounded-to-nearest output already reads above this SQNR (dB, held-out) keeps
#: it: its weights' error is under 1 % of the error power the 25 dB bar allows, and a gain the
#: few held-out samples show at that level does not hold elsewhere (oww_alexa's score FC:
#: 59.8 -> 68.9 dB on its 8 held-out samples, yet the model's output over 48 others 37.4 ->
#: 34.3 dB)
MAX_RTN_DB = 40.0
#: ops between a head and the model output that keep its error's meaning (a score's logit)
_PASS = frozenset({"LOGISTIC", "TANH", "RESHAPE", "SQUEEZE", "EXPAND_DIMS"})


@dataclass
class HeadRounding:
    """The chosen heads' GPTQ solutions, keyed by `gptq.weight_key` of their float weights."""

    #: weight key -> (scales [C], codes [C, K]) for the heads that passed the check
    solutions: dict[tuple[tuple[int, ...], str], tuple[np.ndarray, np.ndarray]] = \
        field(default_factory=dict)
    choices: list[StemChoice] = field(default_factory=list)
    #: heads whose codes the rewrite took (filled by `codes`)
    rounded: list[str] = field(default_factory=list)
    skipped: str = ""
    seconds: float = 0.0
    _names: dict[tuple[tuple[int, ...], str], str] = field(default_factory=dict, repr=False)

    def codes(self, w: np.ndarray, axis: int, scales: np.ndarray, qmin: int, qmax: int
              ) -> tuple[np.ndarray, np.ndarray] | None:
        """(scales, codes shaped like `w`) for a chosen head's weights, else None. The codes
        were solved for the int8 format's symmetric [-127, 127] per-channel scheme: another
        format or axis gets None."""
        key = weight_key(w)
        solved = self.solutions.get(key)
        if solved is None or axis != 0 or (qmin, qmax) != (-127, 127) \
                or np.asarray(scales).size != solved[0].size:
            return None
        name = self._names.get(key, "")
        if name and name not in self.rounded:
            self.rounded.append(name)
        return solved[0].astype(np.float32), solved[1].reshape(w.shape)

    def describe(self) -> str:
        if not self.choices:
            return self.skipped
        return ("head rounding: output FULLY_CONNECTED codes by GPTQ where the held-out "
                "calibration samples gain, each head's output SQNR round-to-nearest -> GPTQ: "
                + describe_choices(self.choices))


def reaches_output(graph: Graph, op: Operator) -> bool:
    """Whether `op`'s output is returned, directly or through LOGISTIC / TANH / reshapes that
    nothing else reads."""
    returned = returned_tensors(graph)
    consumers = graph.consumers()
    t = op.outputs[0]
    while t is not None:
        if id(t) in returned:
            return True
        readers = consumers.get(t, [])
        if len(readers) != 1 or readers[0].type not in _PASS or not readers[0].outputs:
            return False
        t = readers[0].outputs[0]
    return False


def head_layers(model: Model) -> list[Operator]:
    """The FULLY_CONNECTED layers with constant weights (at most MAX_HEAD_WEIGHTS) whose output
    the model returns (see `reaches_output`)."""
    g = model.main
    heads = []
    for op in g.operators:
        if op.type != "FULLY_CONNECTED" or len(op.inputs) < 2 or op.inputs[1] is None:
            continue
        w = op.inputs[1]
        if not w.is_constant or len(w.shape) != 2 or w.num_elements > MAX_HEAD_WEIGHTS:
            continue
        if op.inputs[0] is None or op.inputs[0].is_constant:
            continue
        if reaches_output(g, op):
            heads.append(op)
    return heads


def _inputs(model: Model, ops: list[Operator], samples: SampleSet) -> list[list[np.ndarray]]:
    """Per head, its float input rows [rows, K] per sample: the float model cut at the heads'
    inputs (they become its outputs), run in LiteRT."""
    from sdk.converters.tflite import serialize
    from sdk.run.runner import LiteRTRunner

    cut = computing(model, [op.inputs[0] for op in ops if op.inputs[0] is not None])
    wanted = cut.main.outputs
    data, _ = serialize(cut)
    outs = LiteRTRunner(data).outputs_for(samples)
    per_op = []
    for op in ops:
        k = op.inputs[1].shape[1]  # type: ignore[union-attr]
        i = next(j for j, t in enumerate(wanted) if t is op.inputs[0])
        x = np.asarray(outs[i], np.float64)
        per_op.append([x[j].reshape(-1, k) for j in range(len(samples))])
    return per_op


def _moments(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
    """(E[x x^T], E[x], rows) of input rows."""
    x = np.concatenate(rows)
    return x.T @ x / len(x), x.mean(axis=0), len(x)


def _error(e: np.ndarray, db: np.ndarray, second: np.ndarray, mean: np.ndarray) -> float:
    """E ||e x + db||^2 per input row from E[x x^T] and E[x]."""
    return float(np.einsum("ck,kl,cl->", e, second, e) + 2.0 * db @ (e @ mean) + db @ db)


def _held_error(w: np.ndarray, scales: np.ndarray, codes: np.ndarray,
                moments: tuple[np.ndarray, np.ndarray, np.ndarray]) -> float:
    """The error of codes * scales against `w` on held-out inputs, bias-corrected as the
    rewrite corrects it (the mean shift on the fit inputs); `moments`: (fit E[x], held-out
    E[x x^T], held-out E[x])."""
    fit_mean, second, mean = moments
    e = codes * scales[:, None] - w
    return _error(e, -(e @ fit_mean), second, mean)


def _db(error: float, signal: float) -> float:
    return 10.0 * math.log10(max(signal, 1e-30) / max(error, 1e-30))


def head_rounding(model: Model, samples: SampleSet) -> HeadRounding:
    """GPTQ codes for `model`'s output heads where the held-out calibration samples gain (see
    the module docstring); round to nearest elsewhere."""
    start = time.perf_counter()
    ops = head_layers(model)
    if not ops:
        return HeadRounding()
    split = held_out_split(samples)
    if split is None:
        return HeadRounding(skipped=f"head rounding: off ({len(samples)} calibration samples "
                                    "leave too few to hold out for its check; round to nearest)")
    fit, held = split
    try:
        rows = _inputs(model, ops, samples)
    except EdgeSDKError as exc:  # the float model does not run here: round to nearest
        return HeadRounding(skipped=f"head rounding: off (the float model did not run: {exc})")
    result = HeadRounding()
    n_fit = len(fit)
    for op, per_sample in zip(ops, rows, strict=True):
        fr, hr = per_sample[:n_fit], per_sample[n_fit:n_fit + len(held)]
        w_t, b_t = op.inputs[1], op.inputs[2] if len(op.inputs) > 2 else None
        assert w_t is not None
        w = w_t.numpy().astype(np.float64)
        b = b_t.numpy().astype(np.float64) if b_t is not None and b_t.is_constant \
            else np.zeros(w.shape[0])
        second, mean, _ = _moments(fr)
        hessian = 2.0 * second
        scales, q = symmetric_per_channel(w.astype(np.float32), 0, 127)
        s = np.asarray(scales, np.float64).reshape(-1)
        solved = gptq_quantize(w, hessian, -127, 127, scales=s)
        fitted = refit_scales(w, solved.codes, s, hessian)
        test_second, test_mean, _ = _moments(hr)
        signal = _error(w, b, test_second, test_mean)

        moments = (mean, test_second, test_mean)
        rtn = _held_error(w, s, np.asarray(q, np.float64).reshape(w.shape), moments)
        gptq = _held_error(w, fitted, solved.codes, moments)
        rtn_db = _db(rtn, signal)
        kept = gptq < rtn * (1.0 - MIN_GAIN) and rtn_db < MAX_RTN_DB
        name = layer_name(op)
        result.choices.append(StemChoice(name, rtn_db, _db(gptq, signal), kept))
        if kept:
            key = weight_key(w_t.numpy().astype(np.float32))
            result.solutions[key] = (fitted.astype(np.float32), solved.codes)
            result._names[key] = name
    result.seconds = time.perf_counter() - start
    return result



