"""The `edgesdk` command. Each sub-command lives in its own module with a `register()`.

Every command takes the same output options (added here, docs/cli.md): `-q` (errors only, no
progress), `-v` / `-vv` / `--log-level` (native LiteRT INFO lines appear from `info` down),
and, where it has a result, `--json` (that result as JSON on stdout, nothing else there).
Exit codes come from one table, `sdk.cli.exit_codes`.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from importlib import import_module
from typing import NoReturn

from sdk.base.version import __version__
from sdk.cli import exit_codes
from sdk.cli.logs import LEVELS, configure, level_from, native_log_filter

#: Modules under sdk.cli that add sub-commands, in the order `edgesdk --help` lists them.
COMMAND_MODULES = ("info", "export", "toolchain", "devices", "farm")
#: leaf commands without a result to print as JSON (servers that run until stopped)
NO_JSON = {("farm", "worker"), ("farm", "scheduler")}


def _add_output_options(p: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    out = p.add_argument_group("output (every command)")
    out.add_argument("-q", "--quiet", action="store_true",
                     help="errors only: no progress, no warnings, no native INFO lines")
    out.add_argument("-v", "--verbose", action="count", default=0,
                     help="more: -v info (LiteRT's own INFO lines too), -vv debug")
    out.add_argument("--log-level", choices=LEVELS, help="set the level (overrides -q / -v)")
    if path not in NO_JSON:
        out.add_argument("--json", action="store_true",
                         help="print the result as JSON on stdout (nothing else there)")


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
            ) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _leaves(child, (*path, name))
    return found or [(path, parser)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgesdk",
        description="Quantise models to int8/int4/ternary/2-bit and run them on edge devices.",
        epilog=exit_codes.epilog() + "\n(docs/cli.md)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"edgesdk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        import_module(f"sdk.cli.{name}").register(sub)
    for path, leaf in _leaves(parser):
        if path:
            _add_output_options(leaf, path)
    return parser


class _SilentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ValueError(message)


def _early_level(argv: list[str] | None) -> str:
    """The level the output options ask for, read before the command modules (and what they
    import) load, so that their import-time deprecation warnings are filtered too."""
    pre = _SilentParser(add_help=False)
    pre.add_argument("-q", "--quiet", action="store_true")
    pre.add_argument("-v", "--verbose", action="count", default=0)
    pre.add_argument("--log-level", choices=LEVELS)
    try:
        known, _ = pre.parse_known_args(sys.argv[1:] if argv is None else argv)
    except ValueError:  # a bad --log-level: the real parser reports it
        return "warning"
    return level_from(known.quiet, known.verbose, known.log_level)


def main(argv: list[str] | None = None) -> int:
    configure(_early_level(argv))
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help / --version (0) or a usage error (2)
        return int(exc.code or 0)
    level = level_from(args.quiet, args.verbose, args.log_level)
    configure(level)
    with native_log_filter(level):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from sdk.cli.output import emit_json, error_document

    try:
        return int(args.func(args) or 0)
    except (Exception, KeyboardInterrupt) as exc:
        code = exit_codes.exit_code_for(exc)
        if code is exit_codes.INTERNAL:
            traceback.print_exc()
            print(f"edgesdk {args.command}: internal error (a bug; please report it): "
                  f"{type(exc).__name__}: {exc}", file=sys.stderr)
        elif code is exit_codes.INTERRUPTED:
            print(f"edgesdk {args.command}: interrupted", file=sys.stderr)
        else:
            print(f"edgesdk {args.command}: error: {exc}", file=sys.stderr)
        if getattr(args, "json", False):
            emit_json(error_document(args.command, exc, code))
        return code.code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
