"""`edgesdk devices | deploy | profile | validate | emulate`: the device side from the shell.

    edgesdk devices --probe
    edgesdk deploy model.tflite ssh:pi@rpi4.local
    edgesdk profile model.tflite adb:R58M12345 --runs 100 --threads 4 --cpus 4-7
    edgesdk validate model.tflite rpi4 --inputs images.npy
    edgesdk emulate adb --port 5555 --arch aarch64
    edgesdk emulate board --arch aarch64

Tables and progress bars come from `sdk.cli.output` (rich), as for every command.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np

from sdk.base.tables import jsonable
from sdk.cli.exit_codes import CHECK_FAILED, UsageError
from sdk.cli.output import emit_json, fields, human_bytes, message, progress, table
from sdk.devices import DeviceConfig, DeviceError, load_device_config, resolve_device


# ---------------------------------------------------------------------------- output helpers
def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} ms"


def _result(args: argparse.Namespace, data: dict[str, Any]) -> None:
    """--json: the result on stdout; --json-out FILE: also written there."""
    if getattr(args, "json_out", None):
        from sdk.base.fileio import atomic_write_text

        atomic_write_text(args.json_out, json.dumps(jsonable(data), indent=2) + "\n")
        message(f"wrote {args.json_out}")
    if args.json:
        emit_json(data)


def _device(args: argparse.Namespace) -> DeviceConfig:
    config = resolve_device(args.device, config=args.config)
    if getattr(args, "accept_new_host_key", False):
        config = config.replace(accept_new_host_key=True)
    return config


# ---------------------------------------------------------------------------- devices
def cmd_devices(args: argparse.Namespace) -> int:
    from sdk.cli.adb_server import list_server_devices
    from sdk.devices import open_device
    from sdk.devices.adb import usb_serials

    file = load_device_config(args.config)
    entries: list[tuple[str, DeviceConfig, str, str]] = [
        (name, cfg, "config", "") for name, cfg in file.devices.items()]
    configured = {cfg.address for cfg in file.devices.values() if cfg.transport == "adb"}
    server = list_server_devices()
    seen = set(configured)
    for phone in server.devices:
        address = phone.device_string.removeprefix("adb:")
        if address in seen:
            continue
        seen.add(address)
        source = "adb server (network)" if phone.networked else "adb server (USB)"
        entries.append((phone.device_string, resolve_device(phone.device_string, config=file),
                        source, phone.state))
    for serial in usb_serials():
        if serial not in seen:
            seen.add(serial)
            entries.append((f"adb:{serial}", resolve_device(f"adb:{serial}", config=file), "usb",
                            "device"))
    entries.append(("local", resolve_device("local", config=file), "this host", ""))
    rows, report = [], []
    for name, cfg, source, state in entries:
        row: dict[str, Any] = {"name": name, "device": cfg.device_string, "source": source,
                               "state": state or None, "description": cfg.description}
        if args.probe:
            try:
                with open_device(cfg) as dev:
                    info = dev.info()
                row.update(status="ok", info=info.to_dict())
            except DeviceError as exc:
                row.update(status="error", error=str(exc))
        report.append(row)
        cells = [name, cfg.device_string, source, state or "-"]
        if args.probe:
            if row["status"] == "ok":
                info = row["info"]
                cells += [info.get("abi") or "?", info.get("model") or info.get("cpu_model")
                          or "", info.get("os") or "", str(info.get("cores") or "?"),
                          human_bytes(info.get("mem_total_bytes")),
                          info.get("emulated") or "no"]
            else:
                cells += ["error", row["error"][:80], "", "", "", ""]
        rows.append(cells)
    if server.unavailable:
        message(f"adb server: {server.unavailable} (phones it would list are not shown; "
                "`adb start-server` starts one)")
    if args.json:
        emit_json(report)
        return 0
    columns = ["name", "device string", "source", "state"]
    if args.probe:
        columns += ["ABI", "model", "OS", "cores", "memory", "emulated"]
    where = file.path or "no device config file (~/.config/edgesdk/devices.toml)"
    table(f"devices ({where})", columns, rows)
    return 0


# ---------------------------------------------------------------------------- deploy
def cmd_deploy(args: argparse.Namespace) -> int:
    from sdk.devices.deploy import deploy

    with progress(not args.quiet) as bars, \
            deploy(args.model, _device(args), runner=args.runner, progress=bars) as dep:
        described = dep.describe()
    if args.json:
        emit_json(described)
        return 0
    fields(f"deployed {Path(args.model).name}", [
        ("device", described["device"]), ("runner", described["runner"]),
        ("model on device", described["remote_model"]),
        ("files", "\n".join(described["files"])), ("sha256", described["sha256"])])
    return 0


# ---------------------------------------------------------------------------- profile
def cmd_profile(args: argparse.Namespace) -> int:
    from sdk.devices.profile import profile

    with progress(not args.quiet) as bars:
        result = profile(args.model, _device(args), runs=args.runs, warmup=args.warmup,
                         threads=args.threads, cpus=args.cpus, runner=args.runner,
                         layers=not args.no_layers, timeout=args.timeout, progress=bars)
    data = result.to_dict()
    slowest = slowest_layers(result.per_layer, args.top)
    data["slowest_layers"] = [layer.name for layer in slowest]
    _result(args, data)
    if args.json:
        return 0
    info, lat = result.device, result.latency
    temps = result.state_after.temperatures_c
    fields(f"profile of {Path(args.model).name} on {info.name}", [
        ("device", info.summary()),
        ("runner", f"{result.runner}: {result.runtime}"),
        ("ran as", result.machine),
        ("kernels", result.kernels),
        ("ISA", " ".join(result.isa) or "-"),
        ("threads / cpus", f"{result.threads or 'default'} / {result.cpus or 'any'}"),
        ("init", _ms(result.init_ms)), ("first run", _ms(result.first_run_ms)),
        (f"latency ({lat.runs} runs)",
         f"mean {_ms(lat.mean_ms)}  std {_ms(lat.std_ms)}\nmin {_ms(lat.min_ms)}  "
         f"p50 {_ms(lat.p50_ms)}  p90 {_ms(lat.p90_ms)}  p99 {_ms(lat.p99_ms)}  "
         f"max {_ms(lat.max_ms)}"),
        ("CPU per run", _ms(result.cpu_ms)),
        ("peak memory", human_bytes(result.peak_memory_bytes)),
        ("governor", result.governor or "unreadable"),
        ("temperature", ", ".join(f"{k} {v:.1f} C" for k, v in temps.items()) or "unreadable"),
        ("emulated", result.emulated or "no"),
        *((("NPU", f"{result.npu.summary()} [{result.npu.stack}: {result.npu.source}]"),)
          if result.npu is not None else ()),
        *(("note", note) for note in result.notes),
    ])
    if slowest:
        total = sum(layer.mean_ms or 0.0 for layer in result.per_layer)
        rows = [[layer.name, layer.op, layer.kernel or "-", _ms(layer.mean_ms),
                 f"{100 * (layer.mean_ms or 0.0) / total:.1f}%" if total else "-"]
                for layer in slowest]
        table(f"the {len(slowest)} slowest of {len(result.per_layer)} layers",
              ["layer", "op", "kernel", "mean", "share"], rows)
    return 0


def slowest_layers(layers: Any, top: int) -> list[Any]:
    """The `top` layers with the largest mean time, slowest first (graph order on ties)."""
    ranked = sorted(enumerate(layers or ()),  # None: --no-layers
                    key=lambda item: (-(item[1].mean_ms or 0.0), item[0]))
    return [layer for _, layer in ranked[:max(top, 0)]]


# ---------------------------------------------------------------------------- validate
def _load_inputs(spec: str, model: str, samples: int | None) -> Any:
    kind, colon, count = spec.partition(":")
    if kind == "random":
        from sdk.devices.inputs import random_inputs

        if colon and not (count.isdigit() and int(count) > 0):
            raise UsageError(f"--inputs {spec!r}: random:N takes a number of samples above 0")
        return random_inputs(model, int(count or samples or 16))
    path = Path(spec)
    if path.suffix in (".npy", ".npz") and not path.is_file():
        from sdk.run.edge import ModelInputError

        raise ModelInputError(f"--inputs {spec}: no such file")
    if path.suffix == ".npy":
        data = np.load(path)
        return data[:samples] if samples else data
    if path.suffix == ".npz":
        with np.load(path) as npz:
            return {k: (npz[k][:samples] if samples else npz[k]) for k in npz.files}
    raise UsageError(f"--inputs {spec!r}: give a .npy/.npz file or random[:N]")


def cmd_validate(args: argparse.Namespace) -> int:
    from sdk.devices.validate import validate

    inputs = _load_inputs(args.inputs, args.model, args.samples)
    with progress(not args.quiet) as bars:
        result = validate(args.model, _device(args), inputs, runner=args.runner,
                          threads=args.threads, timeout=args.timeout, progress=bars)
    passed = result.passed(min_sqnr_db=args.min_sqnr)
    _result(args, result.to_dict() | {"passed": passed, "min_sqnr_db": args.min_sqnr})
    if not args.json:
        rows = [[o.name, o.kind or "-", "yes" if o.exact else "no", f"{o.sqnr_db:.1f} dB",
                 f"{o.max_abs_error:.6g}", "-" if o.top1_agreement is None else
                 f"{100 * o.top1_agreement:.1f}%", f"{o.mismatched}"] for o in result.outputs]
        table(f"validation of {Path(args.model).name} on {result.device.name}: "
               f"{result.samples} samples, {result.runner} ({result.machine}) vs "
               f"{result.reference}", ["output", "kind", "exact", "SQNR", "max abs err",
                                       "top-1", "mismatched"], rows)
        for o in result.outputs:
            if o.kind_reason:
                print(f"  {o.name}: {o.kind} ({o.kind_reason}); top-1 "
                      + ("compared" if o.top1_agreement is not None else "does not apply"))
        for note in result.notes:
            print(f"note: {note}")
        print("PASSED" if passed else f"FAILED (SQNR below {args.min_sqnr} dB or top-1 < 99%)")
    return 0 if passed else CHECK_FAILED.code


# ---------------------------------------------------------------------------- emulate
def _wait_forever(stop_message: str) -> None:
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with suppress(KeyboardInterrupt):
        done.wait()
    print(stop_message, file=sys.stderr)


def _follow(path: Path, offset: int, done: threading.Event) -> None:
    """Relay what the emulated phone's daemon prints (refused keys and how to authorise them)."""
    while not done.wait(0.5):
        with suppress(OSError):
            with open(path, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
            if data:
                offset += len(data)
                print(data.decode(errors="replace"), end="", flush=True)


def cmd_emulate(args: argparse.Namespace) -> int:
    if args.kind == "adb":
        from sdk.devices.emulated import EmulatedPhone
        from sdk.devices.emulated.adbd import is_loopback

        if not is_loopback(args.host):
            if not args.allow_remote:
                raise UsageError(
                    f"--host {args.host} is not a loopback address: the emulated phone would be "
                    "reachable from other machines. Use 127.0.0.1, or add --allow-remote to "
                    "mean it")
            print(f"WARNING: the emulated phone listens on {args.host}, reachable from other "
                  "machines (--allow-remote); its sandbox is a test stand-in, not a security "
                  "boundary (docs/security.md)", file=sys.stderr, flush=True)
        if args.no_auth:
            print("WARNING: --no-auth: any host that reaches the port gets a shell on the "
                  "emulated phone", file=sys.stderr, flush=True)
        phone = EmulatedPhone(arch=args.arch, cpu=args.cpu, serial=args.serial,
                              root=args.sandbox, host=args.host, port=args.port,
                              auth=not args.no_auth, allow_remote=args.allow_remote,
                              authorized_keys_files=args.authorized_keys,
                              storage_bytes=args.storage_mb * (1 << 20) if args.storage_mb
                              else None, expose_python=not args.no_python)
        for key in args.authorize_key:
            if not Path(key).expanduser().is_file():
                raise UsageError(f"--authorize-key {key}: no such file (give the host's "
                                    "adbkey.pub, e.g. ~/.android/adbkey.pub)")
            phone.authorize_key(key)
        with phone:
            out = phone.root / "adbd.out"
            cfg = phone.device_config(name=f"emulated-phone-{args.arch}")
            if args.json:
                emit_json(_emulated_document("adb", cfg, {
                    "serial": phone.serial, "address": phone.address,
                    "sandbox": str(phone.sandbox), "keys_file": str(phone.keys_file)}))
            else:
                print(f"emulated {args.arch} phone {phone.serial} on {phone.address} "
                      f"(sandbox {phone.sandbox})")
                print(f"  edgesdk:  adb:tcp:{phone.address}")
                print(f"  adb:      adb connect {phone.address}")
                print(f"  authorised keys: {phone.keys_file} (read at every connection) — "
                      f"{len(phone.authorized_keys) + 1} key(s), among them the phone's own "
                      f"host key {phone.host_key}, which the config below uses; add others "
                      "with --authorize-key PATH.pub")
                print("device config (add to ~/.config/edgesdk/devices.toml):\n")
                print(_toml_table(cfg), flush=True)
            done = threading.Event()
            follower = threading.Thread(target=_follow, args=(out, out.stat().st_size, done),
                                        daemon=True)
            follower.start()
            if args.json:
                message("Ctrl-C stops it.")
            else:
                print("Ctrl-C stops it.", flush=True)
            try:
                _wait_forever("emulated phone stopped")
            finally:
                done.set()
                follower.join(2)
        return 0
    from sdk.devices.emulated import EmulatedBoard

    board = EmulatedBoard(arch=args.arch, cpu=args.cpu, root=args.sandbox)
    with board:
        cfg = board.device_config(name=f"emulated-{args.arch}")
        if args.npu:  # a stand-in NPU stack (issue 18; docs/npu.md, On the board)
            from sdk.devices.emulated.npu import npu_board_config

            cfg = npu_board_config(board, args.npu, name=f"emulated-{args.arch}-{args.npu}")
        if args.json:
            emit_json(_emulated_document("board", cfg, {"port": board.port,
                                                        "root": str(board.root)}))
            message("Ctrl-C stops it.")
        else:
            print(f"emulated {args.arch} board: sshd on 127.0.0.1:{board.port} (files in "
                  f"{board.root})")
            print("device config (add to ~/.config/edgesdk/devices.toml):\n")
            print(_toml_table(cfg))
            print("Ctrl-C stops it.", flush=True)
        _wait_forever("emulated board stopped")
    return 0


def _emulated_document(kind: str, cfg: DeviceConfig, where: dict[str, Any]) -> dict[str, Any]:
    """`emulate --json`: the device string and config to use, printed once at start."""
    return {"kind": kind, "name": cfg.name, "device": cfg.device_string,
            "config": cfg.to_dict(), "config_toml": _toml_table(cfg), **where}


def _toml_table(cfg: DeviceConfig) -> str:
    lines = [f"[devices.{cfg.name}]"]
    for key, value in cfg.to_dict().items():
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


# ---------------------------------------------------------------------------- parsers
def _common(p: argparse.ArgumentParser, *, runner: bool = True) -> None:
    p.add_argument("model", help="a .tflite or .edge model")
    p.add_argument("device", help="adb:SERIAL, adb:tcp:HOST:PORT, ssh:user@host[:port], local, "
                                  "or a name from the device config file")
    p.add_argument("--config", help="device config file (default $EDGESDK_DEVICES or "
                                    "~/.config/edgesdk/devices.toml)")
    if runner:
        p.add_argument("--runner", choices=("edge-run", "litert-python", "benchmark_model",
                                            "rknn-lite"),
                       help="force a runner (default: chosen per device and model)")
    p.add_argument("--accept-new-host-key", action="store_true",
                   help="trust and record an SSH host key seen for the first time")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("devices", help="list devices: the config file's, the adb server's "
                       "phones (USB and `adb connect`ed), phones on USB, local")
    p.add_argument("--config", help="device config file")
    p.add_argument("--probe", action="store_true", help="connect and describe each device")
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser("deploy", help="push a model and its runner to a device")
    _common(p)
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("profile", help="time a model on a device")
    _common(p)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int)
    p.add_argument("--cpus", help="pin to CPUs, e.g. 4-7")
    p.add_argument("--no-layers", action="store_true", help="skip per-layer timing")
    p.add_argument("--top", type=int, default=20, metavar="N",
                   help="list the N slowest layers (default 20)")
    p.add_argument("--timeout", type=float, help="seconds for the run (default: the config's)")
    p.add_argument("--json-out", metavar="FILE", help="also write the Profile as JSON there")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("validate", help="compare a device's outputs with this host's")
    _common(p)
    p.add_argument("--inputs", required=True, help=".npy/.npz samples (axis 0), or random[:N]")
    p.add_argument("--samples", type=int, help="use the first N samples")
    p.add_argument("--threads", type=int)
    p.add_argument("--min-sqnr", type=float, default=30.0, help="dB needed to pass if not exact")
    p.add_argument("--timeout", type=float)
    p.add_argument("--json-out", metavar="FILE",
                   help="also write the Validation as JSON there")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("emulate", help="run an emulated phone (ADB) or board (SSH)")
    p.add_argument("kind", choices=("adb", "board"))
    p.add_argument("--arch", choices=("aarch64", "armv7", "x86_64"), default="aarch64")
    p.add_argument("--cpu", help="qemu CPU model (default: max for aarch64, cortex-a15 armv7)")
    p.add_argument("--port", type=int, default=5555, help="adb: TCP port (0: any free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="adb: address to listen on (loopback only unless --allow-remote)")
    p.add_argument("--serial", help="adb: serial number")
    p.add_argument("--sandbox", help="directory for the device's files (default: a temp dir)")
    p.add_argument("--no-auth", action="store_true",
                   help="adb: accept hosts without a key (anyone who reaches the port)")
    p.add_argument("--authorize-key", action="append", default=[], metavar="PATH",
                   help="adb: authorise this host key (an adbkey.pub); may be repeated. Other "
                        "keys are refused, and the phone prints how to authorise them")
    p.add_argument("--authorized-keys", action="append", default=[], metavar="FILE",
                   help="adb: a file of authorised keys, one per line, like adbd's adb_keys "
                        "(read at every connection); may be repeated")
    p.add_argument("--allow-remote", action="store_true",
                   help="adb: allow a non-loopback --host (with a warning)")
    p.add_argument("--storage-mb", type=int, help="adb: size of /data (a tmpfs)")
    p.add_argument("--no-python", action="store_true",
                   help="adb: do not lend the phone this host's Python (no litert-python)")
    p.add_argument("--npu", choices=("ethos-u", "vx", "rknn"),
                   help="board: a stand-in NPU stack (the edgesdk delegate as the NPU delegate, "
                        "or a stand-in RKNNLite): docs/npu.md, On the board")
    p.set_defaults(func=cmd_emulate)
