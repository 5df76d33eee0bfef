"""The order ONNX nodes run in: `topological`, shared by the folder (`fold`), the subgraphs of
If / Loop (`control`) and the branch checks (`branches`)."""

from __future__ import annotations

import heapq
from typing import Any

from sdk.base.errors import ModelFormatError


def topological(nodes: list[Any], available: set[str], label: str) -> list[Any]:
    """NodeProtos in an order where each runs after its inputs' producers (stable: among the
    nodes that are ready, the first in the file goes first; linear time)."""
    producer: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for o in n.output:
            if o and o not in available:
                producer.setdefault(o, i)
    waiting = [0] * len(nodes)
    readers: dict[int, list[int]] = {}
    for i, n in enumerate(nodes):
        deps = {producer[x] for x in n.input if x and x not in available and x in producer}
        if any(x and x not in available and x not in producer for x in n.input):
            deps.add(-1)  # never produced: stays waiting, reported as a cycle/dangling read
        waiting[i] = len(deps)
        for d in deps:
            readers.setdefault(d, []).append(i)
    heap = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(heap)
    order: list[Any] = []
    while heap:
        i = heapq.heappop(heap)
        order.append(nodes[i])
        for r in readers.get(i, ()):
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(heap, r)
    if len(order) != len(nodes):
        stuck = nodes[next(i for i, w in enumerate(waiting) if w > 0)]
        raise ModelFormatError(f"the graph has a cycle through node "
                               f"{stuck.name or stuck.op_type!r}", path=label)
    return order


__all__ = ["topological"]
