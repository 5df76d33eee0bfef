// Armv8.2-A dot-product kernels (SDOT), aarch64 only. Compiled with
// -march=armv8.2-a+dotprod; called only when HWCAP says the core has it (isa.cc): a dotprod
// instruction is SIGILL on a Cortex-A53, which the qemu -cpu cortex-a53 test run proves.
//
// One q register of a block field is 4 channels x 4 k, exactly one sdot with the 4 activations
// of that k group selected by lane (vdotq_laneq_s32): no broadcast needed. Sub-byte codes are
// small and non-negative, so signed sdot is exact. For M = 1 the 2-bit fields are not shifted
// where the masked value still fits a signed byte: (q & 0x0C) = 4 * field 1 and (q & 0x30) =
// 16 * field 2 go to their own accumulators, which are shifted back at the end; field 3 is a
// single shift. Epilogues and depthwise are the NEON ones (neon.cc).
//
// Fused kernels (qs8_*_gemm_requant_4x16c4__dotprod, qs8_*_igemm_requant_4x16c4__dotprod): the
// same sdot loops over 4 rows x 16 channels, 16 accumulators that start at the bias (minus the
// weight zero-point term) and never leave the registers; the requantisation is
// qs8_requant_neon.h's. 4 rows: 16 accumulators + 4 weight quarters + 4 activation vectors +
// extracted sub-byte fields fit the 32 q registers; 8 rows would spill in the inner loop.
// (GCC 12 hoists all 16 weight loads of the int8 loop's 4-block step and keeps 2 accumulators
// on the stack there: one load and store each per 64 SDOT.)
// Instructions per 16x4 tile and K block (block_k = 4 / 8 / 16 for int8 / int4 / 2-bit):
//   int8  16 SDOT + 4 LDR q (+ 1 LDR q per row every 4 blocks)
//   int4  32 SDOT + 4 LDR q + 8 field extractions (AND, USHR) + 4 LDR d
//   2-bit 64 SDOT + 4 LDR q + 24 field extractions + 4 LDR q
// and once per tile the epilogue, 4 x 21 instructions for 4 rows with the default rounding
// (qs8_requant_neon.h). The unfused path stores the 4 x 16 int32 sums (16 ST1) and the separate
// requant_neon pass then spends ~17 instructions per 4 outputs (loads of sums, bias, multiplier
// and shifts, the arithmetic, narrowing through a stack buffer): ~4 x 68 per tile.
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/arm/qs8_requant_neon.h"
#include "kernels/ukernels.h"

namespace edge {
namespace detail {

void requant_neon(std::size_t n, const int32_t* acc, int32_t row_sum, const EpilogueParams& p,
                  std::size_t c0, int8_t* out);
void dequant_neon(std::size_t n, const int32_t* acc, int32_t row_sum, const EpilogueParams& p,
                  std::size_t c0, float* out);
int32_t prepare_int8_neon(const int8_t* src, std::size_t n, uint8_t* dst);
void row_sums_int8_neon(const int8_t* x, std::size_t n, std::size_t stride, std::size_t rows,
                        int32_t* sums);
void qs8_qc8w_dwconv_8c__neon(std::size_t channels, std::size_t taps, const int8_t* const* inputs,
                              const int32_t* weights, std::size_t stride, int32_t* acc);

namespace {

template <int kBits, int kField>
inline int8x16_t extract(uint8x16_t raw, uint8x16_t mask) {
  if constexpr (kField == 0) {
    return vreinterpretq_s8_u8(vandq_u8(raw, mask));
  } else if constexpr ((kField + 1) * kBits == 8) {
    return vreinterpretq_s8_u8(vshrq_n_u8(raw, kBits * kField));
  } else {
    return vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(raw, kBits * kField), mask));
  }
}

// Accumulates field kField of quarter `raw` against activation group kField of `xv`.
template <int kBits, int kField>
inline int32x4_t dot_field(int32x4_t acc, uint8x16_t raw, uint8x16_t mask, int8x16_t xv) {
  return vdotq_laneq_s32(acc, extract<kBits, kField>(raw, mask), xv, kField);
}

// Activations of block b: 16 bytes (2-bit) or 8 bytes (int4, zero-extended to a q register).
template <int kBits>
inline int8x16_t load_x(const uint8_t* p) {
  if constexpr (kBits == 2) {
    return vld1q_s8(reinterpret_cast<const int8_t*>(p));
  } else {
    return vcombine_s8(vld1_s8(reinterpret_cast<const int8_t*>(p)), vdup_n_s8(0));
  }
}

// ------------------------------------------------------------------------------ 2-bit, M = 1
void gemv_2bit(std::size_t, std::size_t nblocks, const uint8_t* w, const uint8_t* x, std::size_t,
               int32_t* acc) {
  const uint8x16_t m03 = vdupq_n_u8(0x03), m0c = vdupq_n_u8(0x0C), m30 = vdupq_n_u8(0x30);
  int32x4_t a1[4], a4[4], a16[4];  // classes x1 (fields 0, 3), x4 (field 1), x16 (field 2)
  for (int q = 0; q < 4; ++q) a1[q] = a4[q] = a16[q] = vdupq_n_s32(0);
  for (std::size_t b = 0; b < nblocks; ++b) {
    const int8x16_t xv = vld1q_s8(reinterpret_cast<const int8_t*>(x + b * 16));
    for (int q = 0; q < 4; ++q) {
      const uint8x16_t raw = vld1q_u8(w + b * 64 + 16 * q);
      a1[q] = vdotq_laneq_s32(a1[q], vreinterpretq_s8_u8(vandq_u8(raw, m03)), xv, 0);
      a4[q] = vdotq_laneq_s32(a4[q], vreinterpretq_s8_u8(vandq_u8(raw, m0c)), xv, 1);
      a16[q] = vdotq_laneq_s32(a16[q], vreinterpretq_s8_u8(vandq_u8(raw, m30)), xv, 2);
      a1[q] = vdotq_laneq_s32(a1[q], vreinterpretq_s8_u8(vshrq_n_u8(raw, 6)), xv, 3);
    }
  }
  for (int q = 0; q < 4; ++q) {
    vst1q_s32(acc + 4 * q,
              vaddq_s32(a1[q], vaddq_s32(vshrq_n_s32(a4[q], 2), vshrq_n_s32(a16[q], 4))));
  }
}

// ------------------------------------------------------------------------------ sub-byte, M <= 4
template <int kBits, int R, int... kFields>
void subbyte_rows(std::size_t nblocks, const uint8_t* w, const uint8_t* x, std::size_t x_stride,
                  int32_t* acc, std::integer_sequence<int, kFields...>) {
  constexpr int kBlockK = 4 * (8 / kBits);
  const uint8x16_t mask = vdupq_n_u8(static_cast<uint8_t>((1 << kBits) - 1));
  int32x4_t a[R][4];
  for (int r = 0; r < R; ++r) {
    for (int q = 0; q < 4; ++q) a[r][q] = vdupq_n_s32(0);
  }
  for (std::size_t b = 0; b < nblocks; ++b) {
    int8x16_t xv[R];
    for (int r = 0; r < R; ++r) xv[r] = load_x<kBits>(x + r * x_stride + b * kBlockK);
    for (int q = 0; q < 4; ++q) {
      const uint8x16_t raw = vld1q_u8(w + b * 64 + 16 * q);
      for (int r = 0; r < R; ++r) {
        int32x4_t s = a[r][q];
        ((s = dot_field<kBits, kFields>(s, raw, mask, xv[r])), ...);
        a[r][q] = s;
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int q = 0; q < 4; ++q) vst1q_s32(acc + 16 * r + 4 * q, a[r][q]);
  }
}

template <int kBits>
void gemm_subbyte(std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                  std::size_t x_stride, int32_t* acc) {
  using Fields = std::make_integer_sequence<int, 8 / kBits>;
  switch (rows) {
    case 1: subbyte_rows<kBits, 1>(nblocks, w, x, x_stride, acc, Fields{}); break;
    case 2: subbyte_rows<kBits, 2>(nblocks, w, x, x_stride, acc, Fields{}); break;
    case 3: subbyte_rows<kBits, 3>(nblocks, w, x, x_stride, acc, Fields{}); break;
    default: subbyte_rows<kBits, 4>(nblocks, w, x, x_stride, acc, Fields{}); break;
  }
}

// ------------------------------------------------------------------------------ int8
// Block b uses activation group x[4b..4b+3]; four blocks share one 16-byte load, lane b % 4.
template <int kLane>
inline void int8_block(int32x4_t* a, const uint8_t* wb, int8x16_t xv) {
  for (int q = 0; q < 4; ++q) {
    a[q] = vdotq_laneq_s32(a[q], vld1q_s8(reinterpret_cast<const int8_t*>(wb + 16 * q)), xv,
                           kLane);
  }
}

template <int R>
void int8_rows(std::size_t nblocks, const uint8_t* w, const uint8_t* x, std::size_t x_stride,
               int32_t* acc) {
  int32x4_t a[R][4];
  for (int r = 0; r < R; ++r) {
    for (int q = 0; q < 4; ++q) a[r][q] = vdupq_n_s32(0);
  }
  std::size_t b = 0;
  for (; b + 4 <= nblocks; b += 4) {
    for (int r = 0; r < R; ++r) {
      const int8x16_t xv = vld1q_s8(reinterpret_cast<const int8_t*>(x + r * x_stride + 4 * b));
      int8_block<0>(a[r], w + 64 * b, xv);
      int8_block<1>(a[r], w + 64 * (b + 1), xv);
      int8_block<2>(a[r], w + 64 * (b + 2), xv);
      int8_block<3>(a[r], w + 64 * (b + 3), xv);
    }
  }
  for (; b < nblocks; ++b) {
    // The last few blocks: the prepared row may end right after them, so load 4 bytes only.
    for (int r = 0; r < R; ++r) {
      int32_t v;
      std::memcpy(&v, x + r * x_stride + 4 * b, 4);
      int8_block<0>(a[r], w + 64 * b, vreinterpretq_s8_s32(vdupq_n_s32(v)));
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int q = 0; q < 4; ++q) vst1q_s32(acc + 16 * r + 4 * q, a[r][q]);
  }
}

void gemm_int8(std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
               std::size_t x_stride, int32_t* acc) {
  switch (rows) {
    case 1: int8_rows<1>(nblocks, w, x, x_stride, acc); break;
    case 2: int8_rows<2>(nblocks, w, x, x_stride, acc); break;
    case 3: int8_rows<3>(nblocks, w, x, x_stride, acc); break;
    default: int8_rows<4>(nblocks, w, x, x_stride, acc); break;
  }
}

// ------------------------------------------------------------------------------ fused
constexpr int kQs8Mr = 4;

// Blocks b..b+3 of int8 weights, activation lane kLane of each row's 16-byte group.
template <int kLane, int R>
inline void int8_step(int32x4_t (&a)[R][4], const uint8_t* wb, const int8x16_t (&xv)[R]) {
  int8x16_t wq[4];
  for (int q = 0; q < 4; ++q) wq[q] = vld1q_s8(reinterpret_cast<const int8_t*>(wb + 16 * q));
  for (int r = 0; r < R; ++r) {
    for (int q = 0; q < 4; ++q) a[r][q] = vdotq_laneq_s32(a[r][q], wq[q], xv[r], kLane);
  }
}

// a[r] += the dot products of nblocks int8 blocks at w with row r's activations at x[r].
template <int R>
inline void int8_dot(int32x4_t (&a)[R][4], const uint8_t* const (&x)[R], std::size_t nblocks,
                     const uint8_t* w) {
  std::size_t b = 0;
  for (; b + 4 <= nblocks; b += 4) {
    int8x16_t xv[R];
    for (int r = 0; r < R; ++r) xv[r] = vld1q_s8(reinterpret_cast<const int8_t*>(x[r] + 4 * b));
    int8_step<0, R>(a, w + 64 * b, xv);
    int8_step<1, R>(a, w + 64 * (b + 1), xv);
    int8_step<2, R>(a, w + 64 * (b + 2), xv);
    int8_step<3, R>(a, w + 64 * (b + 3), xv);
  }
  for (; b < nblocks; ++b) {  // the rows (or an indirect piece) may end here: 4 bytes only
    int8x16_t xv[R];
    for (int r = 0; r < R; ++r) {
      int32_t v;
      std::memcpy(&v, x[r] + 4 * b, 4);
      xv[r] = vreinterpretq_s8_s32(vdupq_n_s32(v));
    }
    int8_step<0, R>(a, w + 64 * b, xv);
  }
}

template <int kBits, int R, int... kFields>
inline void subbyte_dot(int32x4_t (&a)[R][4], const uint8_t* const (&x)[R], std::size_t nblocks,
                        const uint8_t* w, std::integer_sequence<int, kFields...>) {
  constexpr int kBlockK = 4 * (8 / kBits);
  const uint8x16_t mask = vdupq_n_u8(static_cast<uint8_t>((1 << kBits) - 1));
  for (std::size_t b = 0; b < nblocks; ++b) {
    int8x16_t xv[R];
    for (int r = 0; r < R; ++r) xv[r] = load_x<kBits>(x[r] + b * kBlockK);
    for (int q = 0; q < 4; ++q) {
      const uint8x16_t raw = vld1q_u8(w + b * 64 + 16 * q);
      const int8x16_t f[] = {extract<kBits, kFields>(raw, mask)...};
      for (int r = 0; r < R; ++r) {
        int32x4_t s = a[r][q];
        ((s = vdotq_laneq_s32(s, f[kFields], xv[r], kFields)), ...);
        a[r][q] = s;
      }
    }
  }
}

template <int kBits, int R>
inline void dot_rows(int32x4_t (&a)[R][4], const uint8_t* const (&x)[R], std::size_t nblocks,
                     const uint8_t* w) {
  if constexpr (kBits == 8) {
    int8_dot<R>(a, x, nblocks, w);
  } else {
    subbyte_dot<kBits, R>(a, x, nblocks, w, std::make_integer_sequence<int, 8 / kBits>{});
  }
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
  dot_rows<kBits, R>(a, xr, nblocks, w);
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
  for (std::size_t t = 0; t < taps; ++t) {
    const uint8_t* xr[R];
    for (int r = 0; r < R; ++r) xr[r] = ind[idx[r] * taps + t];
    dot_rows<kBits, R>(a, xr, blocks_per_tap, w + t * blocks_per_tap * 64);
  }
  requant_store<R>(a, p, tile, nc, o);
}

// Fused depthwise (DwQs8Fn; ukernels.h, DwArmTables), dotprod: qs8_qc8w_dwconv_16c4__dotprod.
// Taps grouped by 4 for SDOT (one SDOT = 4 channels x 4 taps into int32, signed x signed, so no
// +128 operand as on VNNI): the 4 taps' 16 activations are transposed to [channel][4 taps] by
// ZIP1/ZIP2 on bytes (tap pairs) then on 16-bit pairs, which leaves channels 4q .. 4q+3 in
// register q, natural order, matching the weights' [group][stride][4] layout. Per 16 channels
// and 4 taps (GCC 12 -O3 disassembly): 2 LDP (tap pointers), 4 LDR q (activations), 8 ZIP,
// 4 LDR q (weights), 4 SDOT = 22, + 4 of loop: 6.5 per tap against the NEON kernel's 12 (its
// 4 SMLAL per tap become 1 SDOT, at the price of 2 ZIP per tap); taps past the
// last multiple of 4 read the zero-point row against zero weights. Epilogue: dw_requant16, as
// qs8_qc8w_dwconv_16c__aarch64_neon (29 instructions per 16 outputs with the default rule).
void dwconv_qs8_dotprod_pixel(std::size_t channels, std::size_t groups, const int8_t* const* inputs,
                              const int8_t* weights, const DwRequantParams& p, int8_t* out) {
  const DwArmTables& t = p.arm;
  dw_pixel(channels, t, out, [&](auto partial, std::size_t c, std::size_t n, int32x4_t(&a)[4]) {
    constexpr bool kPartial = decltype(partial)::value;
    for (std::size_t g = 0; g < groups; ++g) {
      const int8_t* const* in = inputs + 4 * g;
      const int8x16_t x0 = dw_load16<kPartial>(in[0] + c, n);
      const int8x16_t x1 = dw_load16<kPartial>(in[1] + c, n);
      const int8x16_t x2 = dw_load16<kPartial>(in[2] + c, n);
      const int8x16_t x3 = dw_load16<kPartial>(in[3] + c, n);
      // Tap pairs per channel (16-bit lanes: channel i holds taps 0, 1 / taps 2, 3) ...
      const int16x8_t l01 = vreinterpretq_s16_s8(vzip1q_s8(x0, x1));
      const int16x8_t h01 = vreinterpretq_s16_s8(vzip2q_s8(x0, x1));
      const int16x8_t l23 = vreinterpretq_s16_s8(vzip1q_s8(x2, x3));
      const int16x8_t h23 = vreinterpretq_s16_s8(vzip2q_s8(x2, x3));
      // ... then the pairs interleaved: dword lane i of v[q] is channel 4q + i, taps 0..3.
      const int8x16_t v0 = vreinterpretq_s8_s16(vzip1q_s16(l01, l23));
      const int8x16_t v1 = vreinterpretq_s8_s16(vzip2q_s16(l01, l23));
      const int8x16_t v2 = vreinterpretq_s8_s16(vzip1q_s16(h01, h23));
      const int8x16_t v3 = vreinterpretq_s8_s16(vzip2q_s16(h01, h23));
      const int8_t* wg = weights + (g * t.stride + c) * 4;
      a[0] = vdotq_s32(a[0], v0, vld1q_s8(wg));
      a[1] = vdotq_s32(a[1], v1, vld1q_s8(wg + 16));
      a[2] = vdotq_s32(a[2], v2, vld1q_s8(wg + 32));
      a[3] = vdotq_s32(a[3], v3, vld1q_s8(wg + 48));
    }
  });
}

// The kernels by name (docs/kernels.md; XNNPACK's convention): the table below takes each
// name from the symbol.
void qs8_qc8w_gemm_1x16c4__dotprod(EDGE_GEMM_PARAMS) { gemm_int8(EDGE_GEMM_ARGS); }
void qs8_qc8w_gemm_4x16c4__dotprod(EDGE_GEMM_PARAMS) { gemm_int8(EDGE_GEMM_ARGS); }
void qs8_qc4w_gemm_1x16c4__dotprod(EDGE_GEMM_PARAMS) { gemm_subbyte<4>(EDGE_GEMM_ARGS); }
void qs8_qc4w_gemm_4x16c4__dotprod(EDGE_GEMM_PARAMS) { gemm_subbyte<4>(EDGE_GEMM_ARGS); }
void qs8_qc2w_gemm_1x16c4__dotprod(EDGE_GEMM_PARAMS) { gemv_2bit(EDGE_GEMM_ARGS); }
void qs8_qc2w_gemm_4x16c4__dotprod(EDGE_GEMM_PARAMS) { gemm_subbyte<2>(EDGE_GEMM_ARGS); }
void qs8_qc8w_gemm_requant_4x16c4__dotprod(EDGE_GEMM_QS8_PARAMS) {
  gemm_requant<8>(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc4w_gemm_requant_4x16c4__dotprod(EDGE_GEMM_QS8_PARAMS) {
  gemm_requant<4>(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc2w_gemm_requant_4x16c4__dotprod(EDGE_GEMM_QS8_PARAMS) {
  gemm_requant<2>(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc8w_igemm_requant_4x16c4__dotprod(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<8>(EDGE_IGEMM_QS8_ARGS);
}
void qs8_qc4w_igemm_requant_4x16c4__dotprod(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<4>(EDGE_IGEMM_QS8_ARGS);
}
void qs8_qc2w_igemm_requant_4x16c4__dotprod(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<2>(EDGE_IGEMM_QS8_ARGS);
}

constexpr GemmKernels kGemm8 = {EDGE_UKERNEL(qs8_qc8w_gemm_1x16c4__dotprod, 1),
                                EDGE_UKERNEL(qs8_qc8w_gemm_4x16c4__dotprod, 4), XFormat::kInt8,
                                prepare_int8_neon};
constexpr GemmKernels kGemm4 = {EDGE_UKERNEL(qs8_qc4w_gemm_1x16c4__dotprod, 1),
                                EDGE_UKERNEL(qs8_qc4w_gemm_4x16c4__dotprod, 4), XFormat::kInt8,
                                prepare_int8_neon, row_sums_int8_neon};
// Ternary and int2 weights are both 2-bit fields: one kernel (the plan folds the zero points).
constexpr GemmKernels kGemm2 = {EDGE_UKERNEL(qs8_qc2w_gemm_1x16c4__dotprod, 1),
                                EDGE_UKERNEL(qs8_qc2w_gemm_4x16c4__dotprod, 4), XFormat::kInt8,
                                prepare_int8_neon, row_sums_int8_neon};
constexpr GemmQs8Kernel kGemmQs8_2 = EDGE_UKERNEL(qs8_qc2w_gemm_requant_4x16c4__dotprod, kQs8Mr);
constexpr IgemmQs8Kernel kIgemmQs8_2 =
    EDGE_UKERNEL(qs8_qc2w_igemm_requant_4x16c4__dotprod, kQs8Mr);

// DwQs8Fn takes a row of pixels (ukernels.h); the driver gives Arm one pixel per call (no row
// indirection there), so this only keeps the interface.
void qs8_qc8w_dwconv_16c4__dotprod(std::size_t pixels, std::size_t channels, std::size_t groups,
                                   const int8_t* const* inputs, std::size_t step,
                                   const int8_t* weights, const DwRequantParams& p,
                                   int8_t* out) {
  for (std::size_t n = 0; n < pixels; ++n) {
    dwconv_qs8_dotprod_pixel(channels, groups, inputs + n * step, weights, p, out + n * channels);
  }
}

}  // namespace

const IsaKernels kDotprodKernels = {
    {kGemm8, kGemm4, kGemm2, kGemm2},
    requant_neon,
    dequant_neon,
    EDGE_NAMED(qs8_qc8w_dwconv_8c__neon),  // neon.cc's (no dot product in an unfused tap loop)
    EDGE_NAMED(qs8_qc8w_dwconv_16c4__dotprod),
    {EDGE_UKERNEL(qs8_qc8w_gemm_requant_4x16c4__dotprod, kQs8Mr),
     EDGE_UKERNEL(qs8_qc4w_gemm_requant_4x16c4__dotprod, kQs8Mr), kGemmQs8_2, kGemmQs8_2},
    {EDGE_UKERNEL(qs8_qc8w_igemm_requant_4x16c4__dotprod, kQs8Mr),
     EDGE_UKERNEL(qs8_qc4w_igemm_requant_4x16c4__dotprod, kQs8Mr), kIgemmQs8_2, kIgemmQs8_2},
};

}  // namespace detail
}  // namespace edge
