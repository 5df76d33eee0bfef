"""Runs INSIDE the rknn toolchain's virtual environment (Python + rknn-toolkit2 + its numpy), never
imported by the SDK: standard library, numpy and rknn only.

Protocol: `python rknn_worker.py REQUEST.json`. The request is a JSON object:
    {"model": ".tflite path", "platform": "rk3588", "output": ".rknn path",
     "inputs": [[".npy per model input", ...] per sample], "results_dir": "folder",
     "reply": "reply .json path", "log": "rknn verbose log path"}
The worker loads the (already quantised) .tflite, builds it for the platform without
re-quantising, exports the .rknn, then, when inputs are given, runs each sample in the toolkit's
x86 simulator and saves output k of sample i as results_dir/out_<i>_<k>.npy. It writes the reply
{"ok": true, "version": ..., "outputs": [[paths] per sample]} or {"ok": false, "stage": ...,
"error": ...}. The toolkit's own chatter goes to stdout/stderr and the verbose log file.
"""

from __future__ import annotations

import json
import sys
import traceback


def main(request_path: str) -> int:
    with open(request_path) as f:
        req = json.load(f)
    reply: dict = {"ok": False, "stage": "import"}
    try:
        import numpy as np
        from rknn.api import RKNN

        try:
            from importlib.metadata import version
            reply["version"] = version("rknn-toolkit2")
        except Exception:  # the version is informative only
            reply["version"] = "unknown"
        rknn = RKNN(verbose=True, verbose_file=req["log"])
        reply["stage"] = "config"
        _check(rknn.config(target_platform=req["platform"]), "config")
        reply["stage"] = "load_tflite"
        _check(rknn.load_tflite(model=req["model"]), "load_tflite")
        reply["stage"] = "build"
        _check(rknn.build(do_quantization=False), "build")
        reply["stage"] = "export_rknn"
        _check(rknn.export_rknn(req["output"]), "export_rknn")
        outputs: list[list[str]] = []
        if req.get("inputs"):
            reply["stage"] = "init_runtime (simulator)"
            _check(rknn.init_runtime(), "init_runtime")
            reply["stage"] = "inference (simulator)"
            for i, sample in enumerate(req["inputs"]):
                feeds = [np.load(p, allow_pickle=False) for p in sample]
                result = rknn.inference(inputs=feeds, data_format=req.get("data_format"))
                if result is None:
                    raise RuntimeError(f"inference returned nothing for sample {i}")
                paths = []
                for k, value in enumerate(result):
                    path = f"{req['results_dir']}/out_{i}_{k}.npy"
                    np.save(path, np.asarray(value), allow_pickle=False)
                    paths.append(path)
                outputs.append(paths)
        rknn.release()
        reply = {"ok": True, "version": reply["version"], "outputs": outputs}
    except Exception as exc:  # reported to the SDK, which raises
        reply["error"] = f"{type(exc).__name__}: {exc}"
        reply["traceback"] = traceback.format_exc()[-4000:]
    with open(req["reply"], "w") as f:
        json.dump(reply, f)
    return 0 if reply.get("ok") else 1


def _check(ret: object, what: str) -> None:
    if ret != 0:
        raise RuntimeError(f"rknn.{what} returned {ret}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
