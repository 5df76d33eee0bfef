"""Shared by the .edge tests: tiny IR graphs of single operators, running one model both in
LiteRT's builtin kernels (the bit-exact reference) and in the .edge runtime, and exporting one
model to both formats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sdk.converters.ir import DType, Graph, Model, Operator, QuantParams, Tensor


def q(scale: float, zero_point: int = 0) -> QuantParams:
    return QuantParams.per_tensor(scale, zero_point)


def act(name: str, shape: tuple[int, ...], scale: float | None = None, zp: int = 0,
        dtype: DType = DType.INT8) -> Tensor:
    return Tensor(name, shape, dtype, quant=q(scale, zp) if scale is not None else None)


def single_op_model(op_type: str, inputs: list[Tensor], outputs: list[Tensor],
                    attrs: dict[str, Any] | None = None, *, options_type: str | None = "",
                    version: int = 1) -> Model:
    """A model of one operator; constant inputs become graph constants, the rest graph inputs."""
    g = Graph(name="main")
    for t in [*inputs, *outputs]:
        g.add_tensor(t)
    op = Operator(op_type, list(inputs), list(outputs), attrs=dict(attrs or {}), version=version)
    if options_type != "":
        op.format_extras["tflite_options_type"] = options_type
    g.operators = [op]
    g.inputs = [t for t in inputs if not t.is_constant]
    g.outputs = list(outputs)
    return Model(graphs=[g])


def random_inputs(model: Model, rng: np.random.Generator) -> list[np.ndarray]:
    arrays = []
    for t in model.main.inputs:
        if t.dtype is DType.INT8:
            arrays.append(rng.integers(-128, 128, t.shape, dtype=np.int8))
        elif t.dtype is DType.FLOAT32:
            arrays.append(rng.uniform(-3, 3, t.shape).astype(np.float32))
        else:
            raise TypeError(t.dtype)
    return arrays


def run_litert(tflite: bytes, inputs: list[np.ndarray],
               num_threads: int | None = None) -> list[np.ndarray]:
    """LiteRT's builtin kernels (no XNNPACK): the reference for bit-exact int8 results."""
    from sdk.run.litert import backend

    interp = backend().interpreter(model_content=tflite, xnnpack=False, num_threads=num_threads)
    interp.allocate_tensors()
    for detail, array in zip(interp.get_input_details(), inputs, strict=True):
        interp.set_tensor(detail["index"], array)
    interp.invoke()
    return [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]


def run_both(model: Model, inputs: list[np.ndarray],
             threads: int = 1) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The model in LiteRT's builtin kernels and in the .edge runtime, each with `threads`
    threads (LiteRT's int8 MEAN rounds differently per thread count; .edge follows it)."""
    from sdk.converters.edge import to_edge_bytes
    from sdk.converters.tflite import to_tflite_bytes
    from sdk.run import EdgeModel

    reference = run_litert(to_tflite_bytes(model), inputs, num_threads=threads)
    ours = EdgeModel(to_edge_bytes(model), threads=threads).run(inputs)
    return reference, ours


#: the schemes sdk.export writes to both formats
SCHEMES = ("int8", "int4", "int2", "ternary")


def export_pair(model: Any, scheme: str, out: Path, name: str, calibration: np.ndarray,
                **kwargs: Any) -> tuple[Any, Any]:
    """The same `sdk.export` to .tflite and to .edge (identical calibration and settings):
    (tflite ExportResult, edge ExportResult)."""
    import sdk

    kwargs = {"calibration": calibration, "per_layer": False, "report": False, **kwargs}
    tfl = sdk.export(model, scheme, output=out / f"{name}_{scheme}.tflite", **kwargs)
    edge = sdk.export(model, scheme, output=out / f"{name}_{scheme}.edge", **kwargs)
    assert (tfl.format, edge.format) == ("tflite", "edge")
    assert tfl.precision == edge.precision  # one quantised model, two writers
    return tfl, edge
