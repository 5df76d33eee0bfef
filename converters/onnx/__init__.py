"""ONNX frontend: our own importer from ONNX to the edgesdk IR (TFLite builtin ops, NHWC).

    from sdk.converters.onnx import read_onnx
    model = read_onnx("model.onnx", input_shapes={None: (1, 3, 224, 224)})
    sdk.converters.tflite.write_tflite(model, "model_float.tflite")

Needs the `[onnx]` extra; `onnx` is imported only when a model is read.
"""

from sdk.converters.onnx.importer import read_onnx
from sdk.converters.onnx.ops import supported_ops

__all__ = ["read_onnx", "supported_ops"]
