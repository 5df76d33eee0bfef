"""The ONNX importer's layout algebra (pure numpy, no onnx needed): a reshape that
`reshape_perm` allows on a tensor held in a permuted order gives exactly the ONNX result held in
the returned order; transposes compose; dropped axes keep the held order."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sdk.converters.onnx import layout


@st.composite
def reshape_case(draw):
    rank = draw(st.integers(1, 5))
    shape = tuple(draw(st.lists(st.sampled_from([1, 2, 3, 4]), min_size=rank, max_size=rank)))
    perm = tuple(draw(st.permutations(range(rank))))
    # the output shape: split/merge the input's dims in random groups, maybe with unit dims
    dims = [d for d in shape if d != 1]
    out: list[int] = []
    i = 0
    while i < len(dims):
        take = draw(st.integers(1, len(dims) - i))
        out.append(int(np.prod(dims[i:i + take])))
        i += take
    for _ in range(draw(st.integers(0, 2))):
        out.insert(draw(st.integers(0, len(out))), 1)
    return shape, perm, tuple(out)


@settings(max_examples=300, deadline=None)
@given(reshape_case())
def test_reshape_in_held_order_matches_onnx(case) -> None:
    shape, perm, out_shape = case
    x = np.arange(int(np.prod(shape))).reshape(shape)
    q = layout.reshape_perm(shape, perm, out_shape)
    if q is None:
        return
    held = np.transpose(x, perm)
    got = held.reshape(layout.permute(out_shape, q))
    expected = np.transpose(x.reshape(out_shape), q)
    np.testing.assert_array_equal(got, expected)


def test_reshape_perm_examples() -> None:
    nhwc = (0, 2, 3, 1)
    # [N,C,H,W] -> [N,C,H*W] held NHWC: [N,H*W,C], no transpose
    assert layout.reshape_perm((1, 8, 4, 4), nhwc, (1, 8, 16)) == (0, 2, 1)
    # Flatten of a feature map needs ONNX order
    assert layout.reshape_perm((1, 8, 4, 4), nhwc, (1, 128)) is None
    # [N,C,1,1] -> [N,C] is free in any order
    assert layout.reshape_perm((2, 8, 1, 1), nhwc, (2, 8)) == (0, 1)
    # identity order: any reshape
    assert layout.reshape_perm((2, 3, 4), (0, 1, 2), (6, 4)) == (0, 1)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5).flatmap(lambda r: st.tuples(st.permutations(range(r)),
                                                     st.permutations(range(r)))))
def test_relative_perm_and_transpose_algebra(perms) -> None:
    src, dst = (tuple(p) for p in perms)
    shape = tuple(range(2, 2 + len(src)))
    x = np.arange(int(np.prod(shape))).reshape(shape)
    rel = layout.relative(src, dst)
    np.testing.assert_array_equal(np.transpose(np.transpose(x, src), rel), np.transpose(x, dst))
    # ONNX Transpose(q) of a value held in p is held in inverse(q)[p] (the importer's rule)
    q = dst
    inv = layout.inverse(q)
    held_after = tuple(inv[a] for a in src)
    np.testing.assert_array_equal(np.transpose(np.transpose(x, q), held_after),
                                  np.transpose(x, src))


def test_moves_only_unit_dims_and_drop_axes() -> None:
    assert layout.moves_only_unit_dims((1, 1, 1, 8), (0, 3, 1, 2))
    assert not layout.moves_only_unit_dims((1, 2, 3, 8), (0, 3, 1, 2))
    # reducing H, W of an NCHW value held NHWC leaves [N, C] in order
    assert layout.drop_axes((0, 2, 3, 1), [2, 3]) == (0, 1)
    assert layout.drop_axes((0, 2, 3, 1), [1]) == (0, 1, 2)
