"""A float LOG that reads an int8 tensor never computes log(0) for a value the float model keeps
positive.

An int8 tensor with a range [0, hi] reads every value under half a step (hi / 255 / 2) as exactly
0. When a float LOG reads it (LiteRT has no int8 LOG), each such element comes out as -inf: a
log-mel's floor constant (max(mel, 1e-6), mel + 1e-6) under half a step rounds away with the
quiet bins, and one -inf makes every later layer (and the validation's SQNR) useless. The front
end before a shallow LOG stays float (`int8._Rewrite.keep_log_front_ends`); a LOG deeper in a
network keeps its int8 input, and there the rewrite puts one float MAXIMUM between the
DEQUANTIZE and the LOG (`guard`): every value int8 rounded to 0 reads as `FLOOR_STEPS` of a
step (such values came from [0, step / 2)), and the values int8 does hold pass unchanged (they
are at least one step). Only for tensors whose
calibrated range never went below 0: a LOG of a value the float model makes negative or 0 is
NaN / -inf in the float model too.
"""

from __future__ import annotations

import numpy as np

from sdk.converters.ir import DType, Graph, Operator, QuantParams, Tensor

#: the ops whose float input is guarded (log(0) = -inf)
GUARDED = frozenset({"LOG"})
#: the floor, in int8 steps, for a value int8 read as 0 (it lay in (0, step / 2)): measured on a
#: log-mel under a 24-layer network (tests/test_quant_log_guard.py, 36% of the bins read as 0),
#: output SQNR 10.4 dB at 1/2 step, 12.5 dB at 1/4 and 1/8, 10.4 dB at 1/16
FLOOR_STEPS = 0.125


def needs_guard(x: Tensor, calibrated_lo: float | None) -> bool:
    """Whether the float op reading `x` (its int8 home, with parameters) needs a floor: `x` is
    int8 and the float model kept it non-negative on every calibration sample. An int16 tensor
    (16x8) is left as it is: its step is 256 times finer, and a 16x8 model stays 16x8."""
    if x.dtype not in (DType.INT8, DType.UINT8) or x.quant is None \
            or not x.quant.scale.size:
        return False
    return calibrated_lo is not None and calibrated_lo >= 0.0


def floor_for(params: QuantParams) -> float:
    """The value a quantised 0 of a non-negative tensor reads as in front of a LOG."""
    return float(np.max(params.scale)) * FLOOR_STEPS


def guard(g: Graph, x_float: Tensor, params: QuantParams, op: Operator) -> Operator:
    """MAXIMUM(x_float, floor): the op to put before `op`, whose input `x_float` (the DEQUANTIZE
    of a tensor with `params`) it replaces; `op.inputs[0]` is rewired to its output."""
    floor = g.constant(f"{x_float.name}/log_floor", np.array(floor_for(params), np.float32))
    out = g.add_tensor(Tensor(g.unique_name(f"{x_float.name}/floored"), x_float.shape,
                              DType.FLOAT32, shape_signature=x_float.shape_signature))
    op.inputs[0] = out
    return Operator("MAXIMUM", [x_float, floor], [out],
                    name=f"{op.name or op.label}/log_floor")


__all__ = ["FLOOR_STEPS", "GUARDED", "floor_for", "guard", "needs_guard"]
