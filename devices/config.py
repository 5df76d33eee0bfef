"""Device strings and the user's device config file, as plain dataclasses.

A device is named by a string::

    adb:SERIAL              a phone on USB (or an adb serial such as emulator-5554)
    adb                     the one phone on USB (an error when several are attached)
    adb:tcp:HOST:PORT       a phone over TCP (adb tcpip / an emulated phone)
    ssh:user@host[:port]    a board over SSH (host may be an alias from ~/.ssh/config)
    local                   this machine
    NAME                    a [devices.NAME] table of the device config file

The config file is TOML, `$EDGESDK_DEVICES` or `~/.config/edgesdk/devices.toml`::

    [devices.rpi4]
    transport = "ssh"
    address = "pi@rpi4.local"
    abi = "arm64-v8a"
    cpus = "2-3"
    runner = { python = "/home/pi/venv/bin/python" }

    [devices.vim3]
    transport = "ssh"
    address = "khadas@vim3:22"
    delegates = [{ name = "vx", path = "/usr/lib/libvx_delegate.so" }]

    [devices.pixel]
    transport = "adb"
    address = "1A2B3C4D"
    runner = { benchmark_model = "~/android/benchmark_model_arm64" }

`DeviceConfig` is the one model of a device's settings: the board farm reads the same tables.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.devices.errors import DeviceConfigError
from sdk.devices.npu import NpuConfig, npu_from_table

#: The transports we speak.
TRANSPORTS = ("adb", "ssh", "local")

#: Android ABI names; edge-run is built for each of these.
ABIS = ("arm64-v8a", "armeabi-v7a", "x86_64")

# uname -m / Python's platform.machine() / our arch names -> ABI
_ARCH_TO_ABI = {
    "aarch64": "arm64-v8a", "arm64": "arm64-v8a", "armv8": "arm64-v8a", "arm64-v8a": "arm64-v8a",
    "armv7": "armeabi-v7a", "armv7l": "armeabi-v7a", "armv8l": "armeabi-v7a", "arm": "armeabi-v7a",
    "armhf": "armeabi-v7a", "armeabi-v7a": "armeabi-v7a",
    "x86_64": "x86_64", "amd64": "x86_64", "x86-64": "x86_64",
}


#: environment variable names passed to runs: POSIX names only. Anything else reaches `env` as
#: an option (`-S...`, `--split-string=...` make env run a command of the key's choosing).
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_env(env: Mapping[str, str], *, device: str | None = None, path: str | None = None,
              field: str = "env") -> None:
    """Refuse environment names that are not POSIX names, and values holding a NUL byte (no
    command line can carry one). Values are otherwise free: they are passed shell-quoted."""
    for key, value in env.items():
        if not isinstance(key, str) or not ENV_NAME.fullmatch(key):
            raise DeviceConfigError(f"environment name {key!r} is not a POSIX name "
                                    "([A-Za-z_][A-Za-z0-9_]*)", path=path, device=device,
                                    field=f"{field}.{key}")
        if not isinstance(value, str) or "\0" in value:
            raise DeviceConfigError(f"the value of {key} must be a string without NUL bytes",
                                    path=path, device=device, field=f"{field}.{key}")


def abi_for_arch(arch: str) -> str | None:
    """The Android ABI name for an architecture name (`uname -m`, `aarch64`, `armv7`...)."""
    return _ARCH_TO_ABI.get(arch.strip().lower())


@dataclass(frozen=True)
class DelegateConfig:
    """A TFLite external delegate on the device (an NPU vendor's, e.g. VX or Edge TPU)."""

    path: str                                   #: the shared library, a path on the device
    name: str = ""                              #: for reports: "vx", "edgetpu"...
    options: Mapping[str, str] = field(default_factory=dict)  #: passed to the delegate


@dataclass(frozen=True)
class RunnerConfig:
    """How models run on the device. Unset fields are found out (probed) or defaulted."""

    #: Python on the device with ai-edge-litert or tflite-runtime, for .tflite models.
    python: str | None = None
    #: a TFLite `benchmark_model` binary: a host path (pushed) or `device:/path` on the device.
    benchmark_model: str | None = None
    #: an `edge-run` binary to use instead of ours: a host path (pushed) or `device:/path`.
    edge_run: str | None = None
    #: force a LiteRT backend on the device: ai_edge_litert, tflite_runtime or tensorflow.
    litert_backend: str | None = None
    #: let LiteRT apply its default XNNPACK delegate (False: builtin reference kernels).
    xnnpack: bool = True


@dataclass(frozen=True)
class DeviceConfig:
    """Everything we know about one device before connecting to it."""

    name: str
    transport: str                      #: "adb", "ssh" or "local"
    address: str = ""                   #: adb: SERIAL or tcp:HOST:PORT; ssh: [user@]host[:port]
    abi: str | None = None              #: arm64-v8a, armeabi-v7a, x86_64 (None: ask the device)
    #: run device-ABI binaries through this (e.g. ["qemu-aarch64-static", "-cpu", "max"])
    exec_prefix: tuple[str, ...] = ()
    workdir: str | None = None          #: where we put files (None: a per-transport default)
    cpus: str | None = None             #: pin runs to these CPUs (taskset list: "4-7", "0,2")
    threads: int | None = None          #: default interpreter threads
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    delegates: tuple[DelegateConfig, ...] = ()
    #: the board's NPU stack (Ethos-U / VX / any LiteRT delegate / RKNN): sdk.devices.npu
    npu: NpuConfig | None = None
    env: Mapping[str, str] = field(default_factory=dict)  #: extra environment for runs
    timeout: float = 600.0              #: default time limit of one run, seconds
    connect_timeout: float = 15.0       #: seconds
    retries: int = 2                    #: reconnect-and-retry attempts after a dropped link
    # ---- ssh
    identity_file: str | None = None    #: a private key (default: agent + ~/.ssh/id_*)
    known_hosts: str | None = None      #: default ~/.ssh/known_hosts
    #: trust and record an unknown host key (never a changed one)
    accept_new_host_key: bool = False
    ssh_config: str | None = None       #: default ~/.ssh/config
    jump: str | None = None             #: a jump host, [user@]host[:port] (ProxyJump)
    # ---- adb
    adb_key: str | None = None          #: private key (default: our config dir's adbkey)
    #: free text for reports, e.g. "emulated: qemu-aarch64 on x86_64"
    description: str = ""

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise DeviceConfigError(f"unknown transport {self.transport!r}; use one of "
                                    f"{', '.join(TRANSPORTS)}", device=self.name,
                                    field="transport")
        if self.abi is not None and self.abi not in ABIS:
            fixed = abi_for_arch(self.abi)
            if fixed is None:
                raise DeviceConfigError(f"unknown ABI {self.abi!r}; use one of {', '.join(ABIS)}",
                                        device=self.name, field="abi")
            object.__setattr__(self, "abi", fixed)
        if self.transport == "ssh" and not self.address:
            raise DeviceConfigError("an ssh device needs an address ([user@]host[:port])",
                                    device=self.name, field="address")
        if self.threads is not None and self.threads < 1:
            raise DeviceConfigError("threads must be >= 1", device=self.name, field="threads")
        check_env(self.env, device=self.name)

    # -- address parts -----------------------------------------------------------------------
    @property
    def device_string(self) -> str:
        """The device string that names this device (`adb:SERIAL`, `ssh:user@host:22`...)."""
        return "local" if self.transport == "local" else (
            f"{self.transport}:{self.address}" if self.address else self.transport)

    def ssh_target(self) -> tuple[str | None, str, int | None]:
        """(user, host, port) from an ssh address `[user@]host[:port]` (port None: default)."""
        return split_user_host_port(self.address, device=self.name)

    def adb_tcp(self) -> tuple[str, int] | None:
        """(host, port) when this is an adb device over TCP, else None."""
        if not self.address.startswith("tcp:"):
            return None
        host, _, port = self.address[4:].rpartition(":")
        if not host or not port.isdigit():
            raise DeviceConfigError(f"adb TCP address must be tcp:HOST:PORT, got {self.address!r}",
                                    device=self.name, field="address")
        return host.strip("[]"), int(port)

    def replace(self, **changes: Any) -> DeviceConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A TOML/JSON-friendly dict (what `from_dict` reads back)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "name" or value == f.default or (
                    f.default_factory is not dataclasses.MISSING  # type: ignore[misc]
                    and value == f.default_factory()):  # type: ignore[misc]
                continue
            if f.name == "runner":
                value = {k: v for k, v in dataclasses.asdict(value).items()
                         if v != getattr(RunnerConfig(), k)}
            elif f.name == "delegates":
                value = [{"path": d.path, "name": d.name, "options": dict(d.options)}
                         for d in value]
            elif f.name == "npu":
                value = value.to_dict()
            elif f.name == "exec_prefix":
                value = list(value)
            elif f.name == "env":
                value = dict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, name: str, table: Mapping[str, Any], *,
                  path: str | None = None) -> DeviceConfig:
        """Build from a TOML table; unknown keys and wrong types are errors naming the field."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {"name": name}
        table = dict(table)
        if "device" in table:  # shorthand: device = "ssh:pi@host:22"
            parsed = parse_device_string(str(table.pop("device")))
            kwargs["transport"], kwargs["address"] = parsed.transport, parsed.address
        for key, value in table.items():
            if key not in known or key == "name":
                raise DeviceConfigError(f"unknown key; known keys: {', '.join(sorted(known))}",
                                        path=path, device=name, field=key)
            kwargs[key] = _convert(key, value, path=path, device=name)
        if "transport" not in kwargs:
            raise DeviceConfigError("missing 'transport' (adb, ssh or local) or 'device'",
                                    path=path, device=name, field="transport")
        try:
            return cls(**kwargs)
        except DeviceConfigError as exc:
            if path and exc.path is None:
                raise DeviceConfigError(str(exc).split(": ", 1)[-1], path=path, device=name,
                                        field=exc.field) from None
            raise


def _expect(kind: type | tuple[type, ...], value: Any, *, path: str | None, device: str,
            key: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DeviceConfigError(f"expected {names}, got {type(value).__name__} {value!r}",
                                path=path, device=device, field=key)
    return value


def _convert(key: str, value: Any, *, path: str | None, device: str) -> Any:
    where = {"path": path, "device": device}
    if key == "exec_prefix":
        if isinstance(value, str):
            return tuple(shlex.split(value))
        _expect(list, value, key=key, **where)
        return tuple(str(_expect(str, v, key=key, **where)) for v in value)
    if key == "runner":
        _expect(dict, value, key=key, **where)
        names = {f.name for f in dataclasses.fields(RunnerConfig)}
        for k in value:
            if k not in names:
                raise DeviceConfigError(f"unknown runner key; known: {', '.join(sorted(names))}",
                                        field=f"runner.{k}", **where)
        if "xnnpack" in value:
            _expect(bool, value["xnnpack"], key="runner.xnnpack", **where)
        return RunnerConfig(**value)
    if key == "delegates":
        _expect(list, value, key=key, **where)
        out = []
        for i, d in enumerate(value):
            _expect(dict, d, key=f"delegates[{i}]", **where)
            if "path" not in d:
                raise DeviceConfigError("a delegate needs a 'path' (on the device)",
                                        field=f"delegates[{i}]", **where)
            extra = set(d) - {"path", "name", "options"}
            if extra:
                raise DeviceConfigError(f"unknown delegate keys {sorted(extra)}",
                                        field=f"delegates[{i}]", **where)
            options = {str(k): str(v) for k, v in dict(d.get("options", {})).items()}
            out.append(DelegateConfig(path=str(d["path"]), name=str(d.get("name", "")),
                                      options=options))
        return tuple(out)
    if key == "npu":
        return npu_from_table(value, **where)
    if key == "env":
        _expect(dict, value, key=key, **where)
        env = {str(k): str(v) for k, v in value.items()}
        check_env(env, **where)
        return env
    if key in ("threads", "retries"):
        return _expect(int, value, key=key, **where)
    if key in ("timeout", "connect_timeout"):
        return float(_expect((int, float), value, key=key, **where))
    if key == "accept_new_host_key":
        return _expect(bool, value, key=key, **where)
    if key == "cpus" and isinstance(value, int):
        return str(value)
    return _expect(str, value, key=key, **where)


def split_user_host_port(address: str, *, device: str | None = None
                         ) -> tuple[str | None, str, int | None]:
    """`[user@]host[:port]` (IPv6 hosts in brackets) -> (user, host, port)."""
    user, _, hostport = address.rpartition("@")
    host, port = hostport, None
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        if rest.startswith(":"):
            port = rest[1:]
    elif hostport.count(":") == 1:
        host, port = hostport.split(":")
    if not host:
        raise DeviceConfigError(f"no host in {address!r}", device=device, field="address")
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        raise DeviceConfigError(f"bad port {port!r} in {address!r}", device=device,
                                field="address")
    return (user or None), host, (int(port) if port is not None else None)


def parse_device_string(text: str) -> DeviceConfig:
    """A DeviceConfig for `adb:SERIAL`, `adb:tcp:HOST:PORT`, `ssh:user@host[:port]`, `local`.

    Names from the config file are resolved by `resolve_device`, not here.
    """
    text = text.strip()
    if text == "local":
        return DeviceConfig(name="local", transport="local")
    transport, sep, address = text.partition(":")
    if not sep and transport == "adb":
        return DeviceConfig(name="adb", transport="adb")
    if transport == "adb":
        config = DeviceConfig(name=text, transport="adb", address=address)
        config.adb_tcp()  # validates tcp:HOST:PORT
        return config
    if transport == "ssh":
        if not address:
            raise DeviceConfigError("ssh device strings are ssh:[user@]host[:port]",
                                    device=text)
        split_user_host_port(address, device=text)
        return DeviceConfig(name=text, transport="ssh", address=address)
    raise DeviceConfigError(
        "not a device string: use adb:SERIAL, adb:tcp:HOST:PORT, ssh:user@host[:port], local, "
        "or a device name from the config file", device=text)


# ---------------------------------------------------------------------------- the config file
def config_dir() -> Path:
    """~/.config/edgesdk (honours $XDG_CONFIG_HOME): our ADB key and devices.toml live here."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "edgesdk"


def default_config_path() -> Path:
    env = os.environ.get("EDGESDK_DEVICES")
    return Path(env).expanduser() if env else config_dir() / "devices.toml"


def _toml_loads(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)


@dataclass(frozen=True)
class DeviceConfigFile:
    """The parsed device config file: named devices, in file order."""

    path: str | None
    devices: Mapping[str, DeviceConfig]

    def __contains__(self, name: object) -> bool:
        return name in self.devices

    def __getitem__(self, name: str) -> DeviceConfig:
        return self.devices[name]


def load_device_config(path: str | os.PathLike[str] | None = None, *,
                       missing_ok: bool = True) -> DeviceConfigFile:
    """Read the device config file (default: $EDGESDK_DEVICES or ~/.config/edgesdk/devices.toml)."""
    file = Path(path).expanduser() if path is not None else default_config_path()
    if not file.exists():
        if missing_ok and path is None:
            return DeviceConfigFile(path=None, devices={})
        raise DeviceConfigError("file not found", path=str(file))
    try:
        data = _toml_loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise DeviceConfigError(f"cannot parse TOML: {exc}", path=str(file)) from exc
    return parse_device_tables(data, path=str(file))


def parse_device_tables(data: Mapping[str, Any], *, path: str | None = None) -> DeviceConfigFile:
    """The `[devices.NAME]` tables of an already-parsed TOML document."""
    unknown = set(data) - {"devices"}
    if unknown:
        raise DeviceConfigError(f"unknown top-level keys {sorted(unknown)}; devices go in "
                                "[devices.NAME] tables", path=path)
    tables = data.get("devices", {})
    if not isinstance(tables, Mapping):
        raise DeviceConfigError("'devices' must be a table of [devices.NAME] tables", path=path)
    devices = {}
    for name, table in tables.items():
        if not isinstance(table, Mapping):
            raise DeviceConfigError("expected a table", path=path, device=name)
        if name in ("local", "adb", "ssh"):
            raise DeviceConfigError("this name is reserved for device strings", path=path,
                                    device=name)
        devices[name] = DeviceConfig.from_dict(name, table, path=path)
    return DeviceConfigFile(path=path, devices=devices)


def resolve_device(spec: str | DeviceConfig, *, config: DeviceConfigFile | str | os.PathLike[str]
                   | None = None) -> DeviceConfig:
    """A DeviceConfig from a device string, a config-file name, or a DeviceConfig (returned)."""
    if isinstance(spec, DeviceConfig):
        return spec
    if not isinstance(config, DeviceConfigFile):
        config = load_device_config(config)
    if spec in config:
        return config[spec]
    try:
        return parse_device_string(spec)
    except DeviceConfigError:
        if ":" not in spec and spec not in ("adb", "local"):
            where = config.path or str(default_config_path())
            known = ", ".join(config.devices) or "none"
            raise DeviceConfigError(
                f"no device named {spec!r} in {where} (devices there: {known}); or use a device "
                "string: adb:SERIAL, adb:tcp:HOST:PORT, ssh:user@host[:port], local",
                device=spec) from None
        raise
