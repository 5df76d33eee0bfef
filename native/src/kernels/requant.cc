#include "edge/kernels/requant.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <stdexcept>
#include <string>

#include "edge/kernels/quant.h"

namespace edge {

QuantizedMultiplier quantize_multiplier(double real_multiplier) {
  if (!(real_multiplier >= 0.0) || !std::isfinite(real_multiplier)) {
    throw std::invalid_argument("requantisation multiplier must be finite and >= 0, got " +
                                std::to_string(real_multiplier));
  }
  if (real_multiplier == 0.0) return {0, 0};
  int shift = 0;
  const double q = std::frexp(real_multiplier, &shift);  // q in [0.5, 1)
  int64_t q_fixed = static_cast<int64_t>(std::round(q * static_cast<double>(int64_t{1} << 31)));
  if (q_fixed == (int64_t{1} << 31)) {
    q_fixed /= 2;
    ++shift;
  }
  if (shift < -31) return {0, 0};  // every bit would be shifted out
  if (shift > 30) return {static_cast<int32_t>((int64_t{1} << 31) - 1), 30};
  return {static_cast<int32_t>(q_fixed), shift};
}

double conv_effective_scale(float input_scale, float weight_scale, float output_scale) {
  return static_cast<double>(input_scale) * static_cast<double>(weight_scale) /
         static_cast<double>(output_scale);
}

double fc_per_tensor_effective_scale(float input_scale, float weight_scale, float output_scale) {
  const double product = static_cast<double>(input_scale * weight_scale);
  return product / static_cast<double>(output_scale);
}

ClampRange activation_range(Activation activation, const TensorQuant& output) {
  // zero_point + round(f / scale), clamped in float first: a tiny output scale (6 / 1e-12)
  // would overflow the conversion to int (found by fuzz_edge_model).
  const auto quantize = [&](float f) {
    float q = std::round(f / output.scale);
    q = std::min(std::max(q, -1e9f), 1e9f);
    const int64_t v = int64_t{output.zero_point} + static_cast<int64_t>(q);
    return static_cast<int32_t>(std::min<int64_t>(std::max<int64_t>(v, -(int64_t{1} << 31)),
                                                  (int64_t{1} << 31) - 1));
  };
  ClampRange r;
  switch (activation) {
    case Activation::kNone:
      break;
    case Activation::kRelu:
      r.min = std::max(r.min, quantize(0.0f));
      break;
    case Activation::kRelu6:
      r.min = std::max(r.min, quantize(0.0f));
      r.max = std::min(r.max, quantize(6.0f));
      break;
    case Activation::kReluN1To1:
      r.min = std::max(r.min, quantize(-1.0f));
      r.max = std::min(r.max, quantize(1.0f));
      break;
  }
  return r;
}

const char* activation_name(Activation activation) {
  switch (activation) {
    case Activation::kNone: return "none";
    case Activation::kRelu: return "relu";
    case Activation::kReluN1To1: return "relu_n1_to_1";
    case Activation::kRelu6: return "relu6";
  }
  return "unknown";
}

Activation parse_activation(const char* name) {
  std::string s = name == nullptr ? "" : name;
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (s == "none" || s.empty()) return Activation::kNone;
  if (s == "relu") return Activation::kRelu;
  if (s == "relu6") return Activation::kRelu6;
  if (s == "relu_n1_to_1" || s == "relun1to1") return Activation::kReluN1To1;
  throw std::invalid_argument("unknown fused activation '" + std::string(name ? name : "") +
                              "': expected none, relu, relu6 or relu_n1_to_1");
}

}  // namespace edge
