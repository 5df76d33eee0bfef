"""Operator options: between TFLite's builtin options tables and the IR's attribute dicts.

IR attributes use snake_case keys and hold enum-typed fields by name (`padding="SAME"`,
`fused_activation_function="RELU6"`); everything else keeps its plain Python value.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from sdk.base.errors import ConversionError
from sdk.converters.tflite.schema import OPTIONS_CODES, OPTIONS_NAMES, enum_names, schema

# Operators whose options table is not simply CamelCase(op) + "Options".
_OPTIONS_OVERRIDES: dict[str, str] = {
    "ATAN2": "ATan2Options",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "L2_POOL_2D": "Pool2DOptions",
    "BATCH_MATMUL": "BatchMatMulOptions",
    "BATCH_TO_SPACE_ND": "BatchToSpaceNDOptions",
    "SPACE_TO_BATCH_ND": "SpaceToBatchNDOptions",
    "BIDIRECTIONAL_SEQUENCE_LSTM": "BidirectionalSequenceLSTMOptions",
    "BIDIRECTIONAL_SEQUENCE_RNN": "BidirectionalSequenceRNNOptions",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTMOptions",
    "UNIDIRECTIONAL_SEQUENCE_RNN": "SequenceRNNOptions",
    "L2_NORMALIZATION": "L2NormOptions",
    "LSH_PROJECTION": "LSHProjectionOptions",
    "LSTM": "LSTMOptions",
    "RNN": "RNNOptions",
    "SVDF": "SVDFOptions",
    "MAXIMUM": "MaximumMinimumOptions",
    "MINIMUM": "MaximumMinimumOptions",
    "PADV2": "PadV2Options",
    "TOPK_V2": "TopKV2Options",
    "RANDOM_STANDARD_NORMAL": "RandomOptions",
    "RANDOM_UNIFORM": "RandomOptions",
    "MULTINOMIAL": "RandomOptions",
    "MEAN": "ReducerOptions",
    "SUM": "ReducerOptions",
    "REDUCE_MAX": "ReducerOptions",
    "REDUCE_MIN": "ReducerOptions",
    "REDUCE_PROD": "ReducerOptions",
    "REDUCE_ANY": "ReducerOptions",
    "REDUCE_ALL": "ReducerOptions",
}

# Options fields that hold a schema enum, with that enum's class.
_ENUM_FIELDS: dict[str, type] = {
    "padding": schema.Padding,
    "fusedActivationFunction": schema.ActivationFunctionType,
    "weightsFormat": schema.FullyConnectedOptionsWeightsFormat,
    "mode": schema.MirrorPadMode,
    "combiner": schema.CombinerType,
    "kernelType": schema.LSTMKernelType,
    "type": schema.LSHProjectionType,
    "quantizedBiasType": schema.TensorType,
    "inDataType": schema.TensorType,
    "outDataType": schema.TensorType,
    "outType": schema.TensorType,
    "outputType": schema.TensorType,
    "idxOutType": schema.TensorType,
    "keyDtype": schema.TensorType,
    "valueDtype": schema.TensorType,
}
_ENUM_NAMES = {k: enum_names(v) for k, v in _ENUM_FIELDS.items()}
_ENUM_VALUES = {k: {n: i for i, n in v.items()} for k, v in _ENUM_NAMES.items()}


def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _snake_to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _op_camel(op: str) -> str:
    return "".join(p.capitalize() if not p[0].isdigit() else p.upper() for p in op.split("_"))


def options_type_for(op_type: str) -> str | None:
    """The builtin options table an operator uses, or None if it takes no options."""
    name = _OPTIONS_OVERRIDES.get(op_type, _op_camel(op_type) + "Options")
    return name if name in OPTIONS_CODES else None


def options_to_attrs(options: Any) -> dict[str, Any]:
    """A generated `...OptionsT` object -> IR attribute dict."""
    attrs: dict[str, Any] = {}
    for key, value in vars(options).items():
        if key in _ENUM_NAMES:
            value = _ENUM_NAMES[key].get(value, value)
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        attrs[_camel_to_snake(key)] = value
    return attrs


def attrs_to_options(op_type: str, attrs: dict[str, Any], options_type: str | None = None,
                     node: str = "") -> tuple[int, Any]:
    """IR attributes -> (BuiltinOptions code, `...OptionsT` object) for the writer.

    Attributes that the options table does not have are an error (they would be silently lost).
    Keys starting with an underscore are IR-internal and skipped.
    """
    public = {k: v for k, v in attrs.items() if not k.startswith("_")}
    name = options_type or options_type_for(op_type)
    if name is None:
        if public:
            raise ConversionError(
                f"{op_type} (node {node!r}) takes no options, but has attributes {sorted(public)}")
        return 0, None
    if name not in OPTIONS_CODES or not hasattr(schema, name + "T"):
        raise ConversionError(f"{op_type} (node {node!r}): options type {name!r} is not one "
                              "this TFLite schema knows (an unknown BuiltinOptions code in the "
                              "file read)")
    options = getattr(schema, name + "T")()
    fields = vars(options)
    for key, value in public.items():
        camel = _snake_to_camel(key)
        if camel not in fields:
            raise ConversionError(
                f"{op_type} (node {node!r}): attribute {key!r} is not a field of {name} "
                f"(fields: {', '.join(_camel_to_snake(f) for f in fields)})")
        if camel in _ENUM_VALUES and isinstance(value, str):
            try:
                value = _ENUM_VALUES[camel][value]
            except KeyError:
                raise ConversionError(
                    f"{op_type} (node {node!r}): {key}={value!r} is not one of "
                    f"{sorted(_ENUM_VALUES[camel])}") from None
        elif isinstance(value, (list, tuple)):
            value = list(value)
        setattr(options, camel, value)
    return OPTIONS_CODES[name], options


def options_type_name(code: int) -> str:
    return OPTIONS_NAMES.get(code, f"<BuiltinOptions {code}>")
