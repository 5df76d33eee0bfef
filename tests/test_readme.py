"""The README and every page of docs/ against the code: every `edgesdk ...` line in their fenced
shell blocks parses with the real command-line parser (every sub-command, option and choice they
show exists), each sub-command path answers `edgesdk <path> --help` through the installed console
script, and every `sdk.X` name their Python examples (and inline code) use imports, with calls to
SDK functions checked against their signatures (keyword names, argument counts). The Python
blocks of one page continue each other; pages do not."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: the README and every docs page, the set every check below reads
PAGES = [README, *sorted((ROOT / "docs").glob("**/*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
SHELL = ("sh", "bash", "console", "shell")


def _blocks(*languages: str, pages: list[Path] = PAGES) -> list[str]:
    return [body for page in pages for lang, body in FENCE.findall(page.read_text())
            if lang in languages]


def readme_commands(pages: list[Path] = PAGES) -> list[list[str]]:
    """argv of every `edgesdk` line in the shell blocks of the pages (continuations joined, a
    `$ ` prompt, comments and the `[...]` marks of optional arguments dropped)."""
    commands = []
    for body in _blocks(*SHELL, pages=pages):
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("edgesdk "):
                argv = shlex.split(line.replace("[", " ").replace("]", " "), comments=True)
                commands.append(argv[1:])
    return commands


def _subcommand_path(parser: Any, argv: list[str]) -> list[str]:
    """The sub-command words at the start of argv (`farm results`, `export`, ...)."""
    import argparse

    path = []
    for word in argv:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subparsers or word not in subparsers[0].choices:
            break
        path.append(word)
        parser = subparsers[0].choices[word]
    return path


def test_readme_shows_the_commands() -> None:
    """The front door shows an export and a profile; the pages together show every command."""
    shown = {" ".join(_subcommand_path(_parser(), argv)) for argv in readme_commands([README])}
    assert {"export", "profile"} <= shown, shown
    paths = {" ".join(_subcommand_path(_parser(), argv)) for argv in readme_commands()}
    assert {"export", "devices", "deploy", "profile", "validate", "emulate", "farm profile",
            "farm validate", "farm status", "farm results", "farm worker"} <= paths, paths


def _parser() -> Any:
    from sdk.cli import build_parser

    return build_parser()


@pytest.mark.parametrize("argv", readme_commands(), ids=" ".join)
def test_readme_command_parses(argv: list[str], capsys) -> None:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"docs: `edgesdk {' '.join(argv)}` does not parse: "
                    f"{capsys.readouterr().err.strip()} (exit {exc.code})")
    assert callable(args.func)


def test_every_readme_subcommand_answers_help() -> None:
    """Through the installed console script, once per sub-command path."""
    exe = shutil.which("edgesdk", path=str(Path(sys.executable).parent))
    assert exe is not None, "the edgesdk console script is not installed beside this Python"
    parser = _parser()
    paths = sorted({tuple(_subcommand_path(parser, argv)) for argv in readme_commands()})
    for path in paths:
        r = subprocess.run([exe, *path, "--help"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "usage: edgesdk" in r.stdout, (path, r.stderr)


# ---------------------------------------------------------------------------- Python API
SDK_NAME = re.compile(r"\bsdk(?:\.[A-Za-z_]\w*)+")


def _resolve(dotted: str) -> Any:
    """Import the longest module prefix of `dotted`, then getattr the rest."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as exc:
            if exc.name is not None and not ".".join(parts[:cut]).startswith(exc.name):
                raise  # the module exists but one of its own imports is missing
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def readme_sdk_names(pages: list[Path] = PAGES) -> list[str]:
    """Every `sdk.a.b` written in the Python blocks and in inline code of the pages, and every
    name a Python block imports from an sdk module."""
    names = set()
    for body in _blocks("python", pages=pages):
        names.update(SDK_NAME.findall(body))
        tree = ast.parse(body)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sdk"):
                names.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names if a.name.startswith("sdk."))
    for page in pages:
        prose = FENCE.sub("", page.read_text())
        for span in re.findall(r"`([^`]+)`", prose):  # inline code, possibly over a line break
            names.update(SDK_NAME.findall(span))
    # a trailing file suffix in prose ("sdk.converters.tflite.packing, ...") is not an attribute
    return sorted(n for n in names if not n.endswith((".py", ".json", ".toml", ".md")))


@pytest.mark.parametrize("name", readme_sdk_names())
def test_readme_sdk_name_exists(name: str) -> None:
    try:
        _resolve(name)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"the docs name `{name}`, which does not exist: {exc}")


def _returns(fn: Any) -> type | None:
    """The class a function or method is annotated to return, if it is one."""
    import typing

    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:
        return None
    return hint if inspect.isclass(hint) else None


class _Scope:
    """What a page's Python blocks have bound so far (blocks continue each other):
    names imported from sdk, and variables holding instances of sdk classes."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {"sdk": "sdk"}
        self.types: dict[str, type] = {}

    def callee(self, func: ast.expr) -> tuple[str, Any, bool] | None:
        """(label, callable, bound method) for a call's function expression, if it is ours."""
        parts = []
        while isinstance(func, ast.Attribute):
            parts.append(func.attr)
            func = func.value
        if not isinstance(func, ast.Name):
            return None
        parts.reverse()
        if func.id in self.aliases:
            dotted = ".".join([self.aliases[func.id], *parts])
            return dotted, _resolve(dotted), False
        if func.id in self.types:
            cls = self.types[func.id]
            if len(parts) > 1:
                return None  # attributes of attributes: not tracked
            name = parts[0] if parts else "__call__"
            static = isinstance(inspect.getattr_static(cls, name, None),
                                (staticmethod, classmethod))
            return f"{cls.__module__}.{cls.__qualname__}.{name}", getattr(cls, name), not static
        return None

    def bind(self, tree: ast.AST) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sdk"):
                self.aliases.update({a.asname or a.name: f"{node.module}.{a.name}"
                                     for a in node.names})
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [i.optional_vars for i in node.items] if isinstance(node, ast.With) else [])
            values = [node.value] if isinstance(node, ast.Assign) else (
                [i.context_expr for i in node.items] if isinstance(node, ast.With) else [])
            for target, value in zip(targets, values, strict=False):
                if not isinstance(target, ast.Name):
                    continue
                self.types.pop(target.id, None)
                found = self.callee(value.func) if isinstance(value, ast.Call) else None
                if found is not None:
                    made = found[1] if inspect.isclass(found[1]) else _returns(found[1])
                    if made is not None and (made.__module__ or "").startswith("sdk"):
                        self.types[target.id] = made


def _calls() -> list[tuple[str, Any, bool, ast.Call, str]]:
    """(label, callable, bound method, call node, source) of every call in the Python blocks
    whose function is an sdk name (`sdk.export(...)`, a name imported from an sdk module) or a
    method of a variable holding an sdk object (`farm = sdk.Farm(...)`; `run =
    farm.profile(...)`, annotated to return a FarmRun; then `run.get(...)`)."""
    out = []
    for page in PAGES:
        scope = _Scope()
        for body in _blocks("python", pages=[page]):
            try:
                tree = ast.parse(body)
            except SyntaxError as exc:
                raise AssertionError(f"{page.name}: a Python block does not parse: {exc}") from exc
            out.extend(_page_calls(scope, tree, body))
    return out


def _page_calls(scope: _Scope, tree: ast.AST,
                body: str) -> list[tuple[str, Any, bool, ast.Call, str]]:
    """The calls of one block, after binding its imports and assignments into the page's scope."""
    scope.bind(tree)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            found = scope.callee(node.func)
            if found is not None:
                out.append((*found, node, ast.get_source_segment(body, node) or found[0]))
    return out


def test_readme_python_calls_match_the_signatures() -> None:
    checked, problems = 0, []
    for label, target, bound, call, source in _calls():
        try:
            sig = inspect.signature(target)
        except (TypeError, ValueError):
            continue  # native (pybind11) callables: their names are checked above
        args = [None] * (len(call.args) + bound)
        if any(isinstance(a, ast.Starred) for a in call.args):
            continue
        kwargs = {k.arg: None for k in call.keywords if k.arg is not None}
        try:
            sig.bind(*args, **kwargs)
            checked += 1
        except TypeError as exc:
            problems.append(f"{source.splitlines()[0]} ...: {exc} (signature {label}{sig})")
    assert not problems, "\n".join(problems)
    assert checked >= 15


# ---------------------------------------------------------------------------- other programs
def _code_text() -> str:
    """The fenced blocks and the inline code of every page, continuations joined."""
    parts = []
    for page in PAGES:
        text = page.read_text()
        parts += [*(b for _, b in FENCE.findall(text)),
                  *re.findall(r"`([^`]+)`", FENCE.sub("", text))]
    return "\n".join(parts).replace("\\\n", " ")


def test_readme_edge_run_options_exist() -> None:
    from sdk.base.native import edge_run_path

    lines = [line for line in _code_text().splitlines() if line.strip().startswith("edge-run ")]
    assert lines
    r = subprocess.run([str(edge_run_path("x86_64")), "--help"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0
    for line in lines:
        for option in re.findall(r"(?<!\S)(--[a-z][\w-]*)", line.split("#")[0]):
            assert option in r.stdout or option == "--help", (
                f"docs: `{line.strip()}`: edge-run has no {option}")


def test_readme_scripts_and_modules_exist() -> None:
    """`python benchmarks/X.py --option ...` and `python -m module` lines: the script exists and
    takes each option shown (its argparse source names it); the module is importable."""
    root = README.parent
    code = _code_text()
    scripts = re.findall(r"python (benchmarks/[\w/]+\.py)([^\n#`]*)", code)
    assert len(scripts) >= 4
    for script, rest in scripts:
        path = root / script
        assert path.is_file(), f"the docs run {script}, which does not exist"
        source = path.read_text()
        for option in re.findall(r"(?<!\S)(--[a-z][\w-]*)", rest):
            assert f'"{option}"' in source, f"docs: {script} {option}: no such option"
    modules = re.findall(r"python -m ([\w.]+)", code)
    assert modules
    for module in modules:
        assert importlib.util.find_spec(module) is not None, f"docs: no module {module}"


#: `make TARGET` in a shell line or inline code (prose such as "make the ..." is not code)
MAKE_TARGET = re.compile(r"(?:^|[`;&|(][ \t]*|^[ \t]*\$[ \t]*)make[ \t]+([a-z][\w-]*)", re.M)


def _makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {name for line in re.findall(r"^([\w. $()/-][^:=\n]*):(?!=)", text, re.M)
            for name in line.split()}


def _missing_make_targets(code: str) -> set[str]:
    return set(MAKE_TARGET.findall(code)) - _makefile_targets()


def test_docs_make_targets_exist() -> None:
    """Every `make X` the pages show is a target of the Makefile."""
    code = _code_text()
    assert len(MAKE_TARGET.findall(code)) >= 10
    missing = _missing_make_targets(code)
    assert not missing, f"the docs run make targets the Makefile does not have: {sorted(missing)}"
    assert _missing_make_targets("make demo\n`make no-such-target`") == {"no-such-target"}


#: the extras a `pip install 'edgesdk[a,b]'` / `pip install -e '.[a,b]'` /
#: `pip install "$(ls .../edgesdk-*.whl)[a,b]"` line or span asks for
EXTRAS = re.compile(r"(?:edgesdk|\.|\.whl\))\[([a-z][\w,-]*)\]")


def _missing_extras(code: str) -> set[str]:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    return {e for group in EXTRAS.findall(code) for e in group.split(",")} - set(declared)


def test_docs_extras_exist() -> None:
    """Every extra the pages install (`[tf]`, `[onnx]`, ...) is declared in pyproject.toml."""
    code = _code_text()
    assert len(EXTRAS.findall(code)) >= 3
    missing = _missing_extras(code)
    assert not missing, f"the docs install extras pyproject.toml does not declare: {missing}"
    assert _missing_extras("pip install 'edgesdk[onnx,nope]'") == {"nope"}
    assert _missing_extras('pip install "$(ls dist/edgesdk-*.whl)[tf,nope2]"') == {"nope2"}


#: options the docs name that belong to programs edgesdk does not ship
FOREIGN_OPTIONS = {"--min_secs": "TensorFlow's benchmark_model",
                   "--cpp": "flatc", "--scoped-enums": "flatc", "--gen-onefile": "flatc",
                   "--gen-object-api": "flatc",
                   "--verbose-performance": "Arm's vela", "--show-cpu-operations": "Arm's vela",
                   "--no-deps": "pip", "--no-index": "pip", "--only-binary": "pip",
                   "--find-links": "pip", "--no-build-isolation": "pip",
                   "--system-site-packages": "python -m venv",
                   "--split-string": "env (coreutils)",
                   "--help": "every program (edge-run's usage does not list it)"}


def test_every_option_in_the_readme_prose_exists() -> None:
    """Each `--option` in inline code belongs to an edgesdk sub-command, edge-run, a benchmark
    script or a device runner script we push."""
    import argparse

    from sdk.base.native import edge_run_path

    known: set[str] = set()

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            known.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)

    walk(_parser())
    root = README.parent
    sources = "".join(p.read_text()
                      for pattern in ("benchmarks/*.py", "devices/runners/*.py", "apps/*.py")
                      for p in root.glob(pattern))
    edge_run = subprocess.run([str(edge_run_path("x86_64")), "--help"], capture_output=True,
                              text=True, timeout=60).stdout
    unknown = set()
    spans = [s for page in PAGES for s in re.findall(r"`([^`]+)`", FENCE.sub("", page.read_text()))]
    for span in spans:
        for option in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", span):
            if not (option in known or option in edge_run or f'"{option}"' in sources
                    or option in FOREIGN_OPTIONS):
                unknown.add(f"{option} (in `{span.strip()[:60]}`)")
    assert not unknown, sorted(unknown)
