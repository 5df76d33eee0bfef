"""Clean-ups of the lowered IR graph (TFLite ops), run before it is handed out.

- A constant MUL right after CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED / TRANSPOSE_CONV
  (a scale per output channel or one for all: Paddle's learnable affine blocks, an unfolded
  BatchNorm) goes into the weights and bias; then a constant ADD right after such an op
  (PyTorch's MatMul + Add for Linear layers on rank > 2 inputs, the affine block's shift) goes
  into the bias. Left as ops, each is one more int8 requantisation (PP-OCRv4's backbone has two
  per layer).
- A constant affine x * s + b (MUL and / or ADD, per channel or one value) read only by a
  CONV_2D / DEPTHWISE_CONV_2D whose kernel reads no padding (1x1, or VALID), or by a
  FULLY_CONNECTED, goes into that op's weights and bias: an int8 range must hold 0, so a
  shifted tensor (hard-swish output + b) keeps fewer bits than the tensor before the shift.
- RELU / RELU6 / RELU_N1_TO_1 after an op that has a fused activation is fused into it.
- TRANSPOSE -> RESHAPE (flatten) -> FULLY_CONNECTED: the transpose only restores ONNX's NCHW
  element order for the flatten; permuting the weights' input columns instead removes it.
- A TRANSPOSE right after an element-wise op with constant operands (input normalisation before
  the first conv) moves before it, towards the graph input, where it can meet another transpose
  or be absorbed by channels-last I/O.
- Chains of RESHAPEs collapse; back-to-back TRANSPOSEs compose; identities disappear.
- SELECT_V2 between the outputs of one element-wise op type (a run-time If whose branches both
  end in a sigmoid) becomes that op applied to the SELECT_V2 of their inputs: one op instead of
  two, and the value is made by the op itself (what an INT8 export's fixed-scale output rules
  look for).
- With channels-last I/O, a TRANSPOSE at a graph input or output is absorbed into it.
"""

from __future__ import annotations

import numpy as np

from sdk.converters.ir import DType, Graph, Operator, Tensor
from sdk.converters.onnx import layout

_FUSED_ACTIVATION = {"RELU", "RELU6", "RELU_N1_TO_1"}
_TAKES_ACTIVATION = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL",
                     "AVERAGE_POOL_2D", "MAX_POOL_2D"}
_BIAS_INDEX = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3}
#: element-wise ops a TRANSPOSE commutes with (constant operands are permuted along)
_ELEMENTWISE = frozenset({
    "ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "POW", "SQUARED_DIFFERENCE", "PRELU",
    "RELU", "RELU6", "RELU_N1_TO_1", "LOGISTIC", "TANH", "HARD_SWISH", "LEAKY_RELU", "ELU",
    "GELU", "ABS", "NEG", "EXP", "LOG", "SQRT", "RSQRT", "FLOOR", "CEIL", "ROUND", "SIN", "COS",
    "SIGN", "CAST"})


class _Uses:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.refresh()

    def refresh(self) -> None:
        self.producer = self.graph.producers()
        self.consumers = self.graph.consumers()
        self.io = {id(t) for t in (*self.graph.inputs, *self.graph.outputs)}

    def only_reader(self, t: Tensor, op: Operator) -> bool:
        """`op` is the only reader of `t`, and `t` is no graph output."""
        return id(t) not in self.io and [id(o) for o in self.consumers.get(t, [])] == [id(op)]


def optimize(graph: Graph) -> None:
    fold_flatten_transpose(graph)
    fold_scale_mul(graph)
    fold_bias_add(graph)
    fold_input_affine(graph)
    fuse_activations(graph)
    hoist_select_unary(graph)
    hoist_transposes(graph)
    collapse_reshapes(graph)
    share_duplicates(graph)
    graph.prune()


class _Names:
    """The graph's tensor names, gathered once per pass (Graph.constant gathers them on every
    call, which made passes that add a constant per match quadratic)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.taken = {t.name for t in graph.tensors}
        self.next: dict[str, int] = {}

    def constant(self, base: str, data: np.ndarray) -> Tensor:
        name, i = base, self.next.get(base, 1)
        while name in self.taken:
            name = f"{base}_{i}"
            i += 1
        self.next[base] = i
        self.taken.add(name)
        arr = np.asarray(data)
        arr = np.ascontiguousarray(arr.astype(DType.from_numpy(arr.dtype).numpy, copy=False))
        return self.graph.add_tensor(Tensor(name, arr.shape, DType.from_numpy(arr.dtype),
                                            data=arr))


def _remove(graph: Graph, op: Operator) -> None:
    graph.operators = [o for o in graph.operators if o is not op]


#: the output-channel axis of each weighted op's weights
_WEIGHT_OUT_AXIS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0,
                    "TRANSPOSE_CONV": 0}


def _channel_vector(c: Tensor, x: Tensor) -> np.ndarray | None:
    """A constant operand of an element-wise op on `x` as one value per channel (x's last
    axis), or None when it varies along another axis."""
    channels = x.shape[-1] if x.shape else 0
    cv = c.numpy()
    if not channels or cv.ndim > x.rank or any(d != 1 for d in cv.shape[:-1]) or \
            (cv.ndim and cv.shape[-1] not in (1, channels)):
        return None
    return np.broadcast_to(cv.reshape(-1).astype(np.float64), (channels,))


def fold_scale_mul(graph: Graph) -> None:
    """op(x; W, b) * s -> op(x; W * s, b * s) for a constant s per output channel (or one s),
    where op is a weighted op with float weights and no fused activation, read only by the MUL
    (the float function is the same up to rounding)."""
    uses = _Uses(graph)
    names = _Names(graph)
    removed: set[int] = set()
    for mul in list(graph.operators):
        if mul.type != "MUL" or mul.attrs.get("fused_activation_function", "NONE") != "NONE":
            continue
        for x, c in ((mul.inputs[0], mul.inputs[1]), (mul.inputs[1], mul.inputs[0])):
            if x is None or c is None or not c.is_constant or x.is_constant:
                continue
            op = uses.producer.get(x)
            if op is None or op.type not in _WEIGHT_OUT_AXIS or not uses.only_reader(x, mul) \
                    or op.attrs.get("fused_activation_function", "NONE") != "NONE":
                continue
            w = op.inputs[1] if len(op.inputs) > 1 else None
            k = _BIAS_INDEX[op.type]
            old = op.inputs[k] if len(op.inputs) > k else None
            if w is None or not w.is_constant or w.dtype is not DType.FLOAT32 or \
                    (old is not None and not (old.is_constant and old.dtype is DType.FLOAT32)):
                continue
            s = _channel_vector(c, x)
            wv = w.numpy()
            axis = _WEIGHT_OUT_AXIS[op.type]
            if s is None or wv.ndim <= axis or wv.shape[axis] != s.size \
                    or mul.outputs[0].shape != x.shape:
                continue
            shape = [1] * wv.ndim
            shape[axis] = -1
            op.inputs[1] = names.constant(f"{w.name}/scaled",
                                          (wv.astype(np.float64) * s.reshape(shape))
                                          .astype(np.float32))
            if old is not None:
                op.inputs[k] = names.constant(f"{old.name}/scaled",
                                              (old.numpy().astype(np.float64) * s)
                                              .astype(np.float32))
            op.outputs = [mul.outputs[0]]
            removed.add(id(mul))
            uses.producer[mul.outputs[0]] = op
            uses.producer.pop(x, None)
            uses.consumers.pop(x, None)
            break
    if removed:
        graph.operators = [o for o in graph.operators if id(o) not in removed]


def _reads_no_padding(op: Operator) -> bool:
    w = op.inputs[1]
    assert w is not None
    if op.type == "FULLY_CONNECTED":
        return True
    kh, kw = w.shape[1], w.shape[2]
    return op.attrs.get("padding") == "VALID" or (kh == 1 and kw == 1)


def _constant_operand(op: Operator) -> tuple[Tensor, Tensor] | None:
    """(activation, constant) of a binary op with exactly one constant operand."""
    if len(op.inputs) != 2 or op.attrs.get("fused_activation_function", "NONE") != "NONE":
        return None
    a, b = op.inputs
    if a is None or b is None or a.is_constant == b.is_constant:
        return None
    return (b, a) if a.is_constant else (a, b)


def fold_input_affine(graph: Graph) -> None:
    """op(x * s + b) -> op'(x) for a weighted op that reads no padding: W' = W * s along its
    input channels, bias' = bias + sum(W * b) (s, b constants per input channel or one value;
    the MUL, the ADD or both, each read only by the next)."""
    uses = _Uses(graph)
    names = _Names(graph)
    removed: set[int] = set()
    for op in list(graph.operators):
        if op.type not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") \
                or len(op.inputs) < 2:
            continue
        w = op.inputs[1]
        bias = op.inputs[2] if len(op.inputs) > 2 else None
        if w is None or not w.is_constant or w.dtype is not DType.FLOAT32 or \
                (bias is not None and not (bias.is_constant and bias.dtype is DType.FLOAT32)) \
                or not _reads_no_padding(op):
            continue
        x = op.inputs[0]
        if x is None or not x.shape:
            continue
        channels = x.shape[-1]
        scale, shift = np.ones(channels), np.zeros(channels)
        absorbed: list[Operator] = []
        while True:
            prev = uses.producer.get(x)
            reader = absorbed[-1] if absorbed else op
            if prev is None or prev.type not in ("MUL", "ADD") or id(prev) in removed \
                    or not uses.only_reader(x, reader):
                break
            pair = _constant_operand(prev)
            if pair is None or pair[0].shape != x.shape:
                break
            v = _channel_vector(pair[1], pair[0])
            if v is None:
                break
            # op reads x * scale + shift, and x = x' + v (ADD) or x' * v (MUL)
            if prev.type == "ADD":
                shift = shift + v * scale
            else:
                scale = scale * v
            absorbed.append(prev)
            x = pair[0]
        if not absorbed:
            continue
        wv = w.numpy().astype(np.float64)
        if op.type == "FULLY_CONNECTED":
            if wv.ndim != 2 or wv.shape[1] != channels:
                continue
            new_w = wv * scale[None, :]
            extra = wv @ shift
        elif op.type == "CONV_2D":
            if wv.ndim != 4 or wv.shape[3] != channels:
                continue
            new_w = wv * scale.reshape(1, 1, 1, -1)
            extra = np.einsum("ohwi,i->o", wv, shift)
        else:                              # [1, kh, kw, C * M], output k reads input k // M
            if wv.ndim != 4 or wv.shape[3] % channels:
                continue
            per = np.repeat(scale, wv.shape[3] // channels)
            new_w = wv * per.reshape(1, 1, 1, -1)
            extra = wv.sum(axis=(0, 1, 2)) * np.repeat(shift, wv.shape[3] // channels)
        out_channels = new_w.shape[3] if op.type == "DEPTHWISE_CONV_2D" else new_w.shape[0]
        old_b = bias.numpy().astype(np.float64) if bias is not None else np.zeros(out_channels)
        op.inputs[1] = names.constant(f"{w.name}/affine", new_w.astype(np.float32))
        new_b = names.constant(f"{op.outputs[0].name}/bias_affine",
                               (old_b + extra).astype(np.float32))
        if len(op.inputs) > 2:
            op.inputs[2] = new_b
        else:
            op.inputs.append(new_b)
        op.inputs[0] = x
        for a in absorbed:
            removed.add(id(a))
        uses.consumers[x] = [op if o is absorbed[-1] else o for o in uses.consumers.get(x, [])]
    if removed:
        graph.operators = [o for o in graph.operators if id(o) not in removed]


def fold_bias_add(graph: Graph) -> None:
    uses = _Uses(graph)
    names = _Names(graph)
    removed: set[int] = set()
    for add in list(graph.operators):
        if add.type != "ADD" or add.attrs.get("fused_activation_function", "NONE") != "NONE":
            continue
        for x, c in ((add.inputs[0], add.inputs[1]), (add.inputs[1], add.inputs[0])):
            if x is None or c is None or not c.is_constant or x.is_constant:
                continue
            op = uses.producer.get(x)
            if op is None or op.type not in _BIAS_INDEX or not uses.only_reader(x, add):
                continue
            if op.attrs.get("fused_activation_function", "NONE") != "NONE":
                continue
            v = _channel_vector(c, x)
            if v is None:
                continue
            k = _BIAS_INDEX[op.type]
            old = op.inputs[k] if len(op.inputs) > k else None
            base = old.numpy() if old is not None else np.zeros(v.size, np.float32)
            new_bias = (base.astype(np.float64) + v).astype(np.float32)
            bias = names.constant(f"{op.outputs[0].name}/bias", new_bias)
            while len(op.inputs) <= k:
                op.inputs.append(None)
            op.inputs[k] = bias
            op.outputs = [add.outputs[0]]
            removed.add(id(add))
            # local update (only these entries change): op now makes add's output, x is gone
            uses.producer[add.outputs[0]] = op
            uses.producer.pop(x, None)
            uses.consumers.pop(x, None)
            uses.consumers[c] = [o for o in uses.consumers.get(c, []) if o is not add]
            if old is not None:
                uses.consumers[old] = [o for o in uses.consumers.get(old, []) if o is not op]
            uses.consumers[bias] = [op]
            break
    if removed:
        graph.operators = [o for o in graph.operators if id(o) not in removed]


def fuse_activations(graph: Graph) -> None:
    uses = _Uses(graph)
    for act in list(graph.operators):
        if act.type not in _FUSED_ACTIVATION:
            continue
        x = act.inputs[0]
        op = uses.producer.get(x) if x is not None else None
        if op is None or op.type not in _TAKES_ACTIVATION or not uses.only_reader(x, act):
            continue
        if op.attrs.get("fused_activation_function", "NONE") != "NONE":
            continue
        if not x.dtype.is_float:
            continue
        op.attrs["fused_activation_function"] = act.type
        op.outputs = [act.outputs[0]]
        _remove(graph, act)
        uses.producer[act.outputs[0]] = op  # local update: only these two entries change
        uses.consumers.pop(x, None)


#: element-wise ops of one input: f(select(c, a, b)) == select(c, f(a), f(b))
_UNARY = frozenset({"RELU", "RELU6", "RELU_N1_TO_1", "LOGISTIC", "TANH", "HARD_SWISH",
                    "LEAKY_RELU", "ELU", "GELU", "ABS", "NEG", "EXP", "LOG", "SQRT", "RSQRT",
                    "FLOOR", "CEIL", "ROUND", "SIN", "COS", "SIGN"})


def hoist_select_unary(graph: Graph) -> None:
    uses = _Uses(graph)
    order = list(graph.operators)
    changed = False
    for sel in list(order):
        if sel.type != "SELECT_V2" or len(sel.inputs) != 3 or any(t is None
                                                                  for t in sel.inputs):
            continue
        cond, a, b = sel.inputs
        out = sel.outputs[0]
        pa, pb = uses.producer.get(a), uses.producer.get(b)  # type: ignore[arg-type]
        if pa is None or pb is None or pa.type != pb.type or pa.type not in _UNARY or \
                pa.attrs != pb.attrs or len(pa.inputs) != 1 or len(pb.inputs) != 1:
            continue
        xa, xb = pa.inputs[0], pb.inputs[0]
        if xa is None or xb is None or xa.dtype != xb.dtype or not xa.dtype.is_float or \
                not tuple(xa.shape) == tuple(xb.shape) == tuple(a.shape) == tuple(b.shape) \
                == tuple(out.shape):  # type: ignore[union-attr]
            continue
        picked = graph.add_tensor(Tensor(graph.unique_name(f"{out.name}/pre_{pa.type.lower()}"),
                                         tuple(out.shape), xa.dtype))
        sel.inputs = [cond, xa, xb]
        sel.outputs = [picked]
        after = Operator(pa.type, [picked], [out], dict(pa.attrs),
                         name=f"{sel.name or out.name}/{pa.type.lower()}",
                         version=pa.version)
        order.insert(order.index(sel) + 1, after)
        uses.producer[picked], uses.producer[out] = sel, after
        changed = True
    if changed:
        graph.operators = order


def fold_flatten_transpose(graph: Graph) -> None:
    uses = _Uses(graph)
    names = _Names(graph)
    for fc in list(graph.operators):
        if fc.type != "FULLY_CONNECTED" or fc.inputs[1] is None or not fc.inputs[1].is_constant:
            continue
        flat = fc.inputs[0]
        reshape = uses.producer.get(flat) if flat is not None else None
        if reshape is None or reshape.type != "RESHAPE" or not uses.only_reader(flat, fc):
            continue
        tin = reshape.inputs[0]
        transpose = uses.producer.get(tin) if tin is not None else None
        if transpose is None or transpose.type != "TRANSPOSE" or \
                not uses.only_reader(tin, reshape) or not transpose.inputs[1].is_constant:
            continue
        x = transpose.inputs[0]
        perm = [int(p) for p in transpose.inputs[1].numpy()]
        k = int(np.prod(x.shape[1:]))
        if perm[0] != 0 or tuple(flat.shape) != (x.shape[0], k):
            continue
        inv = layout.inverse(perm)
        order = np.arange(k).reshape(tin.shape[1:]).transpose(
            [inv[a] - 1 for a in range(1, len(perm))]).reshape(-1)
        w = fc.inputs[1].numpy()
        fc.inputs[1] = names.constant(f"{fc.inputs[1].name}/nhwc_order", w[:, order])
        reshape.inputs[0] = x
        # local update: the reshape reads x now, the transpose's output nobody
        uses.consumers[x] = [*uses.consumers.get(x, []), reshape]
        uses.consumers[tin] = [o for o in uses.consumers.get(tin, []) if o is not reshape]


def _permuted_constant(names: _Names, c: Tensor, perm: list[int]) -> Tensor | None:
    """Constant operand `c` of an element-wise op whose other operand is transposed by `perm`
    (right-aligned broadcasting), or None when it cannot follow."""
    arr = c.numpy()
    if arr.ndim > len(perm):
        return None
    full = arr.reshape((1,) * (len(perm) - arr.ndim) + arr.shape).transpose(perm)
    while full.ndim and full.shape[0] == 1:
        full = full.reshape(full.shape[1:])
    if full.shape == arr.shape and np.array_equal(full, arr):
        return c
    return names.constant(f"{c.name}/permuted", full)


def _without(ops: list[Operator], op: Operator) -> list[Operator]:
    return [o for o in ops if o is not op]


def hoist_transposes(graph: Graph) -> None:
    """Worklist form: each move updates the use maps locally (a move costs O(1), not a rescan
    of the graph), and the operator order is rebuilt once at the end."""
    uses = _Uses(graph)
    names = _Names(graph)
    anchor: dict[int, Operator] = {}  # moved TRANSPOSE -> the op it now runs right before
    work = [op for op in graph.operators if op.type == "TRANSPOSE"]
    work.reverse()
    while work:
        t_op = work.pop()
        if t_op.inputs[1] is None or not t_op.inputs[1].is_constant:
            continue
        src = t_op.inputs[0]
        op = uses.producer.get(src) if src is not None else None
        if op is None or op.type not in _ELEMENTWISE or not uses.only_reader(src, t_op):
            continue
        variable = [i for i, t in enumerate(op.inputs) if t is not None and not t.is_constant]
        if len(variable) != 1 or tuple(op.inputs[variable[0]].shape) != tuple(src.shape):
            continue
        perm = [int(p) for p in t_op.inputs[1].numpy()]
        inputs = list(op.inputs)
        for i, c in enumerate(op.inputs):
            if c is not None and i != variable[0]:
                inputs[i] = _permuted_constant(names, c, perm)
        if any(t is None and o is not None for t, o in zip(inputs, op.inputs, strict=True)):
            continue
        x = op.inputs[variable[0]]
        moved = graph.add_tensor(Tensor(f"{x.name}/transposed",
                                        tuple(x.shape[p] for p in perm), x.dtype))
        out = t_op.outputs[0]
        t_op.inputs[0], t_op.outputs = x, [moved]
        inputs[variable[0]] = moved
        op.inputs, op.outputs = inputs, [out]
        anchor[id(t_op)] = op
        # local update of the use maps
        uses.producer.pop(src, None)
        uses.consumers.pop(src, None)
        uses.producer[moved] = t_op
        uses.producer[out] = op
        uses.consumers[x] = [t_op if o is op else o for o in uses.consumers.get(x, [])]
        uses.consumers[moved] = [op]
        for t in inputs:
            if t is not None and t is not moved:
                uses.consumers.setdefault(t, [])
                if op not in uses.consumers[t]:
                    uses.consumers[t].append(op)
        work.append(t_op)  # it may move further up
        work.extend(r for r in uses.consumers.get(out, []) if r.type == "TRANSPOSE")
    if anchor:
        before: dict[int, list[Operator]] = {}
        for t_op in graph.operators:  # keep the moved transposes in their original order
            if id(t_op) in anchor:
                before.setdefault(id(anchor[id(t_op)]), []).append(t_op)
        ops: list[Operator] = []
        placed: set[int] = set()

        def place(op: Operator) -> None:
            for t_op in before.get(id(op), ()):
                if id(t_op) not in placed:
                    placed.add(id(t_op))
                    place(t_op)
            ops.append(op)

        for op in graph.operators:
            if id(op) not in anchor:
                place(op)
        graph.operators = ops


def collapse_reshapes(graph: Graph) -> None:
    """Merge RESHAPE -> RESHAPE and TRANSPOSE -> TRANSPOSE chains and drop identities, in one
    pass in operator order with local updates of the use maps."""
    uses = _Uses(graph)
    names = _Names(graph)
    removed: set[int] = set()
    for op in list(graph.operators):
        if op.type not in ("RESHAPE", "TRANSPOSE"):
            continue
        while True:
            src = op.inputs[0]
            prev = uses.producer.get(src) if src is not None else None
            if prev is None or prev.type != op.type or id(prev) in removed or \
                    not uses.only_reader(src, op):
                break
            if op.type == "RESHAPE":
                op.inputs[0] = prev.inputs[0]
            else:
                p1 = [int(p) for p in prev.inputs[1].numpy()]
                p2 = [int(p) for p in op.inputs[1].numpy()]
                op.inputs = [prev.inputs[0], names.constant(
                    f"{op.outputs[0].name}/perm", np.array([p1[p] for p in p2], np.int32))]
            removed.add(id(prev))
            uses.producer.pop(src, None)
            uses.consumers.pop(src, None)
            base = prev.inputs[0]
            if base is not None:
                uses.consumers[base] = [op if o is prev else o
                                        for o in uses.consumers.get(base, [])]
        src, out = op.inputs[0], op.outputs[0]
        same = src is not None and tuple(src.shape) == tuple(out.shape)
        if op.type == "TRANSPOSE":
            same = same and layout.is_identity([int(p) for p in op.inputs[1].numpy()])
        if not same or (id(out) in uses.io and id(src) in uses.io):
            continue
        assert src is not None
        if id(out) in uses.io:  # keep the graph output tensor: the input takes its place
            prod = uses.producer.get(src)
            if src.is_constant or prod is None or id(prod) in removed:
                continue
            prod.outputs = [out if t is src else t for t in prod.outputs]
            readers = _without(uses.consumers.get(src, []), op)
            for reader in readers:
                reader.inputs = [out if t is src else t for t in reader.inputs]
            graph.outputs = [out if t is src else t for t in graph.outputs]
            uses.producer.pop(src, None)
            uses.consumers.pop(src, None)
            uses.producer[out] = prod
            uses.consumers[out] = [*uses.consumers.get(out, []), *readers]
        else:
            readers = uses.consumers.get(out, [])
            for reader in readers:
                reader.inputs = [src if t is out else t for t in reader.inputs]
            graph.outputs = [src if t is out else t for t in graph.outputs]
            uses.consumers[src] = [*_without(uses.consumers.get(src, []), op), *readers]
            uses.producer.pop(out, None)
            uses.consumers.pop(out, None)
        removed.add(id(op))
    if removed:
        graph.operators = [o for o in graph.operators if id(o) not in removed]


def share_duplicates(graph: Graph) -> None:
    """Two TRANSPOSEs (or RESHAPEs) of the same tensor to the same result: keep the first."""
    seen: dict[tuple[str, int, tuple[int, ...], bytes], Tensor] = {}
    outputs = {id(t) for t in graph.outputs}
    keep: list[Operator] = []
    for op in graph.operators:
        if op.type in ("TRANSPOSE", "RESHAPE") and op.inputs[0] is not None and \
                op.inputs[1] is not None and op.inputs[1].is_constant and \
                id(op.outputs[0]) not in outputs:
            key = (op.type, id(op.inputs[0]), tuple(op.outputs[0].shape),
                   op.inputs[1].numpy().tobytes())
            if key in seen:
                graph.replace_uses(op.outputs[0], seen[key])
                continue
            seen[key] = op.outputs[0]
        keep.append(op)
    graph.operators = keep


def channels_last_io(graph: Graph) -> dict[str, dict[str, tuple[int, ...]]]:
    """Absorb channels-last TRANSPOSEs at the graph inputs and outputs; returns, per input and
    output name, the permutation from ONNX's order to the one the model now uses."""
    uses = _Uses(graph)
    perms: dict[str, dict[str, tuple[int, ...]]] = {"inputs": {}, "outputs": {}}
    for i, t in enumerate(list(graph.inputs)):
        readers = uses.consumers.get(t, [])
        if t.rank < 3 or len(readers) != 1 or readers[0].type != "TRANSPOSE":
            continue
        op = readers[0]
        perm = tuple(int(p) for p in op.inputs[1].numpy())
        if perm != layout.channels_last(t.rank) or id(op.outputs[0]) in uses.io:
            continue
        new = op.outputs[0]
        name = t.name
        t.name = f"{name}/nchw_unused"
        new.name = name
        graph.inputs[i] = new
        _remove(graph, op)
        perms["inputs"][name] = perm
        uses.refresh()
    for i, t in enumerate(list(graph.outputs)):
        op = uses.producer.get(t)
        if op is None or op.type != "TRANSPOSE" or t.rank < 3:
            continue
        perm = tuple(int(p) for p in op.inputs[1].numpy())
        src = op.inputs[0]
        if perm != layout.inverse(layout.channels_last(t.rank)) or src is None or \
                id(src) in uses.io or src.is_constant or uses.consumers.get(t):
            continue
        name = t.name
        t.name = f"{name}/nchw_unused"
        src.name = name
        graph.outputs[i] = src
        _remove(graph, op)
        perms["outputs"][name] = layout.channels_last(t.rank)
        uses.refresh()
    return perms
