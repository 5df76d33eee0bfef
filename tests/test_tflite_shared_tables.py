"""The .tflite writer stores each distinct quantisation table, operator options table and
numpy vector (shapes, scales, operator inputs) once, every equal one referring to it (issue 15:
oww_hey_mycroft's INT4 file, an unrolled LSTM of 1,271 tensors with 271 distinct quantisation
parameters, was 258,256 B, 65 kB over the same file with them shared); LiteRT runs the file as
before and `byte_breakdown` counts a shared table once."""

from __future__ import annotations

import numpy as np
import pytest

from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
from sdk.converters.ir.quant import QuantParams
from sdk.converters.quantize.file_bytes import byte_breakdown
from sdk.converters.tflite import read_tflite
from sdk.converters.tflite.schema import schema
from sdk.converters.tflite.writer import to_tflite_bytes

STEPS = 40


def _chain() -> Model:
    """float x -> QUANTIZE -> STEPS x (ADD of an all-zero int8 constant) -> DEQUANTIZE: every
    int8 tensor has the same scale and zero point (an identity, so the output is known)."""
    g = Graph(name="main")
    q = QuantParams.per_tensor(0.05, 3)
    x = g.add_tensor(Tensor("x", (1, 8), DType.FLOAT32))
    t = g.add_tensor(Tensor("x_q", (1, 8), DType.INT8, quant=q))
    g.operators.append(Operator("QUANTIZE", [x], [t]))
    zero = g.constant("zero", np.full((1, 8), 3, np.int8), DType.INT8, quant=q)
    for i in range(STEPS):
        nxt = g.add_tensor(Tensor(f"step_{i}", (1, 8), DType.INT8, quant=q))
        g.operators.append(Operator("ADD", [t, zero], [nxt],
                                    {"fused_activation_function": "NONE"}))
        t = nxt
    y = g.add_tensor(Tensor("y", (1, 8), DType.FLOAT32))
    g.operators.append(Operator("DEQUANTIZE", [t], [y]))
    g.inputs, g.outputs = [x], [y]
    return Model([g])


def _positions(data: bytes) -> tuple[set[int], set[int], int]:
    """Where each int8 tensor's quantisation table and shape vector are, and how many."""
    sg = schema.Model.GetRootAsModel(data, 0).Subgraphs(0)
    quant, shapes, count = set(), set(), 0
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        if t.Quantization() is not None and t.Quantization().ScaleLength():
            count += 1
            quant.add(t.Quantization()._tab.Pos)
            shapes.add(t._tab.Vector(t._tab.Offset(4)))  # field 0: shape
    return quant, shapes, count


def test_equal_tables_and_vectors_are_written_once() -> None:
    data = to_tflite_bytes(_chain())
    quant, shapes, count = _positions(data)
    assert count == STEPS + 2  # x_q, zero and the steps' outputs: one table, one shape
    assert len(quant) == 1 and len(shapes) == 1
    # deterministic, and what is read back is each tensor's own parameters
    model = read_tflite(data)
    assert to_tflite_bytes(model) == data
    for t in model.main.tensors:
        if t.dtype is DType.INT8:
            assert t.quant.scale.tolist() == pytest.approx([0.05])
            assert t.quant.zero_point.tolist() == [3]


def test_litert_runs_the_shared_tables() -> None:
    from sdk.run.litert import backend

    x = np.linspace(-3, 3, 8, dtype=np.float32).reshape(1, 8)
    interpreter = backend().interpreter(model_content=to_tflite_bytes(_chain()), num_threads=1,
                                        xnnpack=False)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    y = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    # every ADD read its inputs' and output's shared scale and zero point: x on the 0.05 grid
    np.testing.assert_allclose(y, np.round(x / 0.05) * 0.05, rtol=0, atol=1e-6)


def test_byte_breakdown_counts_a_shared_table_once() -> None:
    data = to_tflite_bytes(_chain())
    b = byte_breakdown(data)
    assert sum(b.parts.values()) == b.total == len(data)
    assert b.parts["tables and alignment"] >= 0
    # one scale (4 B) and one zero point (8 B), whatever refers to them
    assert b.parts["qparams activations"] + b.parts.get("qparams constants", 0) == 12
