"""The board farm end to end: seven emulated boards (real sshd on loopback with qemu-user, our
ADB daemon as Arm phones, and this host) profile five models in parallel (four .tflite run by
LiteRT, one .edge run by edge-run as Arm code under qemu); one board is stopped in the middle of
the run. Its jobs are reported failed, the board quarantined, nothing is lost,
and the HTML report, opened in a real headless browser, shows the plots and the quarantine."""

from __future__ import annotations

import itertools
import json
import sqlite3

import pytest
from farm_support import Elements, board_table, rendered_dom, screenshot, write_farm

from sdk.devices.emulated import EmulatedBoard, EmulatedPhone
from sdk.devices.farm import Farm, ResultStore

VICTIM = "pi-c"
#: (name, arch, qemu cpu, farm keys)
SSH_BOARDS = [
    ("pi-a", "aarch64", None, {"tags": {"soc": "qemu-max", "os": "debian", "board": "pi4"},
                               "cpus": "0"}),
    ("pi-b", "aarch64", "cortex-a53", {"tags": {"soc": "cortex-a53", "os": "debian",
                                                "board": "pi4"}, "max_jobs": 2}),
    (VICTIM, "aarch64", None, {"tags": {"soc": "qemu-max", "os": "debian", "board": "pi4"}}),
    ("arm32-a", "armv7", None, {"tags": {"soc": "cortex-a15", "os": "debian"}, "cpus": "big"}),
]
#: (name, arch, farm keys): emulated phones over ADB (TCP)
PHONES = [
    ("phone-a64", "aarch64", {"tags": {"os": "android14", "soc": "qemu-max"}}),
    ("phone-a32", "armv7", {"tags": {"os": "android14", "soc": "cortex-a15"}}),
]
BOARDS = 7
MODELS = ("float32", "int8", "int8-edge", "int4", "ternary")


@pytest.fixture(scope="module")
def farm_run(tmp_path_factory, mlp_models):
    root = tmp_path_factory.mktemp("farm")
    boards = {}
    try:
        for name, arch, cpu, _ in SSH_BOARDS:
            boards[name] = EmulatedBoard(arch=arch, cpu=cpu, name=name, root=root / name).start()
        for name, arch, _ in PHONES:
            boards[name] = EmulatedPhone(arch=arch, serial=name, root=root / name,
                                         host_key=root / "adbkey").start()
        tables = {name: board_table(boards[name], **extra) for name, _, _, extra in SSH_BOARDS}
        tables.update({name: board_table(boards[name], **extra) for name, _, extra in PHONES})
        tables["this-host"] = {"transport": "local", "workdir": str(root / "local-work"),
                               "tags": {"os": "debian", "soc": "x86_64"}}
        farm_file = write_farm(
            root / "farm.toml", tables,
            defaults={"runs": 10, "warmup": 2, "min_duration": 0.05, "cooldown": 0.05},
            farm={"retries": 1, "quarantine_after": 2, "retry_backoff": 0.1,
                  "health_timeout": 10, "job_timeout": 120},
            groups={"arm": ["tag:os=debian"]})
        stopped = []

        def stop_victim_after_its_first_job(kind, data):
            if kind == "job_finished" and data["result"].board == VICTIM and not stopped:
                boards[VICTIM].stop()  # sshd and every session it started are killed
                stopped.append(data["result"].model.name)

        farm = Farm(farm_file)
        models = [mlp_models[p] for p in MODELS]
        run = farm.profile(models, layers=True, reference=mlp_models["float32"],
                           report=root / "report", progress=stop_victim_after_its_first_job)
        yield farm, run, root, stopped
    finally:
        for board in boards.values():
            board.stop()


def test_every_job_has_a_result_and_the_stopped_board_is_quarantined(farm_run):
    farm, run, _, stopped = farm_run
    assert len(farm.boards) == BOARDS and len(run.results) == BOARDS * len(MODELS)
    assert stopped, "the victim board never finished a job"
    for r in run.results:
        if r.board != VICTIM:
            assert r.ok, f"{r.model.name} @ {r.board}: {r.error}"
    victim = [r for r in run.results if r.board == VICTIM]
    assert sum(r.ok for r in victim) == 1 and victim[0].model.name == stopped[0]
    failed = [r for r in victim if not r.ok]
    assert len(failed) == len(MODELS) - 1
    assert all(r.error_type == "quarantined" and VICTIM in (r.error or "") for r in failed)
    assert run.quarantined == [VICTIM]
    kinds = [e.kind for e in run.events if e.board == VICTIM]
    assert "retry" in kinds and "health_failed" in kinds and kinds[-1] == "quarantined"
    reason = next(b.reason for b in run.boards if b.name == VICTIM)
    assert "2 failures in a row" in (reason or "") and "connect" in (reason or "").lower()
    # the other boards did not notice
    assert all(b.state == "ok" for b in run.boards if b.name != VICTIM)
    # boards of every kind measured: SSH boards, ADB phones, this host
    kinds = {r.board_config["device"]["transport"] for r in run.ok}
    assert kinds == {"ssh", "adb", "local"}


def test_nothing_is_lost_in_the_database(farm_run):
    farm, run, _, _ = farm_run
    with ResultStore(farm.database, readonly=True) as store:
        assert store.integrity_ok()
        stored = store.latest(r.job_key for r in run.results)
        assert len(stored) == BOARDS * len(MODELS)
        for r in run.results:
            assert stored[r.job_key].status == r.status
            assert stored[r.job_key].board == r.board
        assert store.count(run_id=run.run_id) == BOARDS * len(MODELS)
        assert [e.kind for e in store.events(run.run_id, kind="quarantined")] == ["quarantined"]
    raw = sqlite3.connect(farm.database)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = raw.execute("SELECT model, settings, board_config, board_info, governor, "
                      "temperature_c, profile FROM results WHERE status = 'ok' LIMIT 1").fetchone()
    model, settings, board_config, board_info = (json.loads(x) for x in row[:4])
    assert len(model["sha256"]) == 64 and settings["runs"] == 10
    assert board_config["device"]["transport"] in ("ssh", "adb", "local")
    assert board_info["abi"] in ("arm64-v8a", "armeabi-v7a", "x86_64")
    profile = json.loads(row[6])
    # governor and temperature are recorded with each result, in columns of their own and in
    # the states read before and after the runs (None where the board has no readable cpufreq
    # or thermal zones, as in this container)
    assert set(profile["state_before"]) == {"governor", "temperatures_c"}
    assert set(profile["state_after"]) == {"governor", "temperatures_c"}
    assert row[4] == profile["state_after"]["governor"]


def test_measurement_hygiene(farm_run):
    _, run, _, _ = farm_run
    for r in run.ok:
        p = r.profile
        assert p is not None
        assert r.settings.runs == 10 and r.settings.min_duration_s == 0.05 and p.warmup == 2
        # at least 10 runs AND at least 0.05 s of them
        assert p.latency.runs >= 10
        if p.runner == "litert-python":
            # it loops until 0.05 s of wall time have passed; the sum of its run latencies
            # (timed_s) can be far below that on a loaded host, where the process waits for a
            # core between invokes (CI saw 406 runs of 1.2 us: 0.0005 s), so here only "at
            # least 10 runs" is asserted; the wall-time rule is tested on the runner itself
            # (test_devices_e2e.py::test_python_runner_times_until_the_minimum_wall_time)
            assert p.latency.runs >= 10 and p.timed_s > 0
        else:
            # edge-run is run again with more runs until the runs add up to 0.05 s; on a host
            # whose speed keeps changing (a loaded CI machine) 5 tries may still fall short,
            # and then the profile says so
            assert p.runner == "edge-run"
            assert p.timed_s >= 0.05 or any("short of the 0.05 s minimum" in n for n in p.notes)
        assert p.latency.min_ms <= p.latency.p50_ms <= p.latency.p90_ms <= p.latency.max_ms
        assert p.device.abi in ("arm64-v8a", "armeabi-v7a", "x86_64")
        # the runner process's own peak (VmHWM), not the farm worker's it was started from
        assert p.peak_memory_bytes is not None and 1 << 20 < p.peak_memory_bytes < 1 << 30
    pinned = [r.profile for r in run.ok if r.board == "pi-a"]
    assert pinned and all(p.cpus == "0" for p in pinned)
    # "big" needs per-core max frequencies; this host has none, and the profile says so
    big = [r.profile for r in run.ok if r.board == "arm32-a"]
    assert big and all(p.cpus is None and "not applied" in " ".join(p.notes) for p in big)
    # what really ran is in every profile: here the host's Python, on emulated Arm boards
    arm = next(r.profile for r in run.ok if r.board == "pi-b")
    assert arm.runner == "litert-python" and arm.machine == "x86_64"
    assert "qemu-aarch64" in arm.emulated and "cortex-a53" in arm.emulated
    assert any("not arm64-v8a" in note for note in arm.notes)


def test_leases(farm_run):
    _, run, _, _ = farm_run

    def overlaps(board: str) -> bool:
        spans = sorted((r.started, r.finished) for r in run.ok if r.board == board)
        return any(b[0] < a[1] for a, b in itertools.pairwise(spans))

    assert overlaps("pi-b")            # max_jobs = 2: two jobs at once
    assert not overlaps("this-host")   # default lease: one job at a time
    assert not overlaps("phone-a64")


def test_per_layer_times_and_precisions(farm_run):
    _, run, _, _ = farm_run
    r = run.get("mlp_int8.tflite", "pi-a")
    assert r is not None and r.ok
    layers = r.profile.per_layer or ()
    ops = [x.op for x in layers]
    assert ops.count("FULLY_CONNECTED") == 3 and "SOFTMAX" in ops
    assert all(x.mean_ms is not None and x.mean_ms > 0 and x.kernel == "isolated op"
               for x in layers)
    # .edge models run in edge-run, as Arm code under qemu on the emulated boards and phones,
    # which profiles its layers itself and names each one's kernel
    for board, machine in (("pi-a", "aarch64"), ("phone-a32", "armv7"), ("this-host", "x86_64")):
        e = run.get("mlp_int8_edge.edge", board)
        assert e is not None and e.ok and e.profile.runner == "edge-run", e and e.error
        assert (e.profile.machine or "").startswith(machine[:5])
        edge_layers = e.profile.per_layer or ()
        assert [x.op for x in edge_layers].count("FULLY_CONNECTED") == 3
        assert all(x.kernel and x.kernel != "isolated op" for x in edge_layers)
    precisions = {r.model.name: r.model.precision for r in run.results}
    assert precisions == {"mlp_float32.tflite": "float32", "mlp_int8.tflite": "int8",
                          "mlp_int8_edge.edge": "int8", "mlp_int4.tflite": "int4",
                          "mlp_ternary.tflite": "ternary"}
    fid = {r.model.name: r.model.fidelity for r in run.results}
    assert fid["mlp_int8_edge.edge"] is not None
    fid = {r.model.precision: r.model.fidelity for r in run.results
           if r.model.format == "tflite"}
    assert fid["float32"] is None
    assert "export report" in fid["int8"].source and "host LiteRT" in fid["ternary"].source
    assert fid["int8"].min_sqnr_db > fid["ternary"].min_sqnr_db


def test_report_renders_in_a_real_browser(farm_run):
    _, run, root, _ = farm_run
    page = root / "report" / "report.html"
    assert (root / "report" / "report.json").is_file()
    markdown = (root / "report" / "report.md").read_text()
    assert f"| {VICTIM} | QUARANTINED |" in markdown and "FAILED (quarantined)" in markdown
    raw = page.read_text()
    assert "http://" not in raw.replace("http://www.w3.org/2000/svg", "")  # nothing to fetch
    assert "https://" not in raw
    rendered = rendered_dom(page)
    dom = Elements(rendered)
    body = dom.find("body")[0]
    assert body.get("data-rendered") == "true", body.get("data-render-error")
    # latency distribution: one dot per shown run on every board that ran the first model
    shown = sum(min(len(r.profile.latencies_ms), 400) for r in run.ok
                if r.model.name == "mlp_float32.tflite")
    assert dom.count("circle", "sample") == shown > 0
    # the victim ran the first model before it stopped
    assert dom.count("line", "p50") == BOARDS
    # board x precision: every ok cell has a number; the victim's are marked quarantined
    assert dom.count("td", "cell-ok") == (BOARDS - 1) * 4 + 1
    assert dom.count("td", "cell-quarantined") == 3
    # trade-off: a point per model (latency) and per quantised model (fidelity)
    assert dom.count("circle", "latency-point") == len(MODELS)
    assert dom.count("circle", "fidelity-point") == len(MODELS) - 1
    # per-layer breakdown for the chosen board: one bar per operator
    assert dom.count("rect", "layer-bar") == len(run.ok[0].profile.per_layer or ()) > 0
    # the conditions table: every run's own peak memory, as report.json has it
    jobs = json.loads((root / "report" / "report.json").read_text())["jobs"]
    by_key = {r.job_key: r.profile.peak_memory_bytes for r in run.ok}
    assert {j["key"]: j["peak_memory_bytes"] for j in jobs if j["key"] in by_key} == by_key
    assert rendered.count(" MiB</td>") == len(run.ok)
    # the quarantined board is named in the boards table and the failures
    assert dom.find("tr", data_board=VICTIM, data_state="quarantined")
    assert dom.count("tr", data_board=VICTIM) >= 4
    # and it is a picture, not a blank page
    from PIL import Image

    image = Image.open(screenshot(page, root / "report.png")).convert("RGB")
    colors = image.getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 200
