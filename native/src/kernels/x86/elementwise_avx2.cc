// x86 AVX2 element-wise kernels (edge/kernels/elementwise.h). Compiled with -mavx2 only; called
// only when the CPU has AVX2. Internal linkage except the table (ODR note in ukernels.h).
//
// ADD: LiteRT's vector-loop arithmetic on 8 int32 lanes. SQRDMULH has no x86 instruction: the
// 64-bit products of the even and odd lanes (vpmuldq) plus 2^30 hold the result in their bits
// 31..62, which a logical shift right by 31 (even lanes) or left by 1 (odd lanes) moves into the
// lane's dword; that is exact because the result fits int32 (the multiplier is >= 0, so the one
// saturating case INT32_MIN * INT32_MIN cannot occur). RoundingDivideByPOT is an arithmetic
// shift plus one where the remainder exceeds half (plus one for negatives: ties away from zero).
// The int16 wrap is a shift left and right by 16; the int8 saturation, inside the activation
// clamp, leaves values the saturating packs keep as they are.
// Each input's step, SQRDMULH(v << s, m) with v = a + offset, in its exact 32-bit form where it
// applies (LiteRT's shifts 15-22, offsets -128..128: vadd_step.h, shared with the AVX-512 ADD);
// the output's SQRDMULH (sums up to 2^31) stays 64-bit.
// MAX_POOL: vpmaxsb over the taps, 32 channels per register, the accumulator in registers.
// Column sums: bytes sign-extended to int32 lanes, 32 channels per step.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/elementwise_ukernels.h"
#include "kernels/x86/vadd_step.h"

namespace edge {
namespace detail {
namespace {

// floor((x * m + 2^30) / 2^31) per lane, m >= 0 in every lane.
inline __m256i qrdmulh(__m256i x, __m256i m, __m256i half) {
  const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, m), half);
  const __m256i odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), m), half);
  return _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xAA);
}

// NEON's VSHL by one signed count, as a left and a right shift of which one is by 0 (x86 shifts
// by >= 32 give 0 for the left one, the sign for the arithmetic right one, as VSHL does).
inline __m256i shl(__m256i x, __m128i left, __m128i right) {
  return _mm256_sra_epi32(_mm256_sll_epi32(x, left), right);
}

struct AddConstants {
  __m256i a_offset, b_offset, a_mult, b_mult, out_mult, half, mask, threshold, out_offset,
      out_min, out_max;
  __m128i a_left, a_right, b_left, b_right, exponent;
};

AddConstants add_constants(const QS8AddParams& p) {
  AddConstants k;
  k.a_offset = _mm256_set1_epi32(p.a_offset);
  k.b_offset = _mm256_set1_epi32(p.b_offset);
  k.a_mult = _mm256_set1_epi32(p.a_multiplier);
  k.b_mult = _mm256_set1_epi32(p.b_multiplier);
  k.out_mult = _mm256_set1_epi32(p.out_multiplier);
  k.half = _mm256_set1_epi64x(int64_t{1} << 30);
  const auto mask = static_cast<int32_t>((uint64_t{1} << p.out_exponent) - 1u);
  k.mask = _mm256_set1_epi32(mask);
  k.threshold = _mm256_set1_epi32(mask >> 1);
  k.out_offset = _mm256_set1_epi32(p.out_offset);
  k.out_min = _mm256_set1_epi32(p.out_min);
  k.out_max = _mm256_set1_epi32(p.out_max);
  k.a_left = _mm_cvtsi32_si128(p.a_shift > 0 ? p.a_shift : 0);
  k.a_right = _mm_cvtsi32_si128(p.a_shift < 0 ? -p.a_shift : 0);
  k.b_left = _mm_cvtsi32_si128(p.b_shift > 0 ? p.b_shift : 0);
  k.b_right = _mm_cvtsi32_si128(p.b_shift < 0 ? -p.b_shift : 0);
  k.exponent = _mm_cvtsi32_si128(p.out_exponent);
  return k;
}

using vadd_step::Steps;

// An input's step in the 32-bit form (vadd_step.h) on 8 lanes.
inline __m256i step(__m256i a, const vadd_step::Input& t) {
  return reinterpret_cast<__m256i>(vadd_step::step(reinterpret_cast<vadd_step::I32x8>(a), t));
}

// Eight outputs (int32 lanes, already clamped to the int8 activation range) from eight a, b;
// kStep: the inputs' steps in the 32-bit form, else LiteRT's 64-bit SQRDMULH.
template <bool kStep>
inline __m256i add8(__m256i a, __m256i b, const AddConstants& k, const Steps& steps) {
  const __m256i xa =
      kStep ? step(a, steps.a)
            : qrdmulh(shl(_mm256_add_epi32(a, k.a_offset), k.a_left, k.a_right), k.a_mult, k.half);
  const __m256i xb =
      kStep ? step(b, steps.b)
            : qrdmulh(shl(_mm256_add_epi32(b, k.b_offset), k.b_left, k.b_right), k.b_mult, k.half);
  const __m256i s = qrdmulh(_mm256_add_epi32(xa, xb), k.out_mult, k.half);
  // Ties away from zero: the threshold is one higher for negative values (x >> 31 = -1).
  const __m256i remainder = _mm256_and_si256(s, k.mask);
  const __m256i threshold = _mm256_sub_epi32(k.threshold, _mm256_srai_epi32(s, 31));
  __m256i r = _mm256_sub_epi32(_mm256_sra_epi32(s, k.exponent),
                               _mm256_cmpgt_epi32(remainder, threshold));
  r = _mm256_add_epi32(r, k.out_offset);
  r = _mm256_srai_epi32(_mm256_slli_epi32(r, 16), 16);  // LiteRT's int16 wrap
  return _mm256_min_epi32(_mm256_max_epi32(r, k.out_min), k.out_max);
}

inline __m256i load8(const int8_t* p) {
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// 16 outputs from a[0..15], b[0..15].
template <bool kStep>
inline __m128i add16(const int8_t* a, const int8_t* b, const AddConstants& k,
                     const Steps& steps) {
  const __m256i lo = add8<kStep>(load8(a), load8(b), k, steps);
  const __m256i hi = add8<kStep>(load8(a + 8), load8(b + 8), k, steps);
  // packs works within 128-bit lanes: [lo 0-3, hi 0-3 | lo 4-7, hi 4-7] -> natural order.
  const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(lo, hi), 0xD8);
  return _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
}

template <bool kStep>
void vadd_x16(std::size_t n, const int8_t* a, const int8_t* b, const AddConstants& k,
              const Steps& steps, int8_t* out) {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), add16<kStep>(a + i, b + i, k, steps));
  }
  if (i < n) {
    // The tail through a zero-padded copy: same arithmetic, no read past the inputs.
    int8_t ta[16] = {}, tb[16] = {}, to[16];
    std::memcpy(ta, a + i, n - i);
    std::memcpy(tb, b + i, n - i);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(to), add16<kStep>(ta, tb, k, steps));
    std::memcpy(out + i, to, n - i);
  }
}

void qs8_vadd_x16__avx2(std::size_t n, const int8_t* a, const int8_t* b, const QS8AddParams& p,
                        int8_t* out) {
  const AddConstants k = add_constants(p);
  vadd_step::dispatch(p, [&](auto step32, const Steps& steps) {
    vadd_x16<decltype(step32)::value>(n, a, b, k, steps, out);
  });
}

void qs8_maxpool_32c__avx2(std::size_t channels, std::size_t taps, const int8_t* const* inputs,
                           int8_t out_min, int8_t out_max, int8_t* out) {
  const __m256i lo = _mm256_set1_epi8(out_min);
  const __m256i hi = _mm256_set1_epi8(out_max);
  auto block32 = [&](std::size_t c) {
    __m256i m = lo;
    for (std::size_t t = 0; t < taps; ++t) {
      m = _mm256_max_epi8(m, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(inputs[t] + c)));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), _mm256_min_epi8(m, hi));
  };
  auto block16 = [&](std::size_t c) {
    __m128i m = _mm256_castsi256_si128(lo);
    for (std::size_t t = 0; t < taps; ++t) {
      m = _mm_max_epi8(m, _mm_loadu_si128(reinterpret_cast<const __m128i*>(inputs[t] + c)));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + c),
                     _mm_min_epi8(m, _mm256_castsi256_si128(hi)));
  };
  std::size_t c = 0;
  for (; c + 32 <= channels; c += 32) block32(c);
  if (c == channels) return;
  // Tails recompute the last whole vector (overlapping channels get the same values again):
  // out never aliases the inputs, so that is exact.
  if (channels >= 32) return block32(channels - 32);
  if (channels >= 16) {
    block16(0);
    return block16(channels - 16);
  }
  qs8_maxpool__scalar(channels, taps, inputs, out_min, out_max, out);
}

void qs8_rsum_32c__avx2(std::size_t rows, std::size_t channels, const int8_t* in,
                        std::size_t row_stride, int32_t* sums) {
  std::size_t c = 0;
  for (; c + 32 <= channels; c += 32) {
    __m256i acc[4];
    for (int q = 0; q < 4; ++q) {
      acc[q] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sums + c + 8 * q));
    }
    for (std::size_t r = 0; r < rows; ++r) {
      const int8_t* row = in + r * row_stride + c;
      for (int q = 0; q < 4; ++q) acc[q] = _mm256_add_epi32(acc[q], load8(row + 8 * q));
    }
    for (int q = 0; q < 4; ++q) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + c + 8 * q), acc[q]);
    }
  }
  for (; c + 8 <= channels; c += 8) {
    __m256i acc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sums + c));
    for (std::size_t r = 0; r < rows; ++r) {
      acc = _mm256_add_epi32(acc, load8(in + r * row_stride + c));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + c), acc);
  }
  if (c < channels) qs8_rsum__scalar(rows, channels - c, in + c, row_stride, sums + c);
}

}  // namespace

const ElementwiseKernels kAvx2Elementwise = {
    EDGE_NAMED(qs8_vadd_x16__avx2),
    EDGE_NAMED(qs8_maxpool_32c__avx2),
    EDGE_NAMED(qs8_rsum_32c__avx2),
};

#if defined(EDGE_HAVE_AVX512VNNI)
// AVX-512 machines run the AVX2 max-pool and column sums (their names say so): those loops are
// bound by loads and one operation per vector, and on Zen 4 a zmm operation issues as two ymm
// halves. ADD, a dozen operations per vector, has its own (elementwise_avx512.cc): Intel
// cores run a zmm operation as one uop (MobileNet-like model, Sapphire Rapids-class host: its
// ADD layers 0.095 -> 0.063 ms, docs/kernels.md).
const ElementwiseKernels kAvx512Elementwise = {
    EDGE_NAMED(qs8_vadd_x32__avx512vnni),
    EDGE_NAMED(qs8_maxpool_32c__avx2),
    EDGE_NAMED(qs8_rsum_32c__avx2),
};
#endif

}  // namespace detail
}  // namespace edge
