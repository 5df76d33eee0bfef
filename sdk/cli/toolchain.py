"""`edgesdk toolchain install|status|remove NAME`: vendor compilers in their own environments.

rknn-toolkit2 (Rockchip NPUs) pins old numpy / onnx / protobuf / torch, so it lives in a virtual
environment the SDK creates and caches (`~/.cache/edgesdk/toolchains/rknn`, or under
$EDGESDK_TOOLCHAINS); `edgesdk export --target rk3588` drives it through a subprocess.
Vela (Arm Ethos-U) installs into the SDK's own environment: `pip install 'edgesdk[npu]'`.
"""

from __future__ import annotations

import argparse

from sdk.base.errors import EdgeSDKError
from sdk.cli.exit_codes import CHECK_FAILED
from sdk.cli.output import emit_json, message, table
from sdk.converters.targets.toolchain import (
    TOOLCHAINS,
    find_toolchain,
    install_toolchain,
    remove_toolchain,
    toolchains_dir,
)


def run_install(args: argparse.Namespace) -> int:
    log = message if args.json else print
    install_toolchain(args.name, force=args.force, python=args.python, log=log)
    if args.json:
        found = find_toolchain(args.name, verify=True)
        emit_json({"name": args.name, "version": found.version, "path": str(found.path)})
    return 0


def run_status(args: argparse.Namespace) -> int:
    names = [args.name] if args.name else sorted(TOOLCHAINS)
    worst = 0
    rows: list[dict[str, object]] = []
    for name in names:
        try:
            found = find_toolchain(name, verify=True)
            rows.append({"name": name, "installed": True, "version": found.version,
                         "path": str(found.path),
                         "detail": f"{TOOLCHAINS[name].distribution} {found.version}"})
        except EdgeSDKError as exc:
            rows.append({"name": name, "installed": False, "error": str(exc)})
            worst = CHECK_FAILED.code
    try:
        from sdk.converters.targets.vela import vela_version

        version = vela_version()
        rows.append({"name": "vela", "installed": True, "version": version,
                     "path": "this environment", "detail": f"ethos-u-vela {version}"})
    except EdgeSDKError as exc:
        rows.append({"name": "vela", "installed": False, "error": str(exc)})
    if args.json:
        emit_json({"folder": str(toolchains_dir()), "toolchains": rows})
        return worst
    table(f"toolchains folder: {toolchains_dir()}", ("toolchain", "status", "where"),
          [(r["name"], r.get("detail") or "not usable", r.get("path") or r.get("error"))
           for r in rows])
    return worst


def run_remove(args: argparse.Namespace) -> int:
    removed = remove_toolchain(args.name)
    if args.json:
        emit_json({"name": args.name, "removed": removed})
    else:
        print(f"removed the {args.name} toolchain" if removed else f"{args.name}: not installed")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("toolchain", help="install vendor NPU compilers in their own environments",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    inst = actions.add_parser("install", help="create and cache a toolchain's environment")
    inst.add_argument("name", choices=sorted(TOOLCHAINS))
    inst.add_argument("--force", action="store_true", help="reinstall even if installed")
    inst.add_argument("--python", help="the Python that creates the environment (default: "
                                       "this one; rknn-toolkit2 2.5 has wheels for 3.8-3.12)")
    inst.set_defaults(func=run_install)
    st = actions.add_parser("status", help="which toolchains are installed and import")
    st.add_argument("name", nargs="?", choices=sorted(TOOLCHAINS))
    st.set_defaults(func=run_status)
    rm = actions.add_parser("remove", help="delete a toolchain's environment")
    rm.add_argument("name", choices=sorted(TOOLCHAINS))
    rm.set_defaults(func=run_remove)
