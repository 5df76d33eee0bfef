"""Every page in docs/ (and the README) against the tree: the `edgesdk ...` lines of their shell
blocks parse with the real command-line parser, every `sdk.X` name they write exists, every path
into this repository they cite exists, and every link between pages (and to a heading) resolves.
The site: every page is in mkdocs.yml's nav, and `mkdocs build --strict` passes; the README stays
a front door (under 300 lines).

tests/test_readme.py checks the same pages more deeply (signatures of their Python calls, options
of edge-run and the benchmark scripts); this file holds every page to the basic truths, one by one.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import unicodedata
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


# ---------------------------------------------------------------------------- links and the site
#: a Markdown link or image outside code: [text](target) (the title, if any, dropped)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
README_MAX_LINES = 300


def _slug(heading: str) -> str:
    """The anchor Python-Markdown's toc gives a heading (what mkdocs links to)."""
    text = re.sub(r"`|\*\*|\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {_slug(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


def _broken_links(page: Path, text: str | None = None) -> list[str]:
    """Links of a page (its text, or `text` as if it were the page) to files of this repository
    or to headings that do not exist."""
    text = page.read_text() if text is None else text
    prose = re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))
    broken = []
    for target in LINK.findall(prose):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            shown = dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest
            broken.append(f"{target} (no file {shown})")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.name})")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_links_resolve(page: Path) -> None:
    broken = _broken_links(page)
    assert not broken, f"{page.name} has broken links: {broken}"


def test_a_broken_link_is_caught() -> None:
    page = ROOT / "docs" / "export.md"
    text = ("[ok](onnx-input.md), [ok](#export), [web](https://example.org/x.md),\n"
            "[gone](no-such-page.md), [bad anchor](onnx-input.md#no-such-heading),\n"
            "`[in code](nowhere.md)`\n")
    assert _broken_links(page, text) == [
        "no-such-page.md (no file docs/no-such-page.md)",
        "onnx-input.md#no-such-heading (no heading #no-such-heading in onnx-input.md)"]


def test_readme_is_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines < README_MAX_LINES, (
        f"README.md has {lines} lines; the front door stays under {README_MAX_LINES}: move "
        "task text to a docs/ page and link it")


def _apt_packages() -> list[str]:
    """The Debian packages the Makefile installs (APT_PACKAGES, continuation lines joined)."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    return re.search(r"^APT_PACKAGES\s*:?=(.*)$", text, re.M).group(1).split()


def test_readme_names_the_system_packages() -> None:
    """The front door's install section names every Debian package `make` installs."""
    packages = _apt_packages()
    assert len(packages) >= 10
    spans = set(re.findall(r"`([^`\n]+)`", (ROOT / "README.md").read_text()))
    missing = [p for p in packages if p not in spans]
    assert not missing, f"README.md does not name these packages of APT_PACKAGES: {missing}"


def _nav_pages(nav: object) -> list[str]:
    """The page files a mkdocs nav names, at any depth."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [p for v in nav.values() for p in _nav_pages(v)]
    if isinstance(nav, list):
        return [p for v in nav for p in _nav_pages(v)]
    return []


def _mkdocs_config() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "mkdocs.yml").read_text())


def test_every_docs_page_is_in_the_nav() -> None:
    config = _mkdocs_config()
    docs = ROOT / config.get("docs_dir", "docs")
    nav = _nav_pages(config["nav"])
    pages = sorted(str(p.relative_to(docs)) for p in docs.glob("**/*.md"))
    assert sorted(set(pages) - set(nav)) == [], "pages missing from mkdocs.yml's nav"
    assert sorted(set(nav) - set(pages)) == [], "the nav names pages that do not exist"
    assert len(nav) == len(set(nav)), "a page is in the nav twice"


def test_the_site_builds_strict(tmp_path: Path) -> None:
    """`mkdocs build --strict` (what `make docs` runs): any warning (a broken link or anchor, a
    page outside the nav, a missing file) fails it. No network: the theme's fonts are off."""
    pytest.importorskip("material", reason="mkdocs-material (the [dev] extra) is not installed")
    assert _mkdocs_config()["theme"].get("font") is False, "theme font: false (no Google Fonts)"
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                        str(tmp_path / "site"), "--config-file", str(ROOT / "mkdocs.yml")],
                       capture_output=True, text=True, timeout=300, cwd=ROOT,
                       env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert r.returncode == 0 and "WARNING" not in r.stderr, r.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").is_file()
