// Fixed-point helpers of TFLite's integer arithmetic that only the runtime's own (non-GEMM)
// operators need: gemmlowp-style rounding multiplies on int16 (HARD_SWISH) and the Q31 -> Q15
// multiplier conversion.
//
// The int32 side (QuantizeMultiplier, SaturatingRoundingDoublingHighMul, RoundingDivideByPOT,
// MultiplyByQuantizedMultiplier under each of LiteRT's rounding rules) is the kernel library's
// edge/kernels/requant.h, included here so that the runtime and the kernels share one
// definition. TFLite's scalar element-wise code rounds ties away from zero, so the runtime's
// operators call those functions with Rounding::kAwayFromZero.
//
// All of them follow TFLite's definitions bit for bit (the int8 ops are tested against LiteRT's
// builtin kernels). Shifts of negative values are done on unsigned types or by multiplication,
// so that the code is free of undefined behaviour under UBSan.
#pragma once

#include <cstdint>
#include <limits>

#include "edge/kernels/requant.h"

namespace edge {
namespace runtime {
namespace fp {

// ---- int16 variants (gemmlowp on int16, used by HARD_SWISH)
inline int16_t saturating_rounding_doubling_high_mul16(int16_t a, int16_t b) {
  if (a == b && a == std::numeric_limits<int16_t>::min()) {
    return std::numeric_limits<int16_t>::max();
  }
  const int32_t ab = static_cast<int32_t>(a) * static_cast<int32_t>(b);
  const int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
  return static_cast<int16_t>((ab + nudge) / (1 << 15));
}

// Like SQDMULH: the doubling high half, rounded towards zero.
inline int16_t saturating_doubling_high_mul16(int16_t a, int16_t b) {
  if (a == b && a == std::numeric_limits<int16_t>::min()) {
    return std::numeric_limits<int16_t>::max();
  }
  const int32_t ab = static_cast<int32_t>(a) * static_cast<int32_t>(b);
  return static_cast<int16_t>(ab / (1 << 15));
}

inline int16_t rounding_divide_by_pot16(int16_t x, int exponent) {
  const int16_t mask = static_cast<int16_t>((1 << exponent) - 1);
  const int16_t remainder = static_cast<int16_t>(x & mask);
  const int16_t threshold = static_cast<int16_t>((mask >> 1) + (x < 0 ? 1 : 0));
  return static_cast<int16_t>((x >> exponent) + (remainder > threshold ? 1 : 0));
}

inline int16_t saturating_left_shift16(int16_t value, int amount) {
  const int64_t result = static_cast<int64_t>(value) * (int64_t{1} << amount);
  if (result > std::numeric_limits<int16_t>::max()) return std::numeric_limits<int16_t>::max();
  if (result < std::numeric_limits<int16_t>::min()) return std::numeric_limits<int16_t>::min();
  return static_cast<int16_t>(result);
}

// TFLite's DownScaleInt32ToInt16Multiplier: round a Q31 multiplier to Q15.
inline int16_t downscale_multiplier_to_int16(int32_t m) {
  constexpr int32_t kRounding = 1 << 15;
  if (m >= std::numeric_limits<int32_t>::max() - kRounding) {
    return std::numeric_limits<int16_t>::max();
  }
  return static_cast<int16_t>((m + kRounding) >> 16);
}

}  // namespace fp
}  // namespace runtime
}  // namespace edge
