"""The edgesdk model IR: one typed graph representation that every frontend produces and every
quantiser and writer consumes."""

from sdk.converters.ir.dtypes import DType
from sdk.converters.ir.graph import Graph, Model, Operator, SignatureDef, Tensor
from sdk.converters.ir.quant import QuantParams

__all__ = ["DType", "Graph", "Model", "Operator", "QuantParams", "SignatureDef", "Tensor"]
