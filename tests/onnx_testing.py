"""Helpers for the ONNX importer tests: build models with onnx.helper, run them in onnxruntime
and, converted, in stock LiteRT (XNNPACK and the builtin kernels), and compare."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

OPSET = 17


def tensor_type(dtype: Any) -> int:
    from onnx import helper

    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def make_model(nodes: Sequence[Any], inputs: Mapping[str, Any], outputs: Sequence[str],
               initializers: Mapping[str, np.ndarray] | None = None, opset: int = OPSET,
               name: str = "test") -> Any:
    """A model from nodes; `inputs` maps name -> shape (dims may be strings: dynamic) or
    (shape, dtype); outputs are float32 of unknown shape unless given as (name, dtype)."""
    from onnx import checker, helper, numpy_helper, shape_inference

    ins = []
    for n, spec in inputs.items():
        shape, dtype = spec if isinstance(spec, tuple) and len(spec) == 2 and isinstance(
            spec[0], (list, tuple)) else (spec, np.float32)
        ins.append(helper.make_tensor_value_info(n, tensor_type(dtype), list(shape)))
    outs = []
    for o in outputs:
        n, dtype = o if isinstance(o, tuple) else (o, np.float32)
        outs.append(helper.make_tensor_value_info(n, tensor_type(dtype), None))
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()]
    graph = helper.make_graph(list(nodes), name, ins, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model = shape_inference.infer_shapes(model, strict_mode=True)  # fills the output shapes
    checker.check_model(model)
    return model


def run_onnx(model: Any, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, dict(feeds))


def run_tflite(data: bytes, feeds: Mapping[str, np.ndarray], xnnpack: bool = True
               ) -> list[np.ndarray]:
    from sdk.run.litert import backend

    interp = backend().interpreter(model_content=data, num_threads=1, xnnpack=xnnpack)
    interp.allocate_tensors()
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], np.array(feeds[d["name"]], dtype=d["dtype"], order="C"))
    interp.invoke()
    return [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]


def convert_and_compare(model: Any, feeds: Mapping[str, np.ndarray], *,
                        input_shapes: Any = None, io_layout: str = "nchw",
                        atol: float = 1e-4, rtol: float = 1e-4) -> Any:
    """Convert `model`, run both, assert the outputs agree; returns the IR model."""
    from sdk.converters.onnx import read_onnx
    from sdk.converters.tflite import to_tflite_bytes

    expected = run_onnx(model, feeds)
    ir = read_onnx(model.SerializeToString(), input_shapes, io_layout=io_layout)
    data = to_tflite_bytes(ir)
    perms = ir.format_extras["onnx_io_perms"]
    tfl_feeds = {k: np.transpose(v, perms["inputs"][k]) if k in perms["inputs"] else v
                 for k, v in feeds.items()}
    out_names = [t.name for t in ir.main.outputs]
    for xnnpack in (True, False):
        got = run_tflite(data, tfl_feeds, xnnpack=xnnpack)
        assert len(got) == len(expected)
        for name, e, g in zip(out_names, expected, got, strict=True):
            if name in perms["outputs"]:
                g = np.transpose(g, np.argsort(perms["outputs"][name]))
            assert g.shape == e.shape, f"{name}: shape {g.shape} != {e.shape}"
            if e.dtype == np.int64:
                e = e.astype(np.int32)
            np.testing.assert_allclose(g, e, atol=atol, rtol=rtol,
                                       err_msg=f"output {name} (xnnpack={xnnpack})")
    return ir


def random(shape: Sequence[int], seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)
