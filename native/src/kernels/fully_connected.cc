#include "edge/kernels/fully_connected.h"

#include <stdexcept>
#include <string>
#include <utility>

#include "kernels/gemm_plan.h"

namespace edge {
namespace {

// Rows per task of the FC split: the whole batch up to this many (weights tiles are re-read
// from L1/L2 once per row block, so bigger is better until the rows fall out of L2).
constexpr std::size_t kFcMaxRowBlock = 64;

}  // namespace

FullyConnected::FullyConnected(const PackedWeightsView& weights,
                               const FullyConnectedOptions& options)
    : plan_(std::make_unique<detail::GemmPlan>(weights, options, /*per_tensor_fc_rule=*/true)) {}

FullyConnected::FullyConnected(PackedWeights&& weights, const FullyConnectedOptions& options)
    : owned_(std::make_unique<PackedWeights>(std::move(weights))) {
  plan_ = std::make_unique<detail::GemmPlan>(owned_->view(), options, true);
}

FullyConnected::~FullyConnected() = default;
FullyConnected::FullyConnected(FullyConnected&&) noexcept = default;
FullyConnected& FullyConnected::operator=(FullyConnected&&) noexcept = default;

void FullyConnected::reserve(int32_t max_m, int /*max_threads*/) {
  detail::GemmPlan& p = *plan_;
  if (max_m <= 0 || static_cast<std::size_t>(max_m) <= p.workspace_rows) return;
  p.workspace.resize(static_cast<std::size_t>(max_m) * p.row_stride);
  p.workspace_sums.resize(static_cast<std::size_t>(max_m) * p.sums_per_row);
  p.workspace_rows = static_cast<std::size_t>(max_m);
}

namespace {

void run_fc(detail::GemmPlan& p, const int8_t* input, int32_t m, void* output, OutputType type,
            ThreadPool* pool) {
  if (type != p.output_type) {
    throw std::invalid_argument("FullyConnected::run: the output buffer type does not match the "
                                "plan's output type");
  }
  if (m < 0) throw std::invalid_argument("FullyConnected::run: negative batch");
  if (m == 0) return;
  if (input == nullptr || output == nullptr) {
    throw std::invalid_argument("FullyConnected::run: null input or output");
  }
  const std::size_t rows = static_cast<std::size_t>(m);
  if (rows > p.workspace_rows) {
    p.workspace.resize(rows * p.row_stride);
    p.workspace_sums.resize(rows * p.sums_per_row);
    p.workspace_rows = rows;
  }
  for (std::size_t r = 0; r < rows; ++r) {
    p.prepare_row(input + r * static_cast<std::size_t>(p.k), p.workspace.data() + r * p.row_stride,
                  p.workspace_sums.data() + r * p.sums_per_row);
  }
  const int threads = pool != nullptr ? pool->num_threads() : 1;
  const std::size_t elem = type == OutputType::kInt8 ? 1 : 4;
  if (rows != p.split_rows || threads != p.split_threads) {
    p.split = detail::split_work(rows, p.ntiles, p.gemm->gemm.mr, threads, kFcMaxRowBlock,
                                 static_cast<std::size_t>(p.n) * elem, kTileN * elem);
    p.split_rows = rows;
    p.split_threads = threads;
  }
  const detail::WorkSplit split = p.split;
  auto task = [&](std::size_t t, int) {
    const std::size_t rb = split.row_block_of(t), tc = split.tile_chunk_of(t);
    const std::size_t r0 = rb * split.row_block;
    const std::size_t r1 = std::min(rows, r0 + split.row_block);
    const std::size_t t0 = tc * split.tile_chunk;
    const std::size_t t1 = std::min(p.ntiles, t0 + split.tile_chunk);
    p.compute(p.workspace.data() + r0 * p.row_stride, p.workspace_sums.data() + r0 * p.sums_per_row,
              r1 - r0, t0, t1,
              static_cast<uint8_t*>(output) + r0 * static_cast<std::size_t>(p.n) * elem,
              static_cast<std::size_t>(p.n));
  };
  if (pool != nullptr && split.tasks() > 1) {
    pool->parallel_for(split.tasks(), task);
  } else {
    for (std::size_t t = 0; t < split.tasks(); ++t) task(t, 0);
  }
}

}  // namespace

void FullyConnected::run(const int8_t* input, int32_t m, int8_t* output, ThreadPool* pool) {
  run_fc(*plan_, input, m, output, OutputType::kInt8, pool);
}
void FullyConnected::run(const int8_t* input, int32_t m, float* output, ThreadPool* pool) {
  run_fc(*plan_, input, m, output, OutputType::kFloat32, pool);
}
void FullyConnected::run(const int8_t* input, int32_t m, int32_t* output, ThreadPool* pool) {
  run_fc(*plan_, input, m, output, OutputType::kInt32, pool);
}

int32_t FullyConnected::n() const { return plan_->n; }
int32_t FullyConnected::k() const { return plan_->k; }
WeightType FullyConnected::weight_type() const { return plan_->type; }
OutputType FullyConnected::output_type() const { return plan_->output_type; }
Isa FullyConnected::isa() const { return plan_->isa; }
const char* FullyConnected::kernel_name(int32_t m) const {
  return plan_->kernel_name(static_cast<std::size_t>(m));
}

std::size_t FullyConnected::prepared_bytes() const {
  return detail::packed_weights_bytes(owned_.get()) + plan_->prepared_bytes();
}

}  // namespace edge
