"""What a user would feed each corpus model, made offline and deterministically.

- photos: scikit-image's bundled images and scikit-learn's sample images, cropped around what
  the model looks for (a face, an eye, a hand, a body; loose crops for detectors, tight crops
  for landmark nets), jittered, resized to the model's input and scaled as its publisher does;
- text: words rendered with PIL's bundled font, as a page (OCR detection, orientation) or a
  line (recognition, 0/180 degree classification);
- audio: speech-like sound (a glottal pulse train with moving pitch through moving formant
  resonators, syllable envelopes and pauses, room noise) or music-like notes; the wake-word
  heads get what openWakeWord's own front end makes of it (its melspectrogram and embedding
  models, float, in onnxruntime); the VAD nets get 32 ms chunks with the recurrent state their
  own float model carried to that point;
- bytes: the first and last 1024 bytes of real files (Python sources, shared libraries, JSON,
  YAML, images, models) from inside the corpus's pinned wheels, as magika reads them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .manifest import CorpusError, CorpusModel

Sample = dict[str, np.ndarray]


@dataclass(frozen=True)
class InputDesc:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


def model_inputs(model: CorpusModel, path: Path) -> list[InputDesc]:
    """The model's inputs with `input_shapes` applied (dynamic batch -> 1)."""
    descs: list[InputDesc] = []
    if model.format == "onnx":
        import onnx
        from onnx import helper

        m = onnx.load(str(path), load_external_data=False)
        inits = {t.name for t in m.graph.initializer}
        for vi in m.graph.input:
            if vi.name in inits:
                continue
            tt = vi.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1
                    for d in tt.shape.dim]
            shape = model.input_shapes.get(vi.name)
            if shape is None:
                shape = tuple(1 if (i == 0 and d == -1) else d for i, d in enumerate(dims))
            if any(d < 0 for d in shape):
                raise CorpusError(f"{model.name}: input {vi.name!r} has open dims {dims}: "
                                  "give input_shapes in models.toml")
            descs.append(InputDesc(vi.name, tuple(shape),
                                   np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type))))
    else:
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(path))
        for d in it.get_input_details():
            shape = model.input_shapes.get(d["name"], tuple(int(v) for v in d["shape"]))
            descs.append(InputDesc(d["name"], tuple(shape), np.dtype(d["dtype"])))
    return descs


# ------------------------------------------------------------------ photos

#: (image, centre x, centre y, size) of what each focus looks for, in the image's pixels
FOCUS: dict[str, list[tuple[str, float, float, float]]] = {
    "face": [("astronaut", 222, 112, 125), ("camera", 215, 150, 105)],
    "face_tight": [("astronaut", 222, 112, 125), ("camera", 212, 148, 100)],
    "eye": [("astronaut", 204, 101, 38), ("astronaut", 244, 101, 38), ("camera", 228, 140, 34)],
    "hand": [("camera", 207, 225, 90), ("camera", 300, 195, 90), ("astronaut", 170, 490, 90)],
    "body": [("astronaut", 240, 260, 500), ("camera", 200, 260, 500)],
}
PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "china",
          "flower", "immunohistochemistry", "hubble_deep_field")
#: how much of the crop the focus fills: detectors see it small, landmark nets fill the frame
CROP_SCALE = {"face": (1.6, 4.0), "hand": (1.6, 3.5), "body": (1.0, 1.4),
              "face_tight": (1.25, 1.6), "eye": (1.6, 2.2)}


def photo(name: str) -> np.ndarray:
    """One bundled photo as uint8 RGB."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        img = load_sample_image(f"{name}.jpg")
    else:
        import skimage.data

        img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def crop_resize(img: np.ndarray, cx: float, cy: float, w: float, h: float,
                out_hw: tuple[int, int]) -> np.ndarray:
    """Crop (zero padding outside the image, as MediaPipe's ImageToTensor does), resize."""
    from PIL import Image

    x0, y0 = round(cx - w / 2), round(cy - h / 2)
    x1, y1 = x0 + max(round(w), 1), y0 + max(round(h), 1)
    canvas = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x1, img.shape[1]), min(y1, img.shape[0])
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = img[sy0:sy1, sx0:sx1]
    out = Image.fromarray(canvas).resize((out_hw[1], out_hw[0]), Image.BILINEAR)
    return np.asarray(out)


def photo_crops(focus: str, n: int, hw: tuple[int, int], rng: np.random.Generator) -> list[
        np.ndarray]:
    regions = FOCUS.get(focus, [])
    lo, hi = CROP_SCALE.get(focus, (1.0, 1.0))
    aspect = hw[1] / hw[0]
    out = []
    for i in range(n):
        if regions and i % 4 != 3:      # three in four around the focus, one a plain photo
            name, cx, cy, size = regions[i % len(regions)]
            img = photo(name)
            s = size * rng.uniform(lo, hi)
            cx += rng.uniform(-0.12, 0.12) * size
            cy += rng.uniform(-0.12, 0.12) * size
        else:
            img = photo(PHOTOS[i % len(PHOTOS)])
            s = min(img.shape[:2]) * rng.uniform(0.5, 1.0)
            cx = rng.uniform(s / 2, max(img.shape[1] - s / 2, s / 2 + 1))
            cy = rng.uniform(s / 2, max(img.shape[0] - s / 2, s / 2 + 1))
        out.append(crop_resize(img, cx, cy, s * math.sqrt(aspect), s / math.sqrt(aspect), hw))
    return out


def normalise(images: list[np.ndarray], spec: dict[str, Any], desc: InputDesc) -> np.ndarray:
    """uint8 HWC images -> the model's input (layout, channels, scaling), one batch each."""
    x = np.stack(images).astype(np.float32)
    if spec.get("gray"):
        # elementwise, not `x @ weights`: a matmul goes through the host's BLAS, whose kernel
        # (and so the last bit of a sum) depends on the CPU; these float32 ops do not
        x = x[..., 0] * np.float32(0.299) + x[..., 1] * np.float32(0.587) \
            + x[..., 2] * np.float32(0.114)
        x = x[..., None]
    x = x / 255.0
    if "mean" in spec:
        x = (x - np.asarray(spec["mean"], np.float32)) / np.asarray(spec["std"], np.float32)
    else:
        lo, hi = spec.get("range", (0.0, 1.0))
        x = lo + x * (hi - lo)
    if spec.get("layout", "nhwc") == "nchw":
        x = x.transpose(0, 3, 1, 2)
    return x[:, None].astype(desc.dtype)          # (N, 1, ...): one batch per sample


def image_hw(desc: InputDesc, spec: dict[str, Any]) -> tuple[int, int]:
    if spec.get("layout", "nhwc") == "nchw":
        return desc.shape[2], desc.shape[3]
    return desc.shape[1], desc.shape[2]


# ------------------------------------------------------------------ rendered text

WORDS = ('the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'invoice', 'total',
         'amount', 'date', 'number', 'street', 'road', 'city', 'station', 'platform', 'train',
         'departs', 'arrives', 'minutes', 'open', 'closed', 'monday', 'friday', 'coffee', 'bread',
         'milk', 'price', 'sale', 'discount', 'model', 'export', 'quantised', 'edge', 'device',
         'camera', 'window', 'door', 'exit', 'entrance', 'level', 'floor', 'room', 'kitchen',
         'garden', 'north', 'south', 'east', 'west', 'hello', 'world', 'receipt', 'order',
         'delivery', 'parcel', 'tracking', 'code', 'version', 'release')


@functools.cache
def _font(size: int):
    """PIL's bundled Aileron Regular at `size` px, rendered by FreeType with the basic layout.

    Pillow without FreeType (a source build without libfreetype) or older than 10.1 (whose
    `load_default` takes no size) would silently give its fixed-size bitmap font instead: other
    pixels, other calibration, other dB; refuse it by name.
    """
    import PIL
    from PIL import ImageFont, features

    if not features.check_module("freetype2"):
        raise CorpusError(f"text recipes render with FreeType, and this Pillow {PIL.__version__} "
                          "has none: install a Pillow wheel (constraints.txt pins the one "
                          "the digests in tests/corpus_input_digests.json were made with)")
    try:
        font = ImageFont.load_default(size=size)
    except TypeError as exc:
        raise CorpusError(f"text recipes need Pillow >= 10.1 (load_default(size=)); this is "
                          f"Pillow {PIL.__version__}") from exc
    if not isinstance(font, ImageFont.FreeTypeFont):
        raise CorpusError(f"Pillow {PIL.__version__} gave its bitmap font, not Aileron at {size} "
                          "px: text recipes need Pillow's FreeType font")
    return font


def text_line(rng: np.random.Generator, hw: tuple[int, int]) -> np.ndarray:
    from PIL import Image, ImageDraw

    h, w = hw
    words = [str(rng.choice(WORDS)) for _ in range(int(rng.integers(1, 4)))]
    if rng.random() < 0.3:
        words.append(str(int(rng.integers(0, 10_000))))
    text = " ".join(words)
    size = int(h * rng.uniform(0.55, 0.75))
    font = _font(size)
    tw = font.getbbox(text)[2] + 8
    bg = tuple(int(v) for v in rng.integers(200, 256, 3))
    fg = tuple(int(v) for v in rng.integers(0, 70, 3))
    img = Image.new("RGB", (max(tw, int(h * 1.5)), h), bg)
    ImageDraw.Draw(img).text((4, (h - size) // 2 - size // 8), text, fill=fg, font=font)
    # as PP-OCR does: keep the aspect ratio, pad the rest of the width
    scale_w = min(w, max(1, round(img.width * h / img.height)))
    line = np.asarray(img.resize((scale_w, h), Image.BILINEAR))
    out = np.full((h, w, 3), bg, np.uint8)
    out[:, :scale_w] = line
    return out


def text_page(rng: np.random.Generator, hw: tuple[int, int]) -> np.ndarray:
    from PIL import Image, ImageDraw

    h, w = hw
    if rng.random() < 0.3:   # a sign on a photo
        base = photo(PHOTOS[int(rng.integers(len(PHOTOS)))])
        img = Image.fromarray(crop_resize(base, base.shape[1] / 2, base.shape[0] / 2,
                                          min(base.shape[:2]), min(base.shape[:2]), (h, w)))
    else:
        img = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(215, 256, 3)))
    draw = ImageDraw.Draw(img)
    y = int(rng.integers(2, max(3, h // 10)))
    while y < h - 12:
        size = int(rng.integers(max(10, h // 30), max(12, h // 10)))
        words = [str(rng.choice(WORDS)) for _ in range(int(rng.integers(1, 6)))]
        draw.text((int(rng.integers(2, max(3, w // 4))), y), " ".join(words),
                  fill=tuple(int(v) for v in rng.integers(0, 80, 3)), font=_font(size))
        y += int(size * rng.uniform(1.3, 2.2))
    return np.asarray(img)


# ------------------------------------------------------------------ audio


def speech_like(rng: np.random.Generator, rate: int, seconds: float) -> np.ndarray:
    """Voiced syllables with pauses: pulse train (90-240 Hz, intonation) -> 3 formant
    resonators (moving) -> syllable envelope; plus a little noise. Peak about 0.5."""
    from scipy.signal import lfilter

    n = int(rate * seconds)
    t = np.arange(n) / rate
    f0 = rng.uniform(90, 240) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t))
    phase = np.cumsum(f0 / rate)
    pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
    out = np.zeros(n)
    seg = int(rate * 0.05)
    for start in range(0, n, seg):        # formants move every 50 ms
        x = pulses[start:start + seg]
        y = np.zeros_like(x)
        for f_lo, f_hi, bw in ((300, 900, 90), (850, 2300, 120), (2300, 3200, 180)):
            f = rng.uniform(f_lo, f_hi)
            r = math.exp(-math.pi * bw / rate)
            a = [1, -2 * r * math.cos(2 * math.pi * f / rate), r * r]
            y += lfilter([1 - r], a, x)
        out[start:start + seg] = y
    syll = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 6)), 0, None)
    gate = (np.sin(2 * np.pi * 0.4 * t + rng.uniform(0, 6)) > -0.6).astype(np.float64)
    out = out * syll * gate
    out = out / (np.abs(out).max() + 1e-9) * 0.5 + rng.normal(0, 0.003, n)
    return out.astype(np.float32)


def music_like(rng: np.random.Generator, rate: int, n: int) -> np.ndarray:
    """Piano-ish notes: random MIDI pitches, 4 harmonics, decaying envelopes, overlapping."""
    t = np.arange(n) / rate
    out = np.zeros(n)
    for _ in range(int(rng.integers(4, 10))):
        midi = int(rng.integers(40, 84))
        f = 440.0 * 2 ** ((midi - 69) / 12)
        start = rng.uniform(0, n / rate - 0.3)
        dur = rng.uniform(0.2, 1.2)
        env = np.where((t >= start) & (t < start + dur), np.exp(-(t - start) * 3.0), 0.0)
        tone = sum(np.sin(2 * np.pi * f * k * t) / k ** 1.5 for k in range(1, 5))
        out += env * tone
    return (out / (np.abs(out).max() + 1e-9) * 0.6).astype(np.float32)


# ------------------------------------------------------------------ recipe dispatch


@dataclass
class Context:
    """What a recipe may need besides the model: where the corpus' other models are."""

    model_path: Callable[[str], Path]


def _audio_batch(desc: InputDesc, audio: list[np.ndarray]) -> np.ndarray:
    x = np.stack([a.reshape(desc.shape[1:]) for a in audio])
    return x[:, None].astype(desc.dtype)


def _oww_mel(ctx: Context, audio: np.ndarray) -> np.ndarray:
    """openWakeWord's front end on int16-scaled audio: (frames, 32), scaled as it does."""

    sess = _session(ctx.model_path("oww_melspectrogram"))
    mel = sess.run(None, {"input": (audio * 32767.0)[None].astype(np.float32)})[0]
    return (mel.squeeze() / 10.0 + 2.0).astype(np.float32)


def _oww_embeddings(ctx: Context, audio: np.ndarray) -> np.ndarray:
    mel = _oww_mel(ctx, audio)
    windows = np.stack([mel[i:i + 76] for i in range(0, mel.shape[0] - 76 + 1, 8)])
    sess = _session(ctx.model_path("oww_embedding"))
    emb = sess.run(None, {"input_1": windows[..., None]})[0]
    return emb.reshape(emb.shape[0], 96)


_SESSIONS: dict[str, Any] = {}


def _session(path: Path):
    import onnxruntime as ort

    key = str(path)
    if key not in _SESSIONS:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        _SESSIONS[key] = ort.InferenceSession(key, opts, providers=["CPUExecutionProvider"])
    return _SESSIONS[key]


def make_samples(model: CorpusModel, path: Path, n: int, seed: int, ctx: Context) -> list[Sample]:
    """`n` samples, each {input name: array shaped as the input (batch 1)}."""
    rng = np.random.default_rng(seed)
    descs = model_inputs(model, path)
    spec = model.input
    recipe = spec["recipe"]
    main = descs[0]
    if recipe == "image":
        x = normalise(photo_crops(spec.get("focus", ""), n, image_hw(main, spec), rng), spec,
                      main)
        return [{main.name: x[i]} for i in range(n)]
    if recipe in ("text_page", "text_line"):
        hw = image_hw(main, spec)
        imgs = []
        labels = []
        for i in range(n):
            img = text_line(rng, hw) if recipe == "text_line" else text_page(rng, hw)
            if spec.get("flip") and i % 2:
                img = img[::-1, ::-1]
            if spec.get("rotate"):
                img = np.rot90(img, k=i % 4)
                if img.shape[:2] != hw:
                    img = crop_resize(img, img.shape[1] / 2, img.shape[0] / 2, img.shape[1],
                                      img.shape[0], hw)
            imgs.append(np.ascontiguousarray(img))
            labels.append(i)
        x = normalise(imgs, spec, main)
        return [{main.name: x[i]} for i in range(n)]
    if recipe == "speech":
        rate, secs = int(spec["rate"]), float(spec["seconds"])
        audio = [speech_like(rng, rate, secs) * float(spec.get("scale", 1.0)) for _ in range(n)]
        x = _audio_batch(main, audio)
        return [{main.name: x[i]} for i in range(n)]
    if recipe == "music":
        length = int(np.prod(main.shape[1:]))
        audio = [music_like(rng, int(spec["rate"]), length) for _ in range(n)]
        x = _audio_batch(main, audio)
        return [{main.name: x[i]} for i in range(n)]
    if recipe == "oww_mel_window":
        out = []
        while len(out) < n:
            mel = _oww_mel(ctx, speech_like(rng, 16000, 2.0))
            for s in range(0, mel.shape[0] - 76 + 1, 24):
                out.append({main.name: mel[s:s + 76][None, :, :, None].astype(np.float32)})
        return out[:n]
    if recipe == "oww_features":
        frames = int(spec["frames"])
        out = []
        while len(out) < n:
            emb = _oww_embeddings(ctx, speech_like(rng, 16000, 1.0 + frames * 0.08 + 1.0))
            for s in range(0, emb.shape[0] - frames + 1, 4):
                out.append({main.name: emb[s:s + frames][None].astype(main.dtype)})
        return out[:n]
    if recipe == "vad_stream":
        return _vad_stream(model, path, descs, spec, n, rng)
    if recipe == "file_bytes":
        return _file_bytes(main, int(spec["size"]), n, rng)
    raise CorpusError(f"{model.name}: unknown input recipe {recipe!r}")


#: espeak-ng voices of the spoken wake phrases (each fires the float heads on some clips)
WAKE_VOICES = ("en", "en-gb-x-rp", "en+f3", "en+f4", "en-us+m3")


def spoken(text: str, voice: str, words_per_minute: int, pitch: int) -> np.ndarray:
    """`text` spoken by espeak-ng, 16 kHz float in [-1, 1]; CorpusError without espeak-ng."""
    import io
    import shutil
    import subprocess
    import wave

    from scipy.signal import resample_poly

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise CorpusError("the wake-word heads' calibration and held-out sets speak their phrase "
                          "with espeak-ng: "
                          "install it (apt-get install espeak-ng)")
    data = subprocess.run([exe, "-v", voice, "-s", str(words_per_minute), "-p", str(pitch),
                           "--stdout", text], capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(data)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    g = math.gcd(16000, rate)
    return resample_poly(pcm.astype(np.float64) / 32768.0, 16000 // g, rate // g)


def wake_word_samples(model: CorpusModel, path: Path, n: int, seed: int, ctx: Context
                      ) -> list[Sample]:
    """`n` windows of a wake-word head's features around its phrase (`input.phrase`) spoken by
    espeak-ng: voice, rate (110-150 words a minute) and pitch (25-60) drawn from `seed`, the
    clip at peak 0.5 between 1 s of room noise on each side, through openWakeWord's front end;
    of each clip the window the float head scores highest (where a streaming detector fires).
    Only clips the float head detects (score >= the task's threshold) are kept; a clip it
    misses is drawn again (at most `tries` draws in all). Positives, so that a held-out set
    spans the head's output range (the recipe's own samples are speech-like sound the heads
    score 1e-5 - 0.08)."""
    spec = model.input
    frames = int(spec["frames"])
    threshold = float(model.task.get("threshold", 0.5))
    main = model_inputs(model, path)[0]
    sess = _session(path)
    rng = np.random.default_rng([seed, 0x77])
    out: list[Sample] = []
    tries = 20 * n
    while len(out) < n:
        if tries == 0:
            raise CorpusError(f"{model.name}: the float head detected {len(out)} of {20 * n} "
                              f"spoken {spec['phrase']!r} clips, {n} needed")
        tries -= 1
        voice = WAKE_VOICES[int(rng.integers(len(WAKE_VOICES)))]
        clip = spoken(str(spec["phrase"]), voice, int(rng.integers(110, 151)),
                      int(rng.integers(25, 61)))
        clip = clip / (np.abs(clip).max() + 1e-9) * 0.5
        audio = np.concatenate([np.zeros(16000), clip, np.zeros(16000)])
        audio = (audio + rng.normal(0, 0.003, audio.size)).astype(np.float32)
        emb = _oww_embeddings(ctx, audio)
        windows = [emb[s:s + frames][None].astype(main.dtype)
                   for s in range(emb.shape[0] - frames + 1)]
        scores = [float(np.ravel(sess.run(None, {main.name: w})[0])[0]) for w in windows]
        if max(scores) >= threshold:
            out.append({main.name: windows[int(np.argmax(scores))]})
    return out


def _vad_stream(model: CorpusModel, path: Path, descs: list[InputDesc], spec: dict[str, Any],
                n: int, rng: np.random.Generator) -> list[Sample]:
    """Chunks of speech-like audio (with silences) and the state the float model carried."""
    window = int(spec["window"])
    sess = _session(path)
    names = {d.name: d for d in descs}
    state_names = ["h", "c"] if spec["state"] == "hc" else ["state"]
    out: list[Sample] = []
    while len(out) < n:
        audio = speech_like(rng, 16000, 3.0)
        states = {s: np.zeros(names[s].shape, np.float32) for s in state_names}
        for start in range(0, audio.size - window, window):
            feed: Sample = {"input": audio[start:start + window][None].astype(np.float32)}
            feed.update({k: v.copy() for k, v in states.items()})
            if "sr" in names:
                feed["sr"] = np.array(16000, dtype=names["sr"].dtype)
            out.append(feed)
            res = sess.run(None, feed)
            for name, value in zip(state_names, res[1:], strict=False):
                states[name] = value.astype(np.float32)
    picks = rng.choice(len(out), size=min(n, len(out)), replace=False)
    return [out[int(i)] for i in sorted(picks)]


def _file_bytes(desc: InputDesc, size: int, n: int, rng: np.random.Generator) -> list[Sample]:
    """Real files' first and last `size` bytes, from inside the corpus's own pinned wheels.

    The files are the members of every wheel `models.toml` pins (Python sources, shared libraries,
    JSON, YAML, images, models): the same bytes on every host, so the measure does not move with
    whatever else a host has installed (taking site-packages made magika read 19 dB here and
    14.7 dB on a fresh CI venv).
    """
    import zipfile

    from .manifest import cache_dir, load_manifest

    wheels = sorted({m.wheel for m in load_manifest()}, key=lambda w: w.file)
    members: list[tuple[Path, str]] = []
    for wheel in wheels:
        path = cache_dir() / "wheels" / wheel.file
        if not path.is_file():
            raise CorpusError(f"{path}: missing; the file_bytes recipe reads every pinned wheel: "
                              "run `make corpus`")
        with zipfile.ZipFile(path) as z:
            members += [(path, i.filename) for i in sorted(z.infolist(), key=lambda i: i.filename)
                        if 64 < i.file_size < 4 << 20]
    picks = rng.choice(len(members), size=n, replace=len(members) < n)
    out = []
    for i in picks:
        path, member = members[int(i)]
        with zipfile.ZipFile(path) as z:
            data = z.read(member)
        beg, end = data.lstrip()[:size], data.rstrip()[-size:]
        row = np.full(2 * size, 256, np.int64)
        row[:len(beg)] = np.frombuffer(beg, np.uint8)
        row[2 * size - len(end):] = np.frombuffer(end, np.uint8)
        out.append({desc.name: row[None].astype(desc.dtype)})
    return out
