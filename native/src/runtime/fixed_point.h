// Fixed-point helpers of TFLite's integer arithmetic that the runtime's own (non-GEMM)
// operators need: gemmlowp-style rounding multiplies on int32 and int16, and the conversions of
// real multipliers to (significand, exponent) pairs.
//
// All of them follow TFLite's definitions bit for bit (the int8 ops are tested against LiteRT's
// builtin kernels). Shifts of negative values are done on unsigned types or by multiplication,
// so that the code is free of undefined behaviour under UBSan.
//
// TODO(kernels API): the int32 multiplier functions also exist in the kernel library's
// edge/kernels/requant.h (issue 3); once that header is on main, these forward to it and only
// the int16 / "smaller than one" variants stay here.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace edge {
namespace runtime {
namespace fp {

struct Multiplier {
  int32_t multiplier = 0;  // Q31 significand in [2^30, 2^31), or 0
  int shift = 0;           // exponent: > 0 left, < 0 right
};

// TFLite's QuantizeMultiplier: frexp, round the significand half away from zero to 31 bits,
// renormalise 2^31, flush exponents below -31 to zero, saturate exponents above 30.
inline Multiplier quantize_multiplier(double real) {
  Multiplier m;
  if (real == 0.0 || !std::isfinite(real)) return m;
  int shift = 0;
  const double q = std::frexp(real, &shift);
  auto q_fixed = static_cast<int64_t>(std::round(q * static_cast<double>(int64_t{1} << 31)));
  if (q_fixed == (int64_t{1} << 31)) {
    q_fixed /= 2;
    ++shift;
  }
  if (shift < -31) {
    shift = 0;
    q_fixed = 0;
  }
  if (shift > 30) {
    shift = 30;
    q_fixed = (int64_t{1} << 31) - 1;
  }
  m.multiplier = static_cast<int32_t>(q_fixed);
  m.shift = shift;
  return m;
}

// TFLite's QuantizeMultiplierSmallerThanOneExp: for 0 < real < 1; the exponent is <= 0.
inline Multiplier quantize_multiplier_smaller_than_one(double real) {
  return quantize_multiplier(real);
}

inline int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  if (a == b && a == std::numeric_limits<int32_t>::min()) {
    return std::numeric_limits<int32_t>::max();
  }
  const int64_t ab = static_cast<int64_t>(a) * static_cast<int64_t>(b);
  const int64_t nudge = ab >= 0 ? (int64_t{1} << 30) : (int64_t{1} - (int64_t{1} << 30));
  return static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));
}

// x / 2^exponent rounded to nearest, ties away from zero (gemmlowp's RoundingDivideByPOT).
inline int32_t rounding_divide_by_pot(int32_t x, int exponent) {
  const int32_t mask = static_cast<int32_t>((uint32_t{1} << exponent) - 1u);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

// TFLite's MultiplyByQuantizedMultiplier (double rounding; the left shift wraps as TFLite's
// int32 multiply does, done on uint32 to stay defined).
inline int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift) {
  const int left = shift > 0 ? shift : 0;
  const int right = shift > 0 ? 0 : -shift;
  const auto shifted = static_cast<int32_t>(static_cast<uint32_t>(x) << left);
  return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right);
}

// TFLite's MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0).
inline int32_t multiply_by_quantized_multiplier_smaller_than_one(int32_t x, int32_t multiplier,
                                                                 int shift) {
  return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), -shift);
}

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
