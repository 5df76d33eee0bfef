"""Sub-byte export end to end on the digits CNN, against stock LiteRT (XNNPACK and builtin)."""

from __future__ import annotations

import numpy as np
import pytest

import sdk
from sdk.base.errors import DelegateRequiredError
from sdk.converters.ir import DType
from sdk.converters.tflite import read_tflite, to_tflite_bytes
from sdk.converters.tflite.custom_ops import lower_for_litert
from sdk.converters.tflite.schema import schema
from sdk.run.runner import LiteRTRunner

from conftest import requires_tf

pytestmark = requires_tf

WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def predictions(path, x: np.ndarray, *, xnnpack: bool = True) -> np.ndarray:
    runner = LiteRTRunner(path.read_bytes(), reference=not xnnpack)
    return np.concatenate([runner.invoke([x[i:i + 1]])[0] for i in range(len(x))])


def weight_types(path) -> list[tuple[str, str]]:
    """(op, weight type) of every weighted op, in order."""
    model = read_tflite(path)
    return [(op.type, op.inputs[1].dtype.name) for op in model.main.operators
            if op.type in WEIGHTED]


@pytest.fixture(scope="module")
def float_outputs(digits_float_tflite, digits_data):
    return predictions(digits_float_tflite, digits_data.x_test)


def export(model, scheme, data, tmp_path, **kwargs):
    return sdk.export(model, scheme, calibration=data.x_train, validation=data.x_test,
                      output=tmp_path / f"digits_{scheme}.tflite", per_layer=False, **kwargs)


def test_int4_static_runs_in_stock_litert(digits_float_tflite, digits_data, float_outputs,
                                          tmp_path) -> None:
    result = export(digits_float_tflite, "int4", digits_data, tmp_path)
    types = weight_types(result.path)
    assert types[0] == ("CONV_2D", "INT8") and types[-1] == ("FULLY_CONNECTED", "INT8")
    assert all(t == "INT4" for _, t in types[1:-1]), types
    assert "first" in result.precision_notes[next(iter(result.precision_notes))]
    assert not result.custom_ops and result.fidelity is not None
    y = digits_data.y_test
    float_acc = (float_outputs.argmax(1) == y).mean()
    for xnnpack in (True, False):
        acc = (predictions(result.path, digits_data.x_test, xnnpack=xnnpack).argmax(1) == y).mean()
        assert acc >= float_acc - 0.02, (xnnpack, acc, float_acc)
    int8 = export(digits_float_tflite, "int8", digits_data, tmp_path)
    assert result.size_bytes < 0.75 * int8.size_bytes
    assert result.to_dict()["precision_notes"] == result.precision_notes


@pytest.mark.parametrize("scheme", ["ternary", "int2"])
def test_two_bit_without_custom_ops_is_plain_tflite(scheme, digits_float_tflite, digits_data,
                                                    float_outputs, tmp_path) -> None:
    result = export(digits_float_tflite, scheme, digits_data, tmp_path,
                    scheme_options={"custom_ops": False})
    types = dict(weight_types(result.path)[1:-1][::-1])  # the middle layers, by op
    assert types["FULLY_CONNECTED"] == "INT2"
    assert types["CONV_2D"] == "INT4" and types["DEPTHWISE_CONV_2D"] == "INT4"
    assert not result.custom_ops
    notes = " ".join(result.precision_notes.values())
    assert "custom_ops=False" in notes and "no INT2 CONV_2D" in notes
    fc = next(op for op in read_tflite(result.path).main.operators
              if op.type == "FULLY_CONNECTED" and op.inputs[1].dtype is DType.INT2)
    values = fc.inputs[1].numpy()
    if scheme == "ternary":
        assert set(np.unique(values)) <= {-1, 0, 1}
    else:
        assert values.min() == -2
    xnn = predictions(result.path, digits_data.x_test, xnnpack=True)
    builtin = predictions(result.path, digits_data.x_test, xnnpack=False)
    assert (xnn.argmax(1) == builtin.argmax(1)).mean() >= 0.99
    acc = (xnn.argmax(1) == digits_data.y_test).mean()
    # PTQ at 2 bits loses accuracy (docs/delegate.md); it must still be a working classifier
    assert acc >= 0.85, acc


def test_dynamic_range_blockwise_int4(digits_float_tflite, digits_data, float_outputs,
                                      tmp_path) -> None:
    result = export(digits_float_tflite, "int4", digits_data, tmp_path, activations="float32",
                    scheme_options={"block_size": 32, "keep_last": False})
    model = read_tflite(result.path)
    fcs = [op for op in model.main.operators if op.type == "FULLY_CONNECTED"]
    assert all(op.inputs[0].dtype is DType.FLOAT32 for op in fcs)  # float activations
    blockwise = [op for op in fcs if op.inputs[1].quant.block_size == 32]
    assert blockwise and all(op.inputs[1].dtype is DType.INT4 for op in blockwise)
    # LiteRT's builtin block-wise FC skips fused activations: the writer unfused them
    assert all(op.attrs["fused_activation_function"] == "NONE" for op in blockwise)
    assert result.op_counts.get("RELU", 0) >= 1
    assert result.op_counts.get("QUANTIZE", 0) == 0  # nothing int8 in a dynamic-range model
    xnn = predictions(result.path, digits_data.x_test, xnnpack=True)
    builtin = predictions(result.path, digits_data.x_test, xnnpack=False)
    np.testing.assert_allclose(xnn, builtin, atol=0.05)
    agree = (xnn.argmax(1) == float_outputs.argmax(1)).mean()
    assert agree >= 0.97, agree


def test_old_files_with_deprecated_opcodes_quantise(digits_float_tflite, digits_data,
                                                    tmp_path) -> None:
    """Files that set only deprecated_builtin_code (builtin_code 0 = ADD) must quantise like
    new ones, not pass through as 'ADD' ops."""
    m = schema.ModelT.InitFromPackedBuf(digits_float_tflite.read_bytes(), 0)
    for code in m.operatorCodes:
        assert code.deprecatedBuiltinCode == code.builtinCode  # < 127 for these ops
        code.builtinCode = 0
    import flatbuffers

    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    old = tmp_path / "old.tflite"
    old.write_bytes(bytes(builder.Output()))
    result = export(old, "int4", digits_data, tmp_path)
    assert [t for _, t in weight_types(result.path)][1:-1] == ["INT4"] * 4
    assert result.op_counts.get("ADD", 0) == 0


def test_custom_op_model_without_delegate_says_so() -> None:
    from test_subbyte_formats import _conv_model

    data = to_tflite_bytes(lower_for_litert(_conv_model(DType.INT2, "int8")))
    with pytest.raises(DelegateRequiredError, match=r"EDGE_CONV_INT2.*sdk\.run\.Interpreter"):
        LiteRTRunner(data)


def test_cli_sub_byte_options(digits_float_tflite, digits_data, tmp_path, capsys) -> None:
    import json

    from sdk.cli import main

    cal = tmp_path / "cal.npy"
    np.save(cal, digits_data.x_train[:100])
    out = tmp_path / "digits_ternary.tflite"
    rc = main(["export", str(digits_float_tflite), "ternary", "-c", str(cal), "-o", str(out),
               "-O", "custom_ops=false", "-O", "keep_last=false", "--no-per-layer", "-q",
               "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["scheme"] == "ternary" and not report["custom_ops"]
    assert "keep_last" not in " ".join(report["precision_notes"].values())
    assert weight_types(out)[-1] == ("FULLY_CONNECTED", "INT2")  # the last layer too
    rc = main(["export", str(digits_float_tflite), "int4", "-c", str(cal), "-o",
               str(tmp_path / "d.tflite"), "--activations", "float32", "-O", "block_size=32",
               "--no-per-layer", "-q"])
    assert rc == 0
    assert any(op.type == "FULLY_CONNECTED" and op.inputs[1].quant.block_size == 32
               for op in read_tflite(tmp_path / "d.tflite").main.operators)
