"""Runners: the programs that execute a model on a device and report what happened.

* `edge-run` (ours, static, one per ABI: arm64-v8a, armeabi-v7a, x86_64) for `.edge` models;
* `litert-python`: our small script run by the device's own Python with ai-edge-litert or
  tflite-runtime, for `.tflite` models on boards;
* `benchmark_model`: TensorFlow Lite's benchmark binary that the user supplies, for `.tflite`
  models on phones (they have no Python).

`select_runner(device, model)` picks one; every runner returns a `RunnerReport` that says what
really ran (the machine, the runtime and its version, the kernels or ISA).
"""

from __future__ import annotations

from sdk.devices.runners.base import LayerTime, Runner, RunnerReport, RunRequest
from sdk.devices.runners.select import select_runner

__all__ = ["LayerTime", "RunRequest", "Runner", "RunnerReport", "select_runner"]
