"""The delegate on whole models: the ABI it reads through our own struct declarations agrees with
LiteRT's Python API on every tensor and node, and the digits CNN in int8 / int4 / int2 / ternary
runs end to end through stock LiteRT and through LiteRT + the delegate."""

from __future__ import annotations

import numpy as np
import pytest

import sdk
from sdk.base.errors import DelegateRequiredError
from sdk.converters.ir import DType, Tensor
from sdk.converters.tflite import read_tflite, to_tflite_bytes
from sdk.converters.tflite.custom_ops import to_builtin
from sdk.converters.tflite.packing import packed_size
from sdk.converters.tflite.schema import BUILTIN_OP_NAMES
from sdk.run import Interpreter
from sdk.run.litert import backend
from sdk.run.runner import LiteRTRunner

from conftest import requires_tf

pytestmark = requires_tf

PINNED_LITERT = "2.3."
_NUMPY_TYPES = {"float32": "FLOAT32", "int8": "INT8", "int32": "INT32", "uint8": "UINT8",
                "int64": "INT64", "int16": "INT16", "float16": "FLOAT16", "bool": "BOOL"}
#: (scheme, scheme options, needs the delegate)
EXPORTS = {
    "int8": ("int8", {}, False),
    "int4": ("int4", {}, False),
    "int2-stock": ("int2", {"custom_ops": False}, False),
    "ternary-stock": ("ternary", {"custom_ops": False}, False),
    "int2": ("int2", {}, True),
    "ternary": ("ternary", {}, True),
}


@pytest.fixture(scope="module")
def exports(digits_float_tflite, digits_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("delegate_models")
    return {key: sdk.export(digits_float_tflite, scheme, calibration=digits_data.x_train,
                            validation=digits_data.x_test, output=out / f"{key}.tflite",
                            scheme_options=options, per_layer=False)
            for key, (scheme, options, _) in EXPORTS.items()}


def run_all(interp, x: np.ndarray) -> np.ndarray:
    return np.concatenate([interp.run(x[i:i + 1])[0] for i in range(len(x))])


# ---------------------------------------------------------------------------- ABI
def test_litert_is_the_pinned_version() -> None:
    import ai_edge_litert

    from sdk.base.native import load  # noqa: F401  (the delegate is built with the core)

    assert ai_edge_litert.__version__.startswith(PINNED_LITERT), (
        f"ai-edge-litert {ai_edge_litert.__version__}: native/include/edge/delegate/tflite_abi.h "
        f"declares the ABI of {PINNED_LITERT}x; re-check its layouts against that version (this "
        "file's other tests), then move the pin in pyproject.toml and here")


@pytest.mark.parametrize("key", ["int4", "ternary"])
def test_abi_layout_matches_litert(exports, key) -> None:
    """Everything the delegate read through tflite_abi.h (names, types, shapes, byte sizes,
    quantisation, nodes) equals what LiteRT's Python API reports: a drifted offset would read
    garbage here."""
    path = exports[key].path
    interp = Interpreter(path, xnnpack=False)
    report = interp.report
    assert report is not None and PINNED_LITERT in report.version
    ir = read_tflite(path).main
    by_name = {t.name: t for t in ir.tensors}
    seen = {t["index"]: t for t in report.tensors}
    details = interp.get_tensor_details()
    assert len(seen) == len(details) > 10
    for d in details:
        t = seen[d["index"]]
        assert t["name"] == d["name"]
        assert t["dims"] == [int(v) for v in d["shape"]]
        ir_t = by_name[d["name"]]
        if ir_t.dtype in (DType.INT4, DType.INT2):
            assert t["type"] == ir_t.dtype.name
            assert t["bytes"] == packed_size(ir_t.num_elements, ir_t.dtype.bits)
        else:
            assert t["type"] == _NUMPY_TYPES[np.dtype(d["dtype"]).name], d["name"]
            assert t["bytes"] == ir_t.num_elements * np.dtype(d["dtype"]).itemsize
        scale, zero_point = d["quantization"]
        assert t["scale"] == pytest.approx(scale, rel=1e-6) and t["zero_point"] == zero_point
        qp = d["quantization_parameters"]
        if len(qp["scales"]):
            assert t["quantization"] == 1
            np.testing.assert_allclose(t["scales"], qp["scales"], rtol=1e-6)
            assert t["zero_points"] == [int(z) for z in qp["zero_points"]]
            assert t["quantized_dimension"] == qp["quantized_dimension"]
    ops = {o["index"]: o for o in interp._get_ops_details()}
    assert report.nodes
    for node in report.nodes:
        o = ops[node["index"]]
        name = BUILTIN_OP_NAMES.get(node["builtin_code"])
        assert (node["custom_name"] if name == "CUSTOM" else name) == o["op_name"]
        assert node["inputs"] == [int(i) for i in o["inputs"]]
        assert node["outputs"] == [int(i) for i in o["outputs"]]
    # the custom ops' options (40 bytes, converters/tflite/custom_ops.py) reached the delegate
    if key == "ternary":
        custom = [n for n in report.nodes if n["custom_name"].startswith("EDGE_")]
        assert custom and all(n["custom_options_size"] == 40 for n in custom)


# ---------------------------------------------------------------------------- digits CNN
@pytest.mark.parametrize("key", list(EXPORTS))
def test_digits_end_to_end(exports, digits_data, key) -> None:
    result = exports[key]
    needs_delegate = EXPORTS[key][2]
    x, y = digits_data.x_test, digits_data.y_test
    assert bool(result.custom_ops) == needs_delegate
    middle = 4  # dw2, pw2, conv3, fc1: the layers the scheme quantises
    # with the delegate: every weighted node runs on the native kernels
    with_delegate = Interpreter(result.path, xnnpack=False)
    assert len(with_delegate.report.claimed) == middle + 2, with_delegate.report
    delegated = run_all(with_delegate, x)
    acc = (delegated.argmax(1) == y).mean()
    floor = {"int8": 0.95, "int4": 0.94}.get(key, 0.85)  # PTQ at 2 bits loses (README)
    assert acc >= floor, (key, acc)
    # ... plus XNNPACK for the rest
    fast = run_all(Interpreter(result.path), x)
    assert (fast.argmax(1) == delegated.argmax(1)).mean() >= 0.99
    if needs_delegate:
        with pytest.raises(DelegateRequiredError):
            LiteRTRunner(result.path.read_bytes())
        # LiteRT's builtin kernels on the same model with the custom ops as builtin ops over
        # the same values (INT8-typed): the same integers
        stock = _builtin_twin(result.path)
    else:
        stock = result.path.read_bytes()
    for xnnpack in (False, True):
        runner = LiteRTRunner(stock, reference=not xnnpack)
        plain = np.concatenate([runner.invoke([x[i:i + 1]])[0] for i in range(len(x))])
        if not xnnpack:
            # builtin kernels: bit for bit (outputs are dequantised int8 probabilities)
            np.testing.assert_array_equal(plain, delegated)
        else:
            assert (plain.argmax(1) == delegated.argmax(1)).mean() >= 0.99


def _builtin_twin(path) -> bytes:
    model = read_tflite(path)
    g = model.main
    for i, op in enumerate(g.operators):
        if op.type == "CUSTOM":
            twin = to_builtin(op)
            w = op.inputs[1]
            twin.inputs[1] = Tensor(w.name + "_int8", w.shape, DType.INT8, data=w.data,
                                    quant=w.quant)
            twin.version = 3
            g.operators[i] = twin
    return to_tflite_bytes(model)


def test_threads_give_the_same_model_outputs(exports, digits_data) -> None:
    x = digits_data.x_test[:40]
    one = run_all(Interpreter(exports["ternary"].path, num_threads=1, xnnpack=False), x)
    two = run_all(Interpreter(exports["ternary"].path, num_threads=2, xnnpack=False), x)
    np.testing.assert_array_equal(one, two)


def test_delegate_builds_for_arm() -> None:
    """`make native-cross` builds the delegate for aarch64 and armv7 like the kernels."""
    from sdk.run import delegate_path

    machines = {"arm64-v8a": 183, "armeabi-v7a": 40}  # ELF e_machine: AArch64, ARM
    for abi, machine in machines.items():
        data = delegate_path(abi).read_bytes()[:20]
        assert data[:4] == b"\x7fELF" and int.from_bytes(data[18:20], "little") == machine
    assert backend().name == "ai_edge_litert"
