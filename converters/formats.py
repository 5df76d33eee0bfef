"""Output formats, chosen by name or file suffix: one quantised IR, several writers.

A format encodes the IR to bytes and says, per subgraph, at which index each IR tensor landed
(the fidelity report reads intermediate tensors by those indices). `sdk.export` writes the bytes
atomically and measures fidelity on them: in LiteRT when the format runs there
(`runs_in_litert`), else with the format's own `runner` (outputs only). A format named N lives
in `sdk.converters.N` and calls `register_format` when imported; `format_for("N")` or an output
suffix ".N" imports it on demand (``edge``: `.edge` files, from the same quantised IR).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

from sdk.base.errors import ConversionError
from sdk.converters.ir import Model, Tensor
from sdk.converters.tflite import serialize
from sdk.converters.tflite.custom_ops import lower_for_litert

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
    #: for formats LiteRT cannot load: encoded bytes -> an object with LiteRT-style
    #: get_input_details() / get_output_details() and run(list of arrays) -> list of arrays;
    #: the fidelity report measures the outputs with it (per-layer SQNR needs LiteRT)
    runner: Callable[[bytes], Any] | None = None
    #: rewrites the quantised IR into what this format can express (e.g. TFLite: layouts stock
    #: LiteRT cannot run become edgesdk custom ops); returns a new model sharing the tensors
    lower: Callable[[Model], Model] | None = None


FORMATS: dict[str, OutputFormat] = {}


def register_format(fmt: OutputFormat) -> OutputFormat:
    FORMATS[fmt.name] = fmt
    return fmt


def _load_plugin(name: str) -> None:
    """Formats register themselves when their module (`sdk.converters.<name>`) is imported."""
    if name and name.isidentifier():
        module = f"sdk.converters.{name}"
        try:
            import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # the plugin exists but is broken: say so
                raise


def format_for(name: str | None, output: str | Path | None) -> OutputFormat:
    """The format named, else the one whose suffix `output` has, else TFLite."""
    if name is not None:
        if name not in FORMATS:
            _load_plugin(name)
        try:
            return FORMATS[name]
        except KeyError:
            raise ConversionError(f"unknown output format {name!r}; available: "
                             f"{', '.join(sorted(FORMATS))}") from None
    if output is not None:
        suffix = Path(output).suffix.lower()
        if suffix and all(fmt.suffix != suffix for fmt in FORMATS.values()):
            _load_plugin(suffix[1:])
        for fmt in FORMATS.values():
            if fmt.suffix == suffix:
                return fmt
    return FORMATS["tflite"]


TFLITE = register_format(OutputFormat(
    "tflite", ".tflite", serialize,
    "standard TFLite flatbuffer: runs in stock LiteRT (XNNPACK and builtin kernels)",
    lower=lower_for_litert))
