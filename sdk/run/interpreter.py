"""LiteRT with the edgesdk delegate loaded: `sdk.run.Interpreter`.

    from sdk.run import Interpreter
    interp = Interpreter("digits_ternary.tflite", num_threads=2)
    probs = interp.run(image)[0]                 # or LiteRT's own API: set_tensor/invoke/...
    interp.report.claimed                        # nodes the delegate runs, with their kernels

Everything LiteRT's `Interpreter` offers is there (attribute access is forwarded). The
delegate takes the FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D nodes it runs (sub-byte and
int8 weights with int8 activations, the same weights with float activations: dynamic range,
and the edgesdk custom ops); XNNPACK (or LiteRT's builtin kernels with `xnnpack=False`) runs the
rest. `delegate=False` gives stock LiteRT, with a clear error for files that need the delegate.
`precisions=("int4",)`, `precisions=("static",)` (leave dynamic-range nodes to LiteRT) etc.
choose what it takes, so the paths can be compared. Of those, it claims only the nodes where its
kernel is faster than what LiteRT would run (XNNPACK or the builtin kernels: its cost rule,
native/src/delegate/cost_rule.h; `interp.report` says per node why); `claim="all"` takes every
node it can run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sdk.base.errors import EdgeSDKError
from sdk.run.delegate import DelegateReport, explain_load_error, load_delegate
from sdk.run.litert import backend


class Interpreter:
    """A LiteRT interpreter for a .tflite model, with the edgesdk delegate."""

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *,
                 model_content: bytes | None = None, num_threads: int | None = None,
                 delegate: bool = True, precisions: Iterable[str] | None = None,
                 ops: Iterable[str] | None = None, isa: str | None = None,
                 xnnpack: bool = True, experimental_delegates: Sequence[Any] | None = None,
                 claim: str | None = None):
        if (model_path is None) == (model_content is None):
            raise ValueError("give exactly one of model_path and model_content")
        self.report: DelegateReport | None = None
        delegates = list(experimental_delegates or [])
        report_file = None
        if delegate:
            fd, report_file = tempfile.mkstemp(prefix="edgesdk-delegate-", suffix=".json")
            os.close(fd)
            # The delegate's claim rule compares with what LiteRT runs for the nodes it leaves.
            self._delegate = load_delegate(precisions=precisions, ops=ops,
                                           num_threads=num_threads, isa=isa, claim=claim,
                                           litert_kernels="xnnpack" if xnnpack else "builtin",
                                           report=report_file)
            delegates.insert(0, self._delegate)
        try:
            self._interp = backend().interpreter(
                str(model_path) if model_path is not None else None,
                model_content=model_content, num_threads=num_threads, delegates=delegates,
                xnnpack=xnnpack)
            if report_file is not None and Path(report_file).stat().st_size:
                self.report = DelegateReport.from_file(report_file)
        except (ValueError, RuntimeError) as exc:
            explained = explain_load_error(exc)
            if explained is not None:
                raise explained from exc
            raise EdgeSDKError(f"LiteRT cannot load the model: {exc}") from exc
        finally:
            if report_file is not None:
                Path(report_file).unlink(missing_ok=True)
        self._allocated = False

    def __getattr__(self, name: str) -> Any:
        # LiteRT's API: allocate_tensors, set_tensor, invoke, get_tensor, get_input_details, ...
        return getattr(self._interp, name)

    def allocate_tensors(self) -> None:
        try:
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            explained = explain_load_error(exc)
            if explained is not None:
                raise explained from exc
            raise
        self._allocated = True

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Feed the inputs (in the model's input order; a different batch resizes), invoke,
        return copies of the outputs."""
        details = self._interp.get_input_details()
        if len(inputs) != len(details):
            raise ValueError(f"the model has {len(details)} inputs, got {len(inputs)}")
        resized = False
        for d, x in zip(details, inputs, strict=True):
            if tuple(np.shape(x)) != tuple(d["shape"]):
                self._interp.resize_tensor_input(d["index"], list(np.shape(x)))
                resized = True
        if resized or not self._allocated:
            self.allocate_tensors()
        for d, x in zip(details, inputs, strict=True):
            self._interp.set_tensor(d["index"], np.asarray(x, dtype=d["dtype"]))
        self._interp.invoke()
        return [self._interp.get_tensor(d["index"]).copy()
                for d in self._interp.get_output_details()]


__all__ = ["Interpreter"]
