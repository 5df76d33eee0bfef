# ruff: noqa: B905 - runs in the board's Python (3.7+), where zip() has no strict=
"""`RKNNLite`, with rknn-toolkit-lite2's Python API, for emulated boards: a STAND-IN.

It speaks the calls an application makes (RKNNLite(verbose=...), load_rknn, init_runtime with
core_mask, inference, release; the NPU_CORE_* masks; 0 / -1 return codes) but runs only the
stand-in .rknn files of sdk.devices.emulated.npu.make_standin_rknn (a .tflite in a container
of ours) with LiteRT on the CPU. A real .rknn is refused: only Rockchip's runtime reads one.
Outputs are float32, as RKNNLite's are by default.
"""

import json

STANDIN_MAGIC = b"EDGESDK-STANDIN-RKNN\n"


class RKNNLite:
    EDGESDK_STAND_IN = True
    NPU_CORE_AUTO = 0
    NPU_CORE_0 = 1
    NPU_CORE_1 = 2
    NPU_CORE_2 = 4
    NPU_CORE_0_1 = 3
    NPU_CORE_0_1_2 = 7
    NPU_CORE_ALL = 0xFFFF

    def __init__(self, verbose=False, verbose_file=None):
        self.verbose = verbose
        self._model = None
        self._header = None
        self._interp = None

    def _log(self, message):
        if self.verbose:
            print("I RKNN (stand-in): " + message)

    def load_rknn(self, path):
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            print("E load_rknn: " + str(exc))
            return -1
        if not data.startswith(STANDIN_MAGIC):
            kind = "a real .rknn" if data[:4] == b"RKNN" else "not an .rknn file"
            print("E load_rknn: " + path + " is " + kind + "; this stand-in RKNNLite runs only "
                  "stand-in .rknn files (sdk.devices.emulated.npu.make_standin_rknn)")
            return -1
        start = len(STANDIN_MAGIC)
        length = int.from_bytes(data[start:start + 4], "little")
        self._header = json.loads(data[start + 4:start + 4 + length].decode("utf-8"))
        self._model = data[start + 4 + length:]
        self._log("loaded " + path + " for " + self._header.get("platform", "?"))
        return 0

    def init_runtime(self, target=None, device_id=None, async_mode=False,
                     core_mask=NPU_CORE_AUTO):
        if self._model is None:
            print("E init_runtime: load_rknn first")
            return -1
        if core_mask not in (0, 1, 2, 4, 3, 7, 0xFFFF):
            print("E init_runtime: invalid core_mask " + str(core_mask))
            return -1
        try:
            try:
                from ai_edge_litert.interpreter import Interpreter
            except ImportError:
                from tflite_runtime.interpreter import Interpreter
            self._interp = Interpreter(model_content=self._model)
            self._interp.allocate_tensors()
        except Exception as exc:
            print("E init_runtime: " + str(exc))
            return -1
        return 0

    def inference(self, inputs=None, data_format=None, inputs_pass_through=None,
                  get_frame_id=False):
        import numpy as np

        if self._interp is None:
            print("E inference: init_runtime first")
            return None
        details = self._interp.get_input_details()
        if inputs is None or len(inputs) != len(details):
            print("E inference: the model has " + str(len(details)) + " inputs")
            return None
        for detail, value in zip(details, inputs):
            value = np.asarray(value)
            dtype = np.dtype(detail["dtype"])
            if value.dtype != dtype:  # RKNNLite takes float / uint8 data and converts it
                scale, zero = detail["quantization"]
                if np.issubdtype(dtype, np.integer) and scale:
                    info = np.iinfo(dtype)
                    value = np.clip(np.round(value / scale + zero), info.min, info.max)
                value = value.astype(dtype)
            self._interp.set_tensor(detail["index"], value.reshape(detail["shape"]))
        self._interp.invoke()
        outputs = []
        for detail in self._interp.get_output_details():
            value = self._interp.get_tensor(detail["index"])
            scale, zero = detail["quantization"]
            if np.issubdtype(value.dtype, np.integer) and scale:
                value = (value.astype(np.float32) - zero) * scale
            outputs.append(value.astype(np.float32))
        return outputs

    def release(self):
        self._interp = None
        self._model = None
