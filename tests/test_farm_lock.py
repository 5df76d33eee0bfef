"""Issue 13, hole 8: one farm run per results database at a time (a second run is refused,
naming the run that holds it; a killed holder's lock is taken over), and a SIGKILLed run's
runner, still running on the board, is killed by its job's tag before the job is measured
again."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from farm_support import board_table, write_farm

from sdk.cli import main
from sdk.cli.exit_codes import DEVICE
from sdk.devices.emulated import EmulatedBoard
from sdk.devices.farm import Farm, ResultStore
from sdk.devices.farm.lock import FarmBusyError, RunLock
from sdk.devices.runners.litert import REMOTE_NAME

psutil = pytest.importorskip("psutil", reason="needs psutil (the [farm] extra pulls it in)")


def _farm(tmp_path: Path, min_duration: float, table: dict | None = None
          ) -> tuple[Path, Path]:
    """A farm of one board, "here" (this host, or `table`'s board), and its workdir."""
    table = table or {"transport": "local", "workdir": str(tmp_path / "here-work")}
    farm_file = write_farm(tmp_path / "farm.toml", {"here": table},
                           defaults={"runs": 5, "warmup": 1, "min_duration": min_duration},
                           farm={"retries": 0})
    return farm_file, Path(table["workdir"])


@pytest.fixture(params=["local", "ssh"])
def board(request, tmp_path):
    """The board's farm.toml table: this host (the runner lives in a session of its own), or
    an emulated board over SSH (a command without a terminal outlives the dropped link)."""
    if request.param == "local":
        yield None
        return
    with EmulatedBoard(name="kb", root=tmp_path / "kb") as emulated:
        yield board_table(emulated)


def _start(farm_file: Path, model: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sdk", "farm", "profile", str(model),
                             "--farm", str(farm_file), "--json", "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def _runners(work: Path) -> list[psutil.Process]:
    """The measuring runs of the LiteRT runner in this farm's workdir (not its --check)."""
    marker = f"{work}/bin/{REMOTE_NAME}"
    out = []
    for p in psutil.process_iter(["cmdline", "status"]):
        cmd = p.info["cmdline"] or []
        if p.info["status"] != psutil.STATUS_ZOMBIE and marker in cmd and "--check" not in cmd:
            out.append(p)
    return out


def _wait(what: str, condition, proc: subprocess.Popen, seconds: float = 120.0):
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        if proc.poll() is not None:
            pytest.fail(f"the farm run ended before {what}: {proc.stderr.read().decode()[-2000:]}")
        assert time.monotonic() < deadline, f"no {what} within {seconds:g} s"
        time.sleep(0.05)
    return value


def _runs(db: Path) -> list[dict]:
    if not db.exists():
        return []
    with ResultStore(db, readonly=True) as store:
        try:
            return store.runs()
        except Exception:  # the schema is not there yet
            return []


def _kill_all(proc: subprocess.Popen, work: Path) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    for p in _runners(work):
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()


def test_second_run_on_one_database_is_refused(tmp_path, mlp_models, capsys):
    farm_file, work = _farm(tmp_path, min_duration=60)
    db = farm_file.parent / "farm-results.sqlite"
    model = mlp_models["int8"]
    first = _start(farm_file, model)
    try:
        _wait("the first run measuring", lambda: _runners(work), first)
        with pytest.raises(FarmBusyError) as caught:
            Farm(farm_file).profile([model], progress=False)
        message = str(caught.value)
        assert f"{db} is in use by run 1, pid {first.pid} on host" in message
        assert "farm profile" in message
        # the CLI says the same and exits with the device code (the farm's boards are busy)
        assert main(["farm", "profile", str(model), "--farm", str(farm_file),
                     "--no-progress"]) == DEVICE.code
        assert f"in use by run 1, pid {first.pid}" in capsys.readouterr().err
        # the refused runs left no run and no result behind: nothing is measured twice
        assert [r["id"] for r in _runs(db)] == [1]
        with ResultStore(db, readonly=True) as store:
            assert store.count() == 0
        assert len(_runners(work)) == 1
    finally:
        _kill_all(first, work)


def test_lock_is_exclusive_within_one_process_too(tmp_path):
    db = tmp_path / "farm-results.sqlite"
    with RunLock(db) as held:
        held.set_run(7)
        with pytest.raises(FarmBusyError, match=f"in use by run 7, pid {os.getpid()}"):
            RunLock(db).acquire()
    with RunLock(db) as again:
        assert again.previous is None  # a clean release leaves no holder behind


def test_killed_run_is_taken_over_and_its_orphan_killed_before_measuring(tmp_path, board,
                                                                         mlp_models):
    farm_file, work = _farm(tmp_path, min_duration=8, table=board)
    db = farm_file.parent / "farm-results.sqlite"
    model = mlp_models["int8"]
    first = _start(farm_file, model)
    try:
        (orphan,) = _wait("the runner", lambda: _runners(work), first)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)
        # the attack: the runner outlives the farm process and keeps loading the board
        assert orphan.is_running() and orphan.status() != psutil.STATUS_ZOMBIE
        assert [r["status"] for r in _runs(db)] == ["running"]

        seen: dict[str, bool] = {}
        stop = threading.Event()

        def watch() -> None:  # is the orphan still there when the new run's runner starts?
            while not stop.is_set():
                fresh = [p for p in _runners(work) if p.pid != orphan.pid]
                if fresh:
                    seen["orphan alive"] = orphan.is_running() and \
                        orphan.status() != psutil.STATUS_ZOMBIE
                    return
                time.sleep(0.01)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            run = Farm(farm_file).profile([model], progress=False)
        finally:
            stop.set()
            watcher.join()
        (result,) = run.results
        assert result.ok and not result.cached, result.error
        assert seen == {"orphan alive": False}
        assert not orphan.is_running() or orphan.status() == psutil.STATUS_ZOMBIE
        kinds = {e.kind: e for e in run.events}
        assert "1 run(s) of this job" in kinds["orphans_killed"].detail
        assert kinds["orphans_killed"].board == "here"
        assert f"run 1, pid {first.pid}" in kinds["lock_taken_over"].detail
        assert [r["status"] for r in _runs(db)] == ["killed", "finished"]
        with RunLock(db) as again:  # free again, released cleanly
            assert again.previous is None
    finally:
        _kill_all(first, work)
