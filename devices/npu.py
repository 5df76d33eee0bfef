"""The NPU stack of a board (issue 18, "On the board"): its config, and what the NPU took.

A device config names the board's NPU in an `npu` table::

    [devices.imx93]                     # Ethos-U65 through LiteRT's external delegate
    transport = "ssh"
    address = "root@imx93"
    npu = { stack = "ethos-u" }         # delegate = "/usr/lib/libethosu_delegate.so"

    [devices.imx8mp]                    # any vendor LiteRT delegate, by path and options
    transport = "ssh"
    address = "root@imx8mp"
    npu = { stack = "delegate", name = "vx", delegate = "/usr/lib/libvx_delegate.so",
            options = { cache_file_path = "/tmp/vx.nb" } }

    [devices.rock5b]                    # RKNN through rknn-toolkit-lite2 (RKNNLite)
    transport = "ssh"
    address = "rock@rock5b"
    npu = { stack = "rknn", core_mask = "0_1_2", python = "/usr/bin/python3" }

`.tflite` models run through the litert-python runner with the stack's delegate loaded;
`.rknn` models through the rknn-lite runner (`sdk.devices.runners.rknn_lite`). When the NPU
delegate cannot be loaded, or claims none of the model's nodes, the model runs on the CPU and
the profile says so in a `warning:` note (`fallback = "error"` makes a delegate that fails to
load an error instead).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sdk.devices.errors import DeviceConfigError

#: stack -> the default path of its LiteRT external delegate on the board ("" : none/required)
STACKS: Mapping[str, str] = {
    "ethos-u": "/usr/lib/libethosu_delegate.so",  # NXP i.MX93 (Ethos-U65) BSPs
    "vx": "/usr/lib/libvx_delegate.so",           # NXP i.MX8M Plus (VeriSilicon VIP)
    "delegate": "",                               # any vendor delegate: `delegate` required
    "rknn": "",                                   # rknn-toolkit-lite2, no LiteRT delegate
}
FALLBACKS = ("cpu", "error")
#: RKNNLite's core masks (rknnlite.api.RKNNLite.NPU_CORE_*), by the name used in configs
CORE_MASKS: Mapping[str, int] = {"auto": 0, "0": 1, "1": 2, "2": 4, "0_1": 3, "0_1_2": 7,
                                 "all": 0xFFFF}
#: the custom op Vela compiles a model's NPU part into
ETHOS_U_OP = "ethos-u"


@dataclass(frozen=True)
class NpuConfig:
    """A board's NPU stack: which runtime drives it and how."""

    stack: str                                  #: ethos-u, vx, delegate or rknn
    delegate: str = ""                          #: the external delegate, a path on the device
    name: str = ""                              #: for reports ("ethos-u", "vx", "rknn")
    options: Mapping[str, str] = field(default_factory=dict)  #: the delegate's options
    fallback: str = "cpu"                       #: a delegate that fails to load: cpu or error
    core_mask: str = "auto"                     #: rknn: NPU cores (auto, 0, 1, 2, 0_1, 0_1_2, all)
    python: str | None = None                   #: rknn: a Python with rknnlite (else runner's)

    @property
    def label(self) -> str:
        return self.name or self.stack

    @property
    def uses_delegate(self) -> bool:
        """True when the stack is a LiteRT external delegate (everything but rknn)."""
        return self.stack != "rknn"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stack": self.stack}
        if self.delegate and self.delegate != STACKS.get(self.stack):
            out["delegate"] = self.delegate
        for key, default in (("name", ""), ("fallback", "cpu"), ("core_mask", "auto"),
                             ("python", None)):
            if getattr(self, key) != default:
                out[key] = getattr(self, key)
        if self.options:
            out["options"] = dict(self.options)
        return out


_KEYS = ("stack", "delegate", "name", "options", "fallback", "core_mask", "python")


def npu_from_table(table: Any, *, path: str | None = None, device: str = "") -> NpuConfig:
    """An NpuConfig from the config file's `npu` table; every mistake names its key."""
    where = {"path": path, "device": device}
    if not isinstance(table, Mapping):
        raise DeviceConfigError(f"expected a table ({{ stack = ... }}), got "
                                f"{type(table).__name__} {table!r}", field="npu", **where)
    for key in table:
        if key not in _KEYS:
            raise DeviceConfigError(f"unknown key; known keys: {', '.join(_KEYS)}",
                                    field=f"npu.{key}", **where)
    for key in ("stack", "delegate", "name", "fallback", "core_mask", "python"):
        if key in table and not isinstance(table[key], str):
            raise DeviceConfigError(f"expected str, got {type(table[key]).__name__} "
                                    f"{table[key]!r}", field=f"npu.{key}", **where)
    if "stack" not in table:
        raise DeviceConfigError(f"missing 'stack' (one of {', '.join(STACKS)})",
                                field="npu.stack", **where)
    stack = table["stack"].strip().lower()
    if stack not in STACKS:
        raise DeviceConfigError(f"unknown NPU stack {table['stack']!r}; use one of "
                                f"{', '.join(STACKS)}", field="npu.stack", **where)
    delegate = table.get("delegate", STACKS[stack])
    if stack == "rknn" and "delegate" in table:
        raise DeviceConfigError("the rknn stack runs .rknn models through RKNNLite, not a "
                                "LiteRT delegate: remove 'delegate' (or use stack = "
                                "\"delegate\")", field="npu.delegate", **where)
    if stack != "rknn" and not delegate:
        raise DeviceConfigError(f"the {stack} stack needs 'delegate': the path of the vendor's "
                                "LiteRT external delegate on the device (e.g. "
                                "/usr/lib/libvx_delegate.so)", field="npu.delegate", **where)
    options = table.get("options", {})
    if not isinstance(options, Mapping):
        raise DeviceConfigError(f"expected a table of delegate options, got "
                                f"{type(options).__name__}", field="npu.options", **where)
    if stack == "rknn" and options:
        raise DeviceConfigError("options are a LiteRT delegate's; the rknn stack has none "
                                "(use core_mask)", field="npu.options", **where)
    for key, value in options.items():
        if isinstance(value, (Mapping, list)):
            raise DeviceConfigError("delegate options are strings, numbers or booleans",
                                    field=f"npu.options.{key}", **where)
    fallback = table.get("fallback", "cpu")
    if fallback not in FALLBACKS:
        raise DeviceConfigError(f"fallback must be one of {', '.join(FALLBACKS)}, got "
                                f"{fallback!r}", field="npu.fallback", **where)
    core_mask = table.get("core_mask", "auto")
    if core_mask not in CORE_MASKS:
        raise DeviceConfigError(f"unknown core_mask {core_mask!r}; use one of "
                                f"{', '.join(CORE_MASKS)}", field="npu.core_mask", **where)
    if stack != "rknn" and "core_mask" in table:
        raise DeviceConfigError("core_mask is RKNNLite's (stack = \"rknn\")",
                                field="npu.core_mask", **where)
    return NpuConfig(stack=stack, delegate=delegate, name=table.get("name", ""),
                     options={str(k): _option(v) for k, v in options.items()},
                     fallback=fallback, core_mask=core_mask, python=table.get("python"))


def _option(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


# ---------------------------------------------------------------------------- placement
@dataclass(frozen=True)
class NpuPlacement:
    """Which of the model's nodes the NPU took, as the runtime on the board reported it."""

    stack: str                                  #: the config's stack (or "delegate")
    runtime: str                                #: the delegate library / "RKNNLite"
    nodes: int                                  #: the model's nodes (operators)
    npu: tuple[str, ...]                        #: nodes the NPU took ("CONV_2D#1", ...)
    cpu: tuple[str, ...]                        #: nodes left on the CPU
    #: where the placement comes from: "interpreter" (the delegate's nodes in LiteRT's
    #: execution plan), "compile report" (RKNNLite says nothing: the compiler's table)
    source: str = "interpreter"
    #: why the model ran on the CPU instead (delegate failed to load / claimed nothing)
    fallback: str | None = None
    exact: bool = True                          #: False when XNNPACK could not be turned off

    @property
    def npu_share(self) -> float:
        """The share of the model's nodes on the NPU (0..1)."""
        return len(self.npu) / self.nodes if self.nodes else 0.0

    def summary(self) -> str:
        """`NPU 2/6 nodes (33%)`, or `CPU only (fallback: ...)`."""
        if self.fallback is not None:
            return f"CPU only ({self.fallback})"
        return f"NPU {len(self.npu)}/{self.nodes} nodes ({100 * self.npu_share:.0f}%)"

    def to_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "runtime": self.runtime, "nodes": self.nodes,
                "npu": list(self.npu), "cpu": list(self.cpu), "source": self.source,
                "fallback": self.fallback, "exact": self.exact,
                "npu_share": self.npu_share}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NpuPlacement:
        return cls(stack=str(d["stack"]), runtime=str(d["runtime"]), nodes=int(d["nodes"]),
                   npu=tuple(d.get("npu") or ()), cpu=tuple(d.get("cpu") or ()),
                   source=str(d.get("source", "interpreter")), fallback=d.get("fallback"),
                   exact=bool(d.get("exact", True)))


def _names(nodes: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    return tuple(f"{n['op']}#{n['index']}" for n in nodes)


def placement_from_runner(raw: Mapping[str, Any], npu: NpuConfig | None
                          ) -> NpuPlacement | None:
    """The placement in a litert-python runner report (its `placement` and `fallback`), for a
    device with an NPU stack or delegates; None when no delegate was asked for."""
    placement = raw.get("placement")
    fallback = raw.get("fallback") or []
    stack = npu.stack if npu is not None else "delegate"
    if isinstance(placement, Mapping):
        runtime = ", ".join(str(d).rsplit("/", 1)[-1] for d in raw.get("delegates") or ())
        claimed, cpu = _names(placement.get("claimed") or ()), _names(placement.get("cpu") or ())
        why = None if claimed else f"the delegate {runtime} claimed none of the model's nodes"
        return NpuPlacement(stack=stack, runtime=runtime, nodes=int(placement.get("nodes") or 0),
                            npu=claimed, cpu=cpu, fallback=why,
                            exact=bool(placement.get("exact", True)))
    if fallback:
        first = fallback[0]
        nodes = raw.get("nodes")
        return NpuPlacement(stack=stack, runtime=str(first.get("delegate", "")).rsplit("/", 1)[-1],
                            nodes=int(nodes) if nodes is not None else 0, npu=(),
                            cpu=tuple(raw.get("node_names") or ()),
                            fallback=f"the delegate failed to load: {first.get('error', '')}")
    return None


def npu_notes(npu: NpuConfig | None, custom_ops: Sequence[str]) -> tuple[str, ...]:
    """Host-side notes on a model and the board's NPU stack (before anything runs)."""
    if npu is None or npu.stack != "ethos-u" or ETHOS_U_OP in custom_ops:
        return ()
    return (f"warning: the board's NPU is Ethos-U, but the model has no {ETHOS_U_OP!r} op: it "
            "was not compiled by Vela, and the Ethos-U delegate runs only Vela's op (export "
            "with --target ethos-u65-256, and deploy the _vela.tflite it writes)",)


def placement_cell(placement: NpuPlacement | None) -> str:
    """A report cell for a board's NPU placement: `NPU 75% (3/4)`, `CPU only (fallback)`, or
    `-` for a board without an NPU (the farm report, beside the latency)."""
    if placement is None:
        return "-"
    if placement.fallback is not None:
        return "CPU only (fallback)"
    return f"NPU {100 * placement.npu_share:.0f}% ({len(placement.npu)}/{placement.nodes})"
