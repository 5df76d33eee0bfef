"""The `edgesdk` command. Each sub-command lives in its own module with a `register()`."""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from sdk.base.errors import EdgeSDKError
from sdk.base.version import __version__

#: Modules under sdk.cli that add sub-commands, in the order `edgesdk --help` lists them.
COMMAND_MODULES = ("info", "export", "toolchain", "devices", "farm")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgesdk",
        description="Quantise models to int8/int4/ternary/2-bit and run them on edge devices.",
    )
    parser.add_argument("--version", action="version", version=f"edgesdk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        import_module(f"sdk.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except EdgeSDKError as exc:
        print(f"edgesdk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgesdk {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
