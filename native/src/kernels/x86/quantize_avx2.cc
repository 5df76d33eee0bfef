// Dynamic input quantisation, AVX2 (quantize_ukernels.h): 32 floats per step. Rounding half away
// from zero is built from truncation, exactly: t = trunc(v), and t +/- 1 when |v - t| >= 0.5
// (v - t is exact in float). Tails go through a padded stack buffer, so they run the same code.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/quantize_ukernels.h"

namespace edge {
namespace detail {
namespace {

constexpr std::size_t kStep = 32;

void minmax_avx2(std::size_t n, const float* x, float* min, float* max) {
  __m256 lo = _mm256_set1_ps(x[0]), hi = lo;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    lo = _mm256_min_ps(lo, v);
    hi = _mm256_max_ps(hi, v);
  }
  if (i < n) {
    alignas(32) float tail[8];
    for (std::size_t j = 0; j < 8; ++j) tail[j] = i + j < n ? x[i + j] : x[0];
    const __m256 v = _mm256_load_ps(tail);
    lo = _mm256_min_ps(lo, v);
    hi = _mm256_max_ps(hi, v);
  }
  alignas(32) float l[8], h[8];
  _mm256_store_ps(l, lo);
  _mm256_store_ps(h, hi);
  float a = l[0], b = h[0];
  for (int j = 1; j < 8; ++j) {
    a = l[j] < a ? l[j] : a;
    b = h[j] > b ? h[j] : b;
  }
  *min = a;
  *max = b;
}

inline __m256i round_to_int(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 d = _mm256_sub_ps(v, t);
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 up = _mm256_and_ps(_mm256_cmp_ps(d, half, _CMP_GE_OQ), one);
  const __m256 down = _mm256_and_ps(_mm256_cmp_ps(d, _mm256_sub_ps(_mm256_setzero_ps(), half),
                                                  _CMP_LE_OQ),
                                    one);
  return _mm256_cvttps_epi32(_mm256_sub_ps(_mm256_add_ps(t, up), down));
}

inline __m256i quantize8(const float* x, __m256 inv, __m256 offset, __m256 qmin, __m256 qmax) {
  const __m256 product = _mm256_mul_ps(_mm256_loadu_ps(x), inv);
  // Same clamp order as the scalar code: max(v, qmin) then min(., qmax).
  const __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(offset, product), qmin), qmax);
  return round_to_int(v);
}

void quantize32(const float* x, __m256 inv, __m256 offset, __m256 qmin, __m256 qmax,
                int8_t* q) {
  const __m256i a = quantize8(x, inv, offset, qmin, qmax);
  const __m256i b = quantize8(x + 8, inv, offset, qmin, qmax);
  const __m256i c = quantize8(x + 16, inv, offset, qmin, qmax);
  const __m256i d = quantize8(x + 24, inv, offset, qmin, qmax);
  // packs work within 128-bit lanes: bytes come out as a0 b0 c0 d0 a1 b1 c1 d1 (4 each).
  const __m256i ab = _mm256_packs_epi32(a, b);
  const __m256i cd = _mm256_packs_epi32(c, d);
  const __m256i abcd = _mm256_packs_epi16(ab, cd);
  const __m256i ordered =
      _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), ordered);
}

void f32_qs8_quantize_32x__avx2(std::size_t n, const float* x, float inv, float offset,
                                float qmin, float qmax, int8_t* q) {
  const __m256 vinv = _mm256_set1_ps(inv), voff = _mm256_set1_ps(offset);
  const __m256 vmin = _mm256_set1_ps(qmin), vmax = _mm256_set1_ps(qmax);
  std::size_t i = 0;
  for (; i + kStep <= n; i += kStep) quantize32(x + i, vinv, voff, vmin, vmax, q + i);
  if (i < n) {
    alignas(32) float tail[kStep] = {};
    alignas(32) int8_t out[kStep];
    std::memcpy(tail, x + i, (n - i) * sizeof(float));
    quantize32(tail, vinv, voff, vmin, vmax, out);
    std::memcpy(q + i, out, n - i);
  }
}

}  // namespace

const QuantizeKernels kAvx2Quantize =
    EDGE_QUANTIZE_KERNELS(f32_qs8_quantize_32x__avx2, minmax_avx2);

}  // namespace detail
}  // namespace edge
