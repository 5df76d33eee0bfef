// Dynamic input quantisation, AVX-512 (quantize_ukernels.h): 16 floats per step, masked tails.
// Part of the avx512vnni ISA (it needs only AVX-512F). Rounding half away from zero from
// truncation, exactly as the AVX2 variant.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/quantize_ukernels.h"

namespace edge {
namespace detail {
namespace {

inline __mmask16 tail_mask(std::size_t left) {
  return static_cast<__mmask16>(left >= 16 ? 0xFFFFu : (1u << left) - 1u);
}

// GCC 12's _mm512_min_ps / _mm512_max_ps (and roundscale, cvttps) trip -Wmaybe-uninitialized inside its own header (an
// undefined pass-through operand); the masked forms with a full mask are the same instruction.
inline __m512 min_ps(__m512 a, __m512 b) { return _mm512_mask_min_ps(a, 0xFFFF, a, b); }
inline __m512 max_ps(__m512 a, __m512 b) { return _mm512_mask_max_ps(a, 0xFFFF, a, b); }

void minmax_avx512(std::size_t n, const float* x, float* min, float* max) {
  __m512 lo = _mm512_set1_ps(x[0]), hi = lo;
  for (std::size_t i = 0; i < n; i += 16) {
    // Masked-off lanes keep x[0], which is already in both accumulators.
    const __m512 v = _mm512_mask_loadu_ps(_mm512_set1_ps(x[0]), tail_mask(n - i), x + i);
    lo = min_ps(lo, v);
    hi = max_ps(hi, v);
  }
  alignas(64) float l[16], h[16];
  _mm512_store_ps(l, lo);
  _mm512_store_ps(h, hi);
  float a = l[0], b = h[0];
  for (int j = 1; j < 16; ++j) {
    a = l[j] < a ? l[j] : a;
    b = h[j] > b ? h[j] : b;
  }
  *min = a;
  *max = b;
}

void f32_qs8_quantize_16x__avx512vnni(std::size_t n, const float* x, float inv, float offset,
                                      float qmin, float qmax, int8_t* q) {
  const __m512 vinv = _mm512_set1_ps(inv), voff = _mm512_set1_ps(offset);
  const __m512 vmin = _mm512_set1_ps(qmin), vmax = _mm512_set1_ps(qmax);
  const __m512 half = _mm512_set1_ps(0.5f), mhalf = _mm512_set1_ps(-0.5f);
  const __m512 one = _mm512_set1_ps(1.0f);
  for (std::size_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 product = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vinv);
    const __m512 v = min_ps(max_ps(_mm512_add_ps(voff, product), vmin), vmax);
    const __m512 t = _mm512_mask_roundscale_ps(v, 0xFFFF, v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512 d = _mm512_sub_ps(v, t);
    __m512 r = _mm512_mask_add_ps(t, _mm512_cmp_ps_mask(d, half, _CMP_GE_OQ), t, one);
    r = _mm512_mask_sub_ps(r, _mm512_cmp_ps_mask(d, mhalf, _CMP_LE_OQ), r, one);
    _mm512_mask_cvtsepi32_storeu_epi8(q + i, m,
                                      _mm512_mask_cvttps_epi32(_mm512_setzero_si512(), 0xFFFF, r));
  }
}

}  // namespace

const QuantizeKernels kAvx512Quantize =
    EDGE_QUANTIZE_KERNELS(f32_qs8_quantize_16x__avx512vnni, minmax_avx512);

}  // namespace detail
}  // namespace edge
