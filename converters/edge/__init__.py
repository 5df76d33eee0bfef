"""The `.edge` format: edgesdk's own FlatBuffers model file, run by the dependency-free C++
runtime and `edge-run`. Schema: native/schema/edge.fbs; specification: docs/edge-format.md.

Importing this package registers the output format ``edge`` (suffix ``.edge``) for
`sdk.export`: the same quantised IR as the .tflite path, measured for fidelity with the .edge
runtime itself (`sdk.run.EdgeModel`).
"""

from typing import Any

from sdk.converters.edge.reader import EdgeFile, EdgeOperator, EdgeTensor, read_edge
from sdk.converters.edge.writer import file_sha256, serialize, to_edge_bytes, write_edge
from sdk.converters.formats import OutputFormat, register_format


def _runner(data: bytes) -> Any:
    from sdk.run import EdgeModel

    return EdgeModel(data)


EDGE_FORMAT = register_format(OutputFormat(
    "edge", ".edge", serialize,
    "edgesdk's own .edge flatbuffer: runs in sdk.run.EdgeModel and edge-run, no LiteRT "
    "needed (int8 results equal LiteRT's builtin kernels bit for bit)",
    runs_in_litert=False, runner=_runner))

__all__ = ["EDGE_FORMAT", "EdgeFile", "EdgeOperator", "EdgeTensor", "file_sha256", "read_edge",
           "serialize", "to_edge_bytes", "write_edge"]
