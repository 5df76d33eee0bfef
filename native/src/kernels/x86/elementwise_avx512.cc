// x86 AVX-512 element-wise kernels (edge/kernels/elementwise.h). Compiled with the AVX-512 VNNI
// tier's flags (F, BW, VL, VNNI); called only when the CPU has that tier.
//
// ADD: the arithmetic of qs8_vadd_x16__avx2 (elementwise_avx2.cc: LiteRT's vector loop, its
// SQRDMULH from two vpmuldq and RoundingDivideByPOT with ties away from zero) on 16 int32 lanes
// per zmm, 32 elements per step, the tail through masked loads and a masked store. Where a zmm
// operation is one full-width uop (Intel cores) this does a vector's work in half the
// instructions of the AVX2 kernel; on Zen 4, which splits a zmm operation in two ymm halves, it
// is no slower. The int8 results are in the activation clamp, so the saturating packs keep them.
//
// Each input's step, SQRDMULH(v << s, m) with v = a + offset, in its exact 32-bit form where it
// applies (LiteRT's shifts 15-22, offsets -128..128: vadd_step.h, shared with the AVX2 ADD): the
// int8 ResNet-like model's 40x40x64 ADD ran 0.058 ms of 5.3 on Zen 4 (1 thread) before it.
// GCC 12's AVX-512 headers trip -Wuninitialized on their own _mm512_undefined_epi32() once
// inlined (GCC bug 105593, fixed in GCC 13); nothing in this file is uninitialised.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/elementwise_ukernels.h"
#include "kernels/x86/vadd_step.h"

namespace edge {
namespace detail {
namespace {

// floor((x * m + 2^30) / 2^31) per lane, m >= 0 in every lane (see elementwise_avx2.cc).
inline __m512i qrdmulh(__m512i x, __m512i m, __m512i half) {
  const __m512i even = _mm512_add_epi64(_mm512_mul_epi32(x, m), half);
  const __m512i odd = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), m), half);
  return _mm512_mask_blend_epi32(static_cast<__mmask16>(0xAAAA), _mm512_srli_epi64(even, 31),
                                 _mm512_slli_epi64(odd, 1));
}

// NEON's VSHL by one signed count: a left and an arithmetic right shift, one of them by 0.
inline __m512i shl(__m512i x, __m128i left, __m128i right) {
  return _mm512_sra_epi32(_mm512_sll_epi32(x, left), right);
}

struct AddConstants {
  __m512i a_offset, b_offset, a_mult, b_mult, out_mult, half, mask, threshold, out_offset,
      out_min, out_max, one;
  __m128i a_left, a_right, b_left, b_right, exponent;
};

AddConstants add_constants(const QS8AddParams& p) {
  AddConstants k;
  k.a_offset = _mm512_set1_epi32(p.a_offset);
  k.b_offset = _mm512_set1_epi32(p.b_offset);
  k.a_mult = _mm512_set1_epi32(p.a_multiplier);
  k.b_mult = _mm512_set1_epi32(p.b_multiplier);
  k.out_mult = _mm512_set1_epi32(p.out_multiplier);
  k.half = _mm512_set1_epi64(int64_t{1} << 30);
  const auto mask = static_cast<int32_t>((uint64_t{1} << p.out_exponent) - 1u);
  k.mask = _mm512_set1_epi32(mask);
  k.threshold = _mm512_set1_epi32(mask >> 1);
  k.out_offset = _mm512_set1_epi32(p.out_offset);
  k.out_min = _mm512_set1_epi32(p.out_min);
  k.out_max = _mm512_set1_epi32(p.out_max);
  k.one = _mm512_set1_epi32(1);
  k.a_left = _mm_cvtsi32_si128(p.a_shift > 0 ? p.a_shift : 0);
  k.a_right = _mm_cvtsi32_si128(p.a_shift < 0 ? -p.a_shift : 0);
  k.b_left = _mm_cvtsi32_si128(p.b_shift > 0 ? p.b_shift : 0);
  k.b_right = _mm_cvtsi32_si128(p.b_shift < 0 ? -p.b_shift : 0);
  k.exponent = _mm_cvtsi32_si128(p.out_exponent);
  return k;
}

using vadd_step::Steps;

// Sixteen outputs (int32 lanes, clamped to the activation range) from sixteen a, b; kStep: the
// inputs' steps in the 32-bit form (steps), else LiteRT's 64-bit SQRDMULH.
template <bool kStep>
inline __m512i add16(__m512i a, __m512i b, const AddConstants& k, const Steps& steps) {
  __m512i xa, xb;
  if constexpr (kStep) {
    using vadd_step::I32x16;
    xa = reinterpret_cast<__m512i>(vadd_step::step(reinterpret_cast<I32x16>(a), steps.a));
    xb = reinterpret_cast<__m512i>(vadd_step::step(reinterpret_cast<I32x16>(b), steps.b));
  } else {
    xa = qrdmulh(shl(_mm512_add_epi32(a, k.a_offset), k.a_left, k.a_right), k.a_mult, k.half);
    xb = qrdmulh(shl(_mm512_add_epi32(b, k.b_offset), k.b_left, k.b_right), k.b_mult, k.half);
  }
  const __m512i s = qrdmulh(_mm512_add_epi32(xa, xb), k.out_mult, k.half);
  // Ties away from zero: the threshold is one higher for negative values (x >> 31 = -1).
  const __m512i remainder = _mm512_and_si512(s, k.mask);
  const __m512i threshold = _mm512_sub_epi32(k.threshold, _mm512_srai_epi32(s, 31));
  __m512i r = _mm512_sra_epi32(s, k.exponent);
  r = _mm512_mask_add_epi32(r, _mm512_cmpgt_epi32_mask(remainder, threshold), r, k.one);
  r = _mm512_add_epi32(r, k.out_offset);
  r = _mm512_srai_epi32(_mm512_slli_epi32(r, 16), 16);  // LiteRT's int16 wrap
  return _mm512_min_epi32(_mm512_max_epi32(r, k.out_min), k.out_max);
}

// 32 outputs from the bytes at a, b (32 of each, or fewer through the load masks).
template <bool kStep>
inline __m256i add32(__m256i a8, __m256i b8, const AddConstants& k, const Steps& steps) {
  const __m512i lo = add16<kStep>(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(a8)),
                                  _mm512_cvtepi8_epi32(_mm256_castsi256_si128(b8)), k, steps);
  const __m512i hi = add16<kStep>(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(a8, 1)),
                                  _mm512_cvtepi8_epi32(_mm256_extracti128_si256(b8, 1)), k, steps);
  // After the packs 128-bit lane i holds dwords lo[4i..4i+3], hi[4i..4i+3] (twice): the vpermd
  // gathers lo's four dwords, then hi's, into the low 256 bits.
  const __m512i w = _mm512_packs_epi32(lo, hi);
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_castsi512_si256(_mm512_permutexvar_epi32(order, _mm512_packs_epi16(w, w)));
}

template <bool kStep>
void vadd_x32(std::size_t n, const int8_t* a, const int8_t* b, const AddConstants& k,
              const Steps& steps, int8_t* out) {
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i a8 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    const __m256i b8 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), add32<kStep>(a8, b8, k, steps));
  }
  if (i < n) {
    // The tail: masked loads (the lanes past n read as 0, computed and not stored).
    const auto m = static_cast<__mmask32>((uint64_t{1} << (n - i)) - 1u);
    const __m256i a8 = _mm256_maskz_loadu_epi8(m, a + i);
    const __m256i b8 = _mm256_maskz_loadu_epi8(m, b + i);
    _mm256_mask_storeu_epi8(out + i, m, add32<kStep>(a8, b8, k, steps));
  }
}

}  // namespace

void qs8_vadd_x32__avx512vnni(std::size_t n, const int8_t* a, const int8_t* b,
                              const QS8AddParams& p, int8_t* out) {
  const AddConstants k = add_constants(p);
  vadd_step::dispatch(p, [&](auto step32, const Steps& steps) {
    vadd_x32<decltype(step32)::value>(n, a, b, k, steps, out);
  });
}

}  // namespace detail
}  // namespace edge
