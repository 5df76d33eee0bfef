"""The digits CNN exported once per weight-rounding method (issue 15: test_subbyte_gptq.py's GPTQ
and test_adaround.py's AdaRound exports, each against round to nearest)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sdk.examples import DigitsData
    from sdk.results import ExportResult


@dataclass
class MethodRun:
    """One method's export of the digits CNN, run on the test set."""

    result: ExportResult
    accuracy: float  # on digits.x_test
    sqnr_db: float  # of its outputs against the float model's


def export_by_method(source: Path, scheme: str, methods: Sequence[str], digits: DigitsData,
                     out_dir: Path, tag: str | None = None, **options: Any
                     ) -> dict[str, ExportResult]:
    """sdk.export(source, scheme) once per weight method, calibrated on the training set and
    validated on the test set, without the per-layer report: {method: result}. The files are
    out_dir / "<tag>_<method>.tflite" (tag: the scheme unless given)."""
    import sdk

    return {method: sdk.export(source, scheme, calibration=digits.x_train,
                               validation=digits.x_test, weight_method=method, per_layer=False,
                               output=out_dir / f"{tag or scheme}_{method}.tflite", report=False,
                               **options)
            for method in methods}


def outputs_on_test_set(path: Path, digits: DigitsData, custom_ops: bool = False) -> np.ndarray:
    """The model's outputs on the test set, one sample per invoke (LiteRT; with the edgesdk
    delegate where the file holds its custom ops)."""
    from sdk.run.delegate import load_delegate
    from sdk.run.runner import LiteRTRunner

    runner = LiteRTRunner(path.read_bytes(), delegates=[load_delegate()] if custom_ops else None)
    x = digits.x_test
    return np.concatenate([runner.invoke([x[i:i + 1]])[0] for i in range(len(x))])


def accuracy(outputs: np.ndarray, digits: DigitsData) -> float:
    return float((outputs.argmax(1) == digits.y_test).mean())


def runs_by_method(source: Path, scheme: str, methods: Sequence[str], digits: DigitsData,
                   out_dir: Path) -> tuple[float, dict[str, MethodRun]]:
    """The float model's test-set accuracy, and each method's export run on the test set."""
    ref = outputs_on_test_set(source, digits)
    runs = {}
    for method, r in export_by_method(source, scheme, methods, digits, out_dir).items():
        out = outputs_on_test_set(r.path, digits, bool(r.custom_ops))
        sqnr = float(10 * np.log10((ref ** 2).sum() / ((out - ref) ** 2).sum()))
        runs[method] = MethodRun(r, accuracy(out, digits), sqnr)
    return accuracy(ref, digits), runs
