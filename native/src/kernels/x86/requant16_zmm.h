// The int8 requantisation of rows of 16 int32 accumulators on zmm (EpilogueParams' 64-bit
// form, GemmQs8Params' per-tile tables), shared by the AVX-512 translation units that write
// int8 GEMM outputs: avx512vnni.cc's fused kernels and avx512amx.cc's tile GEMM. Include only
// from a TU compiled with -mavx512f -mavx512bw -mavx512vl; everything here has internal linkage
// (ukernels.h's ODR rule).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/ukernels.h"

namespace edge {
namespace detail {
namespace {

// The epilogue helpers below must be inlined into every kernel: left to itself, GCC 12 stopped
// inlining load_tile_requant once a third kernel used it, and returned the 14 tables through
// the stack on every call (80x80x16 -> 96: 0.150 -> 0.26 ms).
#define EDGE_AVX512_INLINE inline __attribute__((always_inline))
// The requantisation tables of one 16-channel tile, in registers (requant_store_rows_each).
struct TileRequant {
  __m512i wzp, pre, me, mo, re, ro, ne, no, se, so, zp, qmin, qmax, lim;
  __m512i s32;  // high: int32 lanes in channel order, total_shift - 32
  bool has_wzp, neg, pre_shift, add_zp, clamp_min, clamp_max;
  bool high;    // GemmQs8Params::shift_32_53: requant16<.., kHigh = true> applies
};

EDGE_AVX512_INLINE TileRequant load_tile_requant(const GemmQs8Params& p, std::size_t tile) {
  const std::size_t c0 = tile * 16;
  const RequantEvenOdd& t = p.tiles[tile];
  TileRequant q;
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
  q.high = p.shift_32_53 != 0;
  const __m512i k32 = _mm512_set1_epi64(32);
  q.s32 = _mm512_mask_shuffle_epi32(_mm512_sub_epi64(q.se, k32), static_cast<__mmask16>(0xAAAA),
                                    _mm512_sub_epi64(q.so, k32), _MM_PERM_CCAA);
  return q;
}

// One row of 16 accumulators (bias added) to 16 int32 outputs in the clamp range (LiteRT's
// 64-bit multiply, rounding add and shift on the even and odd lanes).
// kHigh (every total_shift t in [32, 53], the output zero point folded: shift_32_53, as
// requant8_ymm.h's AVX2 form): floor(s / 2^t) = (high dword of s) >> (t - 32) exactly, so the
// two 64-bit sums' high dwords are gathered by one masked vpshufd and shifted by one vpsravd,
// where the general form takes two vpsravq and the vpshufd. The odd lanes reach vpmuldq through
// a vpshufd rather than a vpsrlq in both forms. On Intel cores the 512-bit shifts and vpdpbusd
// share port 0 while the shuffles run on port 5: at K = 16-32 the port-0 work per 16 outputs
// drops from 4-8 vpdpbusd + 3 shifts to 4-8 + 1.
template <bool kPlain = false, bool kClamp = true, bool kHigh = false>
EDGE_AVX512_INLINE __m512i requant16(__m512i v, int32_t row_sum, const TileRequant& q) {
  if (!kPlain && q.has_wzp) {
    v = _mm512_sub_epi32(v, _mm512_mullo_epi32(q.wzp, _mm512_set1_epi32(row_sum)));
  }
  if (!kPlain && q.pre_shift) v = _mm512_sllv_epi32(v, q.pre);
  const __m512i pe = _mm512_mul_epi32(v, q.me);
  const __m512i po = _mm512_mul_epi32(_mm512_shuffle_epi32(v, _MM_PERM_DDBB), q.mo);
  __m512i ae = _mm512_add_epi64(pe, q.re);
  __m512i ao = _mm512_add_epi64(po, q.ro);
  if (!kPlain && q.neg) {
    ae = _mm512_mask_add_epi64(ae, _mm512_cmplt_epi64_mask(pe, q.lim), ae, q.ne);
    ao = _mm512_mask_add_epi64(ao, _mm512_cmplt_epi64_mask(po, q.lim), ao, q.no);
  }
  if (kHigh) {
    // even lanes <- the high dwords of ae (dwords 1, 3 of each 128 bits), odd lanes keep ao's
    const __m512i hi =
        _mm512_mask_shuffle_epi32(ao, static_cast<__mmask16>(0x5555), ae, _MM_PERM_DDBB);
    __m512i y = _mm512_srav_epi32(hi, q.s32);
    if (kClamp && q.clamp_min) y = _mm512_max_epi32(y, q.qmin);
    if (kClamp && q.clamp_max) y = _mm512_min_epi32(y, q.qmax);
    return y;
  }
  const __m512i ye = _mm512_srav_epi64(ae, q.se);
  const __m512i yo = _mm512_srav_epi64(ao, q.so);
  __m512i y = _mm512_mask_shuffle_epi32(ye, static_cast<__mmask16>(0xAAAA), yo, _MM_PERM_CCAA);
  if (!kPlain && q.add_zp) y = _mm512_add_epi32(y, q.zp);
  if (kClamp && q.clamp_min) y = _mm512_max_epi32(y, q.qmin);
  if (kClamp && q.clamp_max) y = _mm512_min_epi32(y, q.qmax);
  return y;
}

// The packed epilogue (requant_store_rows_each, requant_store_rows_x2): rows requantised to
// int32 without the clamp, narrowed four 16-lane vectors at a time by two saturating packs
// (vpackssdw, vpacksswb: int8 saturation, what vpmovsdb does per vector) and one vpermd that
// puts each row's bytes back in channel order, then clamped as 64 bytes (vpmaxsb / vpminsb:
// the clamp range lies inside int8, so saturating first and clamping after gives LiteRT's
// clamp-then-cast). Per four rows of 16 channels: 4 vector ops + the clamp where vpmovsdb
// took 2 uops per row and the clamp 1-2 per row.
EDGE_AVX512_INLINE __m512i clamp8(__m512i v, const TileRequant& q, __m512i lo, __m512i hi) {
  if (q.clamp_min) v = _mm512_max_epi8(v, lo);
  if (q.clamp_max) v = _mm512_min_epi8(v, hi);
  return v;
}

// The int8 indirect kernels' epilogue without the tests for weight zero points, pre-shifts,
// ties away from zero and an unfolded output zero point, where none applies (LiteRT's usual
// int8 conv): 3-10 % on the two-tile kernel's small-K layers (80x80x16 -> 96: 0.136 -> 0.125
// ms, Zen 4), whose code GCC had unswitched on every combination of those tests.
EDGE_AVX512_INLINE bool plain_requant(const GemmQs8Params& p) {
  return p.wzp == nullptr && p.wzp_uniform == 0 && p.any_pre_shift == 0 &&
         p.any_negative_add == 0 && p.out_zero_point == 0;
}

// `rows` (any count) rows of 16 int32 accumulators in memory (acc, 16 per row, 64-byte
// aligned, bias not yet added) requantised and stored as int8 at out + r * out_stride, channels
// [0, nc) of the tile: the packed epilogue (clamp8's comment), four rows at a time, a group of
// fewer than four repeating its last row. For kernels whose accumulators leave registers (the
// AMX tile GEMM stores its C tile).
template <bool kPlain, bool kHigh>
EDGE_AVX512_INLINE void requant_store_tile_rows(const int32_t* acc, std::size_t rows,
                                                const int32_t* row_sums, std::size_t sums_stride,
                                                const GemmQs8Params& p, const TileRequant& q,
                                                std::size_t tile, std::size_t nc, int8_t* out,
                                                std::size_t out_stride) {
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
      y[i] = requant16<kPlain, false, kHigh>(
          _mm512_add_epi32(_mm512_load_si512(acc + 16 * r), bias), sum, q);
    }
    const __m512i v = clamp8(
        _mm512_permutexvar_epi32(order, _mm512_packs_epi16(_mm512_packs_epi32(y[0], y[1]),
                                                           _mm512_packs_epi32(y[2], y[3]))),
        q, lo, hi);
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

}  // namespace
}  // namespace detail
}  // namespace edge
