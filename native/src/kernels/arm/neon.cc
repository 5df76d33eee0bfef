// Arm NEON kernels without dot product: Armv7-A (32-bit, -mfpu=neon) and Armv8-A (aarch64).
// The same source serves both; only intrinsics common to the two are used.
//
// GEMM: one q register holds 4 channels x 4 k of a block field (layout.h). Fields are unpacked
// with a byte shift and AND, multiplied with vmull/vmlal_s8 against the 4 activations duplicated
// into a d register, accumulated in int16 for as many blocks as cannot overflow (sub-byte codes
// are small) and widened with vpadal. int8 weights widen after every vmull: (-128)(-128) * 2
// overflows int16, so two vmlal in a row are not exact.
// Epilogue: vqrdmulh is exactly SaturatingRoundingDoublingHighMul and vrshl a right shift that
// rounds ties up; ties away adds -1 to negative values first (x - 1 then round half up), single
// rounding uses 64-bit vmull + vrshl + saturating vqmovn.
//
// Fused kernels (qs8_*_gemm_requant_2x16c4 / qs8_*_igemm_requant_2x16c4, __neon on Armv7,
// __aarch64_neon on Armv8): the same vmull / vmlal loops, quarter by quarter, for 2 rows; each
// finished quarter (the two rows' 4 sums) joins the row's start value (bias minus the weight
// zero-point term) and waits for the requantisation of qs8_requant_neon.h. 2 rows because
// Armv7 has 16 q registers: a quarter's int32 and int16 accumulators, the fields and the
// activations take 13 of them for 2 rows (4 rows would spill inside the loop). On Armv8 the
// 8 finished quarters stay in registers (GCC 12: no q-register store before the int8 stores);
// on Armv7 GCC keeps them on the stack and calls the epilogue out of line: one store and one
// load per finished quarter per tile, none inside the K loop.
// Instructions per 16x2 tile and K block:
//   int8  4 LDR q + 8 LD1R + 16 SMULL + 16 SADALP   (block_k = 4)
//   int4  4 LDR q + 8 extractions + 16 LD1R + 32 SMLAL (+ SADALP when the int16 sums flush)
//   2-bit 4 LDR q + 24 extractions + 32 LD1R + 64 SMLAL (block_k = 16)
// then once per tile 8 pairwise adds (ADDP), 8 ADD of the start values and the epilogue,
// 2 x 21 instructions with the default rounding. The unfused path stores 2 x 16 int32 sums and
// requant_neon spends ~17 instructions per 4 outputs on them (~2 x 68 per tile).
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/arm/qs8_requant_neon.h"
#include "kernels/ukernels.h"

namespace edge {
namespace detail {
namespace {

inline int8x8_t dup4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return vreinterpret_s8_s32(vdup_n_s32(v));
}

// Field kField of a block quarter as signed bytes (codes are small and non-negative).
template <int kBits, int kField>
inline int8x16_t extract(uint8x16_t raw, uint8x16_t mask) {
  if constexpr (kField == 0) {
    return vreinterpretq_s8_u8(vandq_u8(raw, mask));
  } else if constexpr ((kField + 1) * kBits == 8) {
    return vreinterpretq_s8_u8(vshrq_n_u8(raw, kBits * kField));  // top field: no mask needed
  } else {
    return vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(raw, kBits * kField), mask));
  }
}

// [a0 a1 a2 a3], [b0 b1 b2 b3] -> [a0+a1, a2+a3, b0+b1, b2+b3]
inline int32x4_t pairwise(int32x4_t a, int32x4_t b) {
  return vcombine_s32(vpadd_s32(vget_low_s32(a), vget_high_s32(a)),
                      vpadd_s32(vget_low_s32(b), vget_high_s32(b)));
}

// ------------------------------------------------------------------------------ sub-byte
template <int kBits, int R, int... kFields>
void subbyte_quarter(std::size_t nblocks, const uint8_t* w, const uint8_t* x, std::size_t x_stride,
                     int32_t* acc, std::integer_sequence<int, kFields...>) {
  constexpr int kNumFields = 8 / kBits;
  constexpr int kBlockK = 4 * kNumFields;
  // int16 lanes gain one product per field per block, each at most max_code * 128.
  constexpr std::size_t kFlush = 32767 / (((1 << kBits) - 1) * 128 * kNumFields);
  const uint8x16_t mask = vdupq_n_u8(static_cast<uint8_t>((1 << kBits) - 1));
  for (int q = 0; q < 4; ++q) {
    int32x4_t lo32[R], hi32[R];
    for (int r = 0; r < R; ++r) lo32[r] = hi32[r] = vdupq_n_s32(0);
    std::size_t b = 0;
    while (b < nblocks) {
      const std::size_t end = b + kFlush < nblocks ? b + kFlush : nblocks;
      int16x8_t lo16[R], hi16[R];
      for (int r = 0; r < R; ++r) lo16[r] = hi16[r] = vdupq_n_s16(0);
      for (; b < end; ++b) {
        const uint8x16_t raw = vld1q_u8(w + b * 64 + 16 * q);
        const int8x16_t f[kNumFields] = {extract<kBits, kFields>(raw, mask)...};
        for (int r = 0; r < R; ++r) {
          const uint8_t* xb = x + r * x_stride + b * kBlockK;
          for (int i = 0; i < kNumFields; ++i) {
            const int8x8_t xg = dup4(xb + 4 * i);
            lo16[r] = vmlal_s8(lo16[r], vget_low_s8(f[i]), xg);
            hi16[r] = vmlal_s8(hi16[r], vget_high_s8(f[i]), xg);
          }
        }
      }
      for (int r = 0; r < R; ++r) {
        lo32[r] = vpadalq_s16(lo32[r], lo16[r]);
        hi32[r] = vpadalq_s16(hi32[r], hi16[r]);
      }
    }
    for (int r = 0; r < R; ++r) vst1q_s32(acc + 16 * r + 4 * q, pairwise(lo32[r], hi32[r]));
  }
}

template <int kBits>
void gemm_subbyte(std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                  std::size_t x_stride, int32_t* acc) {
  using Fields = std::make_integer_sequence<int, 8 / kBits>;
  if (rows == 1) {
    subbyte_quarter<kBits, 1>(nblocks, w, x, x_stride, acc, Fields{});
  } else {
    subbyte_quarter<kBits, 2>(nblocks, w, x, x_stride, acc, Fields{});
  }
}

// ------------------------------------------------------------------------------ int8
template <int R>
void int8_rows(std::size_t nblocks, const uint8_t* w, const uint8_t* x, std::size_t x_stride,
               int32_t* acc) {
  for (int q = 0; q < 4; ++q) {
    int32x4_t lo[R], hi[R];
    for (int r = 0; r < R; ++r) lo[r] = hi[r] = vdupq_n_s32(0);
    for (std::size_t b = 0; b < nblocks; ++b) {
      const int8x16_t wq = vld1q_s8(reinterpret_cast<const int8_t*>(w + b * 64 + 16 * q));
      for (int r = 0; r < R; ++r) {
        const int8x8_t xg = dup4(x + r * x_stride + 4 * b);
        lo[r] = vpadalq_s16(lo[r], vmull_s8(vget_low_s8(wq), xg));
        hi[r] = vpadalq_s16(hi[r], vmull_s8(vget_high_s8(wq), xg));
      }
    }
    for (int r = 0; r < R; ++r) vst1q_s32(acc + 16 * r + 4 * q, pairwise(lo[r], hi[r]));
  }
}

void gemm_int8(std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
               std::size_t x_stride, int32_t* acc) {
  if (rows == 1) {
    int8_rows<1>(nblocks, w, x, x_stride, acc);
  } else {
    int8_rows<2>(nblocks, w, x, x_stride, acc);
  }
}

// ------------------------------------------------------------------------------ epilogues
struct Lanes {
  int32x4_t v, mult, ls, rs;
};

inline Lanes load_lanes(std::size_t n, const int32_t* acc, int32_t row_sum,
                        const EpilogueParams& p, std::size_t c) {
  int32x4_t a;
  if (n >= 4) {
    a = vld1q_s32(acc);
  } else {
    int32_t tmp[4] = {0, 0, 0, 0};
    std::memcpy(tmp, acc, n * 4);
    a = vld1q_s32(tmp);
  }
  Lanes l;
  l.v = vaddq_s32(a, vld1q_s32(p.bias + c));  // per-channel arrays are padded to 16
  if (p.wzp != nullptr) {
    l.v = vmlsq_s32(l.v, vld1q_s32(p.wzp + c), vdupq_n_s32(row_sum));
  } else if (p.wzp_uniform != 0) {
    l.v = vsubq_s32(l.v, vdupq_n_s32(static_cast<int32_t>(static_cast<uint32_t>(p.wzp_uniform) *
                                                          static_cast<uint32_t>(row_sum))));
  }
  l.mult = vld1q_s32(p.multiplier + c);
  l.ls = vld1q_s32(p.left_shift + c);
  l.rs = vld1q_s32(p.right_shift + c);
  return l;
}

inline int32x4_t requant4(const Lanes& l, int32_t rounding) {
  if (rounding == 2) {
    // Single rounding: (v * m + 2^(t-1)) >> t in 64 bits (vrshl rounds ties up), saturated.
    const int32x4_t neg_t = vsubq_s32(vsubq_s32(l.ls, l.rs), vdupq_n_s32(31));
    const int64x2_t lo = vrshlq_s64(vmull_s32(vget_low_s32(l.v), vget_low_s32(l.mult)),
                                    vmovl_s32(vget_low_s32(neg_t)));
    const int64x2_t hi = vrshlq_s64(vmull_s32(vget_high_s32(l.v), vget_high_s32(l.mult)),
                                    vmovl_s32(vget_high_s32(neg_t)));
    return vcombine_s32(vqmovn_s64(lo), vqmovn_s64(hi));
  }
  const int32x4_t neg_rs = vnegq_s32(l.rs);
  int32x4_t q = vqrdmulhq_s32(vshlq_s32(l.v, l.ls), l.mult);
  if (rounding == 1) {
    // Ties away: -1 on negative values when there is a shift, then round half up.
    const int32x4_t fixup = vshrq_n_s32(vandq_s32(q, neg_rs), 31);
    q = vqaddq_s32(q, fixup);
  }
  return vrshlq_s32(q, neg_rs);
}

// ------------------------------------------------------------------------------ fused
constexpr int kQs8Mr = 2;

// Quarter q (channels 4q..4q+3) of nblocks blocks for R rows, into lo (channels 4q, 4q+1) and
// hi (4q+2, 4q+3) as pairs of partial int32 sums; sub-byte products gather in int16 first for
// as many blocks as cannot overflow (see subbyte_quarter).
template <int kBits, int R, int... kFields>
inline void quarter_dot(int32x4_t (&lo)[R], int32x4_t (&hi)[R], const uint8_t* const (&x)[R],
                        std::size_t nblocks, const uint8_t* wq,
                        std::integer_sequence<int, kFields...>) {
  if constexpr (kBits == 8) {
    for (std::size_t b = 0; b < nblocks; ++b) {
      const int8x16_t w8 = vld1q_s8(reinterpret_cast<const int8_t*>(wq + b * 64));
      for (int r = 0; r < R; ++r) {
        const int8x8_t xg = dup4(x[r] + 4 * b);
        lo[r] = vpadalq_s16(lo[r], vmull_s8(vget_low_s8(w8), xg));
        hi[r] = vpadalq_s16(hi[r], vmull_s8(vget_high_s8(w8), xg));
      }
    }
  } else {
    constexpr int kNumFields = 8 / kBits;
    constexpr int kBlockK = 4 * kNumFields;
    constexpr std::size_t kFlush = 32767 / (((1 << kBits) - 1) * 128 * kNumFields);
    const uint8x16_t mask = vdupq_n_u8(static_cast<uint8_t>((1 << kBits) - 1));
    std::size_t b = 0;
    while (b < nblocks) {
      const std::size_t end = b + kFlush < nblocks ? b + kFlush : nblocks;
      int16x8_t lo16[R], hi16[R];
      for (int r = 0; r < R; ++r) lo16[r] = hi16[r] = vdupq_n_s16(0);
      for (; b < end; ++b) {
        const uint8x16_t raw = vld1q_u8(wq + b * 64);
        const int8x16_t f[kNumFields] = {extract<kBits, kFields>(raw, mask)...};
        for (int r = 0; r < R; ++r) {
          const uint8_t* xb = x[r] + b * kBlockK;
          for (int i = 0; i < kNumFields; ++i) {
            const int8x8_t xg = dup4(xb + 4 * i);
            lo16[r] = vmlal_s8(lo16[r], vget_low_s8(f[i]), xg);
            hi16[r] = vmlal_s8(hi16[r], vget_high_s8(f[i]), xg);
          }
        }
      }
      for (int r = 0; r < R; ++r) {
        lo[r] = vpadalq_s16(lo[r], lo16[r]);
        hi[r] = vpadalq_s16(hi[r], hi16[r]);
      }
    }
  }
}

template <int kBits, int R>
inline void quarter_dot(int32x4_t (&lo)[R], int32x4_t (&hi)[R], const uint8_t* const (&x)[R],
                        std::size_t nblocks, const uint8_t* wq) {
  quarter_dot<kBits, R>(lo, hi, x, nblocks, wq,
                        std::make_integer_sequence<int, kBits == 8 ? 1 : 8 / kBits>{});
}

template <int kBits>
void gemm_requant(std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                  std::size_t x_stride, const int32_t* row_sums, std::size_t sums_stride,
                  const GemmQs8Params& p, std::size_t tile, std::size_t nc, int8_t* out,
                  std::size_t out_stride) {
  constexpr int R = kQs8Mr;
  std::size_t idx[R];
  int8_t* o[R];
  int32x4_t a[R][4];
  start_rows<R>(p, tile, rows, row_sums, sums_stride, out, out_stride, idx, o, a);
  const uint8_t* xr[R];
  for (int r = 0; r < R; ++r) xr[r] = x + idx[r] * x_stride;
  for (int q = 0; q < 4; ++q) {
    int32x4_t lo[R], hi[R];
    for (int r = 0; r < R; ++r) lo[r] = hi[r] = vdupq_n_s32(0);
    quarter_dot<kBits, R>(lo, hi, xr, nblocks, w + 16 * q);
    for (int r = 0; r < R; ++r) a[r][q] = vaddq_s32(a[r][q], pairwise(lo[r], hi[r]));
  }
  requant_store<R>(a, p, tile, nc, o);
}

template <int kBits>
void igemm_requant(std::size_t rows, std::size_t taps, std::size_t blocks_per_tap,
                   const uint8_t* w, const uint8_t* const* ind, const int32_t* row_sums,
                   const GemmQs8Params& p, std::size_t tile, std::size_t nc, int8_t* out,
                   std::size_t out_stride) {
  constexpr int R = kQs8Mr;
  std::size_t idx[R];
  int8_t* o[R];
  int32x4_t a[R][4];
  start_rows<R>(p, tile, rows, row_sums, 1, out, out_stride, idx, o, a);
  for (int q = 0; q < 4; ++q) {
    int32x4_t lo[R], hi[R];
    for (int r = 0; r < R; ++r) lo[r] = hi[r] = vdupq_n_s32(0);
    for (std::size_t t = 0; t < taps; ++t) {
      const uint8_t* xr[R];
      for (int r = 0; r < R; ++r) xr[r] = ind[idx[r] * taps + t];
      quarter_dot<kBits, R>(lo, hi, xr, blocks_per_tap, w + t * blocks_per_tap * 64 + 16 * q);
    }
    for (int r = 0; r < R; ++r) a[r][q] = vaddq_s32(a[r][q], pairwise(lo[r], hi[r]));
  }
  requant_store<R>(a, p, tile, nc, o);
}

}  // namespace

int32_t prepare_int8_neon(const int8_t* src, std::size_t n, uint8_t* dst) {
  int32x4_t sum = vdupq_n_s32(0);
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const int8x16_t v = vld1q_s8(src + i);
    vst1q_s8(reinterpret_cast<int8_t*>(dst + i), v);
    sum = vpadalq_s16(sum, vpaddlq_s8(v));
  }
  const int32x2_t half = vadd_s32(vget_low_s32(sum), vget_high_s32(sum));
  int32_t total = vget_lane_s32(vpadd_s32(half, half), 0);
  for (; i < n; ++i) {
    dst[i] = static_cast<uint8_t>(src[i]);
    total += src[i];
  }
  return total;
}

// GemmKernels::row_sums (ukernels.h): the int8 sums of 1x1 rows the fused GEMM reads in place
// (conv2d.cc), for the weight zero points of the sub-byte codes; nothing stored. prepare's pair
// widening in 16-byte steps, then one 8-byte step (rows of K = 24, 40, ..). Shared by the NEON,
// dotprod and i8mm tables (Armv7 and aarch64: no across-vector add).
void row_sums_int8_neon(const int8_t* x, std::size_t n, std::size_t stride, std::size_t rows,
                        int32_t* sums) {
  for (std::size_t r = 0; r < rows; ++r) {
    const int8_t* src = x + r * stride;
    int32x4_t sum = vdupq_n_s32(0);
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) sum = vpadalq_s16(sum, vpaddlq_s8(vld1q_s8(src + i)));
    if (i + 8 <= n) {
      sum = vaddw_s16(sum, vpaddl_s8(vld1_s8(src + i)));
      i += 8;
    }
    const int32x2_t half = vadd_s32(vget_low_s32(sum), vget_high_s32(sum));
    int32_t total = vget_lane_s32(vpadd_s32(half, half), 0);
    for (; i < n; ++i) total += src[i];
    sums[r] = total;
  }
}

void requant_neon(std::size_t n, const int32_t* acc, int32_t row_sum, const EpilogueParams& p,
                  std::size_t c0, int8_t* out) {
  const int32x4_t zp = vdupq_n_s32(p.out_zero_point);
  const int32x4_t qmin = vdupq_n_s32(p.out_min), qmax = vdupq_n_s32(p.out_max);
  for (std::size_t i = 0; i < n; i += 4) {
    const std::size_t len = n - i < 4 ? n - i : 4;
    int32x4_t q = vaddq_s32(requant4(load_lanes(len, acc + i, row_sum, p, c0 + i), p.rounding), zp);
    q = vminq_s32(vmaxq_s32(q, qmin), qmax);
    const int8x8_t bytes = vmovn_s16(vcombine_s16(vmovn_s32(q), vdup_n_s16(0)));
    int8_t tmp[8];
    vst1_s8(tmp, bytes);
    std::memcpy(out + i, tmp, len);
  }
}

void dequant_neon(std::size_t n, const int32_t* acc, int32_t row_sum, const EpilogueParams& p,
                  std::size_t c0, float* out) {
  const float32x4_t lo = vdupq_n_f32(p.float_min), hi = vdupq_n_f32(p.float_max);
  for (std::size_t i = 0; i < n; i += 4) {
    const std::size_t len = n - i < 4 ? n - i : 4;
    const Lanes l = load_lanes(len, acc + i, row_sum, p, c0 + i);
    float32x4_t f = vmulq_f32(vcvtq_f32_s32(l.v), vld1q_f32(p.scale + c0 + i));
    // Exactly the scalar clamp (f < lo ? lo : f, then f > hi ? hi : f).
    f = vbslq_f32(vcltq_f32(f, lo), lo, f);
    f = vbslq_f32(vcgtq_f32(f, hi), hi, f);
    float tmp[4];
    vst1q_f32(tmp, f);
    std::memcpy(out + i, tmp, len * 4);
  }
}

// Also the dotprod table's unfused depthwise (dotprod.cc), hence external.
void qs8_qc8w_dwconv_8c__neon(std::size_t channels, std::size_t taps, const int8_t* const* inputs,
                 const int32_t* weights, std::size_t stride, int32_t* acc) {
  std::size_t c = 0;
  for (; c + 8 <= channels; c += 8) {
    int32x4_t a0 = vdupq_n_s32(0), a1 = vdupq_n_s32(0);
    for (std::size_t t = 0; t < taps; ++t) {
      const int16x8_t xv = vmovl_s8(vld1_s8(inputs[t] + c));
      const int32_t* wt = weights + t * stride + c;
      a0 = vmlaq_s32(a0, vmovl_s16(vget_low_s16(xv)), vld1q_s32(wt));
      a1 = vmlaq_s32(a1, vmovl_s16(vget_high_s16(xv)), vld1q_s32(wt + 4));
    }
    vst1q_s32(acc + c, a0);
    vst1q_s32(acc + c + 4, a1);
  }
  for (; c < channels; ++c) {
    uint32_t sum = 0;
    for (std::size_t t = 0; t < taps; ++t) {
      sum += static_cast<uint32_t>(static_cast<int32_t>(inputs[t][c]) * weights[t * stride + c]);
    }
    acc[c] = static_cast<int32_t>(sum);
  }
}

namespace {

// Fused depthwise (DwQs8Fn; ukernels.h, DwArmTables), Armv7 and aarch64:
// qs8_qc8w_dwconv_16c__neon / __aarch64_neon. One pixel, 16 channels per block, 4 int32
// accumulators that start at the bias and stay in registers until dw_requant16.
// Why SMLAL on int16 rather than taps grouped by 4: plain NEON has no 4-way dot product; its
// 8-bit multiplies (SMULL/SMLAL .8b) give int16 products, and two taps' products already
// overflow int16 (2 x 128 x 128 = 2^15), so grouping taps would still widen every product
// (SADALP) and add the 4x4 byte transposes on top. Widening the activations once per tap (SXTL,
// SXTL2) and multiply-accumulating int16 x int16 into int32 (4 SMLAL/SMLAL2) needs no
// permutation, and the weights are widened once at plan time (int16 [tap][stride]).
// Instructions per 16 channels (aarch64, GCC 12 -O3 disassembly), per tap: LDR (tap pointer),
// LDR q (16 activations), LDP q (16 int16 weights), SXTL, SXTL2, 4 SMLAL/SMLAL2 = 9, + 3 of
// loop (ADD, CMP, B); per block: 4 LDR q (bias), the
// epilogue (kUpward 4 x (LDR mult, LDR -rs, SQRDMULH, SRSHL, ADD) + 6 SQXTN + SMAX + SMIN + ST1
// = 29; + 4 x (LDR, SSHL) with left shifts; + 4 x (LDR, AND, SSHR, SQADD) with the away tail;
// kSingle 4 x (LDR mult, LDR -t, 2 SXTL, 2 SMULL, 2 SRSHL, 2 SQXTN, ADD) + 9 = 53).
// The unfused path (qs8_qc8w_dwconv_8c__neon + requant_neon) per 16 channels and tap: 2 x (LDR pointer,
// LDR d, LDP q int32 weights, 3 SXTL to int32, 2 MLA) = 16, + 6 of loop; then 4 STR q of the
// sums and the separate requant pass, ~17 per 4 outputs (~68 per block) against the fused 29.
void dwconv_qs8_neon_pixel(std::size_t channels, std::size_t groups, const int8_t* const* inputs,
                           const int8_t* weights, const DwRequantParams& p, int8_t* out) {
  (void)groups;  // NEON takes taps one by one (p.arm.taps); the padding pointers stay unread
  const DwArmTables& t = p.arm;
  const auto* w = reinterpret_cast<const int16_t*>(weights);
  dw_pixel(channels, t, out, [&](auto partial, std::size_t c, std::size_t n, int32x4_t(&a)[4]) {
    for (std::size_t k = 0; k < t.taps; ++k) {
      const int8x16_t x = dw_load16<decltype(partial)::value>(inputs[k] + c, n);
      const int16_t* wk = w + k * t.stride + c;
      const int16x8_t xl = vmovl_s8(vget_low_s8(x)), xh = vmovl_s8(vget_high_s8(x));
      const int16x8_t wl = vld1q_s16(wk), wh = vld1q_s16(wk + 8);
      a[0] = vmlal_s16(a[0], vget_low_s16(xl), vget_low_s16(wl));
      a[1] = vmlal_s16(a[1], vget_high_s16(xl), vget_high_s16(wl));
      a[2] = vmlal_s16(a[2], vget_low_s16(xh), vget_low_s16(wh));
      a[3] = vmlal_s16(a[3], vget_high_s16(xh), vget_high_s16(wh));
    }
  });
}

// The kernels by name (docs/kernels.md; XNNPACK's convention): the table below takes each
// name from the symbol. One source for Armv7 and aarch64 (no AArch64-only instructions), hence
// __neon on both, as XNNPACK names such kernels.
void qs8_qc8w_gemm_1x16c4__neon(EDGE_GEMM_PARAMS) { gemm_int8(EDGE_GEMM_ARGS); }
void qs8_qc8w_gemm_2x16c4__neon(EDGE_GEMM_PARAMS) { gemm_int8(EDGE_GEMM_ARGS); }
void qs8_qc4w_gemm_1x16c4__neon(EDGE_GEMM_PARAMS) { gemm_subbyte<4>(EDGE_GEMM_ARGS); }
void qs8_qc4w_gemm_2x16c4__neon(EDGE_GEMM_PARAMS) { gemm_subbyte<4>(EDGE_GEMM_ARGS); }
void qs8_qc2w_gemm_1x16c4__neon(EDGE_GEMM_PARAMS) { gemm_subbyte<2>(EDGE_GEMM_ARGS); }
void qs8_qc2w_gemm_2x16c4__neon(EDGE_GEMM_PARAMS) { gemm_subbyte<2>(EDGE_GEMM_ARGS); }
void qs8_qc8w_gemm_requant_2x16c4__neon(EDGE_GEMM_QS8_PARAMS) {
  gemm_requant<8>(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc4w_gemm_requant_2x16c4__neon(EDGE_GEMM_QS8_PARAMS) {
  gemm_requant<4>(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc2w_gemm_requant_2x16c4__neon(EDGE_GEMM_QS8_PARAMS) {
  gemm_requant<2>(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc8w_igemm_requant_2x16c4__neon(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<8>(EDGE_IGEMM_QS8_ARGS);
}
void qs8_qc4w_igemm_requant_2x16c4__neon(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<4>(EDGE_IGEMM_QS8_ARGS);
}
void qs8_qc2w_igemm_requant_2x16c4__neon(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<2>(EDGE_IGEMM_QS8_ARGS);
}

constexpr GemmKernels kGemm8 = {EDGE_UKERNEL(qs8_qc8w_gemm_1x16c4__neon, 1),
                                EDGE_UKERNEL(qs8_qc8w_gemm_2x16c4__neon, 2), XFormat::kInt8,
                                prepare_int8_neon};
constexpr GemmKernels kGemm4 = {EDGE_UKERNEL(qs8_qc4w_gemm_1x16c4__neon, 1),
                                EDGE_UKERNEL(qs8_qc4w_gemm_2x16c4__neon, 2), XFormat::kInt8,
                                prepare_int8_neon, row_sums_int8_neon};
// Ternary and int2 weights are both 2-bit fields: one kernel (the plan folds the zero points).
constexpr GemmKernels kGemm2 = {EDGE_UKERNEL(qs8_qc2w_gemm_1x16c4__neon, 1),
                                EDGE_UKERNEL(qs8_qc2w_gemm_2x16c4__neon, 2), XFormat::kInt8,
                                prepare_int8_neon, row_sums_int8_neon};
constexpr GemmQs8Kernel kGemmQs8_2 = EDGE_UKERNEL(qs8_qc2w_gemm_requant_2x16c4__neon, kQs8Mr);
constexpr IgemmQs8Kernel kIgemmQs8_2 = EDGE_UKERNEL(qs8_qc2w_igemm_requant_2x16c4__neon, kQs8Mr);

// DwQs8Fn takes a row of pixels (ukernels.h); the driver gives Arm one pixel per call (no row
// indirection there), so this only keeps the interface.
void qs8_qc8w_dwconv_16c__neon(std::size_t pixels, std::size_t channels, std::size_t groups,
                               const int8_t* const* inputs, std::size_t step,
                               const int8_t* weights, const DwRequantParams& p, int8_t* out) {
  for (std::size_t n = 0; n < pixels; ++n) {
    dwconv_qs8_neon_pixel(channels, groups, inputs + n * step, weights, p, out + n * channels);
  }
}

}  // namespace

const IsaKernels kNeonKernels = {
    {kGemm8, kGemm4, kGemm2, kGemm2},
    requant_neon,
    dequant_neon,
    EDGE_NAMED(qs8_qc8w_dwconv_8c__neon),
    EDGE_NAMED(qs8_qc8w_dwconv_16c__neon),
    {EDGE_UKERNEL(qs8_qc8w_gemm_requant_2x16c4__neon, kQs8Mr),
     EDGE_UKERNEL(qs8_qc4w_gemm_requant_2x16c4__neon, kQs8Mr), kGemmQs8_2, kGemmQs8_2},
    {EDGE_UKERNEL(qs8_qc8w_igemm_requant_2x16c4__neon, kQs8Mr),
     EDGE_UKERNEL(qs8_qc4w_igemm_requant_2x16c4__neon, kQs8Mr), kIgemmQs8_2, kIgemmQs8_2},
};

}  // namespace detail
}  // namespace edge
