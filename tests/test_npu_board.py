"""NPU boards, device side (issue 18): which nodes a configured delegate claimed, from the
interpreter's node list, reported by sdk.profile on an emulated board.

No NPU hardware exists here: the "NPU delegate" is a stand-in, the edgesdk delegate (a real
TFLite external delegate that claims the EDGE_* custom ops of 2-bit layers), loaded through the
device config's `delegates` exactly as a vendor's libvx_delegate.so / Ethos-U delegate would be.
"""

from __future__ import annotations

import pytest
from npu_support import build_classifier, images

import sdk
from sdk.devices.config import DelegateConfig, DeviceConfig

#: an NPU's delegate takes every node it supports; the edgesdk delegate's default rule
#: (claim=faster) would leave nodes XNNPACK runs as fast on this CPU
STAND_IN_OPTIONS = {"claim": "all"}


@pytest.fixture(scope="module")
def stand_in_delegate():
    from sdk.devices.runners.delegates import edgesdk_delegate

    try:
        return edgesdk_delegate("x86_64")
    except Exception as exc:  # not built in this checkout
        pytest.skip(f"the edgesdk delegate (the stand-in NPU delegate) is not built: {exc}")


def _board(emulated_board, delegate):
    return emulated_board.device_config(delegates=(
        DelegateConfig(path=str(delegate), name="stand-in-npu", options=STAND_IN_OPTIONS),))


def test_profile_reports_the_nodes_the_delegate_claimed(emulated_board, stand_in_delegate,
                                                        tmp_path) -> None:
    float_model = build_classifier(tmp_path / "m.tflite")
    int8 = sdk.export(float_model, "int8", calibration=images(),
                      output=tmp_path / "m_int8.tflite", report=False, per_layer=False)
    profile = sdk.profile(int8.path, _board(emulated_board, stand_in_delegate), runs=2,
                          warmup=0)
    notes = [n for n in profile.notes if " claimed " in n]
    assert len(notes) == 1, profile.notes
    # the stand-in takes the int8 CONV_2D and FULLY_CONNECTED; the rest stays on the CPU
    assert "claimed 2 of 6 nodes (CONV_2D#1, FULLY_CONNECTED#3)" in notes[0], notes
    assert "on the CPU: QUANTIZE#0, RESHAPE#2, SOFTMAX#4, DEQUANTIZE#5" in notes[0], notes
    assert not any(n.startswith("warning:") for n in profile.notes), profile.notes
    # compile / warm-up (init, first run) apart from the steady state
    assert profile.init_ms is not None and profile.first_run_ms is not None
    assert profile.latency.runs == 2


def test_a_delegate_that_claims_nothing_is_a_warning(emulated_board, stand_in_delegate,
                                                     tmp_path) -> None:
    float_model = build_classifier(tmp_path / "m.tflite")
    profile = sdk.profile(float_model, _board(emulated_board, stand_in_delegate), runs=2,
                          warmup=0)
    # the stand-in claims no float32 op: the model ran entirely on the CPU, and the profile
    # says so instead of implying the NPU ran it
    assert any(n.startswith("warning: the delegate(s)") and "claimed none of the model's 4 "
               "nodes" in n for n in profile.notes), profile.notes
    assert any("claimed 0 of 4 nodes" in n for n in profile.notes), profile.notes
    assert profile.npu is not None and profile.npu.npu == () and profile.npu.nodes == 4
    assert "claimed none" in (profile.npu.fallback or "") and profile.npu.summary().startswith(
        "CPU only")


def test_the_vela_warning_only_for_models_without_vela_op() -> None:
    from sdk.devices.npu import NpuConfig, npu_notes

    ethos, vx = NpuConfig(stack="ethos-u"), NpuConfig(stack="vx")
    assert npu_notes(ethos, ["ethos-u"]) == ()
    assert "not compiled by Vela" in npu_notes(ethos, [])[0]
    assert npu_notes(vx, []) == () and npu_notes(None, []) == ()


# ---------------------------------------------------------------------------- the npu table
def _npu_config(table: dict) -> DeviceConfig:
    return DeviceConfig.from_dict("b", {"transport": "ssh", "address": "pi@b", "npu": table},
                                  path="devices.toml")


def test_device_config_names_the_npu_stack() -> None:
    from sdk.devices.config import parse_device_tables

    ethos = _npu_config({"stack": "ethos-u"}).npu
    assert ethos is not None and ethos.delegate == "/usr/lib/libethosu_delegate.so"
    vx = _npu_config({"stack": "delegate", "name": "vx", "delegate": "/usr/lib/libvx_delegate.so",
                      "options": {"cache_file_path": "/tmp/vx.nb", "verbose": True}}).npu
    assert vx is not None and vx.options == {"cache_file_path": "/tmp/vx.nb", "verbose": "true"}
    rknn = _npu_config({"stack": "rknn", "core_mask": "0_1_2"}).npu
    assert rknn is not None and not rknn.uses_delegate
    # a round trip through to_dict (the farm keeps configs as tables)
    config = _npu_config({"stack": "vx", "fallback": "error"})
    again = parse_device_tables({"devices": {"b": config.to_dict()}})["b"]
    assert again.npu == config.npu


@pytest.mark.parametrize(("table", "key", "words"), [
    ({"delegate": "/x.so"}, "npu.stack", "missing 'stack'"),
    ({"stack": "hexagon"}, "npu.stack", "unknown NPU stack 'hexagon'"),
    ({"stack": "delegate"}, "npu.delegate", "needs 'delegate'"),
    ({"stack": "rknn", "delegate": "/x.so"}, "npu.delegate", "not a LiteRT delegate"),
    ({"stack": "ethos-u", "fallback": "gpu"}, "npu.fallback", "fallback must be one of"),
    ({"stack": "rknn", "core_mask": "3"}, "npu.core_mask", "unknown core_mask '3'"),
    ({"stack": "vx", "core_mask": "0"}, "npu.core_mask", "RKNNLite's"),
    ({"stack": "vx", "options": {"a": [1]}}, "npu.options.a", "strings, numbers or booleans"),
    ({"stack": "vx", "delgate": "/x.so"}, "npu.delgate", "unknown key"),
    ({"stack": 3}, "npu.stack", "expected str"),
])
def test_a_bad_npu_table_names_the_key(table, key, words) -> None:
    from sdk.devices.errors import DeviceConfigError

    with pytest.raises(DeviceConfigError) as info:
        _npu_config(table)
    assert info.value.field == key and words in str(info.value), str(info.value)
    assert "devices.toml" in str(info.value) and "device 'b'" in str(info.value)


# ---------------------------------------------------------------------------- on the board
@pytest.fixture(scope="module")
def int8_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("npu-model")
    float_model = build_classifier(tmp / "m.tflite")
    return sdk.export(float_model, "int8", calibration=images(), output=tmp / "m_int8.tflite",
                      report=False, per_layer=False).path


def test_ethos_u_board_profile_reports_npu_placement(emulated_board, stand_in_delegate,
                                                     int8_model) -> None:
    from sdk.devices.emulated.npu import npu_board_config

    board = npu_board_config(emulated_board, "ethos-u")
    profile = sdk.profile(int8_model, board, runs=3, warmup=1)
    npu = profile.npu
    assert npu is not None and npu.stack == "ethos-u" and npu.fallback is None, profile.notes
    assert npu.npu == ("CONV_2D#1", "FULLY_CONNECTED#3") and npu.nodes == 6
    assert npu.summary() == "NPU 2/6 nodes (33%)"
    # first run (the delegate's compile / warm-up) apart from the steady state
    assert profile.init_ms is not None and profile.first_run_ms is not None
    assert profile.latency.runs == 3
    # the model was not compiled by Vela: the real Ethos-U delegate would take nothing
    assert any("was not compiled by Vela" in n for n in profile.notes), profile.notes
    # the placement survives the JSON round trip (results databases, the farm)
    from sdk.devices.results import Profile

    assert Profile.from_dict(profile.to_dict()).npu == npu


def test_missing_npu_delegate_falls_back_to_the_cpu_with_a_warning(emulated_board, int8_model,
                                                                  tmp_path) -> None:
    from sdk.devices.emulated.npu import npu_board_config

    missing = str(tmp_path / "libvx_delegate.so")
    board = npu_board_config(emulated_board, "vx", delegate=missing)
    profile = sdk.profile(int8_model, board, runs=2, warmup=0)
    warnings = [n for n in profile.notes if n.startswith("warning: cannot load the NPU delegate")]
    assert len(warnings) == 1 and missing in warnings[0] and "ran on the CPU" in warnings[0]
    assert profile.npu is not None and profile.npu.npu == ()
    assert profile.npu.fallback is not None and "failed to load" in profile.npu.fallback
    assert profile.npu.nodes == 6 and profile.npu.summary().startswith("CPU only")
    assert profile.latency.runs == 2 and profile.delegates == ()
    # validate says so too: the outputs it compared are the CPU's
    check = sdk.validate(int8_model, board, images(2))
    assert any(n.startswith("warning: cannot load the NPU delegate") for n in check.notes), \
        check.notes


def test_missing_npu_delegate_with_fallback_error_stops(emulated_board, int8_model,
                                                        tmp_path) -> None:
    from sdk.devices.emulated.npu import npu_board_config
    from sdk.devices.errors import RunnerError

    missing = str(tmp_path / "libvx_delegate.so")
    board = npu_board_config(emulated_board, "vx", delegate=missing, fallback="error")
    with pytest.raises(RunnerError, match=r"NPU delegate .*libvx_delegate.so .* not on the dev"):
        sdk.profile(int8_model, board, runs=1, warmup=0)


def test_validate_and_deploy_on_an_npu_board(emulated_board, stand_in_delegate,
                                             int8_model) -> None:
    from sdk.devices.emulated.npu import npu_board_config

    board = npu_board_config(emulated_board, "delegate", name="imx8mp-standin")
    with sdk.deploy(int8_model, board) as dep:
        assert dep.runner.name == "litert-python"
        assert str(stand_in_delegate) in dep.runner.code_files()
    check = sdk.validate(int8_model, board, images(8))
    # the stand-in's int8 kernels round differently from XNNPACK's (as an NPU's would)
    assert check.samples == 8 and check.sqnr_db is not None and check.sqnr_db > 25, check


# ---------------------------------------------------------------------------- RKNN boards
@pytest.fixture()
def standin_rknn(int8_model, tmp_path):
    """A stand-in .rknn beside the INT8 export and a compile report naming it, laid out as
    `edgesdk export --target rk3588` leaves them (the toolkit itself is not run here: its
    placement is written as its report would give it: the final RESHAPE on the CPU)."""
    import json
    import shutil

    from sdk.converters.targets import NpuLayer, NpuReport
    from sdk.devices.emulated.npu import make_standin_rknn

    model = shutil.copy(int8_model, tmp_path / "m_int8.tflite")
    rknn = make_standin_rknn(model, tmp_path / "m_int8_rk3588.rknn")
    ops = ["CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    report = NpuReport(target="rk3588", compiler="rknn-toolkit2", compiler_version="2.5.0",
                       compiled_path=rknn, layers=[
                           NpuLayer(name=f"{op}:x", op_type=op,
                                    placement="CPU" if op == "RESHAPE" else "NPU")
                           for op in ops])
    (tmp_path / "m_int8.report.json").write_text(json.dumps({"target": report.to_dict()}))
    return rknn


def test_rknn_board_profile_through_rknnlite(emulated_board, standin_rknn) -> None:
    from sdk.devices.emulated.npu import npu_board_config

    board = npu_board_config(emulated_board, "rknn", core_mask="0_1_2")
    profile = sdk.profile(standin_rknn, board, runs=3, warmup=1)
    assert profile.runner == "rknn-lite" and "stand-in" in profile.runtime
    assert profile.init_ms is not None and profile.first_run_ms is not None
    assert profile.latency.runs == 3
    npu = profile.npu
    assert npu is not None and npu.stack == "rknn" and npu.source.startswith("compile report")
    assert npu.npu == ("CONV_2D#0", "FULLY_CONNECTED#2", "SOFTMAX#3")
    assert npu.cpu == ("RESHAPE#1",) and npu.summary() == "NPU 3/4 nodes (75%)"


def test_rknn_board_without_its_runtime_is_a_clear_error(emulated_board, standin_rknn) -> None:
    from sdk.devices.errors import RunnerError

    board = emulated_board.device_config(npu=_npu_config({"stack": "rknn"}).npu)
    with pytest.raises(RunnerError, match="no Python with rknn-toolkit-lite2 on the board"):
        sdk.profile(standin_rknn, board, runs=1, warmup=0)
    cpu_board = emulated_board.device_config()
    with pytest.raises(RunnerError, match=r'needs npu = \{ stack = "rknn" \}'):
        sdk.profile(standin_rknn, cpu_board, runs=1, warmup=0)


def test_standin_rknnlite_refuses_a_real_rknn(emulated_board, tmp_path) -> None:
    import sys

    from sdk.devices.emulated.npu import RKNN_STANDIN_PATH

    fake = tmp_path / "real.rknn"
    fake.write_bytes(b"RKNN\0\0\0\0" + bytes(64))
    sys.path.insert(0, str(RKNN_STANDIN_PATH))
    try:
        from rknnlite.api import RKNNLite

        lite = RKNNLite()
        assert lite.load_rknn(str(fake)) == -1
        assert lite.init_runtime() == -1
    finally:
        sys.path.remove(str(RKNN_STANDIN_PATH))
        sys.modules.pop("rknnlite.api", None)
        sys.modules.pop("rknnlite", None)


def test_rknn_board_validates_against_the_tflite_it_came_from(emulated_board, standin_rknn,
                                                              tmp_path) -> None:
    import json

    from sdk.devices.emulated.npu import npu_board_config

    board = npu_board_config(emulated_board, "rknn")
    check = sdk.validate(standin_rknn, board, images(8))
    assert check.runner == "rknn-lite" and "m_int8.tflite" in check.reference
    # the stand-in runs that very .tflite with LiteRT: the outputs match
    assert check.samples == 8 and check.top1_agreement == 1.0 and check.sqnr_db > 60, check
    # no compile report beside the .rknn: a clear error, not a guess at its inputs
    report = standin_rknn.with_name("m_int8.report.json")
    data = json.loads(report.read_text())
    data["target"]["compiled_path"] = "elsewhere.rknn"
    report.write_text(json.dumps(data))
    from sdk.devices.errors import RunnerError

    with pytest.raises(RunnerError, match="compiled from and the compile report"):
        sdk.validate(standin_rknn, board, images(2))


# ---------------------------------------------------------------------------- the farm
def test_farm_report_shows_npu_placement_beside_cpu_boards(emulated_board, stand_in_delegate,
                                                           int8_model, tmp_path) -> None:
    from farm_support import write_farm

    from sdk.devices.emulated.npu import npu_board_config
    from sdk.devices.farm import Farm
    from sdk.devices.farm.report import markdown, report_data

    npu_table = npu_board_config(emulated_board, "ethos-u").to_dict()
    assert npu_table["npu"]["stack"] == "ethos-u"
    farm_file = write_farm(tmp_path / "farm.toml", {
        "cpu-board": emulated_board.device_config().to_dict(), "npu-board": npu_table},
        defaults={"runs": 3, "warmup": 1, "cooldown": 0.0},
        farm={"retries": 0, "job_timeout": 120})
    run = Farm(farm_file).profile([int8_model], layers=False)
    assert len(run.ok) == 2, [r.error for r in run.results]
    jobs = {j["board"]: j for j in report_data(run)["jobs"]}
    assert jobs["cpu-board"]["npu"] is None
    assert jobs["npu-board"]["npu"]["npu"] == ["CONV_2D#1", "FULLY_CONNECTED#3"]
    assert jobs["npu-board"]["npu"]["npu_share"] == pytest.approx(2 / 6)
    assert jobs["npu-board"]["latency"]["p50_ms"] > 0
    # the Markdown table: latency on both boards, the NPU board's with its placement
    row = next(line for line in markdown(run).splitlines() if line.startswith("| m_int8"))
    assert "(NPU 33% (2/6))" in row and row.count(" / ") == 2, row
    # the plain table gets an NPU column: "-" on the CPU board
    table = run.table()
    assert table.splitlines()[0].split()[7] == "NPU", table  # after "p50 ms", "p90 ms"
    lines = {line.split()[1]: line for line in table.splitlines()
             if line.split()[:1] == ["m_int8.tflite"]}
    assert "NPU 33% (2/6)" in lines["npu-board"] and " - " in lines["cpu-board"], table


# ---------------------------------------------------------------------------- the edgesdk command
def test_edgesdk_profile_and_validate_on_a_configured_npu_board(emulated_board, int8_model,
                                                               stand_in_delegate, tmp_path,
                                                               monkeypatch, capsys) -> None:
    import json

    import numpy as np
    from farm_support import toml_dumps

    from sdk.cli import main
    from sdk.devices.emulated.npu import npu_board_config

    table = npu_board_config(emulated_board, "ethos-u").to_dict()
    # farm_support writes [boards.NAME]; the device config file's tables are [devices.NAME]
    text = toml_dumps({"boards": {"imx93": table}}).replace("[boards.", "[devices.")
    (tmp_path / "devices.toml").write_text(text)
    monkeypatch.setenv("EDGESDK_DEVICES", str(tmp_path / "devices.toml"))
    assert main(["profile", str(int8_model), "imx93", "--runs", "3", "--warmup", "0",
                 "--no-layers", "--json", "-q"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["npu"]["stack"] == "ethos-u" and doc["npu"]["npu"] == ["CONV_2D#1",
                                                                      "FULLY_CONNECTED#3"]
    assert doc["init_ms"] is not None and doc["first_run_ms"] is not None
    assert main(["profile", str(int8_model), "imx93", "--runs", "2", "--warmup", "0",
                 "--no-layers", "-q"]) == 0
    out = capsys.readouterr().out
    assert "NPU 2/6 nodes (33%) [ethos-u: interpreter]" in " ".join(out.split()), out
    np.save(tmp_path / "x.npy", images(4))
    code = main(["validate", str(int8_model), "imx93", "--inputs", str(tmp_path / "x.npy"),
                 "--json", "-q"])
    doc = json.loads(capsys.readouterr().out)
    # the stand-in's int8 kernels are 1 step off XNNPACK's here and there: high SQNR, and a
    # near-tie on random inputs may flip the top-1 (then validate fails, exit code 1)
    assert doc["samples"] == 4 and doc["outputs"][0]["sqnr_db"] > 30, doc
    assert code == (0 if doc["passed"] else 1)


def test_edgesdk_emulate_board_with_a_stand_in_npu(tmp_path, int8_model) -> None:
    import json
    import os
    import signal
    import subprocess
    import sys

    from sdk.devices.config import parse_device_tables

    proc = subprocess.Popen([sys.executable, "-m", "sdk", "emulate", "board", "--sandbox",
                             str(tmp_path / "b"), "--npu", "vx", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, start_new_session=True)
    try:
        assert proc.stdout is not None
        text = ""
        for line in proc.stdout:  # one JSON document, then nothing until stopped
            text += line
            if line == "}\n":
                break
        doc = json.loads(text)
        assert doc["config"]["npu"]["stack"] == "vx" and "npu = { " in doc["config_toml"]
        config = parse_device_tables({"devices": {doc["name"]: doc["config"]}})[doc["name"]]
        profile = sdk.profile(int8_model, config, runs=2, warmup=0, layers=False)
        assert profile.npu is not None and profile.npu.npu == ("CONV_2D#1", "FULLY_CONNECTED#3")
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(20) == 0
