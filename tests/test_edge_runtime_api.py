"""`sdk.run.EdgeModel`: LiteRT-like details, the ways to pass inputs, and errors as the
sdk.base.errors classes."""

from __future__ import annotations

import numpy as np
import pytest
from edge_helpers import act, single_op_model

from sdk.base.errors import ModelFormatError, UnsupportedOpError
from sdk.converters.edge import to_edge_bytes
from sdk.converters.ir import DType
from sdk.run import EdgeModel, ModelInputError


def _add_model() -> bytes:
    return to_edge_bytes(single_op_model(
        "ADD", [act("a", (1, 4, 4, 3), 0.05, -3), act("b", (1, 4, 4, 3), 0.02, 7)],
        [act("y", (1, 4, 4, 3), 0.08, 5)], {"fused_activation_function": "NONE"}),
        recipe="int8", extra={"k": "v"})


def test_details_like_litert() -> None:
    model = EdgeModel(_add_model(), threads=1)
    ins, outs = model.get_input_details(), model.get_output_details()
    assert [d["name"] for d in ins] == ["a", "b"] and [d["index"] for d in ins] == [0, 1]
    assert ins[0]["dtype"] == np.int8 and list(ins[0]["shape"]) == [1, 4, 4, 3]
    assert ins[0]["quantization"] == pytest.approx((0.05, -3))
    assert list(ins[1]["quantization_parameters"]["zero_points"]) == [7]
    assert outs[0]["name"] == "y" and outs[0]["edge_dtype"] == "INT8"
    assert model.threads == 1 and model.arena_bytes > 0
    assert model.metadata["quantization_recipe"] == "int8"
    assert model.metadata["extra"] == {"k": "v"}
    # the ISA's ADD kernel (qs8_vadd_x16__avx2, ...), or the lookup table on the scalar ISA
    assert len(model.kernels()) == 1 and model.kernels()[0].startswith("qs8_vadd_")


def test_inputs_by_list_dict_and_errors() -> None:
    model = EdgeModel(_add_model())
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (1, 4, 4, 3), dtype=np.int8)
    b = rng.integers(-128, 128, (1, 4, 4, 3), dtype=np.int8)
    by_list = model.run([a, b])[0]
    by_dict = model.run({"b": b, "a": a})[0]
    assert np.array_equal(by_list, by_dict) and by_list.dtype == np.int8
    with pytest.raises(ModelInputError, match="takes 2 inputs"):
        model.run(a)
    with pytest.raises(ModelInputError, match="missing \\['b'\\]"):
        model.run({"a": a})
    with pytest.raises(ModelInputError, match="needs shape"):
        model.run([a, b[:, :2]])
    with pytest.raises(ModelInputError, match="needs int8"):
        model.run([a, b.astype(np.float32)])


def test_unsupported_and_malformed_models_raise_sdk_errors() -> None:
    f32 = DType.FLOAT32
    float_add = to_edge_bytes(single_op_model(
        "ADD", [act("a", (4,), None, dtype=f32), act("b", (4,), None, dtype=f32)],
        [act("y", (4,), None, dtype=f32)], {"fused_activation_function": "NONE"}))
    with pytest.raises(UnsupportedOpError, match=r"unsupported op 'ADD' \(node 'operator 0 "
                                                 r"\(ADD\)'\).*FLOAT32"):
        EdgeModel(float_add)
    with pytest.raises(ModelFormatError, match=r"not a \.edge model"):
        EdgeModel(b"TFL3" * 8)


def test_per_group_weight_scales_reach_the_kernels() -> None:
    """FULLY_CONNECTED with INT4 weights and per-group scales (32 along K): the .edge runtime
    equals the kernel library called directly with the same weights, groups and bias."""
    from sdk import kernels
    from sdk.converters.ir import Graph, Model, Operator, QuantParams, Tensor

    rng = np.random.default_rng(3)
    n, k, group = 20, 64, 32
    values = rng.integers(-8, 8, (n, k)).astype(np.int8)
    group_scales = rng.uniform(0.005, 0.02, (n, k // group)).astype(np.float32)
    bias = rng.integers(-300, 300, n).astype(np.int32)
    g = Graph(name="fc")
    x = g.add_tensor(act("x", (3, k), 0.05, -4))
    w = g.add_tensor(Tensor("w", (n, k), DType.INT4, data=values,
                            quant=QuantParams(group_scales, np.zeros(1, np.int64), axis=0,
                                              block_size=group)))
    b = g.add_tensor(Tensor("b", (n,), DType.INT32, data=bias))
    y = g.add_tensor(act("y", (3, n), 0.1, 2))
    g.operators = [Operator("FULLY_CONNECTED", [x, w, b], [y],
                            {"fused_activation_function": "NONE", "keep_num_dims": False})]
    g.inputs, g.outputs = [x], [y]
    model = EdgeModel(to_edge_bytes(Model(graphs=[g])))
    xs = rng.integers(-128, 128, (3, k), dtype=np.int8)
    packed = kernels.pack(values, "int4", np.ones(n, np.float32), group_size=group,
                          group_scales=group_scales)
    direct = kernels.FullyConnected(packed, input=kernels.Quant(0.05, -4),
                                    output=kernels.Quant(0.1, 2), bias=bias)
    assert np.array_equal(model.run(xs)[0], direct(xs))


def test_unrepresentable_requantisation_multiplier_is_an_error() -> None:
    """MUL forms its multiplier in float (as TFLite does): scales whose product overflows give
    an infinite multiplier, which is an error naming the operator, not a silent zero output."""
    model = to_edge_bytes(single_op_model(
        "MUL", [act("a", (1, 4), 1e30, 0), act("b", (1, 4), 1e30, 0)],
        [act("y", (1, 4), 1e-30, 0)], {"fused_activation_function": "NONE"}))
    with pytest.raises(ModelFormatError, match=r"MUL.*multiplier inf"):
        EdgeModel(model)
