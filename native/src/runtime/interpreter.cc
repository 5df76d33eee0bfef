#include "edge/runtime/interpreter.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <sstream>

#include "edge/cpu_features.h"
#include "edge/kernels/isa.h"
#include "arena_plan.h"
#include "edge/runtime/error.h"
#include "edge/runtime/limits.h"
#include "edge/thread_pool.h"
#include "op_kernel.h"

namespace edge {
namespace runtime {

namespace {
constexpr std::size_t kAlignment = 64;

std::size_t align_up(std::size_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }
}  // namespace

// A 64-byte-aligned, zero-initialised heap block.
struct Interpreter::Buffer {
  explicit Buffer(std::size_t bytes) : size(bytes) {
    if (bytes != 0) {
      data = static_cast<uint8_t*>(::operator new[](bytes, std::align_val_t(kAlignment)));
      std::memset(data, 0, bytes);
    }
  }
  ~Buffer() {
    if (data != nullptr) ::operator delete[](data, std::align_val_t(kAlignment));
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  uint8_t* data = nullptr;
  std::size_t size = 0;
};

// The kernel library's thread pool, shared by every operator of this interpreter.
struct Interpreter::Context {
  explicit Context(int threads) : pool(threads) {}
  ThreadPool pool;
};

Interpreter::Interpreter(std::shared_ptr<const Model> model, const InterpreterOptions& options)
    : model_(std::move(model)), options_(options), profile_(options.profile) {
  threads_ = options_.threads > 0 ? options_.threads : usable_core_count();
  if (!options_.isa.empty()) {
    // Checked here, not only by the operators that use kernels, so that a mistyped ISA is an
    // error whatever the model contains.
    try {
      resolve_isa(parse_isa(options_.isa));
    } catch (const std::exception& e) {
      throw UnsupportedError(std::string("kernel ISA '") + options_.isa + "': " + e.what());
    }
  }
  context_ = std::make_unique<Context>(threads_);
  const Model& m = *model_;
  const uint64_t budget =
      options_.memory_budget != 0 ? options_.memory_budget : m.memory_budget();
  auto over_budget = [&](const std::string& what, uint64_t bytes) {
    std::ostringstream os;
    os << m.where() << what << " needs " << bytes << " bytes, over the memory budget of " << budget
       << " bytes" << budget_hint();
    return FormatError(os.str());
  };
  const auto& ops = m.operators();
  kernels_.reserve(ops.size());
  stats_.resize(ops.size());
  std::size_t scratch = 0;
  uint64_t plan_bytes = 0;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const Operator& op = ops[i];
    std::unique_ptr<OpKernel> kernel = create_kernel(op);
    if (!kernel) throw UnsupportedError(m.where() + op.label + ": no implementation");
    PrepareContext ctx{m, op, options_.isa, threads_, budget};
    kernel->prepare(ctx);
    if (ctx.scratch_request > budget) {
      throw over_budget(op.label + ": the workspace", ctx.scratch_request);
    }
    scratch = std::max(scratch, ctx.scratch_request);
    prepared_bytes_ += ctx.prepared_bytes;
    plan_bytes += ctx.plan_bytes;
    if (uint64_t{prepared_bytes_} + plan_bytes > budget) {
      // Many operators may share one weight buffer in the file; each holds its own packing.
      throw over_budget(op.label + ": the prepared weights and plans of operators 0 to " +
                            std::to_string(i) + " together",
                        uint64_t{prepared_bytes_} + plan_bytes);
    }
    LayerStats& s = stats_[i];
    s.op_index = static_cast<int>(i);
    s.label = op.label;
    s.op = op_name(op.type);
    s.kernel = kernel->kernel_name();
    kernels_.push_back(std::move(kernel));
  }
  // A CONV_2D whose output an ADD or MUL without broadcast takes next (a MobileNet's
  // projection and residual ADD) runs with it in one pool job: each convolution task, having
  // written every channel of its output rows, computes the element-wise op on those rows, on
  // the same thread (Conv2D::run with RowsDone). That saves the element-wise op's own pool job
  // (a hand-off and a wait for the slower thread: 0.5-0.7 us with the two vCPUs of the 2-core
  // Zen 4 VM on one die, 1.3-1.7 us on two) and it reads rows its own core just wrote. Each
  // element's bytes depend only on its position, so the result is the same. Where the
  // convolution's split is not whole rows it says so and the op runs after it as before.
  // EDGE_FUSE_ROWS=0 turns it off (A/B measurements).
  fused_next_.assign(ops.size(), 0);
  const bool fuse = threads_ > 1 && ab_switch_on("EDGE_FUSE_ROWS");
  for (std::size_t i = 0; fuse && i + 1 < ops.size(); ++i) {
    const Operator& conv = ops[i];
    const Operator& next = ops[i + 1];
    if (conv.type != OpType::kConv2D || conv.outputs.size() != 1 ||
        (next.type != OpType::kAdd && next.type != OpType::kMul) || next.inputs.size() != 2 ||
        !kernels_[i + 1]->flat_elementwise()) {
      continue;
    }
    const int32_t t = conv.outputs[0];
    const Tensor& y = m.tensors()[t];
    if ((next.inputs[0] != t && next.inputs[1] != t) || y.shape.size() != 4 ||
        m.tensors()[next.outputs[0]].num_elements() != y.num_elements()) {
      continue;
    }
    fused_next_[i] = kFuseRows;
  }
  // A DEPTHWISE_CONV_2D whose output a 1x1 stride-1 CONV_2D takes next (a MobileNet block's
  // depthwise layer and its projection) runs with it in one pool job too: each depthwise task
  // (2 per thread: whole rows where whole rows balance, else runs of pixels that cross row
  // ends), having written its pixels, computes the 1x1 layer's output on them on the same
  // thread (Conv2D::run_pixels: output pixel p reads input pixel p only), and the projection's
  // ADD above on them where it was paired with one; a depthwise layer with other than int8
  // output runs alone as before. That saves the 1x1 layer's own job (and the ADD's), 17 of the
  // MobileNet-like model's 54 jobs per inference at 2 threads, and the 1x1 layer reads pixels
  // its own core just wrote.
  for (std::size_t i = 0; fuse && i + 1 < ops.size(); ++i) {
    const Operator& dw = ops[i];
    const Operator& pw = ops[i + 1];
    if (dw.type == OpType::kDepthwiseConv2D && dw.outputs.size() == 1 &&
        pw.type == OpType::kConv2D && !pw.inputs.empty() && pw.inputs[0] == dw.outputs[0] &&
        kernels_[i + 1]->runs_pixels()) {
      fused_next_[i] = kFusePixels;
    }
  }
  // A 1x1 stride-1 CONV_2D whose output only such a depthwise layer reads (a MobileNet block's
  // expansion) runs in the depthwise layer's job as well: each depthwise task first computes
  // the expansion's output rows it owns (Conv2D::run_pixels on them: output pixel p reads input
  // pixel p only), and the one or two output rows per task boundary whose 3x3 windows reach
  // into the next task's rows run in whichever of the two tasks finishes its part last
  // (DepthwiseConv2D::run with InputRows): no task waits for another and no row is computed
  // twice, so the bytes are those of 1 thread. That saves the expansion's job (a hand-off and
  // a wait for the slower thread; 0.5-0.7 us with the 2-core Zen 4 VM's vCPUs on one die,
  // 1.1-1.7 us on two) and its rows cross no core between the two layers. But the boundary
  // rows cost: each is a depthwise call and a 1x1 GEMM call of one row of pixels (re-reading
  // the 1x1 layer's weights) out of order. So only where a task boundary has one such row, a
  // stride-2 depthwise layer (at stride 1 it has two: the MobileNet-like model's 40x40 and
  // 20x20 blocks took 1.0-3.2 us more per block fused than as two jobs, its stride-2 80x80 ->
  // 40x40 and 40x40 -> 20x20 ones 0.1-1.3 us less; 2 threads, fastest of 200 profiled runs,
  // benchmarks/results/edge-models-2026-12-07.md, stop 30 area B), and where the depthwise
  // output is at least 16 pixels wide (a boundary row's GEMM call is a row of pixels; stop 28:
  // per 10-pixel row the 10x10 blocks were up to 3.5 % slower). EDGE_FUSE_EXPAND=0 turns it
  // off; EDGE_FUSE_EXPAND_STRIDE (default 2) and EDGE_FUSE_EXPAND_WIDTH (default 16) set the
  // least stride and width (A/B measurements, tests).
  const bool fuse_expand = fuse && ab_switch_on("EDGE_FUSE_EXPAND");
  const int expand_width = fuse_expand ? ab_count("EDGE_FUSE_EXPAND_WIDTH", 16) : 0;
  const int expand_stride = fuse_expand ? ab_count("EDGE_FUSE_EXPAND_STRIDE", 2) : 0;
  for (std::size_t i = 0; fuse_expand && i + 1 < ops.size(); ++i) {
    const Operator& pw = ops[i];
    const Operator& dw = ops[i + 1];
    if (pw.type != OpType::kConv2D || fused_next_[i] != 0 || fused_next_[i + 1] != kFusePixels ||
        (i > 0 && fused_next_[i - 1] != 0) || pw.outputs.size() != 1 || dw.inputs.empty() ||
        dw.inputs[0] != pw.outputs[0] || !kernels_[i]->runs_pixels() ||
        !kernels_[i + 1]->takes_input_rows(threads_)) {
      continue;
    }
    const int32_t t = pw.outputs[0];
    const Tensor& dw_out = m.tensors()[dw.outputs[0]];
    auto reads = [t](const std::vector<int32_t>& v) {
      return std::find(v.begin(), v.end(), t) != v.end();
    };
    bool read_elsewhere = reads(m.outputs());
    for (std::size_t j = 0; j < ops.size() && !read_elsewhere; ++j) {
      read_elsewhere = j != i + 1 && reads(ops[j].inputs);
    }
    if (read_elsewhere || dw_out.shape.size() != 4 || dw_out.shape[2] < expand_width ||
        dw.options.stride_h < expand_stride) {
      continue;
    }
    fused_next_[i] = kFuseExpand;
  }
  fused_row_elements_.assign(ops.size(), 0);
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (fused_next_[i] == 0) continue;
    if (fused_next_[i] == kFuseExpand) {
      fused_row_elements_[i] = m.tensors()[ops[i].outputs[0]].shape[2];
      continue;
    }
    const Operator& producer = fused_next_[i] == kFuseRows ? ops[i] : ops[i + 1];
    fused_row_elements_[i] = m.tensors()[producer.outputs[0]].shape.back();
  }
  plan_memory();
  scratch_bytes_ = align_up(scratch);
  // Checked before anything is allocated: a 196-byte file can declare two int8[2^31 - 1]
  // inputs, a 4 GiB arena.
  const uint64_t total = arena_total_ + scratch_bytes_ + prepared_bytes_ + plan_bytes;
  if (total > budget || total > std::numeric_limits<std::size_t>::max() / 2) {
    const auto& ts = m.tensors();
    int32_t largest = -1;
    for (std::size_t t = 0; t < ts.size(); ++t) {
      if (offsets_[t] < 0) continue;
      if (largest < 0 || ts[t].runtime_bytes() > ts[largest].runtime_bytes()) {
        largest = static_cast<int32_t>(t);
      }
    }
    std::ostringstream what;
    what << "the activation arena (" << arena_total_ << " bytes";
    if (largest >= 0) {
      what << "; its largest is tensor " << largest << " ('" << ts[largest].name << "', "
           << dtype_name(ts[largest].dtype) << " " << shape_str(ts[largest].shape) << ", "
           << ts[largest].runtime_bytes() << " bytes)";
    }
    what << "), workspace (" << scratch_bytes_ << "), prepared weights (" << prepared_bytes_
         << ") and operator plans (" << plan_bytes << ") together";
    throw over_budget(what.str(), total);
  }
  arena_ = std::make_unique<Buffer>(arena_bytes_);
  scratch_ = std::make_unique<Buffer>(scratch_bytes_);
  const auto& tensors = m.tensors();
  tensor_data_.assign(tensors.size(), nullptr);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].is_constant()) {
      // Constants stay in the (read-only) file image; operators only read them.
      tensor_data_[i] = const_cast<uint8_t*>(tensors[i].data);
    } else if (offsets_[i] >= 0) {
      tensor_data_[i] = arena_->data + offsets_[i];
    }
  }
}

Interpreter::~Interpreter() = default;

void Interpreter::plan_memory() {
  const Model& m = *model_;
  const auto& tensors = m.tensors();
  const auto& ops = m.operators();
  const int n_ops = static_cast<int>(ops.size());
  const std::size_t n = tensors.size();
  std::vector<int> first(n, -2), last(n, -2);
  auto use = [&](int32_t t, int at) {
    if (t < 0 || tensors[t].is_constant()) return;
    if (first[t] == -2) first[t] = at;
    first[t] = std::min(first[t], at);
    last[t] = std::max(last[t], at);
  };
  // Graph inputs live for the whole run: a caller may set them once and run many times.
  for (int32_t t : m.inputs()) {
    use(t, -1);
    use(t, n_ops);
  }
  for (int i = 0; i < n_ops; ++i) {
    for (int32_t t : ops[i].inputs) use(t, i);
    for (int32_t t : ops[i].outputs) use(t, i);
    // A fused pair's second operator writes while the first still reads its inputs: they
    // live until the pair is done, so that its output cannot take their bytes.
    if (fused_next_[i] != 0) {
      for (int32_t t : ops[i].inputs) use(t, i + fused_span(i));
    }
  }
  for (int32_t t : m.outputs()) use(t, n_ops);

  // RESHAPE only renames bytes: its output shares its input's storage (one storage group
  // living as long as both), and the operator has nothing to copy. Nothing writes in place,
  // so sharing read-only views is safe whichever of the two is a graph input or output.
  std::vector<int32_t> group(n);
  for (std::size_t t = 0; t < n; ++t) group[t] = static_cast<int32_t>(t);
  auto root = [&](int32_t t) {
    while (group[t] != t) t = group[t] = group[group[t]];
    return t;
  };
  for (const Operator& op : ops) {
    if (op.type != OpType::kReshape) continue;
    const int32_t in = op.inputs[0], out = op.outputs[0];
    if (tensors[in].is_constant() ||
        tensors[in].runtime_bytes() != tensors[out].runtime_bytes()) {
      continue;
    }
    const int32_t a = root(in), b = root(out);
    group[b] = a;
    first[a] = std::min(first[a], first[b]);
    last[a] = std::max(last[a], last[b]);
  }

  std::vector<int32_t> item_tensor;
  std::vector<ArenaItem> items;
  for (std::size_t t = 0; t < n; ++t) {
    if (first[t] == -2) continue;
    unshared_bytes_ += tensors[t].runtime_bytes();
    if (root(static_cast<int32_t>(t)) != static_cast<int32_t>(t)) continue;  // placed with root
    item_tensor.push_back(static_cast<int32_t>(t));
    items.push_back({(uint64_t{tensors[t].runtime_bytes()} + kAlignment - 1) / kAlignment *
                         kAlignment,
                     first[t], last[t]});
  }
  // Greedy by size for ordinary graphs, best fit in execution order (O(n log n)) for huge ones:
  // see arena_plan.h.
  const ArenaPlan plan = plan_arena(items);
  offsets_.assign(n, -1);
  for (std::size_t i = 0; i < items.size(); ++i) {
    offsets_[item_tensor[i]] = static_cast<int64_t>(plan.offsets[i]);
  }
  for (std::size_t t = 0; t < n; ++t) {
    const int32_t r = root(static_cast<int32_t>(t));
    if (r != static_cast<int32_t>(t) && first[t] != -2) offsets_[t] = offsets_[r];
  }
  arena_total_ = plan.arena_bytes;
  arena_bytes_ = static_cast<std::size_t>(plan.arena_bytes);  // checked against the budget next
}

int64_t Interpreter::arena_offset(int index) const {
  if (index < 0 || static_cast<std::size_t>(index) >= offsets_.size()) return -1;
  return offsets_[index];
}

const Tensor& Interpreter::input_tensor(std::size_t i) const {
  return model_->tensors().at(model_->inputs().at(i));
}

const Tensor& Interpreter::output_tensor(std::size_t i) const {
  return model_->tensors().at(model_->outputs().at(i));
}

void* Interpreter::input_data(std::size_t i) { return tensor_data_.at(model_->inputs().at(i)); }

const void* Interpreter::output_data(std::size_t i) const {
  return tensor_data_.at(model_->outputs().at(i));
}

void Interpreter::set_input(std::size_t i, const void* data, std::size_t bytes) {
  if (i >= input_count()) {
    std::ostringstream os;
    os << "input " << i << " does not exist (the model has " << input_count() << " inputs)";
    throw InputError(os.str());
  }
  const Tensor& t = input_tensor(i);
  if (bytes != t.runtime_bytes()) {
    std::ostringstream os;
    os << "input " << i << " ('" << t.name << "', " << dtype_name(t.dtype) << " "
       << shape_str(t.shape) << ") needs " << t.runtime_bytes() << " bytes, got " << bytes;
    throw InputError(os.str());
  }
  if (bytes != 0) std::memcpy(input_data(i), data, bytes);
}

const ThreadPool& Interpreter::thread_pool() const { return context_->pool; }

int LayerStats::threads(int pool_threads) const {
  // An op that ran in another operator's job (fused_runs) ran on that job's threads: its
  // widest_job is that job's (Interpreter::run), its own calls none.
  if (parallel_calls == 0 && (fused_runs == 0 || widest_job == 0)) return 1;
  // A job of fewer tasks than the pool has threads ran on as many threads as it had tasks.
  return widest_job > 0 ? std::min(widest_job, pool_threads) : pool_threads;
}

std::string LayerStats::threads_why(int pool_threads) const {
  std::ostringstream os;
  if (pool_threads <= 1) return "1 thread: the interpreter has one";
  if (runs == 0) return "not profiled";
  if (fused_runs == runs) {
    return "in the previous operator's pool job (or the depthwise layer's that ran it): each "
           "task ran this op on the output rows (pixels) it wrote (its time is in that job's "
           "operator's)";
  }
  const double per_run = 1.0 / static_cast<double>(runs);
  os.precision(3);
  if (parallel_calls > 0) {
    const int ran = threads(pool_threads);
    os << ran << " threads (pool jobs per run: " << static_cast<double>(parallel_calls) * per_run;
    if (ran < pool_threads) {
      os << "; its jobs had " << ran << " tasks for the pool's " << pool_threads << " threads";
    }
    os << ")";
  } else if (backed_off_calls == 0 && single_task_calls == 0) {
    return "1 thread: it gave the pool no work (its split leaves it on the calling thread, "
           "or the op never splits)";
  } else {
    os << "1 thread";
  }
  if (backed_off_calls > 0) {
    os << "; " << static_cast<double>(backed_off_calls) * per_run
       << " calls per run on the caller alone: the pool was backing off (a late or contended "
          "worker)";
  }
  if (single_task_calls > 0) {
    os << "; " << static_cast<double>(single_task_calls) * per_run
       << " calls per run of a single task (too small to share)";
  }
  return os.str();
}

namespace {
// The element-wise half of a fused pair, called by the convolution's tasks (RowsDone).
struct FusedElementwise {
  OpKernel* kernel;
  const RunContext* ctx;
  int64_t row_elements;  // elements per output row (pixel): the convolution's channels
  static void rows_done(const void* self, std::size_t row0, std::size_t row1) {
    const auto* f = static_cast<const FusedElementwise*>(self);
    f->kernel->run_elements(*f->ctx, static_cast<int64_t>(row0) * f->row_elements,
                            static_cast<int64_t>(row1) * f->row_elements);
  }
};
// The expansion before a depthwise layer (InputRows): the 1x1 layer's output rows, `width`
// pixels each, on the depthwise task's thread.
struct FusedExpansion {
  OpKernel* conv;
  const RunContext* ctx;
  std::size_t width;
  static void rows(const void* self, std::size_t row0, std::size_t row1, int thread) {
    const auto* f = static_cast<const FusedExpansion*>(self);
    f->conv->run_pixels(*f->ctx, row0 * f->width, row1 * f->width, thread);
  }
};
// The 1x1 half of a depthwise + 1x1 pair (PixelsDone), with the 1x1 layer's own element-wise
// partner when it has one (`add` non-null).
struct FusedPointwise {
  OpKernel* conv;
  const RunContext* ctx;
  const FusedElementwise* add;
  static void pixels_done(const void* self, std::size_t p0, std::size_t p1, int thread) {
    const auto* f = static_cast<const FusedPointwise*>(self);
    f->conv->run_pixels(*f->ctx, p0, p1, thread);
    if (f->add != nullptr) FusedElementwise::rows_done(f->add, p0, p1);
  }
};
}  // namespace

void Interpreter::run() {
  const auto& ops = model_->operators();
  for (std::size_t i = 0; i < kernels_.size(); ++i) {
    RunContext ctx{tensor_data_, ops[i], scratch_->data, &context_->pool};
    int fused = 0;  // operators after i that ran in its job
    auto run_op = [&] {
      if (fused_next_[i] == 0) {
        kernels_[i]->run(ctx);
        return;
      }
      const RunContext next{tensor_data_, ops[i + 1], scratch_->data, &context_->pool};
      if (fused_next_[i] == kFuseRows) {
        const FusedElementwise f{kernels_[i + 1].get(), &next, fused_row_elements_[i]};
        fused = kernels_[i]->run_rows_done(ctx, RowsDone{&FusedElementwise::rows_done, &f});
        return;
      }
      // The depthwise layer at d, its 1x1 layer and that one's ADD; with the expansion before
      // it (kFuseExpand: d = i + 1) computing its input rows in its tasks.
      const bool expand = fused_next_[i] == kFuseExpand;
      const std::size_t d = expand ? i + 1 : i;
      const int span = fused_span(d);
      const RunContext dwc = expand ? next : ctx;
      const RunContext pwc{tensor_data_, ops[d + 1], scratch_->data, &context_->pool};
      const RunContext after = span == 2 ? RunContext{tensor_data_, ops[d + 2], scratch_->data,
                                                      &context_->pool}
                                         : pwc;
      const FusedElementwise add{kernels_[span == 2 ? d + 2 : d + 1].get(), &after,
                                 fused_row_elements_[d]};
      const FusedPointwise f{kernels_[d + 1].get(), &pwc, span == 2 ? &add : nullptr};
      const PixelsDone done{&FusedPointwise::pixels_done, &f};
      if (expand) {
        const FusedExpansion e{kernels_[i].get(), &ctx,
                               static_cast<std::size_t>(fused_row_elements_[i])};
        kernels_[d]->run_input_rows(dwc, InputRows{&FusedExpansion::rows, &e}, done);
        fused = 1 + span;
        return;
      }
      fused = kernels_[i]->run_pixels_done(ctx, done) ? span : 0;
    };
    if (profile_) {
      const ThreadPool::Calls c0 = context_->pool.calls();
      context_->pool.take_widest_job();  // from this layer's jobs only
      const auto t0 = std::chrono::steady_clock::now();
      run_op();
      const auto t1 = std::chrono::steady_clock::now();
      const ThreadPool::Calls c1 = context_->pool.calls();
      LayerStats& s = stats_[i];
      const int widest = context_->pool.take_widest_job();
      s.widest_job = std::max(s.widest_job, widest);
      s.last_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
      s.total_ms += s.last_ms;
      s.min_ms = s.runs == 0 ? s.last_ms : std::min(s.min_ms, s.last_ms);
      s.parallel_calls += c1.parallel - c0.parallel;
      s.backed_off_calls += c1.backed_off - c0.backed_off;
      s.single_task_calls += c1.single_task - c0.single_task;
      ++s.runs;
      for (int j = 1; j <= fused; ++j) {
        LayerStats& f = stats_[i + j];
        ++f.runs;
        ++f.fused_runs;
        f.widest_job = std::max(f.widest_job, widest);  // it ran on this job's threads
      }
    } else {
      run_op();
    }
    i += static_cast<std::size_t>(fused);  // the next operators ran in this one's job
  }
}

}  // namespace runtime
}  // namespace edge
