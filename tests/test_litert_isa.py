"""benchmarks/litert_isa.py: LiteRT's XNNPACK restricted to its AVX2 kernels at native speed.

The restriction changes process-wide state, so every case runs in a fresh interpreter process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sdk.base.native import cpu_features

from conftest import host_cpu_flags

ROOT = Path(__file__).resolve().parents[1]

# One int8 3x3 conv (made here) run by XNNPACK; prints the output and the kernels it chose.
SCRIPT = """
import json, sys
import numpy as np
sys.path.insert(0, {bench!r})
import litert_isa
from sdk import layer_models

level = sys.argv[1]
restriction = litert_isa.select_isa(level)
rng = np.random.default_rng(3)
model = layer_models.int8_conv2d(
    rng.integers(-127, 128, (32, 3, 3, 16)).astype(np.int8), rng.uniform(0.001, 0.01, 32),
    rng.integers(-500, 500, 32), input_shape=(1, 12, 12, 16), input_scale=0.05,
    input_zero_point=-3, output_scale=0.2, output_zero_point=5)
it = layer_models.interpreter(model, kernels="xnnpack", num_threads=1)
x = rng.integers(-128, 128, (1, 12, 12, 16)).astype(np.int8)
it.set_tensor(it.get_input_details()[0]["index"], x)
it.invoke()
y = it.get_tensor(it.get_output_details()[0]["index"])
late = None
try:
    litert_isa.restrict_xnnpack("avx2")
except litert_isa.LiteRTIsaError as e:
    late = str(e)
print(json.dumps({{"output": y.astype(int).ravel().tolist(),
                  "kernels": litert_isa.kernels_report(level),
                  "flags": restriction.arch_flags if restriction else None,
                  "late_error": late}}))
"""


def _run(level: str) -> dict:
    code = SCRIPT.format(bench=str(ROOT / "benchmarks"))
    out = subprocess.run([sys.executable, "-c", code, level], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs() -> dict[str, dict]:
    if not cpu_features().get("avx2"):
        pytest.skip("this CPU has no AVX2: there is nothing to restrict XNNPACK to")
    return {level: _run(level) for level in ("native", "avx2")}


def test_restricted_xnnpack_runs_avx2_kernels_only(runs: dict[str, dict]) -> None:
    gemm = runs["avx2"]["kernels"]["qs8_qc8w_gemm_config"]
    assert any(k.endswith("__avx2") or "__avx2_" in k for k in gemm), gemm
    every = [k for names in runs["avx2"]["kernels"].values() for k in names]
    assert not [k for k in every if "avx512" in k or "avxvnni" in k], every
    assert runs["avx2"]["flags"] < 1 << 8


def test_restriction_keeps_results(runs: dict[str, dict]) -> None:
    # Same arithmetic, other instructions: XNNPACK's kernels agree across ISAs.
    assert runs["avx2"]["output"] == runs["native"]["output"]


#: the CPU features (/proc/cpuinfo flags) an XNNPACK x86 kernel suffix needs
XNN_ISA_NEEDS = {
    "sse2": {"sse2"}, "ssse3": {"ssse3"}, "sse41": {"sse4_1"}, "avx": {"avx"}, "fma3": {"fma"},
    "avx2": {"avx2"}, "avx256skx": {"avx512bw"}, "avx512skx": {"avx512bw"},
    "avxvnni": {"avx_vnni"}, "avx256vnni": {"avx512_vnni"}, "avx512vnni": {"avx512_vnni"},
    "avx512vnnigfni": {"avx512_vnni", "gfni"}, "avx512amx": {"amx_int8"},
}


def test_native_level_reports_what_this_cpu_chose(runs: dict[str, dict]) -> None:
    gemm = runs["native"]["kernels"]["qs8_qc8w_gemm_config"]
    assert gemm
    # keyed to this CPU: every kernel picked is of an ISA it has (an AVX2-only machine gets no
    # avx512 / vnni / amx kernel, an AMX machine may get AMX tiles)
    flags = host_cpu_flags()
    for kernel in gemm:
        isa = kernel.rsplit("__", 1)[-1].split("_")[0]
        assert XNN_ISA_NEEDS.get(isa, set()) <= flags, (kernel, sorted(flags))
    if cpu_features().get("avx512vnni"):
        # A VNNI host gets an int8 dot-product kernel, whichever tier XNNPACK ranks first there:
        # avx512vnni, avxvnni / avx256vnni, or AMX tiles (`..._16x64c4__avx512amx`) where the CPU
        # has AMX-INT8. Only the AVX2 fallback (vpmaddwd on int16 pairs) would be wrong.
        isas = [k.rsplit("__", 1)[-1] for k in gemm]
        assert any("vnni" in isa or "amx" in isa for isa in isas), gemm


def test_restricting_after_an_interpreter_ran_is_refused(runs: dict[str, dict]) -> None:
    assert "before creating any interpreter" in runs["native"]["late_error"]


def test_unknown_level_is_refused() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import litert_isa
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    with pytest.raises(litert_isa.LiteRTIsaError, match="unknown ISA level 'sse9'"):
        litert_isa.restrict_xnnpack("sse9")


def test_avx512vnni_level_runs_no_amx_or_avxvnni_kernels(runs: dict[str, dict]) -> None:
    # The AVX-512 VNNI level (Ice Lake / Zen 4 class) on whatever this host is: XNNPACK keeps
    # its AVX-512 VNNI kernels and drops AMX tiles and VEX AVX-VNNI, which a Sapphire Rapids-class
    # host would otherwise run; same outputs.
    if not cpu_features().get("avx512vnni"):
        pytest.skip("this CPU has no AVX-512 VNNI: the level cannot be emulated here")
    run = _run("avx512vnni")
    every = [k for names in run["kernels"].values() for k in names]
    assert not [k for k in every if "amx" in k or "avxvnni" in k], every
    gemm = run["kernels"]["qs8_qc8w_gemm_config"]
    assert any("avx512vnni" in k or "avx256vnni" in k for k in gemm), gemm
    assert run["flags"] & (1 << 20) == 0 and run["flags"] & (1 << 14) == 0
    assert run["output"] == runs["native"]["output"]


def test_avxvnni_level_runs_vex_vnni_kernels_only(runs: dict[str, dict]) -> None:
    # The AVX-VNNI level (Alder Lake / N100 class: AVX2 + VEX vpdpbusd, no AVX-512) on an
    # AVX-512 / AMX host: XNNPACK's int8 GEMMs are its avxvnni kernels, nothing of AVX-512 or
    # AMX runs; same outputs.
    if not cpu_features().get("avxvnni"):
        pytest.skip("this CPU has no AVX-VNNI: the level cannot be emulated here")
    run = _run("avxvnni")
    every = [k for names in run["kernels"].values() for k in names]
    assert not [k for k in every if "avx512" in k or "avx256" in k or "amx" in k], every
    gemm = run["kernels"]["qs8_qc8w_gemm_config"]
    assert any(k.endswith("__avxvnni") or "__avxvnni_" in k for k in gemm), gemm
    assert run["flags"] & (1 << 14) and run["flags"] < 1 << 15
    assert run["output"] == runs["native"]["output"]
