"""TFLite flatbuffers <-> IR, through the schema bindings shipped in ai-edge-litert."""

from sdk.converters.tflite.reader import read_tflite
from sdk.converters.tflite.writer import serialize, to_tflite_bytes, write_tflite

__all__ = ["read_tflite", "serialize", "to_tflite_bytes", "write_tflite"]
