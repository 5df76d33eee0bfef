"""Fuzz `read_edge` (atheris): only EdgeSDKError may escape. See tests/fuzz/README.md."""

from __future__ import annotations

import harness

with harness.instrumented("sdk", "flatbuffers"):
    from sdk.converters.edge.reader import read_edge


def seeds() -> dict[str, bytes]:
    import seed_models

    return seed_models.edge_seeds()


def test_one_input(data: bytes) -> None:
    harness.expect_project_errors(read_edge, data)


if __name__ == "__main__":
    harness.main(test_one_input, seeds)
