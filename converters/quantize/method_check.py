"""The whole-model check of ``weight_method="auto"``: its per-layer choice beside the plain
methods, compared at the model's outputs on calibration samples none of them was solved on.

`method_choice` picks each layer's rounding by that layer's own output error on held-out
samples. That objective does not see what later layers do with the error: on the corpus the
per-layer winners, each better than its runner-up, added up to a worse model than plain GPTQ on
oww_hey_mycroft (unrolled LSTMs, ternary 12.46 -> 1.16 dB) and ppocr_mobile_v2_cls (a saturated
2-class softmax, 2-bit 32.75 -> 12.82). So "auto" builds three candidates, the per-layer choice,
plain "gptq" and plain "adaround", each solved on alternate calibration samples (`halves`; one
Hessian pass for the three), measures each one's worst output SQNR on the other half against the
float model, and solves the winner again on all the samples (the plain methods' codes are then
what ``weight_method="gptq"`` / ``"adaround"`` write; their Hessians are the export's own).

Why not score the three full exports on the calibration samples themselves: each was fitted to
them. On small built FC stacks (4 layers of 64, ternary / 2-bit, 32-64 samples) that in-sample
comparison picked the method that fitted the samples best and lost 0.7-2.2 dB on new inputs to
the per-layer choice it rejected. The halves cost a second Hessian pass and three solves on half
the samples before the final one: about 2-3 x the per-layer choice alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from sdk.converters.quantize.gptq import WeightSolver

#: the plain methods the per-layer "auto" export is checked against, in the order tried (ties
#: go to the earlier candidate, "auto" itself first). Round to nearest is not one: as a fourth
#: candidate (tried twice, last on 2026-12-07 03:00 UTC when "auto" became the sub-byte
#: default) its check-half figure would have been kept on 3 of the 30 small fast-subset rows:
#: magika_v3_3 2-bit +0.13 dB on the held-out inputs, ppocr_mobile_v2_cls ternary 19.34 ->
#: 1.26 and 2-bit 24.29 -> 0.82 dB (a saturated 2-class softmax: its check half says 15-18 dB,
#: the held-out inputs 1 dB; benchmarks/results/subbyte-fidelity-2026-12-07.md)
PLAIN = ("gptq", "adaround")
#: the name of the per-layer candidate (method_choice's export)
PER_LAYER = "auto"
#: fewer calibration samples than this: no whole-model check (halves of under 4 samples say
#: nothing), the per-layer choice is kept
MIN_SAMPLES = 8

T = TypeVar("T")


@dataclass(frozen=True)
class WholeModelCheck:
    """Worst output SQNR (dB) of each candidate, solved on one half of the calibration
    samples, on the other half (`samples` of them), and the one kept."""

    chosen: str
    worst_db: dict[str, float]
    samples: int

    def describe(self) -> str:
        figures = ", ".join(f"{name} {db:.2f} dB" for name, db in self.worst_db.items())
        kept = "the per-layer choice" if self.chosen == PER_LAYER else \
            f"plain {self.chosen} (as weight_method={self.chosen!r} writes it)"
        return (f"weight_method=auto: whole-model check, each candidate solved on half the "
                f"calibration samples and its worst output SQNR measured on the other "
                f"{self.samples}: {figures}; kept {kept}, solved on all of them")


def worst_output_db(reference: Sequence[np.ndarray], got: Sequence[np.ndarray]) -> float:
    """The worst output's SQNR (dB) of `got` against the float outputs `reference`, energies
    summed over the samples (as the fidelity report's per-output SQNR)."""
    worst = math.inf
    for f, q in zip(reference, got, strict=True):
        f64 = np.asarray(f, np.float64)
        noise = float(((np.asarray(q, np.float64).reshape(f64.shape) - f64) ** 2).sum())
        signal = float((f64 ** 2).sum())
        if noise <= 0.0:
            continue
        worst = min(worst, 10.0 * math.log10(max(signal, 1e-30) / noise))
    return worst


def halves(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The fit and check halves of `n` calibration samples: alternate samples (as
    `method_choice` splits a layer's rows), so an ordered sample set gives both halves alike."""
    index = np.arange(n)
    return index[0::2], index[1::2]


def choose(build: Callable[[str], T], score: Callable[[T], float], samples: int,
           candidates: Sequence[str] | None = None) -> WholeModelCheck:
    """Each candidate (`PER_LAYER`, then `PLAIN`) built by `build(name)` on the fit half and
    scored by `score` (worst output SQNR in dB on the check half, higher is better); the best
    is named, ties to the earlier candidate. Each build is dropped once scored."""
    figures: dict[str, float] = {}
    for name in (PER_LAYER, *PLAIN) if candidates is None else candidates:
        figures[name] = score(build(name))
    best = max(figures, key=lambda n: (figures[n], -list(figures).index(n)))
    return WholeModelCheck(best, figures, samples)


def outputs_of(data: bytes, samples: Any, delegates: list[Any] | None = None
               ) -> list[np.ndarray]:
    """The outputs of the model `data` on `samples` (LiteRT, stacked per output)."""
    from sdk.run.runner import LiteRTRunner

    return LiteRTRunner(data, delegates=delegates).outputs_for(samples)


def plain_solver(solver: WeightSolver, method: str) -> WeightSolver:
    """A solver for `method` on `solver`'s Hessians and kept float inputs (collected once for
    every candidate): its codes are those `weight_method=method` alone writes."""
    return WeightSolver(method, hessians=solver.hessians, damp=solver.damp,
                        sequential=solver.sequential, model=solver.model,
                        samples=solver.samples, max_rows=solver.max_rows, seed=solver.seed,
                        centred=solver.centred, bias_corrected=solver.bias_corrected,
                        float_inputs=solver.float_inputs)


__all__ = ["MIN_SAMPLES", "PER_LAYER", "PLAIN", "WholeModelCheck", "choose", "halves",
           "outputs_of", "plain_solver", "worst_output_db"]
