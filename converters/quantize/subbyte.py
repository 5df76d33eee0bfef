"""The sub-byte schemes: ``int4``, ``ternary`` and ``int2``.

    sdk.export(model, "ternary", calibration=images)                       # int8 activations
    sdk.export(model, "int4", calibration=images, activations="float32",   # dynamic range
               scheme_options={"block_size": 32})

Each weighted layer (FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D) gets the scheme's weight format
unless one of these keeps it at INT8 (the plan's notes, shown in the export report, say which
and why):

- it is the first or the last weighted layer (``keep_first`` / ``keep_last``, default on: they see
  the raw input and produce the logits, and hold few weights);
- its weights quantised in the scheme's format fall under an SQNR floor (``sqnr_floor_db``, dB of
  weight energy over weight error; defaults below: far under what Gaussian weights give, so only
  layers with heavy outliers trip it);
- no layout runs it: stock LiteRT does not run that op with those weights and activations
  (`sdk.converters.tflite.litert_support`), and no edgesdk custom op does either. 2-bit CONV_2D
  and DEPTHWISE_CONV_2D with int8 activations become the custom ops EDGE_CONV_INT2 /
  EDGE_DWCONV_INT2 (run by the edgesdk delegate) unless ``custom_ops=False``, in which case they
  take INT4 (a plain .tflite that stock LiteRT runs).

Options (``scheme_options``): ``block_size`` (int4 with float activations: block-wise FLOAT16
scales for FULLY_CONNECTED), ``ternary_scale`` ("absmean" BitNet b1.58, or "median"),
``ternary_refit`` (least-squares scale for the ternary pattern, default True), ``keep_first``,
``keep_last``, ``sqnr_floor_db``, ``custom_ops``, ``depthwise`` ("int4" or "int8": the
DEPTHWISE_CONV_2D layers keep that format instead of the scheme's; they hold few weights, and a
3 x 3 channel of ternary / 2-bit taps with one scale loses the most; default "": the scheme's),
``hybrid_kept`` (with int8 activations, a weighted layer the INT8 rewrite keeps off int8
activations, such as an STFT feeding a LOG, takes INT8 weights with float activations, LiteRT's
dynamic-range kernel, instead of float weights; default on for int4, off for ternary / int2).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from sdk.converters.ir import DType, Model, Operator
from sdk.converters.quantize.lowbit import BLOCK_SIZES, TERNARY_SCALES, weight_sqnr_db
from sdk.converters.quantize.plan import (
    ACTIVATION_PRECISIONS,
    LayerPrecision,
    PrecisionPlan,
    SchemeBuilder,
    layer_name,
    register_scheme,
)
from sdk.converters.quantize.rules import OP_RULES, WEIGHTED
from sdk.converters.quantize.weights import weight_format
from sdk.converters.tflite.custom_ops import EDGE_CONV_INT2, EDGE_DWCONV_INT2
from sdk.converters.tflite.litert_support import litert_runs, weights_min

#: weight SQNR (dB) under which a layer stays INT8. Gaussian weights give about 19 dB (int4),
#: 8 dB (int2) and 6.7 dB (ternary); Laplacian ones 16 / 6.9 / 5.0.
DEFAULT_SQNR_FLOOR_DB = {"int4": 12.0, "int2": 4.0, "ternary": 3.0}
SUBBYTE_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
DEPTHWISE_CHOICES = ("", "int4", "int8")
#: schemes whose float-kept weighted layers take INT8 weights with float activations by
#: default (`SubByteOptions.hybrid_kept`): oww_melspectrogram's STFT, 4 bytes a weight, was
#: 459 of its int4 file's 634 kB (benchmarks/results/subbyte-fidelity-2026-12-07.md, stop 30)
HYBRID_KEPT_SCHEMES = ("int4",)
_CUSTOM = {"CONV_2D": EDGE_CONV_INT2.code, "DEPTHWISE_CONV_2D": EDGE_DWCONV_INT2.code}


@dataclass(frozen=True)
class SubByteOptions:
    activations: str = "int8"
    block_size: int = 0
    ternary_scale: str = "absmean"
    ternary_refit: bool = True
    keep_first: bool = True
    keep_last: bool = True
    sqnr_floor_db: float | None = None
    custom_ops: bool = True
    #: DEPTHWISE_CONV_2D layers' weights: "" (the scheme's format), "int4" or "int8"
    depthwise: str = ""
    #: a weighted layer the INT8 rewrite keeps off int8 activations (a LOG front end) takes
    #: INT8 weights with float activations instead of float ones (`PrecisionPlan.hybrid_kept`);
    #: None: the scheme's default (on for int4, `HYBRID_KEPT_SCHEMES`)
    hybrid_kept: bool | None = None

    def check(self, scheme: str) -> None:
        if self.activations not in ACTIVATION_PRECISIONS:
            raise ValueError(f"activations must be one of {ACTIVATION_PRECISIONS}, not "
                             f"{self.activations!r}")
        if self.block_size:
            if scheme != "int4":
                raise ValueError(f"block_size: LiteRT runs block-wise weights only for INT4 "
                                 f"(scheme {scheme!r} is per-channel)")
            if self.block_size not in BLOCK_SIZES:
                raise ValueError(f"block_size must be one of {BLOCK_SIZES}, not "
                                 f"{self.block_size}")
            if self.activations != "float32":
                raise ValueError("block_size needs activations='float32': LiteRT has no "
                                 "block-wise kernel with int8 activations")
        if self.depthwise not in DEPTHWISE_CHOICES:
            raise ValueError(f"depthwise must be one of {DEPTHWISE_CHOICES} ('' keeps the "
                             f"scheme's format), not {self.depthwise!r}")
        if self.ternary_scale not in TERNARY_SCALES:
            raise ValueError(f"ternary_scale must be one of {TERNARY_SCALES}, not "
                             f"{self.ternary_scale!r}")


def _options(scheme: str, options: dict[str, object]) -> SubByteOptions:
    known = {f.name for f in fields(SubByteOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"scheme {scheme!r}: unknown option(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(known))}")
    opts = SubByteOptions(**options)  # type: ignore[arg-type]
    opts.check(scheme)
    return opts


def _format_name(scheme: str, opts: SubByteOptions) -> str:
    if scheme == "ternary":
        if not opts.ternary_refit:
            if opts.ternary_scale != "absmean":
                raise ValueError("ternary_refit=False is BitNet's absmean rule; it has no "
                                 "median variant")
            return "ternary-bitnet"
        return "ternary" if opts.ternary_scale == "absmean" else "ternary-median"
    return scheme


def weighted_layers(model: Model) -> list[Operator]:
    """Ops with constant float weights that a weight format applies to, in execution order."""
    out = []
    for op in model.main.operators:
        rule = OP_RULES.get(op.type)
        if op.type not in WEIGHTED or rule is None or rule.weight is None:
            continue
        w = op.inputs[rule.weight] if rule.weight < len(op.inputs) else None
        if w is not None and w.is_constant and w.dtype is DType.FLOAT32:
            out.append(op)
    return out


def build_plan(scheme: str, model: Model, **options: object) -> PrecisionPlan:
    """The plan of one sub-byte scheme (see the module docstring)."""
    opts = _options(scheme, dict(options))
    acts = opts.activations
    base = LayerPrecision("int8", acts)
    plan = PrecisionPlan(scheme=scheme, default=base, hybrid_kept=acts == "int8" and (
        opts.hybrid_kept if opts.hybrid_kept is not None else scheme in HYBRID_KEPT_SCHEMES))
    floor = opts.sqnr_floor_db if opts.sqnr_floor_db is not None \
        else DEFAULT_SQNR_FLOOR_DB[scheme]
    layers = weighted_layers(model)
    for i, op in enumerate(layers):
        name = layer_name(op)
        if opts.keep_first and i == 0:
            plan.notes[name] = "int8: first weighted layer (keep_first)"
            continue
        if opts.keep_last and i == len(layers) - 1:
            plan.notes[name] = "int8: last weighted layer (keep_last)"
            continue
        if op.type not in SUBBYTE_OPS:
            plan.notes[name] = f"int8: LiteRT has no sub-byte {op.type}"
            continue
        if op.type == "DEPTHWISE_CONV_2D" and opts.depthwise == "int8":
            plan.notes[name] = "int8: depthwise layer (depthwise='int8')"
            continue
        fmt_name, note = _legal_format(op, scheme, opts)
        if fmt_name is None:
            plan.notes[name] = f"int8: {note}"
            continue
        rule = OP_RULES[op.type]
        fmt = weight_format(fmt_name)
        w = op.inputs[rule.weight]  # type: ignore[index]
        assert w is not None
        sqnr = weight_sqnr_db(w.numpy(), fmt.quantize(w.numpy(), rule.weight_axis,
                                                       fmt.default_method))
        if sqnr < floor:
            plan.notes[name] = (f"int8: {fmt_name} weight SQNR {sqnr:.1f} dB is under the "
                                f"floor of {floor:g} dB (sqnr_floor_db)")
            continue
        plan.layers[name] = LayerPrecision(fmt_name, acts)
        if note:
            plan.notes[name] = note
    return plan


def _legal_format(op: Operator, scheme: str, opts: SubByteOptions) -> tuple[str | None, str]:
    """The weight format this layer can have (None: int8) and a note for the report."""
    acts = opts.activations
    fmt_name = _format_name(scheme, opts)
    note = ""
    if op.type == "DEPTHWISE_CONV_2D" and opts.depthwise == "int4" and fmt_name != "int4":
        if not litert_runs(op.type, DType.INT4, acts):
            return None, (f"depthwise='int4': stock LiteRT has no INT4 {op.type} with {acts} "
                          "activations")
        return "int4", "int4: depthwise layer (depthwise='int4')"
    if opts.block_size:
        if op.type == "FULLY_CONNECTED" and _k(op) % opts.block_size == 0:
            fmt_name = f"int4b{opts.block_size}"
        else:
            why = (f"K = {_k(op)} is not a multiple of {opts.block_size}"
                   if op.type == "FULLY_CONNECTED" else
                   f"LiteRT runs block-wise INT4 only in FULLY_CONNECTED, not {op.type}")
            note = f"per-channel int4: {why}"
    dtype = weight_format(fmt_name).dtype
    blockwise = weight_format(fmt_name).block_size > 0
    if litert_runs(op.type, dtype, acts, blockwise):
        low = weights_min(op.type, dtype, acts, blockwise)
        if low is not None and fmt_name == "int4" and low > weight_format("int4").qmin:
            return "int4-narrow", (f"int4 in [{low}, 7]: LiteRT's builtin {op.type} gets "
                                   f"{weight_format('int4').qmin} wrong with {acts} activations")
        return fmt_name, note
    if dtype is DType.INT2 and acts == "int8" and op.type in _CUSTOM and opts.custom_ops:
        return fmt_name, f"{fmt_name} as custom op {_CUSTOM[op.type]} (needs the edgesdk delegate)"
    why = f"stock LiteRT has no {dtype.name} {op.type} with {acts} activations"
    if dtype is DType.INT2 and acts == "int8" and op.type in _CUSTOM:
        why += f" (custom op {_CUSTOM[op.type]} disabled: custom_ops=False)"
    if dtype is not DType.INT4 and litert_runs(op.type, DType.INT4, acts):
        return "int4", f"int4: {why}"
    return None, why


def _k(op: Operator) -> int:
    w = op.inputs[1]
    return int(w.shape[-1]) if w is not None and w.shape else 0


def _scheme(name: str) -> SchemeBuilder:
    def builder(model: Model, **options: object) -> PrecisionPlan:
        return build_plan(name, model, **options)
    builder.__name__ = f"{name}_plan"
    return builder


for _name in ("int4", "ternary", "int2"):
    register_scheme(_name, _scheme(_name))


__all__ = ["DEFAULT_SQNR_FLOOR_DB", "DEPTHWISE_CHOICES", "HYBRID_KEPT_SCHEMES", "SUBBYTE_OPS",
           "SubByteOptions", "build_plan", "weighted_layers"]
