"""Which runner runs a model on a device: `select_runner` (by the model's suffix and the device
config, or the runner named by `prefer`). It sits above every runner, and `base` below them."""

from __future__ import annotations

import os
from pathlib import Path

from sdk.devices.base import Device
from sdk.devices.errors import RunnerError
from sdk.devices.runners.base import Runner
from sdk.devices.runners.benchmark_model import BenchmarkModelRunner
from sdk.devices.runners.edge_run import EdgeRunRunner
from sdk.devices.runners.litert import LiteRTPythonRunner
from sdk.devices.runners.rknn_lite import RknnLiteRunner

RUNNER_NAMES = ("edge-run", "litert-python", "benchmark_model", "rknn-lite")


def select_runner(device: Device, model: str | os.PathLike[str], *,
                  prefer: str | None = None) -> Runner:
    """The runner for this model on this device (or the one named by `prefer`)."""
    suffix = Path(model).suffix.lower()
    classes: dict[str, type[Runner]] = {"edge-run": EdgeRunRunner,
                                        "litert-python": LiteRTPythonRunner,
                                        "benchmark_model": BenchmarkModelRunner,
                                        "rknn-lite": RknnLiteRunner}
    if prefer is not None:
        if prefer not in classes:
            raise RunnerError(f"unknown runner {prefer!r}; runners: {', '.join(RUNNER_NAMES)}",
                              device=device.name)
        runner = classes[prefer](device)
        if suffix not in runner.suffixes:
            raise RunnerError(f"{prefer} does not run {suffix or 'suffix-less'} models "
                              f"(it runs {', '.join(runner.suffixes)})", device=device.name)
        return runner
    if suffix == ".edge":
        return EdgeRunRunner(device)
    if suffix == ".rknn":  # Rockchip NPU models (issue 18): rknn-toolkit-lite2 on the board
        return RknnLiteRunner(device)
    if suffix == ".tflite":
        runner_config = device.config.runner
        if runner_config.benchmark_model and not runner_config.python:
            return BenchmarkModelRunner(device)
        litert = LiteRTPythonRunner(device)
        if litert.available():
            return litert
        if runner_config.benchmark_model:
            return BenchmarkModelRunner(device)
        raise RunnerError(
            "no runner for .tflite models: " + litert.why_unavailable + ". Set runner.python "
            "(a Python with ai-edge-litert or tflite-runtime) or runner.benchmark_model (a "
            "TFLite benchmark_model binary) in the device config", device=device.name)
    raise RunnerError(f"no runner for {suffix or 'suffix-less'} models; edgesdk runs .tflite "
                      "(LiteRT), .edge (edge-run) and .rknn (RKNNLite)", device=device.name)


__all__ = ["RUNNER_NAMES", "select_runner"]
