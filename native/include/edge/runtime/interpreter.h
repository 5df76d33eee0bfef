// Runs a checked .edge Model.
//
// Construction does all the work that does not depend on input values, once:
//   * every operator is prepared: its shapes and types checked against its rules, its
//     fixed-point parameters computed, weights unpacked and handed to the kernel library to be
//     packed for the ISA chosen at run time;
//   * memory is planned: each run-time tensor lives from the operator that writes it to the last
//     one that reads it (graph inputs and outputs for the whole run, so that inputs set once
//     serve many runs and outputs stay readable), and tensors
//     whose lifetimes do not overlap share bytes of one arena (greedy by size, as TFLite's
//     planner does; best fit in execution order, O(n log n), for graphs of more than 2048
//     tensors). The arena is allocated once and reused by every run, after its size, the
//     workspace and the prepared weights were checked against the memory budget.
// run() then executes the operators in order, allocating nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "edge/runtime/model.h"

namespace edge {
class ThreadPool;
namespace runtime {

struct InterpreterOptions {
  // Worker threads for the kernels; 0 means one per physical core it may run on
  // (usable_core_count(): its affinity counts).
  int threads = 0;
  // Kernel ISA to force ("scalar", "avx2", "neon", "dotprod", ...); empty: the best this CPU
  // has (or $EDGE_KERNEL_ISA).
  std::string isa;
  // Time every operator on every run (layer_stats()).
  bool profile = false;
  // Most bytes the interpreter may allocate (arena + workspace + prepared weights); 0: the
  // budget the model was loaded with (EDGESDK_MEMORY_BUDGET or 2 GiB; see limits.h). Over it,
  // construction throws a FormatError naming the largest tensor and the limit.
  uint64_t memory_budget = 0;
};

// What one operator ran with and how long it took.
struct LayerStats {
  int op_index = 0;
  std::string label;   // "operator 3 (CONV_2D 'name')"
  std::string op;      // "CONV_2D"
  std::string kernel;  // the kernel (and ISA) that ran it, e.g. "qs8_vadd_lut__scalar"
  double last_ms = 0;
  double total_ms = 0;
  double min_ms = 0;  // the fastest profiled run (0: none yet)
  int64_t runs = 0;
  // The thread pool's calls from this operator over the profiled runs (ThreadPool::calls()):
  // jobs it handed to the workers, calls run on the caller alone while the pool backed off
  // (late or contended workers), calls of a single task.
  uint64_t parallel_calls = 0, backed_off_calls = 0, single_task_calls = 0;
  // Runs that went inside the previous operator's pool job (a residual ADD after a CONV_2D, a
  // 1x1 CONV_2D after a DEPTHWISE_CONV_2D: Interpreter, fused pairs); their time is in that
  // operator's.
  int64_t fused_runs = 0;
  // The most threads one of its jobs could use (its tasks, up to the pool's threads;
  // ThreadPool::take_widest_job()), 0 before any job; for an op run in another operator's
  // job (fused_runs), that job's.
  int widest_job = 0;
  // How many threads ran it (its widest job's when any of its calls went to the workers or it
  // ran in another operator's job, else 1) and why, from the counts above.
  int threads(int pool_threads) const;
  std::string threads_why(int pool_threads) const;
};

// Every kernel name the runtime's own operators can report (LayerStats::kernel), sorted; the
// others come from the kernel tables (edge::kernel_names()). Each is a function's symbol
// (docs/kernels.md).
std::vector<std::string> op_kernel_names();

class OpKernel;

class Interpreter {
 public:
  explicit Interpreter(std::shared_ptr<const Model> model,
                       const InterpreterOptions& options = InterpreterOptions());
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  const Model& model() const { return *model_; }
  std::size_t input_count() const { return model_->inputs().size(); }
  std::size_t output_count() const { return model_->outputs().size(); }
  const Tensor& input_tensor(std::size_t i) const;
  const Tensor& output_tensor(std::size_t i) const;
  // Where input i lives (input_tensor(i).runtime_bytes() bytes); write it before run().
  void* input_data(std::size_t i);
  // Copies `bytes` bytes into input i; throws InputError when the size does not match.
  void set_input(std::size_t i, const void* data, std::size_t bytes);
  // Output i after run(), valid until the next run().
  const void* output_data(std::size_t i) const;

  void run();

  // Bytes of the activation arena shared by all run-time tensors.
  std::size_t arena_bytes() const { return arena_bytes_; }
  // Bytes of operator workspaces (im2col buffers, ...), shared across operators.
  std::size_t scratch_bytes() const { return scratch_bytes_; }
  // Sum of the run-time tensors' sizes: what the arena would need without sharing.
  std::size_t unshared_activation_bytes() const { return unshared_bytes_; }
  // Bytes the kernels hold for prepared (repacked / unpacked) weights.
  std::size_t prepared_weight_bytes() const { return prepared_bytes_; }
  int threads() const { return threads_; }
  // The pool every operator of this interpreter shares (its back-off counters, calls()).
  const ThreadPool& thread_pool() const;

  void set_profiling(bool on) { profile_ = on; }
  const std::vector<LayerStats>& layer_stats() const { return stats_; }

  // Offset of run-time tensor `index` in the arena, or -1 (constants): for tests of the plan.
  int64_t arena_offset(int index) const;

 private:
  void plan_memory();

  std::shared_ptr<const Model> model_;
  InterpreterOptions options_;
  int threads_ = 1;
  bool profile_ = false;
  std::vector<std::unique_ptr<OpKernel>> kernels_;
  std::vector<LayerStats> stats_;
  // Per operator: whether it runs together with the next one in one pool job (see the
  // constructor): kFuseRows, a CONV_2D and the ADD / MUL without broadcast that takes its
  // output; kFusePixels, a DEPTHWISE_CONV_2D and the 1x1 CONV_2D that takes its output (and
  // that one's ADD / MUL where it is kFuseRows itself); kFuseExpand, a 1x1 CONV_2D and the
  // kFusePixels DEPTHWISE_CONV_2D that takes its output (with that one's job); 0: alone.
  static constexpr uint8_t kFuseRows = 1, kFusePixels = 2, kFuseExpand = 3;
  std::vector<uint8_t> fused_next_;
  // Per operator that starts a fused job: the elements per output row (pixel) the job's
  // element-wise op takes per row (its first operator's output channels for kFuseRows, the
  // 1x1 layer's for kFusePixels; for kFuseExpand the 1x1 layer's output width, the pixels per
  // input row of the depthwise layer), resolved once in the constructor, not per job in run().
  std::vector<int64_t> fused_row_elements_;
  // How many operators after operator i run in its pool job (0 to 3).
  int fused_span(std::size_t i) const {
    if (fused_next_[i] == 0) return 0;
    if (fused_next_[i] == kFuseExpand) return 1 + fused_span(i + 1);
    return fused_next_[i] == kFusePixels && fused_next_[i + 1] == kFuseRows ? 2 : 1;
  }
  std::vector<int64_t> offsets_;       // per tensor: arena offset or -1
  std::vector<void*> tensor_data_;     // per tensor: where its bytes are
  std::size_t arena_bytes_ = 0, scratch_bytes_ = 0, unshared_bytes_ = 0, prepared_bytes_ = 0;
  uint64_t arena_total_ = 0;  // the plan's arena size, before the budget check narrows it
  struct Buffer;
  std::unique_ptr<Buffer> arena_, scratch_;
  struct Context;
  std::unique_ptr<Context> context_;
};

}  // namespace runtime
}  // namespace edge
