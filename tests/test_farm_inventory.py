"""farm.toml: boards extend the device config, groups and selectors, errors naming board and
field; the results database; the scheduler's retry / quarantine / time-limit policy."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest
from farm_support import toml_dumps

from sdk.devices import DeviceConfig
from sdk.devices.farm import (
    BoardConfig,
    FarmConfigError,
    JobResult,
    JobSettings,
    ModelInfo,
    ResultStore,
    load_farm,
    parse_farm,
)
from sdk.devices.farm.inventory import FarmSettings
from sdk.devices.farm.jobs import Job, board_fingerprint
from sdk.devices.farm.results import Bounds
from sdk.devices.farm.scheduler import FarmScheduler

FARM = """
[farm]
database = "results/farm.sqlite"
retries = 1
quarantine_after = 2

[defaults]
runs = 20
warmup = 3
min_duration = 0.5
cooldown = 1.5

[boards.rpi4-a]
device = "ssh:pi@10.0.0.21"
arch = "aarch64"
tags = { soc = "bcm2711", npu = "none", os = "debian12", board = "pi4" }
runner = { python = "/home/pi/venv/bin/python" }
cpus = "big"
host = "lab-a"

[boards.rpi4-b]
transport = "ssh"
address = "pi@10.0.0.22:2222"
arch = "aarch64"
tags = ["pi4", "spare"]
cooldown = 5
runs = 100

[boards.vim3]
device = "ssh:khadas@vim3"
arch = "aarch64"
tags = { soc = "a311d", npu = "vx" }
delegates = [{ name = "vx", path = "/usr/lib/libvx_delegate.so" }]
max_jobs = 2
host = "lab-b"

[boards.pixel7]
device = "adb:tcp:127.0.0.1:5555"
tags = { soc = "tensor-g2", os = "android14" }
exec_prefix = ["qemu-aarch64-static", "-cpu", "max"]

[boards.old]
transport = "local"
disabled = true

[groups]
pi = ["rpi4-a", "rpi4-b"]
arm = ["group:pi", "tag:npu=vx", "pixel7"]
"""


@pytest.fixture
def farm_file(tmp_path: Path) -> Path:
    path = tmp_path / "farm.toml"
    path.write_text(FARM)
    return path


def test_boards_are_device_configs_plus_farm_settings(farm_file: Path) -> None:
    farm = load_farm(farm_file)
    a = farm.boards["rpi4-a"]
    assert isinstance(a.device, DeviceConfig)
    assert (a.device.transport, a.device.address, a.device.abi) == ("ssh", "pi@10.0.0.21",
                                                                     "arm64-v8a")
    assert a.device.runner.python == "/home/pi/venv/bin/python" and a.device.cpus == "big"
    assert a.tags["board"] == "pi4" and a.host == "lab-a" and a.max_jobs == 1
    # defaults apply, the board's own values win
    assert (a.measurement.runs, a.measurement.warmup, a.measurement.min_duration_s,
            a.cooldown_s) == (20, 3, 0.5, 1.5)
    b = farm.boards["rpi4-b"]
    assert (b.measurement.runs, b.cooldown_s, b.device.address) == (100, 5.0, "pi@10.0.0.22:2222")
    assert b.tags == {"pi4": "", "spare": ""}
    vim3 = farm.boards["vim3"]
    assert vim3.max_jobs == 2 and vim3.device.delegates[0].name == "vx"
    assert farm.boards["pixel7"].device.exec_prefix == ("qemu-aarch64-static", "-cpu", "max")
    assert farm.database == farm_file.parent / "results" / "farm.sqlite"
    assert (farm.settings.retries, farm.settings.quarantine_after) == (1, 2)
    # a board travels to Dask workers as a dict and comes back the same
    assert BoardConfig.from_dict(vim3.to_dict()) == vim3


def test_selectors(farm_file: Path) -> None:
    farm = load_farm(farm_file)

    def names(sel: object) -> list[str]:
        return [b.name for b in farm.select(sel)]  # type: ignore[arg-type]

    assert names(None) == ["rpi4-a", "rpi4-b", "vim3", "pixel7"]  # disabled left out
    assert names("tag:pi4") == ["rpi4-a", "rpi4-b"]               # a tag value or a tag key
    assert names("tag:pi4,name:pixel7") == ["rpi4-a", "rpi4-b", "pixel7"]
    assert names("tag:npu=vx") == ["vim3"]
    assert names("group:arm") == ["rpi4-a", "rpi4-b", "vim3", "pixel7"]
    assert names("pi") == ["rpi4-a", "rpi4-b"]                    # a bare group name
    assert names("host:lab-b") == ["vim3"]
    assert names(["vim3", "rpi4-b"]) == ["rpi4-b", "vim3"]        # file order
    assert [b.name for b in farm.select("old", include_disabled=True)] == ["old"]
    with pytest.raises(FarmConfigError, match=r"no board named 'nope'.*rpi4-a"):
        farm.select("name:nope")
    with pytest.raises(FarmConfigError, match="no board has tag 'jetson'"):
        farm.select("tag:jetson")
    with pytest.raises(FarmConfigError, match="bad board selector"):
        farm.select("soc:rk3588")


@pytest.mark.parametrize(("edit", "board", "field", "message"), [
    (("[boards.vim3]", "[boards.vim3]\ncooldown = -1"), "vim3", "cooldown", "must be >= 0"),
    (("max_jobs = 2", "max_jobs = 0"), "vim3", "max_jobs", "must be >= 1"),
    (("max_jobs = 2", "max_jobs = 1.5"), "vim3", "max_jobs", "expected an integer"),
    (('arch = "aarch64"\ntags = { soc = "a311d"', 'arch = "sparc"\ntags = { soc = "a311d"'),
     "vim3", "arch", "unknown arch 'sparc'"),
    (('cpus = "big"', 'cpus = "fast ones"'), "rpi4-a", "cpus", "taskset list"),
    (('cpus = "big"', 'cpu = "big"'), "rpi4-a", "cpu", "unknown key"),
    (('runner = { python', 'runner = { pyton'), "rpi4-a", "runner.pyton", "unknown runner key"),
    (('device = "adb:tcp:127.0.0.1:5555"', 'device = "adb:tcp:127.0.0.1"'), "pixel7", None,
     "tcp:HOST:PORT"),
    (("tags = [\"pi4\", \"spare\"]", "tags = 7"), "rpi4-b", "tags", "tags are"),
    (('address = "pi@10.0.0.22:2222"', 'address = "pi@10.0.0.22:99999"'), "rpi4-b", "address",
     "bad port"),
    (("runs = 100", "runs = 0"), "rpi4-b", "runs", "must be >= 1"),
])
def test_errors_name_the_board_and_field(tmp_path: Path, edit: tuple[str, str], board: str,
                                         field: str | None, message: str) -> None:
    assert edit[0] in FARM
    path = tmp_path / "farm.toml"
    path.write_text(FARM.replace(edit[0], edit[1], 1))
    with pytest.raises(FarmConfigError) as info:
        load_farm(path)
    text = str(info.value)
    assert str(path) in text and f"board {board!r}" in text and message in text
    if field is not None:
        assert f"field {field!r}" in text


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(FarmConfigError, match="file not found"):
        load_farm(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[boards.a\n")
    with pytest.raises(FarmConfigError, match="cannot parse TOML"):
        load_farm(bad)
    with pytest.raises(FarmConfigError, match="no boards"):
        parse_farm({"defaults": {"runs": 3}})
    with pytest.raises(FarmConfigError, match=r"unknown top-level tables \['board'\]"):
        parse_farm({"board": {}})
    with pytest.raises(FarmConfigError, match=r"group 'g'.*no board named 'zz'"):
        parse_farm({"boards": {"a": {"transport": "local"}}, "groups": {"g": ["zz"]}})
    with pytest.raises(FarmConfigError, match=r"field 'farm.retries'"):
        parse_farm({"farm": {"retries": "x"}, "boards": {"a": {"transport": "local"}}})
    with pytest.raises(FarmConfigError, match=r"board 'a'.*field 'transport'"):
        parse_farm({"boards": {"a": {"address": "x"}}})


def test_toml_helper_round_trips(farm_file: Path) -> None:
    import tomllib

    data = tomllib.loads(FARM)
    assert tomllib.loads(toml_dumps(data)) == data


# ---------------------------------------------------------------------------- results store
def _job(tmp_path: Path, board: str = "a", runs: int = 5) -> Job:
    model = tmp_path / "m.tflite"
    if not model.exists():
        model.write_bytes(b"not really a model")
    info = ModelInfo(path=str(model), name=model.name, sha256="ab" * 32, size_bytes=18,
                     format="tflite", precision="int8")
    b = BoardConfig(device=DeviceConfig(name=board, transport="local"))
    return Job(model=info, board=board, settings=JobSettings(runs=runs),
               board_fingerprint=board_fingerprint(b), timeout_s=5.0)


def test_store_is_wal_and_keeps_newest(tmp_path: Path) -> None:
    job = _job(tmp_path)
    assert job.key != _job(tmp_path, runs=6).key != _job(tmp_path, board="b").key
    with ResultStore(tmp_path / "r.sqlite") as store:
        run = store.begin_run(farm=None, backend="asyncio", request={})
        base = dict(job_key=job.key, model=job.model, board="a", settings=job.settings,
                    attempts=1, started=time.time(), finished=time.time(), run_id=run)
        store.record(JobResult(status="failed", error="boom", error_type="X", **base))
        assert store.done([job.key]) == {}
        assert store.latest([job.key])[job.key].error == "boom"
        store.record(JobResult(status="ok", **base))
        assert store.done([job.key])[job.key].ok
        store.event(run, "a", "quarantined", "why")
        assert [e.kind for e in store.events(run)] == ["quarantined"]
    raw = sqlite3.connect(tmp_path / "r.sqlite")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("SELECT count(*) FROM results").fetchone()[0] == 2


# ---------------------------------------------------------------------------- policy
class ScriptedExecutor:
    """Answers health checks and jobs from a script (the scheduler's policy under test; the
    farm tests drive real boards)."""

    name = "scripted"

    def __init__(self, health: list[dict], jobs: list[dict]):
        self.health_answers, self.job_answers = health, jobs
        self.calls: list[str] = []
        self.timeouts: list[float] = []
        self.aborted = 0

    async def health(self, board, timeout):
        self.calls.append("health")
        return self.health_answers.pop(0) if self.health_answers else {"ok": True}

    async def run(self, board, job, timeout):
        self.calls.append("run")
        self.timeouts.append(timeout)
        answer = self.job_answers.pop(0)
        if answer.get("hang"):  # what an executor answers when the job outlives `timeout`
            return {"ok": False, "error": f"no answer within {timeout} s",
                    "error_type": "timeout", "transient": True, "board_fault": True}
        return answer

    async def abort(self, board):
        self.aborted += 1

    async def close(self):
        pass


_DROP = {"ok": False, "error": "link lost", "error_type": "DeviceConnectionError",
         "transient": True, "board_fault": True}
_BAD_MODEL = {"ok": False, "error": "model does not load", "error_type": "RunnerError",
              "transient": False, "board_fault": False}


def _schedule(tmp_path: Path, executor: ScriptedExecutor, jobs: list[Job], **settings):
    board = BoardConfig(device=DeviceConfig(name="a", transport="local"))
    with ResultStore(tmp_path / "p.sqlite") as store:
        run = store.begin_run(farm=None, backend="x", request={})
        sched = FarmScheduler([board], executor, store, run,
                              FarmSettings(retry_backoff=0.01, **settings))
        results = asyncio.run(sched.run(jobs))
        return results, sched, store.count()


def test_transient_faults_are_retried_permanent_ones_are_not(tmp_path: Path,
                                                             monkeypatch) -> None:
    from sdk.devices.farm import scheduler as mod

    ok = {"ok": True, "profile": None}
    monkeypatch.setattr(mod.Profile, "from_dict", staticmethod(lambda d: None))
    jobs = [_job(tmp_path, runs=n) for n in (1, 2)]
    ex = ScriptedExecutor(health=[], jobs=[_DROP, ok, _BAD_MODEL])
    results, sched, stored = _schedule(tmp_path, ex, jobs, retries=2, quarantine_after=5)
    assert [r.status for r in results] == ["ok", "failed"]
    assert results[0].attempts == 2 and results[1].attempts == 1
    assert results[1].error_type == "RunnerError" and stored == 2
    # health check first, again after the dropped link, none after the model's own failure
    assert ex.calls == ["health", "run", "health", "run", "run"]
    assert [e.kind for e in sched.events] == ["retry"]


def test_repeated_faults_quarantine_the_board(tmp_path: Path) -> None:
    jobs = [_job(tmp_path, runs=n) for n in (1, 2, 3)]
    down = {"ok": False, "error": "connection refused", "error_type": "DeviceConnectionError",
            "transient": True, "board_fault": True}
    ex = ScriptedExecutor(health=[{"ok": True}, down, down, down], jobs=[_DROP])
    results, sched, stored = _schedule(tmp_path, ex, jobs, retries=5, quarantine_after=3)
    assert [r.status for r in results] == ["failed"] * 3 and stored == 3
    assert all(r.error_type == "quarantined" for r in results)
    assert "3 failures in a row" in (results[0].error or "")
    assert sched.board_reports()[0].state == "quarantined"
    assert [e.kind for e in sched.events] == ["retry", "health_failed", "health_failed",
                                               "quarantined"]


def test_job_time_limit(tmp_path: Path) -> None:
    job = _job(tmp_path)
    job = Job(model=job.model, board=job.board, settings=job.settings,
              board_fingerprint=job.board_fingerprint, timeout_s=0.05)
    ex = ScriptedExecutor(health=[], jobs=[{"hang": True}] * 3)
    results, _, _ = _schedule(tmp_path, ex, [job], retries=1, quarantine_after=10)
    assert results[0].status == "failed" and results[0].error_type == "timeout"
    assert results[0].attempts == 2 and "after 2 attempts" in (results[0].error or "")
    # the whole job (pushes too) is bounded: the runner's limit plus a grace
    assert ex.timeouts == [30.05, 30.05]
    # the links of a board that hung are cut, so the hung call returns
    assert ex.aborted == 2


def _validation(sqnr_db: float, top1: float):
    from sdk.devices.info import DeviceInfo
    from sdk.devices.results import OutputComparison, Validation

    device = DeviceInfo(name="a", transport="local", abi="x86_64", kernel_arch="x86_64",
                        kernel=None, cpu_model=None, cpu_features=(), cores=2, max_freqs_khz=(),
                        mem_total_bytes=None, mem_available_bytes=None, os=None, model=None)
    out = OutputComparison(name="y", dtype="float32", shape=(8, 10), exact=False, mismatched=7,
                           max_abs_error=0.1, max_abs_error_raw=0.1, sqnr_db=sqnr_db,
                           top1_agreement=top1)
    return Validation(model="m.tflite", device=device, runner="litert-python", runtime="LiteRT",
                      machine="x86_64", reference="host LiteRT", samples=8, outputs=(out,))


def test_stored_validations_are_judged_by_their_runs_thresholds(tmp_path: Path, capsys) -> None:
    """A run that validated with --min-sqnr 15 --min-top1 80 passed a 20 dB / 87.5 % result;
    `farm results` (and Farm.results, run_record) read later give that run's verdict, not the
    defaults' (30 dB, 99 %)."""
    from sdk.cli import main
    from sdk.devices.farm import Farm

    farm_file = tmp_path / "farm.toml"
    farm_file.write_text('[boards.a]\ntransport = "local"\n')
    db = tmp_path / "farm-results.sqlite"
    job = _job(tmp_path)
    settings = JobSettings.validation(inputs="cd" * 32)
    close = _validation(20.0, 0.875)
    with ResultStore(db) as store:
        for bounds, board in (({"min_sqnr_db": 15.0, "min_top1": 0.8}, "a"), (None, "b")):
            request = {"kind": "validate", **({"bounds": bounds} if bounds else {})}
            run = store.begin_run(farm=str(farm_file), backend="asyncio", request=request)
            store.record(JobResult(job_key=f"{job.key}-{board}", model=job.model, board=board,
                                   settings=settings, status="ok", attempts=1,
                                   started=time.time(), finished=time.time(), run_id=run,
                                   validation=close))
            store.finish_run(run)
    lenient, unknown = Farm(farm_file).results(kind="validate")
    assert lenient.bounds == Bounds(15.0, 0.8) and lenient.agrees() is True
    assert lenient.agrees(Bounds()) is False  # the defaults would have failed it
    assert unknown.bounds is None and unknown.agrees() is False  # no thresholds stored: defaults
    assert main(["farm", "results", "--farm", str(farm_file), "--kind", "validate"]) == 0
    rows = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()
            if line.strip().startswith("m.tflite")}
    assert rows["a"].rstrip().endswith("pass") and rows["b"].rstrip().endswith("DISAGREES")
    assert main(["farm", "results", "--farm", str(farm_file), "--json"]) == 0
    dumped = {r["board"]: r for r in json.loads(capsys.readouterr().out)}
    assert dumped["a"]["bounds"] == {"min_sqnr_db": 15.0, "min_top1": 0.8}
    assert dumped["a"]["agrees"] is True and dumped["b"]["agrees"] is False
    first = Farm(farm_file).run_record(1)
    assert first.bounds == Bounds(15.0, 0.8) and not first.flagged
