// The fused kernels' requantisation on 8 int32 lanes of a ymm register: the 64-bit
// multiply-add-shift form of EpilogueParams (gemm_plan.cc) in AVX2 instructions. One definition
// for the AVX2 kernels (avx2.cc: fused GEMM, indirect conv, depthwise) and the ymm VNNI ones
// (vnni_ymm.h: avxvnni.cc, and the test binary's EVEX twin native/tests/avxvnni_evex_twin.cc).
//
// Linkage: the includers are compiled with different -m flags (avx2.cc -mavx2 -mfma, avxvnni.cc
// -mavxvnni, the twin -mavx512vl -mavx512vnni, where the compiler may encode these intrinsics as
// EVEX). Everything here therefore has internal linkage (an anonymous namespace): each object
// keeps its own copy, compiled with its own flags. An inline function with external linkage may
// be emitted out of line in several objects and merged by the linker (ODR), which would let the
// avxvnni table call a copy built for AVX-512 on a CPU without it. The avxvnni object stays
// VEX-only (docs/kernels.md, the objdump check).
//
// AVX2 has no 64-bit arithmetic shift: with s' = s + 2^63 (wrapping; the 2^63 is folded into the
// rounding constant once per call),
//   floor(s / 2^t) = (s' >> t, logical) - 2^(63 - t)      exactly, for 0 <= t <= 63,
// vpmuldq forms s on the even lanes and on the odd lanes shifted down, and only the low dword of
// each result is kept (it is the int32 result: the fused paths never saturate, see
// GemmPlan::build_qs8 and depthwise_conv2d.cc). The low dword of a difference is the difference
// of the low dwords (mod 2^32), so the unbias 2^(63 - t) is subtracted as one int32 vector
// (Requant8::unbias), and a caller may fold its output zero point into that vector.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace edge {
namespace detail {
namespace {

// Lanes 0,2,4,6 from `even` (low dwords of its qwords) and 1,3,5,7 from `odd` (high dwords).
inline __m256i interleave_dwords(__m256i even, __m256i odd) {
  return _mm256_blend_epi32(even, odd, 0xAA);
}

// 8 int32 lanes from p (unaligned): the per-channel tables of every ymm kernel.
inline __m256i load_i32(const int32_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// Per-call constants of 8 channels (half h of a 16-lane table: lanes 8h .. 8h + 7; the table is
// a RequantEvenOdd or a DwRequantBlock, ukernels.h).
struct Requant8 {
  __m256i mult_e, mult_o, add_e, add_o, neg_e, neg_o, shift_e, shift_o;
  __m256i unbias;  // int32 lanes: the low dword of 2^(63 - t)
};

template <typename Table>
inline Requant8 load_requant8(const Table& t, int h) {
  auto ld = [](const int64_t* a) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a)); };
  const __m256i sign = _mm256_set1_epi64x(INT64_MIN);
  Requant8 r;
  r.mult_e = ld(t.multiplier[0] + 4 * h);
  r.mult_o = ld(t.multiplier[1] + 4 * h);
  r.add_e = _mm256_xor_si256(ld(t.rounding_add[0] + 4 * h), sign);
  r.add_o = _mm256_xor_si256(ld(t.rounding_add[1] + 4 * h), sign);
  r.neg_e = ld(t.negative_add[0] + 4 * h);
  r.neg_o = ld(t.negative_add[1] + 4 * h);
  r.shift_e = ld(t.total_shift[0] + 4 * h);
  r.shift_o = ld(t.total_shift[1] + 4 * h);
  r.unbias = interleave_dwords(_mm256_srlv_epi64(sign, r.shift_e),
                               _mm256_slli_epi64(_mm256_srlv_epi64(sign, r.shift_o), 32));
  return r;
}

// The 64-bit sums p + rounding_add (+ negative_add where p < -2^30: ties away from zero) of
// p = v * multiplier, on the even lanes (e) and the odd lanes (o). Shared by both forms: R is a
// Requant8 (rounding_add biased by 2^63) or a Requant8Hi (not); the six fields are the same.
struct Sums64 {
  __m256i e, o;
};

template <typename R>
inline Sums64 rounded_sums64(__m256i v, const R& r, bool negative_add) {
  const __m256i pe = _mm256_mul_epi32(v, r.mult_e);
  const __m256i po = _mm256_mul_epi32(_mm256_srli_epi64(v, 32), r.mult_o);
  Sums64 a{_mm256_add_epi64(pe, r.add_e), _mm256_add_epi64(po, r.add_o)};
  if (negative_add) {
    const __m256i lim = _mm256_set1_epi64x(-(int64_t{1} << 30));
    a.e = _mm256_add_epi64(a.e, _mm256_and_si256(_mm256_cmpgt_epi64(lim, pe), r.neg_e));
    a.o = _mm256_add_epi64(a.o, _mm256_and_si256(_mm256_cmpgt_epi64(lim, po), r.neg_o));
  }
  return a;
}

// v: 8 int32 lanes (bias, zero-point terms and pre-shift applied). The low dwords of s' >> t,
// still biased: subtract r.unbias (requant8) or a vector that also holds the output zero point.
inline __m256i requant8_biased(__m256i v, const Requant8& r, bool negative_add) {
  const Sums64 a = rounded_sums64(v, r, negative_add);
  return interleave_dwords(_mm256_srlv_epi64(a.e, r.shift_e),
                           _mm256_slli_epi64(_mm256_srlv_epi64(a.o, r.shift_o), 32));
}

// The int32 results (with the output zero point when it is folded into the rounding constant).
inline __m256i requant8(__m256i v, const Requant8& r, bool negative_add) {
  return _mm256_sub_epi32(requant8_biased(v, r, negative_add), r.unbias);
}

// The same requantisation when every shift is 32 to 53 (GemmQs8Params / DwRequantParams::
// shift_32_53; t = 31 + right shift, so only effective scales of 1/2 or more, or below about
// 2^-22, miss it; up to 53 the output zero point is in the rounding constant):
//   floor(s / 2^t) = (high dword of s, signed) >> (t - 32)      arithmetic, exactly,
// so the results come from the high dwords (one vpsrlq and the blend) and one vpsravd, with no
// 2^63 bias to undo: 8 instructions per 8 lanes where requant8_biased and its vpsubd take 10.
// The result fits int32 (|s| < 2^62, t >= 32). Lanes past the channels (padding, t = 31) give
// garbage that is never stored.
struct Requant8Hi {
  __m256i mult_e, mult_o, add_e, add_o, neg_e, neg_o;
  __m256i shift;  // int32 lanes: t - 32
};

template <typename Table>
inline Requant8Hi load_requant8_hi(const Table& t, int h) {
  auto ld = [](const int64_t* a) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a)); };
  const __m256i k32 = _mm256_set1_epi64x(32);
  Requant8Hi r;
  r.mult_e = ld(t.multiplier[0] + 4 * h);
  r.mult_o = ld(t.multiplier[1] + 4 * h);
  r.add_e = ld(t.rounding_add[0] + 4 * h);
  r.add_o = ld(t.rounding_add[1] + 4 * h);
  r.neg_e = ld(t.negative_add[0] + 4 * h);
  r.neg_o = ld(t.negative_add[1] + 4 * h);
  r.shift = interleave_dwords(
      _mm256_sub_epi64(ld(t.total_shift[0] + 4 * h), k32),
      _mm256_slli_epi64(_mm256_sub_epi64(ld(t.total_shift[1] + 4 * h), k32), 32));
  return r;
}

// The int32 results, the output zero point included (folded into the rounding constant).
inline __m256i requant8_hi(__m256i v, const Requant8Hi& r, bool negative_add) {
  const Sums64 a = rounded_sums64(v, r, negative_add);
  // even lanes: the high dword of a.e moved down; odd lanes: a.o's high dword where it is
  return _mm256_srav_epi32(interleave_dwords(_mm256_srli_epi64(a.e, 32), a.o), r.shift);
}

// Zero point (when not folded) and a clamp narrower than int8; the saturating packs after it
// are the int8 clamp itself.
inline __m256i finish8(__m256i y, int32_t zp, int32_t qmin, int32_t qmax) {
  if (zp != 0) y = _mm256_add_epi32(y, _mm256_set1_epi32(zp));
  if (qmin > -128) y = _mm256_max_epi32(y, _mm256_set1_epi32(qmin));
  if (qmax < 127) y = _mm256_min_epi32(y, _mm256_set1_epi32(qmax));
  return y;
}

// 16 int32 lanes (lo: 0..7, hi: 8..15) -> 16 saturated int8 in natural order.
inline __m128i pack16_int8(__m256i lo, __m256i hi) {
  const __m256i w = _mm256_packs_epi32(lo, hi);  // [lo0-3 hi0-3 | lo4-7 hi4-7] int16
  const __m128i b = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
  return _mm_shuffle_epi32(b, _MM_SHUFFLE(3, 1, 2, 0));  // dwords lo0-3 lo4-7 hi0-3 hi4-7
}

inline void store_bytes(int8_t* out, __m128i b, std::size_t n) {
  if (n >= 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), b);
  } else {
    alignas(16) int8_t tmp[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), b);
    std::memcpy(out, tmp, n);
  }
}

}  // namespace
}  // namespace detail
}  // namespace edge
