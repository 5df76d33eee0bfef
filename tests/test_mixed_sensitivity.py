"""Issue 15, mixed precision: `mixed.hessian_losses` (each layer's relative output error at
each format, tr(dW H dW^T) / tr(W H W^T)) gives the same figures as the per-format formula it
replaced, with the layer's own output energy computed once per layer, not once per format."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
from sdk.converters.quantize import mixed
from sdk.converters.quantize.gptq import LayerHessian, weight_key
from sdk.converters.quantize.mixed import (
    MixedOptions,
    _weight_noise,
    hessian_losses,
    layer_choices,
)
from sdk.converters.quantize.plan import layer_name
from sdk.converters.quantize.rules import OP_RULES
from sdk.converters.quantize.subbyte import weighted_layers
from sdk.converters.quantize.weights import weight_format

RNG = np.random.default_rng(11)


def _net() -> Model:
    """x -> CONV_2D (8 ch) -> DEPTHWISE_CONV_2D (8 ch) -> RESHAPE -> FULLY_CONNECTED (16)
    -> FULLY_CONNECTED (4), float."""
    g = Graph(name="main")
    conv = {"padding": "SAME", "stride_w": 1, "stride_h": 1, "fused_activation_function": "RELU",
            "dilation_w_factor": 1, "dilation_h_factor": 1}
    fc = {"fused_activation_function": "NONE", "keep_num_dims": False,
          "weights_format": "DEFAULT", "asymmetric_quantize_inputs": False}
    x = g.add_tensor(Tensor("x", (1, 4, 4, 3), DType.FLOAT32))
    t1 = g.add_tensor(Tensor("t1", (1, 4, 4, 8), DType.FLOAT32))
    t2 = g.add_tensor(Tensor("t2", (1, 4, 4, 8), DType.FLOAT32))
    t3 = g.add_tensor(Tensor("t3", (1, 128), DType.FLOAT32))
    t4 = g.add_tensor(Tensor("t4", (1, 16), DType.FLOAT32))
    y = g.add_tensor(Tensor("y", (1, 4), DType.FLOAT32))

    def const(name: str, shape: tuple[int, ...]) -> Tensor:
        return g.constant(name, (RNG.standard_normal(shape) * 0.3).astype(np.float32))

    g.operators += [
        Operator("CONV_2D", [x, const("w1", (8, 3, 3, 3)), const("b1", (8,))], [t1], conv,
                 name="conv"),
        Operator("DEPTHWISE_CONV_2D", [t1, const("w2", (1, 3, 3, 8)), const("b2", (8,))], [t2],
                 {**conv, "depth_multiplier": 1}, name="dw"),
        Operator("RESHAPE", [t2, g.constant("shape", np.array([1, 128], np.int32),
                                            DType.INT32)], [t3], {"new_shape": [1, 128]}),
        Operator("FULLY_CONNECTED", [t3, const("w3", (16, 128)), const("b3", (16,))], [t4], fc,
                 name="fc1"),
        Operator("FULLY_CONNECTED", [t4, const("w4", (4, 16)), const("b4", (4,))], [y], fc,
                 name="fc2"),
    ]
    g.inputs, g.outputs = [x], [y]
    return Model([g])


def _hessians(model: Model) -> dict:
    """A PSD Hessian per layer ([C, K, K] for the depthwise one); the last layer gets an
    all-zero one (no signal: the weights' own error is the fallback), the first none."""
    out = {}
    for op in weighted_layers(model)[1:]:
        w = op.inputs[OP_RULES[op.type].weight].numpy()
        axis = OP_RULES[op.type].weight_axis
        c = w.shape[axis]
        k = w.size // c
        if op.type == "DEPTHWISE_CONV_2D":
            x = RNG.standard_normal((c, 40, k))
            h = np.einsum("cnk,cnl->ckl", x, x) / 20.0
        elif op is weighted_layers(model)[-1]:
            h = np.zeros((k, k))
        else:
            x = RNG.standard_normal((40, k)) + 2.0
            h = x.T @ x / 20.0
        out[weight_key(w)] = LayerHessian([layer_name(op)], op.type, h.astype(np.float32), 40)
    return out


def _old_losses(model: Model, choices, hessians) -> dict:
    """The formula as it was before (everything per format), kept here as the reference."""
    ops = {layer_name(op): op for op in weighted_layers(model)}
    out: dict = {}
    for c in choices:
        op = ops[c.name]
        rule = OP_RULES[op.type]
        w = op.inputs[rule.weight].numpy()
        h = hessians.get(weight_key(w))
        out[c.name] = {}
        for f in c.formats:
            if h is None:
                out[c.name][f] = _weight_noise(op, f)
                continue
            wf = weight_format(f)
            q = wf.quantize(w, rule.weight_axis, wf.default_method)
            deq = np.asarray(q.quant.dequantize(q.values), np.float64).reshape(w.shape)
            rows = np.moveaxis(np.asarray(w, np.float64), rule.weight_axis, 0)
            rows = rows.reshape(rows.shape[0], -1)
            err = np.moveaxis(deq, rule.weight_axis, 0).reshape(rows.shape) - rows
            hm = np.asarray(h.hessian, np.float64)
            if hm.ndim == 3:
                noise = float(np.einsum("ck,ckl,cl->", err, hm, err))
                signal = float(np.einsum("ck,ckl,cl->", rows, hm, rows))
            else:
                noise = float(np.einsum("ck,kl,cl->", err, hm, err))
                signal = float(np.einsum("ck,kl,cl->", rows, hm, rows))
            out[c.name][f] = noise / signal if signal > 0 else _weight_noise(op, f)
    return out


def test_losses_are_the_per_format_formula_bit_for_bit() -> None:
    model = _net()
    choices = layer_choices(model, MixedOptions(keep_first=False, keep_last=False))
    assert len(choices) == 4 and all(len(c.formats) >= 3 for c in choices)
    hessians = _hessians(model)
    got = hessian_losses(model, None, choices, hessians)  # type: ignore[arg-type]
    want = _old_losses(model, choices, hessians)
    assert got == want  # exact: the same float64 arithmetic, in the same order
    for c in choices:  # sane figures: INT8 adds least, and every one is finite and >= 0
        v = got[c.name]
        assert all(math.isfinite(x) and x >= 0 for x in v.values())
        assert v["int8"] <= min(x for f, x in v.items() if f != "int8")


def test_output_energy_is_computed_once_per_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    """One quadratic form for tr(W H W^T) per layer with a Hessian, one per format for the
    error (before: two per format). Fails on the per-format code (2 F per layer)."""
    model = _net()
    choices = layer_choices(model, MixedOptions(keep_first=False, keep_last=False))
    hessians = _hessians(model)
    calls = []
    real = np.einsum

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(mixed.np, "einsum", counting)
    hessian_losses(model, None, choices, hessians)  # type: ignore[arg-type]
    monkeypatch.undo()
    with_h = choices[1:]  # the first layer has no Hessian: no quadratic forms
    # the zero-Hessian layer: its energy once, then the weights' own error (no forms)
    expect = sum(1 + len(c.formats) for c in with_h[:-1]) + 1
    assert len(calls) == expect


def _shared_name_net() -> Model:
    """x -> FULLY_CONNECTED "gates" (16) and FULLY_CONNECTED "gates" (16) -> ADD -> FC "out":
    two ops of one plan name (an ONNX LSTM's gate matrices are lowered so)."""
    g = Graph(name="main")
    fc = {"fused_activation_function": "NONE", "keep_num_dims": False,
          "weights_format": "DEFAULT", "asymmetric_quantize_inputs": False}
    x = g.add_tensor(Tensor("x", (1, 32), DType.FLOAT32))
    a = g.add_tensor(Tensor("a", (1, 16), DType.FLOAT32))
    b = g.add_tensor(Tensor("b", (1, 16), DType.FLOAT32))
    s = g.add_tensor(Tensor("s", (1, 16), DType.FLOAT32))
    y = g.add_tensor(Tensor("y", (1, 4), DType.FLOAT32))
    w1 = g.constant("w1", (RNG.standard_normal((16, 32)) * 0.3).astype(np.float32))
    w2 = g.constant("w2", (RNG.standard_normal((16, 32)) * 0.05).astype(np.float32))
    w3 = g.constant("w3", (RNG.standard_normal((4, 16)) * 0.3).astype(np.float32))
    g.operators += [Operator("FULLY_CONNECTED", [x, w1, None], [a], fc, name="gates"),
                    Operator("FULLY_CONNECTED", [x, w2, None], [b], fc, name="gates"),
                    Operator("ADD", [a, b], [s], {"fused_activation_function": "NONE"}),
                    Operator("FULLY_CONNECTED", [s, w3, None], [y], fc, name="out")]
    g.inputs, g.outputs = [x], [y]
    return Model([g])


def test_ops_of_one_name_are_one_choice() -> None:
    """The plan gives a name one precision: one choice with both ops' weights (before: one
    choice per op, each counting only its own bytes, so a move saved twice what was
    estimated), and its loss is the two ops' output errors over their output energies."""
    model = _shared_name_net()
    choices = layer_choices(model, MixedOptions())
    assert [c.name for c in choices] == ["gates", "out"]
    gates = choices[0]
    assert gates.elements == 2 * 16 * 32 and gates.pinned
    assert gates.nbytes[gates.formats.index("int4")] == 16 * 32
    ops = weighted_layers(model)
    hs = {}
    for op in ops:
        x = RNG.standard_normal((40, op.inputs[1].shape[1]))
        hs[weight_key(op.inputs[1].numpy())] = LayerHessian([layer_name(op)], op.type,
                                                            (x.T @ x / 20.0), 40)
    got = hessian_losses(model, None, choices, hs)  # type: ignore[arg-type]
    # by hand: sum of tr(e H e^T) over sum of tr(W H W^T) of the two ops
    for f in gates.formats:
        noise = signal = 0.0
        for op in ops[:2]:
            w = op.inputs[1].numpy().astype(np.float64)
            h = np.asarray(hs[weight_key(op.inputs[1].numpy())].hessian, np.float64)
            wf = weight_format(f)
            q = wf.quantize(op.inputs[1].numpy(), 0, wf.default_method)
            e = np.asarray(q.quant.dequantize(q.values), np.float64).reshape(w.shape) - w
            noise += float(np.einsum("ck,kl,cl->", e, h, e))
            signal += float(np.einsum("ck,kl,cl->", w, h, w))
        assert got["gates"][f] == pytest.approx(noise / signal, rel=1e-12)
