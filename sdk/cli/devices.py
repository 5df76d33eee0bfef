"""`edgesdk devices | deploy | profile | validate | emulate`: the device side from the shell.

    edgesdk devices --probe
    edgesdk deploy model.tflite ssh:pi@rpi4.local
    edgesdk profile model.tflite adb:R58M12345 --runs 100 --threads 4 --cpus 4-7
    edgesdk validate model.tflite rpi4 --inputs images.npy
    edgesdk emulate adb --port 5555 --arch aarch64
    edgesdk emulate board --arch aarch64

Progress bars and tables use rich (the `[devices]` extra) and fall back to plain text.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

from sdk.devices import DeviceConfig, DeviceError, load_device_config, resolve_device


# ---------------------------------------------------------------------------- output helpers
def _console() -> Any:
    try:
        from rich.console import Console
    except ImportError:  # pragma: no cover - without the extra
        return None
    return Console(stderr=False, highlight=False)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A `progress(stage, done, total)` that draws rich progress bars (on stderr)."""
    if not enabled:
        yield None
        return
    try:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn
    except ImportError:  # pragma: no cover
        from sdk.base.progress import ProgressBar

        yield ProgressBar()
        return
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description:<28}"), BarColumn(), DownloadColumn(),
                  console=console, transient=not console.is_terminal) as bars:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=max(total, 1))
            bars.update(tasks[stage], completed=done, total=max(total, 1))

        yield update


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    console = _console()
    if console is None:  # pragma: no cover
        from sdk.base.tables import format_table

        print(title)
        print("\n".join(format_table(tuple(columns), [tuple(r) for r in rows])))
        return
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _fields(title: str, rows: list[tuple[str, Any]]) -> None:
    """A two-column key / value table."""
    pairs = [(k, "" if v is None else str(v)) for k, v in rows if v != ""]
    console = _console()
    if console is None:  # pragma: no cover
        print(title)
        width = max(len(k) for k, _ in pairs)
        for key, value in pairs:
            print(f"  {key:<{width}}  {value}")
        return
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in pairs:
        table.add_row(key, value)
    console.print(table)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} ms"


def _bytes(value: int | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024  # type: ignore[assignment]
    return str(value)  # pragma: no cover


def _write_json(target: str | None, data: dict[str, Any]) -> None:
    if not target:
        return
    text = json.dumps(data, indent=2)
    if target == "-":
        print(text)
    else:
        from sdk.base.fileio import atomic_write_text

        atomic_write_text(target, text + "\n")
        print(f"wrote {target}", file=sys.stderr)


def _device(args: argparse.Namespace) -> DeviceConfig:
    config = resolve_device(args.device, config=args.config)
    if getattr(args, "accept_new_host_key", False):
        config = config.replace(accept_new_host_key=True)
    return config


# ---------------------------------------------------------------------------- devices
def cmd_devices(args: argparse.Namespace) -> int:
    from sdk.devices import open_device

    file = load_device_config(args.config)
    entries: list[tuple[str, DeviceConfig, str]] = [
        (name, cfg, "config") for name, cfg in file.devices.items()]
    from sdk.devices.adb import usb_serials

    configured = {cfg.address for cfg in file.devices.values() if cfg.transport == "adb"}
    for serial in usb_serials():
        if serial not in configured:
            entries.append((f"adb:{serial}", resolve_device(f"adb:{serial}", config=file), "usb"))
    entries.append(("local", resolve_device("local", config=file), "this host"))
    rows, report = [], []
    for name, cfg, source in entries:
        row = {"name": name, "device": cfg.device_string, "source": source,
               "description": cfg.description}
        if args.probe:
            try:
                with open_device(cfg) as dev:
                    info = dev.info()
                row.update(status="ok", info=info.to_dict())
            except DeviceError as exc:
                row.update(status="error", error=str(exc))
        report.append(row)
        cells = [name, cfg.device_string, source]
        if args.probe:
            if row["status"] == "ok":
                info = row["info"]
                mem = info.get("mem_total_bytes")
                cells += [info.get("abi") or "?", info.get("model") or info.get("cpu_model")
                          or "", info.get("os") or "", str(info.get("cores") or "?"),
                          _bytes(mem), info.get("emulated") or "no"]
            else:
                cells += ["error", row["error"][:80], "", "", "", ""]
        rows.append(cells)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    columns = ["name", "device string", "source"]
    if args.probe:
        columns += ["ABI", "model", "OS", "cores", "memory", "emulated"]
    where = file.path or "no device config file (~/.config/edgesdk/devices.toml)"
    _table(f"devices ({where})", columns, rows)
    return 0


# ---------------------------------------------------------------------------- deploy
def cmd_deploy(args: argparse.Namespace) -> int:
    from sdk.devices.deploy import deploy

    with _progress(not args.quiet) as progress, \
            deploy(args.model, _device(args), runner=args.runner, progress=progress) as dep:
        described = dep.describe()
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    _fields(f"deployed {Path(args.model).name}", [
        ("device", described["device"]), ("runner", described["runner"]),
        ("model on device", described["remote_model"]),
        ("files", "\n".join(described["files"])), ("sha256", described["sha256"])])
    return 0


# ---------------------------------------------------------------------------- profile
def cmd_profile(args: argparse.Namespace) -> int:
    from sdk.devices.profile import profile

    with _progress(not args.quiet) as progress:
        result = profile(args.model, _device(args), runs=args.runs, warmup=args.warmup,
                         threads=args.threads, cpus=args.cpus, runner=args.runner,
                         layers=not args.no_layers, timeout=args.timeout, progress=progress)
    _write_json(args.json, result.to_dict())
    if args.json == "-":
        return 0
    info, lat = result.device, result.latency
    temps = result.state_after.temperatures_c
    _fields(f"profile of {Path(args.model).name} on {info.name}", [
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
        ("peak memory", _bytes(result.peak_memory_bytes)),
        ("governor", result.governor or "unreadable"),
        ("temperature", ", ".join(f"{k} {v:.1f} C" for k, v in temps.items()) or "unreadable"),
        ("emulated", result.emulated or "no"),
        *(("note", note) for note in result.notes),
    ])
    if result.per_layer:
        rows = [[layer.name, layer.op, layer.kernel or "-", _ms(layer.mean_ms)]
                for layer in result.per_layer[:args.top]]
        _table("per layer", ["layer", "op", "kernel", "mean"], rows)
    return 0


# ---------------------------------------------------------------------------- validate
def _load_inputs(spec: str, model: str, samples: int | None) -> Any:
    if spec.startswith("random"):
        from sdk.devices.validate import random_inputs

        return random_inputs(model, int(spec.partition(":")[2] or samples or 16))
    path = Path(spec)
    if path.suffix == ".npy":
        data = np.load(path)
        return data[:samples] if samples else data
    if path.suffix == ".npz":
        with np.load(path) as npz:
            return {k: (npz[k][:samples] if samples else npz[k]) for k in npz.files}
    raise DeviceError(f"--inputs {spec!r}: give a .npy/.npz file or random[:N]")


def cmd_validate(args: argparse.Namespace) -> int:
    from sdk.devices.validate import validate

    inputs = _load_inputs(args.inputs, args.model, args.samples)
    with _progress(not args.quiet) as progress:
        result = validate(args.model, _device(args), inputs, runner=args.runner,
                          threads=args.threads, timeout=args.timeout, progress=progress)
    _write_json(args.json, result.to_dict())
    passed = result.passed(min_sqnr_db=args.min_sqnr)
    if args.json != "-":
        rows = [[o.name, "yes" if o.exact else "no", f"{o.sqnr_db:.1f} dB",
                 f"{o.max_abs_error:.6g}", "-" if o.top1_agreement is None else
                 f"{100 * o.top1_agreement:.1f}%", f"{o.mismatched}"] for o in result.outputs]
        _table(f"validation of {Path(args.model).name} on {result.device.name}: "
               f"{result.samples} samples, {result.runner} ({result.machine}) vs "
               f"{result.reference}", ["output", "exact", "SQNR", "max abs err", "top-1",
                                       "mismatched"], rows)
        for note in result.notes:
            print(f"note: {note}")
        print("PASSED" if passed else f"FAILED (SQNR below {args.min_sqnr} dB or top-1 < 99%)")
    return 0 if passed else 1


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
        from sdk.devices.errors import EmulatorError

        if not is_loopback(args.host):
            if not args.allow_remote:
                raise EmulatorError(
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
                raise EmulatorError(f"--authorize-key {key}: no such file (give the host's "
                                    "adbkey.pub, e.g. ~/.android/adbkey.pub)")
            phone.authorize_key(key)
        with phone:
            out = phone.root / "adbd.out"
            print(f"emulated {args.arch} phone {phone.serial} on {phone.address} "
                  f"(sandbox {phone.sandbox})")
            print(f"  edgesdk:  adb:tcp:{phone.address}")
            print(f"  adb:      adb connect {phone.address}")
            print(f"  authorised keys: {phone.keys_file} (read at every connection) — "
                  f"{len(phone.authorized_keys) + 1} key(s), among them the phone's own host "
                  f"key {phone.host_key} (adb_key = \"{phone.host_key}\" in a device config); "
                  "add others with --authorize-key PATH.pub", flush=True)
            done = threading.Event()
            follower = threading.Thread(target=_follow, args=(out, out.stat().st_size, done),
                                        daemon=True)
            follower.start()
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
        print(f"emulated {args.arch} board: sshd on 127.0.0.1:{board.port} (files in "
              f"{board.root})")
        print("device config (add to ~/.config/edgesdk/devices.toml):\n")
        print(_toml_table(cfg))
        print("Ctrl-C stops it.", flush=True)
        _wait_forever("emulated board stopped")
    return 0


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
        p.add_argument("--runner", choices=("edge-run", "litert-python", "benchmark_model"),
                       help="force a runner (default: chosen per device and model)")
    p.add_argument("--accept-new-host-key", action="store_true",
                   help="trust and record an SSH host key seen for the first time")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("devices", help="list devices: the config file's, phones on USB, local")
    p.add_argument("--config", help="device config file")
    p.add_argument("--probe", action="store_true", help="connect and describe each device")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser("deploy", help="push a model and its runner to a device")
    _common(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("profile", help="time a model on a device")
    _common(p)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int)
    p.add_argument("--cpus", help="pin to CPUs, e.g. 4-7")
    p.add_argument("--no-layers", action="store_true", help="skip per-layer timing")
    p.add_argument("--top", type=int, default=20, help="layers to list")
    p.add_argument("--timeout", type=float, help="seconds for the run (default: the config's)")
    p.add_argument("--json", metavar="FILE", help="write the Profile as JSON (- for stdout)")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("validate", help="compare a device's outputs with this host's")
    _common(p)
    p.add_argument("--inputs", required=True, help=".npy/.npz samples (axis 0), or random[:N]")
    p.add_argument("--samples", type=int, help="use the first N samples")
    p.add_argument("--threads", type=int)
    p.add_argument("--min-sqnr", type=float, default=30.0, help="dB needed to pass if not exact")
    p.add_argument("--timeout", type=float)
    p.add_argument("--json", metavar="FILE", help="write the Validation as JSON (- for stdout)")
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
    p.set_defaults(func=cmd_emulate)
