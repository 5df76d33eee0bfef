"""Conformance sweep: the ONNX backend node tests (model + inputs + expected outputs, shipped in
the onnx 1.22.0 wheel; the [dev] extra pins that version) for every op the importer claims.

Each case either converts and matches the expected outputs in stock LiteRT, or is declined with
an edgesdk error whose reason is one of the documented limits below (a TFLite limitation, stated
in docs/onnx-input.md). A wrong number, a crash or an undocumented refusal fails. Node tests pass
weights and parameters as graph inputs; a case that needs them constant is retried with every
input after the first turned into an initializer, as a real model would have them.
"""

from __future__ import annotations

import functools
import glob
import os
import re

import numpy as np
import pytest

from conftest import requires_onnx
from onnx_testing import run_tflite

pytestmark = requires_onnx

#: reasons a node test may be declined: each is a documented limit (docs/onnx-input.md, "Limits")
DOCUMENTED_LIMITS = [
    r"element type \w+ is not supported",  # float8/int4/int2/uint16/strings...
    r"arithmetic on int8/uint8/int16 tensors",
    r"3-D (pooling|transposed convolution)",
    r"dilated (pooling|transposed convolution)",
    r"mode 'cubic'",
    r"antialiased downscaling",
    r"no TFLite resize samples the same pixels",
    r"coordinate_transformation_mode='(half_pixel_symmetric|tf_crop_and_resize)'",
    r"training mode|Dropout in training mode",
    r"the Dropout mask output",
    r"the Indices output of MaxPool",
    r"Pad mode '(edge|wrap)'",
    r"only converted as part of an exact GELU",
    r"max/min over an empty axis",
]

#: the sweep must keep converting at least this many cases exactly (511 when written)
MIN_PASSING = 500


def _node_test_root() -> str | None:
    try:
        import onnx
    except ImportError:
        return None
    root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")
    return root if os.path.isdir(root) else None


def _load_tensor(path: str) -> np.ndarray:
    from onnx import TensorProto, numpy_helper

    t = TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


@functools.cache
def _cases() -> list[str]:
    root = _node_test_root()
    if root is None:
        return []
    import onnx

    from sdk.converters.onnx import supported_ops
    from sdk.converters.onnx.patterns import ABSORBED

    claimed = set(supported_ops()) | set(ABSORBED)
    cases = []
    for name in sorted(os.listdir(root)):
        model = onnx.load(os.path.join(root, name, "model.onnx"), load_external_data=False)
        g = model.graph
        if any(n.domain not in ("", "ai.onnx") or n.op_type not in claimed for n in g.node):
            continue
        if any(not v.type.HasField("tensor_type") for v in [*g.input, *g.output]):
            continue  # sequence / optional values: not tensors
        cases.append(name)
    return cases


def _ids() -> list[str]:
    cases = _cases()
    return cases or ["no-node-tests"]


_outcomes: dict[str, str] = {}


@pytest.mark.parametrize("name", _ids())
def test_node_case(name: str) -> None:
    root = _node_test_root()
    if root is None or name == "no-node-tests":
        import onnx

        pytest.skip(f"onnx {onnx.__version__} ships no backend node tests; the [dev] extra "
                    "pins onnx==1.22.0, which does")
    import onnx
    from onnx import numpy_helper

    from sdk.base.errors import EdgeSDKError
    from sdk.converters.onnx import read_onnx
    from sdk.converters.tflite import to_tflite_bytes

    folder = os.path.join(root, name)
    model = onnx.load(os.path.join(folder, "model.onnx"))
    inputs = [_load_tensor(p) for p in sorted(glob.glob(f"{folder}/test_data_set_0/input_*.pb"))]
    expected = [_load_tensor(p)
                for p in sorted(glob.glob(f"{folder}/test_data_set_0/output_*.pb"))]
    names = [i.name for i in model.graph.input]
    feeds = dict(zip(names, inputs, strict=True))
    try:
        try:
            ir = read_onnx(model)
        except EdgeSDKError as exc:
            if not re.search("must be a constant|is not static", str(exc)) or len(names) < 2:
                raise
            frozen = onnx.ModelProto()
            frozen.CopyFrom(model)
            for n in names[1:]:
                frozen.graph.initializer.append(numpy_helper.from_array(feeds.pop(n), n))
            del frozen.graph.input[1:]
            ir = read_onnx(frozen)
    except EdgeSDKError as exc:
        reason = str(exc)
        assert any(re.search(p, reason) for p in DOCUMENTED_LIMITS), \
            f"{name}: declined for an undocumented reason: {reason}"
        _outcomes[name] = "declined"
        return
    data = to_tflite_bytes(ir)
    for xnnpack in (True, False):
        got = run_tflite(data, feeds, xnnpack=xnnpack)
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            assert g.shape == e.shape, f"{name}: shape {g.shape} != {e.shape}"
            if e.dtype == np.bool_:
                np.testing.assert_array_equal(g, e)
            else:
                np.testing.assert_allclose(g.astype(np.float64), e.astype(np.float64),
                                           rtol=1e-3, atol=1e-3, equal_nan=True,
                                           err_msg=f"{name} (xnnpack={xnnpack})")
    _outcomes[name] = "pass"


def test_sweep_is_not_vacuous() -> None:
    """Runs after the cases (file order): enough of them must have converted exactly."""
    if not _cases():
        pytest.skip("no backend node tests installed (see test_node_case)")
    if len(_outcomes) < len(_cases()):
        pytest.skip("run the whole sweep to count (a -k selection ran part of it)")
    passing = sum(1 for v in _outcomes.values() if v == "pass")
    print(f"\nONNX node tests: {passing} of {len(_outcomes)} convert and match exactly")
    assert passing >= MIN_PASSING, f"only {passing} node tests convert exactly"
