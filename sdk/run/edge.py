"""Run `.edge` models in this process with the native runtime (the same code as `edge-run`).

    from sdk.run import EdgeModel
    model = EdgeModel("digits.edge", threads=2)
    probs = model.run(image)                  # one input -> list of outputs
    model.get_input_details()                 # like LiteRT's Interpreter
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sdk.base.errors import EdgeSDKError, ModelFormatError, UnsupportedOpError
from sdk.base.native import load as _load_native

#: Operators the C++ runtime runs (int8, plus QUANTIZE/DEQUANTIZE at float boundaries).
RUNTIME_OPS = (
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
    "FULLY_CONNECTED", "HARD_SWISH", "LOGISTIC", "MAX_POOL_2D", "MEAN", "MUL", "PAD", "QUANTIZE",
    "RESHAPE", "SOFTMAX", "TRANSPOSE",
)

_OP_RE = re.compile(r"(operator \d+ \((\w+)[^)]*\))")


class ModelInputError(EdgeSDKError, ValueError):
    """Input arrays do not fit the model (count, shape or dtype)."""


def _translate(exc: Exception, source: str) -> Exception:
    """A native runtime exception as the matching sdk.base.errors exception."""
    native = _load_native()
    message = str(exc)
    if isinstance(exc, native.EdgeUnsupportedError):
        match = _OP_RE.search(message)
        op_type, node = (match.group(2), match.group(1)) if match else ("?", "?")
        detail = message.split(": ", 2)[-1] if match else message
        return UnsupportedOpError(op_type, node, RUNTIME_OPS, source=source, detail=detail)
    if isinstance(exc, native.EdgeInputError):
        return ModelInputError(message)
    if isinstance(exc, (native.EdgeFormatError, native.EdgeIoError)):
        # the native message starts with the path already
        return ModelFormatError(message)
    return EdgeSDKError(message)


def _call(fn: Any, source: str, *args: Any) -> Any:
    native = _load_native()
    try:
        return fn(*args)
    except native.EdgeRuntimeError as exc:
        raise _translate(exc, source) from exc


@dataclass(frozen=True)
class LayerStat:
    index: int
    op: str
    label: str
    kernel: str
    runs: int
    mean_ms: float
    min_ms: float = 0.0
    # How many threads ran the layer (the pool's, or 1: the calling thread alone) and why
    # (pool jobs per run, a serial back-off, a split too small to hand over); profiled runs only.
    threads: int = 1
    threads_why: str = ""


class EdgeModel:
    """A .edge model loaded by the native runtime: checked, memory planned, ready to run.

    `threads`: kernel threads (None: one per physical core this thread may run on). `isa`:
    force a kernel ISA ("scalar", "avx2", ...). `profile`: time every layer on every run
    (`layer_stats()`).
    Errors: ModelFormatError (malformed file), UnsupportedOpError (an op or type the runtime
    lacks), ModelInputError (inputs that do not fit).
    """

    def __init__(self, path: str | os.PathLike[str] | bytes, threads: int | None = None, *,
                 isa: str | None = None, profile: bool = False):
        native = _load_native()
        if isinstance(path, (bytes, bytearray, memoryview)):
            self.path = "<bytes>"
            self._impl = _call(native.EdgeInterpreter.from_bytes, self.path, bytes(path),
                               threads or 0, isa or "", profile, self.path)
        else:
            self.path = str(Path(path))
            self._impl = _call(native.EdgeInterpreter, self.path, self.path, threads or 0,
                               isa or "", profile)
        self._inputs = self._impl.input_details()
        self._outputs = self._impl.output_details()

    # ------------------------------------------------------------------ details
    def get_input_details(self) -> list[dict[str, Any]]:
        """Per input: name, index, shape, dtype, quantization (scale, zero_point),
        quantization_parameters - the keys LiteRT's Interpreter uses."""
        return [dict(d) for d in self._inputs]

    def get_output_details(self) -> list[dict[str, Any]]:
        return [dict(d) for d in self._outputs]

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self._impl.metadata())

    @property
    def arena_bytes(self) -> int:
        return int(self._impl.arena_bytes)

    @property
    def scratch_bytes(self) -> int:
        return int(self._impl.scratch_bytes)

    @property
    def threads(self) -> int:
        return int(self._impl.threads)

    def layer_stats(self) -> list[LayerStat]:
        return [LayerStat(d["index"], d["op"], d["label"], d["kernel"], d["runs"], d["mean_ms"],
                          d["min_ms"], d["threads"], d["threads_why"])
                for d in self._impl.layer_stats()]

    def kernels(self) -> list[str]:
        """The kernel (with its ISA) each operator runs, in execution order."""
        return [s.kernel for s in self.layer_stats()]

    # ------------------------------------------------------------------ running
    def run(self, inputs: np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray]
            ) -> list[np.ndarray]:
        """Run once. `inputs`: one array (single-input models), a list in input order, or a
        dict by input name. Returns the outputs in order, as new arrays."""
        arrays = self._arrange(inputs)
        for i, array in enumerate(arrays):
            _call(self._impl.set_input, self.path, i, np.asarray(array))
        _call(self._impl.run, self.path)
        return [self._impl.get_output(i) for i in range(len(self._outputs))]

    def _arrange(self, inputs: Any) -> list[np.ndarray]:
        names = [d["name"] for d in self._inputs]
        if isinstance(inputs, Mapping):
            missing = [n for n in names if n not in inputs]
            extra = [n for n in inputs if n not in names]
            if missing or extra:
                raise ModelInputError(f"{self.path}: inputs by name need {names}; missing "
                                      f"{missing}, unknown {extra}")
            return [inputs[n] for n in names]
        if isinstance(inputs, np.ndarray) or np.isscalar(inputs):
            inputs = [inputs]
        arrays = list(inputs)
        if len(arrays) != len(names):
            raise ModelInputError(f"{self.path}: the model takes {len(names)} inputs "
                                  f"({names}), got {len(arrays)}")
        return arrays

    def __repr__(self) -> str:
        ins = ", ".join(f"{d['name']}:{d['edge_dtype']}{list(d['shape'])}" for d in self._inputs)
        return f"EdgeModel({self.path!r}, inputs=[{ins}], arena={self.arena_bytes} B)"
