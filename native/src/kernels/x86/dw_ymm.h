// The fused depthwise kernel (DwQs8Fn) on ymm registers, written once over its 4-tap dot
// product and compiled twice (as vnni_ymm.h's GEMM kernels):
//   * avx2.cc: Taps = Avx2DwTaps, vpdpbusd emulated by two vpmaddwd (qs8_qc8w_dwconv_rowx32c4__avx2);
//   * avxvnni_table.h (avxvnni.cc, VEX; the test binary's EVEX twin): Taps = vnni_ymm::DwTaps,
//     one vpdpbusd per 4 taps x 8 channels (qs8_qc8w_dwconv_rowx32c4__avxvnni).
// The layout is the 64c4 one of the AVX-512 VNNI kernel (ukernels.h, DwQs8Fn) taken as two
// 32-channel halves: half h of a block is the 256-bit half h of every 64-byte weight vector and
// lanes 8h .. 8h + 7 of the tables. In-lane unpacks interleave four taps per channel, so each
// dword of accumulator q holds one channel's 4 taps (x + 128, unsigned) against weight vector
// q's 4 signed bytes.
// Ranges: no step saturates. vpdpbusd and vpmaddwd (AVX2: x + 128 and w as int16) form exact
// int32 products and pair sums (|255 * -128 * 2| < 2^31; no vpmaddubsw int16 stage here), and the
// accumulators start at the bias term with -128 * sum(w) folded in by a wrapping subtraction
// (depthwise_conv2d.cc, build_fused): the int32 sums wrap as the scalar reference's and every
// other epilogue's do, so the low dword is the same whatever the order of the adds.
//
// A Taps policy supplies, for weight vector q (of 4) of a group at wg and channel half h:
//   kGroupBytes                   bytes of one group's weights in a 64-channel block;
//   dot4(acc, u, wg, q, h)        acc + the 4 byte products of each dword of u (4 taps);
//   dot1(acc, u, wg, q, h)        the same when bytes 1-3 of every dword of u are zero (a lone
//                                 last tap): AVX2 saves one vpmaddwd there.
// Linkage: as requant8_ymm.h (internal; each includer compiles its own copy with its flags).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/ukernels.h"
#include "kernels/x86/requant8_ymm.h"

namespace edge {
namespace detail {
namespace {

namespace dw_ymm {

inline __m256i load_x32(const int8_t* p, std::size_t len) {
  if (len >= 32) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  // 16-channel tails (48, 144, .. channels) without the stack copy.
  if (len == 16) return _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  alignas(32) int8_t tmp[32] = {};
  std::memcpy(tmp, p, len);  // rows are only `channels` long
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(tmp));
}

// Pixels (DwQs8Fn) inside each 32-channel half: the half's bias, weights and tables stay hot
// across a row segment. 16 ymm cannot hold 3 groups' 24 even / odd weight vectors, so they are
// still loaded per pixel (from L1); what goes is the per-pixel call and pointer set-up.
// The requantisation is set up once per call and half (DwHalf: the tables' sign flip, unbias
// and output zero point folded into one int32 offset per accumulator, read into locals the
// vector stores cannot alias), and its variant is a template parameter (kNeg: some channel
// rounds ties away from zero; kPre: some pre-shift): per pixel and 8 lanes the 64-bit
// multiply-add-shift, one vpsubd; the clamp on the packed bytes. Bit-identical to requant8 +
// finish8 per pixel (requant8_ymm.h: low dwords; see store_half for the clamp).
// kHi: every shift 32 to 53 (DwRequantParams::shift_32_53): requant8_hi, the zero point folded.
struct DwHalf {
  Requant8 rq[4];
  Requant8Hi rh[4];
  __m256i bias[4], pre[4], offset[4];
};

template <bool kHi>
inline void load_half(const DwRequantBlock* t, int h, bool pre, __m256i zp, DwHalf* k) {
  for (int q = 0; q < 4; ++q) {
    k->bias[q] = load_i32(t[q].bias + 8 * h);
    if (pre) k->pre[q] = load_i32(t[q].pre_shift + 8 * h);
    if constexpr (kHi) {
      k->rh[q] = load_requant8_hi(t[q], h);
    } else {
      k->rq[q] = load_requant8(t[q], h);
      k->offset[q] = _mm256_sub_epi32(k->rq[q].unbias, zp);
    }
  }
}

// Requantises a pixel's 4 accumulators of one half and stores its `len` channels at out.
// The clamp runs on the 32 packed bytes (qmin8 / qmax8: out_min / out_max in every byte): the
// packs saturate to [-128, 127], which holds the clamp range, so clamping after them gives
// LiteRT's clamp-then-cast, in 2 instructions where the 4 int32 vectors took 8 (the AVX-512 and
// AVX2 GEMM epilogues' byte clamp).
template <bool kNeg, bool kPre, bool kHi>
[[gnu::always_inline]] inline void store_half(const __m256i (&a)[4], const DwHalf& k,
                                                 __m256i qmin8, __m256i qmax8, int8_t* out,
                                                 std::size_t len) {
  __m256i y[4];
  for (int q = 0; q < 4; ++q) {
    __m256i v = a[q];
    if constexpr (kPre) v = _mm256_sllv_epi32(v, k.pre[q]);
    if constexpr (kHi) {
      y[q] = requant8_hi(v, k.rh[q], kNeg);
    } else {
      y[q] = _mm256_sub_epi32(requant8_biased(v, k.rq[q], kNeg), k.offset[q]);
    }
  }
  // In-lane packs undo the in-lane unpacks: natural channel order, saturated to int8.
  const __m256i y01 = _mm256_packs_epi32(y[0], y[1]), y23 = _mm256_packs_epi32(y[2], y[3]);
  const __m256i bytes =
      _mm256_min_epi8(_mm256_max_epi8(_mm256_packs_epi16(y01, y23), qmin8), qmax8);
  if (len == 32) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), bytes);
  } else if (len == 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(bytes));
  } else {
    alignas(32) int8_t tmp[32];
    _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), bytes);
    std::memcpy(out, tmp, len);
  }
}

// One group's 4 taps of 32 channels (x + 128) into the 4 accumulators: the taps interleaved
// per channel by in-lane unpacks (bytes, then 16-bit pairs).
template <class Taps>
[[gnu::always_inline]] inline void group(__m256i (&a)[4], const int8_t* const* in,
                                         std::size_t ch, std::size_t len, const uint8_t* wg,
                                         int h) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  const __m256i x0 = _mm256_xor_si256(load_x32(in[0] + ch, len), flip);
  const __m256i x1 = _mm256_xor_si256(load_x32(in[1] + ch, len), flip);
  const __m256i x2 = _mm256_xor_si256(load_x32(in[2] + ch, len), flip);
  const __m256i x3 = _mm256_xor_si256(load_x32(in[3] + ch, len), flip);
  const __m256i l01 = _mm256_unpacklo_epi8(x0, x1), h01 = _mm256_unpackhi_epi8(x0, x1);
  const __m256i l23 = _mm256_unpacklo_epi8(x2, x3), h23 = _mm256_unpackhi_epi8(x2, x3);
  a[0] = Taps::dot4(a[0], _mm256_unpacklo_epi16(l01, l23), wg, 0, h);
  a[1] = Taps::dot4(a[1], _mm256_unpackhi_epi16(l01, l23), wg, 1, h);
  a[2] = Taps::dot4(a[2], _mm256_unpacklo_epi16(h01, h23), wg, 2, h);
  a[3] = Taps::dot4(a[3], _mm256_unpackhi_epi16(h01, h23), wg, 3, h);
}

// A last group with one real tap (DwRequantParams::lone_last_tap: taps % 4 == 1, as 3x3 and
// 5x5): its dwords are (x, 0, 0, 0): one load and two unpacks against zeros instead of four
// loads (the 3x3 kernels' 12 tap slots cost 9 + 1).
template <class Taps>
[[gnu::always_inline]] inline void lone_tap(__m256i (&a)[4], const int8_t* x, std::size_t len,
                                            const uint8_t* wg, int h) {
  const __m256i zero = _mm256_setzero_si256();
  const __m256i x0 = _mm256_xor_si256(load_x32(x, len), _mm256_set1_epi8(static_cast<char>(0x80)));
  const __m256i l = _mm256_unpacklo_epi8(x0, zero), hi = _mm256_unpackhi_epi8(x0, zero);
  a[0] = Taps::dot1(a[0], _mm256_unpacklo_epi16(l, zero), wg, 0, h);
  a[1] = Taps::dot1(a[1], _mm256_unpackhi_epi16(l, zero), wg, 1, h);
  a[2] = Taps::dot1(a[2], _mm256_unpacklo_epi16(hi, zero), wg, 2, h);
  a[3] = Taps::dot1(a[3], _mm256_unpackhi_epi16(hi, zero), wg, 3, h);
}

template <class Taps, bool kNeg, bool kPre, bool kHi>
void rows(std::size_t pixels, std::size_t channels, std::size_t groups,
          const int8_t* const* inputs0, std::size_t step, const int8_t* weights,
          const DwRequantParams& p, int8_t* out0) {
  const __m256i zp = _mm256_set1_epi32(p.out_zero_point);
  const __m256i qmin8 = _mm256_set1_epi8(static_cast<char>(p.out_min));
  const __m256i qmax8 = _mm256_set1_epi8(static_cast<char>(p.out_max));
  constexpr std::size_t kGroupBytes = Taps::kGroupBytes;
  const std::size_t full_groups = groups - (p.lone_last_tap != 0 ? 1 : 0);
  DwHalf k;
  for (std::size_t c = 0, b = 0; c < channels; c += 64, ++b) {
    const uint8_t* wb = reinterpret_cast<const uint8_t*>(weights) + b * groups * kGroupBytes;
    for (int h = 0; h < 2; ++h) {
      const std::size_t ch = c + 32 * static_cast<std::size_t>(h);
      if (ch >= channels) break;
      const std::size_t len = channels - ch < 32 ? channels - ch : 32;
      load_half<kHi>(p.blocks + 4 * b, h, kPre, zp, &k);
      for (std::size_t n = 0; n < pixels; ++n) {
        const int8_t* const* inputs = inputs0 + n * step;
        __m256i a[4];
        for (int q = 0; q < 4; ++q) a[q] = k.bias[q];
        for (std::size_t g = 0; g < full_groups; ++g) {
          group<Taps>(a, inputs + 4 * g, ch, len, wb + g * kGroupBytes, h);
        }
        if (full_groups < groups) {
          lone_tap<Taps>(a, inputs[4 * full_groups] + ch, len, wb + full_groups * kGroupBytes,
                         h);
        }
        store_half<kNeg, kPre, kHi>(a, k, qmin8, qmax8, out0 + n * channels + ch, len);
      }
    }
  }
}

// The requantisation variant, chosen once per call.
template <class Taps>
void dwconv(std::size_t pixels, std::size_t channels, std::size_t groups,
            const int8_t* const* inputs, std::size_t step, const int8_t* weights,
            const DwRequantParams& p, int8_t* out) {
  using Fn = decltype(&rows<Taps, false, false, false>);
  static constexpr Fn kVariants[2][4] = {
      {rows<Taps, false, false, false>, rows<Taps, false, true, false>,
       rows<Taps, true, false, false>, rows<Taps, true, true, false>},
      {rows<Taps, false, false, true>, rows<Taps, false, true, true>,
       rows<Taps, true, false, true>, rows<Taps, true, true, true>}};
  const int variant = (p.any_negative_add != 0 ? 2 : 0) + (p.any_pre_shift != 0 ? 1 : 0);
  kVariants[p.shift_32_53 != 0 ? 1 : 0][variant](pixels, channels, groups, inputs, step, weights,
                                                 p, out);
}

}  // namespace dw_ymm

}  // namespace
}  // namespace detail
}  // namespace edge
