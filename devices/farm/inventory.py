"""The farm inventory, `farm.toml`: boards, groups and defaults, validated on load.

A board is a device (`DeviceConfig`, the same keys as the device config file) plus what the farm
needs to schedule and measure it::

    [farm]
    database = "farm-results.sqlite"   # relative to this file
    retries = 2                        # per job, on transient faults
    quarantine_after = 3               # consecutive board failures
    job_timeout = 600                  # seconds
    health_timeout = 30

    [defaults]                         # every board gets these unless it says otherwise
    runs = 50
    warmup = 5
    min_duration = 1.0
    cooldown = 2.0

    [boards.rpi4-a]
    device = "ssh:pi@10.0.0.21"        # or transport + address
    arch = "aarch64"
    tags = { soc = "bcm2711", npu = "none", os = "debian12", board = "pi4" }
    runner = { python = "/home/pi/venv/bin/python" }
    cpus = "big"                       # or a taskset list "2-3"
    cooldown = 5
    max_jobs = 1
    host = "lab-a"                     # the Dask worker that owns it (multi-host farms)

    [groups]
    pi = ["rpi4-a", "rpi4-b"]
    arm = ["group:pi", "tag:os=android"]

Selectors (`--boards`): `name:X` (or a bare name), `group:G`, `tag:VALUE` (any tag key or value,
e.g. `tag:pi4`), `tag:KEY=VALUE`, `host:H`, `all`; comma-separated, united.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.devices.config import DeviceConfig, abi_for_arch
from sdk.devices.errors import DeviceConfigError

#: Keys of a board table that belong to the farm (the rest are DeviceConfig's).
FARM_BOARD_KEYS = ("arch", "tags", "cooldown", "max_jobs", "host", "runs", "warmup",
                   "min_duration", "disabled")
FARM_KEYS = ("database", "retries", "quarantine_after", "job_timeout", "health_timeout",
             "retry_backoff", "certs")


class FarmConfigError(DeviceConfigError):
    """farm.toml is malformed: names the file, the board (or group) and the field."""

    def __init__(self, message: str, *, path: str | None = None, board: str | None = None,
                 field: str | None = None, group: str | None = None):
        where = [str(path)] if path else []
        if board:
            where.append(f"board {board!r}")
        if group:
            where.append(f"group {group!r}")
        if field:
            where.append(f"field {field!r}")
        Exception.__init__(self, (", ".join(where) + ": " if where else "") + message)
        self.message = message
        self.path = path
        self.device = board
        self.board = board
        self.field = field


@dataclass(frozen=True)
class Measurement:
    """How a job measures (MLPerf-style: at least `runs` runs AND `min_duration_s` seconds)."""

    runs: int = 50
    warmup: int = 5
    min_duration_s: float = 1.0

    def __post_init__(self) -> None:
        if self.runs < 1 or self.warmup < 0 or self.min_duration_s < 0:
            raise ValueError("runs >= 1, warmup >= 0 and min_duration >= 0")


@dataclass(frozen=True)
class BoardConfig:
    """One board of the farm: its device settings plus scheduling and measurement settings."""

    device: DeviceConfig
    tags: Mapping[str, str] = field(default_factory=dict)
    cooldown_s: float = 0.0          #: pause between two jobs on this board
    max_jobs: int = 1                #: jobs at once on this board (its lease count)
    host: str | None = None          #: the Dask worker (host) the board hangs off
    measurement: Measurement = field(default_factory=Measurement)
    disabled: bool = False

    @property
    def name(self) -> str:
        return self.device.name

    @property
    def resource(self) -> str:
        """The Dask worker resource that stands for this board's leases."""
        return f"board-{self.name}"

    def matches_tag(self, selector: str) -> bool:
        key, sep, value = selector.partition("=")
        if sep:
            return self.tags.get(key) == value
        return selector in self.tags or selector in self.tags.values()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "device": self.device.to_dict(), "tags": dict(self.tags),
                "cooldown_s": self.cooldown_s, "max_jobs": self.max_jobs, "host": self.host,
                "measurement": dataclasses.asdict(self.measurement), "disabled": self.disabled}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BoardConfig:
        """Inverse of `to_dict` (boards travel to Dask workers this way)."""
        return cls(device=DeviceConfig.from_dict(d["name"], d["device"]),
                   tags=dict(d.get("tags", {})), cooldown_s=float(d.get("cooldown_s", 0.0)),
                   max_jobs=int(d.get("max_jobs", 1)), host=d.get("host"),
                   measurement=Measurement(**d.get("measurement", {})),
                   disabled=bool(d.get("disabled", False)))


@dataclass(frozen=True)
class FarmSettings:
    """The `[farm]` table."""

    database: Path | None = None      #: results database (None: beside farm.toml)
    retries: int = 2                  #: attempts after the first, on transient faults
    quarantine_after: int = 3         #: consecutive failures that take a board out
    job_timeout: float = 600.0        #: seconds, per job (the runner is killed past it)
    health_timeout: float = 30.0      #: seconds, per health check
    retry_backoff: float = 1.0        #: seconds before the first retry (doubles, max 30)
    certs: Path | None = None         #: TLS certificates of the Dask cluster (`farm certs`)


@dataclass(frozen=True)
class FarmConfig:
    """A parsed farm.toml."""

    path: Path | None
    boards: Mapping[str, BoardConfig]
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    settings: FarmSettings = field(default_factory=FarmSettings)

    @property
    def database(self) -> Path:
        if self.settings.database is not None:
            return self.settings.database
        base = self.path.parent if self.path else Path.cwd()
        stem = self.path.stem if self.path else "farm"
        return base / f"{stem}-results.sqlite"

    def select(self, selectors: str | Iterable[str] | None = None, *,
               include_disabled: bool = False) -> list[BoardConfig]:
        """The boards matching the selectors (all enabled boards for None), in file order."""
        if selectors is None:
            items = ["all"]
        elif isinstance(selectors, str):
            items = [s for s in selectors.split(",") if s.strip()]
        else:
            items = [s for x in selectors for s in x.split(",") if s.strip()]
        chosen: set[str] = set()
        for item in items:
            chosen |= self._resolve(item.strip(), set())
        out = [b for name, b in self.boards.items() if name in chosen]
        return out if include_disabled else [b for b in out if not b.disabled]

    def _resolve(self, item: str, seen: set[str]) -> set[str]:
        kind, sep, value = item.partition(":")
        if not sep:
            kind, value = ("all", "") if item == "all" else (
                ("group", item) if item in self.groups and item not in self.boards
                else ("name", item))
        if kind == "all":
            return set(self.boards)
        if kind == "name":
            if value not in self.boards:
                raise FarmConfigError(f"no board named {value!r}; boards: "
                                      f"{', '.join(self.boards) or 'none'}", path=self._p)
            return {value}
        if kind == "group":
            if value not in self.groups:
                raise FarmConfigError(f"no group named {value!r}; groups: "
                                      f"{', '.join(self.groups) or 'none'}", path=self._p)
            if value in seen:
                raise FarmConfigError("group includes itself", path=self._p, group=value)
            out: set[str] = set()
            for member in self.groups[value]:
                out |= self._resolve(member, seen | {value})
            return out
        if kind == "tag":
            found = {n for n, b in self.boards.items() if b.matches_tag(value)}
            if not found:
                raise FarmConfigError(f"no board has tag {value!r}", path=self._p)
            return found
        if kind == "host":
            return {n for n, b in self.boards.items() if b.host == value}
        raise FarmConfigError(f"bad board selector {item!r}: use name:X, group:G, tag:T, "
                              "tag:KEY=VALUE, host:H or all", path=self._p)

    @property
    def _p(self) -> str | None:
        return str(self.path) if self.path else None


# ---------------------------------------------------------------------------- loading
def load_farm(path: str | os.PathLike[str]) -> FarmConfig:
    """Read and validate farm.toml."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FarmConfigError("file not found", path=str(file))
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise FarmConfigError(f"cannot parse TOML: {exc}", path=str(file)) from exc
    return parse_farm(data, path=file)


def parse_farm(data: Mapping[str, Any], *, path: str | os.PathLike[str] | None = None
               ) -> FarmConfig:
    """A FarmConfig from an already-parsed TOML document."""
    p = str(path) if path is not None else None
    unknown = set(data) - {"farm", "defaults", "boards", "groups"}
    if unknown:
        raise FarmConfigError(f"unknown top-level tables {sorted(unknown)}; use [farm], "
                              "[defaults], [boards.NAME], [groups]", path=p)
    settings = _settings(_table(data.get("farm", {}), p, "farm"), p,
                         Path(path).parent if path is not None else None)
    defaults = _table(data.get("defaults", {}), p, "defaults")
    boards_table = _table(data.get("boards", {}), p, "boards")
    if not boards_table:
        raise FarmConfigError("no boards: add [boards.NAME] tables", path=p)
    boards = {}
    for name, table in boards_table.items():
        if not isinstance(table, Mapping):
            raise FarmConfigError("expected a table", path=p, board=name)
        boards[name] = _board(name, {**defaults, **table}, p)
    groups: dict[str, tuple[str, ...]] = {}
    for name, members in _table(data.get("groups", {}), p, "groups").items():
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise FarmConfigError("a group is a list of board names or selectors", path=p,
                                  group=name)
        if name in boards:
            raise FarmConfigError("a group cannot have a board's name", path=p, group=name)
        groups[name] = tuple(members)
    config = FarmConfig(path=Path(path) if path is not None else None, boards=boards,
                        groups=groups, settings=settings)
    for name in groups:  # every member must resolve (names, tags, nested groups)
        try:
            config.select(f"group:{name}", include_disabled=True)
        except FarmConfigError as exc:
            raise FarmConfigError(exc.message, path=p, group=name) from None
    return config


def _table(value: Any, path: str | None, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FarmConfigError(f"[{what}] must be a table", path=path)
    return value


def _number(value: Any, *, path: str | None, board: str | None, key: str, integer: bool = False,
            minimum: float = 0) -> Any:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise FarmConfigError(f"expected {'an integer' if integer else 'a number'}, got "
                              f"{type(value).__name__} {value!r}", path=path, board=board,
                              field=key)
    if value < minimum:
        raise FarmConfigError(f"must be >= {minimum:g}, got {value!r}", path=path, board=board,
                              field=key)
    return int(value) if integer else float(value)


def _settings(table: Mapping[str, Any], path: str | None, base: Path | None) -> FarmSettings:
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        where = {"path": path, "board": None, "key": f"farm.{key}"}
        if key in ("database", "certs"):
            if not isinstance(value, str) or not value:
                raise FarmConfigError("expected a " + ("folder" if key == "certs" else "file")
                                      + " path", path=path, field=f"farm.{key}")
            given = Path(value).expanduser()
            kwargs[key] = given if given.is_absolute() or base is None else base / given
        elif key in ("retries", "quarantine_after"):
            kwargs[key] = _number(value, integer=True, minimum=0 if key == "retries" else 1,
                                  **where)
        elif key in ("job_timeout", "health_timeout", "retry_backoff"):
            kwargs[key] = _number(value, **where)
        else:
            raise FarmConfigError(f"unknown key; known: {', '.join(FARM_KEYS)}", path=path,
                                  field=f"farm.{key}")
    return FarmSettings(**kwargs)


def _board(name: str, table: Mapping[str, Any], path: str | None) -> BoardConfig:
    farm = {k: v for k, v in table.items() if k in FARM_BOARD_KEYS}
    device_table = {k: v for k, v in table.items() if k not in FARM_BOARD_KEYS}
    where = {"path": path, "board": name}
    if "arch" in farm:
        arch = farm["arch"]
        abi = abi_for_arch(arch) if isinstance(arch, str) else None
        if abi is None:
            raise FarmConfigError(f"unknown arch {arch!r}; use aarch64, armv7 or x86_64 (or an "
                                  "Android ABI name)", field="arch", **where)
        if "abi" in device_table and abi_for_arch(str(device_table["abi"])) != abi:
            raise FarmConfigError(f"arch {arch!r} contradicts abi {device_table['abi']!r}",
                                  field="arch", **where)
        device_table["abi"] = abi
    try:
        device = DeviceConfig.from_dict(name, device_table, path=path)
        if device.transport == "ssh":  # addresses are checked when used: check them now
            device.ssh_target()
        elif device.transport == "adb":
            device.adb_tcp()
    except FarmConfigError:
        raise
    except DeviceConfigError as exc:
        raise FarmConfigError(_bare_message(exc), field=exc.field, **where) from None
    tags = farm.get("tags", {})
    if isinstance(tags, list):
        if not all(isinstance(t, str) for t in tags):
            raise FarmConfigError("tags are strings", field="tags", **where)
        tags = {t: "" for t in tags}
    if not isinstance(tags, Mapping) or not all(isinstance(v, str) for v in tags.values()):
        raise FarmConfigError("tags are a table of strings (soc = \"rk3588\") or a list",
                              field="tags", **where)
    host = farm.get("host")
    if host is not None and (not isinstance(host, str) or not host):
        raise FarmConfigError("expected a host name", field="host", **where)
    disabled = farm.get("disabled", False)
    if not isinstance(disabled, bool):
        raise FarmConfigError("expected true or false", field="disabled", **where)
    measurement = Measurement(
        runs=_number(farm.get("runs", 50), integer=True, minimum=1, key="runs", **where),
        warmup=_number(farm.get("warmup", 5), integer=True, key="warmup", **where),
        min_duration_s=_number(farm.get("min_duration", 1.0), key="min_duration", **where))
    cpus = device.cpus
    if cpus is not None and cpus.strip().lower() not in ("big", "little") and \
            not _is_cpu_list(cpus):
        raise FarmConfigError(f"cpus must be a taskset list (\"0-3\", \"4,5\"), \"big\" or "
                              f"\"little\", got {cpus!r}", field="cpus", **where)
    return BoardConfig(
        device=device, tags=dict(tags),
        cooldown_s=_number(farm.get("cooldown", 0.0), key="cooldown", **where),
        max_jobs=_number(farm.get("max_jobs", 1), integer=True, minimum=1, key="max_jobs",
                         **where),
        host=host, measurement=measurement, disabled=disabled)


def _bare_message(exc: DeviceConfigError) -> str:
    """The message of a DeviceConfigError without its "file, device 'x', field 'y': " prefix."""
    where = [str(exc.path)] if exc.path else []
    if exc.device:
        where.append(f"device {exc.device!r}")
    if exc.field:
        where.append(f"field {exc.field!r}")
    prefix = ", ".join(where) + ": " if where else ""
    text = str(exc)
    return text[len(prefix):] if prefix and text.startswith(prefix) else text


def _is_cpu_list(text: str) -> bool:
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            return False
    return True
