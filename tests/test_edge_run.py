"""edge-run, the on-device runner: its report, its .npy input/output, the same outputs on x86 and
under qemu for aarch64 (with and without dotprod) and armv7, and clear exit codes for malformed
files under AddressSanitizer."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from edge_helpers import act, q

from sdk.base import native
from sdk.converters.edge import schema_generated as fb
from sdk.converters.edge import write_edge
from sdk.converters.ir import DType, Graph, Model, Operator, QuantParams, Tensor
from sdk.kernels import available_isas, resolve_isa
from sdk.run import EdgeModel

ROOT = Path(__file__).resolve().parent.parent
ASAN_EDGE_RUN = ROOT / "build" / "asan" / "edge-run"
QEMU = {
    "arm64-v8a": [["qemu-aarch64-static", "-cpu", "max"],
                  ["qemu-aarch64-static", "-cpu", "cortex-a53"]],
    "armeabi-v7a": [["qemu-arm-static", "-cpu", "cortex-a15"]],
}
EXIT_FORMAT = 3


def _weights(name: str, shape: tuple[int, ...], dtype: DType, low: int, high: int, axis: int,
             rng: np.random.Generator) -> Tensor:
    scales = rng.uniform(0.005, 0.02, shape[axis]).astype(np.float32)
    return Tensor(name, shape, dtype, data=rng.integers(low, high + 1, shape).astype(np.int8),
                  quant=QuantParams.per_channel(scales, axis))


def _bias(name: str, x_scale: float, w: Tensor, rng: np.random.Generator) -> Tensor:
    n = w.quant.scale.size
    return Tensor(name, (n,), DType.INT32, data=rng.integers(-500, 500, n).astype(np.int32),
                  quant=QuantParams.per_channel(x_scale * w.quant.scale, 0))


def elementwise_model() -> Model:
    """float image -> QUANTIZE -> ADD(const) -> HARD_SWISH -> MAX_POOL -> DEPTHWISE (int8) ->
    CONV 1x1 (int4 weights) -> MEAN -> FULLY_CONNECTED (ternary weights) -> SOFTMAX ->
    DEQUANTIZE: the float/int8 boundary, the runtime's own ops and the kernel library's, with
    every weight storage, in one small graph."""
    rng = np.random.default_rng(0)
    g = Graph(name="elementwise")
    x = g.add_tensor(act("image", (1, 12, 12, 24), None, dtype=DType.FLOAT32))
    xq = g.add_tensor(act("image_q", (1, 12, 12, 24), 0.02, -3))
    c = g.add_tensor(Tensor("bias", (1, 1, 1, 24), DType.INT8, quant=q(0.01, 2),
                            data=rng.integers(-128, 128, (1, 1, 1, 24), dtype=np.int8)))
    s = g.add_tensor(act("sum", (1, 12, 12, 24), 0.025, -1))
    h = g.add_tensor(act("hswish", (1, 12, 12, 24), 0.02, -100))
    p = g.add_tensor(act("pool", (1, 6, 6, 24), 0.02, -100))
    dw_w = _weights("dw_w", (1, 3, 3, 24), DType.INT8, -127, 127, 3, rng)
    dw = g.add_tensor(act("dw", (1, 6, 6, 24), 0.05, -5))
    pw_w = _weights("pw_w", (16, 1, 1, 24), DType.INT4, -8, 7, 0, rng)
    pw = g.add_tensor(act("pw", (1, 6, 6, 16), 0.04, -128))
    axes = g.add_tensor(Tensor("axes", (2,), DType.INT32, data=np.array([1, 2], np.int32)))
    m = g.add_tensor(act("mean", (1, 16), 0.02, -100))
    fc_w = _weights("fc_w", (24, 16), DType.INT2, -1, 1, 0, rng)  # ternary
    fc = g.add_tensor(act("logits", (1, 24), 0.01, 3))
    sm = g.add_tensor(act("probs_q", (1, 24), 1 / 256, -128))
    out = g.add_tensor(act("probs", (1, 24), None, dtype=DType.FLOAT32))
    g.operators = [
        Operator("QUANTIZE", [x], [xq]),
        Operator("ADD", [xq, c], [s], {"fused_activation_function": "NONE"}),
        Operator("HARD_SWISH", [s], [h]),
        Operator("MAX_POOL_2D", [h], [p], {"padding": "VALID", "stride_w": 2, "stride_h": 2,
                                           "filter_width": 2, "filter_height": 2,
                                           "fused_activation_function": "NONE"}),
        Operator("DEPTHWISE_CONV_2D", [p, dw_w, _bias("dw_b", 0.02, dw_w, rng)], [dw],
                 {"padding": "SAME", "stride_w": 1, "stride_h": 1, "depth_multiplier": 1,
                  "fused_activation_function": "RELU6"}),
        Operator("CONV_2D", [dw, pw_w, _bias("pw_b", 0.05, pw_w, rng)], [pw],
                 {"padding": "VALID", "stride_w": 1, "stride_h": 1,
                  "fused_activation_function": "RELU"}),
        Operator("MEAN", [pw, axes], [m], {"keep_dims": False}),
        Operator("FULLY_CONNECTED", [m, fc_w, _bias("fc_b", 0.02, fc_w, rng)], [fc],
                 {"fused_activation_function": "NONE", "keep_num_dims": False}),
        Operator("SOFTMAX", [fc], [sm], {"beta": 1.0}),
        Operator("DEQUANTIZE", [sm], [out]),
    ]
    g.inputs, g.outputs = [x], [out]
    return Model(graphs=[g])


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("edge_run") / "elementwise.edge"
    write_edge(elementwise_model(), path)
    return path


@pytest.fixture(scope="module")
def image(model_file) -> Path:
    x = np.random.default_rng(5).uniform(-2, 2, (1, 12, 12, 24)).astype(np.float32)
    path = model_file.parent / "image.npy"
    np.save(path, x)
    return path


def edge_run(abi: str = "x86_64", *args: str, prefix: list[str] | None = None,
             binary: Path | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    exe = binary or native.edge_run_path(abi)
    return subprocess.run([*(prefix or []), str(exe), *args], capture_output=True, text=True,
                          timeout=timeout)


def test_peak_rss_is_edge_runs_own(model_file, image) -> None:
    # getrusage's ru_maxrss keeps the parent's high-water mark across fork + exec: started from
    # this (now 512 MiB larger) process, edge-run used to report at least that. VmHWM is its own.
    held = bytearray(512 << 20)
    held[::4096] = b"\1" * len(held[::4096])  # touch every page, so it is resident
    r = edge_run("x86_64", str(model_file), "--inputs", str(image), "--runs", "2", "--json")
    assert r.returncode == 0, r.stderr
    peak_kb = json.loads(r.stdout)["peak_rss_kb"]
    assert 0 < peak_kb < 256 << 10, peak_kb
    del held


def test_json_report_and_outputs(model_file, image, tmp_path) -> None:
    out = tmp_path / "out.npy"
    r = edge_run("x86_64", str(model_file), "--inputs", str(image), "--runs", "20", "--warmup",
                 "3", "--threads", "1", "--outputs", str(out), "--json", "--profile-layers")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    for key in ("init_ms", "first_run_ms", "peak_rss_kb", "arena_bytes", "model_bytes"):
        assert report[key] > 0, key
    assert report["warmup"]["runs"] == 3 and report["warmup"]["mean_ms"] > 0
    # CPU time of the 20 timed runs, all threads: a CPU clock read around them
    assert report["timed_cpu_ms"] > 0
    lat = report["latency_ms"]
    assert report["runs"] == 20
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert lat["min"] <= lat["mean"] <= lat["max"] and lat["std"] >= 0
    assert report["arch"] == "x86_64" and report["threads"] == 1
    assert [layer["op"] for layer in report["layers"]] == [
        "QUANTIZE", "ADD", "HARD_SWISH", "MAX_POOL_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "MEAN",
        "FULLY_CONNECTED", "SOFTMAX", "DEQUANTIZE"]
    kernels = {layer["op"]: layer["kernel"] for layer in report["layers"]}
    # the conv runs the indirect kernel (qc4w_igemm) where the ISA has one, else qc4w_gemm
    assert "qc4w_" in kernels["CONV_2D"] and "gemm" in kernels["CONV_2D"]
    assert "2w_gemm" in kernels["FULLY_CONNECTED"]
    # keyed to this CPU: every kernel is of an ISA it runs, and the weighted layers take the best
    # one (avx2 on an AVX2 machine, avx512vnni on AVX-512 VNNI / AMX, neon or dotprod on Arm)
    assert {k.rsplit("__", 1)[1] for k in kernels.values()} <= set(available_isas()), kernels
    # (the avx512amx tier has tiles for int8-weight GEMMs only: these sub-byte layers run its
    # avx512vnni kernels, and say so)
    best = resolve_isa()
    served_by = {"avx512amx": "avx512vnni"}.get(best, best)
    for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        assert kernels[op].endswith("__" + served_by), (op, kernels[op])
    assert all(layer["kernel"] and layer["mean_ms"] >= 0 for layer in report["layers"])
    assert report["outputs"][0]["path"] == str(out)
    # the runner's output equals the Python binding's, bit for bit
    ours = EdgeModel(model_file).run(np.load(image))[0]
    assert np.array_equal(np.load(out), ours)
    assert report["arena_bytes"] < report["unshared_activation_bytes"]


def test_text_report_random_inputs_and_pinning(model_file) -> None:
    r = edge_run("x86_64", str(model_file), "--runs", "3", "--warmup", "0", "--cpus", "0")
    assert r.returncode == 0, r.stderr
    assert "latency (ms): mean" in r.stdout and "cpus 0" in r.stdout
    assert "qs8_vadd_" in r.stdout


@pytest.mark.qemu
@pytest.mark.parametrize("abi", ["arm64-v8a", "armeabi-v7a"])
def test_arm_builds_give_the_same_outputs_under_qemu(abi, model_file, image, tmp_path) -> None:
    host = tmp_path / "host.npy"
    r = edge_run("x86_64", str(model_file), "--inputs", str(image), "--runs", "1", "--warmup",
                 "0", "--outputs", str(host))
    assert r.returncode == 0, r.stderr
    for prefix in QEMU[abi]:
        out = tmp_path / f"{abi}-{prefix[-1]}.npy"
        r = edge_run(abi, str(model_file), "--inputs", str(image), "--runs", "2", "--warmup",
                     "0", "--outputs", str(out), "--json", prefix=prefix, timeout=300)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["arch"] == {"arm64-v8a": "aarch64",
                                                "armeabi-v7a": "armv7"}[abi]
        assert np.array_equal(np.load(out), np.load(host)), f"{abi} under {prefix}"


def test_usage_and_input_errors(model_file, tmp_path) -> None:
    r = edge_run("x86_64", str(model_file), "--runs", "many")
    assert r.returncode == 2 and "--runs needs an integer" in r.stderr
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((1, 12, 12, 23), np.float32))
    r = edge_run("x86_64", str(model_file), "--inputs", str(bad))
    assert r.returncode == 5 and "holds FLOAT32 [1, 12, 12, 23]" in r.stderr
    r = edge_run("x86_64", str(model_file), "--isa", "sse9")
    assert r.returncode == 4 and "kernel ISA 'sse9'" in r.stderr
    r = edge_run("x86_64", str(tmp_path / "missing.edge"))
    assert r.returncode == 6 and "cannot open" in r.stderr


# ---------------------------------------------------------------- malformed files under ASan
def _mutate(model_file: Path, edit) -> bytes:
    """Re-serialise the model after `edit(model_t)` changed the decoded object tree."""
    import flatbuffers

    m = fb.ModelT.InitFromObj(fb.Model.GetRootAs(model_file.read_bytes(), 0))
    edit(m)
    b = flatbuffers.Builder(1 << 16)
    b.Finish(m.Pack(b), file_identifier=b"EDG1")
    return bytes(b.Output())


def _malformed(model_file: Path) -> dict[str, tuple[bytes, str]]:
    good = model_file.read_bytes()

    def bad_index(m):
        m.subgraphs[0].operators[1].inputs = np.array([0, 99], np.int32)

    def absurd_shape(m):
        m.subgraphs[0].tensors[1].shape = np.array([1 << 20, 1 << 20, 1 << 20], np.int32)

    def bad_buffer(m):
        m.buffers[1].data = np.zeros(3, np.uint8)

    return {
        "truncated": (good[: len(good) // 2], "corrupt or truncated"),
        "identifier": (good[:4] + b"TFL3" + good[8:], "not a .edge model"),
        "tensor_index": (_mutate(model_file, bad_index), "refers to tensor 99"),
        "absurd_shape": (_mutate(model_file, absurd_shape), "absurd shape"),
        "buffer_size": (_mutate(model_file, bad_buffer), "holds 3 bytes"),
        "empty": (b"", "too short"),
    }


@pytest.mark.parametrize("case", ["truncated", "identifier", "tensor_index", "absurd_shape",
                                  "buffer_size", "empty"])
def test_malformed_files_fail_cleanly_under_asan(case, model_file, tmp_path) -> None:
    assert ASAN_EDGE_RUN.is_file(), "the ASan build is made by `make native-tests`"
    data, message = _malformed(model_file)[case]
    path = tmp_path / f"{case}.edge"
    path.write_bytes(data)
    r = edge_run("x86_64", str(path), "--runs", "1", "--warmup", "0", binary=ASAN_EDGE_RUN)
    assert r.returncode == EXIT_FORMAT, (r.returncode, r.stderr)
    assert message in r.stderr
    assert "Sanitizer" not in r.stderr
    # the Python binding reports the same problem as ModelFormatError
    from sdk.base.errors import ModelFormatError

    with pytest.raises(ModelFormatError, match=message):
        EdgeModel(path)


def test_names_that_are_not_utf8_are_escaped(model_file, tmp_path) -> None:
    data = model_file.read_bytes()
    assert data.count(b"image\x00") == 1
    path = tmp_path / "names.edge"
    path.write_bytes(data.replace(b"image\x00", b"im\xffg\x01\x00"))
    assert EdgeModel(path).get_input_details()[0]["name"] == "im\\xffg\\x01"
    r = edge_run("x86_64", str(path), "--runs", "1", "--warmup", "0", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["inputs"][0]["name"] == "im\\xffg\\x01"


def test_random_byte_flips_never_crash_under_asan(model_file, tmp_path) -> None:
    """Many mutants through the ASan runner: each exits 0 (a flip in data), 3 (malformed) or 4
    (well-formed but unsupported) - never a signal, never a sanitizer report."""
    good = bytearray(model_file.read_bytes())
    rng = np.random.default_rng(11)
    codes: dict[int, int] = {}
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0"}
    for i in range(150):
        data = bytearray(good)
        for _ in range(int(rng.integers(1, 6))):
            pos = int(rng.integers(0, len(data)))
            data[pos] ^= 1 << int(rng.integers(0, 8))
        path = tmp_path / f"flip{i}.edge"
        path.write_bytes(bytes(data))
        r = subprocess.run([str(ASAN_EDGE_RUN), str(path), "--runs", "1", "--warmup", "0"],
                           capture_output=True, text=True, errors="replace", timeout=60,
                           env=env)
        assert r.returncode in (0, 3, 4, 5), (i, r.returncode, r.stderr[-2000:])
        assert "Sanitizer" not in r.stderr, r.stderr[-2000:]
        codes[r.returncode] = codes.get(r.returncode, 0) + 1
    assert codes.get(3, 0) > 0, codes
