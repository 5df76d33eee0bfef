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

from typing import Any

from sdk.converters.qat.errors import QatError
from sdk.converters.qat.export import QatExport, qat_export

SCHEMES = ("ternary", "int2", "int4", "int8")


def prepare(model: Any, scheme: str = "ternary", *, calibration: Any = None,
            momentum: float = 0.9, **scheme_options: Any) -> Any:
    """See `sdk.converters.qat.build.prepare`."""
    from sdk.converters.qat.build import prepare as _prepare

    return _prepare(model, scheme, calibration=calibration, momentum=momentum,
                    **scheme_options)


__all__ = ["SCHEMES", "QatError", "QatExport", "prepare", "qat_export"]
