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

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/ukernels.h"

namespace edge {
namespace detail {

// The AVX2 epilogues and depthwise kernel (avx2.cc) serve this ISA too.
void requant_avx2(std::size_t n, const int32_t* acc, int32_t row_sum, const EpilogueParams& p,
                  std::size_t c0, int8_t* out);
void dequant_avx2(std::size_t n, const int32_t* acc, int32_t row_sum, const EpilogueParams& p,
                  std::size_t c0, float* out);
void dwconv_avx2(std::size_t channels, std::size_t taps, const int8_t* const* inputs,
                 const int32_t* weights, std::size_t stride, int32_t* acc);

namespace {

inline __m512i load512(const uint8_t* p) { return _mm512_loadu_si512(p); }

inline __m512i bcast32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

inline void store16(int32_t* acc, __m512i v) { _mm512_storeu_si512(acc, v); }

// ------------------------------------------------------------------------------ sub-byte, M = 1
template <int kBits>
void gemv_subbyte(std::size_t, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                  std::size_t, int32_t* acc) {
  constexpr int kFields = 8 / kBits;
  constexpr int kBlockK = 4 * kFields;
  // Two blocks per iteration with their own accumulators: each accumulator takes one vpdpbusd
  // per iteration, so more chains hide its latency (int4 has only two fields).
  __m512i a[2][kFields];
  __m512i m[kFields];
  for (int i = 0; i < kFields; ++i) {
    a[0][i] = a[1][i] = _mm512_setzero_si512();
    m[i] = _mm512_set1_epi8(static_cast<char>(((1 << kBits) - 1) << (kBits * i)));
  }
  std::size_t b = 0;
  for (; b + 2 <= nblocks; b += 2) {
    for (int u = 0; u < 2; ++u) {
      const __m512i raw = load512(w + (b + u) * 64);
      const uint8_t* xb = x + (b + u) * kBlockK;
      for (int i = 0; i < kFields; ++i) {
        a[u][i] = _mm512_dpbusd_epi32(a[u][i], _mm512_and_si512(raw, m[i]), bcast32(xb + 4 * i));
      }
    }
  }
  if (b < nblocks) {
    const __m512i raw = load512(w + b * 64);
    const uint8_t* xb = x + b * kBlockK;
    for (int i = 0; i < kFields; ++i) {
      a[0][i] = _mm512_dpbusd_epi32(a[0][i], _mm512_and_si512(raw, m[i]), bcast32(xb + 4 * i));
    }
  }
  // Field i was multiplied as (code << kBits*i): its sums are exact multiples of 2^(kBits*i).
  __m512i sum = _mm512_add_epi32(a[0][0], a[1][0]);
  for (int i = 1; i < kFields; ++i) {
    sum = _mm512_add_epi32(sum, _mm512_srai_epi32(_mm512_add_epi32(a[0][i], a[1][i]), kBits * i));
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
    // Four accumulators: the vpdpbusd latency chain would otherwise limit M = 1.
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    std::size_t b = 0;
    for (; b + 4 <= nblocks; b += 4) {
      a0 = _mm512_dpbusd_epi32(a0, bcast32(x + 4 * b), load512(w + 64 * b));
      a1 = _mm512_dpbusd_epi32(a1, bcast32(x + 4 * b + 4), load512(w + 64 * b + 64));
      a2 = _mm512_dpbusd_epi32(a2, bcast32(x + 4 * b + 8), load512(w + 64 * b + 128));
      a3 = _mm512_dpbusd_epi32(a3, bcast32(x + 4 * b + 12), load512(w + 64 * b + 192));
    }
    for (; b < nblocks; ++b) a0 = _mm512_dpbusd_epi32(a0, bcast32(x + 4 * b), load512(w + 64 * b));
    store16(acc, _mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)));
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

constexpr GemmKernels kGemm8 = {{"qs8_qc8w_gemm_1x16c4__avx512vnni", 1, gemm_int8},
                                {"qs8_qc8w_gemm_8x16c4__avx512vnni", 8, gemm_int8},
                                XFormat::kUint8};
constexpr GemmKernels kGemm4 = {{"qs8_qc4w_gemm_1x16c4__avx512vnni", 1, gemv_subbyte<4>},
                                {"qs8_qc4w_gemm_8x16c4__avx512vnni", 8, gemm_subbyte<4>},
                                XFormat::kInt8};
constexpr GemmKernels kGemmT = {{"qs8_qt2w_gemm_1x16c4__avx512vnni", 1, gemv_subbyte<2>},
                                {"qs8_qt2w_gemm_8x16c4__avx512vnni", 8, gemm_subbyte<2>},
                                XFormat::kInt8};
constexpr GemmKernels kGemm2 = {{"qs8_qc2w_gemm_1x16c4__avx512vnni", 1, gemv_subbyte<2>},
                                {"qs8_qc2w_gemm_8x16c4__avx512vnni", 8, gemm_subbyte<2>},
                                XFormat::kInt8};

}  // namespace

const IsaKernels kAvx512VnniKernels = {
    {kGemm8, kGemm4, kGemmT, kGemm2},
    requant_avx2,
    dequant_avx2,
    dwconv_avx2,
    "qs8_qc8w_dwconv_16c__avx2",
};

}  // namespace detail
}  // namespace edge
