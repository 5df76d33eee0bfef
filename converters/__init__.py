"""sdk.converters: model frontends (Keras, SavedModel, ONNX, .tflite), the IR, quantisers, writers.

Installed as `sdk.converters`; the source folder is `converters/` at the top of the repository.
"""
