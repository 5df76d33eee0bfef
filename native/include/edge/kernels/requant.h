// Requantisation of int32 accumulators to int8, exactly as TensorFlow Lite / LiteRT does it.
//
// TFLite represents a real multiplier M = input_scale * weight_scale / output_scale as a Q31
// fixed-point significand m in [2^30, 2^31) and a power-of-two exponent e, M = m * 2^(e - 31).
// Stock LiteRT then has three ways to compute round(x * M), and which one you get depends on
// which kernels run. Measured with ai-edge-litert 2.3.0 (tests/test_kernels_litert.py checks
// each against LiteRT on ~10^5 outputs chosen to contain exact ties):
//
//   Rounding::kUpward       ("double rounding, ties up")
//       y = RoundingRightShift(SaturatingRoundingDoublingHighMul(x * 2^max(e,0), m), max(-e,0))
//       with the right shift rounding ties towards +infinity. LiteRT's optimised builtin kernels
//       (the interpreter without XNNPACK) for FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D;
//       also Arm's SQRDMULH + SRSHL and XNNPACK's "rndnu". Our default.
//   Rounding::kAwayFromZero ("double rounding, ties away")
//       the same, with gemmlowp's RoundingDivideByPOT (ties away from zero): TFLite's reference
//       kernels (OpResolverType.BUILTIN_REF) for CONV_2D and DEPTHWISE_CONV_2D.
//   Rounding::kSingle       ("single rounding")
//       y = (x * m + 2^(30 - e)) >> (31 - e) in 64 bits, saturated to int32: TFLite's reference
//       FULLY_CONNECTED, and every kernel of a TFLITE_SINGLE_ROUNDING build.
//
// The double-rounding rules first round x * m / 2^31 (ties towards +infinity) and then round
// again, so they differ from single rounding when x * M lies within 2^-31 * |x| of a tie; the
// two double rules differ only on negative exact ties. Each affects a few outputs per 10^4.
//
// Every ISA's epilogue reproduces these functions bit for bit; the inline functions here are the
// reference the SIMD epilogues are tested against.
#pragma once

#include <cstdint>
#include <limits>

namespace edge {

// Which of LiteRT's requantisation rules to follow (see above).
enum class Rounding {
  kUpward,        // double rounding, ties up: LiteRT's optimised builtin kernels (default)
  kAwayFromZero,  // double rounding, ties away: TFLite reference CONV_2D / DEPTHWISE_CONV_2D
  kSingle,        // single rounding: TFLite reference FULLY_CONNECTED, TFLITE_SINGLE_ROUNDING
};

// The significand/exponent pair of one real multiplier (TFLite's QuantizeMultiplier).
struct QuantizedMultiplier {
  int32_t multiplier = 0;  // Q31 significand in [2^30, 2^31), or 0 for a zero multiplier
  int32_t shift = 0;       // power-of-two exponent: > 0 shifts left, < 0 right; in [-31, 30]
};

// Same result as TFLite's QuantizeMultiplier(double, int32_t*, int*): frexp, round half away
// from zero to 31 bits, renormalise 2^31, flush exponents below -31 to zero. Exponents above 30
// are saturated (multiplier 2^31 - 1, shift 30): TFLite rejects such multipliers at prepare time.
// Throws std::invalid_argument for a negative or non-finite multiplier.
QuantizedMultiplier quantize_multiplier(double real_multiplier);

// TFLite's effective scale for conv, depthwise conv and per-channel fully connected:
// double(input_scale) * double(weight_scale) / double(output_scale).
double conv_effective_scale(float input_scale, float weight_scale, float output_scale);
// TFLite's effective scale for per-tensor fully connected (GetQuantizedConvolutionMultipler):
// the input*weight product is formed in float, then divided in double.
double fc_per_tensor_effective_scale(float input_scale, float weight_scale, float output_scale);

// floor((a * b + 2^30) / 2^31), saturating the single overflow case a == b == INT32_MIN.
// (gemmlowp writes this with a sign-dependent nudge and a truncating division; both forms agree:
// ties go towards +infinity. Arm's SQRDMULH computes exactly this.)
inline int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  if (a == b && a == std::numeric_limits<int32_t>::min()) {
    return std::numeric_limits<int32_t>::max();
  }
  const int64_t ab = static_cast<int64_t>(a) * static_cast<int64_t>(b);
  // Arithmetic right shift of a negative int64 is floor division (defined since C++20 and what
  // every compiler we use does).
  return static_cast<int32_t>((ab + (int64_t{1} << 30)) >> 31);
}

// x / 2^exponent rounded to nearest, exponent in [0, 31]; ties as `rounding` says.
// Written with a remainder and a threshold so that nothing overflows for any int32 x.
inline int32_t rounding_right_shift(int32_t x, int exponent, Rounding rounding) {
  const int32_t mask = static_cast<int32_t>((uint64_t{1} << exponent) - 1u);
  const int32_t remainder = x & mask;
  const int32_t threshold =
      (mask >> 1) + (rounding == Rounding::kAwayFromZero && x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

// TFLite's single-rounding MultiplyByQuantizedMultiplier: round(x * m / 2^(31 - shift)) with
// ties up, in 64 bits, saturated to int32 (TFLite only asserts that it fits).
inline int32_t single_rounding_multiply(int32_t x, int32_t multiplier, int32_t shift) {
  const int total = 31 - shift;  // in [1, 62]
  const int64_t product = static_cast<int64_t>(x) * multiplier;
  const int64_t v = (product + (int64_t{1} << (total - 1))) >> total;
  if (v > std::numeric_limits<int32_t>::max()) return std::numeric_limits<int32_t>::max();
  if (v < std::numeric_limits<int32_t>::min()) return std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(v);
}

// TFLite's MultiplyByQuantizedMultiplier under `rounding`. The left shift of the double-rounding
// rules wraps like TFLite's int32 multiply does in practice (done in uint32 here so that it is
// defined behaviour).
inline int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift,
                                                Rounding rounding = Rounding::kUpward) {
  if (rounding == Rounding::kSingle) return single_rounding_multiply(x, multiplier, shift);
  const int left = shift > 0 ? shift : 0;
  const int right = shift > 0 ? 0 : -shift;
  const int32_t shifted = static_cast<int32_t>(static_cast<uint32_t>(x) << left);
  return rounding_right_shift(saturating_rounding_doubling_high_mul(shifted, multiplier), right,
                              rounding);
}

// One requantised int8 output: clamp(MultiplyByQuantizedMultiplier(acc) + zero_point).
inline int8_t requantize_one(int32_t acc, int32_t multiplier, int32_t shift, int32_t out_zero_point,
                             int32_t out_min, int32_t out_max,
                             Rounding rounding = Rounding::kUpward) {
  // In 64 bits: a scaled value near INT32_MAX plus a positive zero point overflows int32.
  int64_t v = int64_t{multiply_by_quantized_multiplier(acc, multiplier, shift, rounding)} +
              out_zero_point;
  v = v < out_min ? out_min : v;
  v = v > out_max ? out_max : v;
  return static_cast<int8_t>(v);
}

}  // namespace edge
