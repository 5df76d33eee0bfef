"""Figures the docs quote from the code, held to the code: where a page states a constant (the
thread pool's spin and back-off times, the sub-byte default's weight bound), the page's figure is
formatted from the constant itself, so a change to one without the other fails here.
tests/test_docs.py checks the pages' commands, names, paths and links."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _text(page: str) -> str:
    """The page's text with line breaks as spaces (a figure may wrap)."""
    return " ".join((ROOT / page).read_text().split())


def _pool_constants() -> dict[str, int]:
    """native/src/thread_pool.cc's `constexpr int64_t kName = N;` (ns), by name."""
    source = (ROOT / "native" / "src" / "thread_pool.cc").read_text()
    return {name: int(value.replace("'", "")) for name, value in re.findall(
        r"constexpr\s+int64_t\s+(k\w+)\s*=\s*([\d']+)\s*;", source)}


@pytest.mark.parametrize(("constant", "phrase"), [
    ("kDefaultSpinNs", "only the {us} us spin remains"),
    ("kDefaultIdleSpinNs", "`EDGE_POOL_IDLE_SPIN_US` more (default {us};"),
    ("kSampleNs", "re-read at most once a millisecond"),
    ("kLateNs", "longer than {us} us"),
    ("kDefaultBackoffNs", "for a back-off ({ms} ms,"),
    ("kMaxBackoffNs", "up to {ms} ms; `EDGE_POOL_BACKOFF_US` sets the first"),
    ("kWakeDelayNs", "beyond {us} us per scheduling"),
])
def test_kernels_page_quotes_the_thread_pool_constants(constant: str, phrase: str) -> None:
    """docs/kernels.md ("Threads") against native/src/thread_pool.cc (area A's pool: spin,
    run-delay rule, late worker, back-off)."""
    ns = _pool_constants()[constant]
    if constant == "kSampleNs":
        assert ns == 1_000_000, "the page says once a millisecond"
    text = _text("docs/kernels.md")
    want = phrase.format(us=ns // 1000, ms=ns // 1_000_000)
    assert want in text, f"docs/kernels.md should say {want!r} ({constant} = {ns} ns)"


def test_the_pool_constants_are_found() -> None:
    """The parser above reads the file as it is written (a renamed constant fails loudly)."""
    assert {"kDefaultSpinNs", "kDefaultIdleSpinNs", "kLateNs", "kDefaultBackoffNs",
            "kMaxBackoffNs", "kSampleNs", "kWakeDelayNs"} <= set(_pool_constants())


def test_subbyte_page_quotes_the_default_and_its_weight_bound() -> None:
    """docs/subbyte.md ("The default") names the sub-byte default, the bound above which it is
    not used and what is used there, as sdk.converters.quantize.method_default has them."""
    from sdk.converters.quantize import method_default as md

    text = _text("docs/subbyte.md")
    millions = md.AUTO_MAX_WEIGHTS / 1_000_000
    bound = f"{millions:g} M float weights"
    assert f'rounds its weights by `"{md.DEFAULT_SUBBYTE_METHOD}"`' in text
    assert f"A model of more than {bound} (`method_default.AUTO_MAX_WEIGHTS`) gets " \
           f'`"{md.LARGE_MODEL_METHOD}"` instead' in text
    assert f"with real calibration data up to {bound}" in text  # the method list's pointer
    assert set(md.SUBBYTE_SCHEMES) == {"int4", "ternary", "int2"}
    assert all(f'`"{s}"`' in text for s in md.SUBBYTE_SCHEMES)


def test_export_docstring_quotes_the_sub_byte_default() -> None:
    """sdk.export's `weight_method` paragraph (the API reference users read first) names the
    default, the weight bound and the method above it, as method_default has them."""
    import sdk
    from sdk.converters.quantize import method_default as md

    doc = " ".join((sdk.export.__doc__ or "").split())
    assert f'defaults to "{md.DEFAULT_SUBBYTE_METHOD}", and to "{md.LARGE_MODEL_METHOD}" for a ' \
           f"model of more than {md.AUTO_MAX_WEIGHTS / 1_000_000:g} M float weights" in doc


def test_subbyte_page_quotes_the_mixed_search_defaults() -> None:
    """docs/subbyte.md (the mixed search's steps) names `MixedOptions`' defaults and the INT8
    ceiling's tie as sdk.converters.quantize.mixed has them (stop 25: `descents`,
    `ceiling_choice`)."""
    from sdk.converters.quantize import mixed

    opts = mixed.MixedOptions()
    text = _text("docs/subbyte.md")
    assert f"(`descents`, default {opts.descents} starting points over the budget)" in text
    assert f"the `trades` (default {opts.trades}) most promising layers" in text
    assert f"Up to `trade_rounds` (default {opts.trade_rounds}) rounds" in text
    assert f"the best `row_splits` (default {opts.row_splits}) points" in text
    assert f"(within {mixed.CEILING_TIE_DB:g} dB, `mixed.ceiling_choice`)" in text


def test_subbyte_page_quotes_the_whole_model_checks_folds() -> None:
    """docs/subbyte.md ("auto"'s whole-model check) counts the check's solves from its folds and
    candidates as sdk.converters.quantize.method_check has them (two-fold since 7676c91)."""
    from sdk.converters.quantize import method_check as mc

    words = {1: "one", 2: "two", 3: "three", 4: "four", 6: "six", 8: "eight", 9: "nine"}
    per_fold = 1 + len(mc.PLAIN)  # the per-layer choice and the plain methods
    text = _text("docs/subbyte.md")
    assert mc.FOLDS == 2, "the page says: the halves swapped, a second fold"
    assert f"The notes give the {words[per_fold]} pooled figures, each fold's in brackets" in text
    assert f"the check adds {words[mc.FOLDS * per_fold]} solves on half the samples " \
           f"({words[per_fold]} per fold)" in text
    assert len(mc.fold_halves(10)) == mc.FOLDS


def test_kernels_page_quotes_the_sub_byte_pointwise_gemm_bounds() -> None:
    """docs/kernels.md (the CONV_2D rule) gives the K below which a sub-byte 1x1 layer at the
    AVX2 level takes the fused GEMM, per weight type, as native/src/kernels/conv2d.cc has it."""
    source = (ROOT / "native" / "src" / "kernels" / "conv2d.cc").read_text()
    m = re.search(r"pointwise_k\s*=\s*plan\.type\s*==\s*WeightType::kInt4\s*\?\s*(\d+)\s*:\s*"
                  r"(\d+)\s*;", source)
    assert m is not None, "conv2d.cc's pointwise_k rule is not written as the test reads it"
    int4, other = m.group(1), m.group(2)
    text = _text("docs/kernels.md")
    assert f"GEMM for sub-byte 1x1 layers, 2-bit K < {other} and int4 K < {int4}," in text
    assert f"2-bit 1x1 layers keep the fused GEMM up to K < {other}" in text


def test_precision_page_quotes_the_concentration_rule() -> None:
    """docs/precision.md ("Where a few samples decide") states when a few check samples decide
    an output, with its small-set examples, as planner.concentrated_error has it."""
    from sdk.converters.quantize import planner as p

    text = _text("docs/precision.md")
    words = {0.5: "half", 0.25: "a quarter", 2.0: "twice"}
    assert f"the fewest samples holding {words[p.CONCENTRATION_SHARE]} of it are at most " \
           f"{words[p.CONCENTRATION_SAMPLES]} of the check set, at least one, and hold at least " \
           f"{words[p.CONCENTRATION_SHARE / p.CONCENTRATION_SAMPLES]} their even share" in text
    assert "of 2 check samples one holding all the error, of 3 one holding two thirds" in text
    assert p.concentrated_error([1.0, 0.0]) == [(0, 1.0)]
    assert p.concentrated_error([0.9, 0.1]) == []
    assert p.concentrated_error([2.0, 1.0, 0.0]) == [(0, 0.6667)]
    assert p.concentrated_error([1.9, 1.1, 0.0]) == []
