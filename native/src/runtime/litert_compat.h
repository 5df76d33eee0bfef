// What LiteRT's x86 builds compute, where that is not what its scalar reference code says.
//
// LiteRT's optimized int8 kernels are written with NEON intrinsics; on x86 they are compiled
// through an SSE translation of those intrinsics, so the x86 wheel runs the "NEON" loops too.
// Those loops process 8 or 16 elements at a time and finish the remainder with the scalar code,
// and in a few places the vector arithmetic rounds differently from the scalar arithmetic
// (a combined shift that truncates where the scalar code rounds twice, a rounding right shift
// that rounds ties up where the scalar code rounds them away from zero, 16-bit narrowing with
// wrap-around, float multiply-add in two roundings). The differences are rare - they need a
// value on a rounding boundary - but they are real, and our promise is bit-exact results.
//
// So the runtime reproduces the same element-block structure and, per element, the arithmetic
// of whichever loop LiteRT runs for it. The functions here are the per-lane semantics of the
// few vector instructions involved, written in portable C++ (the runtime computes the same
// values on x86, Arm64 and Armv7).
#pragma once

#include <cstdint>
#include <limits>

#include "edge/kernels/requant.h"

namespace edge {
namespace runtime {
namespace lanes {

// VSHL.S32 by a signed count: left shifts wrap, right shifts (negative counts) are arithmetic
// and truncate; counts past the width give 0 (left) or the sign (right).
inline int32_t shl(int32_t x, int count) {
  if (count >= 32) return 0;
  if (count >= 0) return static_cast<int32_t>(static_cast<uint32_t>(x) << count);
  if (count <= -32) return x < 0 ? -1 : 0;
  return x >> -count;
}

// VRSHL.S32 by a count <= 0: rounding right shift, ties towards +infinity, computed without
// intermediate overflow.
inline int32_t rshl(int32_t x, int count) {
  if (count >= 0) return shl(x, count);
  const int n = -count;
  if (n > 32) return 0;
  return static_cast<int32_t>((static_cast<int64_t>(x) + (int64_t{1} << (n - 1))) >> n);
}

// VQRDMULH.S32: gemmlowp's SaturatingRoundingDoublingHighMul is defined to equal it.
inline int32_t qrdmulh(int32_t a, int32_t b) { return saturating_rounding_doubling_high_mul(a, b); }

inline int16_t sat16(int32_t x) {
  return static_cast<int16_t>(x < -32768 ? -32768 : x > 32767 ? 32767 : x);
}
inline int16_t wrap16(int32_t x) { return static_cast<int16_t>(static_cast<uint16_t>(x)); }
inline int8_t sat8(int32_t x) { return static_cast<int8_t>(x < -128 ? -128 : x > 127 ? 127 : x); }

// gemmlowp's RoundingDivideByPOT on a vector (ties away from zero), as the scalar one.
inline int32_t rdbp(int32_t x, int exponent) {
  return rounding_right_shift(x, exponent, Rounding::kAwayFromZero);
}

}  // namespace lanes

// TFLite's ProcessBroadcastShapes: how an element-wise binary op walks its inputs.
enum class BroadcastCategory { kNonBroadcast, kFirstFast, kSecondFast, kGeneric };
struct FiveFold {
  BroadcastCategory category = BroadcastCategory::kNonBroadcast;
  int64_t y[5] = {1, 1, 1, 1, 1};
};

}  // namespace runtime
}  // namespace edge
