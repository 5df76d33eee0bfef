"""Run a .tflite model over many samples in LiteRT: batching, int8 I/O, intermediate tensors.

Calibration (float model, every intermediate tensor), the fidelity report (float and quantised
models side by side) and the benchmarks all feed sample sets through an interpreter; this is the
one place that does it.

Batching: when every input has a dynamic batch axis, samples are fed `batch_size` at a time after
checking once that a batch gives the same outputs as single samples (some graphs hard-code the
batch in a RESHAPE; those silently run one sample at a time). With `preserve_all_tensors` a run
keeps every intermediate of every sample of its batch (basic-pitch: 338 MiB a sample, and the
run peaks at `PEAK_FACTOR` times what it keeps): the check also measures what one sample keeps
and cuts the batch so that a run stays within the memory budget (`sdk.base.limits`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sdk.base.errors import EdgeSDKError
from sdk.base.limits import default_budget
from sdk.base.samples import SampleSet
from sdk.run.litert import backend

#: a run's peak memory over the tensors it keeps with `preserve_all_tensors`: the arena is
#: reallocated as it grows, dynamic tensors and kernel scratch come on top (basic-pitch: peak RSS
#: 2.0x the tensors kept, at batch 1, 2 and 6)
PEAK_FACTOR = 2


@dataclass(frozen=True)
class IODetail:
    index: int
    name: str
    shape: tuple[int, ...]
    signature: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    def to_float(self, x: np.ndarray) -> np.ndarray:
        if np.issubdtype(self.dtype, np.floating) or self.scale == 0:
            return np.asarray(x, np.float32)
        return ((x.astype(np.float32) - self.zero_point) * np.float32(self.scale))

    def from_float(self, x: np.ndarray) -> np.ndarray:
        if np.issubdtype(self.dtype, np.floating):
            return np.asarray(x, self.dtype)
        if self.scale == 0:  # not quantised (ids, masks): pass through
            return np.asarray(x).astype(self.dtype)
        info = np.iinfo(self.dtype)
        q = np.round(np.asarray(x, np.float64) / self.scale) + self.zero_point
        return np.clip(q, info.min, info.max).astype(self.dtype)


def _details(raw: dict[str, Any]) -> IODetail:
    scale, zp = raw.get("quantization", (0.0, 0))
    return IODetail(int(raw["index"]), raw["name"], tuple(int(d) for d in raw["shape"]),
                    tuple(int(d) for d in raw.get("shape_signature", raw["shape"])),
                    np.dtype(raw["dtype"]), float(scale), int(zp))


class _SampleRunner:
    """Feeding sample sets: subclasses provide `inputs`, `outputs`, `batch_size`, `invoke` and
    `check_batching`."""

    inputs: list[IODetail]
    outputs: list[IODetail]
    batch_size: int

    def invoke(self, feeds: Sequence[np.ndarray], *, float_io: bool = True) -> list[np.ndarray]:
        raise NotImplementedError

    def check_batching(self, samples: SampleSet) -> None:
        raise NotImplementedError

    def run(self, samples: SampleSet, *, on_batch: Callable[[int, int], None] | None = None,
            ) -> Iterator[tuple[int, list[np.ndarray]]]:
        """Yield (count, outputs) per batch, outputs stacked per sample (first axis = count).
        After each yield a LiteRT interpreter still holds that batch's intermediate tensors."""
        self.check_batching(samples)
        size = self.batch_size if samples.batchable else 1
        done, total = 0, len(samples)
        for count, feeds in samples.batches(size):
            outs = self.invoke(feeds)
            yield count, [o if o.ndim and o.shape[0] == count and samples.batchable else o[None]
                          for o in outs]
            done += count
            if on_batch is not None:
                on_batch(done, total)

    def outputs_for(self, samples: SampleSet,
                    on_batch: Callable[[int, int], None] | None = None) -> list[np.ndarray]:
        """All (float) outputs for all samples, stacked on a leading sample axis."""
        collected: list[list[np.ndarray]] = [[] for _ in self.outputs]
        for _, outs in self.run(samples, on_batch=on_batch):
            for c, o in zip(collected, outs, strict=True):
                c.append(o)
        return [np.concatenate(c) for c in collected]


class ModelRunner(_SampleRunner):
    """Any runtime object with LiteRT-style `get_input_details()` / `get_output_details()` and
    `run(list of arrays) -> list of arrays` (e.g. `sdk.run.EdgeModel`), one sample at a time,
    float in and out. Output formats that LiteRT cannot load give the fidelity report one of these
    (`OutputFormat.runner`)."""

    def __init__(self, model: Any):
        self.model = model
        self.inputs = [_details(d) for d in model.get_input_details()]
        self.outputs = [_details(d) for d in model.get_output_details()]
        self.batch_size = 1

    def check_batching(self, samples: SampleSet) -> None:
        return None

    def invoke(self, feeds: Sequence[np.ndarray], *, float_io: bool = True) -> list[np.ndarray]:
        arrays = [d.from_float(x) if float_io else x for d, x in zip(self.inputs, feeds,
                                                                       strict=True)]
        outs = self.model.run(arrays)
        return [d.to_float(np.asarray(o)) if float_io else np.asarray(o).copy()
                for d, o in zip(self.outputs, outs, strict=True)]


class LiteRTRunner(_SampleRunner):
    """One interpreter over one model. `reference=True` uses LiteRT's builtin kernels (no
    XNNPACK): bit-exact integer results and, with `preserve_all_tensors`, every intermediate."""

    def __init__(self, model: bytes, *, reference: bool = False,
                 preserve_all_tensors: bool = False, num_threads: int | None = None,
                 delegates: list[Any] | None = None, batch_size: int = 32):
        self.model = model
        self.options = dict(xnnpack=not reference, preserve_all_tensors=preserve_all_tensors,
                            num_threads=num_threads, delegates=delegates)
        try:
            self.interp = backend().interpreter(model_content=model, **self.options)
            self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            from sdk.run.delegate import explain_load_error

            explained = explain_load_error(exc)
            if explained is not None:  # edgesdk custom ops without the edgesdk delegate
                raise explained from exc
            raise EdgeSDKError(f"LiteRT cannot load the model: {exc}") from exc
        self.inputs = [_details(d) for d in self.interp.get_input_details()]
        self.outputs = [_details(d) for d in self.interp.get_output_details()]
        self._allocated_batch = 1
        #: samples per invoke; >1 only for models whose inputs all have a dynamic batch axis
        self.batch_size = batch_size if self.inputs and all(
            d.signature and d.signature[0] == -1 for d in self.inputs) else 1
        self._checked = self.batch_size == 1

    # ------------------------------------------------------------------ running
    def _resize(self, batch: int) -> None:
        if batch == self._allocated_batch:
            return
        for d in self.inputs:
            self.interp.resize_tensor_input(d.index, [batch, *d.shape[1:]], strict=False)
        self.interp.allocate_tensors()
        self._allocated_batch = batch

    def invoke(self, feeds: Sequence[np.ndarray], *, float_io: bool = True,
               fetch: bool = True) -> list[np.ndarray]:
        """Run once; feeds are shaped like the inputs, with any batch when the model's batch axis
        is dynamic. Outputs are copies, as float when `float_io` (int8 outputs dequantised);
        none with `fetch=False` (the caller reads tensors itself)."""
        if self.batch_size > 1 or self._allocated_batch > 1:
            self._resize(int(feeds[0].shape[0]))
        for d, x in zip(self.inputs, feeds, strict=True):
            self.interp.set_tensor(d.index, d.from_float(x) if float_io else x)
        self.interp.invoke()
        if not fetch:
            return []
        outs = [self.interp.get_tensor(d.index) for d in self.outputs]
        return [d.to_float(o) if float_io else o.copy() for d, o in zip(self.outputs, outs,
                                                                          strict=True)]

    def tensor(self, index: int) -> np.ndarray:
        """An intermediate tensor of the last run (needs preserve_all_tensors)."""
        return self.interp.get_tensor(index)

    def tensor_bytes(self, skip: set[int] | None = None) -> int:
        """Bytes of the interpreter's tensors at their current shapes (but those in `skip`)."""
        return sum(int(np.prod(d["shape"])) * np.dtype(d["dtype"]).itemsize
                   for d in self.interp.get_tensor_details()
                   if skip is None or d["index"] not in skip)

    def check_batching(self, samples: SampleSet) -> None:
        """Batch only if a batch of two gives what two single runs give."""
        if self._checked:
            return
        self._checked = True
        if len(samples) < 2 or self.batch_size == 1 or not samples.batchable:
            self.batch_size = 1
            return
        _, pair = next(samples.subset(slice(0, 2)).batches(2))
        keeps = bool(self.options["preserve_all_tensors"])
        try:
            batched = self.invoke(pair)
            at_two = self.tensor_bytes() if keeps else 0
            singles = [self.invoke([x[i:i + 1] for x in pair]) for i in range(2)]
        except (ValueError, RuntimeError):
            ok = False
        else:
            ok = all(b.ndim and b.shape[0] == 2
                     and np.allclose(b[i], s[k][0], rtol=1e-4, atol=1e-5)
                     for k, b in enumerate(batched) for i, s in enumerate(singles))
        if not ok:
            self.batch_size = 1
            self._resize(1)
        elif keeps:  # what one more sample keeps (the weights cancel out), within the budget
            per_sample = max(1, at_two - self.tensor_bytes())
            self.batch_size = max(1, min(self.batch_size, default_budget().memory_bytes
                                         // (PEAK_FACTOR * per_sample)))


def paired_runners(float_model: bytes, quant_model: bytes, samples: SampleSet, *,
                   delegates: list[Any] | None = None) -> tuple[LiteRTRunner, LiteRTRunner]:
    """Reference-kernel runners over a float model and its quantised version (with `delegates`,
    e.g. the edgesdk delegate for its custom ops) that keep every intermediate tensor and take
    the same batches of `samples`: the smaller of the sizes each can take, so that their
    tensors can be compared batch by batch."""
    float_run = LiteRTRunner(float_model, reference=True, preserve_all_tensors=True)
    quant_run = LiteRTRunner(quant_model, reference=True, preserve_all_tensors=True,
                             delegates=delegates)
    float_run.check_batching(samples)
    quant_run.check_batching(samples)
    float_run.batch_size = quant_run.batch_size = min(float_run.batch_size,
                                                      quant_run.batch_size)
    return float_run, quant_run
