"""The two-branch net of the mixed-precision tests (issue 15: test_mixed_precision.py's byte
budgets, test_mixed_latency.py's latency budgets) and its calibration data."""

from __future__ import annotations

import numpy as np


def two_branch_net():
    """Two Dense layers of the same size reading one input whose channels share a large mean
    (5 +- 0.3), summed. "centred": every output's weights sum to zero, so its output is the
    small variation only and any weight error times the mean swamps it (sensitive). "plain":
    Gaussian weights, its output mostly the mean's (insensitive)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(3)
    rng = np.random.default_rng(0)
    inp = tf.keras.Input((64,))
    centred = tf.keras.layers.Dense(64, name="centred")
    plain = tf.keras.layers.Dense(64, name="plain")
    model = tf.keras.Model(inp, tf.keras.layers.Add()([centred(inp), plain(inp)]))
    w = rng.standard_normal((64, 64)).astype(np.float32)
    centred.set_weights([w - w.mean(axis=0), np.zeros(64, np.float32)])
    plain.set_weights([rng.standard_normal((64, 64)).astype(np.float32) * 0.1,
                       np.zeros(64, np.float32)])
    return model


def two_branch_data() -> np.ndarray:
    """120 calibration samples: every channel 5 +- 0.3."""
    return (5 + 0.3 * np.random.default_rng(1).standard_normal((120, 64))).astype(np.float32)
