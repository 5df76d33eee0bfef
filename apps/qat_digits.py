"""Quantisation-aware training: the digits CNN to ternary weights, fine-tuned, exported, compared.

    make demo                              # or: .venv/bin/python apps/qat_digits.py
    .venv/bin/python apps/qat_digits.py --epochs 4 --out /tmp/qat

Trains the float digits CNN (sdk.examples.digits_cnn), exports it post-training to ternary with
GPTQ, then prepares it for QAT (sdk.qat.prepare: ternary weights as the export writes them, int8
activations), fine-tunes a few epochs with model.fit and exports the trained model to ternary
.tflite and .edge. Prints the float / PTQ (GPTQ) / QAT accuracies on the held-out digits as JSON,
and how often the exported files agree with the QAT model they came from.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sdk
from sdk.examples import digits, digits_cnn
from sdk.run import EdgeModel, Interpreter


def predict_file(path: Path, x: np.ndarray) -> np.ndarray:
    """Top-1 classes of a .tflite (LiteRT + the edgesdk delegate) or .edge model."""
    runner: Any = EdgeModel(path) if path.suffix == ".edge" else Interpreter(path)
    return np.array([int(np.argmax(runner.run(s[None])[0])) for s in x])


def run(out: Path, epochs: int = 4, scheme: str = "ternary", seed: int = 0) -> dict[str, Any]:
    import tensorflow as tf

    start = time.perf_counter()
    data = digits()
    model = digits_cnn(data, seed=seed)
    float_acc = float((model.predict(data.x_test, verbose=0).argmax(1) == data.y_test).mean())

    ptq = sdk.export(model, scheme, calibration=data.x_train, validation=data.x_test,
                     weight_method="gptq", output=out / f"digits_{scheme}_gptq.tflite",
                     per_layer=False)
    ptq_acc = float((predict_file(ptq.path, data.x_test) == data.y_test).mean())

    qat = sdk.qat.prepare(model, scheme, calibration=data.x_train[:256])
    qat.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    qat.fit(data.x_train, data.y_train, batch_size=64, epochs=epochs, verbose=0, shuffle=True)
    qat_pred = qat.predict(data.x_test, verbose=0).argmax(1)

    result: dict[str, Any] = {
        "scheme": scheme, "epochs": epochs, "test_digits": len(data.y_test),
        "float_accuracy": round(float_acc, 4),
        "ptq_gptq_accuracy": round(ptq_acc, 4),
        "qat_model_accuracy": round(float((qat_pred == data.y_test).mean()), 4)}
    for fmt in ("tflite", "edge"):
        exported = sdk.export(qat, scheme, calibration=data.x_train, validation=data.x_test,
                              output=out / f"digits_{scheme}_qat.{fmt}", per_layer=False)
        pred = predict_file(exported.path, data.x_test)
        result[f"qat_{fmt}_accuracy"] = round(float((pred == data.y_test).mean()), 4)
        result[f"qat_{fmt}_agreement"] = round(float((pred == qat_pred).mean()), 4)
        result[f"qat_{fmt}_bytes"] = exported.size_bytes
    result["qat_vs_float_points"] = round(100 * (result["qat_tflite_accuracy"] - float_acc), 2)
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/qat_digits", help="where to write the models")
    parser.add_argument("--epochs", type=int, default=4, help="QAT fine-tuning epochs")
    parser.add_argument("--scheme", default="ternary", choices=("ternary", "int2", "int4"))
    args = parser.parse_args()
    print(json.dumps(run(Path(args.out), args.epochs, args.scheme), indent=2))


if __name__ == "__main__":
    main()
