"""The corpus manifest (`models.toml`) as typed entries."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from sdk.base.errors import EdgeSDKError

MANIFEST = Path(__file__).with_name("models.toml")
CACHE_ENV = "EDGESDK_CORPUS_DIR"


class CorpusError(EdgeSDKError, RuntimeError):
    """The corpus manifest, a download or a cached file is not what the manifest pins."""


@dataclass(frozen=True)
class Wheel:
    key: str
    package: str
    version: str
    file: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class CorpusModel:
    name: str
    wheel: Wheel
    member: str
    sha256: str
    format: str
    exporter: str
    kind: str
    task: dict[str, Any]
    input: dict[str, Any]
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: inputs that are settings, fixed for the export (`sdk.export(constant_inputs=...)`)
    constant_inputs: dict[str, Any] = field(default_factory=dict)
    #: False keeps a model out of the fast subset (tests/test_corpus.py); the manifest says why
    fast_subset: bool = True

    @property
    def package(self) -> str:
        return self.wheel.package

    @property
    def version(self) -> str:
        return self.wheel.version

    def path(self, cache: Path | None = None) -> Path:
        """Where `make corpus` puts the extracted file."""
        root = cache if cache is not None else cache_dir()
        return root / "models" / self.wheel.key / self.member


def cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "edgesdk" / "corpus"


_MODEL_KEYS = {"name", "wheel", "member", "sha256", "format", "exporter", "kind", "task",
               "input", "input_shapes", "constant_inputs", "fast_subset"}


def load_manifest(path: Path = MANIFEST) -> list[CorpusModel]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CorpusError(f"{path}: cannot read the corpus manifest: {exc}") from exc
    wheels = {key: Wheel(key, w["package"], w["version"], w["file"], w["sha256"])
              for key, w in data.get("wheels", {}).items()}
    models: list[CorpusModel] = []
    seen: set[str] = set()
    for i, m in enumerate(data.get("model", [])):
        unknown = set(m) - _MODEL_KEYS
        if unknown:
            raise CorpusError(f"{path}: model #{i} ({m.get('name')}): unknown keys {unknown}")
        if m["wheel"] not in wheels:
            raise CorpusError(f"{path}: model {m['name']!r} names wheel {m['wheel']!r}, "
                              f"which [wheels] does not pin")
        if m["name"] in seen:
            raise CorpusError(f"{path}: model {m['name']!r} is listed twice")
        if m["format"] not in ("tflite", "onnx"):
            raise CorpusError(f"{path}: model {m['name']!r}: format must be tflite or onnx")
        seen.add(m["name"])
        models.append(CorpusModel(
            name=m["name"], wheel=wheels[m["wheel"]], member=m["member"], sha256=m["sha256"],
            format=m["format"], exporter=m["exporter"], kind=m["kind"], task=dict(m["task"]),
            input=dict(m["input"]),
            input_shapes={k: tuple(v) for k, v in m.get("input_shapes", {}).items()},
            constant_inputs=dict(m.get("constant_inputs", {})),
            fast_subset=bool(m.get("fast_subset", True))))
    return models


def select(models: list[CorpusModel], names: list[str] | None) -> list[CorpusModel]:
    if not names:
        return models
    by_name = {m.name: m for m in models}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise CorpusError(f"not in the corpus: {', '.join(missing)} "
                          f"(known: {', '.join(by_name)})")
    return [by_name[n] for n in names]


def smallest_per_kind(models: list[CorpusModel], cache: Path | None = None) -> list[CorpusModel]:
    """The fast subset: the smallest cached file of each kind (of those not kept out)."""
    best: dict[str, tuple[int, CorpusModel]] = {}
    for m in models:
        p = m.path(cache)
        if not m.fast_subset or not p.is_file():
            continue
        size = p.stat().st_size
        if m.kind not in best or size < best[m.kind][0]:
            best[m.kind] = (size, m)
    return [m for _, m in best.values()]
