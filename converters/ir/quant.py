"""Quantisation parameters of an IR tensor: real = scale * (q - zero_point).

Per-tensor parameters have one scale; per-channel ones have one per slice along `axis`; block-wise
ones (weights quantised in groups of `block_size` along the reduction axis) hold a 2-D scale array
of shape [channels, K // block_size].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class QuantParams:
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int = 0
    block_size: int = 0
    #: calibrated float range, kept for information (TFLite stores it; kernels ignore it)
    min: np.ndarray | None = None
    max: np.ndarray | None = None
    #: format-specific extras a reader keeps so a writer can reproduce them (e.g. TFLite's
    #: custom quantisation details); other writers ignore it
    extras: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scale = np.asarray(self.scale, dtype=np.float32).copy()
        self.zero_point = np.asarray(self.zero_point, dtype=np.int64).copy()
        if self.scale.ndim == 0:
            self.scale = self.scale.reshape(1)
        if self.zero_point.ndim == 0:
            self.zero_point = self.zero_point.reshape(1)
        if self.block_size == 0 and self.zero_point.size not in (1, self.scale.size):
            raise ValueError(
                f"quantisation: {self.scale.size} scales but {self.zero_point.size} zero points")

    @classmethod
    def per_tensor(cls, scale: float, zero_point: int = 0) -> QuantParams:
        return cls(np.array([scale], np.float32), np.array([zero_point], np.int64))

    @classmethod
    def per_channel(cls, scales: np.ndarray, axis: int,
                    zero_points: np.ndarray | None = None) -> QuantParams:
        scales = np.asarray(scales, np.float32).reshape(-1)
        zps = np.zeros(scales.shape, np.int64) if zero_points is None else zero_points
        return cls(scales, np.asarray(zps, np.int64).reshape(-1), axis=axis)

    @property
    def is_per_tensor(self) -> bool:
        return self.scale.size == 1 and self.block_size == 0

    @property
    def is_per_channel(self) -> bool:
        return self.scale.size > 1 and self.block_size == 0

    def same_as(self, other: QuantParams | None) -> bool:
        """Same scale(s), zero point(s), axis and block size (ranges are not compared)."""
        if other is None:
            return False
        return (self.axis == other.axis and self.block_size == other.block_size
                and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.zero_point, other.zero_point))

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """Real values of the quantised array `q` (float32)."""
        q = np.asarray(q)
        if self.block_size:
            k = q.shape[-1]
            scale = np.repeat(self.scale.reshape(q.shape[0], -1), self.block_size, axis=1)[:, :k]
            zp = self.zero_point if self.zero_point.size == 1 else np.repeat(
                self.zero_point.reshape(q.shape[0], -1), self.block_size, axis=1)[:, :k]
            return ((q.astype(np.float64) - zp) * scale).astype(np.float32)
        if self.scale.size == 1:
            return ((q.astype(np.float64) - self.zero_point[0]) * self.scale[0]).astype(np.float32)
        shape = [1] * q.ndim
        shape[self.axis] = -1
        scale = self.scale.reshape(shape)
        zp = self.zero_point.reshape(shape) if self.zero_point.size > 1 else self.zero_point[0]
        return ((q.astype(np.float64) - zp) * scale).astype(np.float32)
