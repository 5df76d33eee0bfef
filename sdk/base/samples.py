"""Calibration and validation data: whatever the user passes, as one `SampleSet`.

Accepted sources (for a model with inputs of shape [1, ...] or a dynamic batch):
- a numpy array: N samples stacked on axis 0 (`(N, *sample)`), one batch shaped like the input,
  or a single sample without the batch axis;
- a dict {input name: array} or a tuple/list of arrays, one per input, for multi-input models;
- a Python iterable or generator (or a callable returning one, as TensorFlow's
  `representative_dataset`), each item an array, a list/tuple of arrays (one per input; for a
  single-input model `[x]` and `(x, label)` both work), or a dict;
- a `tf.data.Dataset` (iterated as numpy; `(x, y)` elements use x);
- a folder of images (`ImageFolder`, or just its path): decoded, resized, scaled/normalised and put
  in the model's layout and channel order;
- a `.npy` / `.npz` file;
- the string ``"synthetic"``: random data, for a smoke test only (reports say so).

Samples are materialised (at most `max_samples`) because calibration reads them twice and the
fidelity report needs them again; a generator can only be read once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sdk.base.errors import CalibrationError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif",
                  ".tiff")
SYNTHETIC = "synthetic"


class TensorLike(Protocol):
    """What `InputSpec.from_tensor` reads of a model input (an IR `Tensor` has it): the data
    layer sits below the converters and does not import their IR."""

    name: str
    shape: Sequence[int]
    shape_signature: Sequence[int] | None
    #: an IR `DType`: its `.numpy` is the numpy dtype that holds the values
    dtype: Any


@dataclass(frozen=True)
class InputSpec:
    """One model input as the data layer sees it."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    #: the first axis is a batch of 1 (or dynamic): samples are stacked along it
    batched: bool
    aliases: tuple[str, ...] = ()

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.shape[1:] if self.batched else self.shape

    @classmethod
    def from_tensor(cls, t: TensorLike, signature_name: str | None = None) -> InputSpec:
        sig = t.shape_signature or t.shape
        batched = len(t.shape) >= 1 and (t.shape[0] == 1 or sig[0] == -1)
        names = {t.name, t.name.split(":")[0]}
        base = t.name.split(":")[0]
        if base.startswith("serving_default_"):
            names.add(base[len("serving_default_"):])
        if signature_name:
            names.add(signature_name)
        dtype = np.dtype(t.dtype.numpy)
        if dtype == np.float16:  # a FLOAT16 input is fed float32 samples
            dtype = np.dtype(np.float32)
        return cls(t.name, tuple(t.shape), np.dtype(dtype), batched, tuple(sorted(names)))


@dataclass
class SampleSet:
    """Materialised samples: per model input an array (N, *sample_shape)."""

    specs: list[InputSpec]
    arrays: list[np.ndarray]
    source: str
    synthetic: bool = False
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.arrays[0].shape[0]) if self.arrays else 0

    def subset(self, index: slice | np.ndarray, source: str | None = None) -> SampleSet:
        return SampleSet(self.specs, [a[index] for a in self.arrays], source or self.source,
                         self.synthetic, list(self.notes))

    def split(self, fraction: float) -> tuple[SampleSet, SampleSet]:
        """(calibration, held-out): the last `fraction` of the samples are held out."""
        n = len(self)
        held = max(1, round(n * fraction))
        cut = n - held
        return (self.subset(slice(0, cut), f"{self.source}: first {cut} of {n} samples"),
                self.subset(slice(cut, n), f"{self.source}: last {held} of {n} samples, held "
                                           "out from calibration"))

    @property
    def batchable(self) -> bool:
        return all(s.batched for s in self.specs)

    def batches(self, size: int) -> Iterator[tuple[int, list[np.ndarray]]]:
        """(count, feeds): per input an array shaped like the input with `count` samples on the
        batch axis (count is 1, and the sample fed as is, for inputs without a batch axis)."""
        n = len(self)
        if not self.batchable:
            size = 1
        for start in range(0, n, size):
            stop = min(n, start + size)
            feeds = [arr[start:stop] if spec.batched else arr[start]
                     for spec, arr in zip(self.specs, self.arrays, strict=True)]
            yield stop - start, feeds


# ---------------------------------------------------------------------------- image folders
@dataclass
class ImageFolder:
    """A folder of images and how to turn them into model inputs.

    Pixels are decoded as RGB (or grayscale), resized to `size` (height, width; default: the
    model's input), then ``x = (pixel * scale - mean) / std`` per channel, in `channels` order
    ("rgb", "bgr", "gray"; default from the model's channel count), laid out as the model's input
    (NHWC, or NCHW when the channel axis comes first).
    """

    path: str | os.PathLike[str]
    size: tuple[int, int] | None = None
    scale: float = 1.0 / 255.0
    mean: float | Sequence[float] = 0.0
    std: float | Sequence[float] = 1.0
    channels: str | None = None
    resize: str = "bilinear"
    recursive: bool = True

    def files(self) -> list[Path]:
        root = Path(self.path)
        if not root.is_dir():
            raise CalibrationError(f"calibration folder {str(root)!r} does not exist")
        pattern = "**/*" if self.recursive else "*"
        return sorted(p for p in root.glob(pattern)
                      if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)

    def load(self, spec: InputSpec, limit: int | None = None) -> np.ndarray:
        files = self.files()
        if not files:
            raise CalibrationError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in calibration "
                                   f"folder {str(self.path)!r}")
        if limit is not None:
            files = files[:limit]
        shape = spec.sample_shape
        if len(shape) != 3:
            raise CalibrationError(f"input {spec.name!r} has sample shape {list(shape)}: image "
                                   "calibration needs an image input (H, W, C) or (C, H, W)")
        nchw = shape[-1] not in (1, 3, 4) and shape[0] in (1, 3, 4)
        c, h, w = (shape[0], shape[1], shape[2]) if nchw else (shape[2], shape[0], shape[1])
        if self.size is not None:
            h, w = self.size
            if (h, w) != ((shape[1], shape[2]) if nchw else (shape[0], shape[1])):
                raise CalibrationError(f"images resized to {h}x{w} do not fit input "
                                       f"{spec.name!r} of sample shape {list(shape)}")
        channels = self.channels or ("gray" if c == 1 else "rgb")
        if channels not in ("rgb", "bgr", "gray"):
            raise CalibrationError(f"channels must be rgb, bgr or gray, not {channels!r}")
        if (channels == "gray") != (c == 1):
            raise CalibrationError(f"channel order {channels!r} does not fit input {spec.name!r} "
                                   f"with {c} channels")
        decode = _image_decoder()
        out = np.empty((len(files), h, w, c), np.float32)
        for i, path in enumerate(files):
            try:
                pixels = decode(path, (h, w), channels == "gray", self.resize)
            except Exception as exc:  # a broken image names the file
                raise CalibrationError(f"cannot decode image {str(path)!r}: {exc}") from exc
            if channels == "bgr":
                pixels = pixels[..., ::-1]
            out[i] = pixels.reshape(h, w, c)
        mean = np.asarray(self.mean, np.float32).reshape(-1)
        std = np.asarray(self.std, np.float32).reshape(-1)
        out = (out * np.float32(self.scale) - mean) / std
        if nchw:
            out = out.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(out.astype(spec.dtype))


def _image_decoder() -> Callable[[Path, tuple[int, int], bool, str], np.ndarray]:
    try:
        from PIL import Image
    except ImportError:
        Image = None
    if Image is not None:
        methods = {"bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST,
                   "bicubic": Image.Resampling.BICUBIC, "area": Image.Resampling.BOX}

        def decode_pil(path: Path, size: tuple[int, int], gray: bool, resize: str) -> np.ndarray:
            with Image.open(path) as img:
                img = img.convert("L" if gray else "RGB")
                if img.size != (size[1], size[0]):
                    img = img.resize((size[1], size[0]), methods.get(resize, methods["bilinear"]))
                return np.asarray(img, np.float32)

        return decode_pil
    try:
        import tensorflow as tf
    except ImportError:
        raise CalibrationError("decoding images needs Pillow (pip install 'edgesdk[images]') "
                               "or TensorFlow") from None

    def decode_tf(path: Path, size: tuple[int, int], gray: bool, resize: str) -> np.ndarray:
        img = tf.io.decode_image(tf.io.read_file(str(path)), channels=1 if gray else 3,
                                 expand_animations=False)
        img = tf.image.resize(tf.cast(img, tf.float32), size, method=resize)
        return img.numpy()

    return decode_tf


# ---------------------------------------------------------------------------- normalisation
def as_samples(source: Any, specs: list[InputSpec], *, max_samples: int | None = 1000,
               what: str = "calibration", seed: int = 0) -> SampleSet:
    """Turn any accepted `source` into a SampleSet for inputs `specs` (see the module doc)."""
    if source is None:
        raise CalibrationError(
            f"{what} data is required for int8 export: pass calibration=<numpy array, iterable, "
            "tf.data.Dataset or image folder> (representative inputs, ~100-1000 samples), or "
            "calibration='synthetic' for a smoke test with random data (ranges will not be "
            "representative)")
    if isinstance(source, SampleSet):
        return source if max_samples is None or len(source) <= max_samples \
            else source.subset(slice(0, max_samples))
    if isinstance(source, str) and source == SYNTHETIC:
        return synthetic(specs, max_samples or 100, seed)
    if isinstance(source, ImageFolder):
        return _from_images(source, specs, max_samples, what)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return _from_images(ImageFolder(path), specs, max_samples, what)
        if path.suffix in (".npy", ".npz") and path.is_file():
            return _from_file(path, specs, max_samples, what)
        raise CalibrationError(f"{what} data {str(source)!r} is neither a folder of images nor "
                               "a .npy/.npz file")
    if isinstance(source, np.ndarray) or _is_tensor(source):
        return _from_arrays([np.asarray(source)], specs, max_samples, what, "numpy array")
    if isinstance(source, Mapping):
        return _from_arrays(_by_name(source, specs, what), specs, max_samples, what,
                            "dict of arrays")
    if isinstance(source, (tuple, list)) and len(specs) > 1 and len(source) == len(specs) \
            and all(isinstance(a, np.ndarray) for a in source) \
            and len({a.shape[0] for a in source if a.ndim}) == 1:
        return _from_arrays([np.asarray(a) for a in source], specs, max_samples, what,
                            "arrays, one per input")
    described = type(source).__name__
    if _is_tf_dataset(source):
        items: Iterable[Any] = source.as_numpy_iterator()
        described = "tf.data.Dataset"
    elif callable(source):
        items = source()
        described = f"{getattr(source, '__name__', 'callable')}()"
    elif isinstance(source, Iterable):
        items = source
    else:
        raise CalibrationError(f"cannot use a {type(source).__name__} as {what} data; pass a "
                               "numpy array, an iterable of arrays, a tf.data.Dataset or a folder "
                               "of images")
    return _from_items(items, specs, max_samples, what, described)


def synthetic(specs: list[InputSpec], count: int, seed: int = 0) -> SampleSet:
    rng = np.random.default_rng(seed)
    arrays = []
    for s in specs:
        shape = (count, *s.sample_shape)
        if np.issubdtype(s.dtype, np.floating):
            arrays.append(rng.standard_normal(shape).astype(s.dtype))
        else:
            arrays.append(rng.integers(0, 2, shape).astype(s.dtype))
    return SampleSet(specs, arrays, "synthetic random standard-normal data",
                     synthetic=True,
                     notes=["calibrated on synthetic random data: activation ranges are not "
                            "representative of real inputs"])


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith(("tensorflow", "torch")) and hasattr(x, "numpy") \
        and hasattr(x, "shape") and not hasattr(x, "as_numpy_iterator")


def _is_tf_dataset(x: Any) -> bool:
    return hasattr(x, "as_numpy_iterator") and type(x).__module__.startswith("tensorflow")


def _by_name(mapping: Mapping[str, Any], specs: list[InputSpec], what: str) -> list[np.ndarray]:
    out = []
    for s in specs:
        for alias in (s.name, *s.aliases):
            if alias in mapping:
                out.append(np.asarray(mapping[alias]))
                break
        else:
            raise CalibrationError(f"{what} data has no entry for model input {s.name!r} "
                                   f"(keys: {sorted(map(str, mapping))}; accepted names: "
                                   f"{', '.join(s.aliases)})")
    return out


def _fit(arr: np.ndarray, spec: InputSpec, what: str) -> np.ndarray:
    """`arr` as (n, *sample_shape): a stack of samples, one batch, or one sample."""
    arr = np.asarray(arr)
    sample = spec.sample_shape
    if arr.shape[1:] == sample and arr.ndim == len(sample) + 1:
        stacked = arr
    elif arr.shape == sample:
        stacked = arr[None]
    elif spec.batched and arr.ndim == len(sample) + 2 and arr.shape[2:] == sample:
        stacked = arr.reshape(-1, *sample)  # batches of samples
    elif (not spec.batched and len(spec.shape) >= 2 and arr.ndim == len(spec.shape)
          and arr.shape[1:] == spec.shape[1:] and arr.shape[0] % spec.shape[0] == 0):
        # a model with a fixed batch B > 1: every B consecutive samples make one input
        stacked = arr.reshape(-1, *spec.shape)
    else:
        hint = ""
        if arr.ndim == len(sample) + 1 and sorted(arr.shape[1:]) == sorted(sample):
            hint = " (same dimensions in another order: the model expects NHWC layout?)"
        raise CalibrationError(f"{what} data of shape {list(arr.shape)} does not fit model input "
                               f"{spec.name!r} of shape {list(spec.shape)} (expected "
                               f"(N, {', '.join(map(str, sample))})){hint}")
    if np.issubdtype(spec.dtype, np.floating):
        if not (np.issubdtype(stacked.dtype, np.floating) or np.issubdtype(stacked.dtype,
                                                                           np.integer)):
            raise CalibrationError(f"{what} data for {spec.name!r} has dtype {stacked.dtype}")
        return stacked.astype(spec.dtype, copy=False)
    return stacked.astype(spec.dtype, copy=False)


def _from_arrays(arrays: list[np.ndarray], specs: list[InputSpec], max_samples: int | None,
                 what: str, described: str) -> SampleSet:
    if len(arrays) != len(specs):
        raise CalibrationError(f"the model has {len(specs)} inputs "
                               f"({', '.join(s.name for s in specs)}); {what} data gives "
                               f"{len(arrays)}: pass a dict by input name")
    fitted = [_fit(a, s, what) for a, s in zip(arrays, specs, strict=True)]
    counts = {a.shape[0] for a in fitted}
    if len(counts) != 1:
        raise CalibrationError(f"{what} data: inputs have different sample counts {sorted(counts)}")
    n = counts.pop()
    if n == 0:
        raise CalibrationError(f"{what} data is empty")
    if max_samples is not None and n > max_samples:
        fitted = [a[:max_samples] for a in fitted]
    return SampleSet(specs, fitted, described)


def _item_arrays(item: Any, specs: list[InputSpec], what: str) -> list[np.ndarray]:
    if isinstance(item, Mapping):
        return _by_name(item, specs, what)
    if isinstance(item, (tuple, list)):
        parts = list(item)
        if len(specs) == 1:
            # [x] (TensorFlow's representative_dataset), (x, label), ([x], label)
            first = parts[0]
            if isinstance(first, (tuple, list)) and len(first) == 1:
                first = first[0]
            if isinstance(first, Mapping):
                return _by_name(first, specs, what)
            return [np.asarray(first)]
        if len(parts) == 2 and isinstance(parts[0], (tuple, list, Mapping)):
            return _item_arrays(parts[0], specs, what)  # ((x1, x2), label)
        if len(parts) != len(specs):
            raise CalibrationError(f"a {what} item has {len(parts)} parts for a model with "
                                   f"{len(specs)} inputs; yield one array per input or a dict")
        return [np.asarray(p) for p in parts]
    if len(specs) != 1:
        raise CalibrationError(f"a {what} item is one array but the model has {len(specs)} "
                               "inputs; yield a tuple or a dict")
    return [np.asarray(item)]


def _from_items(items: Iterable[Any], specs: list[InputSpec], max_samples: int | None,
                what: str, described: str) -> SampleSet:
    chunks: list[list[np.ndarray]] = [[] for _ in specs]
    n = 0
    try:
        for item in items:
            arrays = _item_arrays(item, specs, what)
            fitted = [_fit(a, s, what) for a, s in zip(arrays, specs, strict=True)]
            if len({a.shape[0] for a in fitted}) != 1:
                raise CalibrationError(f"a {what} item has different sample counts per input")
            for chunk, a in zip(chunks, fitted, strict=True):
                chunk.append(a)
            n += fitted[0].shape[0]
            if max_samples is not None and n >= max_samples:
                break
    except CalibrationError:
        raise
    except Exception as exc:  # the user's generator failed: say where
        raise CalibrationError(f"reading {what} data from {described} failed: "
                               f"{type(exc).__name__}: {exc}") from exc
    if n == 0:
        raise CalibrationError(f"{what} data ({described}) yielded no samples")
    arrays = [np.concatenate(c)[:max_samples] for c in chunks]
    return SampleSet(specs, arrays, described)


def _from_images(folder: ImageFolder, specs: list[InputSpec], max_samples: int | None,
                 what: str) -> SampleSet:
    if len(specs) != 1:
        raise CalibrationError(f"an image folder can feed a single-input model; this one has "
                               f"{len(specs)} inputs")
    arr = folder.load(specs[0], max_samples)
    return SampleSet(specs, [arr], f"images in {str(folder.path)!r} (scale {folder.scale:g}, "
                                   f"mean {folder.mean}, std {folder.std})")


def _from_file(path: Path, specs: list[InputSpec], max_samples: int | None,
               what: str) -> SampleSet:
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise CalibrationError(f"cannot read {what} data {str(path)!r}: {exc}") from exc
    if isinstance(loaded, np.ndarray):
        return _from_arrays([loaded], specs, max_samples, what, f"{path.name}")
    with loaded:
        mapping = {k: loaded[k] for k in loaded.files}
    if len(specs) == 1 and len(mapping) == 1:
        return _from_arrays(list(mapping.values()), specs, max_samples, what, path.name)
    return _from_arrays(_by_name(mapping, specs, what), specs, max_samples, what, path.name)
