"""The edgesdk TFLite delegate library: where it is, how LiteRT loads it, what it reports.

    from ai_edge_litert.interpreter import Interpreter, load_delegate
    import sdk.run
    interp = Interpreter("model_ternary.tflite",
                         experimental_delegates=[load_delegate(str(sdk.run.delegate_path()))])

or simply `sdk.run.Interpreter("model_ternary.tflite")`. The library is built from native/
(native/src/delegate) with the rest of the native core and installed beside `sdk._native`; the
Arm builds (`make native-cross`) are in build/aarch64 and build/armv7 of a checkout, for pushing
to devices (`delegate_path("arm64-v8a")`).

Options (all optional; see native/include/edge/delegate/delegate.h): precisions ("int8",
"int4", "int2": which weight types the delegate takes; "static" / "dynamic": int8-activation
nodes and/or dynamic-range nodes, float activations with quantised weights; naming only weight
types takes both kinds, naming only kinds takes every weight type; custom ops are always taken), ops
("fully_connected", "conv_2d", "depthwise_conv_2d"), num_threads, isa, rounding, report (a
JSON file where the delegate says what it claimed, with which kernel, and what it skipped).
"""

from __future__ import annotations

import json
import os
import platform
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.base.artifacts import BUILD_FOLDERS, artifact_candidates, find_artifact, host_abi
from sdk.base.errors import DelegateRequiredError, EdgeSDKError, NativeBuildError

LIBRARY_NAME = "libedgesdk_delegate.so"
#: Android ABI names -> this checkout's build folder holding that build (the Makefile's)
ABIS: dict[str, str] = dict(BUILD_FOLDERS)
PRECISIONS = ("int8", "int4", "int2")
#: activation kinds `precisions` may also name: int8 activations, or float activations with
#: quantised weights (dynamic range, "hybrid")
ACTIVATION_KINDS = ("static", "dynamic")
OPS = ("fully_connected", "conv_2d", "depthwise_conv_2d")
#: `claim`: "faster" (default) claims a node only where the native kernel beats what LiteRT
#: would run for it (native/src/delegate/cost_rule.h); "all" claims every node it can run
CLAIM_POLICIES = ("faster", "all")
#: `litert_kernels`: what LiteRT runs for the nodes left to it (Interpreter passes it)
LITERT_KERNELS = ("xnnpack", "builtin")
#: custom ops only the edgesdk delegate runs (converters/tflite/custom_ops.py)
CUSTOM_OPS = ("EDGE_CONV_INT2", "EDGE_DWCONV_INT2")


def _abi(abi: str | None) -> str:
    if abi is None:
        host = host_abi()
        if host is None:
            raise NativeBuildError(f"edgesdk builds no delegate for this machine "
                                   f"({platform.machine()}); it is built for {sorted(ABIS)}")
        return host
    if abi not in ABIS:
        raise ValueError(f"unknown ABI {abi!r}; the delegate is built for {sorted(ABIS)}")
    return abi


def delegate_candidates(abi: str | None = None) -> list[Path]:
    """Where `delegate_path` looks, in order (sdk.base.artifacts.artifact_candidates)."""
    return [c.path for c in artifact_candidates("delegate", _abi(abi), in_process=abi is None)]


def delegate_path(abi: str | None = None) -> Path:
    """The delegate shared library: for LiteRT in this process (abi None), or for an Android ABI
    name ("x86_64", "arm64-v8a", "armeabi-v7a") to push to a device (the static build). The one
    lookup of sdk.base.artifacts: NativeBuildError naming every place it looked when missing."""
    return find_artifact("delegate", _abi(abi), in_process=abi is None)


def delegate_options(*, precisions: Iterable[str] | None = None,
                     ops: Iterable[str] | None = None, num_threads: int | None = None,
                     isa: str | None = None, rounding: str | None = None,
                     claim: str | None = None, litert_kernels: str | None = None,
                     report: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """The delegate's string options, checked here so mistakes name the argument."""
    options: dict[str, str] = {}
    if precisions is not None:
        chosen = [precisions] if isinstance(precisions, str) else list(precisions)
        bad = [p for p in chosen if p not in (*PRECISIONS, "ternary", *ACTIVATION_KINDS)]
        if bad:
            raise ValueError(f"precisions: unknown {bad}; choose from "
                             f"{PRECISIONS + ACTIVATION_KINDS}")
        options["precisions"] = ",".join(chosen)
    if ops is not None:
        chosen = [ops] if isinstance(ops, str) else list(ops)
        bad = [o for o in chosen if o not in OPS]
        if bad:
            raise ValueError(f"ops: unknown {bad}; choose from {OPS}")
        options["ops"] = ",".join(chosen)
    if num_threads is not None:
        options["num_threads"] = str(int(num_threads))
    if isa is not None:
        options["isa"] = isa
    if rounding is not None:
        options["rounding"] = rounding
    if claim is not None:
        if claim not in CLAIM_POLICIES:
            raise ValueError(f"claim: unknown {claim!r}; choose from {CLAIM_POLICIES}")
        options["claim"] = claim
    if litert_kernels is not None:
        if litert_kernels not in LITERT_KERNELS:
            raise ValueError(f"litert_kernels: unknown {litert_kernels!r}; choose from "
                             f"{LITERT_KERNELS}")
        options["litert_kernels"] = litert_kernels
    if report is not None:
        options["report"] = str(report)
    return options


def load_delegate(**options: Any) -> Any:
    """A LiteRT delegate object for `Interpreter(experimental_delegates=[...])`; keyword
    options as `delegate_options`."""
    from sdk.run.litert import backend

    path = delegate_path()
    checked = delegate_options(**options)  # a bad argument is the caller's ValueError
    try:
        return backend().load_delegate(str(path), checked)
    except (ValueError, RuntimeError, OSError) as exc:
        raise EdgeSDKError(f"cannot load the edgesdk delegate {path}: {exc}") from exc


def explain_load_error(exc: BaseException) -> EdgeSDKError | None:
    """When LiteRT failed because a model holds edgesdk custom ops and no edgesdk delegate was
    given, the error to raise instead (None otherwise)."""
    message = str(exc)
    found = [op for op in CUSTOM_OPS if op in message]
    if not found and not re.search(r"custom op.*EDGE_", message, re.IGNORECASE):
        return None
    ops = ", ".join(found) or "EDGE_*"
    return DelegateRequiredError(
        f"the model holds edgesdk custom ops ({ops}) that only the edgesdk delegate runs: "
        "open it with sdk.run.Interpreter(path), or pass "
        "experimental_delegates=[sdk.run.load_delegate()] to LiteRT's Interpreter "
        f"(LiteRT said: {message.strip()})")


# ---------------------------------------------------------------------------- the report
@dataclass(frozen=True)
class ClaimedNode:
    node: int
    op: str
    weights: str
    kernel: str
    isa: str
    #: "int8" (static) or "float32" (dynamic range: the input is quantised at run time)
    activations: str = "int8"
    #: why the claim rule took it (cost_rule.h: what LiteRT would run, the cost table's figure)
    reason: str = ""


@dataclass(frozen=True)
class SkippedNode:
    node: int
    op: str
    reason: str


@dataclass
class DelegateReport:
    """What the delegate did with a model (its `report` option, read back)."""

    claimed: list[ClaimedNode]
    skipped: list[SkippedNode]
    threads: int
    version: str
    #: what the delegate read through the TFLite ABI: every tensor and node (for the ABI test)
    tensors: list[dict[str, Any]] = field(default_factory=list, repr=False)
    nodes: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> DelegateReport:
        d = json.loads(Path(path).read_text())
        return cls(claimed=[ClaimedNode(**c) for c in d.get("claimed", [])],
                   skipped=[SkippedNode(**s) for s in d.get("skipped", [])],
                   threads=int(d.get("threads", 0)), version=str(d.get("version", "")),
                   tensors=list(d.get("tensors", [])), nodes=list(d.get("nodes", [])))

    def kernels(self) -> dict[str, int]:
        """Kernel name -> how many nodes run it."""
        out: dict[str, int] = {}
        for c in self.claimed:
            out[c.kernel] = out.get(c.kernel, 0) + 1
        return out


__all__ = ["ABIS", "ACTIVATION_KINDS", "CLAIM_POLICIES", "CUSTOM_OPS", "LIBRARY_NAME",
           "LITERT_KERNELS", "OPS", "PRECISIONS", "ClaimedNode", "DelegateReport", "SkippedNode",
           "delegate_candidates", "delegate_options", "delegate_path", "explain_load_error",
           "load_delegate"]
