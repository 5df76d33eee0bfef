// The int8 requantisation of one row of 16 int32 accumulators on zmm (EpilogueParams' 64-bit
// form, GemmQs8Params' per-tile tables): shared by the AVX-512 translation units that write
// int8 GEMM outputs (avx512amx.cc). Include only from a TU compiled with -mavx512f -mavx512bw;
// everything here has internal linkage (ukernels.h's ODR rule).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/ukernels.h"

namespace edge {
namespace detail {
namespace {

#define EDGE_ZMM_INLINE inline __attribute__((always_inline))

// The requantisation tables of one 16-channel tile, in registers.
struct ZmmTileRequant {
  __m512i wzp, pre, me, mo, re, ro, ne, no, se, so, zp, qmin, qmax, lim;
  bool has_wzp, neg, pre_shift, add_zp, clamp_min, clamp_max;
};

EDGE_ZMM_INLINE ZmmTileRequant zmm_load_tile_requant(const GemmQs8Params& p, std::size_t tile) {
  const std::size_t c0 = tile * 16;
  const RequantEvenOdd& t = p.tiles[tile];
  ZmmTileRequant q;
  q.has_wzp = p.wzp != nullptr || p.wzp_uniform != 0;
  q.neg = p.any_negative_add != 0;
  q.pre_shift = p.any_pre_shift != 0;
  q.add_zp = p.out_zero_point != 0;
  q.clamp_min = p.out_min > -128;
  q.clamp_max = p.out_max < 127;
  q.wzp = p.wzp != nullptr ? _mm512_loadu_si512(p.wzp + c0) : _mm512_set1_epi32(p.wzp_uniform);
  q.pre = _mm512_loadu_si512(p.pre_shift + c0);
  q.me = _mm512_loadu_si512(t.multiplier[0]);
  q.mo = _mm512_loadu_si512(t.multiplier[1]);
  q.re = _mm512_loadu_si512(t.rounding_add[0]);
  q.ro = _mm512_loadu_si512(t.rounding_add[1]);
  q.ne = _mm512_loadu_si512(t.negative_add[0]);
  q.no = _mm512_loadu_si512(t.negative_add[1]);
  q.se = _mm512_loadu_si512(t.total_shift[0]);
  q.so = _mm512_loadu_si512(t.total_shift[1]);
  q.zp = _mm512_set1_epi32(p.out_zero_point);
  q.qmin = _mm512_set1_epi32(p.out_min);
  q.qmax = _mm512_set1_epi32(p.out_max);
  q.lim = _mm512_set1_epi64(-(int64_t{1} << 30));
  return q;
}

// One row (bias added) to 16 int32 outputs, not yet clamped: v minus the weight zero points'
// row term, pre-shifted, then the 64-bit multiply-add-shift on the even lanes and on the odd
// lanes moved down (vpmuldq reads the low dword of each qword), the odd results shuffled back.
// kPlain: no weight zero point, pre-shift, tie-away rule or unfolded output zero point (the
// caller checked zmm_plain_requant).
template <bool kPlain>
EDGE_ZMM_INLINE __m512i zmm_requant16(__m512i v, int32_t row_sum, const ZmmTileRequant& q) {
  if (!kPlain && q.has_wzp) {
    v = _mm512_sub_epi32(v, _mm512_mullo_epi32(q.wzp, _mm512_set1_epi32(row_sum)));
  }
  if (!kPlain && q.pre_shift) v = _mm512_sllv_epi32(v, q.pre);
  const __m512i pe = _mm512_mul_epi32(v, q.me);
  const __m512i po = _mm512_mul_epi32(_mm512_srli_epi64(v, 32), q.mo);
  __m512i ae = _mm512_add_epi64(pe, q.re);
  __m512i ao = _mm512_add_epi64(po, q.ro);
  if (!kPlain && q.neg) {
    ae = _mm512_mask_add_epi64(ae, _mm512_cmplt_epi64_mask(pe, q.lim), ae, q.ne);
    ao = _mm512_mask_add_epi64(ao, _mm512_cmplt_epi64_mask(po, q.lim), ao, q.no);
  }
  const __m512i ye = _mm512_srav_epi64(ae, q.se);
  const __m512i yo = _mm512_srav_epi64(ao, q.so);
  __m512i y = _mm512_mask_shuffle_epi32(ye, static_cast<__mmask16>(0xAAAA), yo, _MM_PERM_CCAA);
  if (!kPlain && q.add_zp) y = _mm512_add_epi32(y, q.zp);
  return y;
}

EDGE_ZMM_INLINE bool zmm_plain_requant(const GemmQs8Params& p) {
  return p.wzp == nullptr && p.wzp_uniform == 0 && p.any_pre_shift == 0 &&
         p.any_negative_add == 0 && p.out_zero_point == 0;
}

// `rows` rows of 16 int32 accumulators (acc, 16 per row, bias not yet added) requantised and
// stored as int8 at out + r * out_stride, channels [0, nc) of the tile. Rows go four at a time
// through two saturating packs (int32 -> int16 -> int8: the clamp range lies inside int8, so
// saturating first and clamping after is LiteRT's clamp-then-cast) and one vpermd that puts
// each row's 16 bytes in its own 128-bit lane; a group of fewer than four repeats its last row.
template <bool kPlain>
EDGE_ZMM_INLINE void zmm_requant_store_rows(const int32_t* acc, std::size_t rows,
                                            const int32_t* row_sums, std::size_t sums_stride,
                                            const GemmQs8Params& p, std::size_t tile,
                                            std::size_t nc, int8_t* out,
                                            std::size_t out_stride) {
  const ZmmTileRequant q = zmm_load_tile_requant(p, tile);
  const __m512i bias = _mm512_loadu_si512(p.bias + tile * 16);
  const __m512i lo = _mm512_set1_epi8(static_cast<char>(p.out_min));
  const __m512i hi = _mm512_set1_epi8(static_cast<char>(p.out_max));
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __mmask16 k = static_cast<__mmask16>((1u << nc) - 1u);
  for (std::size_t r0 = 0; r0 < rows; r0 += 4) {
    __m512i y[4];
    for (std::size_t i = 0; i < 4; ++i) {
      const std::size_t r = r0 + i < rows ? r0 + i : rows - 1;
      const int32_t sum = !kPlain && q.has_wzp ? row_sums[r * sums_stride] : 0;
      y[i] = zmm_requant16<kPlain>(_mm512_add_epi32(_mm512_load_si512(acc + 16 * r), bias), sum,
                                   q);
    }
    __m512i v = _mm512_permutexvar_epi32(
        order, _mm512_packs_epi16(_mm512_packs_epi32(y[0], y[1]), _mm512_packs_epi32(y[2], y[3])));
    if (q.clamp_min) v = _mm512_max_epi8(v, lo);
    if (q.clamp_max) v = _mm512_min_epi8(v, hi);
    const __m128i part[4] = {_mm512_castsi512_si128(v), _mm512_extracti32x4_epi32(v, 1),
                             _mm512_extracti32x4_epi32(v, 2), _mm512_extracti32x4_epi32(v, 3)};
    for (std::size_t i = 0; i < 4 && r0 + i < rows; ++i) {
      int8_t* dst = out + (r0 + i) * out_stride;
      if (nc == 16) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), part[i]);
      } else {
        _mm_mask_storeu_epi8(dst, k, part[i]);
      }
    }
  }
}

#undef EDGE_ZMM_INLINE

}  // namespace
}  // namespace detail
}  // namespace edge
