// GemmKernels::row_sums on x86 (ukernels.h, RowSumsFn): the int8 sums of 1x1 rows that the
// fused GEMM reads in place (conv2d.cc), for the weight zero points of the sub-byte codes.
// Written once for the x86 tables whose sub-byte entries take int8 rows (XFormat::kInt8):
// avx2.cc (-mavx2), avxvnni_table.h (avxvnni.cc, -mavxvnni, VEX; the test binary's EVEX twin)
// and avx512vnni.cc (its sub-byte 1x1 layers run the indirect conv, whose input pass forms the
// sums, unless EDGE_CONV_IGEMM=0). Internal linkage, as ymm_io.h: each includer compiles its
// own copy with its own flags.
#pragma once

#if !defined(__AVX2__)
#error "row_sums_ymm.h: only for translation units compiled with AVX2 or above (-mavx2 at least)"
#endif

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace edge {
namespace detail {
namespace {

// The sums of `rows` int8 rows of n bytes (row r at x + r * stride), nothing stored: vpsadbw of
// x + 128 against zero (the bias taken off once), in 32-byte steps, then 16- and 8-byte steps,
// since those rows are often 16-24 bytes (K of the MobileNet's 1x1 layers). The compiler's SSE2
// form of the scalar loop (sign-extension to int32 by unpacks) had cost 30 % of the 80x80x32 ->
// 16 ternary layer's time on Zen 4 (AVX2).
inline void row_sums_int8(const int8_t* x, std::size_t n, std::size_t stride, std::size_t rows,
                          int32_t* sums) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  const __m128i flip16 = _mm256_castsi256_si128(flip);
  for (std::size_t r = 0; r < rows; ++r) {
    const int8_t* src = x + r * stride;
    __m256i sum = _mm256_setzero_si256();
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
      sum = _mm256_add_epi64(sum, _mm256_sad_epu8(_mm256_xor_si256(v, flip), _mm256_setzero_si256()));
    }
    __m128i s = _mm_add_epi64(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    if (i + 16 <= n) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
      s = _mm_add_epi64(s, _mm_sad_epu8(_mm_xor_si128(v, flip16), _mm_setzero_si128()));
      i += 16;
    }
    if (i + 8 <= n) {  // the high 8 bytes zero, not flipped: they add 0
      const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + i));
      s = _mm_add_epi64(s, _mm_sad_epu8(_mm_xor_si128(v, _mm_move_epi64(flip16)),
                                        _mm_setzero_si128()));
      i += 8;
    }
    int64_t total = _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1) - 128 * static_cast<int64_t>(i);
    for (; i < n; ++i) total += src[i];
    sums[r] = static_cast<int32_t>(total);
  }
}

}  // namespace
}  // namespace detail
}  // namespace edge
