// Fully connected / GEMM with int8 activations and packed int8, int4, ternary or 2-bit weights.
//
//   output[m][n] = epilogue( sum_k (input[m][k] - input_zp) * (code[n][k] - weight_zp[n]) + bias[n] )
//
// A `FullyConnected` is a plan: built once from packed weights (packing/*.h), quantisation
// parameters, an optional bias and fused activation, and an ISA choice (isa.h); then `run()` any
// number of times with no allocation (after reserve()). The epilogue is TFLite's per-channel
// requantisation (requant.h) to int8, or a dequantisation to float, or the raw int32 sum.
// The int8 results are bit-identical on every ISA and equal LiteRT's FULLY_CONNECTED (see
// requant.h for the two rounding rules LiteRT has).
//
// Per-group scales (weights with group_size > 0): the sum is formed per group of K and each group
// is scaled in float: real = input_scale * scale[n] * (bias[n] + sum_g group_scale[n][g] * acc_g),
// then kFloat32 writes it and kInt8 writes clamp(round_half_away(real / output_scale) + zp).
// The float arithmetic is done in one fixed order (no FMA contraction), identical on every ISA.
//
// Threads: run() splits the output over the pool's threads (rows x 16-channel tiles); results do
// not depend on the thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "edge/kernels/isa.h"
#include "edge/kernels/quant.h"
#include "edge/kernels/requant.h"
#include "edge/packing/packed_weights.h"
#include "edge/thread_pool.h"

namespace edge {

// Options every layer plan shares (FullyConnected, Conv2D, DepthwiseConv2D).
struct LayerOptions {
  TensorQuant input;                    // per-tensor input quantisation
  TensorQuant output;                   // per-tensor output quantisation (used for kInt8 output)
  Activation activation = Activation::kNone;
  std::optional<ClampRange> clamp;      // overrides the clamp derived from `activation`
  const int32_t* bias = nullptr;        // [n] int32, units input_scale * scale[n] (TFLite); copied
  OutputType output_type = OutputType::kInt8;
  Rounding rounding = Rounding::kUpward;
  // Requantisation multipliers [n] (or [1] when the weights are per-tensor) the caller already
  // has, e.g. from a model file. Null: computed from the scales exactly as TFLite does (per
  // tensor FC: fc_per_tensor_effective_scale, otherwise conv_effective_scale). Copied.
  const QuantizedMultiplier* multipliers = nullptr;
  std::optional<Isa> isa;               // see isa.h; default: EDGE_KERNEL_ISA or the best
};

using FullyConnectedOptions = LayerOptions;

namespace detail {
struct GemmPlan;  // the shared GEMM machinery (kernels/gemm_plan.h in src/)
}

class FullyConnected {
 public:
  // `weights.data` must outlive the plan (it is not copied); everything else is copied.
  // Throws std::invalid_argument for inconsistent weights or options, IsaUnavailableError for an
  // unavailable ISA.
  FullyConnected(const PackedWeightsView& weights, const FullyConnectedOptions& options);
  // Takes ownership of the packed weights.
  FullyConnected(PackedWeights&& weights, const FullyConnectedOptions& options);
  ~FullyConnected();
  FullyConnected(FullyConnected&&) noexcept;
  FullyConnected& operator=(FullyConnected&&) noexcept;

  // Allocates workspace for batches of up to `max_m` rows on pools of up to `max_threads`
  // threads, so that run() with such sizes never allocates. run() grows it on demand otherwise.
  void reserve(int32_t max_m, int max_threads = 1);

  // input: [m][k] int8 row-major. output: [m][n] row-major, of the type chosen in the options
  // (the overload must match it, else std::invalid_argument). pool: nullptr runs on the caller.
  void run(const int8_t* input, int32_t m, int8_t* output, ThreadPool* pool = nullptr);
  void run(const int8_t* input, int32_t m, float* output, ThreadPool* pool = nullptr);
  void run(const int8_t* input, int32_t m, int32_t* output, ThreadPool* pool = nullptr);

  int32_t n() const;
  int32_t k() const;
  WeightType weight_type() const;
  OutputType output_type() const;
  Isa isa() const;
  // The micro-kernel a run with `m` rows uses, e.g. "qs8_qc2w_gemm_1x16c4__avx512vnni".
  const char* kernel_name(int32_t m = 1) const;
  // The bytes the plan keeps from its weights: the packed weights it owns (not a view's: their
  // owner counts those) and its per-channel tables (bias terms, requantisation, scales, the
  // fused kernel's per-tile tables, per-group scales). Not the workspace reserve() grows. The
  // runtime reports it as the operator's prepared weights.
  std::size_t prepared_bytes() const;

 private:
  std::unique_ptr<detail::GemmPlan> plan_;
  std::unique_ptr<PackedWeights> owned_;
};

}  // namespace edge
