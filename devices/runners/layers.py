"""Per-layer times for runners without an op profiler: every operator as a model of its own.

LiteRT's Python API times whole invocations only. `layer_bundle` cuts a .tflite model's main
graph into one single-operator model per operator (its non-constant inputs become the model's
inputs, its constants stay), packed in one file that the LiteRT Python runner times op by op.
Isolated times leave out what the operators share in the whole graph (caches, the arena), so
their sum differs from an end-to-end run: reports say which method produced them.

Bundle format: b"EDGELAYR", u32 little-endian length of a JSON header
{"layers": [{"index", "name", "op", "offset", "size"}]}, the header, then the models.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

#: LayerTime.kernel of isolated-op times
ISOLATED = "isolated op"
_SKIP = ("WHILE", "IF", "CALL_ONCE", "ASSIGN_VARIABLE", "READ_VARIABLE", "VAR_HANDLE")


def layer_bundle(model: str | os.PathLike[str]) -> bytes:
    """The bundle for `model` (operators LiteRT cannot run alone are left out)."""
    from sdk.converters import Graph, Model, read_tflite, to_tflite_bytes

    graph = read_tflite(os.fspath(model)).main
    entries, blobs, offset = [], [], 0
    for index, op in enumerate(graph.operators):
        if op.type in _SKIP or any(t is not None and t.is_variable for t in op.inputs):
            continue
        inputs = [t for t in op.inputs if t is not None and not t.is_constant]
        if not inputs:
            continue
        tensors = list(dict.fromkeys([*(t for t in op.inputs if t is not None), *op.outputs]))
        sub = Graph(name=f"layer{index}", tensors=tensors, operators=[op], inputs=inputs,
                    outputs=list(op.outputs))
        try:
            blob = to_tflite_bytes(Model(graphs=[sub], description=f"{op.type} {op.name}"))
        except Exception:  # an operator the writer cannot isolate is left out
            continue
        # TFLite operators have no names: the output tensor's is what Netron shows
        name = op.name or (op.outputs[0].name if op.outputs else "") or f"{op.type}_{index}"
        entries.append({"index": index, "name": name, "op": op.type, "offset": offset,
                        "size": len(blob)})
        blobs.append(blob)
        offset += len(blob)
    header = json.dumps({"layers": entries}).encode("utf-8")
    return b"EDGELAYR" + struct.pack("<I", len(header)) + header + b"".join(blobs)


def bundle_file(model: str | os.PathLike[str]) -> Path:
    """`layer_bundle(model)` as a host file, cached by the model's content."""
    from sdk.base.fileio import atomic_write_bytes
    from sdk.devices.base import sha256_file

    digest = sha256_file(model)[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgesdk" / \
        "layers"
    path = cache / f"{Path(model).stem}-{digest}.layers"
    if not path.exists():
        atomic_write_bytes(path, layer_bundle(model))
    return path
