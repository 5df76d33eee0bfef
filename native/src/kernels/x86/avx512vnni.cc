// x86 AVX-512 VNNI kernels (vpdpbusd on zmm). Compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512vnni (plus AVX2: depthwise and the epilogues reuse the AVX2 code); called only when
// the CPU has all of them (isa.cc).
//
// A 64-byte block of the layout is exactly one zmm, and each field of it is one vpdpbusd operand
// (16 channels x 4 k). vpdpbusd multiplies unsigned bytes by signed bytes into int32 with no
// intermediate saturation, so:
//   * sub-byte weights: codes are the unsigned operand, activations (broadcast 4 at a time with
//     an embedded broadcast) the signed one. For M = 1 the fields are not even shifted: the
//     masked byte (code << 2i) goes straight in, into one accumulator per field, and the four
//     accumulators are shifted back (exactly: they are multiples of 4^i) at the end. That is one
//     AND and one vpdpbusd per 16x4 products, with no int16 overflow to manage.
//   * int8 weights: they are the signed operand; activations are made unsigned (x + 128, the
//     XFormat::kUint8 rows) and 128 * sum(w) is subtracted in the epilogue's column term.
// GCC 12's AVX-512 headers trip -Wuninitialized on their own _mm512_undefined_epi32() once
// inlined (GCC bug 105593, fixed in GCC 13); nothing in this file is uninitialised.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/ukernels.h"
#include "kernels/x86/requant16_zmm.h"
#include "kernels/x86/row_sums_ymm.h"
#include "kernels/x86/ymm_io.h"

namespace edge {
namespace detail {

// The AVX2 float epilogue (avx2.cc) serves this ISA too.
void dequant_avx2(std::size_t n, const int32_t* acc, int32_t row_sum, const EpilogueParams& p,
                  std::size_t c0, float* out);

namespace {

inline __m512i load512(const uint8_t* p) { return _mm512_loadu_si512(p); }

inline __m512i bcast32(const uint8_t* p) { return _mm512_set1_epi32(ymm_io::load4(p)); }

inline void store16(int32_t* acc, __m512i v) { _mm512_storeu_si512(acc, v); }

// ------------------------------------------------------------------------------ sub-byte, M = 1
template <int kBits>
void gemv_subbyte(std::size_t, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                  std::size_t, int32_t* acc) {
  constexpr int kFields = 8 / kBits;
  constexpr int kBlockK = 4 * kFields;
  // kUnroll blocks per iteration with their own accumulators: vpdpbusd has a latency of several
  // cycles, so each accumulator chain must take at most one per iteration (8 chains in all).
  constexpr int kUnroll = 8 / kFields;
  __m512i a[kUnroll][kFields];
  __m512i m[kFields];
  for (int i = 0; i < kFields; ++i) {
    for (int u = 0; u < kUnroll; ++u) a[u][i] = _mm512_setzero_si512();
    m[i] = _mm512_set1_epi8(static_cast<char>(((1 << kBits) - 1) << (kBits * i)));
  }
  std::size_t b = 0;
  for (; b + kUnroll <= nblocks; b += kUnroll) {
    for (int u = 0; u < kUnroll; ++u) {
      const __m512i raw = load512(w + (b + u) * 64);
      const uint8_t* xb = x + (b + u) * kBlockK;
      for (int i = 0; i < kFields; ++i) {
        a[u][i] = _mm512_dpbusd_epi32(a[u][i], _mm512_and_si512(raw, m[i]), bcast32(xb + 4 * i));
      }
    }
  }
  for (; b < nblocks; ++b) {
    const __m512i raw = load512(w + b * 64);
    const uint8_t* xb = x + b * kBlockK;
    for (int i = 0; i < kFields; ++i) {
      a[0][i] = _mm512_dpbusd_epi32(a[0][i], _mm512_and_si512(raw, m[i]), bcast32(xb + 4 * i));
    }
  }
  // Field i was multiplied as (code << kBits*i): its sums are exact multiples of 2^(kBits*i).
  __m512i sum = _mm512_setzero_si512();
  for (int i = 0; i < kFields; ++i) {
    __m512i f = a[0][i];
    for (int u = 1; u < kUnroll; ++u) f = _mm512_add_epi32(f, a[u][i]);
    sum = _mm512_add_epi32(sum, i == 0 ? f : _mm512_srai_epi32(f, kBits * i));
  }
  store16(acc, sum);
}

// ------------------------------------------------------------------------------ sub-byte, M <= 8
template <int kBits, int R>
void gemm_subbyte_rows(std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                       std::size_t x_stride, int32_t* acc) {
  constexpr int kFields = 8 / kBits;
  constexpr int kBlockK = 4 * kFields;
  const __m512i mask = _mm512_set1_epi8(static_cast<char>((1 << kBits) - 1));
  __m512i a[R];
  for (int r = 0; r < R; ++r) a[r] = _mm512_setzero_si512();
  for (std::size_t b = 0; b < nblocks; ++b) {
    const __m512i raw = load512(w + b * 64);
    for (int i = 0; i < kFields; ++i) {
      const __m512i f =
          _mm512_and_si512(i == 0 ? raw : _mm512_srli_epi16(raw, kBits * i), mask);
      for (int r = 0; r < R; ++r) {
        a[r] = _mm512_dpbusd_epi32(a[r], f, bcast32(x + r * x_stride + b * kBlockK + 4 * i));
      }
    }
  }
  for (int r = 0; r < R; ++r) store16(acc + 16 * r, a[r]);
}

template <int kBits>
void gemm_subbyte(std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                  std::size_t x_stride, int32_t* acc) {
  switch (rows) {
    case 1: gemm_subbyte_rows<kBits, 1>(nblocks, w, x, x_stride, acc); break;
    case 2: gemm_subbyte_rows<kBits, 2>(nblocks, w, x, x_stride, acc); break;
    case 3: gemm_subbyte_rows<kBits, 3>(nblocks, w, x, x_stride, acc); break;
    case 4: gemm_subbyte_rows<kBits, 4>(nblocks, w, x, x_stride, acc); break;
    case 5: gemm_subbyte_rows<kBits, 5>(nblocks, w, x, x_stride, acc); break;
    case 6: gemm_subbyte_rows<kBits, 6>(nblocks, w, x, x_stride, acc); break;
    case 7: gemm_subbyte_rows<kBits, 7>(nblocks, w, x, x_stride, acc); break;
    default: gemm_subbyte_rows<kBits, 8>(nblocks, w, x, x_stride, acc); break;
  }
}

// ------------------------------------------------------------------------------ int8
// x rows are x + 128 as uint8 (XFormat::kUint8); weights the signed operand.
template <int R>
void gemm_int8_rows(std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                    std::size_t x_stride, int32_t* acc) {
  if (R == 1) {
    // Eight accumulators: one vpdpbusd per block, so fewer chains would be latency-bound.
    __m512i a[8];
    for (auto& v : a) v = _mm512_setzero_si512();
    std::size_t b = 0;
    for (; b + 8 <= nblocks; b += 8) {
      for (int u = 0; u < 8; ++u) {
        a[u] = _mm512_dpbusd_epi32(a[u], bcast32(x + 4 * (b + u)), load512(w + 64 * (b + u)));
      }
    }
    for (; b < nblocks; ++b) a[0] = _mm512_dpbusd_epi32(a[0], bcast32(x + 4 * b), load512(w + 64 * b));
    for (int u = 1; u < 8; ++u) a[0] = _mm512_add_epi32(a[0], a[u]);
    store16(acc, a[0]);
    return;
  }
  __m512i a[R];
  for (int r = 0; r < R; ++r) a[r] = _mm512_setzero_si512();
  for (std::size_t b = 0; b < nblocks; ++b) {
    const __m512i wb = load512(w + 64 * b);
    for (int r = 0; r < R; ++r) a[r] = _mm512_dpbusd_epi32(a[r], bcast32(x + r * x_stride + 4 * b), wb);
  }
  for (int r = 0; r < R; ++r) store16(acc + 16 * r, a[r]);
}

void gemm_int8(std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
               std::size_t x_stride, int32_t* acc) {
  switch (rows) {
    case 1: gemm_int8_rows<1>(nblocks, w, x, x_stride, acc); break;
    case 2: gemm_int8_rows<2>(nblocks, w, x, x_stride, acc); break;
    case 3: gemm_int8_rows<3>(nblocks, w, x, x_stride, acc); break;
    case 4: gemm_int8_rows<4>(nblocks, w, x, x_stride, acc); break;
    case 5: gemm_int8_rows<5>(nblocks, w, x, x_stride, acc); break;
    case 6: gemm_int8_rows<6>(nblocks, w, x, x_stride, acc); break;
    case 7: gemm_int8_rows<7>(nblocks, w, x, x_stride, acc); break;
    default: gemm_int8_rows<8>(nblocks, w, x, x_stride, acc); break;
  }
}

// ------------------------------------------------------------------------------ int8, fused
// The int8 epilogue's helpers (TileRequant, load_tile_requant, requant16, clamp8,
// plain_requant) live in requant16_zmm.h, shared with the AMX tier.

// Rows go four at a time through the packed epilogue (requant16_zmm.h): after vpackssdw (rows 0+1,
// 2+3) and vpacksswb, 128-bit lane i holds channels 4i..4i+3 of rows 0, 1, 2, 3 as dwords
// 4i, 4i+1, 4i+2, 4i+3; the vpermd below gathers row r's dwords r, 4+r, 8+r, 12+r into lane r.
// A group of fewer than four rows repeats its last row and stores only its own.
template <int R, bool kPlain, bool kHigh>
EDGE_AVX512_INLINE void packed_rows(const __m512i* a, const int32_t* row_sums,
                                    std::size_t sums_stride, const GemmQs8Params& p,
                                    const TileRequant& q, std::size_t nc, int8_t* out,
                                    std::size_t out_stride) {
  const __m512i lo = _mm512_set1_epi8(static_cast<char>(p.out_min));
  const __m512i hi = _mm512_set1_epi8(static_cast<char>(p.out_max));
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __mmask16 k = static_cast<__mmask16>((1u << nc) - 1u);
  // Both loops unrolled, so that every a[r] is a register: left rolled, GCC 12 kept the
  // accumulators on the stack (stored after the dot products, read back here).
#pragma GCC unroll 2
  for (int r0 = 0; r0 < R; r0 += 4) {
    __m512i y[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      const int r = r0 + i < R ? r0 + i : R - 1;
      const int32_t sum = !kPlain && q.has_wzp ? row_sums[r * sums_stride] : 0;
      y[i] = r0 + i < R || i == 0 ? requant16<kPlain, false, kHigh>(a[r], sum, q) : y[i - 1];
    }
    const __m512i v = clamp8(
        _mm512_permutexvar_epi32(order, _mm512_packs_epi16(_mm512_packs_epi32(y[0], y[1]),
                                                           _mm512_packs_epi32(y[2], y[3]))),
        q, lo, hi);
    if (r0 + 4 <= R && nc == 16 && out_stride == 16) {
      // A layer of 16 outputs (80x80x32 -> 16): the four rows are 64 contiguous bytes, in the
      // lanes' order: one store where the rows took three extracts and four.
      _mm512_storeu_si512(out + r0 * 16, v);
      continue;
    }
    const __m128i rows[4] = {_mm512_castsi512_si128(v), _mm512_extracti32x4_epi32(v, 1),
                             _mm512_extracti32x4_epi32(v, 2), _mm512_extracti32x4_epi32(v, 3)};
    for (int i = 0; i < 4 && r0 + i < R; ++i) {
      int8_t* dst = out + (r0 + i) * out_stride;
      if (nc == 16) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), rows[i]);
      } else {
        _mm_mask_storeu_epi8(dst, k, rows[i]);
      }
    }
  }
}

// The int8-weight kernels' epilogue: the tables of the tile in registers (TileRequant), then
// each row requantised and stored at once, with no array of results between the two loops.
// GCC kept the former requant_store_rows' y[R] (and the accumulators) on the stack in the int8
// kernels; this form keeps them in registers: small-K 1x1 convolutions 8-9 % faster on Zen 4
// (80x80x16 -> 96: 0.174 -> 0.159 ms, 40x40x24 -> 144: 0.071 -> 0.065 ms, minimum of 300
// calls). The sub-byte kernels kept requant_store_rows until packed_rows' loops were unrolled
// (its accumulators then stayed in registers too): with this epilogue their small-K 1x1 layers
// are 4-18 % faster (int2 80x80x16 -> 96: 0.218 -> 0.182 ms, Zen 4), so every fused AVX-512
// kernel uses it. The rows go through the packed epilogue (packed_rows), in the high-dword
// form where it applies.
template <int R, bool kPlain = false>
EDGE_AVX512_INLINE void requant_store_rows_each(const __m512i* a, const int32_t* row_sums,
                                                std::size_t sums_stride, const GemmQs8Params& p,
                                                std::size_t tile, std::size_t nc, int8_t* out,
                                                std::size_t out_stride) {
  const TileRequant q = load_tile_requant(p, tile);
  if (q.high) {
    packed_rows<R, kPlain, true>(a, row_sums, sums_stride, p, q, nc, out, out_stride);
  } else {
    packed_rows<R, kPlain, false>(a, row_sums, sums_stride, p, q, nc, out, out_stride);
  }
}

// Two tiles' rows (a: channels 0-15, b: 16 .. nc-1 of the call) through the packed epilogue:
// each tile's rows requantised with its tables and narrowed in pairs to int16 (vpackssdw of
// rows r, r + 1: lane i = rows r, r + 1 at channels 4i..4i+3), one tile's tables live at a
// time; then per row pair one vpacksswb of the two tiles' words (lane i: dwords a_r, a_r+1,
// b_r, b_r+1) and one vpermd: row r's 32 bytes in the low half, row r + 1's in the high half.
// One tile's rows of requant_store_rows_x2, requantised with that tile's tables and narrowed
// in pairs to int16 (w[j]: rows 2j, 2j + 1). Called once per tile with the tile's own array, so
// that both arrays stay in registers: selecting the array inside a loop over the two tiles
// (`acc = t == 0 ? a : b`) made GCC 12 keep all 2R accumulators on the stack, stored after the
// dot products and read back by the epilogue.
template <int R, bool kPlain, bool kHigh>
EDGE_AVX512_INLINE void requant_pairs(const __m512i* acc, const int32_t* row_sums,
                                      const TileRequant& q, __m512i* w) {
#pragma GCC unroll 8
  for (int j = 0; j < (R + 1) / 2; ++j) {
    const int r = 2 * j, r1 = 2 * j + 1 < R ? 2 * j + 1 : 2 * j;
    const int32_t s0 = !kPlain && q.has_wzp ? row_sums[r] : 0;
    const int32_t s1 = !kPlain && q.has_wzp ? row_sums[r1] : 0;
    const __m512i y0 = requant16<kPlain, false, kHigh>(acc[r], s0, q);
    const __m512i y1 = r1 == r ? y0 : requant16<kPlain, false, kHigh>(acc[r1], s1, q);
    w[j] = _mm512_packs_epi32(y0, y1);
  }
}

template <int R, bool kPlain>
EDGE_AVX512_INLINE void requant_tile_pairs(const __m512i* acc, const int32_t* row_sums,
                                           const GemmQs8Params& p, std::size_t tile, __m512i* w,
                                           bool* clamp_min, bool* clamp_max) {
  const TileRequant q = load_tile_requant(p, tile);
  *clamp_min = q.clamp_min, *clamp_max = q.clamp_max;
  if (q.high) {
    requant_pairs<R, kPlain, true>(acc, row_sums, q, w);
  } else {
    requant_pairs<R, kPlain, false>(acc, row_sums, q, w);
  }
}

// Two tiles' rows (a: channels 0-15, b: 16 .. nc-1 of the call) through the packed epilogue:
// each tile's rows requantised with its tables and narrowed in pairs to int16 (vpackssdw of
// rows r, r + 1: lane i = rows r, r + 1 at channels 4i..4i+3), one tile's tables live at a
// time; then per row pair one vpacksswb of the two tiles' words (lane i: dwords a_r, a_r+1,
// b_r, b_r+1) and one vpermd: row r's 32 bytes in the low half, row r + 1's in the high half.
template <int R, bool kPlain>
EDGE_AVX512_INLINE void requant_store_rows_x2(const __m512i* a, const __m512i* b,
                                              const int32_t* row_sums, const GemmQs8Params& p,
                                              std::size_t tile, std::size_t nc, int8_t* out,
                                              std::size_t out_stride) {
  constexpr int kPairs = (R + 1) / 2;
  __m512i wa[kPairs], wb[kPairs];
  bool clamp_min = false, clamp_max = false;
  requant_tile_pairs<R, kPlain>(a, row_sums, p, tile, wa, &clamp_min, &clamp_max);
  requant_tile_pairs<R, kPlain>(b, row_sums, p, tile + 1, wb, &clamp_min, &clamp_max);
  const __m512i lo = _mm512_set1_epi8(static_cast<char>(p.out_min));
  const __m512i hi = _mm512_set1_epi8(static_cast<char>(p.out_max));
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 1, 5, 9, 13, 3, 7, 11, 15);
  const __mmask32 k = nc >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << nc) - 1u);
  for (int j = 0; j < kPairs; ++j) {
    __m512i v = _mm512_permutexvar_epi32(order, _mm512_packs_epi16(wa[j], wb[j]));
    if (clamp_min) v = _mm512_max_epi8(v, lo);
    if (clamp_max) v = _mm512_min_epi8(v, hi);
    int8_t* dst = out + 2 * j * out_stride;
    if (nc >= 32) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_castsi512_si256(v));
      if (2 * j + 1 < R) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + out_stride),
                            _mm512_extracti64x4_epi64(v, 1));
      }
    } else {
      _mm256_mask_storeu_epi8(dst, k, _mm512_castsi512_si256(v));
      if (2 * j + 1 < R) _mm256_mask_storeu_epi8(dst + out_stride, k, _mm512_extracti64x4_epi64(v, 1));
    }
  }
}

// R rows x 16 channels; the accumulators start at the bias. The per-channel tables are read
// once per call (R rows share them: at K = 32 the epilogue costs as much as the dot products).
template <int R>
void gemm_int8_requant_rows(std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                            std::size_t x_stride, const int32_t* row_sums, std::size_t sums_stride,
                            const GemmQs8Params& p, std::size_t tile, std::size_t nc, int8_t* out,
                            std::size_t out_stride) {
  const std::size_t c0 = tile * 16;
  const __m512i bias = _mm512_loadu_si512(p.bias + c0);
  __m512i a[R];
  if (R == 1) {
    // Four chains: one vpdpbusd per block would otherwise wait on its own latency.
    __m512i b4[4] = {bias, _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    std::size_t b = 0;
    for (; b + 4 <= nblocks; b += 4) {
      for (int u = 0; u < 4; ++u) {
        b4[u] = _mm512_dpbusd_epi32(b4[u], bcast32(x + 4 * (b + u)), load512(w + 64 * (b + u)));
      }
    }
    for (; b < nblocks; ++b) b4[0] = _mm512_dpbusd_epi32(b4[0], bcast32(x + 4 * b), load512(w + 64 * b));
    a[0] = _mm512_add_epi32(_mm512_add_epi32(b4[0], b4[1]), _mm512_add_epi32(b4[2], b4[3]));
  } else {
    for (int r = 0; r < R; ++r) a[r] = bias;
    for (std::size_t b = 0; b < nblocks; ++b) {
      const __m512i wb = load512(w + 64 * b);
      for (int r = 0; r < R; ++r) a[r] = _mm512_dpbusd_epi32(a[r], bcast32(x + r * x_stride + 4 * b), wb);
    }
  }
  requant_store_rows_each<R>(a, row_sums, sums_stride, p, tile, nc, out, out_stride);
}

// Sub-byte weights, fused: gemm_subbyte_rows' dot products kept in registers, then the same
// epilogue (weight zero points through the row sums).
template <int kBits, int R>
void gemm_subbyte_requant_rows(std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                               std::size_t x_stride, const int32_t* row_sums,
                               std::size_t sums_stride, const GemmQs8Params& p, std::size_t tile,
                               std::size_t nc, int8_t* out, std::size_t out_stride) {
  constexpr int kFields = 8 / kBits;
  constexpr int kBlockK = 4 * kFields;
  const __m512i mask = _mm512_set1_epi8(static_cast<char>((1 << kBits) - 1));
  const __m512i bias = _mm512_loadu_si512(p.bias + tile * 16);
  __m512i a[R];
  for (int r = 0; r < R; ++r) a[r] = bias;
  for (std::size_t b = 0; b < nblocks; ++b) {
    const __m512i raw = load512(w + b * 64);
    for (int i = 0; i < kFields; ++i) {
      const __m512i f =
          _mm512_and_si512(i == 0 ? raw : _mm512_srli_epi16(raw, kBits * i), mask);
      for (int r = 0; r < R; ++r) {
        a[r] = _mm512_dpbusd_epi32(a[r], f, bcast32(x + r * x_stride + b * kBlockK + 4 * i));
      }
    }
  }
  requant_store_rows_each<R>(a, row_sums, sums_stride, p, tile, nc, out, out_stride);
}

template <int kBits>
void gemm_subbyte_requant(std::size_t rows, std::size_t nblocks, const uint8_t* w,
                          const uint8_t* x, std::size_t x_stride, const int32_t* row_sums,
                          std::size_t sums_stride, const GemmQs8Params& p, std::size_t tile,
                          std::size_t nc, int8_t* out, std::size_t out_stride) {
  using Fn = decltype(&gemm_subbyte_requant_rows<kBits, 1>);
  static constexpr Fn kByRows[8] = {
      gemm_subbyte_requant_rows<kBits, 1>, gemm_subbyte_requant_rows<kBits, 2>,
      gemm_subbyte_requant_rows<kBits, 3>, gemm_subbyte_requant_rows<kBits, 4>,
      gemm_subbyte_requant_rows<kBits, 5>, gemm_subbyte_requant_rows<kBits, 6>,
      gemm_subbyte_requant_rows<kBits, 7>, gemm_subbyte_requant_rows<kBits, 8>};
  kByRows[(rows < 8 ? rows : 8) - 1](nblocks, w, x, x_stride, row_sums, sums_stride, p, tile, nc,
                                     out, out_stride);
}

void gemm_int8_requant(std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                       std::size_t x_stride, const int32_t* row_sums, std::size_t sums_stride,
                       const GemmQs8Params& p, std::size_t tile, std::size_t nc, int8_t* out,
                       std::size_t out_stride) {
  using Fn = decltype(&gemm_int8_requant_rows<1>);
  static constexpr Fn kByRows[8] = {gemm_int8_requant_rows<1>, gemm_int8_requant_rows<2>,
                                    gemm_int8_requant_rows<3>, gemm_int8_requant_rows<4>,
                                    gemm_int8_requant_rows<5>, gemm_int8_requant_rows<6>,
                                    gemm_int8_requant_rows<7>, gemm_int8_requant_rows<8>};
  kByRows[(rows < 8 ? rows : 8) - 1](nblocks, w, x, x_stride, row_sums, sums_stride, p, tile, nc,
                                     out, out_stride);
}

// ------------------------------------------------------------------------------ indirect, fused
// A tile's accumulators: a zmm (16 channels) or, for a tile of 8 channels or fewer, a ymm (the
// low 32 bytes of each c4 block are channels 0-7, int8 and sub-byte alike). A specialisation,
// not std::conditional_t: a vector type as a template argument drops its attributes (GCC's
// -Wignored-attributes).
template <bool kHalf>
struct TileVec {
  using type = __m512i;
  static __m512i load(const void* p) { return _mm512_loadu_si512(p); }
  static __m512i bcast(const uint8_t* p) { return bcast32(p); }
  // x + 128 of 4 int8 activations in every dword (vpxord with an embedded broadcast)
  static __m512i bcast_flip(const uint8_t* p, __m512i flip) {
    return _mm512_xor_si512(bcast32(p), flip);
  }
  static __m512i dot(__m512i a, __m512i u, __m512i s) { return _mm512_dpbusd_epi32(a, u, s); }
  static __m512i field(__m512i raw, int shift, __m512i mask) {
    return _mm512_and_si512(shift == 0 ? raw : _mm512_srli_epi16(raw, shift), mask);
  }
  static __m512i splat8(char v) { return _mm512_set1_epi8(v); }
  static __m512i widen(__m512i v) { return v; }
  static __m512i narrow(__m512i v) { return v; }
};
template <>
struct TileVec<true> {
  using type = __m256i;
  static __m256i load(const void* p) { return ymm_io::load256(p); }
  static __m256i bcast(const uint8_t* p) { return ymm_io::bcast32(p); }
  static __m256i bcast_flip(const uint8_t* p, __m256i flip) {
    return _mm256_xor_si256(ymm_io::bcast32(p), flip);
  }
  static __m256i dot(__m256i a, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(a, u, s); }
  static __m256i field(__m256i raw, int shift, __m256i mask) {
    return _mm256_and_si256(shift == 0 ? raw : _mm256_srli_epi16(raw, shift), mask);
  }
  static __m256i splat8(char v) { return _mm256_set1_epi8(v); }
  // zero high lanes: requantised like any and dropped by the store mask (nc <= 8)
  static __m512i widen(__m256i v) { return _mm512_zextsi256_si512(v); }
  // a zmm broadcast's low half (its 4 bytes repeat in every lane)
  static __m256i narrow(__m512i v) { return _mm512_castsi512_si256(v); }
};

// The fused GEMM's inner loop with the rows' addresses taken from an indirection buffer, one
// pointer per row and tap (IgemmQs8Fn): no im2col copy. kBits = 8: int8 weights (the signed
// operand) against x + 128; kBits = 4 / 2: unsigned codes against the int8 activations, the
// fields of a block taken as in gemm_subbyte_requant_rows.
// kHalf: a tile of 8 channels or fewer (a 24- or 40-output layer's last one) on ymm vectors,
// where a zmm formed 16 channels and the store mask dropped 8 (Zen 4 runs a zmm vpdpbusd as
// two 256-bit halves).
// kRaw (int8 weights): the rows are the int8 activations as they are, not x + 128; each 4-byte
// broadcast is flipped in the register (one vpxord, its broadcast embedded), so that 1x1 rows
// are read in place with no pass over the input (the `_raw` kernels).
template <int kBits, int R, bool kPlain = false, bool kHalf = false, bool kRaw = false>
void igemm_requant_rows(std::size_t taps, std::size_t blocks_per_tap, const uint8_t* w,
                        const uint8_t* const* ind, const int32_t* row_sums,
                        const GemmQs8Params& p, std::size_t tile, std::size_t nc, int8_t* out,
                        std::size_t out_stride) {
  using V = TileVec<kHalf>;
  using Vec = typename V::type;
  constexpr int kFields = kBits == 8 ? 1 : 8 / kBits;
  constexpr int kBlockK = 4 * kFields;
  static_assert(!kRaw || kBits == 8, "raw rows: int8 weights only");
  const Vec mask = V::splat8(static_cast<char>(kBits == 8 ? 0xFF : (1 << kBits) - 1));
  const Vec flip = V::splat8(static_cast<char>(0x80));
  const Vec bias = V::load(p.bias + tile * 16);
  Vec a[R];
  for (int r = 0; r < R; ++r) a[r] = bias;
  for (std::size_t t = 0; t < taps; ++t) {
    const uint8_t* x[R];
    for (int r = 0; r < R; ++r) x[r] = ind[r * taps + t];
    const uint8_t* wt = w + t * blocks_per_tap * 64;
    for (std::size_t b = 0; b < blocks_per_tap; ++b) {
      const Vec raw = V::load(wt + 64 * b);
      if (kBits == 8) {
        for (int r = 0; r < R; ++r) {
          a[r] = V::dot(a[r], kRaw ? V::bcast_flip(x[r] + 4 * b, flip) : V::bcast(x[r] + 4 * b),
                        raw);
        }
      } else {
        for (int i = 0; i < kFields; ++i) {
          const Vec f = V::field(raw, kBits * i, mask);
          for (int r = 0; r < R; ++r) {
            a[r] = V::dot(a[r], f, V::bcast(x[r] + b * kBlockK + 4 * i));
          }
        }
      }
    }
  }
  if constexpr (kHalf) {  // a copy only here: the zmm path hands its own array on
    __m512i wide[R];
    for (int r = 0; r < R; ++r) wide[r] = V::widen(a[r]);
    requant_store_rows_each<R, kBits == 8 && kPlain>(wide, row_sums, 1, p, tile, nc, out,
                                                     out_stride);
  } else {
    requant_store_rows_each<R, kBits == 8 && kPlain>(a, row_sums, 1, p, tile, nc, out,
                                                     out_stride);
  }
}

using IgemmRowsFn = decltype(&igemm_requant_rows<8, 1>);

// igemm_requant_rows for 1 .. 8 rows, one variant of the epilogue and tile width.
template <int kBits, bool kPlain, bool kHalf, bool kRaw, int... kRows>
constexpr std::array<IgemmRowsFn, 8> rows_table(std::integer_sequence<int, kRows...>) {
  return {{igemm_requant_rows<kBits, kRows + 1, kPlain, kHalf, kRaw>...}};
}

template <int kBits, bool kRaw = false>
void igemm_requant(std::size_t rows, std::size_t taps, std::size_t blocks_per_tap,
                   const uint8_t* w, const uint8_t* const* ind, const int32_t* row_sums,
                   const GemmQs8Params& p, std::size_t tile, std::size_t nc, int8_t* out,
                   std::size_t out_stride) {
  constexpr auto kEight = std::make_integer_sequence<int, 8>{};
  constexpr bool kPlainOk = kBits == 8;  // the plain epilogue serves int8 weights only
  // [tile of <= 8 channels][plain epilogue][rows - 1]
  static constexpr std::array<IgemmRowsFn, 8> kByRows[2][2] = {
      {rows_table<kBits, false, false, kRaw>(kEight),
       rows_table<kBits, kPlainOk, false, kRaw>(kEight)},
      {rows_table<kBits, false, true, kRaw>(kEight), rows_table<kBits, kPlainOk, true, kRaw>(kEight)}};
  const int plain = kBits == 8 && plain_requant(p) ? 1 : 0;
  kByRows[nc <= 8 ? 1 : 0][plain][(rows < 8 ? rows : 8) - 1](taps, blocks_per_tap, w, ind,
                                                             row_sums, p, tile, nc, out,
                                                             out_stride);
}

// int8 weights, two 16-channel tiles per call (channels 16 tile .. 16 tile + nc, nc in 17..32):
// each activation broadcast feeds two vpdpbusd, one per tile (tile + 1's weights follow tile's,
// taps * blocks_per_tap blocks later), so the broadcasts and pointer loads per product halve.
// The epilogue requantises the first tile's rows, then the second's (one tile's tables live at
// a time, next to the other tile's accumulators).
// kHalf (nc <= 24: the 1x1 layers with 24 outputs): the second tile's channels 16 tile + 16 ..
// + 23 are the low 32 bytes of each of its blocks (4 k per channel, channel order), so its dot
// products run on a ymm (vpdpbusd ymm, AVX512VL) and its accumulators' high half stays zero:
// Zen 4 runs a zmm vpdpbusd as two 256-bit halves, so the call does 3 halves per block and row
// where it did 4, every one of the 4th's results dropped by the store mask. The epilogue is the
// two-tile one (the zero high lanes are requantised and masked off): bit-exact by construction.
template <int R, bool kPlain, bool kHalf, bool kRaw>
void igemm_requant_rows_x2(std::size_t taps, std::size_t blocks_per_tap, const uint8_t* w,
                           const uint8_t* const* ind, const int32_t* row_sums,
                           const GemmQs8Params& p, std::size_t tile, std::size_t nc, int8_t* out,
                           std::size_t out_stride) {
  const std::size_t tile_bytes = taps * blocks_per_tap * 64;
  // The second tile's accumulators: a zmm per row, or (kHalf) a ymm, widened with zero high
  // lanes for the epilogue.
  using V = TileVec<kHalf>;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i a[R];
  typename V::type b[R];
  {
    const __m512i bias0 = _mm512_loadu_si512(p.bias + tile * 16);
    const auto bias1 = V::load(p.bias + tile * 16 + 16);
    for (int r = 0; r < R; ++r) a[r] = bias0, b[r] = bias1;
  }
  for (std::size_t t = 0; t < taps; ++t) {
    const uint8_t* x[R];
    for (int r = 0; r < R; ++r) x[r] = ind[r * taps + t];
    const uint8_t* wt = w + t * blocks_per_tap * 64;
    for (std::size_t bl = 0; bl < blocks_per_tap; ++bl) {
      const __m512i w0 = load512(wt + 64 * bl);
      const auto w1 = V::load(wt + tile_bytes + 64 * bl);
      for (int r = 0; r < R; ++r) {
        const __m512i xb = kRaw ? TileVec<false>::bcast_flip(x[r] + 4 * bl, flip) : bcast32(x[r] + 4 * bl);
        a[r] = _mm512_dpbusd_epi32(a[r], xb, w0);
        b[r] = V::dot(b[r], V::narrow(xb), w1);
      }
    }
  }
  if constexpr (kHalf) {  // a copy only here: the zmm path hands its own array on
    __m512i bw[R];
    for (int r = 0; r < R; ++r) bw[r] = V::widen(b[r]);
    requant_store_rows_x2<R, kPlain>(a, bw, row_sums, p, tile, nc, out, out_stride);
  } else {
    requant_store_rows_x2<R, kPlain>(a, b, row_sums, p, tile, nc, out, out_stride);
  }
}

// igemm_requant_rows_x2 for 1 .. 8 rows, one variant of the epilogue and second tile.
template <bool kPlain, bool kHalf, bool kRaw, int... kRows>
constexpr std::array<IgemmRowsFn, 8> rows_x2_table(std::integer_sequence<int, kRows...>) {
  return {{igemm_requant_rows_x2<kRows + 1, kPlain, kHalf, kRaw>...}};
}

template <bool kRaw>
void igemm_requant_x2(std::size_t rows, std::size_t taps, std::size_t blocks_per_tap,
                      const uint8_t* w, const uint8_t* const* ind, const int32_t* row_sums,
                      const GemmQs8Params& p, std::size_t tile, std::size_t nc, int8_t* out,
                      std::size_t out_stride) {
  if (nc <= 16) {
    igemm_requant<8, kRaw>(rows, taps, blocks_per_tap, w, ind, row_sums, p, tile, nc, out,
                           out_stride);
    return;
  }
  const bool plain = plain_requant(p);
  constexpr auto kEight = std::make_integer_sequence<int, 8>{};
  // [second tile <= 8 channels][plain epilogue][rows - 1]
  static constexpr std::array<IgemmRowsFn, 8> kTwo[2][2] = {
      {rows_x2_table<false, false, kRaw>(kEight), rows_x2_table<true, false, kRaw>(kEight)},
      {rows_x2_table<false, true, kRaw>(kEight), rows_x2_table<true, true, kRaw>(kEight)}};
  kTwo[nc <= 24 ? 1 : 0][plain ? 1 : 0][(rows < 8 ? rows : 8) - 1](
      taps, blocks_per_tap, w, ind, row_sums, p, tile, nc, out, out_stride);
}


// ------------------------------------------------------------------------------ depthwise
// 16 channels per zmm (the input tail through a masked load: inputs are only `channels` long).
void dwconv_avx512(std::size_t channels, std::size_t taps, const int8_t* const* inputs,
                   const int32_t* weights, std::size_t stride, int32_t* acc) {
  for (std::size_t c = 0; c < channels; c += 16) {
    const std::size_t len = channels - c < 16 ? channels - c : 16;
    const __mmask16 k = static_cast<__mmask16>((1u << len) - 1u);
    __m512i a0 = _mm512_setzero_si512(), a1 = a0;
    std::size_t t = 0;
    for (; t + 2 <= taps; t += 2) {  // two chains
      a0 = _mm512_add_epi32(a0, _mm512_mullo_epi32(
                                    _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, inputs[t] + c)),
                                    _mm512_loadu_si512(weights + t * stride + c)));
      a1 = _mm512_add_epi32(a1, _mm512_mullo_epi32(
                                    _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, inputs[t + 1] + c)),
                                    _mm512_loadu_si512(weights + (t + 1) * stride + c)));
    }
    if (t < taps) {
      a0 = _mm512_add_epi32(a0, _mm512_mullo_epi32(
                                    _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, inputs[t] + c)),
                                    _mm512_loadu_si512(weights + t * stride + c)));
    }
    _mm512_mask_storeu_epi32(acc + c, k, _mm512_add_epi32(a0, a1));
  }
}

// ------------------------------------------------------------------------------ depthwise, fused
// 64 channels x 4 taps per step: the four taps' bytes are interleaved per channel by in-lane
// unpacks (no lane crossing), so one vpdpbusd does 16 channels x 4 taps, against one vpmulld per
// 16 channels x 1 tap in dwconv_avx512. Channel order inside a block is permuted (ukernels.h,
// DwQs8Fn); the tables follow it and packssdw / packsswb (in-lane too) restore natural order.
// Requantisation: the 64-bit form of EpilogueParams on even lanes (vpmuldq reads the low dword
// of each qword) and odd lanes (shifted down first), blended back: no 32 <-> 64-bit widening.
// The bias is the accumulators' initial value; the output zero point is in rounding_add when
// DwRequantParams::out_zero_point is 0 (see depthwise_conv2d.cc).
// kHi (DwRequantParams::shift_32_53: every shift 32 to 53, the output zero point folded into
// the rounding constant): the high dwords of the two 64-bit sums gathered by one masked vpshufd
// and shifted by one vpsravd (s32: t - 32 per lane, dw_shift32), where the general form takes
// two vpsravq and the vpshufd (requant16_zmm.h's kHigh, requant8_ymm.h's requant8_hi).
template <bool kHi>
inline __m512i dw_requant(__m512i v, const DwRequantBlock& t, const DwRequantParams& p,
                          __m512i s32) {
  if (p.any_pre_shift) v = _mm512_sllv_epi32(v, _mm512_loadu_si512(t.pre_shift));
  const __m512i pe = _mm512_mul_epi32(v, _mm512_loadu_si512(t.multiplier[0]));
  const __m512i po = _mm512_mul_epi32(_mm512_srli_epi64(v, 32), _mm512_loadu_si512(t.multiplier[1]));
  __m512i ae = _mm512_add_epi64(pe, _mm512_loadu_si512(t.rounding_add[0]));
  __m512i ao = _mm512_add_epi64(po, _mm512_loadu_si512(t.rounding_add[1]));
  if (p.any_negative_add) {
    const __m512i lim = _mm512_set1_epi64(-(int64_t{1} << 30));
    ae = _mm512_mask_add_epi64(ae, _mm512_cmplt_epi64_mask(pe, lim), ae,
                               _mm512_loadu_si512(t.negative_add[0]));
    ao = _mm512_mask_add_epi64(ao, _mm512_cmplt_epi64_mask(po, lim), ao,
                               _mm512_loadu_si512(t.negative_add[1]));
  }
  __m512i y;
  if constexpr (kHi) {
    // even lanes <- the high dwords of ae (dwords 1, 3 of each 128 bits), odd lanes keep ao's
    y = _mm512_srav_epi32(
        _mm512_mask_shuffle_epi32(ao, static_cast<__mmask16>(0x5555), ae, _MM_PERM_DDBB), s32);
  } else {
    const __m512i ye = _mm512_srav_epi64(ae, _mm512_loadu_si512(t.total_shift[0]));
    const __m512i yo = _mm512_srav_epi64(ao, _mm512_loadu_si512(t.total_shift[1]));
    // Odd lanes: the low dword of each yo qword moves up into the odd dword.
    y = _mm512_mask_shuffle_epi32(ye, static_cast<__mmask16>(0xAAAA), yo, _MM_PERM_CCAA);
  }
  if (p.out_zero_point != 0) y = _mm512_add_epi32(y, _mm512_set1_epi32(p.out_zero_point));
  // packssdw / packsswb saturate to [-128, 127] themselves: only a narrower clamp needs these.
  if (p.out_min > -128) y = _mm512_max_epi32(y, _mm512_set1_epi32(p.out_min));
  if (p.out_max < 127) y = _mm512_min_epi32(y, _mm512_set1_epi32(p.out_max));
  return y;
}

// The same on the low half (lanes 0..7 of the block's layout: channels 0..31 of a block).
inline __m256i dw_requant_half(__m256i v, const DwRequantBlock& t, const DwRequantParams& p) {
  auto ld = [](const void* a) { return _mm256_loadu_si256(static_cast<const __m256i*>(a)); };
  if (p.any_pre_shift) v = _mm256_sllv_epi32(v, ld(t.pre_shift));
  const __m256i pe = _mm256_mul_epi32(v, ld(t.multiplier[0]));
  const __m256i po = _mm256_mul_epi32(_mm256_srli_epi64(v, 32), ld(t.multiplier[1]));
  __m256i ae = _mm256_add_epi64(pe, ld(t.rounding_add[0]));
  __m256i ao = _mm256_add_epi64(po, ld(t.rounding_add[1]));
  if (p.any_negative_add) {
    const __m256i lim = _mm256_set1_epi64x(-(int64_t{1} << 30));
    ae = _mm256_mask_add_epi64(ae, _mm256_cmpgt_epi64_mask(lim, pe), ae, ld(t.negative_add[0]));
    ao = _mm256_mask_add_epi64(ao, _mm256_cmpgt_epi64_mask(lim, po), ao, ld(t.negative_add[1]));
  }
  const __m256i ye = _mm256_srav_epi64(ae, ld(t.total_shift[0]));
  const __m256i yo = _mm256_srav_epi64(ao, ld(t.total_shift[1]));
  __m256i y = _mm256_mask_shuffle_epi32(ye, static_cast<__mmask8>(0xAA), yo, _MM_PERM_CCAA);
  if (p.out_zero_point != 0) y = _mm256_add_epi32(y, _mm256_set1_epi32(p.out_zero_point));
  if (p.out_min > -128) y = _mm256_max_epi32(y, _mm256_set1_epi32(p.out_min));
  if (p.out_max < 127) y = _mm256_min_epi32(y, _mm256_set1_epi32(p.out_max));
  return y;
}

// Multi-pixel kernels (ukernels.h, DwQs8Fn): per 64- or 32-channel block, the block's weights
// and bias are loaded once and serve every pixel of the call. For up to 3 groups (12 taps:
// 3x3 and smaller) the group count is a template argument, so the weights are 4 * G named
// registers (12 zmm of 32, or 12 ymm) rather than a loop's loads; larger windows (5x5: 28
// vectors, more than the register file beside the accumulators) load them per pixel as before.
// The requantisation tables (up to 9 vectors per accumulator) stay memory operands: holding
// them too would spill. Each output pixel still costs one pass over its taps' rows; what goes
// is the per-pixel call, pointer set-up and weight reloads (perf: ~20% of the 112x112x32 layer).
//
// A last group with one real tap (taps % 4 == 1: 3x3, 5x5, 1x1; DwRequantParams::lone_last_tap)
// needs no 4-row interleave: accumulator q's dword j (channel 4q + j of each 128-bit lane) only
// reads its byte 0 (the other three weights are zero), so one in-lane vpshufb per accumulator
// moves byte 4q + j there and zeroes the rest: 1 load, 1 xor, 4 shuffles instead of 4, 4, 8.
// Per lane (the block layout's order) total_shift - 32 of one accumulator's tables, for the kHi
// form of dw_requant: formed once per call and block, not per pixel.
inline __m512i dw_shift32(const DwRequantBlock& t) {
  const __m512i k32 = _mm512_set1_epi64(32);
  return _mm512_mask_shuffle_epi32(_mm512_sub_epi64(_mm512_loadu_si512(t.total_shift[0]), k32),
                                   static_cast<__mmask16>(0xAAAA),
                                   _mm512_sub_epi64(_mm512_loadu_si512(t.total_shift[1]), k32),
                                   _MM_PERM_CCAA);
}

template <typename V>
inline V lone_pick(int q) {
  alignas(64) int8_t idx[64];
  for (int i = 0; i < 64; ++i) {
    idx[i] = i % 4 == 0 ? static_cast<int8_t>(4 * q + (i % 16) / 4) : int8_t{-1};
  }
  V v;
  std::memcpy(&v, idx, sizeof(V));
  return v;
}

// A block of at most 32 channels (the tail, or all of a 16/24/32-channel layer) on ymm: the
// block layout's low 128-bit lanes are exactly these channels, so weights and tables are the
// low halves of the 64-channel ones. (Zen 4 runs a zmm op as two ymm halves: half the work.)
template <int G, bool kLone>
void dwconv_qs8_block32(std::size_t pixels, std::size_t channels, std::size_t c, std::size_t len,
                        std::size_t groups, const int8_t* const* inputs, std::size_t step,
                        const uint8_t* wb, const DwRequantBlock* t, const DwRequantParams& p,
                        int8_t* out) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  const __mmask32 k = len == 32 ? ~0u : (~0u) >> (32 - len);
  auto ld = [](const void* a) { return _mm256_loadu_si256(static_cast<const __m256i*>(a)); };
  constexpr int kHeld = G > 0 ? G : 1;
  __m256i w[kHeld][4];
  if constexpr (G > 0) {
    for (int g = 0; g < G; ++g) {
      for (int q = 0; q < 4; ++q) w[g][q] = ld(wb + g * 256 + 64 * q);
    }
  }
  const __m256i b0 = ld(t[0].bias), b1 = ld(t[1].bias), b2 = ld(t[2].bias), b3 = ld(t[3].bias);
  const std::size_t ng = G > 0 ? static_cast<std::size_t>(G) : groups;
  for (std::size_t n = 0; n < pixels; ++n, inputs += step, out += channels) {
    __m256i a0 = b0, a1 = b1, a2 = b2, a3 = b3;
#pragma GCC unroll 4
    for (std::size_t g = 0; g < ng; ++g) {
      const int8_t* const* in = inputs + 4 * g;
      if (kLone && g + 1 == ng) {  // one real tap: its byte to byte 0 of each dword
        const __m256i x = _mm256_xor_si256(_mm256_maskz_loadu_epi8(k, in[0] + c), flip);
        __m256i w0, w1, w2, w3;
        if constexpr (G > 0) {
          w0 = w[G - 1][0], w1 = w[G - 1][1], w2 = w[G - 1][2], w3 = w[G - 1][3];
        } else {
          const uint8_t* wg = wb + g * 256;
          w0 = ld(wg), w1 = ld(wg + 64), w2 = ld(wg + 128), w3 = ld(wg + 192);
        }
        a0 = _mm256_dpbusd_epi32(a0, _mm256_shuffle_epi8(x, lone_pick<__m256i>(0)), w0);
        a1 = _mm256_dpbusd_epi32(a1, _mm256_shuffle_epi8(x, lone_pick<__m256i>(1)), w1);
        a2 = _mm256_dpbusd_epi32(a2, _mm256_shuffle_epi8(x, lone_pick<__m256i>(2)), w2);
        a3 = _mm256_dpbusd_epi32(a3, _mm256_shuffle_epi8(x, lone_pick<__m256i>(3)), w3);
        break;
      }
      const __m256i x0 = _mm256_xor_si256(_mm256_maskz_loadu_epi8(k, in[0] + c), flip);
      const __m256i x1 = _mm256_xor_si256(_mm256_maskz_loadu_epi8(k, in[1] + c), flip);
      const __m256i x2 = _mm256_xor_si256(_mm256_maskz_loadu_epi8(k, in[2] + c), flip);
      const __m256i x3 = _mm256_xor_si256(_mm256_maskz_loadu_epi8(k, in[3] + c), flip);
      const __m256i l01 = _mm256_unpacklo_epi8(x0, x1), h01 = _mm256_unpackhi_epi8(x0, x1);
      const __m256i l23 = _mm256_unpacklo_epi8(x2, x3), h23 = _mm256_unpackhi_epi8(x2, x3);
      __m256i w0, w1, w2, w3;
      if constexpr (G > 0) {
        w0 = w[g][0], w1 = w[g][1], w2 = w[g][2], w3 = w[g][3];
      } else {
        const uint8_t* wg = wb + g * 256;
        w0 = ld(wg), w1 = ld(wg + 64), w2 = ld(wg + 128), w3 = ld(wg + 192);
      }
      a0 = _mm256_dpbusd_epi32(a0, _mm256_unpacklo_epi16(l01, l23), w0);
      a1 = _mm256_dpbusd_epi32(a1, _mm256_unpackhi_epi16(l01, l23), w1);
      a2 = _mm256_dpbusd_epi32(a2, _mm256_unpacklo_epi16(h01, h23), w2);
      a3 = _mm256_dpbusd_epi32(a3, _mm256_unpackhi_epi16(h01, h23), w3);
    }
    const __m256i y01 =
        _mm256_packs_epi32(dw_requant_half(a0, t[0], p), dw_requant_half(a1, t[1], p));
    const __m256i y23 =
        _mm256_packs_epi32(dw_requant_half(a2, t[2], p), dw_requant_half(a3, t[3], p));
    _mm256_mask_storeu_epi8(out + c, k, _mm256_packs_epi16(y01, y23));
  }
}

// A full or partial (33..64 channels) block of 64 on zmm.
template <int G, bool kLone, bool kHi>
void dwconv_qs8_block64(std::size_t pixels, std::size_t channels, std::size_t c, std::size_t len,
                        std::size_t groups, const int8_t* const* inputs, std::size_t step,
                        const uint8_t* wb, const DwRequantBlock* t, const DwRequantParams& p,
                        int8_t* out) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const __mmask64 k = len == 64 ? ~0ull : (~0ull) >> (64 - len);
  constexpr int kHeld = G > 0 ? G : 1;
  __m512i w[kHeld][4];
  if constexpr (G > 0) {
    for (int g = 0; g < G; ++g) {
      for (int q = 0; q < 4; ++q) w[g][q] = load512(wb + g * 256 + 64 * q);
    }
  }
  const __m512i b0 = _mm512_loadu_si512(t[0].bias), b1 = _mm512_loadu_si512(t[1].bias);
  const __m512i b2 = _mm512_loadu_si512(t[2].bias), b3 = _mm512_loadu_si512(t[3].bias);
  __m512i s[4] = {};
  if constexpr (kHi) {
    for (int q = 0; q < 4; ++q) s[q] = dw_shift32(t[q]);
  }
  const std::size_t ng = G > 0 ? static_cast<std::size_t>(G) : groups;
  for (std::size_t n = 0; n < pixels; ++n, inputs += step, out += channels) {
    __m512i a0 = b0, a1 = b1, a2 = b2, a3 = b3;
#pragma GCC unroll 4
    for (std::size_t g = 0; g < ng; ++g) {
      const int8_t* const* in = inputs + 4 * g;
      if (kLone && g + 1 == ng) {  // one real tap: its byte to byte 0 of each dword
        const __m512i x = _mm512_xor_si512(_mm512_maskz_loadu_epi8(k, in[0] + c), flip);
        __m512i w0, w1, w2, w3;
        if constexpr (G > 0) {
          w0 = w[G - 1][0], w1 = w[G - 1][1], w2 = w[G - 1][2], w3 = w[G - 1][3];
        } else {
          const uint8_t* wg = wb + g * 256;
          w0 = load512(wg), w1 = load512(wg + 64), w2 = load512(wg + 128), w3 = load512(wg + 192);
        }
        a0 = _mm512_dpbusd_epi32(a0, _mm512_shuffle_epi8(x, lone_pick<__m512i>(0)), w0);
        a1 = _mm512_dpbusd_epi32(a1, _mm512_shuffle_epi8(x, lone_pick<__m512i>(1)), w1);
        a2 = _mm512_dpbusd_epi32(a2, _mm512_shuffle_epi8(x, lone_pick<__m512i>(2)), w2);
        a3 = _mm512_dpbusd_epi32(a3, _mm512_shuffle_epi8(x, lone_pick<__m512i>(3)), w3);
        break;
      }
      // Rows are only `channels` long: the last block's loads are masked (a mask of all ones
      // costs the same as a plain load).
      const __m512i x0 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(k, in[0] + c), flip);
      const __m512i x1 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(k, in[1] + c), flip);
      const __m512i x2 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(k, in[2] + c), flip);
      const __m512i x3 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(k, in[3] + c), flip);
      const __m512i l01 = _mm512_unpacklo_epi8(x0, x1), h01 = _mm512_unpackhi_epi8(x0, x1);
      const __m512i l23 = _mm512_unpacklo_epi8(x2, x3), h23 = _mm512_unpackhi_epi8(x2, x3);
      __m512i w0, w1, w2, w3;
      if constexpr (G > 0) {
        w0 = w[g][0], w1 = w[g][1], w2 = w[g][2], w3 = w[g][3];
      } else {
        const uint8_t* wg = wb + g * 256;
        w0 = load512(wg), w1 = load512(wg + 64), w2 = load512(wg + 128), w3 = load512(wg + 192);
      }
      a0 = _mm512_dpbusd_epi32(a0, _mm512_unpacklo_epi16(l01, l23), w0);
      a1 = _mm512_dpbusd_epi32(a1, _mm512_unpackhi_epi16(l01, l23), w1);
      a2 = _mm512_dpbusd_epi32(a2, _mm512_unpacklo_epi16(h01, h23), w2);
      a3 = _mm512_dpbusd_epi32(a3, _mm512_unpackhi_epi16(h01, h23), w3);
    }
    // The packs saturate: together with dw_requant's clamp, the result is clamped to
    // [out_min, out_max] exactly as the int32 clamp + truncation of the other epilogues.
    const __m512i y01 = _mm512_packs_epi32(dw_requant<kHi>(a0, t[0], p, s[0]),
                                           dw_requant<kHi>(a1, t[1], p, s[1]));
    const __m512i y23 = _mm512_packs_epi32(dw_requant<kHi>(a2, t[2], p, s[2]),
                                           dw_requant<kHi>(a3, t[3], p, s[3]));
    _mm512_mask_storeu_epi8(out + c, k, _mm512_packs_epi16(y01, y23));
  }
}

template <int G, bool kLone, bool kHi>
void dwconv_qs8_blocks(std::size_t pixels, std::size_t channels, std::size_t groups,
                       const int8_t* const* inputs, std::size_t step, const int8_t* weights,
                       const DwRequantParams& p, int8_t* out) {
  for (std::size_t c = 0, b = 0; c < channels; c += 64, ++b) {
    const std::size_t len = channels - c < 64 ? channels - c : 64;
    const uint8_t* wb = reinterpret_cast<const uint8_t*>(weights) + b * groups * 256;
    const DwRequantBlock* t = p.blocks + 4 * b;
    if (len <= 32) {
      // ymm blocks keep the 64-bit shifts: the high-dword form measured 2 % slower on the
      // 80x80x32 layer (Zen 4), where it gained 5-9 % on the zmm blocks of 144-576 channels
      dwconv_qs8_block32<G, kLone>(pixels, channels, c, len, groups, inputs, step, wb, t, p, out);
    } else {
      dwconv_qs8_block64<G, kLone, kHi>(pixels, channels, c, len, groups, inputs, step, wb, t, p,
                                        out);
    }
  }
}

template <bool kLone, bool kHi>
void dwconv_qs8_by_groups(std::size_t pixels, std::size_t channels, std::size_t groups,
                          const int8_t* const* in, std::size_t step, const int8_t* w,
                          const DwRequantParams& p, int8_t* out) {
  switch (groups) {
    case 1: return dwconv_qs8_blocks<1, kLone, kHi>(pixels, channels, groups, in, step, w, p,
                                                     out);
    case 2: return dwconv_qs8_blocks<2, kLone, kHi>(pixels, channels, groups, in, step, w, p,
                                                     out);
    case 3: return dwconv_qs8_blocks<3, kLone, kHi>(pixels, channels, groups, in, step, w, p,
                                                     out);
    default: return dwconv_qs8_blocks<0, kLone, kHi>(pixels, channels, groups, in, step, w, p,
                                                     out);
  }
}

void dwconv_qs8_avx512(std::size_t pixels, std::size_t channels, std::size_t groups,
                       const int8_t* const* inputs, std::size_t step, const int8_t* weights,
                       const DwRequantParams& p, int8_t* out) {
  using Fn = decltype(&dwconv_qs8_by_groups<false, false>);
  static constexpr Fn kVariants[2][2] = {
      {dwconv_qs8_by_groups<false, false>, dwconv_qs8_by_groups<false, true>},
      {dwconv_qs8_by_groups<true, false>, dwconv_qs8_by_groups<true, true>}};
  kVariants[p.lone_last_tap != 0 ? 1 : 0][p.shift_32_53 != 0 ? 1 : 0](
      pixels, channels, groups, inputs, step, weights, p, out);
}

// ------------------------------------------------------------------------------ activations
// Row sums with vpsadbw on x ^ 0x80 (= x + 128 unsigned). kFlip stores the flipped bytes (the
// XFormat::kUint8 rows of the int8 kernel), otherwise the bytes as they are.
template <bool kFlip>
int32_t prepare_bytes(const int8_t* src, std::size_t n, uint8_t* dst) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i sum = _mm512_setzero_si512();
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i v = _mm512_loadu_si512(src + i);
    const __m512i f = _mm512_xor_si512(v, flip);
    _mm512_storeu_si512(dst + i, kFlip ? f : v);
    sum = _mm512_add_epi64(sum, _mm512_sad_epu8(f, _mm512_setzero_si512()));
  }
  if (i < n) {
    const __mmask64 k = (~0ull) >> (64 - (n - i));
    const __m512i v = _mm512_maskz_loadu_epi8(k, src + i);
    const __m512i f = _mm512_xor_si512(v, flip);
    _mm512_mask_storeu_epi8(dst + i, k, kFlip ? f : v);
    sum = _mm512_add_epi64(sum, _mm512_sad_epu8(_mm512_maskz_mov_epi8(k, f), _mm512_setzero_si512()));
  }
  return static_cast<int32_t>(_mm512_reduce_add_epi64(sum) - 128 * static_cast<int64_t>(n));
}

// ------------------------------------------------------------------------------ epilogue
// 16 channels per step, with the 64-bit multiply-add-shift form of EpilogueParams (one vpsravq
// does both roundings, see gemm_plan.cc), channels in natural order in two qword halves.
inline __m256i requant_half(__m256i v8, const EpilogueParams& p, std::size_t c, bool away,
                            bool saturate) {
  const __m512i v = _mm512_cvtepi32_epi64(v8);
  const __m512i prod = _mm512_mul_epi32(v, _mm512_cvtepi32_epi64(_mm256_loadu_si256(
                                               reinterpret_cast<const __m256i*>(p.multiplier + c))));
  __m512i a = _mm512_add_epi64(prod, _mm512_loadu_si512(p.rounding_add + c));
  if (away) {
    const __mmask8 neg = _mm512_cmplt_epi64_mask(prod, _mm512_set1_epi64(-(int64_t{1} << 30)));
    a = _mm512_mask_add_epi64(a, neg, a, _mm512_loadu_si512(p.negative_add + c));
  }
  __m512i y = _mm512_srav_epi64(a, _mm512_loadu_si512(p.total_shift + c));
  if (saturate) {
    y = _mm512_min_epi64(_mm512_max_epi64(y, _mm512_set1_epi64(INT32_MIN)),
                         _mm512_set1_epi64(INT32_MAX));
  }
  return _mm512_cvtepi64_epi32(y);
}

void requant_avx512(std::size_t n, const int32_t* acc, int32_t row_sum, const EpilogueParams& p,
                    std::size_t c0, int8_t* out) {
  const __m512i zp = _mm512_set1_epi32(p.out_zero_point);
  const __m512i qmin = _mm512_set1_epi32(p.out_min), qmax = _mm512_set1_epi32(p.out_max);
  const __m512i rs_sum = _mm512_set1_epi32(row_sum);
  const __m512i uniform = _mm512_set1_epi32(static_cast<int32_t>(
      static_cast<uint32_t>(p.wzp_uniform) * static_cast<uint32_t>(row_sum)));
  const bool away = p.negative_add != nullptr && p.rounding == 1;
  const bool saturate = p.saturate != 0;
  for (std::size_t i = 0; i < n; i += 16) {
    const std::size_t len = n - i < 16 ? n - i : 16;
    const __mmask16 k = static_cast<__mmask16>((1u << len) - 1u);
    const std::size_t c = c0 + i;
    // Per-channel arrays are padded to 16; acc and out are the caller's, so the tail is masked
    // (unmasked when whole: a masked load cannot take the just-stored tile by store forwarding).
    const __m512i a = len == 16 ? _mm512_loadu_si512(acc + i) : _mm512_maskz_loadu_epi32(k, acc + i);
    __m512i v = _mm512_add_epi32(a, _mm512_loadu_si512(p.bias + c));
    if (p.wzp != nullptr) {
      v = _mm512_sub_epi32(v, _mm512_mullo_epi32(_mm512_loadu_si512(p.wzp + c), rs_sum));
    } else {
      v = _mm512_sub_epi32(v, uniform);
    }
    v = _mm512_sllv_epi32(v, _mm512_loadu_si512(p.pre_shift + c));
    const __m256i lo = requant_half(_mm512_castsi512_si256(v), p, c, away, saturate);
    const __m256i hi = requant_half(_mm512_extracti64x4_epi64(v, 1), p, c + 8, away, saturate);
    __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    q = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(q, zp), qmin), qmax);
    if (len == 16) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm512_cvtepi32_epi8(q));
    } else {
      _mm_mask_storeu_epi8(out + i, k, _mm512_cvtepi32_epi8(q));
    }
  }
}

// The kernels by name (docs/kernels.md; XNNPACK's convention): the tables below take each
// name from the symbol.
void qs8_qc8w_gemm_1x16c4__avx512vnni(EDGE_GEMM_PARAMS) { gemm_int8(EDGE_GEMM_ARGS); }
void qs8_qc8w_gemm_8x16c4__avx512vnni(EDGE_GEMM_PARAMS) { gemm_int8(EDGE_GEMM_ARGS); }
void qs8_qc4w_gemm_1x16c4__avx512vnni(EDGE_GEMM_PARAMS) { gemv_subbyte<4>(EDGE_GEMM_ARGS); }
void qs8_qc4w_gemm_8x16c4__avx512vnni(EDGE_GEMM_PARAMS) { gemm_subbyte<4>(EDGE_GEMM_ARGS); }
void qs8_qc2w_gemm_1x16c4__avx512vnni(EDGE_GEMM_PARAMS) { gemv_subbyte<2>(EDGE_GEMM_ARGS); }
void qs8_qc2w_gemm_8x16c4__avx512vnni(EDGE_GEMM_PARAMS) { gemm_subbyte<2>(EDGE_GEMM_ARGS); }
void qs8_qc8w_gemm_requant_8x16c4__avx512vnni(EDGE_GEMM_QS8_PARAMS) {
  gemm_int8_requant(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc4w_gemm_requant_8x16c4__avx512vnni(EDGE_GEMM_QS8_PARAMS) {
  gemm_subbyte_requant<4>(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc2w_gemm_requant_8x16c4__avx512vnni(EDGE_GEMM_QS8_PARAMS) {
  gemm_subbyte_requant<2>(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc8w_igemm_requant_8x16c4__avx512vnni(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<8>(EDGE_IGEMM_QS8_ARGS);
}
void qs8_qc8w_igemm_requant_8x32c4__avx512vnni(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant_x2<false>(EDGE_IGEMM_QS8_ARGS);
}
void qs8_qc8w_igemm_requant_raw_8x16c4__avx512vnni(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<8, true>(EDGE_IGEMM_QS8_ARGS);
}
void qs8_qc8w_igemm_requant_raw_8x32c4__avx512vnni(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant_x2<true>(EDGE_IGEMM_QS8_ARGS);
}
void qs8_qc4w_igemm_requant_8x16c4__avx512vnni(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<4>(EDGE_IGEMM_QS8_ARGS);
}
void qs8_qc2w_igemm_requant_8x16c4__avx512vnni(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<2>(EDGE_IGEMM_QS8_ARGS);
}
void qs8_qc8w_dwconv_16c__avx512vnni(EDGE_DW_PARAMS) { dwconv_avx512(EDGE_DW_ARGS); }
void qs8_qc8w_dwconv_rowx64c4__avx512vnni(EDGE_DW_QS8_PARAMS) {
  dwconv_qs8_avx512(EDGE_DW_QS8_ARGS);
}

constexpr GemmKernels kGemm8 = {EDGE_UKERNEL(qs8_qc8w_gemm_1x16c4__avx512vnni, 1),
                                EDGE_UKERNEL(qs8_qc8w_gemm_8x16c4__avx512vnni, 8),
                                XFormat::kUint8, prepare_bytes<true>};
constexpr GemmKernels kGemm4 = {EDGE_UKERNEL(qs8_qc4w_gemm_1x16c4__avx512vnni, 1),
                                EDGE_UKERNEL(qs8_qc4w_gemm_8x16c4__avx512vnni, 8),
                                XFormat::kInt8, prepare_bytes<false>, row_sums_int8};
// Ternary and int2 weights are both 2-bit fields: one kernel (the plan folds the zero points).
constexpr GemmKernels kGemm2 = {EDGE_UKERNEL(qs8_qc2w_gemm_1x16c4__avx512vnni, 1),
                                EDGE_UKERNEL(qs8_qc2w_gemm_8x16c4__avx512vnni, 8),
                                XFormat::kInt8, prepare_bytes<false>, row_sums_int8};
constexpr GemmQs8Kernel kGemmQs8_2 = EDGE_UKERNEL(qs8_qc2w_gemm_requant_8x16c4__avx512vnni, 8);
constexpr IgemmQs8Kernel kIgemmQs8_2 = EDGE_UKERNEL(qs8_qc2w_igemm_requant_8x16c4__avx512vnni, 8);

}  // namespace

const IsaKernels kAvx512VnniKernels = {
    {kGemm8, kGemm4, kGemm2, kGemm2},
    requant_avx512,
    dequant_avx2,
    EDGE_NAMED(qs8_qc8w_dwconv_16c__avx512vnni),
    EDGE_NAMED(qs8_qc8w_dwconv_rowx64c4__avx512vnni),
    {EDGE_UKERNEL(qs8_qc8w_gemm_requant_8x16c4__avx512vnni, 8),
     EDGE_UKERNEL(qs8_qc4w_gemm_requant_8x16c4__avx512vnni, 8), kGemmQs8_2, kGemmQs8_2},
    {EDGE_UKERNEL(qs8_qc8w_igemm_requant_8x16c4__avx512vnni, 8),
     EDGE_UKERNEL(qs8_qc4w_igemm_requant_8x16c4__avx512vnni, 8), kIgemmQs8_2, kIgemmQs8_2},
    {EDGE_UKERNEL(qs8_qc8w_igemm_requant_8x32c4__avx512vnni, 8), {}, {}, {}},
    {EDGE_UKERNEL(qs8_qc8w_igemm_requant_raw_8x16c4__avx512vnni, 8),
     EDGE_UKERNEL(qs8_qc8w_igemm_requant_raw_8x32c4__avx512vnni, 8)},
};

}  // namespace detail
}  // namespace edge
