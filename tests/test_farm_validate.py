"""`Farm.validate` / `edgesdk farm validate`: the same inputs through every model on every
board and on this host, compared (sdk.validate as a job kind of the farm's scheduler). Boards:
the emulated aarch64 board (OpenSSH + qemu-user) and phone (our ADB daemon), this host (two jobs
at once), a board whose runtime corrupts its outputs (it must be flagged), and a board that is
down (quarantined). Two different models with the same file name run at once on one board.
The report, opened in a real headless browser, shows the per-board validation table; a killed
validation run resumes; a version-1 database still opens."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from farm_support import Elements, board_table, build_mlp, rendered_dom, write_farm

from sdk.cli import main
from sdk.devices.emulated import EmulatedBoard
from sdk.devices.farm import Farm, JobSettings, ResultStore
from sdk.devices.farm.jobs import InputSet, job_key

NOISY, DOWN = "noisy", "gone"
SAMPLES = 6


def noisy_python(path: Path) -> Path:
    """A device 'Python' whose LiteRT outputs come back corrupted (class scores reversed): a
    board with a broken runtime or NPU delegate, as validation exists to catch."""
    path.write_text(f"""#!{sys.executable}
import os, runpy, sys
script, *args = sys.argv[1:]
sys.argv = [script, *args]
try:
    runpy.run_path(script, run_name="__main__")
finally:
    if "--outputs-dir" in args:
        import numpy as np
        folder = args[args.index("--outputs-dir") + 1]
        for name in os.listdir(folder):
            if name.endswith(".npy"):
                out = os.path.join(folder, name)
                np.save(out, np.load(out)[..., ::-1].copy())
""")
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def same_named(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("same-named")
    (root / "a").mkdir()
    (root / "b").mkdir()
    return (build_mlp(root / "a" / "mlp.tflite", seed=10),
            build_mlp(root / "b" / "mlp.tflite", seed=11))


@pytest.fixture(scope="module")
def validated(tmp_path_factory, mlp_models, emulated_board, emulated_phone, same_named):
    root = tmp_path_factory.mktemp("farm-validate")
    gone = EmulatedBoard(name=DOWN, root=root / DOWN).start()
    gone.stop()  # its port is closed: every connection is refused
    farm_file = write_farm(root / "farm.toml", {
        "board-a64": board_table(emulated_board, tags={"os": "debian"}),
        "phone-a64": {**emulated_phone.device_config(adb_key=str(root / "adbkey")).to_dict(),
                      "tags": {"os": "android"}},
        "here": {"transport": "local", "workdir": str(root / "here-work"), "max_jobs": 2},
        NOISY: {"transport": "local", "workdir": str(root / "noisy-work"),
                "runner": {"python": str(noisy_python(root / "noisy-python"))}},
        DOWN: board_table(gone),
    }, farm={"retries": 1, "quarantine_after": 2, "retry_backoff": 0.1, "health_timeout": 10,
             "job_timeout": 120})
    farm = Farm(farm_file)
    # the same-named pair first: "here" (max_jobs = 2) takes both at once
    models = [*same_named, mlp_models["float32"], mlp_models["int8-edge"]]
    run = farm.validate(models, samples=SAMPLES, report=root / "report", progress=False)
    return farm, run, root, models


def test_every_board_compared_and_the_corrupt_one_flagged(validated):
    _, run, _, models = validated
    assert len(run.results) == 5 * len(models)
    for r in run.results:
        assert r.kind == "validate" and r.settings.kind == "validate"
        if r.board == DOWN:
            assert not r.ok and r.error_type == "quarantined"
            continue
        assert r.ok, f"{r.model.name} @ {r.board}: {r.error}"
        v = r.validation
        assert v is not None and v.samples == SAMPLES and r.profile is None
        corrupt = r.board == NOISY and r.model.format == "tflite"
        if corrupt:
            assert not v.exact and not r.agrees() and v.top1_agreement < 0.5
            assert v.sqnr_db < 10 and v.max_abs_error > 0
        else:  # LiteRT and edge-run give these boards the host's exact outputs
            assert v.exact and r.agrees(), (r.board, r.model.name, v.sqnr_db)
            assert v.top1_agreement == 1.0 and v.max_abs_error == 0.0
    # the .edge model ran in edge-run (Arm code under qemu on the emulated devices), which
    # the corrupting Python never touches: that board is flagged for its .tflite models only
    assert run.flagged == {NOISY: ["mlp.tflite", "mlp.tflite", "mlp_float32.tflite"]}
    assert len(run.disagreeing) == 3
    edge = next(r for r in run.results if r.board == "board-a64" and r.model.format == "edge")
    assert edge.validation.runner == "edge-run" and edge.validation.machine == "aarch64"
    phone = next(r for r in run.results if r.board == "phone-a64" and r.model.format == "edge")
    assert phone.validation.device.transport == "adb"
    # the board that is down: health checks failed, quarantined, the rest went on
    assert run.quarantined == [DOWN]
    assert [e.kind for e in run.events if e.board == DOWN][-1] == "quarantined"


def test_same_named_models_at_once_on_one_board(validated, same_named):
    _, run, _, _ = validated
    a, b = same_named
    assert a.name == b.name and a.read_bytes() != b.read_bytes()
    mine = [r for r in run.results if r.board == "here" and r.model.name == "mlp.tflite"]
    assert {r.model.path for r in mine} == {str(a), str(b)}
    spans = sorted((r.started, r.finished) for r in mine)
    assert spans[1][0] < spans[0][1]  # they ran at the same time (max_jobs = 2)
    # each compared its own model's outputs: exact (one running the other's file would not be)
    assert all(r.validation.exact for r in mine)


def test_validations_are_in_the_results_database(validated):
    farm, run, _, models = validated
    with ResultStore(farm.database, readonly=True) as store:
        assert store.integrity_ok()
        stored = store.latest(r.job_key for r in run.results)
        assert len(stored) == len(run.results)
        assert len(store.results(kind="validate")) == len(run.results)
        assert store.results(kind="profile") == []
    raw = sqlite3.connect(farm.database)
    kinds = {k for (k,) in raw.execute("SELECT DISTINCT kind FROM results")}
    assert kinds == {"validate"}
    row = raw.execute("SELECT sqnr_db, top1_agreement, validation FROM results WHERE board = ? "
                      "AND status = 'ok' AND model_name = 'mlp_float32.tflite'",
                      (NOISY,)).fetchone()
    assert row[0] < 10 and row[1] < 0.5 and json.loads(row[2])["samples"] == SAMPLES
    # random inputs, made for each model from its signature (all four take (1, 64) float32:
    # the same seeded arrays), kept beside the database by content and named by the settings
    (inputs,) = {r.settings.inputs for r in run.results}
    saved = InputSet.load(farm.inputs_folder / f"{inputs[:16]}.npz")
    assert saved.shape == (SAMPLES, 64) and saved.dtype == np.float32
    # the same call again finds everything done (failed jobs excepted: tried again)
    again = farm.validate(models, samples=SAMPLES, boards="here,noisy", progress=False)
    assert all(r.cached for r in again.results) and again.flagged == run.flagged


def test_report_shows_the_validation_table(validated):
    _, run, root, models = validated
    markdown = (root / "report" / "report.md").read_text()
    assert "## Validation: device outputs vs this host" in markdown
    assert markdown.count("**DISAGREES**") == 3
    assert f"**{NOISY}: outputs disagree with the host** for" in markdown
    assert f"| {NOISY} | ok, OUTPUTS DISAGREE |" in markdown
    assert f"| {DOWN} | QUARANTINED |" in markdown
    data = json.loads((root / "report" / "report.json").read_text())
    assert data["kinds"] == ["validate"] and data["flagged"] == run.flagged
    assert data["bounds"] == {"min_sqnr_db": 30.0, "min_top1": 0.99}
    dom = Elements(rendered_dom(root / "report" / "report.html"))
    body = dom.find("body")[0]
    assert body.get("data-rendered") == "true", body.get("data-render-error")
    ok_boards = 4
    assert dom.count("td", "cell-pass") == ok_boards * len(models) - 3
    assert dom.count("td", "cell-disagree") == 3
    assert dom.count("td", "cell-quarantined") == len(models)
    # the corrupt board is flagged in the boards table and in the validation table
    assert dom.find("tr", data_board=NOISY, data_flagged="true")
    assert len(dom.find("tr", data_flagged="true")) == 2
    assert dom.count("span", "disagree") == 1
    assert dom.count("tr", data_passed="false") == 3  # the per-job detail table
    # a validation run has no latency plots: those sections are hidden, not empty
    assert all("display: none" in s.get("style", "") for s in dom.find("section",
                                                                       "profile-only"))
    assert dom.count("circle", "sample") == 0


def test_given_inputs_are_shared_and_cut_to_samples(tmp_path, mlp_models):
    farm_file = write_farm(tmp_path / "farm.toml", {
        "here": {"transport": "local", "workdir": str(tmp_path / "w")}})
    x = np.random.default_rng(3).standard_normal((10, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    farm = Farm(farm_file)
    models = [mlp_models["int8"], mlp_models["int4"]]
    run = farm.validate(models, tmp_path / "x.npy", samples=4, progress=False)
    assert [r.validation.samples for r in run.results] == [4, 4]
    assert all(r.ok and r.validation.exact for r in run.results)
    (inputs,) = {r.settings.inputs for r in run.results}
    saved = InputSet.load(farm.inputs_folder / f"{inputs[:16]}.npz")
    assert np.array_equal(saved, x[:4])
    # the same arrays from Python make the same jobs: done already
    again = farm.validate(models, x[:4], progress=False)
    assert all(r.cached for r in again.results)
    with pytest.raises(ValueError, match=r"x\.txt: give an existing \.npy or \.npz file"):
        farm.validate(models, tmp_path / "x.txt", progress=False)
    bad = farm.validate(models, np.zeros((2, 3), np.float32), progress=False)
    assert all(not r.ok and "expected (N, 64)" in (r.error or "") for r in bad.results)
    assert bad.quarantined == []  # bad inputs are not the board's fault


def test_profile_job_keys_did_not_change():
    """Validation jobs added fields to JobSettings; profile jobs keep their version-1 keys, so
    a database written before still resumes."""
    settings = JobSettings(runs=10, warmup=2, min_duration_s=0.5, threads=None, cpus=None)
    assert set(settings.to_dict()) == {"runs", "warmup", "min_duration_s", "threads", "cpus",
                                       "layers"}
    assert job_key("ab" * 32, "rpi4", settings, "f" * 16) == "8ed10c51b1f4ef80b0e3b353c5d37b80"
    check = JobSettings.validation(inputs="cd" * 32)
    assert job_key("ab" * 32, "rpi4", check, "f" * 16) != job_key("ab" * 32, "rpi4", settings,
                                                                 "f" * 16)


def test_version_1_database_opens_and_is_upgraded(tmp_path, mlp_models):
    farm_file = write_farm(tmp_path / "farm.toml", {
        "here": {"transport": "local", "workdir": str(tmp_path / "w")}})
    farm = Farm(farm_file)
    farm.profile([mlp_models["int8"]], runs=2, min_duration_s=0, progress=False)
    raw = sqlite3.connect(farm.database)  # back to the version-1 table
    for column in ("kind", "validation", "sqnr_db", "top1_agreement"):
        raw.execute(f"ALTER TABLE results DROP COLUMN {column}")
    raw.commit()
    raw.close()
    (old,) = farm.results()
    assert old.kind == "profile" and old.ok
    assert farm.results(kind="validate") == [] and len(farm.results(kind="profile")) == 1
    run = farm.validate([mlp_models["int8"]], samples=2, progress=False)
    assert run.results[0].ok and run.results[0].validation.exact
    kinds = sorted(r.kind for r in farm.results())
    assert kinds == ["profile", "validate"]
    again = farm.profile([mlp_models["int8"]], runs=2, min_duration_s=0, progress=False)
    assert again.results[0].cached  # the version-1 result still counts as done


# ---------------------------------------------------------------------------- CLI, resume
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


def test_killed_validation_resumes_and_the_cli_flags_disagreement(tmp_path, mlp_models,
                                                                   capsys):
    with EmulatedBoard(name="kb", root=tmp_path / "kb") as board:
        farm_file = write_farm(tmp_path / "farm.toml", {
            "kb": board_table(board),
            "here": {"transport": "local", "workdir": str(tmp_path / "here-work")},
        })
        db = tmp_path / "farm-results.sqlite"
        models = [str(mlp_models[p]) for p in ("float32", "int8", "int4", "ternary")]
        command = [sys.executable, "-m", "sdk", "farm", "validate", *models, "--farm",
                   str(farm_file), "--samples", "8", "--json", "--no-progress"]
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
        again = subprocess.run([*command, "--report", str(tmp_path / "out")],
                               capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr[-2000:]
        run = json.loads(again.stdout)
        assert len(run["results"]) == 8
        assert all(r["status"] == "ok" and r["validation"]["samples"] == 8
                   for r in run["results"])
        assert {r["job_key"] for r in run["results"] if r["cached"]} == set(before)
        after = _ok_keys(db)
        assert sorted(after) == sorted(set(after)) and len(after) == 8

    # the CLI reads validations back, and exits 1 when a board disagrees
    assert main(["farm", "results", "--farm", str(farm_file), "--kind", "validate"]) == 0
    out = capsys.readouterr().out
    assert "SQNR dB" in out and "pass" in out and "8 results" in out
    noisy_file = write_farm(tmp_path / "noisy.toml", {NOISY: {
        "transport": "local", "workdir": str(tmp_path / "noisy-work"),
        "runner": {"python": str(noisy_python(tmp_path / "noisy-python"))}}})
    assert main(["farm", "validate", models[0], "--farm", str(noisy_file), "--samples", "4",
                 "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "DISAGREES" in out and f"board {NOISY}: OUTPUTS DISAGREE" in out


def test_worker_fetches_inputs_it_does_not_have(tmp_path):
    """A Dask worker on another host gets the inputs as bytes and keeps a verified copy."""
    from sdk.devices.farm import worker

    inputs = InputSet.save(np.arange(6, dtype=np.float32).reshape(3, 2), tmp_path / "sets",
                           source="test")
    data = Path(inputs.path).read_bytes()
    job = {"inputs": {**inputs.to_dict(), "path": str(tmp_path / "elsewhere" / "x.npz")}}
    os.environ["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    try:
        copy = worker.local_inputs(job, data)
    finally:
        del os.environ["XDG_CACHE_HOME"]
    assert copy.read_bytes() == data and str(tmp_path / "cache") in str(copy)
    assert np.array_equal(InputSet.load(copy), np.arange(6, dtype=np.float32).reshape(3, 2))
    with pytest.raises(Exception, match="not on this host"):
        worker.local_inputs(job, None)


def test_same_inputs_same_bytes(tmp_path, monkeypatch):
    x = {"a": np.ones((2, 3), np.int8), "b": np.zeros((2,), np.float32)}
    one = InputSet.save(x, tmp_path / "one", source="x")
    # a day later: an archive stamped with "now" (np.savez) would differ
    later = time.time() + 86400
    monkeypatch.setattr(time, "time", lambda: later)
    two = InputSet.save(x, tmp_path / "two", source="y")
    assert one.sha256 == two.sha256 and one.samples == 2
    loaded = InputSet.load(one.path)
    assert list(loaded) == ["a", "b"] and all(np.array_equal(loaded[k], x[k]) for k in x)
    assert InputSet.save([x["a"], x["a"]], tmp_path, source="z").sha256 != one.sha256
