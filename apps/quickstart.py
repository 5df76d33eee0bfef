"""edgesdk quick start: train a small CNN, export it (INT8, ternary), run it in LiteRT, report.

    make demo                                # or: .venv/bin/python apps/quickstart.py
    .venv/bin/python apps/quickstart.py --out /tmp/demo

Everything is offline: the data are scikit-learn's bundled 8x8 digits.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sdk
from sdk.examples import digits, digits_cnn
from sdk.run import Interpreter
from sdk.run.litert import backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/quickstart", help="where to write the models")
    out = Path(parser.parse_args().out)

    # 1. Data and a float Keras model (a few seconds on one core).
    data = digits()
    model = digits_cnn(data)

    # 2. Export: full-integer INT8 .tflite, calibrated on training images, fidelity measured on
    #    the held-out test images. Also accepts SavedModels, .tflite, .onnx; see docs/export.md.
    result = sdk.export(model, "int8", calibration=data.x_train, validation=data.x_test,
                        output=out / "digits_int8.tflite")
    print(result.summary())

    # 3. Run the file in stock LiteRT, as a phone or board would (float in, float out).
    interpreter = backend().interpreter(str(result.path))
    interpreter.allocate_tensors()
    image, probs = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    predictions = []
    for x in data.x_test:
        interpreter.set_tensor(image["index"], x[None])
        interpreter.invoke()
        predictions.append(int(interpreter.get_tensor(probs["index"])[0].argmax()))

    # 4. Report: accuracy against the labels, float vs int8.
    float_accuracy = (model.predict(data.x_test, verbose=0).argmax(1) == data.y_test).mean()
    int8_accuracy = (np.array(predictions) == data.y_test).mean()
    print(f"\naccuracy on {len(data.y_test)} test digits: float {float_accuracy:.2%}, "
          f"int8 {int8_accuracy:.2%} ({result.size_bytes:,} bytes, "
          f"{result.float_size_bytes / result.size_bytes:.1f}x smaller)")

    # 5. Sub-byte: ternary weights ({-1, 0, +1} x scale; first and last layer stay int8). The
    #    2-bit convolutions become edgesdk custom ops, which sdk.run.Interpreter runs with
    #    the edgesdk delegate (LiteRT + our kernels). See docs/delegate.md.
    ternary = sdk.export(model, "ternary", calibration=data.x_train, validation=data.x_test,
                         output=out / "digits_ternary.tflite", per_layer=False)
    runner = Interpreter(ternary.path)
    ternary_pred = np.array([runner.run(x[None])[0].argmax() for x in data.x_test])
    print(f"ternary {(ternary_pred == data.y_test).mean():.2%} ({ternary.size_bytes:,} bytes; "
          f"post-training, no fine-tuning); the delegate ran "
          f"{len(runner.report.claimed)} layers: {', '.join(runner.report.kernels())}")


if __name__ == "__main__":
    main()
