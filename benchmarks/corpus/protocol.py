"""The measurement protocol shared by every corpus benchmark (`corpus.py`, `precision.py`,
`corpus_spread.py`): how many samples, drawn with which seeds.

Calibration samples use seed 1, held-out samples seed 2 (the same input recipes,
`inputs.make_samples`), for edgesdk and the peers alike. The held-out set is as large as the
calibration set, 32 samples, for every model. Until 2026-12-06 16:20 UTC it was
max(8, samples // 4), 8 at 32 calibration samples: on a model whose output is one value per
sample (a wake word's or a VAD's score) one sample of 8 set the row's SQNR, and task agreement
moved in steps of 12.5% (docs/real-models.md, "How it is measured"). `--heldout 8` reproduces
the tables measured before.
"""

from __future__ import annotations

#: calibration samples per model (the `--samples` default)
CALIBRATION = 32
#: held-out samples per model (the `--heldout` default), whatever `--samples` is
HELDOUT = 32
#: the seeds of `inputs.make_samples`: calibration, held-out
CALIBRATION_SEED = 1
HELDOUT_SEED = 2

