"""Sliding-window attributes (kernel, strides, dilations, pads) and how ONNX's explicit padding
maps onto TFLite's two padding modes.

TFLite knows SAME (output ceil(in / stride), padding split with the smaller half first) and VALID.
ONNX pads that equal SAME's, or are zero, map directly. Anything else becomes an explicit PAD
(or PADV2 with -inf before a max pool) followed by a VALID window: exact, one extra op.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from sdk.converters.ir import Tensor
from sdk.converters.onnx.graph import Node
from sdk.converters.onnx.lowering import Lowering

_LOWEST_F32 = float(np.finfo(np.float32).min)


@dataclass(frozen=True)
class Window:
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]

    def span(self, i: int) -> int:
        return (self.kernel[i] - 1) * self.dilations[i] + 1

    def lift_1d(self) -> Window:
        """The 2-D window of a 1-D op run as height-1 2-D."""
        return Window((1, *self.kernel), (1, *self.strides), (1, *self.dilations),
                      (0, *self.pads_begin), (0, *self.pads_end))


def window(ctx: Lowering, node: Node, in_spatial: tuple[int, ...],
           kernel: tuple[int, ...]) -> Window:
    n = len(kernel)
    strides = tuple(int(s) for s in (node.attr("strides") or [1] * n))
    dilations = tuple(int(d) for d in (node.attr("dilations") or [1] * n))
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for i in range(n):
            out = math.ceil(in_spatial[i] / strides[i])
            total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1
                        - in_spatial[i], 0)
            small = total // 2
            b = small if auto_pad == "SAME_UPPER" else total - small
            begin.append(b)
            end.append(total - b)
        return Window(tuple(kernel), strides, dilations, tuple(begin), tuple(end))
    if auto_pad == "VALID":
        zeros = (0,) * n
        return Window(tuple(kernel), strides, dilations, zeros, zeros)
    pads = [int(p) for p in (node.attr("pads") or [0] * (2 * n))]
    if any(p < 0 for p in pads):
        raise ctx.unsupported(f"negative pads {pads}")
    return Window(tuple(kernel), strides, dilations, tuple(pads[:n]), tuple(pads[n:]))


def same_padding_matches(win: Window, in_hw: tuple[int, ...], out_hw: tuple[int, ...]) -> bool:
    for i in range(len(in_hw)):
        expected = math.ceil(in_hw[i] / win.strides[i])
        total = max((expected - 1) * win.strides[i] + win.span(i) - in_hw[i], 0)
        if out_hw[i] != expected or win.pads_begin[i] != total // 2:
            return False
    return True


def valid_padding_matches(win: Window, in_hw: tuple[int, ...], out_hw: tuple[int, ...]) -> bool:
    return all(win.pads_begin[i] == 0 and
               out_hw[i] == (in_hw[i] - win.span(i)) // win.strides[i] + 1
               for i in range(len(in_hw)))


def pad_input(ctx: Lowering, x: Tensor, in_hw: tuple[int, int], win: Window,
              out_hw: tuple[int, int], kind: str) -> tuple[str, Tensor]:
    """TFLite padding mode for a window op on NHWC `x`, padding `x` first when needed.

    kind: "zero" (convolution; padded zeros take part), "max" (max pool: padding never wins),
    "explicit" (always a PAD of zeros when padding is needed: average pools whose count
    differs from TFLite's rescale the result themselves).
    """
    if valid_padding_matches(win, in_hw, out_hw):  # windows never reach the end padding
        return "VALID", x
    if kind != "explicit" and same_padding_matches(win, in_hw, out_hw):
        return "SAME", x
    ends = [max((out_hw[i] - 1) * win.strides[i] + win.span(i) - in_hw[i] - win.pads_begin[i], 0)
            for i in range(2)]
    paddings = np.array([[0, 0], [win.pads_begin[0], ends[0]], [win.pads_begin[1], ends[1]],
                         [0, 0]], dtype=np.int32)
    shape = (x.shape[0], x.shape[1] + int(paddings[1].sum()), x.shape[2] + int(paddings[2].sum()),
             x.shape[3])
    out = ctx.new(f"{x.name}/padded", shape, x.dtype)
    pads_t = ctx.int32(f"{out.name}/paddings", paddings)
    if kind == "max":
        lowest = ctx.constant(f"{out.name}/lowest", np.array(_LOWEST_F32, np.float32))
        ctx.emit("PADV2", [x, pads_t, lowest], [out])
    else:
        ctx.emit("PAD", [x, pads_t], [out])
    return "VALID", out


def no_padding(win: Window) -> Window:
    zeros = (0,) * len(win.kernel)
    return replace(win, pads_begin=zeros, pads_end=zeros)
