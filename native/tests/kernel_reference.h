// Test helpers for the kernel tests: a deterministic random generator and naive reference
// implementations written from the TFLite definitions, independent of the packed layout.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "edge/kernels/conv2d.h"
#include "edge/kernels/depthwise_conv2d.h"
#include "edge/kernels/fully_connected.h"
#include "edge/kernels/isa.h"
#include "edge/kernels/requant.h"
#include "edge/packing/packed_weights.h"

namespace edge_test {

// splitmix64: the same sequence on every platform (std::uniform_int_distribution is not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform integer in [lo, hi].
  int32_t uniform(int32_t lo, int32_t hi) {
    return lo + static_cast<int32_t>(next() % static_cast<uint64_t>(hi - lo + 1));
  }
  float uniform_float(float lo, float hi) {
    return lo + (hi - lo) * static_cast<float>(next() >> 40) / static_cast<float>(1 << 24);
  }
  std::vector<int8_t> int8s(std::size_t count, int32_t lo, int32_t hi) {
    std::vector<int8_t> v(count);
    for (auto& x : v) x = static_cast<int8_t>(uniform(lo, hi));
    return v;
  }

 private:
  uint64_t state_;
};

// Value patterns for extreme-value tests.
enum class Fill { kRandom, kMin, kMax, kZero, kAlternate };
std::vector<int8_t> fill_values(Rng& rng, std::size_t count, int32_t lo, int32_t hi, Fill fill);

// Every ISA the running CPU supports, scalar first.
std::vector<edge::Isa> test_isas();
std::string isa_list(const std::vector<edge::Isa>& isas);

// A quantised FC problem in TFLite terms (values q, zero points in the q domain).
struct FcProblem {
  edge::WeightType type = edge::WeightType::kInt8;
  int32_t m = 1, n = 1, k = 1;
  std::vector<int8_t> x;        // [m][k]
  std::vector<int8_t> w;        // [n][k] q values
  std::vector<int32_t> wzp;     // [n] q domain
  std::vector<float> scales;    // [n] (or [1])
  std::vector<int32_t> bias;    // [n]
  int32_t group_size = 0;
  std::vector<float> group_scales;
  edge::LayerOptions options;
};
FcProblem random_fc(Rng& rng, edge::WeightType type, int32_t m, int32_t n, int32_t k,
                    Fill x_fill = Fill::kRandom, Fill w_fill = Fill::kRandom);

// sum_k (x - xz)(w - wz) + bias, exactly, in int64 (then wrapped to int32 as the kernels do).
std::vector<int32_t> reference_fc_acc(const FcProblem& p);
// The int8 output TFLite computes from those accumulators.
std::vector<int8_t> reference_requant(const std::vector<int32_t>& acc, int32_t n,
                                      const std::vector<float>& scales,
                                      const edge::LayerOptions& options, bool per_tensor_fc_rule);

// Direct conv / depthwise accumulators (padding = skipped taps, as TFLite's reference kernel).
std::vector<int32_t> reference_conv_acc(const edge::ConvGeometry& g, int32_t out_channels,
                                        const std::vector<int8_t>& input,
                                        const std::vector<int8_t>& filter_ohwi,
                                        const std::vector<int32_t>& wzp, int32_t input_zp,
                                        const std::vector<int32_t>& bias);
std::vector<int32_t> reference_depthwise_acc(const edge::ConvGeometry& g, int32_t multiplier,
                                             const std::vector<int8_t>& input,
                                             const std::vector<int8_t>& filter_hwc,
                                             const std::vector<int32_t>& wzp, int32_t input_zp,
                                             const std::vector<int32_t>& bias);

// First index where a and b differ, or -1.
template <typename T>
long first_mismatch(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!(a[i] == b[i])) return static_cast<long>(i);
  }
  return -1;
}

}  // namespace edge_test
