"""The ONNX op converters: one handler per ONNX op type (default domain), registered in the
table of `sdk.converters.onnx.registry`.

`supported_ops()` is generated from that table (the list in docs/onnx-input.md and the error
messages use it). Handlers live in modules named for the ops they hold; importing this package
registers them all.
"""

from __future__ import annotations

# register the handlers (imported for their side effect)
from sdk.converters.onnx.ops import (
    conv,
    elementwise,
    matmul,
    norm,
    pool,
    recurrent,
    reduce,
    resize,
    tensor,
)
from sdk.converters.onnx.registry import (
    HANDLERS,
    INTERNAL,
    Handler,
    handler_for,
    handles,
    supported_ops,
)

__all__ = ["HANDLERS", "INTERNAL", "Handler", "conv", "elementwise", "handler_for", "handles",
           "matmul", "norm", "pool", "recurrent", "reduce", "resize", "supported_ops", "tensor"]
