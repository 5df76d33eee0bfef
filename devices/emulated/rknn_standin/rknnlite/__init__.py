"""A stand-in for rknn-toolkit-lite2's `rknnlite` package (edgesdk, emulated boards only).

Not Rockchip's code and no NPU: see `rknnlite.api`. Put the folder above this one on the
board Python's PYTHONPATH (sdk.devices.emulated.npu.npu_board_config does).
"""

__version__ = "0.0-edgesdk-stand-in"
