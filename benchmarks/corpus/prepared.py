"""One corpus model set up for a benchmark: its manifest entry, its cached file, the context its
input recipe needs (where the corpus' other models are) and its input descriptions.

    from corpus.prepared import prepare

    p = prepare("ppocr_v4_rec")                # or prepare(model, cache, models)
    cal = p.samples(32, CALIBRATION_SEED)
    sdk.export(str(p.path), "int8", calibration=stacked(cal, p.fed), **p.export_options())

Every benchmark that feeds a corpus model (benchmarks/*.py, `measure.run_model`,
`float_check.check`) starts here, so the manifest is read once and the sample context is built
one way.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The module, not its functions: tests replace `inputs.make_samples` / `inputs.model_inputs`
# (tests/test_corpus_protocol.py), and a name bound at import would keep the originals.
from . import inputs
from .inputs import Context, InputDesc, Sample
from .manifest import CorpusModel, cache_dir, load_manifest, select


def context(models: list[CorpusModel], cache: Path) -> Context:
    """The recipes' context: a corpus model's cached file by name (the wake-word heads read
    openWakeWord's front-end models through it)."""
    by_name = {m.name: m for m in models}
    return Context(model_path=lambda name: by_name[name].path(cache))


@dataclass(frozen=True)
class Prepared:
    """A corpus model ready to sample. `descs` is read from the file when first asked for, so
    that a caller can check `path.is_file()` before (`make corpus` not run)."""

    model: CorpusModel
    path: Path
    ctx: Context

    @functools.cached_property
    def descs(self) -> list[InputDesc]:
        """Every input, constant ones included, in the model's order."""
        return inputs.model_inputs(self.model, self.path)

    @property
    def order(self) -> list[str]:
        """The input names in the model's order (what the runners take)."""
        return [d.name for d in self.descs]

    @property
    def fed(self) -> list[InputDesc]:
        """The inputs a calibration set holds: all but the manifest's constant inputs."""
        return [d for d in self.descs if d.name not in self.model.constant_inputs]

    def samples(self, n: int, seed: int) -> list[Sample]:
        """`n` samples of the model's recipe from `seed` (`inputs.make_samples`)."""
        return inputs.make_samples(self.model, self.path, n, seed, self.ctx)

    def with_phrase(self, n: int, seed: int) -> list[Sample]:
        """`n` samples from `seed`: the recipe's (`samples`); for a wake-word head whose recipe
        names its `phrase`, the first n - n // 2 the recipe's (speech-like sound: negatives)
        and the last n // 2 the phrase spoken (`inputs.wake_word_samples`: positives the float
        head detects). For calibration and held-out sets alike: a held-out set with positives
        scored after calibrating on negatives only measures clipped activation ranges (INT8
        weights gave 6.4 dB on oww_alexa, every method the same), not the rounding."""
        if "phrase" not in self.model.input:
            return self.samples(n, seed)
        pos = n // 2
        return self.samples(n - pos, seed) + inputs.wake_word_samples(
            self.model, self.path, pos, seed, self.ctx)

    def export_options(self) -> dict[str, Any]:
        """The `sdk.export` keywords the recipe fixes: its input shapes (None where the file's
        own hold) and, where it has any, its constant inputs."""
        options: dict[str, Any] = {"input_shapes": dict(self.model.input_shapes) or None}
        if self.model.constant_inputs:
            options["constant_inputs"] = dict(self.model.constant_inputs)
        return options


def prepare(model: str | CorpusModel, cache: Path | None = None,
            models: list[CorpusModel] | None = None) -> Prepared:
    """`model` (a name or a manifest entry) in `cache` (default: `cache_dir()`); `models`: the
    manifest already read (default: read it). A name not in the manifest raises CorpusError."""
    root = cache if cache is not None else cache_dir()
    every = models if models is not None else load_manifest()
    entry = select(every, [model])[0] if isinstance(model, str) else model
    return Prepared(entry, entry.path(root), context(every, root))
