"""`edgesdk devices | deploy | profile | validate | emulate` from the shell."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sdk.cli import main
from sdk.devices import open_device, parse_device_string
from sdk.devices.config import _toml_loads, parse_device_tables

EDGESDK = [sys.executable, "-m", "sdk"]


@pytest.fixture
def device_file(tmp_path, emulated_board, emulated_phone):
    """A device config file naming the emulated board and phone."""
    from sdk.cli.devices import _toml_table

    board = emulated_board.device_config(name="board")
    phone = emulated_phone.device_config(name="phone", adb_key=str(tmp_path / "adbkey"))
    path = tmp_path / "devices.toml"
    path.write_text(_toml_table(board) + "\n" + _toml_table(phone))
    assert parse_device_tables(_toml_loads(path.read_text()))["board"] == board
    return path


def test_devices_probe(device_file, capsys):
    assert main(["devices", "--probe", "--json", "--config", str(device_file)]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) >= {"board", "phone", "local"}
    assert rows["board"]["status"] == rows["phone"]["status"] == "ok"
    assert rows["phone"]["info"]["abi"] == "arm64-v8a"
    assert rows["phone"]["info"]["os"] == "Android 14 (SDK 34)"
    assert "qemu-aarch64" in rows["board"]["info"]["emulated"]
    assert rows["local"]["info"]["emulated"] is None
    assert main(["devices", "--config", str(device_file)]) == 0
    assert "ssh:" in capsys.readouterr().out


@pytest.mark.tf
def test_profile_and_validate_commands(device_file, digits_int8_tflite, digits_data, tmp_path,
                                       capsys):
    rc = main(["profile", str(digits_int8_tflite), "board", "--config", str(device_file),
               "--runs", "5", "--warmup", "1", "--json", "-q"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["runner"] == "litert-python" and report["latency"]["runs"] == 5
    assert report["device"]["abi"] == "arm64-v8a" and report["notes"]
    inputs = tmp_path / "digits.npy"
    np.save(inputs, digits_data.x_test[:16])
    out = tmp_path / "validation.json"
    rc = main(["validate", str(digits_int8_tflite), "phone", "--config", str(device_file),
               "--inputs", str(inputs), "--json-out", str(out), "-q"])
    text = capsys.readouterr().out
    assert rc == 0 and "PASSED" in text
    assert json.loads(out.read_text())["exact"] is True


def test_clear_errors(tmp_path, capsys):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    assert main(["deploy", str(model), "nosuchboard", "--config", str(tmp_path / "none.toml")]) == 3
    assert "file not found" in capsys.readouterr().err
    empty = tmp_path / "devices.toml"
    empty.write_text("")
    assert main(["deploy", str(model), "nosuchboard", "--config", str(empty)]) == 3
    assert "no device named 'nosuchboard'" in capsys.readouterr().err


def _start(args: list[str], tmp_path: Path) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen([*EDGESDK, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, start_new_session=True)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Ctrl-C"):
            return proc, lines
    errors = proc.stderr.read() if proc.stderr else ""
    raise AssertionError(f"did not start: {''.join(lines)} {errors}")


def _stop(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(20) == 0


def test_emulate_adb_command(tmp_path):
    from sdk.devices.adb import ensure_adb_key

    ensure_adb_key(tmp_path / "k")  # keys are authorised explicitly
    proc, lines = _start(["emulate", "adb", "--port", "0", "--sandbox", str(tmp_path / "s"),
                          "--no-python", "--authorize-key", str(tmp_path / "k.pub")], tmp_path)
    try:
        address = next(x.split()[-1] for x in lines if "edgesdk:" in x)
        config = parse_device_string(address).replace(adb_key=str(tmp_path / "k"))
        with open_device(config) as device:
            assert device.shell("getprop", "ro.product.model").stdout.startswith("Emulated")
    finally:
        _stop(proc)


def test_emulate_board_command(tmp_path):
    proc, lines = _start(["emulate", "board", "--sandbox", str(tmp_path / "b")], tmp_path)
    try:
        text = "".join(lines)
        toml = text[text.index("[devices."):text.index("Ctrl-C")]
        config = parse_device_tables(_toml_loads(toml))["emulated-aarch64"]
        with open_device(config) as device:
            assert device.info().abi == "arm64-v8a"
    finally:
        _stop(proc)
