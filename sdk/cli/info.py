"""`edgesdk info`: what this host offers (CPU features, physical cores, the LiteRT backend)."""

from __future__ import annotations

import argparse
import platform

from sdk.base import native
from sdk.base.errors import RuntimeNotFoundError
from sdk.base.version import __version__
from sdk.cli.output import emit_json, fields
from sdk.run.litert import backend


def collect() -> dict[str, object]:
    features = native.cpu_features()
    try:
        lite = backend()
        runtime = {"name": lite.name, "version": lite.version}
    except RuntimeNotFoundError as exc:
        runtime = {"error": str(exc)}
    return {
        "edgesdk": __version__,
        "python": platform.python_version(),
        "arch": features.pop("arch"),
        "cpu_features": sorted(k for k, v in features.items() if v),
        "physical_cores": native.physical_core_count(),
        "litert": runtime,
    }


def run(args: argparse.Namespace) -> int:
    info = collect()
    if args.json:
        emit_json(info)
        return 0
    lite = info["litert"]
    assert isinstance(lite, dict)
    runtime = f"{lite['name']} {lite['version']}" if "name" in lite else lite["error"]
    fields(f"edgesdk {info['edgesdk']} (Python {info['python']})", [
        ("arch", info["arch"]),
        ("cpu features", " ".join(info["cpu_features"]) or "(none)"),  # type: ignore[arg-type]
        ("physical cores", info["physical_cores"]),
        ("litert", runtime)])
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="show this host's CPU features and LiteRT backend")
    p.set_defaults(func=run)
