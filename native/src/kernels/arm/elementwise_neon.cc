// Arm NEON element-wise kernels (edge/kernels/elementwise.h), Armv7-A and aarch64 alike (only
// intrinsics common to both). Internal linkage except the table (ODR note in ukernels.h).
//
// ADD is LiteRT's own vector loop, instruction for instruction where it matters: VSHL by the
// signed count, VQRDMULH, gemmlowp's RoundingDivideByPOT (x plus the sign-derived fixup, then the
// rounding shift VRSHL: ties away from zero), the narrowing to int16 (wrapping), then the clamp.
// MAX_POOL: vmaxq_s8 over the taps, 16 channels per register. Column sums: vaddw widening.
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/elementwise_ukernels.h"

namespace edge {
namespace detail {
namespace {

struct AddConstants {
  int32x4_t a_offset, b_offset, a_shift, b_shift, neg_exponent;
  int32_t a_mult, b_mult, out_mult;
  int16x8_t out_offset, out_min, out_max;
};

inline int32x4_t add4(int32x4_t a, int32x4_t b, const AddConstants& k) {
  const int32x4_t xa =
      vqrdmulhq_n_s32(vshlq_s32(vaddq_s32(a, k.a_offset), k.a_shift), k.a_mult);
  const int32x4_t xb =
      vqrdmulhq_n_s32(vshlq_s32(vaddq_s32(b, k.b_offset), k.b_shift), k.b_mult);
  const int32x4_t s = vqrdmulhq_n_s32(vaddq_s32(xa, xb), k.out_mult);
  // RoundingDivideByPOT: -1 for negative values when the exponent is not 0 (the AND with the
  // negated exponent is 0 for exponent 0), then the rounding (ties up) right shift.
  const int32x4_t fixup = vshrq_n_s32(vandq_s32(s, k.neg_exponent), 31);
  return vrshlq_s32(vqaddq_s32(s, fixup), k.neg_exponent);
}

inline int8x8_t finish8(int32x4_t lo, int32x4_t hi, const AddConstants& k) {
  // vmovn wraps to int16, as LiteRT's narrowing before it adds the zero point in int16.
  int16x8_t v = vaddq_s16(vcombine_s16(vmovn_s32(lo), vmovn_s32(hi)), k.out_offset);
  v = vminq_s16(vmaxq_s16(v, k.out_min), k.out_max);
  return vmovn_s16(v);
}

inline int8x16_t add16(const int8_t* a, const int8_t* b, const AddConstants& k) {
  const int8x16_t va = vld1q_s8(a), vb = vld1q_s8(b);
  const int16x8_t a0 = vmovl_s8(vget_low_s8(va)), a1 = vmovl_s8(vget_high_s8(va));
  const int16x8_t b0 = vmovl_s8(vget_low_s8(vb)), b1 = vmovl_s8(vget_high_s8(vb));
  const int32x4_t r0 = add4(vmovl_s16(vget_low_s16(a0)), vmovl_s16(vget_low_s16(b0)), k);
  const int32x4_t r1 = add4(vmovl_s16(vget_high_s16(a0)), vmovl_s16(vget_high_s16(b0)), k);
  const int32x4_t r2 = add4(vmovl_s16(vget_low_s16(a1)), vmovl_s16(vget_low_s16(b1)), k);
  const int32x4_t r3 = add4(vmovl_s16(vget_high_s16(a1)), vmovl_s16(vget_high_s16(b1)), k);
  return vcombine_s8(finish8(r0, r1, k), finish8(r2, r3, k));
}

void qs8_vadd_x16__neon(std::size_t n, const int8_t* a, const int8_t* b, const QS8AddParams& p,
                        int8_t* out) {
  AddConstants k;
  k.a_offset = vdupq_n_s32(p.a_offset);
  k.b_offset = vdupq_n_s32(p.b_offset);
  k.a_shift = vdupq_n_s32(p.a_shift);
  k.b_shift = vdupq_n_s32(p.b_shift);
  k.neg_exponent = vdupq_n_s32(-p.out_exponent);
  k.a_mult = p.a_multiplier;
  k.b_mult = p.b_multiplier;
  k.out_mult = p.out_multiplier;
  k.out_offset = vdupq_n_s16(static_cast<int16_t>(p.out_offset));
  k.out_min = vdupq_n_s16(static_cast<int16_t>(p.out_min));
  k.out_max = vdupq_n_s16(static_cast<int16_t>(p.out_max));
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) vst1q_s8(out + i, add16(a + i, b + i, k));
  if (i < n) {
    int8_t ta[16] = {}, tb[16] = {}, to[16];
    std::memcpy(ta, a + i, n - i);
    std::memcpy(tb, b + i, n - i);
    vst1q_s8(to, add16(ta, tb, k));
    std::memcpy(out + i, to, n - i);
  }
}

void qs8_maxpool_16c__neon(std::size_t channels, std::size_t taps, const int8_t* const* inputs,
                           int8_t out_min, int8_t out_max, int8_t* out) {
  if (channels < 16) return qs8_maxpool__scalar(channels, taps, inputs, out_min, out_max, out);
  const int8x16_t lo = vdupq_n_s8(out_min), hi = vdupq_n_s8(out_max);
  auto block16 = [&](std::size_t c) {
    int8x16_t m = lo;
    for (std::size_t t = 0; t < taps; ++t) m = vmaxq_s8(m, vld1q_s8(inputs[t] + c));
    vst1q_s8(out + c, vminq_s8(m, hi));
  };
  std::size_t c = 0;
  for (; c + 16 <= channels; c += 16) block16(c);
  // The tail recomputes the last whole vector (out never aliases the inputs: exact).
  if (c < channels) block16(channels - 16);
}

void qs8_rsum_16c__neon(std::size_t rows, std::size_t channels, const int8_t* in,
                        std::size_t row_stride, int32_t* sums) {
  std::size_t c = 0;
  for (; c + 16 <= channels; c += 16) {
    int32x4_t acc[4];
    for (int q = 0; q < 4; ++q) acc[q] = vld1q_s32(sums + c + 4 * q);
    for (std::size_t r = 0; r < rows; ++r) {
      const int8x16_t v = vld1q_s8(in + r * row_stride + c);
      const int16x8_t w0 = vmovl_s8(vget_low_s8(v)), w1 = vmovl_s8(vget_high_s8(v));
      acc[0] = vaddw_s16(acc[0], vget_low_s16(w0));
      acc[1] = vaddw_s16(acc[1], vget_high_s16(w0));
      acc[2] = vaddw_s16(acc[2], vget_low_s16(w1));
      acc[3] = vaddw_s16(acc[3], vget_high_s16(w1));
    }
    for (int q = 0; q < 4; ++q) vst1q_s32(sums + c + 4 * q, acc[q]);
  }
  if (c < channels) qs8_rsum__scalar(rows, channels - c, in + c, row_stride, sums + c);
}

}  // namespace

const ElementwiseKernels kNeonElementwise = {
    EDGE_NAMED(qs8_vadd_x16__neon),
    EDGE_NAMED(qs8_maxpool_16c__neon),
    EDGE_NAMED(qs8_rsum_16c__neon),
};

}  // namespace detail
}  // namespace edge
