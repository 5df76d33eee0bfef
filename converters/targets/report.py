"""What an NPU compile says: per-layer placement (NPU or CPU, and why), the compiler's cycle and
memory estimates, its warnings, and how closely a simulator's outputs follow the host reference.

`NpuReport` is the `target` part of an export's report (`ExportResult.target`); `summary()` is
the table `edgesdk export --target` prints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sdk.base.tables import format_table, jsonable
from sdk.run.fidelity import OutputFidelity

NPU = "NPU"
CPU = "CPU"


@dataclass
class NpuLayer:
    """One operator of the model given to the compiler, and where it runs."""

    #: the layer as export reports name it (`TYPE:first part of the output name`)
    name: str
    op_type: str
    #: "NPU" or "CPU"
    placement: str
    #: the op's output tensor (what the compiler's own reports are keyed by)
    tensor: str = ""
    #: multiply-accumulates per inference (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
    #: TRANSPOSE_CONV, BATCH_MATMUL; 0 for other ops), counted from the model's shapes
    macs: int = 0
    #: the compiler's estimate for this op (all the NPU operations it became); None if none
    cycles: int | None = None
    npu_cycles: int | None = None
    sram_access_cycles: int | None = None
    dram_access_cycles: int | None = None
    flash_access_cycles: int | None = None
    #: why the op runs on the CPU, in the compiler's words ("" on the NPU)
    reason: str = ""


@dataclass
class NpuRewrite:
    """A graph rewrite the exporter made (or refused) so that an op Vela left on the CPU runs on
    the NPU (`sdk.converters.targets.vela_rewrites`)."""

    op_type: str
    #: the layer as export reports name it, and its output tensor
    node: str
    tensor: str
    #: why Vela left it on the CPU, in Vela's words
    vela_reason: str
    #: what was done (or why it was refused)
    action: str
    #: LiteRT outputs after vs before the rewrite on the validation samples
    sqnr_db: float
    max_steps: int
    applied: bool
    #: where Vela placed the op once rewritten ("" if not recompiled)
    placement_after: str = ""


@dataclass
class SimulatorFidelity:
    """The compiled model run in the vendor's simulator against the host reference (LiteRT
    running the INT8 .tflite on the same inputs)."""

    simulator: str
    reference: str
    samples: int
    outputs: list[OutputFidelity]

    def to_dict(self) -> dict[str, Any]:
        return {"simulator": self.simulator, "reference": self.reference,
                "samples": self.samples, "outputs": [asdict(o) for o in self.outputs]}


@dataclass
class NpuReport:
    target: str
    compiler: str
    compiler_version: str
    #: the compiler's output (Vela's .tflite with its ethos-u custom op, the .rknn file)
    compiled_path: Path | None
    layers: list[NpuLayer]
    warnings: list[str] = field(default_factory=list)
    #: whole-network estimates where the compiler gives them
    cycles_total: int | None = None
    clock_hz: float | None = None
    inference_time_s: float | None = None
    sram_bytes: int | None = None
    dram_bytes: int | None = None
    flash_bytes: int | None = None
    #: the compiler's configuration (Vela: system config and memory mode; RKNN: platform)
    config: dict[str, str] = field(default_factory=dict)
    simulator: SimulatorFidelity | None = None
    notes: list[str] = field(default_factory=list)
    compile_time_s: float = 0.0
    #: rewrites made (or refused) to keep ops on the NPU (Ethos-U)
    rewrites: list[NpuRewrite] = field(default_factory=list)

    @property
    def npu_layers(self) -> list[NpuLayer]:
        return [layer for layer in self.layers if layer.placement == NPU]

    @property
    def cpu_layers(self) -> list[NpuLayer]:
        return [layer for layer in self.layers if layer.placement == CPU]

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def npu_mac_share(self) -> float:
        """Share of the conv / FC / matmul MACs that run on the NPU (1.0 for a model without)."""
        total = self.total_macs
        return 1.0 if total == 0 else sum(layer.macs for layer in self.npu_layers) / total

    def to_dict(self) -> dict[str, Any]:
        return jsonable({
            "target": self.target,
            "compiler": self.compiler,
            "compiler_version": self.compiler_version,
            "compiled_path": None if self.compiled_path is None else str(self.compiled_path),
            "npu_ops": len(self.npu_layers),
            "cpu_ops": len(self.cpu_layers),
            "macs": self.total_macs,
            "npu_mac_share": self.npu_mac_share,
            "cycles_total": self.cycles_total,
            "clock_hz": self.clock_hz,
            "inference_time_s": self.inference_time_s,
            "sram_bytes": self.sram_bytes,
            "dram_bytes": self.dram_bytes,
            "flash_bytes": self.flash_bytes,
            "config": self.config,
            "layers": [asdict(layer) for layer in self.layers],
            "warnings": self.warnings,
            "simulator": None if self.simulator is None else self.simulator.to_dict(),
            "notes": self.notes,
            "compile_time_s": self.compile_time_s,
            "rewrites": [asdict(r) for r in self.rewrites],
        })

    def summary(self, max_layers: int | None = None) -> str:
        n_npu, n_cpu = len(self.npu_layers), len(self.cpu_layers)
        where = f" -> {self.compiled_path}" if self.compiled_path else ""
        lines = [f"target {self.target} ({self.compiler} {self.compiler_version}){where}",
                 f"  ops: {n_npu} on the NPU, {n_cpu} on the CPU; "
                 f"{self.npu_mac_share:.1%} of {self.total_macs:,} conv/FC MACs on the NPU"]
        estimate = []
        if self.cycles_total is not None:
            estimate.append(f"{self.cycles_total:,} cycles")
        if self.inference_time_s is not None:
            clock = f" at {self.clock_hz / 1e6:.0f} MHz" if self.clock_hz else ""
            estimate.append(f"{self.inference_time_s * 1e3:.3f} ms{clock}")
        for label, value in (("SRAM", self.sram_bytes), ("DRAM", self.dram_bytes),
                             ("flash", self.flash_bytes)):
            if value:
                estimate.append(f"{label} {value / 1024:.1f} KiB")
        if estimate:
            lines.append("  estimate: " + ", ".join(estimate))
        if self.config:
            lines.append("  config: " + ", ".join(f"{k} {v}" for k, v in self.config.items()))
        rows = [(layer.name, layer.op_type, layer.placement, f"{layer.macs:,}",
                 "-" if layer.cycles is None else f"{layer.cycles:,}")
                for layer in self.layers]
        shown = rows if max_layers is None else rows[:max_layers]
        lines += format_table(("layer", "op", "on", "MACs", "cycles"), shown, first_width=48)
        if len(shown) < len(rows):
            lines.append(f"  ... {len(rows) - len(shown)} more layers")
        for layer in self.cpu_layers:
            lines.append(f"  CPU: {layer.name}: {layer.reason}")
        for r in self.rewrites:
            done = "rewritten" if r.applied else "not rewritten"
            lines.append(f"  {done}: {r.node} ({r.op_type}) was on the CPU ({r.vela_reason}); "
                         f"{r.action}; now on the {r.placement_after or '?'}; output SQNR "
                         f"{r.sqnr_db:.1f} dB, max {r.max_steps} int8 step(s)")
        if self.simulator is not None:
            sim = self.simulator
            lines.append(f"  {sim.simulator} vs {sim.reference} on {sim.samples} samples:")
            for o in sim.outputs:
                top1 = "-" if o.top1_agreement is None else f"{o.top1_agreement:.1%}"
                lines.append(f"    {o.name}: SQNR {o.sqnr_db:.2f} dB, top-1 agreement {top1}, "
                             f"max abs error {o.max_abs_error:.4g}")
        lines += [f"  warning: {w}" for w in self.warnings]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)
