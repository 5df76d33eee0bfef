"""Issue 13, hole 9: env names that are `env` options, file names with a backslash or a newline,
and ssh settings that turn host-key checking off."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from sdk.devices import DeviceAuthError, DeviceConfig, LocalDevice, load_device_config, open_device
from sdk.devices.errors import DeviceConfigError, HostKeyWarning

#: a backslash (sha256sum escapes its output line for it), a newline, a leading dash, quotes
ODD_NAMES = ["back\\slash.bin", "new\nline.bin", "-dash\\n\nboth.bin", "q'uo\"te\\.bin"]
#: with GNU env, `-S` / `--split-string` in an argument's name part makes env run a command
SPLIT_KEYS = ["-Ssh -c 'touch {marker}' #", "--split-string=sh -c 'touch {marker}' #",
              "A-B", "1ST", "", "X Y", "X=Y"]


# ---------------------------------------------------------------------------- env names
@pytest.mark.parametrize("key", SPLIT_KEYS)
def test_env_names_are_posix_names_at_config_load(tmp_path, key):
    key = key.format(marker=tmp_path / "PWNED")
    path = tmp_path / "devices.toml"
    quoted = key.replace("\\", "\\\\").replace('"', '\\"')
    path.write_text(f'[devices.box]\ntransport = "local"\nenv = {{ "{quoted}" = "1" }}\n')
    with pytest.raises(DeviceConfigError, match="is not a POSIX name") as info:
        load_device_config(path)
    assert str(path) in str(info.value) and "device 'box'" in str(info.value)
    assert info.value.field == f"env.{key}"
    with pytest.raises(DeviceConfigError, match="is not a POSIX name"):
        DeviceConfig(name="box", transport="local", env={key: "1"})


def test_env_names_are_checked_per_run_and_values_pass_intact(tmp_path):
    marker = tmp_path / "PWNED"
    with LocalDevice(DeviceConfig(name="box", transport="local",
                                  workdir=str(tmp_path / "w"))) as device:
        with pytest.raises(DeviceConfigError, match="is not a POSIX name"):
            device.run(["true"], env={f"-Ssh -c 'touch {marker}' #": "1"})
        value = f"$(touch {marker}) `touch {marker}`; 'q' \"d\" \\ -S x\nline"
        result = device.run(["sh", "-c", 'printf %s "$V_1"'], env={"V_1": value})
        assert result.stdout == value
    assert not marker.exists()
    ok = DeviceConfig(name="box", transport="local", env={"_OMP_NUM_THREADS2": "1"})
    assert ok.env == {"_OMP_NUM_THREADS2": "1"}
    with pytest.raises(DeviceConfigError, match="NUL"):
        DeviceConfig(name="box", transport="local", env={"A": "a\0b"})


# ---------------------------------------------------------------------------- odd names
def _round_trip(device, tmp_path: Path) -> None:
    for i, name in enumerate(ODD_NAMES):
        src = tmp_path / "src" / name
        src.parent.mkdir(exist_ok=True)
        src.write_bytes(b"#!/bin/sh\necho ran %d\n" % i)
        remote = device.push(src, mode=0o755)
        assert remote.endswith("/" + name)
        assert device.remote_sha256(remote) is not None
        assert device.push(src, mode=0o755) == remote  # identical: recognised, not resent
        assert device.run([remote]).stdout == f"ran {i}\n"  # checksummed right before it runs
        back = device.pull(remote, tmp_path / f"back{i}" / name)
        assert back.read_bytes() == src.read_bytes()


def test_names_with_backslash_or_newline_local(tmp_path):
    with LocalDevice(DeviceConfig(name="box", transport="local",
                                  workdir=str(tmp_path / "w"))) as device:
        _round_trip(device, tmp_path)


def test_names_with_backslash_or_newline_board(emulated_board, tmp_path):
    with open_device(emulated_board.device_config(workdir=str(tmp_path / "w"))) as device:
        _round_trip(device, tmp_path)


# ---------------------------------------------------------------------------- host keys
def _ssh_config(tmp_path: Path, known: str) -> Path:
    path = tmp_path / "ssh_config"
    path.write_text(f"Host *\n  UserKnownHostsFile {known}\n")
    return path


def test_known_hosts_none_in_ssh_config_warns_naming_the_device(emulated_board, tmp_path):
    config = emulated_board.device_config(name="rpi-lab", known_hosts=None,
                                          ssh_config=str(_ssh_config(tmp_path, "none")),
                                          workdir=str(tmp_path / "w"))
    warned = pytest.warns(HostKeyWarning, match=r"device 'rpi-lab'.*UserKnownHostsFile none.*"
                                                 r"NOT checked")
    with warned, open_device(config) as device:
        assert device.shell("true").ok


@pytest.mark.parametrize("where", ["ssh_config", "device_config"])
def test_known_hosts_dev_null_warns_and_unknown_keys_stay_refused(emulated_board, tmp_path,
                                                                   where):
    if where == "ssh_config":
        config = emulated_board.device_config(
            name="rpi-lab", known_hosts=None, accept_new_host_key=True,
            ssh_config=str(_ssh_config(tmp_path, os.devnull)))
    else:
        config = emulated_board.device_config(name="rpi-lab", known_hosts=os.devnull,
                                              accept_new_host_key=True)
    with pytest.warns(HostKeyWarning, match=r"device 'rpi-lab'.*/dev/null"), \
            pytest.raises(DeviceAuthError):
        open_device(config)


def test_real_known_hosts_gives_no_warning_and_refuses_unknown_keys(emulated_board, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    config = emulated_board.device_config(known_hosts=None,
                                          ssh_config=str(_ssh_config(tmp_path, str(known))))
    with warnings.catch_warnings():
        warnings.simplefilter("error", HostKeyWarning)
        with pytest.raises(DeviceAuthError, match="not trusted"):
            open_device(config)
        with open_device(emulated_board.device_config()) as device:  # its own known_hosts
            assert device.shell("true").ok
