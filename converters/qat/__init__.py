"""Quantisation-aware training for Keras models (`sdk.qat`; TensorFlow is the `[tf]` extra).

    qat = sdk.qat.prepare(model, "ternary", calibration=x_train[:256])
    qat.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    qat.fit(x_train, y_train, epochs=3)
    sdk.export(qat, "ternary", calibration=x_train, output="model.tflite")

`prepare` gives the model fake quantisation as the export will quantise it (the exporter's own
plan of formats per layer; BitNet b1.58 ternary, LSQ steps for int4 / int2, int8 activations
with EMA ranges, BatchNorm folded); `sdk.export` writes the trained codes, scales and ranges
(`sdk.converters.qat.export`). Nothing here imports TensorFlow until `prepare` runs.
"""

from __future__ import annotations

from sdk.converters.qat.build import SCHEMES, QatSpec, prepare
from sdk.converters.qat.deploy import qat_export
from sdk.converters.qat.errors import QatError
from sdk.converters.qat.export import QatExport

__all__ = ["SCHEMES", "QatError", "QatExport", "QatSpec", "prepare", "qat_export"]
