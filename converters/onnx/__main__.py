"""`python -m sdk.converters.onnx`: the supported ONNX ops, as docs/onnx-input.md lists them."""

from sdk.converters.onnx.ops import supported_ops


def ops_markdown() -> str:
    """The op list of docs/onnx-input.md, generated from the converter table."""
    return ", ".join(f"`{op}`" for op in supported_ops())


if __name__ == "__main__":
    print(ops_markdown())
