"""Which sub-byte weight layouts stock LiteRT runs correctly: measured, not assumed.

Measured with ai-edge-litert 2.3.0 on x86-64 (tests/test_litert_support.py re-measures every row
on each run and fails when LiteRT's behaviour changes). For each (op, weight type, activations,
block-wise?) the outcome under XNNPACK (the default) and under LiteRT's builtin kernels:

- ``ok``: loads and matches a float reference within rounding,
- ``rejected``: LiteRT refuses the model when it prepares it,
- ``wrong``: LiteRT runs it but the results are wrong (silently!).

Each row is measured with a fused RELU (`sdk.converters.quantize.litert_probe` re-measures them).

Activations "int8" are static (calibrated, int8 in and out); "float32" are dynamic range (float
in and out, the kernel quantises the activations itself). Block-wise means LiteRT's
BlockwiseQuantization details with FLOAT16 block scales (what ai-edge-quantizer writes).

Export uses this table: a layer gets a sub-byte layout only where both kernels say ``ok`` (with
the repairs below); otherwise it becomes one of our documented custom ops (int8 activations,
`custom_ops.py`) or stays at a wider weight type, and the export report says which and why.

Each row is also measured with the type's most negative value in every channel: the builtin
dynamic-range FULLY_CONNECTED with per-channel INT4 weights computes -8 wrongly (relative error
~0.5; -7..7 are right, and so is -8 with int8 activations or block-wise scales), so export keeps
those weights in [-7, 7] (``weights_min``).

Repairs: block-wise FULLY_CONNECTED ignores its fused activation in the builtin kernel (RELU,
RELU6 and RELU_N1_TO_1 are simply not applied, while XNNPACK applies them; without a fused
activation both are right), so the TFLite writer emits the activation as a separate op after such
a layer (``unfused_ok`` rows).
"""

from __future__ import annotations

from dataclasses import dataclass

from sdk.converters.ir import DType

OK, REJECTED, WRONG = "ok", "rejected", "wrong"


@dataclass(frozen=True)
class Support:
    op: str
    weights: DType
    activations: str  # "int8" | "float32"
    blockwise: bool
    xnnpack: str
    builtin: str
    note: str = ""
    #: right under both kernels once the fused activation is a separate op
    unfused_ok: bool = False
    #: the smallest weight value that computes right (None: the type's own minimum)
    weights_min: int | None = None

    @property
    def runs(self) -> bool:
        return (self.xnnpack == OK and self.builtin == OK) or self.unfused_ok


_I4, _I2 = DType.INT4, DType.INT2
_FC, _CONV, _DW = "FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"

MATRIX: tuple[Support, ...] = (
    Support(_FC, _I4, "int8", False, OK, OK, "XNNPACK runs it (qs8 x qc4w)"),
    Support(_FC, _I4, "int8", True, REJECTED, REJECTED),
    Support(_FC, _I4, "float32", False, OK, OK,
            "XNNPACK runs it (qd8 x qc4w); the builtin kernel gets -8 wrong: weights use "
            "[-7, 7]", weights_min=-7),
    Support(_FC, _I4, "float32", True, OK, WRONG,
            "builtin kernel ignores the fused activation (right without one): the writer emits "
            "it as a separate op", unfused_ok=True),
    Support(_FC, _I2, "int8", False, OK, OK, "XNNPACK runs it"),
    Support(_FC, _I2, "int8", True, REJECTED, REJECTED),
    Support(_FC, _I2, "float32", False, OK, OK, "XNNPACK runs it (qd8 x qc2w)"),
    Support(_FC, _I2, "float32", True, REJECTED, WRONG,
            "XNNPACK: 'unsupported tensor type for blockwise quantized tensor'"),
    Support(_CONV, _I4, "int8", False, OK, OK, "XNNPACK does not take it: builtin kernel runs"),
    Support(_CONV, _I4, "int8", True, REJECTED, REJECTED),
    Support(_CONV, _I4, "float32", False, OK, OK, "XNNPACK does not take it: builtin kernel runs"),
    Support(_CONV, _I4, "float32", True, WRONG, WRONG, "block scales are ignored"),
    Support(_CONV, _I2, "int8", False, REJECTED, REJECTED,
            "'filter->type == kTfLiteInt8 || filter->type == kTfLiteInt4'"),
    Support(_CONV, _I2, "float32", False, WRONG, WRONG, "reads the packed bytes as int8: garbage"),
    Support(_DW, _I4, "int8", False, OK, OK, "XNNPACK does not take it: builtin kernel runs"),
    Support(_DW, _I4, "float32", False, REJECTED, REJECTED,
            "'Type FLOAT32 with filter type INT4 not currently supported'"),
    Support(_DW, _I2, "int8", False, REJECTED, REJECTED),
    Support(_DW, _I2, "float32", False, REJECTED, REJECTED),
)

_INDEX = {(s.op, s.weights, s.activations, s.blockwise): s for s in MATRIX}


def support(op: str, weights: DType, activations: str, blockwise: bool = False,
            ) -> Support | None:
    """The measured row, or None for a combination that was not measured (treated as
    unsupported)."""
    return _INDEX.get((op, weights, activations, blockwise))


def weights_min(op: str, weights: DType, activations: str, blockwise: bool = False) -> int | None:
    """The smallest weight value LiteRT computes right for this layout (None: no limit)."""
    row = support(op, weights, activations, blockwise)
    return row.weights_min if row is not None else None


def litert_runs(op: str, weights: DType, activations: str, blockwise: bool = False) -> bool:
    """True when stock LiteRT runs this layout correctly under XNNPACK and builtin kernels."""
    if weights in (DType.INT8, DType.FLOAT32):
        return not blockwise
    row = support(op, weights, activations, blockwise)
    return row is not None and row.runs


def matrix_markdown() -> str:
    """The table as Markdown (README / docs)."""
    lines = ["| op | weights | activations | block-wise | XNNPACK | builtin | note |",
             "|---|---|---|---|---|---|---|"]
    for s in MATRIX:
        lines.append(f"| {s.op} | {s.weights.name} | {s.activations} | "
                     f"{'yes' if s.blockwise else 'no'} | {s.xnnpack} | {s.builtin} | {s.note} |")
    return "\n".join(lines)


__all__ = ["MATRIX", "OK", "REJECTED", "WRONG", "Support", "litert_runs", "matrix_markdown",
           "support", "weights_min"]
