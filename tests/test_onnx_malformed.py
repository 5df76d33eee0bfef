"""Bad ONNX input: each a clear edgesdk exception naming the file (or the op and node), never a
DecodeError or KeyError from deep inside onnx/protobuf."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import requires_onnx
from onnx_testing import make_model

pytestmark = requires_onnx


def _model() -> Any:
    from onnx import helper

    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    return make_model(nodes, {"x": [1, 3, 8, 8]}, ["y"],
                      {"w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32)})


@pytest.fixture(scope="module")
def good() -> bytes:
    return _model().SerializeToString()


def test_truncated_file(tmp_path, good) -> None:
    from sdk.base.errors import ModelFormatError
    from sdk.converters.onnx import read_onnx

    for cut in (1, 7, len(good) // 3, len(good) // 2, len(good) - 30, len(good) - 1):
        path = tmp_path / f"cut{cut}.onnx"
        path.write_bytes(good[:cut])
        with pytest.raises(ModelFormatError) as info:
            read_onnx(path)
        assert str(path) in str(info.value)


def test_truncated_at_a_field_boundary(good) -> None:
    """Protobuf decodes a file cut between two fields without complaint: what is missing (here
    the opset list, written last) must still be reported."""
    from onnx import ModelProto

    from sdk.base.errors import ModelFormatError
    from sdk.converters.onnx import read_onnx

    partial = ModelProto.FromString(good)
    partial.ClearField("opset_import")
    cut = len(partial.SerializeToString())
    assert good[:cut] == partial.SerializeToString()
    with pytest.raises(ModelFormatError, match="opset_import"):
        read_onnx(good[:cut])


def test_not_a_protobuf(tmp_path) -> None:
    from sdk.base.errors import ModelFormatError
    from sdk.converters.onnx import read_onnx

    path = tmp_path / "model.onnx"
    for junk in (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, b"hello, I am a text file\n",
                 bytes(1000)):
        path.write_bytes(junk)
        with pytest.raises(ModelFormatError, match=r"model\.onnx"):
            read_onnx(path)


def test_empty_and_missing_file(tmp_path) -> None:
    from sdk.base.errors import ModelFormatError
    from sdk.converters.onnx import read_onnx

    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelFormatError, match="empty"):
        read_onnx(empty)
    with pytest.raises(ModelFormatError, match="cannot read"):
        read_onnx(tmp_path / "missing.onnx")


def test_dangling_input_reference(good) -> None:
    from onnx import ModelProto

    from sdk.base.errors import ModelFormatError
    from sdk.converters.onnx import read_onnx

    model = ModelProto.FromString(good)
    model.graph.node[1].input[0] = "nowhere"
    with pytest.raises(ModelFormatError, match="'nowhere'"):
        read_onnx(model)


def test_unsupported_op_names_type_node_and_supported_list(tmp_path) -> None:
    from onnx import helper

    from sdk.base.errors import UnsupportedOpError
    from sdk.converters.onnx import read_onnx, supported_ops

    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Einsum", ["r", "r"], ["y"], name="my_einsum",
                              equation="ij,ij->i")]
    path = tmp_path / "einsum.onnx"
    path.write_bytes(make_model(nodes, {"x": [2, 3]}, ["y"]).SerializeToString())
    with pytest.raises(UnsupportedOpError) as info:
        read_onnx(path)
    err = info.value
    assert err.op_type == "Einsum" and err.node == "my_einsum"
    assert "Conv" in err.supported and "Einsum" not in err.supported
    msg = str(err)
    assert "'Einsum'" in msg and "'my_einsum'" in msg and str(path) in msg
    assert ", ".join(supported_ops()) in msg


def test_custom_domain_op() -> None:
    from onnx import helper

    from sdk.base.errors import UnsupportedOpError
    from sdk.converters.onnx import read_onnx

    graph = helper.make_graph(
        [helper.make_node("FusedConv", ["x"], ["y"], domain="com.microsoft", name="fc")], "g",
        [helper.make_tensor_value_info("x", 1, [1, 2])],
        [helper.make_tensor_value_info("y", 1, [1, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    with pytest.raises(UnsupportedOpError, match=r"com\.microsoft\.FusedConv"):
        read_onnx(model)


def test_supported_op_with_unsupported_attributes() -> None:
    from onnx import helper

    from sdk.base.errors import UnsupportedOpError
    from sdk.converters.onnx import read_onnx

    scales = np.array([1, 1, 2, 2], np.float32)
    nodes = [helper.make_node("Resize", ["x", "", "s"], ["y"], mode="cubic", name="up")]
    model = make_model(nodes, {"x": [1, 3, 4, 4]}, ["y"], {"s": scales})
    with pytest.raises(UnsupportedOpError, match=r"'Resize' \(node 'up'\).*mode 'cubic'"):
        read_onnx(model)


def test_erf_outside_gelu_is_unsupported() -> None:
    from onnx import helper

    from sdk.base.errors import UnsupportedOpError
    from sdk.converters.onnx import read_onnx

    model = make_model([helper.make_node("Erf", ["x"], ["y"], name="lonely")], {"x": [4]}, ["y"])
    with pytest.raises(UnsupportedOpError, match="GELU"):
        read_onnx(model)


def test_wrong_argument_type() -> None:
    from sdk.converters.onnx import read_onnx

    with pytest.raises(TypeError, match=r"path, bytes or an onnx\.ModelProto"):
        read_onnx(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="io_layout"):
        read_onnx(b"x", io_layout="nwhc")  # type: ignore[arg-type]
