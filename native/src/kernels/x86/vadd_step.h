// The x86 ADD kernels' input step in 32-bit lanes, written once for every vector width: each
// input's x = SQRDMULH(v << s, m) with v = a + offset depends on its own byte alone, and for
// LiteRT's shifts (20 + the input's shift, usually 15-20) it has an exact form in 32-bit lanes:
// with m = mh * 2^16 + ml and 15 <= s <= 22,
//   floor((v * 2^s * m + 2^30) / 2^31) = v * (mh << (s - 15)) + ((v * ml + 2^(30 - s)) >> (31 - s))
// (the first term is a whole multiple of 2^31 divided out; the second is the rest of the
// numerator divided by 2^s above and below). |v| <= 256 (offsets -128..128) keeps every term
// inside int32 (|v| (mh << 7) < 2^30 at s = 22), and v << s does not wrap. Two vpmulld and three adds / shifts per input where the 64-bit SQRDMULH takes two
// vpmuldq, six shifts / adds and a blend (plus the two shifts of the SHL). Other shifts or offsets
// keep the 64-bit form; the output's SQRDMULH (sums up to 2^31) stays 64-bit.
// Used by elementwise_avx2.cc (ymm) and elementwise_avx512.cc (zmm). The lanes are GCC / Clang
// vector types of int32 (I32x8, I32x16): +, * and >> by a scalar are vpaddd, vpmulld and vpsrad
// at the includer's width, the scalar constants broadcast.
// Linkage: internal, as requant8_ymm.h (the includers are compiled with different -m flags).
#pragma once

#include <cstdint>
#include <type_traits>

#include "edge/kernels/elementwise.h"

namespace edge {
namespace detail {
namespace {

namespace vadd_step {

using I32x8 = int32_t __attribute__((vector_size(32)));
using I32x16 = int32_t __attribute__((vector_size(64)));

constexpr int32_t kMinShift = 15, kMaxShift = 22;

inline bool applies(int32_t offset, int32_t shift) {
  return offset >= -128 && offset <= 128 && shift >= kMinShift && shift <= kMaxShift;
}

// One input's constants.
struct Input {
  int32_t offset, mult_hi, mult_lo, round, right;  // right: 31 - s
};

inline Input input(int32_t offset, int32_t multiplier, int32_t shift) {
  return {offset, (multiplier >> 16) << (shift - kMinShift), multiplier & 0xFFFF,
          int32_t{1} << (30 - shift), 31 - shift};
}

struct Steps {
  Input a, b;
};

// The ADD kernels' entry, one for both widths: body(std::true_type{}, steps) with both inputs'
// 32-bit steps where both apply, else body(std::false_type{}, Steps{}) (LiteRT's 64-bit form);
// the body names its own width's loop, templated on the flag's value.
template <class Body>
inline void dispatch(const QS8AddParams& p, const Body& body) {
  if (applies(p.a_offset, p.a_shift) && applies(p.b_offset, p.b_shift)) {
    body(std::true_type{}, Steps{input(p.a_offset, p.a_multiplier, p.a_shift),
                                 input(p.b_offset, p.b_multiplier, p.b_shift)});
  } else {
    body(std::false_type{}, Steps{});
  }
}

// x for the int32 lanes a (V: I32x8 or I32x16).
template <class V>
[[gnu::always_inline]] inline V step(V a, const Input& t) {
  const V v = a + t.offset;
  return v * t.mult_hi + ((v * t.mult_lo + t.round) >> t.right);
}

}  // namespace vadd_step

}  // namespace
}  // namespace detail
}  // namespace edge
