"""Sub-byte weight formats, the scheme plans and the EDGE custom-op options (no LiteRT needed)."""

from __future__ import annotations

import numpy as np
import pytest

from sdk.base.errors import ConversionError, UnsupportedOpError
from sdk.converters.ir import DType, Graph, Model, Operator, QuantParams, Tensor
from sdk.converters.quantize import plan_for
from sdk.converters.quantize.lowbit import blockwise_int4, int2_levels, ternarize, weight_sqnr_db
from sdk.converters.quantize.weights import weight_format
from sdk.converters.tflite import read_tflite, to_tflite_bytes
from sdk.converters.tflite.custom_ops import (
    OPTIONS_SIZE,
    ConvOptions,
    custom_ops_in,
    lower_for_litert,
    to_builtin,
)

RNG = np.random.default_rng(0)


def test_ternary_absmean_rule_and_refit() -> None:
    w = RNG.standard_normal((8, 256)).astype(np.float32)
    scales, q = ternarize(w, 0, "absmean", refit=False)
    gamma = np.abs(w).mean(axis=1)
    np.testing.assert_allclose(scales, gamma, rtol=1e-6)
    np.testing.assert_array_equal(q, np.clip(np.round(w / gamma[:, None]), -1, 1))
    assert set(np.unique(q)) <= {-1, 0, 1}
    refit_scales, q2 = ternarize(w, 0, "absmean", refit=True)
    np.testing.assert_array_equal(q, q2)  # same pattern, better scale
    err = ((q * scales[:, None] - w) ** 2).sum()
    err_refit = ((q * refit_scales[:, None] - w) ** 2).sum()
    assert err_refit < err
    # least squares for a fixed pattern: mean |w| over the non-zero positions
    np.testing.assert_allclose(refit_scales[0], np.abs(w[0][q[0] != 0]).mean(), rtol=1e-5)


def test_ternary_median_and_axis3() -> None:
    w = RNG.standard_normal((1, 3, 3, 16)).astype(np.float32)
    scales, q = ternarize(w, 3, "median", refit=False)
    assert scales.shape == (16,) and q.shape == w.shape
    np.testing.assert_allclose(scales, np.median(np.abs(w.reshape(-1, 16)), axis=0), rtol=1e-6)
    with pytest.raises(ValueError, match="ternary scale"):
        ternarize(w, 3, "mean")


def test_ternary_zero_channel() -> None:
    w = np.zeros((2, 8), np.float32)
    w[1] = 1.0
    scales, q = ternarize(w, 0)
    assert np.isfinite(scales).all() and (q[0] == 0).all() and (q[1] == 1).all()


def test_int2_levels_search_beats_plain_absmax() -> None:
    w = RNG.standard_normal((16, 512)).astype(np.float32)
    scales, q = int2_levels(w, 0)
    assert q.min() >= -2 and q.max() <= 1
    naive = np.abs(w).max(axis=1) / 2
    qn = np.clip(np.round(w / naive[:, None]), -2, 1)
    assert ((q * scales[:, None] - w) ** 2).sum() < ((qn * naive[:, None] - w) ** 2).sum()


def test_int4_mse_beats_minmax_and_uses_minus_8() -> None:
    w = RNG.laplace(size=(16, 512)).astype(np.float32)
    fmt = weight_format("int4")
    mse, minmax = fmt.quantize(w, 0, "mse"), fmt.quantize(w, 0, "minmax")
    assert weight_sqnr_db(w, mse) > weight_sqnr_db(w, minmax) + 1.0
    assert mse.values.min() == -8 and mse.dtype is DType.INT4


def test_blockwise_int4_scales_are_float16() -> None:
    w = RNG.standard_normal((4, 128)).astype(np.float32)
    r = blockwise_int4(w, 32)
    assert r.quant.block_size == 32 and r.quant.scale.shape == (4, 4)
    scales = r.quant.extras["blockwise"]["scales"]
    assert scales.dtype is DType.FLOAT16 and scales.shape == (4, 4)
    np.testing.assert_array_equal(scales.numpy().astype(np.float32), r.quant.scale)
    assert weight_sqnr_db(w, r) > weight_sqnr_db(w, weight_format("int4").quantize(w, 0, "mse"))
    with pytest.raises(ValueError, match="multiple of the block size"):
        blockwise_int4(w[:, :100], 32)


# ---------------------------------------------------------------------------- plans
def _two_fc_model() -> Model:
    g = Graph(name="main")
    x = g.add_tensor(Tensor("x", (1, 64), DType.FLOAT32))
    h = g.add_tensor(Tensor("h", (1, 64), DType.FLOAT32))
    h2 = g.add_tensor(Tensor("h2", (1, 64), DType.FLOAT32))
    y = g.add_tensor(Tensor("y", (1, 10), DType.FLOAT32))
    for name, (i, o, n) in {"fc1": (x, h, 64), "fc2": (h, h2, 64), "fc3": (h2, y, 10)}.items():
        w = g.constant(f"{name}_w", RNG.standard_normal((n, 64)).astype(np.float32))
        b = g.constant(f"{name}_b", np.zeros(n, np.float32))
        g.operators.append(Operator("FULLY_CONNECTED", [i, w, b], [o], name=name,
                                    attrs={"fused_activation_function": "RELU"}))
    g.inputs, g.outputs = [x], [y]
    return Model([g])


def test_plan_keeps_first_and_last_and_explains() -> None:
    plan = plan_for("ternary", _two_fc_model())
    assert plan.layers == {"fc2": plan.default.__class__("ternary", "int8")}
    assert "first" in plan.notes["fc1"] and "last" in plan.notes["fc3"]
    plan = plan_for("int2", _two_fc_model(), {"keep_first": False, "keep_last": False})
    assert set(plan.layers) == {"fc1", "fc2", "fc3"}


def test_plan_sqnr_floor_keeps_int8() -> None:
    plan = plan_for("int4", _two_fc_model(), {"sqnr_floor_db": 60.0})
    assert not plan.layers and "under the floor of 60 dB" in plan.notes["fc2"]


def test_plan_options_are_checked() -> None:
    model = _two_fc_model()
    with pytest.raises(ValueError, match="unknown option"):
        plan_for("int4", model, {"blocksize": 32})
    with pytest.raises(ValueError, match="activations='float32'"):
        plan_for("int4", model, {"block_size": 32})
    with pytest.raises(ValueError, match="only for INT4"):
        plan_for("ternary", model, {"block_size": 32, "activations": "float32"})
    plan = plan_for("int4", model, {"block_size": 32, "activations": "float32"})
    assert plan.layers["fc2"].weights == "int4b32" and plan.layers["fc2"].is_hybrid
    plan = plan_for("int4", model, {"activations": "float32"})  # LiteRT's builtin hybrid FC
    assert plan.layers["fc2"].weights == "int4-narrow"           # gets -8 wrong
    plan = plan_for("ternary", model, {"ternary_scale": "median"})
    assert plan.layers["fc2"].weights == "ternary-median"


# ---------------------------------------------------------------------------- custom ops
def test_custom_options_round_trip_and_errors() -> None:
    o = ConvOptions(stride_h=2, stride_w=1, dilation_h=1, dilation_w=2, padding="VALID",
                    activation="RELU6", depth_multiplier=3, weight_kind="ternary")
    data = o.pack()
    assert len(data) == OPTIONS_SIZE == 40 and data[:4] == b"EDGE"
    assert ConvOptions.unpack(data) == o
    assert ConvOptions.unpack(data + b"future fields") == o
    with pytest.raises(ConversionError, match="magic"):
        ConvOptions.unpack(b"XXXX" + data[4:])
    with pytest.raises(ConversionError, match="need 40"):
        ConvOptions.unpack(data[:20])
    bad = bytearray(data)
    bad[24] = 7
    with pytest.raises(ConversionError, match="padding code 7"):
        ConvOptions.unpack(bytes(bad))


def _conv_model(weights: DType, activations: str, depthwise: bool = False) -> Model:
    g = Graph(name="main")
    dt = DType.INT8 if activations == "int8" else DType.FLOAT32
    q = QuantParams.per_tensor(0.05, 0) if dt is DType.INT8 else None
    x = g.add_tensor(Tensor("x", (1, 6, 6, 8), dt, quant=q))
    shape = (1, 3, 3, 8) if depthwise else (4, 3, 3, 8)
    axis = 3 if depthwise else 0
    values = RNG.integers(-1, 2, shape).astype(np.int8)
    w = g.add_tensor(Tensor("w", shape, weights, data=values,
                            quant=QuantParams.per_channel(np.full(shape[axis], 0.1), axis)))
    y = g.add_tensor(Tensor("y", (1, 6, 6, shape[axis]), dt, quant=q))
    attrs = {"padding": "SAME", "stride_w": 1, "stride_h": 2,
             "fused_activation_function": "RELU", "dilation_w_factor": 1,
             "dilation_h_factor": 1}
    if depthwise:
        attrs["depth_multiplier"] = 1
    g.operators.append(Operator("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", [x, w, None],
                                [y], attrs=attrs, name="conv"))
    g.inputs, g.outputs = [x], [y]
    return Model([g])


@pytest.mark.parametrize("depthwise", [False, True])
def test_lowering_to_custom_op_and_back(depthwise: bool) -> None:
    model = _conv_model(DType.INT2, "int8", depthwise)
    lowered = lower_for_litert(model)
    assert model.main.operators[0].type != "CUSTOM"  # the input is not changed
    op = lowered.main.operators[0]
    code = "EDGE_DWCONV_INT2" if depthwise else "EDGE_CONV_INT2"
    assert op.type == "CUSTOM" and op.custom_code == code
    assert custom_ops_in(lowered) == {code: 1}
    assert op.inputs[1] is model.main.operators[0].inputs[1]  # tensors are shared
    assert ConvOptions.unpack(op.custom_options).weight_kind == "ternary"
    back = to_builtin(op)
    original = model.main.operators[0]
    assert back.type == original.type and back.attrs == original.attrs
    # the file reads back with the custom op, its options and the INT2 weights intact
    again = read_tflite(to_tflite_bytes(lowered))
    op2 = again.main.operators[0]
    assert op2.custom_code == code and op2.custom_options == op.custom_options
    assert op2.inputs[1].dtype is DType.INT2
    np.testing.assert_array_equal(op2.inputs[1].numpy(), op.inputs[1].numpy())


def test_lowering_refuses_what_nothing_runs() -> None:
    with pytest.raises(UnsupportedOpError, match="float32 activations"):
        lower_for_litert(_conv_model(DType.INT2, "float32"))
    with pytest.raises(UnsupportedOpError, match="DEPTHWISE_CONV_2D"):
        lower_for_litert(_conv_model(DType.INT4, "float32", depthwise=True))
    # INT4 CONV_2D with int8 activations is standard: untouched
    lowered = lower_for_litert(_conv_model(DType.INT4, "int8"))
    assert lowered.main.operators[0].type == "CONV_2D"


def _dw_model() -> Model:
    """conv -> depthwise -> conv -> depthwise -> conv, NHWC (the middle three are sub-byte)."""
    g = Graph(name="main")
    shape = (1, 8, 8, 16)
    x = g.add_tensor(Tensor("x", shape, DType.FLOAT32))
    prev = x
    kinds = ("CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D")
    for i, kind in enumerate(kinds):
        out = g.add_tensor(Tensor(f"t{i}", shape, DType.FLOAT32))
        wshape = (1, 3, 3, 16) if kind == "DEPTHWISE_CONV_2D" else (16, 3, 3, 16)
        w = g.constant(f"w{i}", RNG.standard_normal(wshape).astype(np.float32))
        b = g.constant(f"b{i}", np.zeros(16, np.float32))
        attrs: dict[str, object] = {"padding": "SAME", "stride_h": 1, "stride_w": 1}
        if kind == "DEPTHWISE_CONV_2D":
            attrs["depth_multiplier"] = 1
        g.operators.append(Operator(kind, [prev, w, b], [out], name=f"l{i}", attrs=attrs))
        prev = out
    g.inputs, g.outputs = [x], [prev]
    return Model([g])


@pytest.mark.parametrize("scheme", ["ternary", "int2"])
def test_plan_depthwise_option(scheme: str) -> None:
    """`depthwise`: the DEPTHWISE_CONV_2D layers keep INT4 (or INT8) in a ternary / 2-bit plan,
    with a note; the other layers keep the scheme's format; default: the scheme's own."""
    model = _dw_model()
    plain = plan_for(scheme, model)
    assert {plain.layers[n].weights for n in ("l1", "l2", "l3")} == {scheme}
    plan = plan_for(scheme, model, {"depthwise": "int4"})
    assert plan.layers["l1"].weights == plan.layers["l3"].weights == "int4"
    assert plan.layers["l2"].weights == scheme
    assert "depthwise='int4'" in plan.notes["l1"]
    plan = plan_for(scheme, model, {"depthwise": "int8"})
    assert "l1" not in plan.layers and "l3" not in plan.layers
    assert plan.layers["l2"].weights == scheme and "depthwise='int8'" in plan.notes["l3"]
    with pytest.raises(ValueError, match="depthwise must be one of"):
        plan_for(scheme, model, {"depthwise": "int2"})
    # float activations: LiteRT has no INT4 depthwise with them, so the layer stays INT8
    plan = plan_for(scheme, model, {"depthwise": "int4", "activations": "float32"})
    assert "l1" not in plan.layers and "no INT4 DEPTHWISE_CONV_2D" in plan.notes["l1"]
