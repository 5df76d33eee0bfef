"""Measure what the installed LiteRT does with sub-byte weights: `litert_support.MATRIX`, live.

    python -m sdk.converters.quantize.litert_probe    # prints the measured matrix as Markdown

For one (op, weight type, activations, block-wise?) it writes a single-layer model (random
weights quantised the way our exporter does; int8 activations static with fixed parameters, or
float activations), runs it under XNNPACK and under LiteRT's builtin kernels, and compares with
a float64 reference computed from the dequantised weights: ``ok`` when the relative error is
within what the activation rounding explains, ``wrong`` when LiteRT runs it but the result is
off, ``rejected`` when LiteRT refuses the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdk.converters.ir import DType, Graph, Model, Operator, QuantParams, Tensor
from sdk.converters.quantize.lowbit import blockwise_int4
from sdk.converters.tflite.litert_support import MATRIX, OK, REJECTED, WRONG, Support
from sdk.converters.tflite.writer import to_tflite_bytes

#: relative L2 error under which a result is "ok" (int8 activation rounding gives ~0.01)
OK_RELATIVE_ERROR = 0.05
_VERSIONS = {("FULLY_CONNECTED", "int8"): 10, ("CONV_2D", "int8"): 7,
             ("DEPTHWISE_CONV_2D", "int8"): 7}


@dataclass(frozen=True)
class Probe:
    model: bytes
    feed: np.ndarray
    reference: np.ndarray
    #: output q -> real (identity for float outputs)
    output_scale: float = 1.0
    output_zero_point: int = 0


def _conv_reference(x: np.ndarray, w: np.ndarray, bias: np.ndarray, depthwise: bool) -> np.ndarray:
    """SAME padding, stride 1, NHWC; w is [O, KH, KW, I] or depthwise [1, KH, KW, C]."""
    _, h, wd, c = x.shape
    kh, kw = w.shape[1], w.shape[2]
    ph, pw = (kh - 1) // 2, (kw - 1) // 2
    xp = np.zeros((1, h + kh - 1, wd + kw - 1, c))
    xp[:, ph:ph + h, pw:pw + wd] = x
    out = np.zeros((1, h, wd, w.shape[3] if depthwise else w.shape[0]))
    for i in range(h):
        for j in range(wd):
            patch = xp[0, i:i + kh, j:j + kw, :]
            out[0, i, j] = ((patch * w[0]).sum(axis=(0, 1)) if depthwise
                            else np.einsum("hwi,ohwi->o", patch, w))
    return out + bias


def build_probe(op: str, weights: DType, activations: str, blockwise: bool = False,
                activation: str = "RELU", seed: int = 0, extreme: bool = False) -> Probe:
    """A single-layer model of `op` with `weights`-typed weights; `extreme` puts the type's most
    negative value (INT4 -8, INT2 -2) into every channel (min/max scales never produce it)."""
    rng = np.random.default_rng(seed)
    g = Graph(name="probe")
    qmax = {DType.INT4: 7, DType.INT2: 1, DType.INT8: 127}[weights]
    lo, hi = weights.value_range  # type: ignore[misc]
    if op == "FULLY_CONNECTED":
        xshape, wf, axis = (2, 64), rng.standard_normal((32, 64)).astype(np.float32) * 0.1, 0
        channels = 32
    elif op == "CONV_2D":
        xshape, axis, channels = (1, 6, 6, 32), 0, 16
        wf = rng.standard_normal((16, 3, 3, 32)).astype(np.float32) * 0.1
    elif op == "DEPTHWISE_CONV_2D":
        xshape, axis, channels = (1, 6, 6, 32), 3, 32
        wf = rng.standard_normal((1, 3, 3, 32)).astype(np.float32) * 0.3
    else:
        raise ValueError(f"cannot probe {op}")
    if blockwise:
        if weights is not DType.INT4:
            # INT2 block-wise: same layout as INT4's, values in the INT2 range
            q4 = blockwise_int4(wf.reshape(wf.shape[0], -1), 32)
            q = np.clip(q4.values, lo, hi).reshape(wf.shape)
            quant = q4.quant
        else:
            q4 = blockwise_int4(wf.reshape(wf.shape[0], -1), 32)
            q, quant = q4.values.reshape(wf.shape), q4.quant
        deq = quant.dequantize(q.reshape(q.shape[0], -1)).reshape(wf.shape)
    else:
        moved = np.moveaxis(wf, axis, 0).reshape(channels, -1)
        scales = np.abs(moved).max(axis=1) / qmax
        shape = [1] * wf.ndim
        shape[axis] = -1
        q = np.clip(np.round(wf / scales.reshape(shape)), lo, hi).astype(np.int8)
        if extreme:
            np.moveaxis(q, axis, 0).reshape(channels, -1)[:, 0] = lo
        quant = QuantParams.per_channel(scales, axis)
        deq = q * scales.reshape(shape)
    w = g.add_tensor(Tensor("w", wf.shape, weights, data=q.astype(np.int8), quant=quant))
    bf = (rng.standard_normal(channels) * 0.1).astype(np.float32)
    xf = rng.uniform(-1, 1, xshape).astype(np.float32)
    attrs: dict[str, object] = {"fused_activation_function": activation}
    if op != "FULLY_CONNECTED":
        attrs.update(padding="SAME", stride_w=1, stride_h=1)
        if op == "DEPTHWISE_CONV_2D":
            attrs["depth_multiplier"] = 1

    def compute(xd: np.ndarray) -> np.ndarray:
        if op == "FULLY_CONNECTED":
            y = xd @ deq.astype(np.float64).T + bf
        else:
            y = _conv_reference(xd, deq.astype(np.float64), bf, op == "DEPTHWISE_CONV_2D")
        return np.maximum(y, 0) if activation == "RELU" else y

    if activations == "float32":
        x = g.add_tensor(Tensor("x", xshape, DType.FLOAT32))
        b = g.constant("b", bf)
        reference = compute(xf.astype(np.float64))
        y = g.add_tensor(Tensor("y", reference.shape, DType.FLOAT32))
        feed, out_scale, out_zp, version = xf, 1.0, 0, 1
    else:
        sx = 2.0 / 255
        xq = np.clip(np.round(xf / sx), -128, 127).astype(np.int8)
        reference = compute(xq.astype(np.float64) * sx)
        lo_y, hi_y = min(float(reference.min()), 0.0), max(float(reference.max()), 0.0)
        out_scale = (hi_y - lo_y) / 255
        out_zp = int(np.round(-128 - lo_y / out_scale))
        x = g.add_tensor(Tensor("x", xshape, DType.INT8, quant=QuantParams.per_tensor(sx, 0)))
        if blockwise:
            bscale = np.full(channels, sx, np.float32)
        else:
            bscale = (np.float32(sx) * quant.scale.astype(np.float32)).astype(np.float32)
        b = g.add_tensor(Tensor("b", (channels,), DType.INT32,
                                data=np.round(bf / bscale).astype(np.int32),
                                quant=QuantParams.per_channel(bscale, 0)))
        y = g.add_tensor(Tensor("y", reference.shape, DType.INT8,
                                quant=QuantParams.per_tensor(out_scale, out_zp)))
        feed, version = xq, _VERSIONS[(op, "int8")] if weights is DType.INT4 else 4
    g.operators.append(Operator(op, [x, w, b], [y], attrs=attrs, version=version))
    g.inputs, g.outputs = [x], [y]
    return Probe(to_tflite_bytes(Model([g])), feed, reference, out_scale, out_zp)


def run_probe(probe: Probe, xnnpack: bool) -> str:
    """ok / wrong / rejected for one kernel family."""
    from sdk.run.litert import backend

    try:
        interp = backend().interpreter(model_content=probe.model, xnnpack=xnnpack)
        interp.allocate_tensors()
        interp.set_tensor(interp.get_input_details()[0]["index"], probe.feed)
        interp.invoke()
        out = interp.get_tensor(interp.get_output_details()[0]["index"])
    except (RuntimeError, ValueError):
        return REJECTED
    real = (out.astype(np.float64) - probe.output_zero_point) * probe.output_scale
    err = np.linalg.norm(real - probe.reference) / max(np.linalg.norm(probe.reference), 1e-12)
    return OK if np.isfinite(err) and err < OK_RELATIVE_ERROR else WRONG


def measure(row: Support) -> tuple[str, str]:
    """(XNNPACK outcome, builtin outcome) of one matrix row on the installed LiteRT. Rows about
    fused activations are measured with RELU (the case that breaks)."""
    probe = build_probe(row.op, row.weights, row.activations, row.blockwise)
    return run_probe(probe, xnnpack=True), run_probe(probe, xnnpack=False)


def main() -> None:
    lines = ["| op | weights | activations | block-wise | XNNPACK | builtin |",
             "|---|---|---|---|---|---|"]
    for row in MATRIX:
        xnn, builtin = measure(row)
        lines.append(f"| {row.op} | {row.weights.name} | {row.activations} | "
                     f"{'yes' if row.blockwise else 'no'} | {xnn} | {builtin} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()


__all__ = ["OK", "REJECTED", "WRONG", "Probe", "build_probe", "measure", "run_probe"]
