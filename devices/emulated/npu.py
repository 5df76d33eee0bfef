"""Stand-in NPUs for emulated boards (issue 18). No NPU hardware exists here; these speak the
same interfaces as the vendors' stacks, so that deploy / profile / validate are tested end to
end, but they are stand-ins and nothing they measure is an NPU's.

* A LiteRT external delegate for Ethos-U / VX / any vendor delegate: the edgesdk delegate
  (`libedgesdk_delegate.so`, a real TFLite external delegate; it claims int8 CONV_2D /
  FULLY_CONNECTED and our EDGE_* ops), configured as the board's `npu.delegate`.
* RKNNLite for Rockchip boards: `devices/emulated/rknn_standin/rknnlite/api.py`, a Python
  package with rknn-toolkit-lite2's `RKNNLite` API (load_rknn, init_runtime, inference,
  release) that runs *stand-in* .rknn files (`make_standin_rknn`: a .tflite in a container of
  ours) with LiteRT. Real .rknn files are refused: only Rockchip's runtime reads them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sdk.devices.config import DeviceConfig
from sdk.devices.emulated.board import EmulatedBoard
from sdk.devices.errors import EmulatorError
from sdk.devices.npu import npu_from_table

#: the folder to put on the board Python's PYTHONPATH for `from rknnlite.api import RKNNLite`
RKNN_STANDIN_PATH = Path(__file__).with_name("rknn_standin")
#: the first bytes of a stand-in .rknn (real ones start with b"RKNN")
STANDIN_MAGIC = b"EDGESDK-STANDIN-RKNN\n"


def stand_in_delegate() -> Path:
    """The library that stands in for a vendor's NPU delegate: the edgesdk delegate built for
    this host (an emulated board's Python runner is this host's Python)."""
    from sdk.devices.runners.delegates import edgesdk_delegate

    try:
        return edgesdk_delegate("x86_64")
    except Exception as exc:
        raise EmulatorError(f"the stand-in NPU delegate (the edgesdk delegate for x86_64) is "
                            f"not built: {exc}") from exc


def npu_board_config(board: EmulatedBoard, stack: str = "ethos-u", *, name: str | None = None,
                     **npu: Any) -> DeviceConfig:
    """The board's DeviceConfig with a stand-in NPU stack: `ethos-u`, `vx` or `delegate` load
    the stand-in delegate (unless `delegate=` names another path), `rknn` puts the stand-in
    RKNNLite on the board Python's path. Other keys are the `npu` table's (fallback, ...)."""
    table: dict[str, Any] = {"stack": stack, **npu}
    env: dict[str, str] = {}
    if stack == "rknn":
        env["PYTHONPATH"] = str(RKNN_STANDIN_PATH)
    else:
        if "delegate" not in table:
            table["delegate"] = str(stand_in_delegate())
            # an NPU's delegate takes every node it supports; the edgesdk delegate's own rule
            # (claim=faster: only where it beats XNNPACK on this CPU) would leave them on the CPU
            table["options"] = {"claim": "all", **dict(table.get("options") or {})}
        table.setdefault("name", f"{stack} (stand-in: edgesdk delegate)")
    config = npu_from_table(table, device=name or board.name)
    return board.device_config(name=name, npu=config, env=env,
                               description=board.device_config().description
                               + f"; NPU: a stand-in for the {stack} stack, not an NPU")


def make_standin_rknn(tflite: str | os.PathLike[str], output: str | os.PathLike[str], *,
                      platform: str = "rk3588") -> Path:
    """A stand-in .rknn that the stand-in RKNNLite runs: the .tflite (an INT8 export) in a
    container of ours. Never give one to a real board: its runtime refuses it."""
    data = Path(tflite).read_bytes()
    header = json.dumps({"platform": platform, "source": Path(tflite).name,
                         "size": len(data)}).encode()
    out = Path(output)
    out.write_bytes(STANDIN_MAGIC + len(header).to_bytes(4, "little") + header + data)
    return out
