"""`input_shapes=` read one way for the ONNX and .tflite importers
(`sdk.converters.input_shapes`): the forms it takes and the errors that name the problem."""

from __future__ import annotations

import numpy as np
import pytest

from sdk.base.errors import ConversionError
from sdk.converters.input_shapes import as_mapping, given_shapes


def test_every_form_becomes_a_mapping() -> None:
    assert as_mapping(None, ["x"], "m") == {}
    assert as_mapping((1, np.int64(3)), ["x"], "m") == {None: [1, np.int64(3)]}
    assert as_mapping([(1, 2), (3,)], ["a", "b"], "m") == {"a": (1, 2), "b": (3,)}
    with pytest.raises(ConversionError, match=r"m: input_shapes lists 1 shapes, but the model "
                                              r"has 2 inputs: \['a', 'b'\]"):
        as_mapping([(1, 2)], ["a", "b"], "m")


def test_keys_and_shapes_are_checked_as_given() -> None:
    assert list(given_shapes({"a": [1, "4"]}, ["a", "b"], "m")) == [("a", (1, 4))]
    assert list(given_shapes((2, 3), ["x"], "m")) == [(None, (2, 3))]
    assert list(given_shapes((2, 3), ["x"], "m", name_the_only=True)) == [("x", (2, 3))]
    assert list(given_shapes({"x:0": (1,)}, ["x"], "m", known={"x", "x:0"})) == [("x:0", (1,))]
    with pytest.raises(ConversionError, match=r"key None \(the only input\), but the model has "
                                              r"2 inputs: \['a', 'b'\]"):
        list(given_shapes({None: (1,)}, ["a", "b"], "m"))
    with pytest.raises(ConversionError, match=r"names 'c', which is not a model input \(inputs: "
                                              r"\['a', 'b'\]\)"):
        list(given_shapes({"c": (1,)}, ["a", "b"], "m"))
    with pytest.raises(ConversionError, match=r"input_shapes\['x'\] = \(1, 'n'\) is not a tuple "
                                              "of integers"):
        list(given_shapes({None: (1, "n")}, ["x"], "m", name_the_only=True))
    with pytest.raises(ConversionError, match=r"input_shapes\[None\] = 7 is not a tuple"):
        list(given_shapes({None: 7}, ["x"], "m"))


def test_an_entry_is_checked_only_when_it_is_reached() -> None:
    """The importers check each entry against the model before the next one is read."""
    entries = given_shapes({"a": (1,), "c": (2,)}, ["a", "b"], "m")
    assert next(entries) == ("a", (1,))
    with pytest.raises(ConversionError, match="'c', which is not a model input"):
        next(entries)
