"""Per-tensor calibration statistics, reduced from a read-only view of one batch's values.

`TensorStats.observe` / `TensorStats.histogram` (ranges.py) are the plain definitions: they copy
the tensor, drop non-finite values (and, for the histogram, exact zeros), then bin through int64
copies of the whole tensor. Calibration calls them ~300 tensors x 2 passes x every sample; on a
real model (PP-OCRv4 rec) they took as long as the interpreter, and on a batch of basic-pitch's
CQT tensors (hundreds of MB each, with -inf from log(0)) their copies doubled the peak memory.
`Reducer` fills the same fields with the same values without copying the tensor:

- min / max come from the view directly (one pass each); they are finite exactly when every
  value is;
- everything else goes through the view in cache-sized chunks with reused scratch buffers, so a
  reduction never allocates more than a few hundred KB, whatever the tensor's size;
- the histogram bins with the same float32 arithmetic as `TensorStats.histogram` (every value
  lands in the same bin) and removes the exact zeros afterwards from the one bin they fell in,
  instead of filtering them out with a copy; chunks with non-finite values drop them first.

One difference from the plain definition, where it had none that worked: with non-finite values
in a tensor, the per-channel sums (bias correction) add its finite values per channel (the plain
`observe` summed a flattened copy whose last axis was no longer the channel axis).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sdk.converters.quantize.ranges import TensorStats

#: values reduced per chunk (the scratch buffers stay in a core's L2 cache)
CHUNK = 1 << 15


@dataclass
class Reducer:
    """Fills `TensorStats` from tensor views; holds the scratch buffers (one per thread)."""

    chunk: int = CHUNK
    _scaled: np.ndarray = field(init=False, repr=False)
    _narrow: np.ndarray = field(init=False, repr=False)
    _index: np.ndarray = field(init=False, repr=False)
    _mask: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._scaled = np.empty(self.chunk, np.float32)
        self._narrow = np.empty(self.chunk, np.int32)
        self._index = np.empty(self.chunk, np.int64)
        self._mask = np.empty(self.chunk, np.bool_)

    def _zeros(self, flat: np.ndarray) -> int:
        found = 0
        for start in range(0, flat.size, self.chunk):
            part = flat[start:start + self.chunk]
            mask = self._mask[:part.size]
            np.equal(part, 0, out=mask)
            found += int(np.count_nonzero(mask))
        return found

    # ------------------------------------------------------------------ pass 1
    def observe(self, stats: TensorStats, x: np.ndarray, channels: bool = False,
                rows: bool = False) -> bool:
        """`stats.observe(x, channels, rows)`. Returns whether every value of `x` was finite
        (what `histogram` needs to know of the same values)."""
        if x.size == 0:
            return True
        if x.dtype != np.float32:
            x = np.asarray(x, np.float32)
        lo, hi = float(x.min()), float(x.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):  # NaN or inf somewhere
            self._observe_nonfinite(stats, x, channels, rows)
            return False
        stats.add_values(lo, hi, int(x.size), self._zeros(x.reshape(-1)))
        stats.observe_last_axis(x, channels, rows)
        return True

    def _observe_nonfinite(self, stats: TensorStats, x: np.ndarray, channels: bool,
                           rows: bool) -> None:
        """The plain definition (finite values only), chunk by chunk."""
        width = int(x.shape[-1]) if x.ndim >= 1 and x.shape[-1] > 0 else 1
        table = x.reshape(-1, width)
        step = max(1, self.chunk // width)
        channel_sum = np.zeros(width, np.float64) if channels and x.ndim >= 1 else None
        for start in range(0, table.shape[0], step):
            part = table[start:start + step]
            finite = np.isfinite(part)
            values = part[finite]
            if values.size == 0:
                continue
            stats.add_values(float(values.min()), float(values.max()), int(values.size),
                             int(np.count_nonzero(values == 0)))
            if channel_sum is not None:
                channel_sum += np.where(finite, part, 0).sum(axis=0, dtype=np.float64)
            if rows and x.ndim >= 1:
                kept = np.where(finite, part, -np.inf).max(axis=1)
                kept = kept[np.isfinite(kept)]
                if kept.size:
                    stats.min_row_max = min(stats.min_row_max, float(kept.min()))
                    stats.row_length = width
        if channel_sum is not None:
            stats.channel_sum = channel_sum if stats.channel_sum is None \
                else stats.channel_sum + channel_sum

    # ------------------------------------------------------------------ pass 2
    def histogram(self, stats: TensorStats, x: np.ndarray, finite: bool = False) -> None:
        """`stats.histogram(x)`: every finite, non-zero value of `x` counted in its bin.
        `finite`: every value of `x` is finite (as `observe` said of these same values)."""
        assert stats.hist is not None, "start_histogram() first"
        if x.size == 0:
            return
        if x.dtype != np.float32:
            x = np.asarray(x, np.float32)
        flat = x.reshape(-1)
        bins = stats.hist.size
        lo = stats.hist_lo
        # the same Python float as TensorStats.histogram; numpy applies it as float32
        k = bins / (stats.hist_hi - stats.hist_lo)
        counts = np.zeros(bins, np.int64)
        zeros = 0
        for start in range(0, flat.size, self.chunk):
            part = flat[start:start + self.chunk]
            if not finite:
                part = part[np.isfinite(part)]
            n = part.size
            scaled, narrow, index = self._scaled[:n], self._narrow[:n], self._index[:n]
            np.subtract(part, lo, out=scaled)
            np.multiply(scaled, k, out=scaled)
            # truncation toward zero, as astype(np.int64): float32 -> int32 is the fast (SIMD)
            # cast (the values were in the range when the histogram was started, so far below
            # 2**31), clipped as TensorStats.histogram clips; bincount wants int64
            narrow[...] = scaled
            np.clip(narrow, 0, bins - 1, out=narrow)
            index[...] = narrow
            counts += np.bincount(index, minlength=bins)
            mask = self._mask[:n]
            np.equal(part, 0, out=mask)
            zeros += int(np.count_nonzero(mask))
        if zeros:
            zero = np.zeros(1, np.float32)
            at = int(np.clip(((zero - lo) * k).astype(np.int64)[0], 0, bins - 1))
            counts[at] -= zeros
        stats.hist += counts
