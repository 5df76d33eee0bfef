"""The corpus inputs are the same on every host: their digests are recorded in the repo.

The fast subset (tests/test_corpus.py) holds each model to a dB bar measured here; if a host
feeds it other inputs (another scikit-image photo set, a Pillow without FreeType, files from the
host's site-packages: magika read 19.1 dB here and 14.7 dB on CI's fresh venv), the bar moves
for reasons that have nothing to do with the exporter. This file checks the inputs themselves,
so such drift fails here naming the recipe, the model and the package versions.

- the bundled photos and the rendered font are checked without the corpus;
- every fast-subset model's calibration and held-out samples (as `corpus.measure.run_model`
  makes them for `run_model(model, 16)`) are checked when the corpus is cached (`make corpus`).

Recipes whose arithmetic is exact (uint8 crops and resizes, FreeType rendering, wheel bytes;
elementwise float32 scaling) must match byte for byte. Recipes that go through float math whose
last bits depend on the CPU (numpy's SIMD sin/exp, scipy's filters, onnxruntime front ends:
speech, music, the wake-word features, the VAD states) are held to a profile instead (16 block
means and the spread of every input, within 1e-4 of the spread).

After a deliberate change of a recipe or of a pinned version (constraints.txt), regenerate the
digests and commit them with the change:

    .venv/bin/python tests/test_corpus_inputs.py --write
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from corpus import inputs  # noqa: E402
from corpus.inputs import Sample  # noqa: E402
from corpus.manifest import CorpusError, CorpusModel, load_manifest, smallest_per_kind  # noqa: E402
from corpus.prepared import prepare  # noqa: E402

DIGESTS = Path(__file__).with_name("corpus_input_digests.json")
UPDATE = "regenerate with `.venv/bin/python tests/test_corpus_inputs.py --write` if deliberate"

#: recipes made only of exact arithmetic: their samples must match byte for byte
EXACT_RECIPES = frozenset({"image", "text_page", "text_line", "file_bytes"})
#: what `run_model(model, 16)` feeds: 16 calibration samples (seed 1), 8 held out (seed 2)
SETS = {"calibration": (16, 1), "eval": (8, 2)}
BLOCKS = 16
#: a float recipe's block means may move this much (times the input's spread) between hosts
PROFILE_TOL = 1e-4
#: the rendered-font probe: every size the text recipes use spans 10..48 px
FONT_PROBE = ("the quick brown fox 0123456789", (10, 16, 24, 36, 48))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _versions() -> dict[str, str]:
    import onnxruntime
    import PIL
    import skimage
    import sklearn
    from PIL import features

    return {"numpy": np.__version__, "pillow": PIL.__version__,
            "freetype": str(features.version("freetype2")), "scikit-image": skimage.__version__,
            "scikit-learn": sklearn.__version__, "onnxruntime": onnxruntime.__version__}


def _font_pixels() -> bytes:
    from PIL import Image, ImageDraw

    text, sizes = FONT_PROBE
    out = b""
    for size in sizes:
        img = Image.new("L", (size * len(text), size * 2), 255)
        ImageDraw.Draw(img).text((2, 2), text, fill=0, font=inputs._font(size))
        out += img.tobytes()
    return out


@dataclass(frozen=True)
class Fingerprint:
    """One input of one sample set: its bytes' sha256 and its profile (block means, spread)."""

    sha256: str
    shape: list[int]
    dtype: str
    means: list[float]
    spread: float

    @classmethod
    def of(cls, samples: list[Sample], name: str) -> Fingerprint:
        x = np.stack([s[name] for s in samples])
        flat = x.astype(np.float64).ravel()
        means = [float(b.mean()) for b in np.array_split(flat, min(BLOCKS, flat.size))]
        return cls(_sha(np.ascontiguousarray(x).tobytes()), list(x.shape), str(x.dtype), means,
                   float(flat.std()))

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "shape": self.shape, "dtype": self.dtype,
                "means": self.means, "spread": self.spread}


def sample_sets(model: CorpusModel) -> dict[str, list[Sample]]:
    prep = prepare(model)
    return {key: prep.samples(n, seed) for key, (n, seed) in SETS.items()}


def fingerprints(model: CorpusModel) -> dict[str, dict[str, Fingerprint]]:
    return {key: {name: Fingerprint.of(samples, name) for name in sorted(samples[0])}
            for key, samples in sample_sets(model).items()}


def drift(model: str, recipe: str, recorded: dict[str, Any],
          got: dict[str, dict[str, Fingerprint]]) -> list[str]:
    """What differs between the recorded digests of one model and this host's samples."""
    problems = []
    exact = recipe in EXACT_RECIPES
    for key, inputs_ in recorded.items():
        for name, want in inputs_.items():
            have = got.get(key, {}).get(name)
            where = f"{model} (recipe {recipe!r}), {key} input {name!r}"
            if have is None:
                problems.append(f"{where}: not made here")
                continue
            if (have.shape, have.dtype) != (want["shape"], want["dtype"]):
                problems.append(f"{where}: {have.dtype}{have.shape}, recorded "
                                f"{want['dtype']}{want['shape']}")
                continue
            off = float(np.max(np.abs(np.subtract(have.means, want["means"]))))
            allowed = PROFILE_TOL * max(want["spread"], 1e-6)
            if exact and have.sha256 != want["sha256"]:
                problems.append(f"{where}: bytes differ from the recorded ones (block means off "
                                f"by up to {off:.3g}; the recipe is exact, so a package version "
                                "or a host file feeds it)")
            elif not exact and off > allowed:
                problems.append(f"{where}: block means off by up to {off:.3g} (allowed "
                                f"{allowed:.3g}, {PROFILE_TOL} of its spread)")
    return problems


def _recorded() -> dict[str, Any]:
    return json.loads(DIGESTS.read_text())


def _versions_note(recorded: dict[str, Any]) -> str:
    here = _versions()
    diff = [f"{k} {here.get(k)} (recorded {v})" for k, v in recorded["versions"].items()
            if here.get(k) != v]
    return "versions: " + (", ".join(diff) if diff else "the recorded ones")


# ---------------------------------------------------------------- without the corpus


@pytest.mark.parametrize("name", inputs.PHOTOS)
def test_bundled_photo_is_the_recorded_one(name):
    recorded = _recorded()
    img = inputs.photo(name)
    assert _sha(img.tobytes()) == recorded["photos"][name], (
        f"photo {name!r} {img.shape} is not the recorded one; "
        f"{_versions_note(recorded)}; {UPDATE}")


def test_rendered_font_is_the_recorded_one():
    recorded = _recorded()
    assert _sha(_font_pixels()) == recorded["font"], (
        f"PIL's Aileron renders other pixels here; {_versions_note(recorded)}; {UPDATE}")


def test_text_recipes_refuse_a_pillow_without_freetype(monkeypatch):
    from PIL import features

    inputs._font.cache_clear()
    monkeypatch.setattr(features, "check_module", lambda name: name != "freetype2")
    try:
        with pytest.raises(CorpusError, match=r"render with FreeType, and this Pillow .* has "
                                              r"none"):
            inputs.text_line(np.random.default_rng(0), (32, 100))
    finally:
        inputs._font.cache_clear()


def test_gray_inputs_do_not_go_through_blas(monkeypatch):
    """normalise's gray conversion is elementwise float32 (exact on every CPU); a matmul would
    take the host BLAS's kernel."""
    desc = inputs.InputDesc("x", (1, 4, 4, 1), np.dtype(np.float32))
    img = np.random.default_rng(0).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    want = img.astype(np.float32)
    want = (want[..., 0] * np.float32(0.299) + want[..., 1] * np.float32(0.587)
            + want[..., 2] * np.float32(0.114))[..., None] / np.float32(255.0)
    got = inputs.normalise([img], {"gray": True}, desc)
    assert got.shape == (1, 1, 4, 4, 1)
    np.testing.assert_array_equal(got[0, 0], want)


def test_a_drifted_recipe_is_named():
    """A changed byte in an exact recipe fails by name; a float recipe tolerates rounding only."""
    rng = np.random.default_rng(0)
    samples = [{"x": rng.random((1, 8), np.float32)} for _ in range(4)]
    recorded = {"calibration": {"x": Fingerprint.of(samples, "x").to_dict()}}
    same = {"calibration": {"x": Fingerprint.of(samples, "x")}}
    assert drift("m", "image", recorded, same) == []
    rounded = [{"x": np.nextafter(s["x"], np.float32(2))} for s in samples]
    near = {"calibration": {"x": Fingerprint.of(rounded, "x")}}
    (problem,) = drift("m", "image", recorded, near)
    assert problem.startswith("m (recipe 'image'), calibration input 'x': bytes differ")
    assert drift("m", "speech", recorded, near) == []
    moved = [{"x": s["x"] * np.float32(1.01)} for s in samples]
    far = {"calibration": {"x": Fingerprint.of(moved, "x")}}
    (problem,) = drift("m", "speech", recorded, far)
    assert "m (recipe 'speech'), calibration input 'x': block means off" in problem


# ---------------------------------------------------------------- the fast subset's samples


def _fast_models() -> list[CorpusModel]:
    return smallest_per_kind(load_manifest())


def test_digests_cover_the_fast_subset():
    if not all(m.path().is_file() for m in load_manifest()):
        pytest.skip("corpus not (all) cached: run `make corpus`")
    assert sorted(_recorded()["models"]) == sorted(m.name for m in _fast_models()), UPDATE


def _recorded_models() -> list[str]:
    # a missing digests file fails every test above; here it only leaves nothing to parametrize
    return sorted(_recorded()["models"]) if DIGESTS.is_file() else []


@pytest.mark.parametrize("name", _recorded_models())
def test_fast_subset_inputs_are_the_recorded_ones(name):
    by_name = {m.name: m for m in load_manifest()}
    model = by_name[name]
    if not model.path().is_file():
        pytest.skip(f"{name} not cached: run `make corpus`")
    recorded = _recorded()
    entry = recorded["models"][name]
    assert entry["recipe"] == model.input["recipe"], UPDATE
    problems = drift(name, entry["recipe"], entry["sets"], fingerprints(model))
    assert not problems, "\n".join([*problems, _versions_note(recorded), UPDATE])


# ---------------------------------------------------------------- regenerating the digests


def write_digests(path: Path = DIGESTS) -> None:
    if not all(m.path().is_file() for m in load_manifest()):
        raise SystemExit("corpus not (all) cached: run `make corpus` first")
    models = _fast_models()
    data = {
        "versions": _versions(),
        "photos": {name: _sha(inputs.photo(name).tobytes()) for name in inputs.PHOTOS},
        "font": _sha(_font_pixels()),
        "models": {m.name: {"recipe": m.input["recipe"],
                            "sets": {key: {n: f.to_dict() for n, f in fps.items()}
                                     for key, fps in fingerprints(m).items()}}
                   for m in sorted(models, key=lambda m: m.name)},
    }
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {path}: {len(data['models'])} models")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python tests/test_corpus_inputs.py --write")
    write_digests()
