"""Every page in docs/ (and the README) against the tree: the `edgesdk ...` lines of their shell
blocks parse with the real command-line parser, every `sdk.X` name they write exists, and every
path into this repository they cite exists.

tests/test_readme.py checks the README more deeply (signatures of its Python calls, options of
edge-run and the benchmark scripts); this file holds every page to the same basic truths.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from test_readme import FENCE, SDK_NAME, _parser, _resolve

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
#: repository paths cited in code spans: a top-level folder of ours, then a file or folder
REPO_PATH = re.compile(
    r"(?<![\w./~$-])((?:sdk|converters|devices|native|tests|apps|benchmarks|docs|\.ci)"
    r"/[\w./*-]*[\w*/])")


def _ids(pages: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in pages]


def _code(page: Path | str) -> list[str]:
    """Fenced blocks and inline code spans of a page (a path, or its text)."""
    text = page.read_text() if isinstance(page, Path) else page
    return [*(body for _, body in FENCE.findall(text)),
            *re.findall(r"`([^`\n]+)`", FENCE.sub("", text))]


def _commands(page: Path) -> list[list[str]]:
    out = []
    for lang, body in FENCE.findall(page.read_text()):
        if lang not in ("sh", "bash", "console", "shell"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("edgesdk "):
                out.append(shlex.split(line.replace("[", " ").replace("]", " "),
                                       comments=True)[1:])
    return out


def test_the_docs_folder_has_pages() -> None:
    assert len(PAGES) > 2, PAGES


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_commands_parse(page: Path, capsys) -> None:
    parser = _parser()
    bad = []
    for argv in _commands(page):
        try:
            parser.parse_args(argv)
        except SystemExit:
            bad.append(f"`edgesdk {' '.join(argv)}`: {capsys.readouterr().err.strip()}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_sdk_names_exist(page: Path) -> None:
    names = {n for span in _code(page) for n in SDK_NAME.findall(span)}
    missing = []
    for name in sorted(n for n in names if not n.endswith((".py", ".json", ".toml", ".md"))):
        try:
            _resolve(name)
        except (ImportError, AttributeError) as exc:
            missing.append(f"{name}: {exc}")
    assert not missing, "\n".join(missing)


def _missing_paths(page: Path | str) -> set[str]:
    missing = set()
    for span in _code(page):
        for cited in REPO_PATH.findall(span):
            cited = cited.rstrip("/.")
            if cited.startswith("sdk/") and not (ROOT / cited).exists():
                # sdk.converters / sdk.devices install from converters/ and devices/
                alt = re.sub(r"^sdk/(converters|devices)/", r"\1/", cited)
                if (ROOT / alt).exists():
                    continue
            if "*" in cited:
                if not list(ROOT.glob(cited)):
                    missing.add(cited)
            elif not (ROOT / cited).exists():
                missing.add(cited)
    return missing


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_cited_paths_exist(page: Path) -> None:
    missing = _missing_paths(page)
    assert not missing, f"{page.name} cites paths that do not exist: {sorted(missing)}"


def test_a_missing_path_is_caught() -> None:
    text = ("See `converters/tflite/reader.py` and `sdk/converters/onnx/`, run\n"
            "```sh\npython benchmarks/no_such_bench.py\n```\nand `devices/nowhere/*.py`.\n")
    assert _missing_paths(text) == {"benchmarks/no_such_bench.py", "devices/nowhere/*.py"}
