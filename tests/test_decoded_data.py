"""The constant data the .tflite and .edge readers decode, counted one way for both
(`sdk.converters.tflite.decode.DecodedData`) against the load budget's fold limit."""

from __future__ import annotations

import pytest

from sdk.base.errors import ModelFormatError
from sdk.base.limits import LoadBudget
from sdk.converters.tflite.decode import DecodedData


def test_decoded_constants_past_the_fold_limit_are_refused_naming_the_tensor() -> None:
    budget = LoadBudget(memory_bytes=1000).for_file(10)
    assert budget.fold_bytes == 1000  # the memory budget caps the 64 MiB floor
    data = DecodedData(10, budget, lambda m: ModelFormatError(m, path="m.tflite"))
    data.charge("tensor 'w'", 600)
    data.charge("tensor 'b'", 400)
    assert data.decoded == 1000
    with pytest.raises(ModelFormatError, match=r"tensor 'x': decoding it brings the model's "
                       r"constant data to 1,001 bytes, over the limit of 1,000 for a 10-byte "
                       r"file \(16 x its size, at least 64 MiB, at most the load budget of "
                       r"1,000; tensors that share one buffer each take a copy\)") as err:
        data.charge("tensor 'x'", 1)
    assert "m.tflite" in str(err.value)
