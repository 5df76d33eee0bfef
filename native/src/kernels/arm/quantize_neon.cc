// Dynamic input quantisation, NEON (quantize_ukernels.h), Armv7 and aarch64 (also used by the
// dotprod ISA): 16 floats per step. Rounding half away from zero from truncation (vcvtq_s32_f32
// truncates), exactly as the x86 variants; tails go through a padded stack buffer.
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/quantize_ukernels.h"

namespace edge {
namespace detail {
namespace {

constexpr std::size_t kStep = 16;

void minmax_neon(std::size_t n, const float* x, float* min, float* max) {
  float32x4_t lo = vdupq_n_f32(x[0]), hi = lo;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    lo = vminq_f32(lo, v);
    hi = vmaxq_f32(hi, v);
  }
  float l[4], h[4];
  vst1q_f32(l, lo);
  vst1q_f32(h, hi);
  float a = l[0], b = h[0];
  for (int j = 1; j < 4; ++j) {
    a = l[j] < a ? l[j] : a;
    b = h[j] > b ? h[j] : b;
  }
  for (; i < n; ++i) {
    a = x[i] < a ? x[i] : a;
    b = x[i] > b ? x[i] : b;
  }
  *min = a;
  *max = b;
}

inline int32x4_t quantize4(const float* x, float32x4_t inv, float32x4_t offset,
                           float32x4_t qmin, float32x4_t qmax) {
  const float32x4_t product = vmulq_f32(vld1q_f32(x), inv);
  const float32x4_t v = vminq_f32(vmaxq_f32(vaddq_f32(offset, product), qmin), qmax);
  const int32x4_t ti = vcvtq_s32_f32(v);  // truncates
  const float32x4_t d = vsubq_f32(v, vcvtq_f32_s32(ti));
  // +1 where d >= 0.5, -1 where d <= -0.5 (comparison masks are all ones = -1).
  const int32x4_t up = vreinterpretq_s32_u32(vcgeq_f32(d, vdupq_n_f32(0.5f)));
  const int32x4_t down = vreinterpretq_s32_u32(vcleq_f32(d, vdupq_n_f32(-0.5f)));
  return vaddq_s32(vsubq_s32(ti, up), down);
}

void quantize16(const float* x, float32x4_t inv, float32x4_t offset, float32x4_t qmin,
                float32x4_t qmax, int8_t* q) {
  const int16x8_t lo = vcombine_s16(vqmovn_s32(quantize4(x, inv, offset, qmin, qmax)),
                                    vqmovn_s32(quantize4(x + 4, inv, offset, qmin, qmax)));
  const int16x8_t hi = vcombine_s16(vqmovn_s32(quantize4(x + 8, inv, offset, qmin, qmax)),
                                    vqmovn_s32(quantize4(x + 12, inv, offset, qmin, qmax)));
  vst1q_s8(q, vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi)));
}

void f32_qs8_quantize_16x__neon(std::size_t n, const float* x, float inv, float offset,
                                float qmin, float qmax, int8_t* q) {
  const float32x4_t vinv = vdupq_n_f32(inv), voff = vdupq_n_f32(offset);
  const float32x4_t vmin = vdupq_n_f32(qmin), vmax = vdupq_n_f32(qmax);
  std::size_t i = 0;
  for (; i + kStep <= n; i += kStep) quantize16(x + i, vinv, voff, vmin, vmax, q + i);
  if (i < n) {
    float tail[kStep] = {};
    int8_t out[kStep];
    std::memcpy(tail, x + i, (n - i) * sizeof(float));
    quantize16(tail, vinv, voff, vmin, vmax, out);
    std::memcpy(q + i, out, n - i);
  }
}

}  // namespace

const QuantizeKernels kNeonQuantize =
    EDGE_QUANTIZE_KERNELS(f32_qs8_quantize_16x__neon, minmax_neon);

}  // namespace detail
}  // namespace edge
