"""The edgesdk TFLite delegate inside real LiteRT: single layers of every claimed op and weight
type equal the native reference kernels (scalar ISA) bit for bit and LiteRT's own builtin
kernels where LiteRT runs the layer; options; errors."""

from __future__ import annotations

import numpy as np
import pytest

from sdk import kernels
from sdk.base.errors import EdgeSDKError
from sdk.converters.ir import DType, Graph, Model, Operator, QuantParams, Tensor
from sdk.converters.tflite import to_tflite_bytes
from sdk.converters.tflite.custom_ops import lower_for_litert, to_builtin
from sdk.run import Interpreter
from sdk.run.litert import backend

#: weight type -> (IR type, q range)
WEIGHTS = {"int8": (DType.INT8, (-127, 127)), "int4": (DType.INT4, (-8, 7)),
           "ternary": (DType.INT2, (-1, 1)), "int2": (DType.INT2, (-2, 1))}
ACTIVATIONS = {"NONE": "none", "RELU": "relu", "RELU6": "relu6", "RELU_N1_TO_1": "relu_n1_to_1"}


class Layer:
    """A one-op int8 model and the same layer on the native kernels."""

    def __init__(self, op: str, weights: str, seed: int, *, activation: str = "RELU",
                 stride: tuple[int, int] = (1, 1), dilation: tuple[int, int] = (1, 1),
                 padding: str = "SAME", multiplier: int = 1, batch: int = 2):
        rng = np.random.default_rng(seed)
        self.op, self.weights, self.activation = op, weights, activation
        dtype, (lo, hi) = WEIGHTS[weights]
        self.sx, self.zx = 0.02, int(rng.integers(-20, 20))
        if op == "FULLY_CONNECTED":
            n, k = 37, 75
            self.x = rng.integers(-128, 128, (batch, k), dtype=np.int8)
            wshape, axis, channels = (n, k), 0, n
        elif op == "CONV_2D":
            cin, n = 13, 19
            self.x = rng.integers(-128, 128, (batch, 7, 9, cin), dtype=np.int8)
            wshape, axis, channels = (n, 3, 3, cin), 0, n
        else:
            cin = 20  # not a multiple of 8: LiteRT's tail channels round differently
            channels = cin * multiplier
            self.x = rng.integers(-128, 128, (1, 9, 7, cin), dtype=np.int8)
            wshape, axis = (1, 3, 3, channels), 3
        self.q = rng.integers(lo, hi + 1, wshape).astype(np.int8)
        if weights == "int2":
            self.q.flat[0] = -2  # make sure it is not ternary
        self.scales = (rng.uniform(0.5, 1.5, channels) * 0.8 / max(hi, 1)).astype(np.float32)
        self.bias = rng.integers(-3000, 3000, channels).astype(np.int32)
        self.stride, self.dilation, self.padding = stride, dilation, padding
        self.multiplier, self.axis, self.dtype = multiplier, axis, dtype
        # output parameters from the float result, so the int8 outputs use their range
        real = self.reference(kernels.Quant(1.0, 0), "float32")
        lo_y, hi_y = min(float(real.min()), 0.0), max(float(real.max()), 0.0)
        self.sy = (hi_y - lo_y) / 255 or 1.0
        self.zy = int(np.clip(np.round(-128 - lo_y / self.sy), -128, 127))

    def plan_kwargs(self, output: kernels.Quant, output_type: str) -> dict:
        return dict(input=kernels.Quant(self.sx, self.zx), output=output,
                    activation=ACTIVATIONS[self.activation], bias=self.bias,
                    output_type=output_type, isa="scalar")

    def reference(self, output: kernels.Quant | None = None, output_type: str = "int8"):
        """The native kernels' scalar reference."""
        out = output or kernels.Quant(self.sy, self.zy)
        kw = self.plan_kwargs(out, output_type)
        if self.op == "FULLY_CONNECTED":
            w = kernels.pack(self.q, self.weights, self.scales)
            return kernels.FullyConnected(w, **kw)(self.x)
        if self.op == "CONV_2D":
            w = kernels.pack(self.q.reshape(self.q.shape[0], -1), self.weights, self.scales)
            return kernels.Conv2D(w, input_shape=self.x.shape, kernel=self.q.shape[1:3],
                                  strides=self.stride, dilations=self.dilation,
                                  padding=self.padding.lower(), **kw)(self.x)
        return kernels.DepthwiseConv2D(
            self.q, self.scales, input_shape=self.x.shape, depth_multiplier=self.multiplier,
            strides=self.stride, dilations=self.dilation, padding=self.padding.lower(),
            tail_rounding="away_from_zero", **kw)(self.x)

    def model(self, weight_dtype: DType | None = None) -> Model:
        g = Graph(name="layer")
        x = g.add_tensor(Tensor("x", self.x.shape, DType.INT8,
                                quant=QuantParams.per_tensor(self.sx, self.zx)))
        w = g.add_tensor(Tensor("w", self.q.shape, weight_dtype or self.dtype, data=self.q,
                                quant=QuantParams.per_channel(self.scales, self.axis)))
        bscale = (np.float32(self.sx) * self.scales).astype(np.float32)
        b = g.add_tensor(Tensor("b", self.bias.shape, DType.INT32, data=self.bias,
                                quant=QuantParams.per_channel(bscale, 0)))
        expected = self.reference()
        y = g.add_tensor(Tensor("y", expected.shape, DType.INT8,
                                quant=QuantParams.per_tensor(self.sy, self.zy)))
        attrs: dict = {"fused_activation_function": self.activation}
        if self.op != "FULLY_CONNECTED":
            attrs.update(padding=self.padding, stride_h=self.stride[0], stride_w=self.stride[1],
                         dilation_h_factor=self.dilation[0], dilation_w_factor=self.dilation[1])
            if self.op == "DEPTHWISE_CONV_2D":
                attrs["depth_multiplier"] = self.multiplier
        version = {"FULLY_CONNECTED": 10, "CONV_2D": 7, "DEPTHWISE_CONV_2D": 7}[self.op]
        g.operators.append(Operator(self.op, [x, w, b], [y], attrs=attrs, version=version))
        g.inputs, g.outputs = [x], [y]
        return lower_for_litert(Model([g]))

    def tflite(self) -> bytes:
        return to_tflite_bytes(self.model())

    def litert_reference(self) -> np.ndarray:
        """LiteRT's builtin kernels on the same layer; for our custom ops, the builtin op with
        the same values as INT8 weights (the arithmetic is the same)."""
        model = self.model()
        op = model.main.operators[0]
        if op.type == "CUSTOM":
            builtin = to_builtin(op)
            w = op.inputs[1]
            builtin.inputs[1] = Tensor(w.name, w.shape, DType.INT8, data=w.data, quant=w.quant)
            builtin.version = 3
            model.main.operators[0] = builtin
        interp = backend().interpreter(model_content=to_tflite_bytes(model), xnnpack=False)
        interp.allocate_tensors()
        interp.set_tensor(interp.get_input_details()[0]["index"], self.x)
        interp.invoke()
        return interp.get_tensor(interp.get_output_details()[0]["index"])


def run_delegate(data: bytes, x: np.ndarray, **options) -> tuple[np.ndarray, Interpreter]:
    interp = Interpreter(model_content=data, **options)
    return interp.run(x)[0], interp


CASES = [
    ("FULLY_CONNECTED", w, dict(activation=a)) for w in WEIGHTS for a in ("NONE", "RELU6")
] + [
    ("CONV_2D", w, dict(stride=(1, 2))) for w in WEIGHTS
] + [
    ("CONV_2D", "ternary", dict(padding="VALID", dilation=(2, 1), activation="RELU_N1_TO_1")),
    ("CONV_2D", "int4", dict(padding="VALID", stride=(2, 2), activation="NONE", batch=1)),
] + [
    ("DEPTHWISE_CONV_2D", w, dict(stride=(2, 2))) for w in WEIGHTS
] + [
    ("DEPTHWISE_CONV_2D", "int2", dict(multiplier=2, padding="VALID")),
    ("DEPTHWISE_CONV_2D", "int8", dict(dilation=(2, 2), activation="RELU6")),
]


@pytest.mark.parametrize(("op", "weights", "kw"), CASES,
                         ids=[f"{o}-{w}-{i}" for i, (o, w, _) in enumerate(CASES)])
@pytest.mark.parametrize("xnnpack", [False, True], ids=["builtin", "xnnpack"])
def test_single_layer_bit_exact(op, weights, kw, xnnpack) -> None:
    layer = Layer(op, weights, seed=hash((op, weights, str(kw))) % 1000, **kw)
    data = layer.tflite()
    # claim="all": these layers are small, so the default claim rule leaves XNNPACK's to it
    got, interp = run_delegate(data, layer.x, xnnpack=xnnpack, claim="all")
    expected = layer.reference()
    np.testing.assert_array_equal(got, expected)
    claimed = interp.report.claimed
    assert len(claimed) == 1 and claimed[0].weights == weights, claimed
    assert claimed[0].kernel and claimed[0].isa == kernels.resolve_isa()
    # and LiteRT's own builtin kernels compute the same integers
    np.testing.assert_array_equal(layer.litert_reference(), expected)


def test_claim_rule_leaves_nodes_litert_runs_as_fast() -> None:
    """The default claim rule (native/src/delegate/cost_rule.h): an int8 CONV_2D, which XNNPACK
    runs at least as fast on every ISA the cost table covers, stays with XNNPACK and the report
    says why; with XNNPACK off LiteRT's builtin kernel would run it and the delegate takes it
    (not on a host whose best ISA is scalar, where the builtin kernel is faster)."""
    layer = Layer("CONV_2D", "int8", seed=12, stride=(1, 1))
    data = layer.tflite()
    _, interp = run_delegate(data, layer.x)
    assert not interp.report.claimed
    (skip,) = interp.report.skipped
    assert skip.op == "CONV_2D" and skip.reason.startswith("left to XNNPACK"), skip
    isa = kernels.resolve_isa()
    assert isa in skip.reason, skip  # the ISA the decision was made for
    out, interp = run_delegate(data, layer.x, xnnpack=False)
    if isa == "scalar":
        assert not interp.report.claimed
        return
    (claim,) = interp.report.claimed
    assert "builtin kernel" in claim.reason and "XNNPACK off" in claim.reason, claim
    np.testing.assert_array_equal(out, layer.reference())


def test_custom_ops_are_claimed_and_named() -> None:
    for op, code in (("CONV_2D", "EDGE_CONV_INT2"), ("DEPTHWISE_CONV_2D", "EDGE_DWCONV_INT2")):
        layer = Layer(op, "ternary", seed=3)
        model = layer.model()
        assert model.main.operators[0].custom_code == code
        _, interp = run_delegate(layer.tflite(), layer.x)
        assert interp.report.claimed[0].op == code


def test_precisions_and_ops_options() -> None:
    layer = Layer("FULLY_CONNECTED", "int4", seed=5)
    data = layer.tflite()
    out, interp = run_delegate(data, layer.x, precisions=("int8", "int2"))
    assert not interp.report.claimed
    assert "int4 weights not claimed" in interp.report.skipped[0].reason
    np.testing.assert_array_equal(out, layer.reference())  # LiteRT ran it instead
    _, interp = run_delegate(data, layer.x, ops=("conv_2d",))
    assert not interp.report.claimed
    with pytest.raises(ValueError, match="precisions"):
        Interpreter(model_content=data, precisions=("int3",))
    # custom ops are claimed whatever the precisions option says
    conv = Layer("CONV_2D", "int2", seed=6)
    _, interp = run_delegate(conv.tflite(), conv.x, precisions=("int8",))
    assert interp.report.claimed[0].op == "EDGE_CONV_INT2"


def test_bad_option_is_an_error() -> None:
    from sdk.run.delegate import delegate_path

    with pytest.raises((ValueError, RuntimeError), match="unknown option"):
        backend().load_delegate(str(delegate_path()), {"colour": "blue"})
    from sdk.run.delegate import load_delegate

    with pytest.raises(EdgeSDKError, match="rounding"):
        load_delegate(rounding="nearest")


def test_threads_and_batch_resize() -> None:
    layer = Layer("CONV_2D", "int4", seed=7, batch=1)
    data = layer.tflite()
    one, _ = run_delegate(data, layer.x, num_threads=1)
    two, interp = run_delegate(data, layer.x, num_threads=2)
    np.testing.assert_array_equal(one, two)
    assert interp.report.threads == 2
    # a bigger batch: the delegate kernel follows the resize
    x3 = np.concatenate([layer.x] * 3)
    out3 = interp.run(x3)[0]
    assert out3.shape[0] == 3 and all(np.array_equal(o, one[0]) for o in out3)


def test_stock_litert_api_loads_the_library() -> None:
    """What users without edgesdk's wrapper do: LiteRT's own load_delegate on the .so."""
    from ai_edge_litert.interpreter import Interpreter as LiteRTInterpreter
    from ai_edge_litert.interpreter import load_delegate

    from sdk.run import delegate_path

    layer = Layer("DEPTHWISE_CONV_2D", "ternary", seed=8)
    interp = LiteRTInterpreter(model_content=layer.tflite(),
                               experimental_delegates=[load_delegate(str(delegate_path()))])
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], layer.x)
    interp.invoke()
    out = interp.get_tensor(interp.get_output_details()[0]["index"])
    np.testing.assert_array_equal(out, layer.reference())
