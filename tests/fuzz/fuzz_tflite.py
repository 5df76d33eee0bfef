"""Fuzz `read_tflite` (atheris): only EdgeSDKError may escape. See tests/fuzz/README.md."""

from __future__ import annotations

import harness

with harness.instrumented("sdk", "flatbuffers", "ai_edge_litert.schema_py_generated"):
    from sdk.converters.tflite.reader import read_tflite


def seeds() -> dict[str, bytes]:
    import seed_models

    return seed_models.tflite_seeds()


def test_one_input(data: bytes) -> None:
    harness.expect_project_errors(read_tflite, data)


if __name__ == "__main__":
    harness.main(test_one_input, seeds)
