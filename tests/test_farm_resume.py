"""A farm run killed with SIGKILL midway and started again skips what was done and loses
nothing; the CLI's status and results; the per-job time limit on a real runner."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from farm_support import board_table, write_farm

from sdk.cli import main
from sdk.devices.emulated import EmulatedBoard
from sdk.devices.farm import Farm, ResultStore

MODELS = ("float32", "int8", "int4", "ternary")


def _ok_keys(db: Path) -> list[str]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return [r[0] for r in conn.execute("SELECT job_key FROM results WHERE status = 'ok'")]
    except sqlite3.OperationalError:  # the schema is not there yet
        return []
    finally:
        conn.close()


def _processes(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -eo" not in line]


@pytest.fixture
def small_farm(tmp_path: Path):
    with EmulatedBoard(name="kb", root=tmp_path / "kb") as board:
        path = write_farm(tmp_path / "farm.toml", {
            "kb": board_table(board, tags={"os": "debian"}),
            "here": {"transport": "local", "workdir": str(tmp_path / "here-work")},
        }, defaults={"runs": 5, "warmup": 1, "min_duration": 0.4})
        yield path, board


def test_killed_run_resumes_and_loses_nothing(small_farm, mlp_models, tmp_path, capsys):
    farm_file, _ = small_farm
    db = farm_file.parent / "farm-results.sqlite"
    models = [str(mlp_models[p]) for p in MODELS]
    command = [sys.executable, "-m", "sdk", "farm", "profile", *models, "--farm",
               str(farm_file), "--json", "--no-progress"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while len(_ok_keys(db)) < 2:
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "no results within 120 s"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    before = _ok_keys(db)
    assert 2 <= len(before) < 8, "the run was not killed midway"
    with ResultStore(db, readonly=True) as store:
        assert store.integrity_ok()
        assert [r["status"] for r in store.runs()] == ["running"]  # it never finished

    again = subprocess.run([*command, "--report", str(tmp_path / "out")], capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    run = json.loads(again.stdout)
    assert len(run["results"]) == 8 and all(r["status"] == "ok" for r in run["results"])
    cached = {r["job_key"] for r in run["results"] if r["cached"]}
    assert cached == set(before)                      # done before the kill: not measured again
    after = _ok_keys(db)
    assert sorted(after) == sorted(set(after))        # one good result per job, no duplicate
    assert set(after) == {r["job_key"] for r in run["results"]}
    assert (tmp_path / "out" / "report.html").is_file()

    # the CLI reads the same database
    assert main(["farm", "results", "--farm", str(farm_file), "--json"]) == 0
    stored = json.loads(capsys.readouterr().out)
    assert len(stored) == 8 and {r["board"] for r in stored} == {"kb", "here"}
    assert main(["farm", "results", "--farm", str(farm_file), "--board", "kb"]) == 0
    table = capsys.readouterr().out
    assert "mlp_ternary.tflite" in table and "ternary" in table and "4 results" in table
    assert main(["farm", "results", "--farm", str(farm_file), "--report",
                 str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "report.md").read_text().count("| mlp_") == 4


def test_status_checks_the_boards(small_farm, capsys):
    farm_file, board = small_farm
    assert main(["farm", "status", "--farm", str(farm_file)]) == 0
    out = capsys.readouterr().out
    assert "kb" in out and "here" in out and "DOWN" not in out and "arm64-v8a" in out
    board.stop()
    assert main(["farm", "status", "--farm", str(farm_file), "--json"]) == 1
    status = {b["name"]: b for b in json.loads(capsys.readouterr().out)}
    assert status["kb"]["healthy"] is False and "connect" in status["kb"]["error"]
    assert status["here"]["healthy"] is True
    assert main(["farm", "status", "--farm", str(farm_file), "--no-check"]) == 0


def test_bad_farm_file_is_a_clear_cli_error(tmp_path, capsys):
    path = tmp_path / "farm.toml"
    path.write_text('[boards.x]\ntransport = "ssh"\naddress = "a@b"\nmax_jobs = "two"\n')
    assert main(["farm", "status", "--farm", str(path), "--no-check"]) == 3  # bad input
    err = capsys.readouterr().err
    assert "board 'x'" in err and "field 'max_jobs'" in err and str(path) in err


def test_job_time_limit_kills_the_runner(tmp_path, mlp_models):
    farm_file = write_farm(tmp_path / "farm.toml", {
        "here": {"transport": "local", "workdir": str(tmp_path / "work")}},
        farm={"retries": 0})
    model = mlp_models["int8"]
    run = Farm(farm_file).profile([model], runs=5, min_duration_s=120, timeout=1.5,
                                  progress=False)
    (r,) = run.results
    assert not r.ok and r.error_type == "DeviceTimeoutError" and "killed" in (r.error or "")
    assert r.attempts == 1
    from sdk.devices.runners.litert import REMOTE_NAME

    assert not _processes(f"{tmp_path / 'work'}/bin/{REMOTE_NAME}")
