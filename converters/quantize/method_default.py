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
between two calibration draws); auto measures it, for 5-20 x gptq's CPU time (the digits CNN:
rtn 0.4, gptq 1.1, auto 9.2 CPU s; the small corpus models 15-52 s). So with real calibration
data a sub-byte scheme defaults to ``"auto"``.

Where it does not apply, and why (the export's notes say which method ran and why):

- scheme "int8" (and "int16x8"): the default INT8 export is not changed (its own GPTQ stem and
  head rounding already choose codes where held-out samples show a gain);
- "mixed", or ``target_sqnr=``: they build and measure 10-40 exports, and each would solve every
  layer again (their default stays round to nearest; pass ``weight_method=`` to choose);
- synthetic calibration data: random inputs say nothing of the real Hessians, so there is
  nothing for a solver to fit (round to nearest);
- a QAT model: its trained codes are exported as they are.

An explicit ``weight_method`` is always honoured (``"rtn"`` for the old default's speed: MSE
scales and round to nearest for every format).
"""

from __future__ import annotations

from dataclasses import dataclass

#: the schemes whose default weight method is `DEFAULT_SUBBYTE_METHOD` (with real calibration)
SUBBYTE_SCHEMES = ("int4", "ternary", "int2")
#: the sub-byte default with real calibration data
DEFAULT_SUBBYTE_METHOD = "auto"


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


def default_weight_method(scheme: str, *, synthetic: bool, target_sqnr: float | None = None,
                          qat: bool = False) -> DefaultMethod:
    """What ``weight_method=None`` means for this export (see the module docstring)."""
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
    return DefaultMethod(DEFAULT_SUBBYTE_METHOD,
                         f"the {scheme} default with calibration data: per layer the best of "
                         "rtn / GPTQ / AdaRound on held-out calibration samples, then checked "
                         "against plain GPTQ and AdaRound at the model's outputs "
                         "(weight_method='rtn' for the fast round-to-nearest export)")


__all__ = ["DEFAULT_SUBBYTE_METHOD", "SUBBYTE_SCHEMES", "DefaultMethod", "default_weight_method"]
