// The delegate's claim rule (cost_rule.h): what LiteRT would run for a node, and the calibrated
// cost table of our plans against XNNPACK's kernels.
#include "cost_rule.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "edge/cpu_features.h"

namespace edge {
namespace delegate {

using namespace tflite_abi;  // NOLINT: our own ABI declarations

namespace {

const TfLiteTensor& tensor(const TfLiteContext* context, int index) {
  return context->tensors[index];
}

int64_t elements(const TfLiteTensor& t) {
  if (t.dims == nullptr) return 0;
  int64_t n = 1;
  for (int i = 0; i < t.dims->size; ++i) n *= std::max(t.dims->data[i], 0);
  return n;
}

// The cost table. One row per class XNNPACK takes and ISA we have measured: our plan's speed
// over XNNPACK's kernel for that class (their time / ours, one thread), the lower end of what
// was measured. Sources, all on the 2-core AMD EPYC (Zen 4) host with XNNPACK of
// ai-edge-litert 2.3.0 (AVX2 rows: XNNPACK restricted to its AVX2 kernels, --litert-isa avx2):
//   [K] benchmarks/results/kernels-2026-11-25.md (benchmarks/kernels.py, single layers);
//   [S] benchmarks/results/subbyte-delegate-undated.md (benchmarks/subbyte.py, FC 4096x4096).
// Re-measure with those commands after a kernel change and update the rows.
// Rows marked kReasoned were not measured (no such core here, or XNNPACK runs another tier's
// kernel on this host): their figure comes from the reasoning beside them, and the report
// says "reasoned, not measured". XNNPACK's own choices on an AVX-512 + AMX host (Xeon, read
// back with benchmarks/litert_isa.py's xnnpack_selected_kernels, 2026-12-06): int8 FC / conv
// and dynamic int8 / INT4 FC on AMX (16x64c4__avx512amx), static INT4 FC on avx512vnnigfni,
// static INT2 FC on its AVX-VNNI kernel (qs8_qc2w 1x8c8__avxvnni). The classes the table claims
// (INT2 FC, depthwise) do not run on AMX there.
//   [S7] benchmarks/results/subbyte-delegate-2026-12-06.md (that Xeon, subbyte.py --quick,
//        --claim all, --isa avxvnni).
//   [E26] benchmarks/results/edge-models-2026-12-07.md, 08:47-09:47 (the Zen 4 host, the .edge
//        runtime per layer of the MobileNet-like model against XNNPACK, stop 26).
enum Source { kMeasured, kReasoned };

struct CostRow {
  const char* isa;
  OpKind kind;
  int weight_bits;  // 8, 4 or 2 (ternary counts as 2)
  bool dynamic;
  double speedup;
  Source source = kMeasured;
};

constexpr CostRow kCostTable[] = {
    // FC int8, M = 1: 1.04-1.08x [K]; 306 vs 321 us [S].
    {"avx512vnni", OpKind::kFullyConnected, 8, false, 1.04},
    // FC INT4, int8 activations: 158 vs 168 us [S].
    {"avx512vnni", OpKind::kFullyConnected, 4, false, 1.06},
    // FC INT2 / ternary, int8 activations: 105 vs 253-257 us (XNNPACK's 2-bit path) [S], 2.40x
    // on Zen 4; 1.23-1.34x on the AMX Xeon, where XNNPACK runs its AVX-VNNI 2-bit kernel [S7].
    {"avx512vnni", OpKind::kFullyConnected, 2, false, 1.23},
    // Dynamic-range FC: int8 0.92x, int4 0.99x, INT2 2.46x [S] (Zen 4); on the Xeon int8
    // 1.00x, INT4 1.30-1.39x (against XNNPACK's AMX kernel), INT2 1.18-1.25x [S7].
    {"avx512vnni", OpKind::kFullyConnected, 8, true, 0.92},
    {"avx512vnni", OpKind::kFullyConnected, 4, true, 0.99},
    {"avx512vnni", OpKind::kFullyConnected, 2, true, 1.18},
    // CONV_2D int8: 3x3 0.76-0.99x, 1x1 0.73-0.97x [K]. Later 1x1 figures: 0.90-1.19x on one
    // thread and 0.60-0.99x on two, then the raw-row kernels (56210c4) 3-15 % faster on the
    // layers that take them, 80x80x32 -> 16 still 0.88-0.92x [E26]: the lower end stays under
    // kMinSpeedup, so int8 conv stays with XNNPACK (re-read at stop 27: no claim changed).
    {"avx512vnni", OpKind::kConv2D, 8, false, 0.73},
    // DEPTHWISE_CONV_2D (int8 kernels for every weight type: sub-byte filters are widened):
    // 1.23-1.79x after the row-per-call kernel [K, "Depthwise: a row of pixels per call"].
    {"avx512vnni", OpKind::kDepthwiseConv2D, 8, false, 1.23},
    {"avx512vnni", OpKind::kDepthwiseConv2D, 4, false, 1.23},
    // AVX2: CONV_2D int8 1x1 0.90-1.21x [K, "AVX2 host"]; depthwise 0.79-0.83x [K].
    {"avx2", OpKind::kConv2D, 8, false, 0.90},
    {"avx2", OpKind::kDepthwiseConv2D, 8, false, 0.79},
    {"avx2", OpKind::kDepthwiseConv2D, 4, false, 0.79},
    // AVX-VNNI (ymm vpdpbusd, no AVX-512: Alder Lake and later client cores, N100-class boxes).
    // Static INT2 FC: our qs8_qc2w avxvnni plan against XNNPACK's AVX-VNNI 2-bit kernel, which
    // it runs even on the AVX-512 host, so measured there like for like: FC 4096x4096 1.20-1.24x
    // (1 thread), FC 1024x1024 1.13x [S7].
    {"avxvnni", OpKind::kFullyConnected, 2, false, 1.20},
    // Reasoned: dynamic INT2 FC. Measured on the same host at 1.17-1.25x (FC 4096) [S7], but
    // which of its qd8_f32_qc2w kernels XNNPACK runs there is not certain (its AVX-VNNI one on
    // an AVX-VNNI host, by its symbol table): the lower end, marked reasoned.
    {"avxvnni", OpKind::kFullyConnected, 2, true, 1.17, kReasoned},
    // Reasoned: int8 / INT4 FC and int8 CONV_2D. Both sides use vpdpbusd on both tiers, ours and
    // XNNPACK's at half the width on AVX-VNNI: the AVX-512 VNNI ratios. Below 1.15: left.
    {"avxvnni", OpKind::kFullyConnected, 8, false, 1.04, kReasoned},
    {"avxvnni", OpKind::kFullyConnected, 4, false, 1.06, kReasoned},
    {"avxvnni", OpKind::kFullyConnected, 8, true, 0.92, kReasoned},
    {"avxvnni", OpKind::kFullyConnected, 4, true, 0.99, kReasoned},
    {"avxvnni", OpKind::kConv2D, 8, false, 0.73, kReasoned},
    // Reasoned: depthwise. Our AVX-VNNI tier runs the AVX2 depthwise kernels and XNNPACK has no
    // VNNI depthwise kernel: the AVX2 row.
    {"avxvnni", OpKind::kDepthwiseConv2D, 8, false, 0.79, kReasoned},
    {"avxvnni", OpKind::kDepthwiseConv2D, 4, false, 0.79, kReasoned},
    // Reasoned: an AMX tier ("avx512amx", tile GEMMs for int8 weights, everything else the
    // AVX-512 VNNI tier's kernels). INT2 FC and depthwise run the same kernels as on
    // avx512vnni against the same XNNPACK kernels (its 2-bit FC is AVX-VNNI, its depthwise has
    // no AMX form): those rows. int8 FC / conv: tiles on both sides, not measured: parity.
    {"avx512amx", OpKind::kFullyConnected, 2, false, 1.23, kReasoned},
    {"avx512amx", OpKind::kFullyConnected, 2, true, 1.18, kReasoned},
    {"avx512amx", OpKind::kDepthwiseConv2D, 8, false, 1.23, kReasoned},
    {"avx512amx", OpKind::kDepthwiseConv2D, 4, false, 1.23, kReasoned},
    {"avx512amx", OpKind::kFullyConnected, 8, false, 1.00, kReasoned},
    {"avx512amx", OpKind::kConv2D, 8, false, 1.00, kReasoned},
    // Reasoned: Arm (NEON: Cortex-A53/A72; dotprod: A55/A76; i8mm: A78/X1 and later). No Arm
    // core here (qemu times nothing), and XNNPACK's Arm kernels use the same instructions as
    // ours on each tier (smlal / sdot / smmla, its hand-written assembly for the GEMMs):
    // parity, below 1.15, so XNNPACK keeps int8 and INT4 FC, int8 conv and depthwise there.
    // Sub-byte FC has no row: what XNNPACK runs for INT2 on Arm is not known here.
    {"neon", OpKind::kFullyConnected, 8, false, 1.00, kReasoned},
    {"neon", OpKind::kFullyConnected, 4, false, 1.00, kReasoned},
    {"neon", OpKind::kConv2D, 8, false, 1.00, kReasoned},
    {"neon", OpKind::kDepthwiseConv2D, 8, false, 1.00, kReasoned},
    {"dotprod", OpKind::kFullyConnected, 8, false, 1.00, kReasoned},
    {"dotprod", OpKind::kFullyConnected, 4, false, 1.00, kReasoned},
    {"dotprod", OpKind::kConv2D, 8, false, 1.00, kReasoned},
    {"dotprod", OpKind::kDepthwiseConv2D, 8, false, 1.00, kReasoned},
    {"i8mm", OpKind::kFullyConnected, 8, false, 1.00, kReasoned},
    {"i8mm", OpKind::kFullyConnected, 4, false, 1.00, kReasoned},
    {"i8mm", OpKind::kConv2D, 8, false, 1.00, kReasoned},
    {"i8mm", OpKind::kDepthwiseConv2D, 8, false, 1.00, kReasoned},
};

int bits_of(const NodeInfo& info) { return weight_bits(info.weight_type); }

const char* path_name(LiteRtPath p) {
  switch (p) {
    case LiteRtPath::kXnnpack: return "XNNPACK";
    case LiteRtPath::kBuiltin: return "LiteRT's builtin kernel";
    case LiteRtPath::kNone: return "nothing";
  }
  return "?";
}

std::string format(const char* fmt, double a, double b = 0) {
  char buf[160];
  std::snprintf(buf, sizeof buf, fmt, a, b);
  return buf;
}

}  // namespace

int delegate_threads(const Options& options, const TfLiteContext* context) {
  if (options.num_threads > 0) return options.num_threads;
  if (context->recommended_num_threads > 0) return context->recommended_num_threads;
  return usable_core_count();
}

LiteRtPath litert_path(const NodeInfo& info, const TfLiteContext* context, bool xnnpack) {
  if (info.custom) return LiteRtPath::kNone;
  const TfLiteTensor& w = tensor(context, info.weights);
  const bool blockwise = w.quantization.type == kTfLiteBlockwiseQuantization;
  const LiteRtPath fast = xnnpack ? LiteRtPath::kXnnpack : LiteRtPath::kBuiltin;
  switch (info.kind) {
    case OpKind::kFullyConnected:
      // INT2 block-wise: rejected (docs/delegate.md's table); everything else XNNPACK takes.
      if (blockwise && w.type == kTfLiteInt2) return LiteRtPath::kNone;
      return fast;
    case OpKind::kConv2D:
      if (w.type == kTfLiteInt2) return LiteRtPath::kNone;      // rejected, or computed wrongly
      if (w.type == kTfLiteInt4) return LiteRtPath::kBuiltin;   // XNNPACK does not take it
      return fast;
    case OpKind::kDepthwiseConv2D:
      if (w.type == kTfLiteInt2) return LiteRtPath::kNone;
      if (w.type == kTfLiteInt4 && info.dynamic) return LiteRtPath::kNone;
      return fast;  // INT4 with int8 activations: counted as XNNPACK's (not measured)
  }
  return fast;
}

int64_t node_macs(const NodeInfo& info, const TfLiteContext* context) {
  const TfLiteTensor& x = tensor(context, info.input);
  const TfLiteTensor& w = tensor(context, info.weights);
  const TfLiteTensor& y = tensor(context, info.output);
  const std::vector<int> wd = tensor_dims(w);
  const std::vector<int> yd = tensor_dims(y);
  if (info.kind == OpKind::kFullyConnected) {
    if (wd.size() != 2 || wd[1] <= 0) return 0;
    return elements(x) / wd[1] * static_cast<int64_t>(wd[0]) * wd[1];
  }
  if (wd.size() != 4 || yd.size() != 4) return 0;
  const int64_t pixels = static_cast<int64_t>(std::max(yd[0], 0)) * std::max(yd[1], 0) *
                         std::max(yd[2], 0);
  if (info.kind == OpKind::kConv2D) {
    return pixels * wd[0] * static_cast<int64_t>(wd[1]) * wd[2] * wd[3];
  }
  return pixels * static_cast<int64_t>(wd[1]) * wd[2] * wd[3];  // depthwise: [1, kh, kw, c]
}

namespace {

const CostRow* find_row(const NodeInfo& info, const char* isa) {
  for (const CostRow& r : kCostTable) {
    if (std::strcmp(r.isa, isa) == 0 && r.kind == info.kind && r.weight_bits == bits_of(info) &&
        r.dynamic == info.dynamic) {
      return &r;
    }
  }
  return nullptr;
}

}  // namespace

double xnnpack_speedup(const NodeInfo& info, const char* isa) {
  const CostRow* r = find_row(info, isa);
  return r != nullptr ? r->speedup : 0;
}

ClaimDecision decide_claim(const NodeInfo& info, const TfLiteContext* context,
                           const Options& options, const char* isa, int threads) {
  ClaimDecision d;
  d.litert = litert_path(info, context, options.litert_xnnpack);
  d.macs = node_macs(info, context);
  if (d.litert == LiteRtPath::kNone) {
    d.reason = info.custom ? "custom op: only the edgesdk delegate runs it"
                           : "stock LiteRT rejects this node or computes it wrongly";
    return d;
  }
  if (options.claim == ClaimPolicy::kAll) {
    d.reason = std::string("claim=all (LiteRT would run ") + path_name(d.litert) + ")";
    return d;
  }
  if (d.litert == LiteRtPath::kBuiltin) {
    if (std::strcmp(isa, "scalar") == 0) {
      d.claim = false;
      d.reason = "left to LiteRT's builtin kernel: the scalar ISA is not faster than it";
      return d;
    }
    d.reason = "LiteRT would run its builtin kernel (XNNPACK ";
    d.reason += options.litert_xnnpack ? "does not take this node" : "off";
    d.reason += "); the SIMD plan is faster";
    return d;
  }
  d.speedup = xnnpack_speedup(info, isa);
  const CostRow* row = find_row(info, isa);
  const std::string on_isa = std::string(isa) +
      (row != nullptr && row->source == kReasoned ? " (reasoned, not measured)" : "");
  if (d.speedup == 0) {
    d.claim = false;
    d.reason = std::string("left to XNNPACK: no cost-table measurement on ") + isa;
  } else if (d.speedup < kMinSpeedup) {
    d.claim = false;
    d.reason = format("left to XNNPACK: cost table %.2fx of XNNPACK on ", d.speedup) + on_isa +
               format(" (claims from %.2fx)", kMinSpeedup);
  } else if (d.macs < kMinMacs) {
    d.claim = false;
    d.reason = format("left to XNNPACK: %.0f MACs, below the %.0f where a delegate kernel pays",
                      static_cast<double>(d.macs), static_cast<double>(kMinMacs));
  } else {
    // On T threads (kParallelMacs): a node that may run on one thread against XNNPACK's split.
    const bool one_thread_bound = threads > 1 && d.macs < kParallelMacs;
    d.speedup_on_threads = one_thread_bound ? d.speedup / threads : d.speedup;
    const std::string on_threads =
        threads <= 1 ? std::string()
        : one_thread_bound
            ? format("; on %.0f threads at least %.2fx (", threads, d.speedup_on_threads) +
                  format("one thread against XNNPACK's split: under %.0f MACs)",
                         static_cast<double>(kParallelMacs))
            : format("; on %.0f threads as on one (from %.0f MACs)", threads,
                     static_cast<double>(kParallelMacs));
    if (d.speedup_on_threads < kMinSpeedup) {
      d.claim = false;
      d.reason = format("left to XNNPACK: cost table %.2fx of XNNPACK on ", d.speedup) + on_isa +
                 on_threads + format(", %.0f MACs", static_cast<double>(d.macs)) +
                 format(" (claims from %.2fx)", kMinSpeedup);
    } else {
      d.reason = format("cost table: %.2fx of XNNPACK on ", d.speedup) + on_isa +
                 format(", %.0f MACs", static_cast<double>(d.macs)) + on_threads;
    }
  }
  return d;
}

}  // namespace delegate
}  // namespace edge
