"""sdk.export refuses a wrong argument before it loads the model (loading a Keras model starts
TensorFlow: seconds)."""

from __future__ import annotations

import pytest


def test_an_unknown_scheme_is_refused_before_the_model_loads(tmp_path) -> None:
    """`edgesdk export m.keras int5` loaded TensorFlow and the model (seconds) before it said
    the scheme does not exist; the model here is not even there."""
    import sdk
    from sdk.base.errors import ConversionError

    with pytest.raises(ConversionError, match=r"unknown quantisation scheme 'int5'; available: "
                                              r".*int8"):
        sdk.export(tmp_path / "absent.keras", "int5", calibration="synthetic")
