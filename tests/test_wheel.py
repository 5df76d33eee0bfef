"""Issue 16's bar: `pip install` of the built wheel is all a user needs.

`make wheel-check` builds the wheel (`make wheel`: every device ABI inside, auditwheel-repaired)
and a wheelhouse of its dependencies (`make wheelhouse`, downloaded once), then runs this file
with EDGESDK_WHEEL / EDGESDK_WHEELHOUSE set. In a fresh venv (`python -m venv`, no system site
packages), the wheel and the extras' dependencies are installed from the wheelhouse only
(`--no-index --only-binary=:all:`: no network, nothing built). Then, from an empty folder with no
checkout on the path, the digits CNN is exported to ternary .edge, deployed to the emulated
aarch64 phone (our ADB daemon; edge-run for arm64-v8a under qemu), profiled and validated.
`make wheel-aarch64-check` runs the last test here: the aarch64 wheel (cross-built, for a Pi)
under qemu with Debian's aarch64 Python. Docs: docs/install.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.qemu]
needs_wheel = pytest.mark.skipif(not os.environ.get("EDGESDK_WHEEL"),
                                 reason="needs the built wheel: run `make wheel-check`")
needs_aarch64_wheel = pytest.mark.skipif(
    not os.environ.get("EDGESDK_WHEEL_AARCH64"),
    reason="needs the aarch64 wheel and Debian's aarch64 Python: run `make wheel-aarch64-check`")

CHECKOUT = Path(__file__).resolve().parent.parent
#: ELF e_machine of each ABI's binaries
ELF_MACHINES = {"arm64-v8a": 183, "armeabi-v7a": 40, "x86_64": 62}
DEVICE_FILES = ("edge-run", "libedgesdk_delegate.so")

# Run by the fresh venv's Python from an empty folder: the user's path, end to end.
USER_SCRIPT = r'''
import json, os, sys, time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
t0 = time.perf_counter()
import sdk
from sdk.base import artifacts
from sdk.devices.emulated import EmulatedPhone
from sdk.examples import digits, digits_cnn

data = digits()
model = digits_cnn(data, epochs=6)
edge = sdk.export(model, "ternary", calibration=data.x_train[:256],
                  output=Path("digits_ternary.edge"), report=False)
t_export = time.perf_counter()
with EmulatedPhone(arch="aarch64") as phone:
    device = phone.device_config(name="emulated-phone")
    with sdk.deploy(edge.path, device) as deployment:
        runner = deployment.runner.name
    profile = sdk.profile(edge.path, device, runs=5, warmup=1)
    validation = sdk.validate(edge.path, device, data.x_test[:16])
t_device = time.perf_counter()
print("RESULT " + json.dumps({
    "sdk_file": sdk.__file__,
    "checkout": str(artifacts.checkout_root()),
    "edge_run_arm64": str(artifacts.find_artifact("edge-run", "arm64-v8a")),
    "modules_from": sorted({str(Path(m.__file__).resolve().parents[1])
                            for m in list(sys.modules.values())
                            if getattr(m, "__name__", "").startswith("sdk")
                            and getattr(m, "__file__", None)}),
    "runner": runner,
    "machine": profile.machine,
    "emulated": profile.emulated,
    "p50_ms": profile.latency.p50_ms,
    "mean_ms": profile.latency.mean_ms,
    "exact": validation.exact,
    "sqnr_db": validation.sqnr_db if validation.sqnr_db != float("inf") else "inf",
    "export_s": round(t_export - t0, 1),
    "device_s": round(t_device - t_export, 1),
}))
'''


def _wheel() -> Path:
    return Path(os.environ["EDGESDK_WHEEL"])


def _clean_env(venv: Path) -> dict[str, str]:
    """The environment of a user's shell: the venv first on PATH, nothing of the checkout."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "EDGESDK_", "VIRTUAL_ENV", "PYTEST"))}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), "/usr/local/sbin", "/usr/local/bin",
                                   "/usr/sbin", "/usr/bin", "/sbin", "/bin"])
    env["VIRTUAL_ENV"] = str(venv)
    env["PIP_NO_INDEX"] = "1"  # belt and braces: no network
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


@needs_wheel
def test_wheel_carries_every_device_abi() -> None:
    """sdk/bin/<abi>/{edge-run, delegate} for every ABI, each an ELF of that ABI, edge-run
    static (no interpreter), and a manifest saying every ABI was built."""
    with zipfile.ZipFile(_wheel()) as whl:
        names = set(whl.namelist())
        for abi, machine in ELF_MACHINES.items():
            for name in DEVICE_FILES:
                member = f"sdk/bin/{abi}/{name}"
                assert member in names, f"{member} missing from {_wheel().name}"
                data = whl.read(member)
                assert data[:4] == b"\x7fELF", member
                little = data[5] == 1
                e_machine = int.from_bytes(data[18:20], "little" if little else "big")
                assert e_machine == machine, f"{member}: e_machine {e_machine}, want {machine}"
                if name == "edge-run":
                    assert b"ld-linux" not in data[:4096] and b"/lib/ld" not in data[:4096], \
                        f"{member} is dynamically linked (PT_INTERP present)"
        manifest = json.loads(whl.read("sdk/bin/manifest.json"))
        assert {abi: e["built"] for abi, e in manifest["abis"].items()} == \
            dict.fromkeys(ELF_MACHINES, True)
        assert "sdk/devices/emulated/exec_shim.c" in names


@needs_wheel
def test_wheel_is_manylinux_and_auditwheel_clean() -> None:
    assert "manylinux" in _wheel().name, f"{_wheel().name} has no manylinux tag"
    auditwheel = Path(sys.executable).with_name("auditwheel")
    if not auditwheel.exists():
        pytest.skip("auditwheel is not installed (the [dev] extra)")
    r = subprocess.run([str(auditwheel), "show", str(_wheel())], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    said = " ".join(r.stdout.split())  # auditwheel wraps its lines
    tag = _wheel().name.removesuffix(".whl").split("-")[-1]
    assert f'is consistent with the following platform tag: "{tag}"' in said, said


@needs_wheel
def test_fresh_venv_export_deploy_profile_validate(tmp_path: Path) -> None:
    wheelhouse = Path(os.environ["EDGESDK_WHEELHOUSE"])
    extras = os.environ.get("EDGESDK_WHEEL_EXTRAS", "tf,devices,examples")
    venv = tmp_path / "venv"
    env = _clean_env(venv)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index",
         "--only-binary=:all:", "--find-links", str(wheelhouse), f"edgesdk[{extras}]"],
        capture_output=True, text=True, env=env, timeout=1200, cwd=tmp_path)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    t_install = time.perf_counter() - t0

    work = tmp_path / "empty"
    work.mkdir()
    (tmp_path / "user.py").write_text(USER_SCRIPT)
    t1 = time.perf_counter()
    r = subprocess.run([str(venv / "bin" / "python"), str(tmp_path / "user.py")],
                       capture_output=True, text=True, env=env, cwd=work, timeout=1800)
    t_user = time.perf_counter() - t1
    assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
    line = next(x for x in r.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    print(f"\nwheel check: install {t_install:.0f} s, user script {t_user:.0f} s: {result}")

    site = venv.resolve()
    # everything came from the fresh venv, nothing from the checkout
    assert result["checkout"] == "None"
    assert Path(result["sdk_file"]).resolve().is_relative_to(site)
    assert all(Path(p).is_relative_to(site) for p in result["modules_from"]), \
        result["modules_from"]
    assert not any(Path(p).is_relative_to(CHECKOUT) for p in result["modules_from"])
    edge_run = Path(result["edge_run_arm64"]).resolve()
    assert edge_run.is_relative_to(site) and edge_run.parts[-3:] == ("bin", "arm64-v8a",
                                                                     "edge-run")
    # it ran on the emulated aarch64 phone, with our edge-run, and matched this host
    assert result["runner"] == "edge-run"
    assert result["machine"] == "aarch64"
    assert result["exact"] or result["sqnr_db"] == "inf" or result["sqnr_db"] >= 30.0, result



def _configure_without_cross_compilers(tmp_path: Path, *extra: str
                                       ) -> subprocess.CompletedProcess[str]:
    """Configure the wheel's CMake project as `pip install .` does, on a machine where no cross
    compiler is found (CMAKE_IGNORE_PATH hides the system's; the host compiler is named)."""
    import shutil

    import pybind11

    cxx, cc = shutil.which("g++"), shutil.which("gcc")
    if not cxx or not cc:
        pytest.skip("no host compiler")
    bindir = Path(sys.executable).parent
    return subprocess.run(
        [str(bindir / "cmake"), "-S", str(CHECKOUT / "native"), "-B", str(tmp_path / "b"),
         "-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={bindir / 'ninja'}",
         f"-DCMAKE_CXX_COMPILER={cxx}", f"-DCMAKE_C_COMPILER={cc}",
         "-DEDGE_BUILD_PYTHON=ON", "-DEDGE_BUNDLE_DEVICE_ABIS=ON",
         f"-Dpybind11_DIR={pybind11.get_cmake_dir()}", f"-DPython_EXECUTABLE={sys.executable}",
         # (uname named: CMake finds the processor with it)
         f"-DCMAKE_UNAME={shutil.which('uname')}",
         "-DCMAKE_IGNORE_PATH=/usr/bin;/bin;/usr/local/bin", *extra],
        capture_output=True, text=True, timeout=600)


def test_a_build_without_cross_compilers_says_what_it_lacks(tmp_path: Path) -> None:
    """`pip install .` from a clone on a machine without the Arm cross compilers still builds
    (this host's ABI only), warns naming each missing compiler and its Debian package, and the
    wheel's manifest records why (what the lookup's error repeats); make wheel's strict mode
    (EDGE_REQUIRE_DEVICE_ABIS=ON) refuses instead."""
    r = _configure_without_cross_compilers(tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "this wheel leaves out device ABIs" in r.stderr, r.stderr[-3000:]
    assert "apt-get install g++-aarch64-linux-gnu" in r.stderr
    manifest = json.loads((tmp_path / "b" / "device-manifest.json").read_text())["abis"]
    assert manifest["arm64-v8a"]["built"] is False
    assert "no aarch64-linux-gnu-g++" in manifest["arm64-v8a"]["reason"]
    assert "no arm-linux-gnueabihf-g++" in manifest["armeabi-v7a"]["reason"]
    assert manifest["x86_64"]["built"] is True  # this host's own ABI

    strict = _configure_without_cross_compilers(tmp_path / "strict",
                                                "-DEDGE_REQUIRE_DEVICE_ABIS=ON")
    assert strict.returncode != 0
    assert "device ABIs cannot be built" in strict.stderr


# Run by Debian's aarch64 Python under qemu-user, with the aarch64 wheel unpacked on its path.
AARCH64_SCRIPT = r"""
import json, platform, sys
import numpy as np
import sdk
from sdk.base import artifacts, native
from sdk.run.edge import EdgeModel

np.save(sys.argv[3], EdgeModel(sys.argv[1]).run(np.load(sys.argv[2]))[0])
print("RESULT " + json.dumps({
    "machine": platform.machine(), "sdk_file": sdk.__file__,
    "features": sorted(k for k, v in native.cpu_features().items() if v is True),
    "host_abi": artifacts.host_abi(),
    "found": {abi: {kind: str(artifacts.find_artifact(kind, abi)) for kind in artifacts.FILES}
              for abi in artifacts.ABIS},
    "in_process_delegate": str(artifacts.find_artifact("delegate", "arm64-v8a",
                                                       in_process=True)),
}))
"""


@needs_aarch64_wheel
def test_aarch64_wheel_runs_the_sdk_on_an_arm_host(tmp_path: Path, digits_keras,
                                                   digits_data) -> None:
    """The aarch64 wheel's SDK (its own extension, the lookup, the .edge runtime) under qemu with
    Debian's aarch64 Python: same outputs as this host's runtime, every ABI found in the wheel."""
    import numpy as np

    import sdk
    from sdk.run.edge import EdgeModel

    wheel = Path(os.environ["EDGESDK_WHEEL_AARCH64"])
    assert "manylinux" in wheel.name and wheel.name.endswith("_aarch64.whl"), wheel.name
    with zipfile.ZipFile(wheel) as whl:
        ext = [n for n in whl.namelist() if n.startswith("sdk/_native.")]
        assert ext == ["sdk/_native.cpython-311-aarch64-linux-gnu.so"] or \
            (len(ext) == 1 and "aarch64-linux-gnu" in ext[0]), ext
        head = whl.read(ext[0])[:20]
        assert int.from_bytes(head[18:20], "little") == ELF_MACHINES["arm64-v8a"]
    site = Path(os.environ["EDGESDK_AARCH64_SITE"])
    sysroot = Path(os.environ["EDGESDK_AARCH64_SYSROOT"])
    python = sysroot / "usr" / "bin" / os.environ.get("EDGESDK_AARCH64_PYTHON", "python3.11")

    model = sdk.export(digits_keras, "ternary", calibration=digits_data.x_train[:256],
                       output=tmp_path / "digits_ternary.edge", report=False).path
    x = digits_data.x_test[:1]
    np.save(tmp_path / "x.npy", x)
    want = EdgeModel(model).run(x)[0]
    (tmp_path / "arm.py").write_text(AARCH64_SCRIPT)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(site),
           "PYTHONNOUSERSITE": "1", "HOME": str(tmp_path)}
    r = subprocess.run(["qemu-aarch64-static", "-cpu", "max", "-L", str(sysroot), str(python),
                        str(tmp_path / "arm.py"), str(model), str(tmp_path / "x.npy"),
                        str(tmp_path / "y.npy")],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    result = json.loads(next(x for x in r.stdout.splitlines()
                             if x.startswith("RESULT ")).removeprefix("RESULT "))
    print(f"\naarch64 wheel under qemu: {result}")
    assert result["machine"] == "aarch64" and result["host_abi"] == "arm64-v8a"
    assert Path(result["sdk_file"]).is_relative_to(site)
    assert "neon" in result["features"]
    for abi, files in result["found"].items():
        for kind, path in files.items():
            assert Path(path).is_relative_to(site / "sdk" / "bin" / abi), (abi, kind, path)
    assert Path(result["in_process_delegate"]).parent in (site / "sdk", site / "sdk" / "bin" /
                                                          "arm64-v8a")
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want)
