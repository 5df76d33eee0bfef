"""Output formats, chosen by name or file suffix: one quantised IR, several writers.

A format encodes the IR to bytes and says, per subgraph, at which index each IR tensor landed
(the fidelity report reads intermediate tensors by those indices). `sdk.export` writes the bytes
atomically and, when the format can be run in LiteRT (`runs_in_litert`), measures fidelity on
them. Issue 5 registers ``edge`` (`.edge` files) with `register_format`, from the same IR.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdk.converters.ir import Model, Tensor
from sdk.converters.tflite import serialize

Encoder = Callable[[Model], tuple[bytes, list[dict[Tensor, int]]]]


@dataclass(frozen=True)
class OutputFormat:
    name: str
    suffix: str
    encode: Encoder
    description: str = ""
    #: the encoded bytes load in a stock LiteRT interpreter (fidelity is measured on them)
    runs_in_litert: bool = True
    #: delegates LiteRT needs to run this format's custom ops (a callable returning them)
    delegates: Callable[[], list[Any]] | None = None


FORMATS: dict[str, OutputFormat] = {}


def register_format(fmt: OutputFormat) -> OutputFormat:
    FORMATS[fmt.name] = fmt
    return fmt


def format_for(name: str | None, output: str | Path | None) -> OutputFormat:
    """The format named, else the one whose suffix `output` has, else TFLite."""
    if name is not None:
        try:
            return FORMATS[name]
        except KeyError:
            raise ValueError(f"unknown output format {name!r}; available: "
                             f"{', '.join(sorted(FORMATS))}") from None
    if output is not None:
        suffix = Path(output).suffix.lower()
        for fmt in FORMATS.values():
            if fmt.suffix == suffix:
                return fmt
    return FORMATS["tflite"]


TFLITE = register_format(OutputFormat(
    "tflite", ".tflite", serialize,
    "standard TFLite flatbuffer: runs in stock LiteRT (XNNPACK and builtin kernels)"))
