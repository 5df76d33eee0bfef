"""The QAT error (a `ConversionError`: the model cannot be prepared or exported as asked)."""

from __future__ import annotations

from sdk.base.errors import ConversionError


class QatError(ConversionError):
    """A model QAT cannot prepare or export: names the layer and what it has."""


__all__ = ["QatError"]
