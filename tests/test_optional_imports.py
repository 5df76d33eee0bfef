"""The optional packages (TensorFlow, onnx, PyTorch, onnxscript) are imported through one helper,
`sdk.base.lazy.require`: when one is missing the error says what needs it and which extra
installs it, and is still an ImportError."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest

from sdk.base.errors import RuntimeNotFoundError
from sdk.base.lazy import require


def test_require_returns_the_module() -> None:
    assert require("json", "never said") is sys.modules["json"]


def test_require_names_why_and_chains_the_import_error() -> None:
    with pytest.raises(RuntimeNotFoundError, match=r"^widgets need edgesdk_no_such_mod: pip "
                                                   r"install 'edgesdk\[x\]'$") as info:
        require("edgesdk_no_such_mod", "widgets need edgesdk_no_such_mod: pip install "
                                       "'edgesdk[x]'")
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value.__cause__, ImportError)


def _tf() -> Any:
    from sdk.converters.tensorflow import import_tf

    return import_tf()


def _onnx() -> Any:
    from sdk.converters.onnx.loader import import_onnx

    return import_onnx()


def _torch() -> Any:
    from sdk.converters.pytorch import import_torch

    return import_torch()


@pytest.mark.parametrize(("module", "load", "extra"), [
    ("tensorflow", _tf, "tf"), ("onnx", _onnx, "onnx"), ("torch", _torch, "torch")])
def test_a_missing_extra_names_itself(monkeypatch: pytest.MonkeyPatch, module: str,
                                      load: Callable[[], Any], extra: str) -> None:
    load_first = {"tensorflow": "sdk.converters.tensorflow", "onnx": "sdk.converters.onnx.loader",
                  "torch": "sdk.converters.pytorch"}[module]
    __import__(load_first)  # the module under test, before its package is hidden
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(RuntimeNotFoundError, match=rf"pip install 'edgesdk\[{extra}\]'"):
        load()
