"""Per-layer choice of the rounding method on held-out calibration samples
(``weight_method="auto"``).

    sdk.export(model, "ternary", calibration=images, weight_method="auto")

GPTQ and AdaRound minimise the same layer objective, the output error tr(dW H dW^T) with
H = 2 X^T X / n from the layer's calibration inputs, and each fits the H it is given: where few
rows estimate a wide H (a dense layer of K = 64 on 64 samples, the wide convolutions' 8192 rows)
the learned rounding fits that estimate's noise; elsewhere it wins clearly. Which one a layer
should get is not known in advance, and on the corpus the better method differs per model and
per scheme (oww_hey_mycroft ternary: GPTQ 12.5 dB, AdaRound 5.9; ppocr_mobile_v2_cls ternary:
6.5 vs 11.4). So each layer is solved by every candidate on one half of its calibration samples
(alternate samples), each candidate's scales refitted there as the export refits them, and
scored on the other half; the candidate with the least held-out output error is then solved on
all the rows and kept. Candidates (`CANDIDATES`):

- ``rtn``: round to nearest at the format's MSE scales (then the scale refit);
- ``gptq``: GPTQ, H damped 1 % of its mean diagonal;
- ``gptq-d10``: GPTQ damped 10 % (less trust in a noisy H);
- ``gptq-iter``: GPTQ, scale refit, GPTQ again at the refitted scales (scale and codes fitted
  jointly: the second pass rounds for the scale the first pass's codes want);
- ``adaround``: AdaRound (learned rounding), H damped 10 %;
- each of these ``-centred`` where the export's bias correction removes the mean of the
  layer's output error (a layer with a bias): solved for H = 2 Cov(X) instead of 2 E[X X^T],
  the error left after that correction. Every candidate is then scored by what is left on the
  held-out half after a correction fitted on the first half, 2 E_b[(x - m_a)(x - m_a)^T]: a
  mean that does not carry over from one half to the other counts against the centred fits.

This module holds the choice and its report; the solving is `gptq.WeightSolver`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from sdk.converters.quantize.adaround import output_error

CANDIDATES = ("rtn", "gptq", "gptq-d10", "gptq-iter", "adaround")
#: the name suffix of a candidate solved for the centred H (the error left after the bias
#: correction)
CENTRED = "-centred"

#: a candidate solved on the fit half: (codes [C, K], scales per value [C, K]: dequantised =
#: codes * scales)
Solve = Callable[[], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class LayerChoice:
    """One layer's held-out comparison: output error per candidate on the held-out half
    (relative to the layer's output energy there), and the winner."""

    layer: str
    chosen: str
    held_out: dict[str, float]

    def sqnr_db(self, method: str) -> float:
        """The held-out layer output SQNR (dB) of `method`'s codes."""
        rel = self.held_out[method]
        return float("inf") if rel <= 0 else -10.0 * float(np.log10(rel))


def held_out_choice(layer: str, target: np.ndarray, candidates: Mapping[str, Solve],
                    check: np.ndarray) -> LayerChoice:
    """Each candidate (solved on one half of the samples) scored with the Hessian `check` of
    the other half; ties go to the earlier (cheaper) candidate."""
    energy = output_error(target, np.zeros_like(target), check)
    scores: dict[str, float] = {}
    for name, solve in candidates.items():
        codes, per_value = solve()
        err = output_error(target, codes * per_value, check)
        scores[name] = err / energy if energy > 0 else err
    chosen = min(scores, key=lambda n: (scores[n], list(candidates).index(n)))
    return LayerChoice(layer, chosen, scores)


def describe(choices: list[LayerChoice]) -> str:
    """The report line: how many layers took each method, then each layer's choice and its
    held-out layer SQNR beside the best other candidate's."""
    counts: dict[str, int] = {}
    for c in choices:
        counts[c.chosen] = counts.get(c.chosen, 0) + 1
    head = ", ".join(f"{name} {n}" for name, n in counts.items())
    per_layer = []
    for c in choices:
        others = [m for m in c.held_out if m != c.chosen]
        runner_up = min(others, key=lambda m: c.held_out[m]) if others else None
        text = f"{c.layer}: {c.chosen} {c.sqnr_db(c.chosen):.1f} dB"
        if runner_up is not None:
            text += f" ({runner_up} {c.sqnr_db(runner_up):.1f})"
        per_layer.append(text)
    return (f"weight_method=auto: per layer the rounding with the least output error on held-out "
            f"calibration samples ({head}); " + "; ".join(per_layer))


__all__ = ["CANDIDATES", "CENTRED", "LayerChoice", "Solve", "describe", "held_out_choice"]
