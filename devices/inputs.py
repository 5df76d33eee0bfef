"""The inputs of a model read on this host (`input_details`) and seeded random inputs for it
(`random_inputs`): what validation, the farm and the RKNN runner feed a device when no data is
given."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sdk.devices.errors import RunnerError


def input_details(model: str | os.PathLike[str]) -> list[tuple[str, tuple[int, ...], np.dtype]]:
    """(name, shape, dtype) of every input of a .tflite (LiteRT) or .edge (edgesdk runtime)
    model, read on this host."""
    path = Path(model)
    if path.suffix.lower() == ".tflite":
        from sdk.run.runner import LiteRTRunner

        return [(d.name, tuple(int(x) for x in d.shape), np.dtype(d.dtype))
                for d in LiteRTRunner(path.read_bytes()).inputs]
    if path.suffix.lower() == ".edge":
        from sdk.run.edge import EdgeModel

        return [(str(d["name"]), tuple(int(x) for x in d["shape"]), np.dtype(d["dtype"]))
                for d in EdgeModel(path, threads=1).get_input_details()]
    raise RunnerError(f"cannot read the inputs of {path.suffix or 'suffix-less'} models; "
                      "edgesdk validates .tflite and .edge")


def random_inputs(model: str | os.PathLike[str], samples: int, *, seed: int = 0
                  ) -> list[np.ndarray]:
    """Seeded random inputs for every model input, `samples` on axis 0: integers over the
    type's whole range, floats uniform in [0, 1). Agreement on them says the device computes
    what the host does; it says nothing of accuracy on real data."""
    if samples < 1:
        raise ValueError("samples must be >= 1")
    rng = np.random.default_rng(seed)
    arrays = []
    for _, shape, dtype in input_details(model):
        full = (samples, *shape[1:])
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            arrays.append(rng.integers(info.min, int(info.max) + 1, full).astype(dtype))
        elif np.issubdtype(dtype, np.bool_):
            arrays.append(rng.integers(0, 2, full).astype(dtype))
        else:
            arrays.append(rng.uniform(0, 1, full).astype(dtype))
    return arrays


__all__ = ["input_details", "random_inputs"]
