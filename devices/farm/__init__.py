"""The board farm: profile models on many boards in parallel, with results that are never lost.

    import sdk
    run = sdk.Farm("farm.toml").profile(["model_int8.tflite"], boards="tag:pi4", report="out/")

* `inventory`: farm.toml (boards, groups, defaults), validated on load.
* `scheduler`: per-board leases, health checks, retries, quarantine, time limits (asyncio).
* `dask_backend`: the same on Dask workers when boards hang off several hosts.
* `store`: the SQLite results database (WAL, one transaction per result; runs resume).
* `report`: self-contained HTML with plots, JSON and Markdown.
"""

from __future__ import annotations

from sdk.devices.farm.farm import BoardStatus, Farm
from sdk.devices.farm.inventory import (
    BoardConfig,
    FarmConfig,
    FarmConfigError,
    FarmSettings,
    Measurement,
    load_farm,
    parse_farm,
)
from sdk.devices.farm.jobs import Fidelity, Job, JobSettings, ModelInfo
from sdk.devices.farm.results import BoardReport, FarmEvent, FarmRun, JobResult
from sdk.devices.farm.store import ResultStore

__all__ = [
    "BoardConfig",
    "BoardReport",
    "BoardStatus",
    "Farm",
    "FarmConfig",
    "FarmConfigError",
    "FarmEvent",
    "FarmRun",
    "FarmSettings",
    "Fidelity",
    "Job",
    "JobResult",
    "JobSettings",
    "Measurement",
    "ModelInfo",
    "ResultStore",
    "load_farm",
    "parse_farm",
]
