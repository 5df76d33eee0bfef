"""Issue 17: a profile's peak memory is the runner process's own VmHWM (reset at exec), not
getrusage's ru_maxrss, which a child keeps from its parent across fork + exec: an SDK process
holding hundreds of MiB used to make every run it started report at least that much. Checked end
to end through `sdk.profile` on this host, for the litert-python runner (a .tflite) and edge-run
(a .edge), with this test process made large first."""

from __future__ import annotations

from pathlib import Path

import pytest
from farm_support import build_mlp

import sdk
from sdk.devices import DeviceConfig

#: what this process holds resident while the runners run; a runner reporting its own peak
#: stays far under it (LiteRT's Python runner with numpy: tens of MiB; edge-run: a few)
HELD = 768 << 20


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    from test_devices_edge_run import pool_model

    from sdk.converters.edge import write_edge

    root = tmp_path_factory.mktemp("peak")
    edge = root / "pool.edge"
    write_edge(pool_model(), edge)
    return {"litert-python": build_mlp(root / "mlp.tflite", sizes=(8, 4)), "edge-run": edge}


@pytest.mark.parametrize("runner", ["litert-python", "edge-run"])
def test_profile_reports_the_runners_own_peak(models, runner, tmp_path) -> None:
    held = bytearray(HELD)
    held[::4096] = b"\1" * len(held[::4096])  # every page touched: resident in this process
    config = DeviceConfig(name="here", transport="local", workdir=str(tmp_path / "work"))
    p = sdk.profile(models[runner], config, runs=3, warmup=1, layers=False)
    del held
    assert p.runner == runner
    assert p.peak_memory_bytes is not None
    assert 1 << 20 < p.peak_memory_bytes < HELD // 2, p.peak_memory_bytes
