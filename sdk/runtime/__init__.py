"""Running models on this machine.

- `Interpreter` (sdk/runtime/interpreter.py): LiteRT with the edgesdk delegate loaded, for
  .tflite files (sub-byte models, and files holding edgesdk custom ops).
- `delegate_path` / `load_delegate` (sdk/runtime/delegate.py): the delegate library itself, for
  your own `ai_edge_litert.interpreter.Interpreter(..., experimental_delegates=[...])`.
- `EdgeModel` (sdk/runtime/edge.py): `.edge` files on the native runtime (issue 5).

One module per runtime; names resolve lazily so `import sdk.runtime` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY: dict[str, tuple[str, str]] = {
    "Interpreter": ("sdk.runtime.interpreter", "Interpreter"),
    "DelegateReport": ("sdk.runtime.delegate", "DelegateReport"),
    "delegate_path": ("sdk.runtime.delegate", "delegate_path"),
    "load_delegate": ("sdk.runtime.delegate", "load_delegate"),
    "EdgeModel": ("sdk.runtime.edge", "EdgeModel"),
    "LayerStat": ("sdk.runtime.edge", "LayerStat"),
    "ModelInputError": ("sdk.runtime.edge", "ModelInputError"),
    "RUNTIME_OPS": ("sdk.runtime.edge", "RUNTIME_OPS"),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'sdk.runtime' has no attribute {name!r}") from None
    value = getattr(import_module(module_name), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
