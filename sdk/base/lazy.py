"""Names a package resolves on first use (PEP 562), so importing it stays light."""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from importlib import import_module
from types import ModuleType
from typing import Any

from sdk.base.errors import RuntimeNotFoundError

#: name -> (module, attribute); an empty attribute means the module itself
LazyTable = Mapping[str, tuple[str, str]]


def lazy_names(package: str, table: LazyTable, namespace: MutableMapping[str, Any]
               ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's `__getattr__` and `__dir__` for the names in `table`:
    `__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())`. A name is imported on
    first access and kept in `namespace`, so later lookups do not come here."""

    def __getattr__(name: str) -> Any:
        try:
            module_name, attr = table[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        module = import_module(module_name)
        value = getattr(module, attr) if attr else module
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*namespace, *table])

    return __getattr__, __dir__


def require(module: str, why: str) -> ModuleType:
    """`module` imported, or a RuntimeNotFoundError that says why it is needed and how to
    install it (`why`: "PyTorch input needs PyTorch and onnxscript: pip install
    'edgesdk[torch]'"), chained to the ImportError."""
    try:
        return import_module(module)
    except ImportError as exc:
        raise RuntimeNotFoundError(why) from exc
