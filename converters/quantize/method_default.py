"""What ``weight_method=None`` means for a sub-byte export (issue 15: a default users can trust).

    sdk.export(model, "int4", calibration=images)      # weight_method=None: "auto" here

A user who passes calibration data and asks for "int4", "ternary" or "int2" expects the best
rounding the SDK has at an affordable cost, not round to nearest. Over the 16 fast-subset
corpus models (worst output SQNR, int8 activations; benchmarks/results/
subbyte-fidelity-2026-12-07.md) round to nearest gives medians of 13.89 (INT4), 1.73
(ternary) and 1.17 dB (2-bit); ``"auto"`` (per-layer choice among rtn / GPTQ / AdaRound, then
the whole-model check against plain GPTQ and AdaRound, `method_choice` / `method_check`) is the
method with the highest medians, and the check keeps the worst case near the better plain
method. So with real calibration data a sub-byte scheme defaults to ``"auto"``.

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
