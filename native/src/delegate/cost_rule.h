// Internal: which nodes the delegate claims under its default `claim=faster` policy.
//
// A node the delegate can run is claimed only where our kernel is faster than what LiteRT would
// run for it on this host, so that loading the delegate never makes a model slower. What LiteRT
// would run is decided per node from LiteRT 2.3's op support (docs/delegate.md, "What stock
// LiteRT 2.3.0 runs"): XNNPACK (when the interpreter applies it: the `litert_kernels` option)
// for the classes it takes, else LiteRT's builtin kernels, or nothing (classes LiteRT rejects or
// computes wrongly, and our custom ops). Against XNNPACK the decision comes from a calibrated
// cost table (cost_rule.cc): the speed of our plan over XNNPACK's kernel for the node's class
// (op, weight type, activation kind) on the ISA the plan runs, measured with the benchmarks
// named there; a class without a measurement on that ISA stays with XNNPACK. No timing happens
// at Prepare: the decision is a table look-up per node (nothing on the user's first inference).
#pragma once

#include <cstdint>
#include <string>

#include "edge/delegate/delegate.h"
#include "edge/delegate/tflite_abi.h"
#include "node_kernels.h"

namespace edge {
namespace delegate {

// What LiteRT runs for a node the delegate leaves to it.
enum class LiteRtPath {
  kXnnpack,  // XNNPACK's kernel (the interpreter applies XNNPACK and it takes this class)
  kBuiltin,  // LiteRT's builtin (optimised or reference) kernel
  kNone,     // nothing right: LiteRT rejects the node or computes it wrongly (custom ops too)
};

struct ClaimDecision {
  bool claim = true;
  LiteRtPath litert = LiteRtPath::kBuiltin;
  double speedup = 0;   // ours over XNNPACK from the cost table (0: not looked up), 1 thread
  // ... and what the decision compared on the delegate's threads (kParallelMacs): the table's
  // figure, or its lower bound speedup / threads for a node that may run on one thread
  double speedup_on_threads = 0;
  int64_t macs = 0;     // multiply-accumulates per invocation (estimated from the shapes)
  std::string reason;   // one sentence for the report
};

// Nodes that XNNPACK would run are claimed only when the cost table's speed-up on `isa` is at
// least this (near-parity classes stay with LiteRT: no gain, and a delegate kernel splits
// XNNPACK's partition in two) ...
constexpr double kMinSpeedup = 1.15;
// ... and the node does at least this many multiply-accumulates (below it the per-node cost of
// leaving and re-entering XNNPACK's partition, ~1-3 us, outweighs a faster kernel).
constexpr int64_t kMinMacs = int64_t{1} << 20;

// A claimed node with fewer multiply-accumulates than this runs on the calling thread alone:
// its work (a few microseconds) is less than waking a worker costs, and a worker that the host
// has descheduled holds such a node for a whole scheduler slice. As LiteRT's builtin kernels
// (ruy) run small GEMMs on one thread. On the shared 2-core host the digits CNN's INT4 convs
// took 1.4 ms on 2 threads where stock LiteRT took 0.04 ms
// (benchmarks/results/subbyte-delegate-2026-12-06.md).
constexpr int64_t kMinParallelMacs = int64_t{1} << 18;

// On more than one thread the decision compares like with like: our node against XNNPACK's on
// as many threads. XNNPACK splits a node across its threads; ours runs on one thread wherever
// the split does not pay (thread_choice.h: the node times both ways and keeps the faster, so a
// claimed node costs at most about its 1-thread time, near or far placement alike). Below
// kParallelMacs a node is therefore counted as one-thread work against XNNPACK split perfectly
// T ways: the table's 1-thread figure / T, a lower bound of ours over XNNPACK's on T threads,
// must reach kMinSpeedup. From kParallelMacs up both splits were measured to keep the 1-thread
// ratio, and the table's figure is compared as on one thread: FC 4096x4096 (2^24 MACs) INT2 /
// ternary on 2 threads 2.02-2.55x of stock against 2.38-2.57x on 1 (Zen 4), 1.16-1.27x against
// 1.20-1.34x (the AMX Xeon). Below it the measured 2-thread ratio swung with the placement of
// the two vCPUs: FC 1024x1024 (2^20) 0.79-1.65x on Zen 4 (2-thread medians 0.0163-0.0271 ms
// against a 1-thread 0.0186-0.0189), 0.90-1.37x on the Xeon
// (benchmarks/results/subbyte-delegate-2026-12-0{6,7}.md). Between 2^20 and 2^24 nothing was
// measured on 2 threads: counted as one-thread work.
constexpr int64_t kParallelMacs = int64_t{1} << 24;

// The threads the delegate runs claimed nodes on: its num_threads option, else the interpreter's
// (recommended_num_threads), else one per physical core it may run on.
int delegate_threads(const Options& options, const tflite_abi::TfLiteContext* context);

// What LiteRT would run for `info` (a node inspect_node accepted).
LiteRtPath litert_path(const NodeInfo& info, const tflite_abi::TfLiteContext* context,
                       bool xnnpack);

// Multiply-accumulates of one invocation of `info`, from its tensors' current shapes.
int64_t node_macs(const NodeInfo& info, const tflite_abi::TfLiteContext* context);

// The cost table: our plan's speed over XNNPACK's kernel for this class on `isa`; 0 when the
// table has no measurement for it.
double xnnpack_speedup(const NodeInfo& info, const char* isa);

// The decision under `options` (claim policy, LiteRT's kernels) for a node on `isa` run on
// `threads` threads (delegate_threads()).
ClaimDecision decide_claim(const NodeInfo& info, const tflite_abi::TfLiteContext* context,
                           const Options& options, const char* isa, int threads);

}  // namespace delegate
}  // namespace edge
