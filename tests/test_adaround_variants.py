"""benchmarks/adaround_variants.py (issue 15): how a setting on its command line is read."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import adaround_variants as av


def test_settings_are_methods_or_adaround_overrides() -> None:
    assert av.parse("base") == ("adaround", {})
    assert av.parse("gptq") == ("gptq", {})
    assert av.parse("iterations=300") == ("adaround", {"iterations": 300})
    method, kw = av.parse("lam=100+damp=0.01")
    assert method == "adaround" and kw == {"lam": 100.0, "damp": 0.01}
    assert isinstance(av.parse("iterations=300")[1]["iterations"], int)


def test_overrides_name_real_adaround_arguments() -> None:
    import inspect

    from sdk.converters.quantize.adaround import adaround_quantize

    params = inspect.signature(adaround_quantize).parameters
    assert set(av.KEYS) <= set(params), set(av.KEYS) - set(params)


@pytest.mark.parametrize("bad", ["iterations", "foo=1", "lam=1+bogus"])
def test_a_bad_setting_is_named(bad: str) -> None:
    with pytest.raises(ValueError, match="is not key=value"):
        av.parse(bad)
