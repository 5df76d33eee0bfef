"""Exporting a QAT model: its trained grid and ranges, for `sdk.export` (no TensorFlow import
until a QAT model is given).

`qat_export(model)` (in `sdk.converters.qat.deploy`) is None for any model `sdk.qat.prepare` did
not make. For a QAT model it returns a `QatExport`:

- `model`: the deployable float Keras model: the same layers without fake quantisation, each
  kernel replaced by codes x scales (BatchNorm folded), so TensorFlow's converter sees plain
  float layers whose weights already lie on the trained grid;
- `solver()`: what the exporter wraps its INT8 rewrite in (a `WeightSolver`): every weight
  format asks it for the codes and scales of a layer's weights and gets the trained ones,
  checked to reproduce the weights exactly; a trained layer left unmatched (scheme or options
  differing from `prepare`'s) is a `QatError`;
- `pin_ranges(calibration, float_model)`: the activation ranges of the model input and of every
  weighted layer's (and global pooling's) output replaced by the trained EMA ranges (pass-through
  ops, max pooling and reshapes, take their input's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sdk.converters.ir import Model, Tensor
from sdk.converters.qat.errors import QatError
from sdk.converters.quantize.calibrate import Calibration
from sdk.converters.quantize.gptq import WeightSolver

#: IR ops whose outputs carry a trained range, in the order of the QAT model's ActQuant layers
RANGED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN")
PASS_THROUGH_OPS = ("MAX_POOL_2D", "RESHAPE", "SQUEEZE")
#: |w / s - round(w / s)| allowed when matching weights to their trained grid
GRID_TOLERANCE = 1e-3


@dataclass
class WeightPin:
    layer: str
    fmt: str
    codes: np.ndarray  # [K, C]
    scales: np.ndarray  # [C]
    used: bool = False

    def match(self, w: np.ndarray, axis: int, qmin: int, qmax: int) -> np.ndarray | None:
        """The codes (shaped like `w`) if `w` is this layer's weights on its grid, else None."""
        moved = np.moveaxis(np.asarray(w, np.float64), axis, 0)
        rows = moved.reshape(moved.shape[0], -1)
        if rows.shape[0] != self.scales.size or rows.size != self.codes.size:
            return None
        q = rows / self.scales.astype(np.float64)[:, None]
        r = np.round(q)
        if r.size and (np.abs(q - r).max() > GRID_TOLERANCE or r.min() < qmin or r.max() > qmax):
            return None
        return np.moveaxis(r.reshape(moved.shape), 0, axis)


@dataclass
class PinnedSolver(WeightSolver):
    """The exporter's weight solver for a QAT model: the trained codes and scales."""

    pins: list[WeightPin] = field(default_factory=list)

    def solve(self, w: np.ndarray, axis: int, qmin: int, qmax: int, *,
              scales: np.ndarray | None = None, group_size: int = 0,
              group_scale: Any = None, refit: bool = True
              ) -> tuple[np.ndarray, np.ndarray] | None:
        if group_size:
            return None
        for pin in self.pins:
            if pin.used:
                continue
            codes = pin.match(w, axis, qmin, qmax)
            if codes is not None:
                pin.used = True
                return pin.scales.astype(np.float32), codes
        return None

    def __exit__(self, *exc: object) -> None:
        failed = exc and exc[0] is not None
        unused = [f"{p.layer} ({p.fmt})" for p in self.pins if not p.used]
        for pin in self.pins:
            pin.used = False  # the exporter may quantise again (target_sqnr)
        super().__exit__(*exc)
        if unused and not failed:
            raise QatError(f"the export did not quantise {', '.join(unused)} on the trained "
                           "grid: export with the scheme and scheme_options given to "
                           "sdk.qat.prepare, without precision= overrides or target_sqnr= "
                           "that keep trained layers in another precision")
        if not failed and not self.notes:
            self.notes.append(f"QAT: {len(self.pins)} weighted layer(s) on their trained grid "
                              "(codes and scales from sdk.qat), activation ranges from the "
                              "trained EMA ranges")


@dataclass
class QatExport:
    scheme: str
    scheme_options: dict[str, Any]
    model: Any
    pins: list[WeightPin]
    input_range: tuple[float, float]
    point_ranges: list[tuple[str, float, float]]

    def check(self, scheme: str, scheme_options: dict[str, Any], activations: str) -> None:
        if scheme != self.scheme or dict(scheme_options) != self.scheme_options:
            raise QatError(f"this QAT model was prepared for {self.scheme!r} "
                           f"{self.scheme_options or ''}; exporting it as {scheme!r} "
                           f"{dict(scheme_options) or ''} would not keep its trained grid")
        if activations != "int8":
            raise QatError(f"a QAT model is exported with int8 activations, not {activations!r}")

    def solver(self, model: Model) -> PinnedSolver:
        return PinnedSolver("gptq", model=model, pins=self.pins)

    def pin_ranges(self, cal: Calibration, model: Model) -> None:
        """Replace the calibrated ranges of the trained tensors with the trained ones."""
        g = model.main
        if len(g.inputs) != 1:
            raise QatError(f"a QAT model has one input; the .tflite has {len(g.inputs)}")
        pinned: dict[Tensor, tuple[float, float]] = {g.inputs[0]: self.input_range}
        points = iter(self.point_ranges)
        count = 0
        for op in g.operators:
            if op.type in RANGED_OPS:
                item = next(points, None)
                if item is None:
                    raise QatError(f"the .tflite has more ranged ops than the QAT model "
                                   f"({op.type} at {count})")
                count += 1
                pinned[op.outputs[0]] = (item[1], item[2])
            elif op.type in PASS_THROUGH_OPS and op.inputs[0] in pinned:
                pinned[op.outputs[0]] = pinned[op.inputs[0]]
        if count != len(self.point_ranges):
            raise QatError(f"the .tflite has {count} weighted / pooling outputs, the QAT model "
                           f"{len(self.point_ranges)} trained ranges")
        for t, rng in pinned.items():
            if t in cal.ranges:
                cal.ranges[t] = (float(rng[0]), float(rng[1]))


__all__ = ["GRID_TOLERANCE", "PinnedSolver", "QatExport", "WeightPin"]
