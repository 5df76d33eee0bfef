"""One CLI look: exit codes from one table, `--json` alone on stdout, -q / -v / --log-level
reaching LiteRT's native INFO lines, dependency deprecation noise filtered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdk.cli import build_parser, main
from sdk.cli import exit_codes as ec

EDGESDK = [sys.executable, "-m", "sdk"]
XNNPACK_INFO = "INFO: Created TensorFlow Lite XNNPACK delegate"


@pytest.fixture(scope="module")
def mlp(tmp_path_factory) -> Path:
    from farm_support import build_mlp

    return build_mlp(tmp_path_factory.mktemp("cli_out") / "mlp.tflite")


def _edgesdk(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([*EDGESDK, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=env)


def test_exit_code_table_is_one_table_of_distinct_codes() -> None:
    from sdk.base import errors as e
    from sdk.devices.errors import DeviceConfigError, DeviceNotFoundError
    from sdk.run.edge import ModelInputError

    codes = [c.code for c in ec.EXIT_CODES]
    assert len(set(codes)) == len(codes)
    cases = {
        e.FidelityError("x"): ec.CHECK_FAILED,
        e.ModelFormatError("x"): ec.BAD_INPUT, e.ConversionError("x"): ec.BAD_INPUT,
        e.CalibrationError("x"): ec.BAD_INPUT, e.UnsupportedOpError("A", "n", []): ec.BAD_INPUT,
        ModelInputError("x"): ec.BAD_INPUT, DeviceConfigError("x"): ec.BAD_INPUT,
        DeviceNotFoundError("x"): ec.DEVICE, e.DeviceError("x"): ec.DEVICE,
        e.RuntimeNotFoundError("x"): ec.ENVIRONMENT, e.ToolchainError("x"): ec.ENVIRONMENT,
        e.EdgeSDKError("x"): ec.OTHER, KeyError("x"): ec.INTERNAL,
        KeyboardInterrupt(): ec.INTERRUPTED,
    }
    for exc, code in cases.items():
        assert ec.exit_code_for(exc) is code, (exc, code)
    # usage errors are argparse's own 2, distinct from every error a command raises
    assert ec.USAGE.code == 2 and all(c.code != 2 for c in cases.values())


def test_usage_bad_input_and_json_error_document(tmp_path, capsys) -> None:
    assert main(["export"]) == ec.USAGE.code
    assert main(["profile", "m.tflite", "local", "--no-such-option"]) == ec.USAGE.code
    capsys.readouterr()
    missing = tmp_path / "nope.onnx"
    assert main(["export", str(missing), "-c", "synthetic", "-q"]) == ec.BAD_INPUT.code
    captured = capsys.readouterr()
    assert captured.out == "" and "error:" in captured.err
    assert main(["export", str(missing), "-c", "synthetic", "-q", "--json"]) == ec.BAD_INPUT.code
    doc = json.loads(capsys.readouterr().out)  # stdout is the JSON document alone
    assert doc["error"]["exit_code"] == 3 and doc["error"]["exit_name"] == "bad-input"
    assert doc["error"]["command"] == "export" and str(missing) in doc["error"]["message"]


def test_every_result_command_takes_the_same_output_options() -> None:
    from sdk.cli import NO_JSON, _leaves

    for path, leaf in _leaves(build_parser()):
        options = {s for a in leaf._actions for s in a.option_strings}
        assert {"-q", "--quiet", "-v", "--verbose", "--log-level"} <= options, path
        assert ("--json" in options) == (path not in NO_JSON), path
        # one meaning: a flag, never an option that takes a value
        json_action = next((a for a in leaf._actions if "--json" in a.option_strings), None)
        assert json_action is None or json_action.nargs == 0, path


def test_json_is_alone_on_stdout(mlp, tmp_path) -> None:
    r = _edgesdk("export", str(mlp), "-c", "synthetic", "-o", str(tmp_path / "m.tflite"),
                 "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)  # the whole of stdout parses: no progress, no INFO lines
    assert report["scheme"] == "int8" and report["passed"] is True
    assert "calibrating" in r.stderr  # progress still shows, on stderr
    r = _edgesdk("profile", str(mlp), "local", "--runs", "2", "--warmup", "0", "--json",
                 "--json-out", str(tmp_path / "p.json"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == json.loads((tmp_path / "p.json").read_text())


def test_litert_info_lines_follow_the_log_level(mlp, tmp_path) -> None:
    base = ["export", str(mlp), "-c", "synthetic", "-o", str(tmp_path / "m.tflite")]
    default = _edgesdk(*base, cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    assert XNNPACK_INFO not in default.stderr and "calibrating" in default.stderr
    verbose = _edgesdk(*base, "-v", cwd=tmp_path)
    assert verbose.returncode == 0 and XNNPACK_INFO in verbose.stderr
    quiet = _edgesdk(*base, "-q", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert "wrote " in quiet.stdout
    explicit = _edgesdk(*base, "-q", "--log-level", "info", cwd=tmp_path)
    assert XNNPACK_INFO in explicit.stderr  # --log-level overrides -q


def test_native_filter_keeps_everything_else(tmp_path) -> None:
    script = (
        "import os, sys, time\n"
        "from sdk.cli.logs import native_log_filter\n"
        "with native_log_filter('warning'):\n"
        "    os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n')\n"
        "    os.write(2, b'keep me\\nI0000 00:00:1796541997.524041   10088 port.cc:153] x\\n')\n"
        "    os.write(2, b'bar 10%\\rbar 20%\\r')\n"
        "    os.write(2, b'2026-12-06 07:00:00.000001: I tensorflow/core/x.cc:1] y\\n')\n"
        "    print('python stderr', file=sys.stderr)\n"
        "    os.write(2, b'ERROR: real problem\\n')\n"
        "    os.write(2, b'eta 0:01\\x1b[0m')\n"  # a bar's line left open, then LiteRT's two writes
        "    time.sleep(0.1)\n"
        "    os.write(2, b'INFO: ')\n"
        "    time.sleep(0.1)\n"
        "    os.write(2, b'Created TensorFlow Lite XNNPACK delegate for CPU.\\n')\n"
        "    os.write(2, b'\\r\\x1b[2Kdone\\nINFO: partial')\n"
        "print('after', file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # byte for byte (a progress bar's carriage returns too), native INFO lines dropped
    assert r.stderr == (b"keep me\nbar 10%\rbar 20%\rpython stderr\nERROR: real problem\n"
                        b"eta 0:01\x1b[0m\r\x1b[2Kdone\nafter\n")


def test_dependency_deprecations_are_filtered(tmp_path) -> None:
    script = (
        "import warnings\n"
        "from sdk.cli.logs import configure\n"
        "configure('{level}')\n"
        "warnings.warn('old api', DeprecationWarning)\n"
        "warnings.warn('future api', FutureWarning)\n"
        "warnings.warn('low SQNR', UserWarning)\n")
    shown = {}
    for level in ("warning", "debug", "error"):
        r = subprocess.run([sys.executable, "-W", "default", "-c", script.format(level=level)],
                           capture_output=True, text=True, timeout=60)
        shown[level] = r.stderr
    assert "low SQNR" in shown["warning"] and "old api" not in shown["warning"]
    assert "future api" not in shown["warning"]
    assert "old api" in shown["debug"] and "future api" in shown["debug"]
    assert shown["error"] == ""


def test_one_renderer_for_every_command() -> None:
    """Tables and progress come from sdk.cli.output alone: no command formats its own table
    or drives rich or a progress bar of its own."""
    import sdk.cli

    folder = Path(sdk.cli.__file__).parent
    for module in sorted(folder.glob("*.py")):
        if module.name == "output.py":
            continue
        text = module.read_text()
        for own in ("format_table", "from rich", "import rich", "ProgressBar"):
            assert own not in text, f"{module.name} uses {own}"


def test_export_prints_the_library_report_through_the_renderer(mlp, tmp_path,
                                                               capsys) -> None:
    from sdk.base.tables import Table

    assert main(["export", str(mlp), "-c", "synthetic", "-o", str(tmp_path / "m.tflite"),
                 "-q", "--no-per-layer", "--json"]) == 0
    capsys.readouterr()
    import sdk

    result = sdk.export(mlp, calibration="synthetic", output=tmp_path / "m.tflite",
                        per_layer=False, report=False)
    from sdk.cli.output import report

    report(result.sections())
    out = capsys.readouterr().out.splitlines()
    tables = [s for s in result.sections() if isinstance(s, Table)]
    assert [t.header[:2] for t in tables] == [("", "tensor"), ("output", "kind")]
    for t in tables:  # each row of the library's tables is one line of whitespace columns
        for row in t.rows:
            assert any(line.split() == " ".join(row).split() for line in out), row
    assert all(line in out for line in result.sections() if isinstance(line, str))


def test_progress_on_a_terminal_has_counts_elapsed_and_eta(monkeypatch) -> None:
    import io

    from rich.console import Console

    from sdk.cli import output

    screen = io.StringIO()
    monkeypatch.setattr(output, "stderr_console", lambda: Console(
        file=screen, force_terminal=True, width=120, color_system=None))
    with output.progress(True) as bar:
        assert bar is not None
        for done in range(0, 11):
            bar("calibrating", done, 10)
    text = screen.getvalue()
    assert "calibrating" in text and "10/10" in text and "ETA" in text
    with output.progress(False) as bar:
        assert bar is None


def test_toolchain_status_json(capsys) -> None:
    code = main(["toolchain", "status", "--json"])
    doc = json.loads(capsys.readouterr().out)
    names = {t["name"]: t for t in doc["toolchains"]}
    assert "vela" in names and "rknn" in names
    # exit status 1 (check failed) exactly when a managed toolchain is not usable
    missing = [t for n, t in names.items() if n != "vela" and not t["installed"]]
    assert code == (ec.CHECK_FAILED.code if missing else 0)
    assert all(t.get("error") for t in missing)


def test_level_is_known_before_the_command_modules_load() -> None:
    from sdk.cli import _early_level

    assert _early_level(["export", "m.onnx", "-vv"]) == "debug"
    assert _early_level(["info", "-q"]) == "error"
    assert _early_level(["info", "-q", "--log-level", "info"]) == "info"
    assert _early_level(["profile", "m.tflite", "local"]) == "warning"
    assert _early_level(["info", "--log-level", "bogus"]) == "warning"  # argparse reports it


def _run_on_a_terminal(args: list[str], cwd: Path, timeout: float = 300) -> str:
    """Run `edgesdk ARGS` with stdout and stderr on a pseudo-terminal; what it showed."""
    import pty
    import select
    import time

    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(TERM="xterm", COLUMNS="120")
    proc = subprocess.Popen([*EDGESDK, *args], stdout=slave, stderr=slave, cwd=cwd, env=env,
                            start_new_session=True)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the terminal closed: the process ended
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
    finally:
        proc.wait(30)
        os.close(master)
    return b"".join(chunks).decode(errors="replace")


def test_on_a_terminal_bars_with_eta_and_no_litert_info(mlp, tmp_path) -> None:
    shown = _run_on_a_terminal(["export", str(mlp), "-c", "synthetic", "-o",
                                str(tmp_path / "m.tflite"), "--no-per-layer"], tmp_path)
    assert "wrote " in shown, shown
    assert "ETA" in shown and "calibrating" in shown  # rich's live bars, not log lines
    assert "calibrating (pass 1/2): 800 ..." not in shown
    assert XNNPACK_INFO not in shown
    shown = _run_on_a_terminal(["export", str(mlp), "-c", "synthetic", "-o",
                                str(tmp_path / "m.tflite"), "--no-per-layer", "-v"], tmp_path)
    assert XNNPACK_INFO in shown
