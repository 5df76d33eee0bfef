// The interface between the interpreter and one operator implementation (internal).
#pragma once

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "edge/kernels/conv2d.h"
#include "edge/kernels/depthwise_conv2d.h"
#include "edge/kernels/isa.h"
#include "edge/kernels/requant.h"
#include "edge/runtime/error.h"
#include "edge/runtime/model.h"
#include "edge/thread_pool.h"

namespace edge {
namespace runtime {

// What an operator may look at while it prepares.
struct PrepareContext {
  const Model& model;
  const Operator& op;
  std::string isa;  // requested kernel ISA ("" = auto)
  int threads = 1;
  // The interpreter's memory budget (bytes, never 0): an operator whose plan would allocate
  // more (beyond the tensors the interpreter already checked) refuses before allocating.
  uint64_t memory_budget = 0;

  const Tensor& input(int k) const { return model.tensors()[op.inputs.at(k)]; }
  bool has_input(int k) const {
    return k < static_cast<int>(op.inputs.size()) && op.inputs[k] >= 0;
  }
  int num_inputs() const { return static_cast<int>(op.inputs.size()); }
  const Tensor& output(int k = 0) const { return model.tensors()[op.outputs.at(k)]; }

  // Workspace the operator needs while it runs (bytes); the largest request is allocated once.
  std::size_t scratch_request = 0;
  // Bytes the operator keeps for prepared weights.
  std::size_t prepared_bytes = 0;
  // Other bytes its plan keeps (indirection buffers, input copies): counted in the budget.
  std::size_t plan_bytes = 0;

  // A FormatError that names the file and the operator.
  template <typename... Parts>
  FormatError error(const Parts&... parts) const {
    std::ostringstream os;
    os << model.where() << op.label << ": ";
    (os << ... << parts);
    return FormatError(os.str());
  }
  template <typename... Parts>
  UnsupportedError unsupported(const Parts&... parts) const {
    std::ostringstream os;
    os << model.where() << op.label << ": ";
    (os << ... << parts);
    return UnsupportedError(os.str());
  }
};

// Data pointers for one run.
struct RunContext {
  const std::vector<void*>& tensor_data;
  const Operator& op;
  void* scratch = nullptr;
  void* thread_pool = nullptr;  // the interpreter's edge::ThreadPool (edge/thread_pool.h)

  template <typename T>
  const T* in(int k) const {
    return static_cast<const T*>(tensor_data[op.inputs[k]]);
  }
  template <typename T>
  T* out(int k = 0) const {
    return static_cast<T*>(tensor_data[op.outputs[k]]);
  }
  ThreadPool* pool() const { return static_cast<ThreadPool*>(thread_pool); }
};

// Below this many output bytes per thread an operator outside the GEMM plans stays on one
// thread: handing a range to the pool costs microseconds (a 25K-element ADD takes ~10 us).
constexpr int64_t kMinParallelBytes = 16 * 1024;
// The same for an element-wise op without broadcast (the residual ADDs of a MobileNet): its
// inputs were written by the layers before it, split by rows over the threads (each thread's
// rows a contiguous part of the tensor), so the part of the ADD a thread runs is what its own
// core wrote; on the caller alone half of both inputs crossed from the other core, and its
// output went back for the next layer (a 20x20x32 ADD, 12.8 KB, on 2 threads of the 2-core
// Zen 4 VM: 6.8 -> 5.3 us; benchmarks/results/edge-models-2026-12-07.md, area A's 09:00 section).
constexpr int64_t kMinParallelFlatBytes = 2 * 1024;

// Runs fn(begin, end, thread) over [0, n) split into contiguous ranges, each a multiple of
// `align` units (but the last) and at least `min_units` long: small operators stay on the
// calling thread, where a hand-over would cost more than the work. With `align` such that a
// range boundary falls on a 64-byte boundary of the output, no two threads write one cache
// line. `thread` is in [0, num_threads()), for per-thread scratch. Up to 4 ranges per thread:
// the pool hands them out one at a time, so when another process holds a core the threads that
// run take the late one's share (with one range per thread the layer waited for it: measured
// on the 2-core host, MAX_POOL_2D 0.03 ms alone, 0.08 ms split in two).
template <typename F>
void parallel_ranges(ThreadPool* pool, int64_t n, int64_t align, int64_t min_units, const F& fn) {
  const int threads = pool != nullptr ? pool->num_threads() : 1;
  int64_t tasks = threads <= 1 ? 1 : std::min<int64_t>(4 * int64_t{threads},
                                                       n / std::max<int64_t>(min_units, 1));
  // A whole number of ranges per thread: thread t's share is then the t-th part of [0, n), the
  // rows the layers split by rows wrote on that thread.
  tasks = whole_parts_per_thread<int64_t>(tasks, threads);
  if (tasks <= 1) {
    if (n > 0) fn(int64_t{0}, n, 0);
    return;
  }
  // Units per task, rounded up to `align`: the first tasks take whole shares, the last the rest.
  const int64_t share = ((n + tasks - 1) / tasks + align - 1) / align * align;
  pool->parallel_for(static_cast<std::size_t>(tasks), [&](std::size_t task, int thread) {
    const int64_t begin = std::min(n, static_cast<int64_t>(task) * share);
    const int64_t end = std::min(n, begin + share);
    if (begin < end) fn(begin, end, thread);
  });
}

class OpKernel {
 public:
  virtual ~OpKernel() = default;
  // Check shapes, types and parameters; precompute everything run() needs.
  virtual void prepare(PrepareContext& ctx) = 0;
  virtual void run(const RunContext& ctx) = 0;
  // The kernel that runs (XNNPACK-style name with the ISA), for profiles.
  virtual std::string kernel_name() const = 0;

  // Two operators in one pool job (the interpreter's fused pairs): a CONV_2D runs as run()
  // does and, where its split gives each task whole output rows, calls `done` on each task's
  // rows inside the job, returning true; false: `done` was not called.
  virtual bool run_rows_done(const RunContext& ctx, const RowsDone& done) {
    (void)done;
    run(ctx);
    return false;
  }
  // A DEPTHWISE_CONV_2D and the 1x1 CONV_2D that takes its output: the depthwise layer runs as
  // run() does and calls `done` on each task's output pixels inside its job, returning true;
  // false: `done` was not called. The 1x1 layer, where runs_pixels(), computes any range of
  // its output pixels on the calling thread (`thread`: its index in the pool), the same bytes
  // as run().
  virtual bool run_pixels_done(const RunContext& ctx, const PixelsDone& done) {
    (void)done;
    run(ctx);
    return false;
  }
  // A 1x1 CONV_2D, the DEPTHWISE_CONV_2D that takes its output and the rest of that one's job
  // (a MobileNet block's expansion, depthwise layer, projection and ADD) in one pool job: where
  // takes_input_rows(threads), the depthwise layer's tasks have `rows` compute its input rows
  // (the 1x1 layer's run_pixels) before they read them, then call `done` as run_pixels_done's.
  virtual bool takes_input_rows(int threads) const {
    (void)threads;
    return false;
  }
  virtual void run_input_rows(const RunContext& ctx, const InputRows& rows,
                              const PixelsDone& done) {
    (void)ctx, (void)rows, (void)done;
  }
  virtual bool runs_pixels() const { return false; }
  virtual void run_pixels(const RunContext& ctx, std::size_t p0, std::size_t p1, int thread) {
    (void)ctx, (void)p0, (void)p1, (void)thread;
  }
  // An element-wise op without broadcast, whose output element i depends only on element i
  // of its inputs (ADD, MUL): run_elements() computes elements [begin, end) of run()'s output,
  // the same bytes whatever the range.
  virtual bool flat_elementwise() const { return false; }
  virtual void run_elements(const RunContext& ctx, int64_t begin, int64_t end) {
    (void)ctx, (void)begin, (void)end;
  }
};

std::unique_ptr<OpKernel> create_kernel(const Operator& op);

// Factories, one per op family (each in its own source file).
std::unique_ptr<OpKernel> make_add();
std::unique_ptr<OpKernel> make_mul();
std::unique_ptr<OpKernel> make_concatenation();
std::unique_ptr<OpKernel> make_max_pool();
std::unique_ptr<OpKernel> make_average_pool();
std::unique_ptr<OpKernel> make_reshape();
std::unique_ptr<OpKernel> make_softmax();
std::unique_ptr<OpKernel> make_logistic();
std::unique_ptr<OpKernel> make_hard_swish();
std::unique_ptr<OpKernel> make_quantize();
std::unique_ptr<OpKernel> make_dequantize();
std::unique_ptr<OpKernel> make_mean();
std::unique_ptr<OpKernel> make_pad();
std::unique_ptr<OpKernel> make_fully_connected();
std::unique_ptr<OpKernel> make_conv2d();
std::unique_ptr<OpKernel> make_depthwise_conv2d();
std::unique_ptr<OpKernel> make_transpose();

// The names the op families' own kernels report (op_kernel_names(); each in its source file).
void add_elementwise_kernel_names(std::vector<std::string>& out);
void add_misc_kernel_names(std::vector<std::string>& out);
void add_pool_kernel_names(std::vector<std::string>& out);

// ---------------------------------------------------------------- shared checks
inline std::string shape_str(const std::vector<int32_t>& s) {
  std::ostringstream os;
  os << "[";
  for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

// The tensor must have `dtype` and one (per-tensor) scale > 0 with a zero point in the dtype's
// range; returns (scale, zero_point).
struct TensorQuant {
  float scale;
  int32_t zero_point;
};
TensorQuant per_tensor_quant(const PrepareContext& ctx, const Tensor& t, const char* role);

// Input 0 and the output of an int8 operator: both INT8 with one scale each (and, with
// `same_shape`, of one shape); their quantisation.
struct InOutQuant {
  TensorQuant in, out;
};
InOutQuant int8_in_out(const PrepareContext& ctx, bool same_shape);

// The values of constant input k, an INT32 (or, with `int64_ok`, INT64) tensor; `what` names it
// in the error otherwise ("the axes input must be a constant INT32 tensor").
std::vector<int64_t> constant_ints(const PrepareContext& ctx, int k, const char* what,
                                   bool int64_ok = false);

// int8 clamped to [lo, hi] (bounds inside [-128, 127]).
inline int8_t clamp8(int32_t v, int32_t lo = -128, int32_t hi = 127) {
  return static_cast<int8_t>(v < lo ? lo : v > hi ? hi : v);
}

// v + zero_point clamped to int8 like clamp8, the sum taken in 64 bits: a hostile file's
// multiplier, shift or scale can put v at the int32 limits, where LiteRT's int32 sum would
// overflow (undefined behaviour); in range the result is the same.
inline int8_t clamp8_add(int32_t v, int32_t zero_point, int32_t lo = -128, int32_t hi = 127) {
  const int64_t s = static_cast<int64_t>(v) + zero_point;
  return static_cast<int8_t>(s < lo ? lo : s > hi ? hi : s);
}

void expect_dtype(const PrepareContext& ctx, const Tensor& t, DType dtype, const char* role);
void expect_same_shape(const PrepareContext& ctx, const Tensor& a, const Tensor& b,
                       const char* role_a, const char* role_b);

// TFLite's scalar element-wise code (MultiplyByQuantizedMultiplier, RoundingDivideByPOT) rounds
// ties away from zero: the rule the runtime's own operators pass to edge/kernels/requant.h.
constexpr Rounding kScalarRounding = Rounding::kAwayFromZero;

// The kernel ISA the interpreter was asked for (nullopt: automatic); an unknown name is an
// UnsupportedError naming the operator.
std::optional<Isa> requested_isa(const PrepareContext& ctx);

// TFLite's QuantizeMultiplier (edge::quantize_multiplier); a multiplier that is not a finite
// number >= 0 (scales whose ratio overflowed) is an error naming the operator.
QuantizedMultiplier quantize_multiplier(const PrepareContext& ctx, double real_multiplier);

// TFLite's activation range on the quantised output scale (CalculateActivationRangeQuantized).
void activation_range_int8(Activation act, float scale, int32_t zero_point, int32_t* act_min,
                           int32_t* act_max);

}  // namespace runtime
}  // namespace edge
