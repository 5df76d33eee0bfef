"""Coverage-guided fuzzing of the model loaders (tests/fuzz/, atheris), a short run per harness.

Each harness runs `EDGESDK_FUZZ_SECONDS` (default 30) seconds through the driver, under the
driver's memory budget and 5 s hang limit; any finding (an exception that is not an EdgeSDKError,
a hang, memory over the limit) fails the test and names the artifact to replay with
`python tests/fuzz/fuzz_<name>.py --replay <artifact>`. `make fuzz-python` runs them for long.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parent / "fuzz"
sys.path.insert(0, str(FUZZ))
_spec = importlib.util.spec_from_file_location("edgesdk_fuzz_run", FUZZ / "run.py")
assert _spec is not None and _spec.loader is not None
fuzz_run = importlib.util.module_from_spec(_spec)  # tests/fuzz/run.py, the driver
sys.modules[_spec.name] = fuzz_run
_spec.loader.exec_module(fuzz_run)

pytestmark = pytest.mark.skipif(importlib.util.find_spec("atheris") is None,
                                reason="needs atheris (the [dev] extra)")

SECONDS = int(os.environ.get("EDGESDK_FUZZ_SECONDS", "30"))


def _args(tmp_path: Path, **overrides: object) -> argparse.Namespace:
    values: dict[str, object] = dict(time=SECONDS, runs=0, budget="256M", rss_slack_mb=768,
                                     timeout=5, max_len=0, grace=120, out=str(tmp_path))
    values.update(overrides)
    return argparse.Namespace(**values)


@pytest.mark.parametrize("name", sorted(fuzz_run.harnesses()))
def test_harness_short_run_finds_nothing(name: str, tmp_path: Path) -> None:
    report = fuzz_run.run_harness(name, fuzz_run.harnesses()[name], _args(tmp_path))
    summary = json.dumps(fuzz_run.asdict(report), indent=1)
    assert not report.findings, f"fuzzing {name} found:\n{summary}"
    assert report.execs > 100, f"the harness hardly ran:\n{summary}"
    # the loader's own code gives coverage feedback (flatbuffers alone gives < 100 points)
    assert report.coverage > 150, f"the loader is not instrumented:\n{summary}"
    assert report.peak_rss_mb < report.rss_limit_mb


def test_the_driver_reports_a_non_project_exception(tmp_path: Path) -> None:
    """The framework itself can fail: a loader that raises IndexError is a finding."""
    script = tmp_path / "fuzz_broken.py"
    script.write_text(
        "import harness\n"
        "def seeds():\n    return {'a': b'abc'}\n"
        "def load(data):\n    return data[len(data)]\n"
        "def test_one_input(data):\n    harness.expect_project_errors(load, data)\n"
        "if __name__ == '__main__':\n    harness.main(test_one_input, seeds)\n")
    report = fuzz_run.run_harness("broken", script, _args(tmp_path, time=20))
    assert report.exit_status != 0
    assert [f.kind for f in report.findings] == ["crash"]
    assert "IndexError" in report.findings[0].detail


def test_seeds_are_models_the_loaders_accept() -> None:
    """The corpus starts from valid files (so mutations reach deep into the loaders)."""
    import seed_models

    from sdk.converters.edge import read_edge
    from sdk.converters.tflite import read_tflite

    tflite, edge = seed_models.tflite_seeds(), seed_models.edge_seeds()
    assert len(tflite) >= 5 and len(edge) >= 5
    for data in tflite.values():
        assert read_tflite(data).graphs[0].operators
    for data in edge.values():
        assert read_edge(data).operators
