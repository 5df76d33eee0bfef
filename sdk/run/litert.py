"""Find a LiteRT (TFLite) interpreter: ai-edge-litert, then tflite-runtime, then tf.lite.

The core of edgesdk depends on `ai-edge-litert`. Boards that cannot install it may still have
the legacy `tflite-runtime` (last release 2.14: it needs numpy<2 and rejects ops that newer
converters write, e.g. FULLY_CONNECTED version 12) or a full TensorFlow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import Any

from sdk.base.errors import RuntimeNotFoundError

#: The backends in the order we try them. EDGESDK_LITERT=<name> forces one.
BACKENDS = ("ai_edge_litert", "tflite_runtime", "tensorflow")


@dataclass(frozen=True)
class LiteRTBackend:
    """One importable interpreter implementation."""

    name: str
    version: str
    interpreter_class: Any
    load_delegate: Any
    #: the module's OpResolverType enum (None where the backend has none)
    op_resolver_types: Any = None

    def interpreter(self, model_path: str | None = None, *, model_content: bytes | None = None,
                    num_threads: int | None = None, delegates: list[Any] | None = None,
                    preserve_all_tensors: bool = False, xnnpack: bool = True,
                    reference_kernels: bool = False) -> Any:
        """An Interpreter for a model file or bytes.

        `xnnpack=False` runs LiteRT's own builtin kernels (no default delegate): the reference for
        bit-exact integer results, and the only mode where `preserve_all_tensors` keeps every
        intermediate tensor (XNNPACK fuses them away). `reference_kernels=True` runs TFLite's
        reference kernels instead (`BUILTIN_REF`, no XNNPACK either); their int8 requantisation
        rounds negative ties away from zero where the optimised builtin kernels round them up.
        """
        kwargs: dict[str, Any] = {}
        if not xnnpack or preserve_all_tensors or reference_kernels:
            if self.op_resolver_types is None:
                raise RuntimeNotFoundError(
                    f"{self.name} {self.version} cannot disable its default delegate")
            kwargs["experimental_op_resolver_type"] = (
                self.op_resolver_types.BUILTIN_REF if reference_kernels
                else self.op_resolver_types.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        if model_path is not None:
            kwargs["model_path"] = str(model_path)
        if model_content is not None:
            kwargs["model_content"] = model_content
        if num_threads is not None:
            kwargs["num_threads"] = num_threads
        if delegates:
            kwargs["experimental_delegates"] = delegates
        if preserve_all_tensors:
            kwargs["experimental_preserve_all_tensors"] = True
        return self.interpreter_class(**kwargs)


def _import_backend(name: str) -> LiteRTBackend:
    if name == "ai_edge_litert":
        import ai_edge_litert
        from ai_edge_litert import interpreter as mod

        version = getattr(ai_edge_litert, "__version__", "unknown")
        return LiteRTBackend(name, version, mod.Interpreter, mod.load_delegate,
                             getattr(mod, "OpResolverType", None))
    if name == "tflite_runtime":
        import tflite_runtime
        from tflite_runtime import interpreter as mod

        version = getattr(tflite_runtime, "__version__", "unknown")
        return LiteRTBackend(name, version, mod.Interpreter, mod.load_delegate,
                             getattr(mod, "OpResolverType", None))
    if name == "tensorflow":
        import tensorflow as tf

        return LiteRTBackend(name, tf.__version__, tf.lite.Interpreter,
                             tf.lite.experimental.load_delegate,
                             getattr(tf.lite.experimental, "OpResolverType", None))
    raise RuntimeNotFoundError(f"unknown LiteRT backend {name!r}; choose one of {BACKENDS}")


@cache
def backend(name: str | None = None) -> LiteRTBackend:
    """The first LiteRT backend that imports (or the one named, or $EDGESDK_LITERT)."""
    wanted = name or os.environ.get("EDGESDK_LITERT")
    candidates = (wanted,) if wanted else BACKENDS
    errors = []
    for candidate in candidates:
        try:
            return _import_backend(candidate)
        except ImportError as exc:
            errors.append(f"{candidate}: {exc}")
    raise RuntimeNotFoundError(
        "no LiteRT interpreter found; install one with `pip install ai-edge-litert` "
        "(tried " + "; ".join(errors) + ")"
    )
