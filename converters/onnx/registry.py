"""The table of ONNX op handlers (`HANDLERS`, `INTERNAL`), the `handles` decorator that fills it
and `supported_ops()`, read from it. The handlers themselves live in `sdk.converters.onnx.ops`,
which registers them all when imported; `lowering` reads the table from here, below them."""

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


__all__ = ["HANDLERS", "INTERNAL", "Handler", "handler_for", "handles", "supported_ops"]
