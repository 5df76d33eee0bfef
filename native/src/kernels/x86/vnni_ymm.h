// The ymm VNNI GEMM kernels, written once over the dot-product step (`Dot::dpbusd`, vpdpbusd on
// 8 int32 lanes) and compiled twice:
//   * avxvnni.cc, -mavx2 -mfma -mavxvnni: Dot = the VEX form `_mm256_dpbusd_avx_epi32` (AVX-VNNI:
//     Alder Lake and newer client cores, N100-class boxes, Zen 5 without AVX-512). The table of
//     the `avxvnni` ISA; its names end in __avxvnni.
//   * native/tests/avxvnni_evex_twin.cc (test binary only), -mavx512vl -mavx512vnni: Dot = the
//     EVEX form `_mm256_dpbusd_epi32`, the same operation on the same ymm lanes. A host with
//     AVX-512 VNNI but no AVX-VNNI (this project's Zen 4 hosts) cannot execute the VEX
//     instruction (SIGILL; nor can qemu 7.2), so it runs every kernel test on this twin; a host
//     with AVX-VNNI runs them on the VEX table itself (docs/kernels.md, "Which host tests what").
//
// ODR: everything is in an anonymous namespace (ukernels.h): each includer gets its own copy
// compiled with its own flags.
//
// A 64-byte block of the layout is two ymm (channels 0-7 and 8-15, 4 k each); each field of it
// is one vpdpbusd operand, as on AVX-512 (avx512vnni.cc):
//   * sub-byte weights: the unsigned codes of a field (one 16-bit shift and an AND) against 4
//     int8 activations broadcast to every dword (the signed operand); exact, no int16 stage.
//   * int8 weights: the signed operand; activations enter as x + 128 (XFormat::kUint8) and the
//     plan subtracts 128 * sum(w) in the column term, as for avx512vnni.
// Per 16 channels x 4 k: 2 vpdpbusd against AVX2's 4 vpmaddubsw/vpmaddwd + adds (int8: 4
// vpmaddwd + 4 vpaddd after widening the weights to int16).
// The fused epilogue is AVX2's 64-bit multiply-add-shift (requant8_ymm.h, requant8): ymm has no
// 64-bit arithmetic shift, so the sum is biased by 2^63 and shifted logically.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/ukernels.h"
#include "kernels/x86/dw_ymm.h"
#include "kernels/x86/requant8_ymm.h"
#include "kernels/x86/ymm_io.h"

namespace edge {
namespace detail {
namespace {

namespace vnni_ymm {

using ymm_io::bcast32;
using ymm_io::load256;

// Rows per call of the multi-row kernels: int8 keeps 2R accumulators + 2 weight halves + a
// broadcast in the 16 ymm registers (R = 6: 15); sub-byte also holds a field and its mask.
constexpr int kInt8Mr = 6;
constexpr int kSubbyteMr = 4;

// Calls f(std::integral_constant<int, R>{}) with R = rows: one instantiation per row count up
// to the weight width's mr (kInt8Mr, kSubbyteMr): the one row switch of gemm, gemm_requant and
// igemm_requant (templates, not a macro). rows <= the kernel's mr is the GEMM contract
// (ukernels.h, the tables' mr), so there is no case above it.
template <int kBits, class F>
[[gnu::always_inline]] inline void with_rows(std::size_t rows, F&& f) {
  switch (rows) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    default: break;
  }
  if constexpr (kBits == 8) {
    if (rows == 5) return f(std::integral_constant<int, 5>{});
    return f(std::integral_constant<int, 6>{});
  }
}

// acc[r][h] += the dot products of nblocks blocks at w with row r's prepared activations at
// x[r] (channels 8h .. 8h + 7 in acc[r][h]).
template <class Dot, int kBits, int R>
[[gnu::always_inline]] inline void dot_span(__m256i (&a)[R][2], const uint8_t* const (&x)[R],
                                            std::size_t nblocks, const uint8_t* w) {
  if constexpr (kBits == 8) {
    for (std::size_t b = 0; b < nblocks; ++b) {
      const __m256i w0 = load256(w + 64 * b), w1 = load256(w + 64 * b + 32);
      for (int r = 0; r < R; ++r) {
        const __m256i xb = bcast32(x[r] + 4 * b);
        a[r][0] = Dot::dpbusd(a[r][0], xb, w0);
        a[r][1] = Dot::dpbusd(a[r][1], xb, w1);
      }
    }
  } else {
    constexpr int kFields = 8 / kBits;
    constexpr int kBlockK = 4 * kFields;
    const __m256i mask = _mm256_set1_epi8(static_cast<char>((1 << kBits) - 1));
    for (std::size_t b = 0; b < nblocks; ++b) {
      const __m256i lo = load256(w + 64 * b), hi = load256(w + 64 * b + 32);
      for (int i = 0; i < kFields; ++i) {
        const __m256i fl = _mm256_and_si256(i == 0 ? lo : _mm256_srli_epi16(lo, kBits * i), mask);
        const __m256i fh = _mm256_and_si256(i == 0 ? hi : _mm256_srli_epi16(hi, kBits * i), mask);
        for (int r = 0; r < R; ++r) {
          const __m256i xb = bcast32(x[r] + b * kBlockK + 4 * i);
          a[r][0] = Dot::dpbusd(a[r][0], fl, xb);
          a[r][1] = Dot::dpbusd(a[r][1], fh, xb);
        }
      }
    }
  }
}

// One row, four independent accumulator pairs (blocks b, b+1, b+2, b+3): vpdpbusd's latency
// (5 cycles on Golden Cove) would otherwise bound a single row's chain.
template <class Dot, int kBits>
inline void gemv(std::size_t, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                 std::size_t, int32_t* acc) {
  constexpr int kBlockK = kBits == 8 ? 4 : 4 * (8 / kBits);
  __m256i a[4][1][2];
  for (auto& v : a) v[0][0] = v[0][1] = _mm256_setzero_si256();
  std::size_t b = 0;
  for (; b + 4 <= nblocks; b += 4) {
    for (int u = 0; u < 4; ++u) {
      const uint8_t* xr[1] = {x + (b + u) * kBlockK};
      dot_span<Dot, kBits, 1>(a[u], xr, 1, w + 64 * (b + u));
    }
  }
  for (; b < nblocks; ++b) {
    const uint8_t* xr[1] = {x + b * kBlockK};
    dot_span<Dot, kBits, 1>(a[0], xr, 1, w + 64 * b);
  }
  for (int h = 0; h < 2; ++h) {
    const __m256i s = _mm256_add_epi32(_mm256_add_epi32(a[0][0][h], a[1][0][h]),
                                       _mm256_add_epi32(a[2][0][h], a[3][0][h]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + 8 * h), s);
  }
}

template <class Dot, int kBits, int R>
inline void gemm_rows(std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                      std::size_t x_stride, int32_t* acc) {
  __m256i a[R][2];
  const uint8_t* xr[R];
  for (int r = 0; r < R; ++r) {
    a[r][0] = a[r][1] = _mm256_setzero_si256();
    xr[r] = x + r * x_stride;
  }
  dot_span<Dot, kBits, R>(a, xr, nblocks, w);
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + 16 * r), a[r][0]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + 16 * r + 8), a[r][1]);
  }
}

template <class Dot, int kBits>
inline void gemm(std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                 std::size_t x_stride, int32_t* acc) {
  with_rows<kBits>(rows, [&](auto r) {
    gemm_rows<Dot, kBits, decltype(r)::value>(nblocks, w, x, x_stride, acc);
  });
}

// ------------------------------------------------------------------------------ activations
// Copies n int8 activations (x ^ 0x80 = x + 128 unsigned when kFlip: XFormat::kUint8) and returns
// their sum (of the int8 values), with vpsadbw on the flipped bytes.
template <bool kFlip>
inline int32_t prepare(const int8_t* src, std::size_t n, uint8_t* dst) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  __m256i sum = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    const __m256i f = _mm256_xor_si256(v, flip);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), kFlip ? f : v);
    sum = _mm256_add_epi64(sum, _mm256_sad_epu8(f, _mm256_setzero_si256()));
  }
  alignas(32) int64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), sum);
  int64_t total = lanes[0] + lanes[1] + lanes[2] + lanes[3] - 128 * static_cast<int64_t>(i);
  for (; i < n; ++i) {
    dst[i] = static_cast<uint8_t>(kFlip ? static_cast<uint8_t>(src[i]) ^ 0x80u
                                        : static_cast<uint8_t>(src[i]));
    total += src[i];
  }
  return static_cast<int32_t>(total);
}

// ------------------------------------------------------------------------------ fused epilogue
// AVX2's 64-bit multiply-add-shift form of EpilogueParams on 8 int32 lanes (Requant8,
// load_requant8, requant8, finish8, pack16_int8, store_bytes): requant8_ymm.h, one definition
// shared with avx2.cc, internal linkage so each includer keeps a copy built with its own flags.

// Requantises and stores R rows of 16 int32 sums (bias not yet added); the tile's tables are
// loaded once for the R rows.
template <int R>
inline void requant_store_rows(__m256i (&acc)[R][2], const int32_t* row_sums,
                               std::size_t sums_stride, const GemmQs8Params& p, std::size_t tile,
                               std::size_t nc, int8_t* out, std::size_t out_stride) {
  const std::size_t c0 = tile * 16;
  const RequantEvenOdd& t = p.tiles[tile];
  const bool neg = p.any_negative_add != 0;
  const bool has_wzp = p.wzp != nullptr || p.wzp_uniform != 0;
  __m256i bias[2], wzp[2], pre[2];
  Requant8 rq[2];
  for (int h = 0; h < 2; ++h) {
    bias[h] = load_i32(p.bias + c0 + 8 * h);
    wzp[h] = p.wzp != nullptr ? load_i32(p.wzp + c0 + 8 * h) : _mm256_set1_epi32(p.wzp_uniform);
    pre[h] = load_i32(p.pre_shift + c0 + 8 * h);
    rq[h] = load_requant8(t, h);
  }
  for (int r = 0; r < R; ++r) {
    __m256i y[2];
    const __m256i rs = _mm256_set1_epi32(has_wzp ? row_sums[r * sums_stride] : 0);
    for (int h = 0; h < 2; ++h) {
      __m256i v = _mm256_add_epi32(acc[r][h], bias[h]);
      if (has_wzp) v = _mm256_sub_epi32(v, _mm256_mullo_epi32(wzp[h], rs));
      if (p.any_pre_shift) v = _mm256_sllv_epi32(v, pre[h]);
      y[h] = finish8(requant8(v, rq[h], neg), p.out_zero_point, p.out_min, p.out_max);
    }
    store_bytes(out + r * out_stride, pack16_int8(y[0], y[1]), nc);
  }
}

template <class Dot, int kBits, int R>
inline void gemm_requant_rows(std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                              std::size_t x_stride, const int32_t* row_sums,
                              std::size_t sums_stride, const GemmQs8Params& p, std::size_t tile,
                              std::size_t nc, int8_t* out, std::size_t out_stride) {
  __m256i a[R][2];
  const uint8_t* xr[R];
  for (int r = 0; r < R; ++r) {
    a[r][0] = a[r][1] = _mm256_setzero_si256();
    xr[r] = x + r * x_stride;
  }
  dot_span<Dot, kBits, R>(a, xr, nblocks, w);
  requant_store_rows<R>(a, row_sums, sums_stride, p, tile, nc, out, out_stride);
}

template <class Dot, int kBits>
inline void gemm_requant(std::size_t rows, std::size_t nblocks, const uint8_t* w,
                         const uint8_t* x, std::size_t x_stride, const int32_t* row_sums,
                         std::size_t sums_stride, const GemmQs8Params& p, std::size_t tile,
                         std::size_t nc, int8_t* out, std::size_t out_stride) {
  with_rows<kBits>(rows, [&](auto r) {
    gemm_requant_rows<Dot, kBits, decltype(r)::value>(nblocks, w, x, x_stride, row_sums,
                                                      sums_stride, p, tile, nc, out, out_stride);
  });
}

// Indirect (im2col-free) conv: each row's pieces taken tap by tap from the indirection buffer.
template <class Dot, int kBits, int R>
inline void igemm_requant_rows(std::size_t taps, std::size_t blocks_per_tap, const uint8_t* w,
                               const uint8_t* const* ind, const int32_t* row_sums,
                               const GemmQs8Params& p, std::size_t tile, std::size_t nc,
                               int8_t* out, std::size_t out_stride) {
  __m256i a[R][2];
  for (int r = 0; r < R; ++r) a[r][0] = a[r][1] = _mm256_setzero_si256();
  for (std::size_t t = 0; t < taps; ++t) {
    const uint8_t* xr[R];
    for (int r = 0; r < R; ++r) xr[r] = ind[r * taps + t];
    dot_span<Dot, kBits, R>(a, xr, blocks_per_tap, w + t * blocks_per_tap * 64);
  }
  requant_store_rows<R>(a, row_sums, 1, p, tile, nc, out, out_stride);
}

template <class Dot, int kBits>
inline void igemm_requant(std::size_t rows, std::size_t taps, std::size_t blocks_per_tap,
                          const uint8_t* w, const uint8_t* const* ind, const int32_t* row_sums,
                          const GemmQs8Params& p, std::size_t tile, std::size_t nc, int8_t* out,
                          std::size_t out_stride) {
  with_rows<kBits>(rows, [&](auto r) {
    igemm_requant_rows<Dot, kBits, decltype(r)::value>(taps, blocks_per_tap, w, ind, row_sums,
                                                       p, tile, nc, out, out_stride);
  });
}

// Depthwise (dw_ymm.h's fused kernel): one vpdpbusd per accumulator and group of 4 taps, the
// packed 64c4 weights as its signed operand (never the AVX2 tier's widened copy:
// depthwise_conv2d.cc widens only for Isa::kAvx2), where AVX2 spends two vpmaddwd, the
// even / odd split of the activations and two vpaddd. A lone last tap's zero bytes add 0.
template <class Dot>
struct DwTaps {
  static constexpr std::size_t kGroupBytes = 256;
  [[gnu::always_inline]] static __m256i dot4(__m256i acc, __m256i u, const uint8_t* wg, int q,
                                             int h) {
    return Dot::dpbusd(acc, u, load256(wg + 64 * q + 32 * h));
  }
  [[gnu::always_inline]] static __m256i dot1(__m256i acc, __m256i u, const uint8_t* wg, int q,
                                             int h) {
    return dot4(acc, u, wg, q, h);
  }
};

}  // namespace vnni_ymm
}  // namespace
}  // namespace detail
}  // namespace edge
