"""One name per kernel (issue 14, docs/kernels.md): every kernel name the native library can
report in a profile is a C++ function's symbol, defined exactly once under native/src, and is in
the naming page's table; the table names no kernel that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from edge_helpers import act, single_op_model

from sdk import kernels
from sdk.converters.edge import to_edge_bytes
from sdk.run import EdgeModel, Interpreter

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "native" / "src"
PAGE = ROOT / "docs" / "kernels.md"
ISAS = ("scalar", "avx2", "avxvnni", "avx512vnni", "avx512amx", "neon", "dotprod", "i8mm")
#: data type(s) _ op [_ tile] __ ISA, XNNPACK's convention (docs/kernels.md)
NAME = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)*__(" + "|".join(ISAS) + r")$")
#: a kernel function: `void <name>(`, its name ending in __<isa>
DEFINITION = re.compile(r"\bvoid\s+([a-z0-9_]+__(?:" + "|".join(ISAS) + r"))\s*\(")


def _sources() -> dict[Path, str]:
    return {p: p.read_text() for p in sorted(SRC.rglob("*")) if p.suffix in (".cc", ".h")}


def _definitions() -> dict[str, list[str]]:
    """Kernel name -> 'file:line' of each definition (a body follows the parameter list;
    declarations, which end in ';', are not definitions)."""
    found: dict[str, list[str]] = {}
    for path, source in _sources().items():
        text = re.sub(r"//[^\n]*", "", source)  # comments may quote a definition
        for m in DEFINITION.finditer(text):
            depth, i = 0, m.end() - 1
            while True:  # to the parenthesis closing the parameter list
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
                if depth == 0:
                    break
            rest = text[i:].lstrip()
            rest = rest[len("const"):].lstrip() if rest.startswith("const") else rest
            if rest.startswith("{"):
                line = text.count("\n", 0, m.start()) + 1
                found.setdefault(m.group(1), []).append(f"{path.relative_to(ROOT)}:{line}")
    return found


def _page_names() -> set[str]:
    """The names in the naming page's table (first column, in backquotes)."""
    section = PAGE.read_text().split("## Kernel names", 1)[1].split("\n## ", 1)[0]
    return {m.group(1) for m in re.finditer(r"^\| `([a-z0-9_]+)` \|", section, re.M)}


def test_every_reported_name_is_one_function_and_documented() -> None:
    names = kernels.kernel_names()
    assert names == sorted(set(names))
    # this binary's ISAs each bring GEMM, depthwise, element-wise and quantize kernels
    for isa in kernels.built_isas():
        assert any(n.endswith("__" + isa) and "_gemm_" in n for n in names), (isa, names)
    assert {"qs8_vadd_lut__scalar", "xx_copy__scalar", "f32_qs8_quantize_1x__scalar"} <= set(names)
    definitions = _definitions()
    documented = _page_names()
    for name in names:
        assert NAME.match(name), name
        assert len(definitions.get(name, [])) == 1, (name, definitions.get(name))
        assert name in documented, f"{name} is not in docs/kernels.md's table"


def test_every_kernel_function_is_documented_and_every_documented_name_exists() -> None:
    """Across all ISAs, including those this host does not build (Arm on x86 and back)."""
    definitions = _definitions()
    documented = _page_names()
    assert len(definitions) > 60
    twice = {n: where for n, where in definitions.items() if len(where) > 1}
    assert not twice, twice
    assert sorted(set(definitions) - documented) == []
    assert sorted(documented - set(definitions)) == []


def test_one_isa_name_for_dot_product() -> None:
    assert "dotprod" in ISAS
    for path, text in _sources().items():
        assert "neondot" not in text, path
    assert not [n for n in _page_names() if "neondot" in n]


@pytest.mark.parametrize("isa", kernels.available_isas())
def test_a_profile_names_only_listed_kernels(isa: str) -> None:
    """What a run reports (LayerStats.kernel) is one of kernel_names(), on every ISA here."""
    x = act("x", (1, 6, 6, 20), 0.05, -3)
    ops = [("ADD", [x, act("b", (1, 6, 6, 20), 0.02, 7)], {"fused_activation_function": "NONE"}),
           ("LOGISTIC", [x], {}), ("HARD_SWISH", [x], {})]
    names = set(kernels.kernel_names())
    for op, inputs, options in ops:
        out = act("y", (1, 6, 6, 20), 0.08 if op == "ADD" else 1 / 256, -128 if op == "LOGISTIC"
                  else 5)
        model = EdgeModel(to_edge_bytes(single_op_model(op, inputs, [out], options),
                                        recipe="int8"), threads=1, isa=isa)
        model.run([np.zeros(t.shape, np.int8) for t in inputs])
        reported = model.kernels()
        assert reported and set(reported) <= names, (op, isa, reported)


def test_the_delegate_names_only_listed_kernels(mlp_models) -> None:
    """The delegate's profile names (its input quantiser and GEMM joined by '+' for dynamic-range
    layers) are listed kernels too."""
    names = set(kernels.kernel_names())
    seen = set()
    for precision in ("int8", "int4", "ternary"):
        interp = Interpreter(str(mlp_models[precision]), xnnpack=False)
        detail = interp.get_input_details()[0]
        interp.run(np.zeros(detail["shape"], detail["dtype"]))
        assert interp.report is not None and interp.report.claimed, precision
        for kernel in interp.report.kernels():
            assert set(kernel.split("+")) <= names, (precision, kernel)
            seen.add(kernel)
    assert any("+" in k for k in seen) and any("_qc2w_" in k for k in seen), seen
