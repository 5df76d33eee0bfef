"""The table of ONNX op converters: one handler per ONNX op type (default domain).

`supported_ops()` is generated from this table (the list in docs/onnx-input.md and the error
messages use it). Handlers live in modules named for the ops they hold; importing this package
registers them all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sdk.converters.onnx.graph import Node
    from sdk.converters.onnx.lowering import Lowering

Handler = Callable[["Lowering", "Node"], None]

#: ONNX op type (default domain) -> handler
HANDLERS: dict[str, Handler] = {}
#: our own node types made by pattern rewrites (domain "edgesdk")
INTERNAL: dict[str, Handler] = {}


def handles(*op_types: str, internal: bool = False) -> Callable[[Handler], Handler]:
    table = INTERNAL if internal else HANDLERS

    def register(fn: Handler) -> Handler:
        for t in op_types:
            if t in table:
                raise AssertionError(f"two handlers for {t}")
            table[t] = fn
        return fn

    return register


def handler_for(node: Node) -> Handler | None:
    from sdk.converters.onnx.graph import INTERNAL_DOMAIN

    if node.domain == INTERNAL_DOMAIN:
        return INTERNAL.get(node.op_type)
    if node.domain:
        return None
    return HANDLERS.get(node.op_type)


def supported_ops() -> list[str]:
    """The ONNX op types the importer converts (besides any op it can fold to a constant)."""
    return sorted(HANDLERS)


# register the handlers (imported for their side effect)
from sdk.converters.onnx.ops import (  # noqa: E402
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

__all__ = ["HANDLERS", "INTERNAL", "conv", "elementwise", "handler_for", "handles", "matmul",
           "norm", "pool", "recurrent", "reduce", "resize", "supported_ops", "tensor"]
