"""`edgesdk devices` lists the adb server's phones, `emulate adb` prints the config to use,
`profile --top N` lists the N slowest layers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from sdk.cli import main
from sdk.cli.adb_server import list_server_devices, parse_devices_l
from sdk.cli.devices import slowest_layers

EDGESDK = [sys.executable, "-m", "sdk"]

LISTING = ("R58M12345ABC           device usb:1-1 product:dm3q model:SM_S918B device:dm3q "
           "transport_id:3\n"
           "192.168.1.20:5555      device product:lynx model:Pixel_7a device:lynx "
           "transport_id:4\n"
           "emulator-5554          unauthorized transport_id:5\n")


class FakeAdbServer:
    """An adb server's socket protocol: answers host:devices-l with LISTING."""

    def __init__(self, answer: bytes = b"OKAY") -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                length = int(conn.recv(4), 16)
                self.requests.append(conn.recv(length))
                body = LISTING.encode()
                conn.sendall(self.answer + b"%04x" % len(body) + body)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def adb_server(monkeypatch):
    server = FakeAdbServer()
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(server.port))
    monkeypatch.setenv("ANDROID_ADB_SERVER_ADDRESS", "127.0.0.1")
    yield server
    server.close()


def test_parse_devices_l() -> None:
    phones = parse_devices_l(LISTING)
    assert [p.device_string for p in phones] == [
        "adb:R58M12345ABC", "adb:tcp:192.168.1.20:5555", "adb:emulator-5554"]
    assert [p.state for p in phones] == ["device", "device", "unauthorized"]
    assert phones[0].properties["model"] == "SM_S918B" and not phones[0].networked
    assert phones[1].networked


def test_devices_lists_the_adb_servers_phones(adb_server, tmp_path, capsys) -> None:
    config = tmp_path / "devices.toml"
    config.write_text('[devices.pi]\ndevice = "ssh:pi@10.0.0.9"\n')
    assert main(["devices", "--json", "--config", str(config)]) == 0
    captured = capsys.readouterr()
    assert adb_server.requests == [b"host:devices-l"]
    rows = {row["name"]: row for row in json.loads(captured.out)}
    assert rows["pi"]["source"] == "config" and "local" in rows
    assert rows["adb:R58M12345ABC"]["source"] == "adb server (USB)"
    assert rows["adb:tcp:192.168.1.20:5555"]["source"] == "adb server (network)"
    assert rows["adb:tcp:192.168.1.20:5555"]["device"] == "adb:tcp:192.168.1.20:5555"
    assert rows["adb:emulator-5554"]["state"] == "unauthorized"
    assert "adb server" not in captured.err  # it answered
    assert main(["devices", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "adb:tcp:192.168.1.20:5555" in out and "unauthorized" in out


def test_devices_without_an_adb_server(monkeypatch, tmp_path, capsys) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(port))  # nothing listens there now
    listing = list_server_devices()
    assert listing.devices == () and "no adb server" in (listing.unavailable or "")
    empty = tmp_path / "devices.toml"
    empty.write_text("")
    assert main(["devices", "--config", str(empty)]) == 0
    captured = capsys.readouterr()
    assert "local" in captured.out and "no adb server" in captured.err


def test_emulate_adb_prints_the_device_config(tmp_path) -> None:
    from sdk.devices import open_device
    from sdk.devices.config import _toml_loads, parse_device_tables

    proc = subprocess.Popen([*EDGESDK, "emulate", "adb", "--port", "0", "--sandbox",
                             str(tmp_path / "s"), "--no-python"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            start_new_session=True)
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        text = "".join(lines)
        assert "[devices." in text, text + (proc.stderr.read() if proc.stderr else "")
        toml = text[text.index("[devices."):text.index("Ctrl-C")]
        config = parse_device_tables(_toml_loads(toml))["emulated-phone-aarch64"]
        assert config.transport == "adb" and config.abi == "arm64-v8a"
        with open_device(config) as device:  # the printed config alone reaches the phone
            assert device.shell("getprop", "ro.product.model").stdout.startswith("Emulated")
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(20) == 0


def test_slowest_layers_ranks_by_time() -> None:
    layers = [SimpleNamespace(name=n, mean_ms=t) for n, t in
              (("a", 0.1), ("b", 0.5), ("c", None), ("d", 0.3), ("e", 0.5))]
    assert [x.name for x in slowest_layers(layers, 3)] == ["b", "e", "d"]
    assert [x.name for x in slowest_layers(layers, 10)] == ["b", "e", "d", "a", "c"]
    assert slowest_layers(layers, 0) == []


def test_profile_top_lists_the_slowest(tmp_path, capsys) -> None:
    from farm_support import build_mlp

    model = build_mlp(Path(tmp_path) / "mlp.tflite")
    assert main(["profile", str(model), "local", "--runs", "3", "--warmup", "0", "--top", "2",
                 "--json", "-q"]) == 0
    doc = json.loads(capsys.readouterr().out)
    ranked = sorted(doc["per_layer"], key=lambda x: -x["mean_ms"])
    assert doc["slowest_layers"] == [x["name"] for x in ranked[:2]]
    assert main(["profile", str(model), "local", "--runs", "3", "--warmup", "0", "--top", "2",
                 "-q"]) == 0
    out = capsys.readouterr().out
    assert f"the 2 slowest of {len(doc['per_layer'])} layers" in out


def test_emulate_board_json_is_the_config(tmp_path) -> None:
    from sdk.devices import open_device
    from sdk.devices.config import parse_device_tables

    proc = subprocess.Popen([*EDGESDK, "emulate", "board", "--sandbox", str(tmp_path / "b"),
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, start_new_session=True)
    try:
        assert proc.stdout is not None
        text = ""
        for line in proc.stdout:  # one JSON document, then nothing until stopped
            text += line
            if line == "}\n":
                break
        doc = json.loads(text)
        assert doc["kind"] == "board" and doc["device"].startswith("ssh:")
        config = parse_device_tables({"devices": {doc["name"]: doc["config"]}})[doc["name"]]
        with open_device(config) as device:
            assert device.info().abi == "arm64-v8a"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(20) == 0


@pytest.mark.parametrize(("argv", "code", "says"), [
    # a wrong value on the command line: usage (2), before any device is touched
    (["validate", "{model}", "local", "--inputs", "random:abc"], 2, "random:N takes a number"),
    (["validate", "{model}", "local", "--inputs", "random:0"], 2, "random:N takes a number"),
    (["validate", "{model}", "local", "--inputs", "x.csv"], 2, "give a .npy/.npz file"),
    (["profile", "{model}", "local", "--runs", "0"], 2, "runs must be >= 1, not 0"),
    (["profile", "{model}", "local", "--warmup", "-1"], 2, "warmup must be >= 0, not -1"),
    # input arrays that cannot be used: bad input (3), named
    (["validate", "{model}", "local", "--inputs", "{missing}"], 3, "no such file"),
    (["validate", "{model}", "local", "--inputs", "{wrong}"], 3,
     "expected (N, 8) samples, got shape (4, 3)"),
])
def test_bad_values_name_the_problem(tmp_path, capsys, argv, code, says) -> None:
    """These used to end in `internal error (a bug)` (exit 70: a ValueError, int('abc')) or
    in exit 4, `device`, for a file name of the wrong kind."""
    import numpy as np
    from farm_support import build_mlp

    model = build_mlp(Path(tmp_path) / "mlp.tflite", sizes=(8, 4))
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((4, 3), np.float32))
    paths = {"model": model, "missing": tmp_path / "missing.npy", "wrong": wrong}
    assert main([a.format(**paths) for a in argv]) == code
    assert says in capsys.readouterr().err
