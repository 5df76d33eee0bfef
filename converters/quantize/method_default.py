"""What ``weight_method=None`` means for a sub-byte export (issue 15: a default users can trust).

    sdk.export(model, "int4", calibration=images)      # weight_method=None: "auto" here

A user who passes calibration data and asks for "int4", "ternary" or "int2" expects the best
rounding the SDK has at an affordable cost, not round to nearest. On the 30 rows where every
method was measured (10 small fast-subset corpus models x 3 schemes, worst output SQNR, int8
activations; benchmarks/results/subbyte-fidelity-2026-12-07.md) the medians rtn / gptq /
adaround / auto are INT4 15.66 / 19.02 / 21.77 / 20.88 dB, ternary 2.77 / 11.33 / 11.56 / 13.43,
2-bit 1.73 / 13.87 / 11.77 / 14.04; auto (per-layer choice among rtn / GPTQ / AdaRound, then the
whole-model check against plain GPTQ and AdaRound, `method_choice` / `method_check`) beats gptq
on 14 rows, ties on 9, loses on 7, and is under round to nearest on 2 (gptq: 6 of its 48 rows).
Which rounding holds on a model is not known before measuring (the same row moves by up to 12 dB
between two calibration draws); auto measures it, for 5-35 x gptq's CPU time (the digits CNN:
rtn 0.4, gptq 1.1, auto 9.2 CPU s; the small corpus models 15-52 s with the one-fold whole-model
check, about 1.6 x that with its two folds since 7676c91: silero_vad INT4 22.5 -> 36.5 s). Over
the 16 fast-subset models the default's INT4 median is 20.88 / 21.21 dB on two calibration
draws (all 16 rows of each, 031e202; 18.76 on the first with the one-fold check). Ternary is
another matter (stop 27, ecf3398, all 16 rows): median 12.27 / 9.54 dB against
plain GPTQ's 12.62 / 10.37; auto beats GPTQ on 9 rows and loses on 5, but on the middle ones
(oww_hey_mycroft 5.92 / 2.99 against 12.46 / 5.84, silero_vad's second draw 0.24 against 11.20:
the check kept plain AdaRound on 15.80 dB over its halves). Stop 28 measured both side by
side at one commit (2d51850, the wake-word heads on their spoken sets; 15:17 section): ternary
auto above GPTQ on 7 of 14 pairs, equal on 2, under on 5; 2-bit auto above on 8 of 12, equal on
4, under on none. Stop 29 redid the ternary pairs after GPTQ's ternary refit rounds (27b84dd),
at 52f34d1 (the same ternary path; all 22 small-model pairs; 18:25 section): auto above GPTQ on
4 / 6 (draws 1 / 2; oww_hey_mycroft 18.44 / 13.33 against 8.89 / 7.43, the middle row of both),
equal on 5 / 2, under on 2 / 3 (silero_vad's second draw 7.72 against 11.34, magika and
mp_hand_recrop's second, oww_alexa and mp_selfie's first); over the 16 auto's median is 17.01 /
13.91 dB against GPTQ's 14.80 / 12.29. GPTQ is not shown as good or better, so with real
calibration data a sub-byte scheme defaults to ``"auto"``, ternary and 2-bit too, for 11.5 x
GPTQ's CPU time (benchmarks/results/subbyte-fidelity-2026-12-07.md, 11:57, 15:17 and 18:25
sections). Stop 30 redid all 22 ternary pairs after GPTQ's held-out choice of its rounds
(34213c9; clean 1a12d44 and 84d2f23; 22:02 section): where auto lost, its whole-model check had
mostly kept plain AdaRound (on 2 of those pairs its re-solve on all the samples scored under
both of its check-half builds), so at ternary the check leaves AdaRound out
(`method_check.check_candidates`): that raised the 5 pairs where it was kept to the per-layer
choice's or GPTQ's file (ppocr_mobile_v2_cls draw 2 17.59 -> 29.57 dB, silero_vad draw 2 7.72
-> 11.54) and lowered none. With it auto is
above GPTQ on 2 / 4 pairs (draws 1 / 2), equal on 7 / 5, under on 2 / 2; over the 16 its median
is 16.56 / 13.73 dB against GPTQ's 15.10 / 12.86. So the ternary default stays ``"auto"``
(2-bit: stop 28's pairs, its path unchanged), at 8.9 x GPTQ's CPU time.

Where it does not apply, and why (the export's notes say which method ran and why):

- scheme "int8" (and "int16x8"): the default INT8 export is not changed (its own GPTQ stem and
  head rounding already choose codes where held-out samples show a gain);
- "mixed", or ``target_sqnr=``: they build and measure 10-40 exports, and each would solve every
  layer again (their default stays round to nearest; pass ``weight_method=`` to choose);
- synthetic calibration data: random inputs say nothing of the real Hessians, so there is
  nothing for a solver to fit (round to nearest);
- a QAT model: its trained codes are exported as they are;
- a model with more than `AUTO_MAX_WEIGHTS` float weights: auto solves every layer five to
  ten times (per-layer candidates, then three whole-model candidates), about 5 x AdaRound's work,
  and AdaRound alone took 574-3,514 s of wall on the fast subset's five models of 1.2-13.5 M
  weights (ppocr_v4_det .. ddddocr_rec), where the eleven under 1 M (27 k - 784 k weights) take
  15-52 CPU s with auto. Above the bound the default is ``"gptq"`` (one solve per layer: the
  fast subset's INT4 median 17.90 dB against rtn's 13.89; ppocr_v4_det 66 CPU s), which the note
  says, with ``weight_method="auto"`` to run auto anyway.

An explicit ``weight_method`` is always honoured (``"rtn"`` for the old default's speed: MSE
scales and round to nearest for every format).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: the schemes whose default weight method is `DEFAULT_SUBBYTE_METHOD` (with real calibration)
SUBBYTE_SCHEMES = ("int4", "ternary", "int2")
#: the sub-byte default with real calibration data
DEFAULT_SUBBYTE_METHOD = "auto"
#: above this many float weights the sub-byte default is `LARGE_MODEL_METHOD` (module docstring)
AUTO_MAX_WEIGHTS = 1_000_000
#: the sub-byte default for models over `AUTO_MAX_WEIGHTS`: one solve per layer
LARGE_MODEL_METHOD = "gptq"


@dataclass(frozen=True)
class DefaultMethod:
    """The weight method ``weight_method=None`` resolves to (None: each weight format's own
    rule, round to nearest) and the report's note saying why."""

    method: str | None
    why: str

    def note(self) -> str:
        ran = self.method if self.method is not None else "none (the format's own scales, " \
            "round to nearest)"
        return f"weight_method not given: {ran}, {self.why}"


def float_weights(model: Any) -> int:
    """Elements of the float constant tensors (the weights) of the model's main graph, each
    tensor counted once however many operators read it."""
    from sdk.converters.ir import DType

    seen: set[int] = set()
    total = 0
    for t in model.main.referenced_tensors():
        if t.is_constant and t.dtype in (DType.FLOAT32, DType.FLOAT16) and id(t) not in seen:
            seen.add(id(t))
            total += int(np.prod(t.shape)) if t.shape else 1
    return total


def default_weight_method(scheme: str, *, synthetic: bool, target_sqnr: float | None = None,
                          qat: bool = False, weights: int = 0) -> DefaultMethod:
    """What ``weight_method=None`` means for this export (see the module docstring);
    `weights`: the model's float weights (`float_weights`)."""
    if scheme not in SUBBYTE_SCHEMES:
        return DefaultMethod(None, f"the {scheme} scheme's default")
    if qat:
        return DefaultMethod(None, "a QAT model's trained codes are exported as trained")
    if synthetic:
        return DefaultMethod(None, "synthetic calibration data: no real layer inputs to solve "
                                   "the rounding for (pass real samples for weight_method=auto)")
    if target_sqnr is not None:
        return DefaultMethod(None, "target_sqnr= builds and measures many plans and would "
                                   "solve every layer for each (pass weight_method= to choose)")
    if weights > AUTO_MAX_WEIGHTS:
        return DefaultMethod(LARGE_MODEL_METHOD,
                             f"the {scheme} default with calibration data for a model of "
                             f"{weights:,} weights (over {AUTO_MAX_WEIGHTS:,}, where auto's "
                             "five to ten solves per layer take minutes to hours): GPTQ, one "
                             "solve per layer (weight_method='auto' to run auto anyway, 'rtn' "
                             "for round to nearest)")
    return DefaultMethod(DEFAULT_SUBBYTE_METHOD,
                         f"the {scheme} default with calibration data: per layer the best of "
                         "rtn / GPTQ / AdaRound on held-out calibration samples, then checked "
                         "against plain GPTQ and AdaRound at the model's outputs "
                         "(weight_method='rtn' for the fast round-to-nearest export)")


__all__ = ["AUTO_MAX_WEIGHTS", "DEFAULT_SUBBYTE_METHOD", "LARGE_MODEL_METHOD", "SUBBYTE_SCHEMES",
           "DefaultMethod", "default_weight_method", "float_weights"]
