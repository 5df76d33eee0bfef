"""Device strings and the TOML device config file."""

from __future__ import annotations

import pytest

from sdk.devices import (
    DeviceConfig,
    DeviceConfigError,
    load_device_config,
    parse_device_string,
    resolve_device,
)


@pytest.mark.parametrize(("text", "transport", "address"), [
    ("local", "local", ""),
    ("adb", "adb", ""),
    ("adb:R58M12345", "adb", "R58M12345"),
    ("adb:emulator-5554", "adb", "emulator-5554"),
    ("adb:tcp:192.168.1.7:5555", "adb", "tcp:192.168.1.7:5555"),
    ("ssh:pi@rpi4.local", "ssh", "pi@rpi4.local"),
    ("ssh:pi@10.0.0.2:2222", "ssh", "pi@10.0.0.2:2222"),
    ("ssh:board", "ssh", "board"),
])
def test_device_strings(text, transport, address):
    config = parse_device_string(text)
    assert (config.transport, config.address) == (transport, address)
    assert config.device_string == text


def test_address_parts():
    assert parse_device_string("ssh:pi@10.0.0.2:2222").ssh_target() == ("pi", "10.0.0.2", 2222)
    assert parse_device_string("ssh:[::1]:22").ssh_target() == (None, "::1", 22)
    assert parse_device_string("ssh:host").ssh_target() == (None, "host", None)
    assert parse_device_string("adb:tcp:127.0.0.1:5555").adb_tcp() == ("127.0.0.1", 5555)
    assert parse_device_string("adb:SERIAL").adb_tcp() is None


@pytest.mark.parametrize("text", ["adb:tcp:host", "ssh:", "ssh:pi@host:99999", "usb:1234",
                                  "adb:tcp::5555"])
def test_bad_device_strings(text):
    with pytest.raises(DeviceConfigError, match="device"):
        parse_device_string(text)


CONFIG = """
[devices.rpi4]
transport = "ssh"
address = "pi@rpi4.local:2222"
abi = "aarch64"
cpus = "2-3"
threads = 2
exec_prefix = "qemu-aarch64-static -cpu max"
runner = { python = "/home/pi/venv/bin/python", xnnpack = false }
env = { OMP_NUM_THREADS = 1 }

[devices.vim3]
device = "ssh:khadas@vim3"
delegates = [{ name = "vx", path = "/usr/lib/libvx_delegate.so", options = { cache = "/tmp" } }]

[devices.pixel]
transport = "adb"
address = "1A2B3C4D"
runner = { benchmark_model = "~/android/benchmark_model" }
"""


def test_config_file(tmp_path):
    path = tmp_path / "devices.toml"
    path.write_text(CONFIG)
    config = load_device_config(path)
    rpi = config["rpi4"]
    assert rpi.transport == "ssh" and rpi.ssh_target() == ("pi", "rpi4.local", 2222)
    assert rpi.abi == "arm64-v8a"  # normalised from the arch name
    assert rpi.exec_prefix == ("qemu-aarch64-static", "-cpu", "max")
    assert rpi.runner.python == "/home/pi/venv/bin/python" and rpi.runner.xnnpack is False
    assert rpi.cpus == "2-3" and rpi.threads == 2 and rpi.env == {"OMP_NUM_THREADS": "1"}
    vim3 = config["vim3"]
    assert vim3.address == "khadas@vim3"
    assert vim3.delegates[0].path == "/usr/lib/libvx_delegate.so"
    assert vim3.delegates[0].options == {"cache": "/tmp"}
    assert config["pixel"].runner.benchmark_model == "~/android/benchmark_model"
    # names resolve through the file; device strings still work
    assert resolve_device("rpi4", config=config) is rpi
    assert resolve_device("ssh:a@b", config=config).address == "a@b"
    # the dict form round-trips (the farm writes configs back)
    assert DeviceConfig.from_dict("rpi4", rpi.to_dict()) == rpi


@pytest.mark.parametrize(("body", "message"), [
    ('[devices.x]\ntransport = "serial"', "unknown transport 'serial'"),
    ('[devices.x]\ntransport = "ssh"\naddress = "h"\nthreds = 2', "field 'threds'"),
    ('[devices.x]\ntransport = "ssh"\naddress = "h"\nthreads = "2"', "expected int"),
    ('[devices.x]\ntransport = "ssh"\naddress = "h"\nabi = "mips"', "unknown ABI 'mips'"),
    ('[devices.x]\ntransport = "ssh"', "needs an address"),
    ('[devices.x]\naddress = "h"', "missing 'transport'"),
    ('[devices.x]\ntransport = "ssh"\naddress = "h"\ndelegates = [{ name = "vx" }]', "'path'"),
    ('[devices.local]\ntransport = "local"', "reserved"),
    ('devices = 3', "must be a table"),
    ('[devices.x\n', "cannot parse TOML"),
])
def test_config_errors_name_file_device_and_field(tmp_path, body, message):
    path = tmp_path / "devices.toml"
    path.write_text(body)
    with pytest.raises(DeviceConfigError, match=message) as info:
        load_device_config(path)
    assert str(path) in str(info.value)


def test_unknown_name_lists_known_devices(tmp_path):
    path = tmp_path / "devices.toml"
    path.write_text(CONFIG)
    with pytest.raises(DeviceConfigError, match=r"no device named 'rpi5'.*rpi4, vim3, pixel"):
        resolve_device("rpi5", config=path)


def test_default_config_path_from_env(tmp_path, monkeypatch):
    path = tmp_path / "mine.toml"
    path.write_text(CONFIG)
    monkeypatch.setenv("EDGESDK_DEVICES", str(path))
    assert resolve_device("pixel").address == "1A2B3C4D"
    monkeypatch.setenv("EDGESDK_DEVICES", str(tmp_path / "absent.toml"))
    assert load_device_config().devices == {}
