"""The `.edge` format: edgesdk's own FlatBuffers model file, run by the dependency-free C++
runtime and `edge-run`. Schema: native/schema/edge.fbs; specification: docs/edge-format.md."""

from sdk.converters.edge.reader import EdgeFile, EdgeOperator, EdgeTensor, read_edge
from sdk.converters.edge.writer import file_sha256, serialize, to_edge_bytes, write_edge

__all__ = ["EdgeFile", "EdgeOperator", "EdgeTensor", "file_sha256", "read_edge", "serialize",
           "to_edge_bytes", "write_edge"]
