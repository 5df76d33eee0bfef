// The in-register requantisation epilogue of the Arm fused kernels
// (qs8_*_gemm_requant_* / qs8_*_igemm_requant_*, GemmQs8Fn / IgemmQs8Fn in ukernels.h), shared
// by neon.cc (Armv7 and Armv8 NEON) and dotprod.cc (Armv8.2 dotprod).
//
// ODR: everything here is in an anonymous namespace, so each ISA translation unit that includes
// it gets its own internal copy compiled with its own flags (the rule at the top of ukernels.h).
//
// The three LiteRT rules (edge/kernels/requant.h), on 4 int32 lanes, with ls / rs the left and
// right shifts of the channel's exponent:
//   kUpward        SQRDMULH(v << ls, m) is SaturatingRoundingDoublingHighMul bit for bit
//                  (floor((a b + 2^30) / 2^31), saturating only INT32_MIN^2), SSHL by ls is the
//                  wrapping int32 left shift, and SRSHL by -rs is (q + 2^(rs-1)) >> rs computed
//                  without overflow (the architecture rounds in wider precision): exactly
//                  rounding_right_shift with ties up. Three instructions.
//   kAwayFromZero  the same after q - 1 on negative q when rs > 0: with q = j 2^rs + f,
//                  (q - 1 + 2^(rs-1)) >> rs = j + [f > 2^(rs-1)], i.e. a negative tie goes down
//                  (away from zero) and every other value rounds as before. The -1 is the sign
//                  of (q & -rs) (-rs has its sign bit set exactly when rs > 0), added with
//                  saturation so that INT32_MIN stays put (its remainder is 0: same result).
//   kSingle        (v m + 2^(t-1)) >> t in 64 bits, t = 31 - ls + rs: SMULL + SRSHL (rounding
//                  exact in wider precision) + SQXTN, whose saturation is single_rounding_
//                  multiply's int32 clamp. A double-rounding SQRDMULH form would round twice and
//                  differ near ties, so this rule pays for the 64-bit lanes.
// The output zero point is then added in int32 with wrap-around (as the scalar reference and
// the AVX-512 epilogue's low dword do; adding it after a saturating narrow to int16, XNNPACK's
// way, would differ when v m / 2^31 lies within 128 of INT32_MAX), the result narrowed with
// saturation to int16 and int8 (order-preserving, so clamping the int8 lanes to [out_min,
// out_max], which lie in [-128, 127], equals clamping the int32 value).
//
// Instructions per row of 16 outputs (aarch64; constants loaded once per call):
//   kUpward 21 (4 SQRDMULH, 4 SRSHL, 4 ADD, 4+2 SQXTN/SQXTN2, SMAX, SMIN, ST1), + 4 SSHL when
//   some multiplier is >= 1; kAwayFromZero + 12 (AND, SSHR, SQADD per vector); kSingle 37
//   (8 SMULL/SMULL2, 8 SRSHL, 8 SQXTN/SQXTN2, then as kUpward from the ADD). Weight zero points
//   add 4 MLS (per channel) or 4 SUB (uniform) per row at the start of the row's accumulation.
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/ukernels.h"

namespace edge {
namespace detail {
namespace {

// static_cast<int32_t>(Rounding) (edge/kernels/requant.h holds inline functions, so an ISA
// translation unit must not include it).
constexpr int kRuleUpward = 0;
constexpr int kRuleAwayFromZero = 1;
constexpr int kRuleSingle = 2;

// The requantisation constants of one quarter (4 channels) of a tile.
struct Qs8Quarter {
  int32x4_t mult;    // Q31 significands
  int32x4_t ls;      // left shifts (kUpward / kAwayFromZero)
  int32x4_t neg_rs;  // minus the right shifts: SRSHL shifts right by negative amounts
  int64x2_t neg_t_lo, neg_t_hi;  // kSingle: -(31 - ls + rs) for lanes 0-1 and 2-3
};

inline Qs8Quarter load_quarter(const GemmQs8Params& p, std::size_t c) {
  Qs8Quarter k;
  k.mult = vld1q_s32(p.multiplier + c);  // per-channel arrays are padded to whole tiles
  k.ls = vld1q_s32(p.left_shift + c);
  const int32x4_t rs = vld1q_s32(p.right_shift + c);
  k.neg_rs = vnegq_s32(rs);
  const int32x4_t neg_t = vsubq_s32(vsubq_s32(k.ls, rs), vdupq_n_s32(31));
  k.neg_t_lo = vmovl_s32(vget_low_s32(neg_t));
  k.neg_t_hi = vmovl_s32(vget_high_s32(neg_t));
  return k;
}

// The accumulator start of one row: bias - zp * row_sum (wrapping int32), for the 4 quarters.
// The dot products are added to it, so the bias costs nothing in the epilogue.
inline void row_init(const GemmQs8Params& p, std::size_t tile, int32_t row_sum,
                     int32x4_t (&init)[4]) {
  const std::size_t c0 = tile * 16;
  for (int q = 0; q < 4; ++q) init[q] = vld1q_s32(p.bias + c0 + 4 * q);
  if (p.wzp != nullptr) {
    const int32x4_t s = vdupq_n_s32(row_sum);
    for (int q = 0; q < 4; ++q) init[q] = vmlsq_s32(init[q], vld1q_s32(p.wzp + c0 + 4 * q), s);
  } else if (p.wzp_uniform != 0) {
    const int32x4_t zs = vdupq_n_s32(static_cast<int32_t>(static_cast<uint32_t>(p.wzp_uniform) *
                                                          static_cast<uint32_t>(row_sum)));
    for (int q = 0; q < 4; ++q) init[q] = vsubq_s32(init[q], zs);
  }
}

// Whether the row sums are needed (callers may leave them unset when no weight has a zero point).
inline bool has_wzp(const GemmQs8Params& p) { return p.wzp != nullptr || p.wzp_uniform != 0; }

template <int kRule>
inline int32x4_t requant4(int32x4_t v, const Qs8Quarter& k, bool pre_shift) {
  if constexpr (kRule == kRuleSingle) {
    const int64x2_t lo =
        vrshlq_s64(vmull_s32(vget_low_s32(v), vget_low_s32(k.mult)), k.neg_t_lo);
    const int64x2_t hi =
        vrshlq_s64(vmull_s32(vget_high_s32(v), vget_high_s32(k.mult)), k.neg_t_hi);
    return vcombine_s32(vqmovn_s64(lo), vqmovn_s64(hi));
  } else {
    if (pre_shift) v = vshlq_s32(v, k.ls);
    int32x4_t q = vqrdmulhq_s32(v, k.mult);
    if constexpr (kRule == kRuleAwayFromZero) {
      q = vqaddq_s32(q, vshrq_n_s32(vandq_s32(q, k.neg_rs), 31));
    }
    return vrshlq_s32(q, k.neg_rs);
  }
}

// Writes the first nc (1..16) bytes of v.
inline void store_row(int8_t* out, int8x16_t v, std::size_t nc) {
  if (nc == 16) {
    vst1q_s8(out, v);
    return;
  }
  int8_t tmp[16];
  vst1q_s8(tmp, v);
  std::memcpy(out, tmp, nc);
}

// Requantises R rows x 16 channels of finished accumulators (bias and zero-point terms
// included) and stores channels [0, nc) of each row at out[r]. Quarter by quarter: one
// quarter's constants (3 registers) serve all rows while the 4R accumulators stay where they
// are (all constants at once would need 12-20 more registers than the 32 and spill), and no
// store comes before the last constant load (the int8 stores may alias the tables as far as the
// compiler knows, which would force reloads).
template <int kRule, int R>
inline void requant_store_rule(int32x4_t (&a)[R][4], const GemmQs8Params& p, std::size_t tile,
                               std::size_t nc, int8_t* const (&out)[R]) {
  const bool pre = p.any_pre_shift != 0;
  const int32x4_t zp = vdupq_n_s32(p.zero_point);
  for (int q = 0; q < 4; ++q) {
    const Qs8Quarter k = load_quarter(p, tile * 16 + 4 * q);
    for (int r = 0; r < R; ++r) a[r][q] = vaddq_s32(requant4<kRule>(a[r][q], k, pre), zp);
  }
  const int8x16_t qmin = vdupq_n_s8(static_cast<int8_t>(p.out_min));
  const int8x16_t qmax = vdupq_n_s8(static_cast<int8_t>(p.out_max));
  for (int r = 0; r < R; ++r) {
    const int16x8_t lo = vcombine_s16(vqmovn_s32(a[r][0]), vqmovn_s32(a[r][1]));
    const int16x8_t hi = vcombine_s16(vqmovn_s32(a[r][2]), vqmovn_s32(a[r][3]));
    int8x16_t b = vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi));
    b = vminq_s8(vmaxq_s8(b, qmin), qmax);
    store_row(out[r], b, nc);
  }
}

// The rule is the same for every call of a plan: one well-predicted branch per call.
template <int R>
inline void requant_store(int32x4_t (&a)[R][4], const GemmQs8Params& p, std::size_t tile,
                          std::size_t nc, int8_t* const (&out)[R]) {
  switch (p.rounding) {
    case kRuleAwayFromZero: requant_store_rule<kRuleAwayFromZero, R>(a, p, tile, nc, out); break;
    case kRuleSingle: requant_store_rule<kRuleSingle, R>(a, p, tile, nc, out); break;
    default: requant_store_rule<kRuleUpward, R>(a, p, tile, nc, out); break;
  }
}

// requant4 for kUpward and kAwayFromZero channels mixed in one vector (LiteRT's depthwise rounds
// the channels past the last multiple of 8 away from zero, the others up): the away fix-up
// (q & mask) >> 31 takes `away` as its mask, which holds -rs on the lanes that round ties away
// (requant4<kRuleAwayFromZero>'s mask) and 0 on the others (no fix-up: requant4<kRuleUpward>).
template <bool kPreShift, bool kAway>
inline int32x4_t requant4_mixed(int32x4_t v, const Qs8Quarter& k, int32x4_t away) {
  if constexpr (kPreShift) v = vshlq_s32(v, k.ls);
  int32x4_t q = vqrdmulhq_s32(v, k.mult);
  if constexpr (kAway) q = vqaddq_s32(q, vshrq_n_s32(vandq_s32(q, away), 31));
  return vrshlq_s32(q, k.neg_rs);
}

// The fused depthwise epilogue (DwArmTables, natural channel order): requantises the 16
// finished accumulators of channels c0 .. c0 + 15 (bias included), adds the output zero point
// (wrapping int32, as requant_store_rule), narrows with saturation and clamps. The tables are
// loaded per call: the kernel computes one pixel, so there is no second row to share them with.
template <bool kSingle, bool kPreShift, bool kAway>
inline int8x16_t dw_requant16(int32x4_t (&a)[4], const DwArmTables& t, std::size_t c0,
                              int8x16_t qmin, int8x16_t qmax) {
  const int32x4_t zp = vdupq_n_s32(t.zero_point);
  for (int q = 0; q < 4; ++q) {
    const std::size_t c = c0 + 4 * static_cast<std::size_t>(q);
    Qs8Quarter k{};
    k.mult = vld1q_s32(t.multiplier + c);
    if constexpr (kSingle) {
      const int32x4_t neg_t = vld1q_s32(t.neg_total_shift + c);
      k.neg_t_lo = vmovl_s32(vget_low_s32(neg_t));
      k.neg_t_hi = vmovl_s32(vget_high_s32(neg_t));
      a[q] = vaddq_s32(requant4<kRuleSingle>(a[q], k, false), zp);
    } else {
      if constexpr (kPreShift) k.ls = vld1q_s32(t.left_shift + c);
      k.neg_rs = vld1q_s32(t.neg_right_shift + c);
      const int32x4_t away = kAway ? vld1q_s32(t.away + c) : vdupq_n_s32(0);
      a[q] = vaddq_s32(requant4_mixed<kPreShift, kAway>(a[q], k, away), zp);
    }
  }
  const int16x8_t lo = vcombine_s16(vqmovn_s32(a[0]), vqmovn_s32(a[1]));
  const int16x8_t hi = vcombine_s16(vqmovn_s32(a[2]), vqmovn_s32(a[3]));
  return vminq_s8(vmaxq_s8(vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi)), qmin), qmax);
}

// 16 activations of one tap; the channel tail of a layer narrower than 16 channels reads only
// its n bytes (an input row is readable up to `channels` only) and leaves the rest 0.
template <bool kPartial>
inline int8x16_t dw_load16(const int8_t* p, std::size_t n) {
  if constexpr (kPartial) {
    int8_t tmp[16] = {};
    std::memcpy(tmp, p, n);
    return vld1q_s8(tmp);
  } else {
    (void)n;
    return vld1q_s8(p);
  }
}

// One output pixel of a fused depthwise kernel: 16-channel blocks whose accumulators start at
// the bias, `dot(partial, c, n, acc)` adds the taps' products of channels c .. c + 15, then
// dw_requant16 and the store. A channel tail (channels % 16) re-runs the last whole block ending
// at `channels` (natural order makes any start valid; the overlapping channels get the same
// bytes again), so only layers of fewer than 16 channels take the partial loads.
template <bool kSingle, bool kPreShift, bool kAway, class Dot>
inline void dw_pixel_rule(std::size_t channels, const DwArmTables& t, int8_t* out,
                          const Dot& dot) {
  const int8x16_t qmin = vdupq_n_s8(static_cast<int8_t>(t.out_min));
  const int8x16_t qmax = vdupq_n_s8(static_cast<int8_t>(t.out_max));
  auto block = [&](auto partial, std::size_t c, std::size_t n) {
    int32x4_t a[4];
    for (int q = 0; q < 4; ++q) a[q] = vld1q_s32(t.bias + c + 4 * static_cast<std::size_t>(q));
    dot(partial, c, n, a);
    store_row(out + c, dw_requant16<kSingle, kPreShift, kAway>(a, t, c, qmin, qmax), n);
  };
  std::size_t c = 0;
  for (; c + 16 <= channels; c += 16) block(std::false_type{}, c, 16);
  if (c < channels) {
    if (channels >= 16) {
      block(std::false_type{}, channels - 16, 16);
    } else {
      block(std::true_type{}, 0, channels);
    }
  }
}

// The rule and the optional steps are the same for every pixel of a plan: one dispatch per call.
template <class Dot>
inline void dw_pixel(std::size_t channels, const DwArmTables& t, int8_t* out, const Dot& dot) {
  if (t.single) {
    dw_pixel_rule<true, false, false>(channels, t, out, dot);
  } else if (t.any_left_shift) {
    if (t.any_away) {
      dw_pixel_rule<false, true, true>(channels, t, out, dot);
    } else {
      dw_pixel_rule<false, true, false>(channels, t, out, dot);
    }
  } else if (t.any_away) {
    dw_pixel_rule<false, false, true>(channels, t, out, dot);
  } else {
    dw_pixel_rule<false, false, false>(channels, t, out, dot);
  }
}

// Row tails (rows < R) the XNNPACK way: the missing rows alias the last real one (its inputs,
// sum and output), so one R-row body serves every call; the aliased rows compute and store the
// same bytes again.
inline std::size_t row_index(std::size_t r, std::size_t rows) {
  return r < rows ? r : rows - 1;
}

// The start of an R-row fused call: each row's index (row_index), output pointer and
// accumulators (row_init, with its row sum at row_sums[index * sums_stride] when a weight
// zero point needs it).
template <int R>
inline void start_rows(const GemmQs8Params& p, std::size_t tile, std::size_t rows,
                       const int32_t* row_sums, std::size_t sums_stride, int8_t* out,
                       std::size_t out_stride, std::size_t (&idx)[R], int8_t* (&o)[R],
                       int32x4_t (&a)[R][4]) {
  const bool sums = has_wzp(p);
  for (int r = 0; r < R; ++r) {
    idx[r] = row_index(static_cast<std::size_t>(r), rows);
    o[r] = out + idx[r] * out_stride;
    row_init(p, tile, sums ? row_sums[idx[r] * sums_stride] : 0, a[r]);
  }
}

}  // namespace
}  // namespace detail
}  // namespace edge
