"""The run layer: running models on this machine (above sdk.base; converters and devices use it).

- `Interpreter` (sdk/run/interpreter.py): LiteRT with the edgesdk delegate loaded, for
  .tflite files (sub-byte models, and files holding edgesdk custom ops).
- `delegate_path` / `load_delegate` (sdk/run/delegate.py): the delegate library itself, for
  your own `ai_edge_litert.interpreter.Interpreter(..., experimental_delegates=[...])`.
- `EdgeModel` (sdk/run/edge.py): `.edge` files on the native runtime (issue 5).
- `LiteRTRunner` (sdk/run/runner.py): a .tflite over many samples (batching, int8 I/O,
  intermediate tensors); `backend` (sdk/run/litert.py): which LiteRT package is installed.
- `sdk/run/fidelity.py`: output / layer fidelity metrics and the `FidelityReport`.

One module per runtime; names resolve lazily so `import sdk.run` stays light.
"""
from __future__ import annotations

from sdk.base.lazy import lazy_names

_LAZY: dict[str, tuple[str, str]] = {
    "Interpreter": ("sdk.run.interpreter", "Interpreter"),
    "DelegateReport": ("sdk.run.delegate", "DelegateReport"),
    "delegate_path": ("sdk.run.delegate", "delegate_path"),
    "load_delegate": ("sdk.run.delegate", "load_delegate"),
    "EdgeModel": ("sdk.run.edge", "EdgeModel"),
    "LayerStat": ("sdk.run.edge", "LayerStat"),
    "ModelInputError": ("sdk.run.edge", "ModelInputError"),
    "RUNTIME_OPS": ("sdk.run.edge", "RUNTIME_OPS"),
    "LiteRTRunner": ("sdk.run.runner", "LiteRTRunner"),
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
