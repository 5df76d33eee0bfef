// Armv8.6-A int8 matrix-multiply kernels (SMMLA), aarch64 only. Compiled with
// -march=armv8.2-a+dotprod+i8mm; called only when HWCAP2 says `i8mm` (and HWCAP `asimddp`: the
// GEMV, depthwise and epilogues of this tier are the dotprod / NEON ones, isa.cc with_base).
// Tested under qemu-aarch64 -cpu max; -cpu cortex-a72 / neoverse-n1 prove the dispatch skips it
// (an SMMLA there is SIGILL).
//
// SMMLA Vd.4S += Vn (2 x 8 int8, row-major) * Vm (2 x 8)^T: a 2 x 2 int32 tile, 32 products per
// instruction against SDOT's 16. Vn is a pair of activation rows (8 bytes of k each), Vm two
// channels' 8 k. The packed layout (layout.h) has 4 k per channel in a 16-byte quarter (4
// channels x 4 k, "c4"); two quarters of consecutive k (int8: blocks b and b + 1; sub-byte:
// fields i and i + 1 of one block) are interleaved into Vm form by one ZIP1 / ZIP2 on 32-bit
// lanes: ZIP1(k0-3, k4-7) = [c0 k0-7 | c1 k0-7], ZIP2 = [c2 k0-7 | c3 k0-7]. Sub-byte codes are
// small and non-negative, so the signed SMMLA is exact for them too (no USMMLA needed).
// Per 4 rows x 16 channels x 8 k: 8 ZIP + 16 SMMLA + 2 activation loads (+ 8 weight loads, and
// for sub-byte the field extractions), against 32 SDOT for the dotprod kernel; the tile of 2
// row pairs x 8 channel pairs is 16 accumulators, de-interleaved once per call (ZIP on 64-bit
// lanes: [r0 c0 c1 | r1 c0 c1] and [r0 c2 c3 | r1 c2 c3] -> row 0 c0-3, row 1 c0-3).
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/arm/qs8_requant_neon.h"
#include "kernels/ukernels.h"

namespace edge {
namespace detail {

int32_t prepare_int8_neon(const int8_t* src, std::size_t n, uint8_t* dst);
void row_sums_int8_neon(const int8_t* x, std::size_t n, std::size_t stride, std::size_t rows,
                        int32_t* sums);

namespace {

constexpr int kMr = 4;           // rows per call: 2 SMMLA row pairs
constexpr int kPairs = kMr / 2;

using Tile = int32x4_t[kPairs][8];  // [row pair][channel pair]

inline int8x16_t zip_lo(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s32(vzip1q_s32(vreinterpretq_s32_s8(a), vreinterpretq_s32_s8(b)));
}
inline int8x16_t zip_hi(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s32(vzip2q_s32(vreinterpretq_s32_s8(a), vreinterpretq_s32_s8(b)));
}

// One 8-k step: quarters k0[q] (k 0-3 of channels 4q .. 4q + 3) and k1[q] (k 4-7) against the
// row pairs' activations xv[p] = [row 2p k0-7 | row 2p+1 k0-7].
inline void mm_step(Tile& m, const int8x16_t (&k0)[4], const int8x16_t (&k1)[4],
                    const int8x16_t (&xv)[kPairs]) {
  for (int q = 0; q < 4; ++q) {
    const int8x16_t z0 = zip_lo(k0[q], k1[q]), z1 = zip_hi(k0[q], k1[q]);
    for (int p = 0; p < kPairs; ++p) {
      m[p][2 * q] = vmmlaq_s32(m[p][2 * q], xv[p], z0);
      m[p][2 * q + 1] = vmmlaq_s32(m[p][2 * q + 1], xv[p], z1);
    }
  }
}

// 8 activation bytes of each row pair, at x[r] + off.
inline void load_pairs(int8x16_t (&xv)[kPairs], const uint8_t* const (&x)[kMr], std::size_t off) {
  for (int p = 0; p < kPairs; ++p) {
    xv[p] = vcombine_s8(vld1_s8(reinterpret_cast<const int8_t*>(x[2 * p] + off)),
                        vld1_s8(reinterpret_cast<const int8_t*>(x[2 * p + 1] + off)));
  }
}

// 4 activation bytes (the last, odd int8 block: the row may end right after it), k 4-7 zero.
inline void load_pairs4(int8x16_t (&xv)[kPairs], const uint8_t* const (&x)[kMr],
                        std::size_t off) {
  for (int p = 0; p < kPairs; ++p) {
    uint32_t a, b;
    std::memcpy(&a, x[2 * p] + off, 4);
    std::memcpy(&b, x[2 * p + 1] + off, 4);
    xv[p] = vreinterpretq_s8_u64(vcombine_u64(vcreate_u64(a), vcreate_u64(b)));
  }
}

inline void load_quarters(int8x16_t (&k)[4], const uint8_t* w) {
  for (int q = 0; q < 4; ++q) k[q] = vld1q_s8(reinterpret_cast<const int8_t*>(w + 16 * q));
}

// Field kField of the four quarters of a sub-byte block: 4 k of 4 channels each.
template <int kBits, int kField>
inline void field_quarters(int8x16_t (&k)[4], const uint8x16_t (&raw)[4]) {
  const uint8x16_t mask = vdupq_n_u8(static_cast<uint8_t>((1 << kBits) - 1));
  for (int q = 0; q < 4; ++q) {
    if constexpr (kField == 0) {
      k[q] = vreinterpretq_s8_u8(vandq_u8(raw[q], mask));
    } else if constexpr ((kField + 1) * kBits == 8) {
      k[q] = vreinterpretq_s8_u8(vshrq_n_u8(raw[q], kBits * kField));
    } else {
      k[q] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(raw[q], kBits * kField), mask));
    }
  }
}

// m += the products of nblocks blocks at w with the rows at x[r] (prepared int8).
template <int kBits>
inline void mm_span(Tile& m, const uint8_t* const (&x)[kMr], std::size_t nblocks,
                    const uint8_t* w) {
  int8x16_t k0[4], k1[4], xv[kPairs];
  if constexpr (kBits == 8) {
    std::size_t b = 0;
    for (; b + 2 <= nblocks; b += 2) {
      load_quarters(k0, w + 64 * b);
      load_quarters(k1, w + 64 * (b + 1));
      load_pairs(xv, x, 4 * b);
      mm_step(m, k0, k1, xv);
    }
    if (b < nblocks) {
      load_quarters(k0, w + 64 * b);
      for (auto& v : k1) v = vdupq_n_s8(0);
      load_pairs4(xv, x, 4 * b);
      mm_step(m, k0, k1, xv);
    }
  } else {
    constexpr int kFields = 8 / kBits;
    constexpr int kBlockK = 4 * kFields;
    for (std::size_t b = 0; b < nblocks; ++b) {
      uint8x16_t raw[4];
      for (int q = 0; q < 4; ++q) raw[q] = vld1q_u8(w + 64 * b + 16 * q);
      field_quarters<kBits, 0>(k0, raw);
      field_quarters<kBits, 1>(k1, raw);
      load_pairs(xv, x, b * kBlockK);
      mm_step(m, k0, k1, xv);
      if constexpr (kFields == 4) {
        field_quarters<kBits, 2>(k0, raw);
        field_quarters<kBits, 3>(k1, raw);
        load_pairs(xv, x, b * kBlockK + 8);
        mm_step(m, k0, k1, xv);
      }
    }
  }
}

// a[r][q] (row r, channels 4q .. 4q + 3) += the tile's sums.
inline void add_tile(int32x4_t (&a)[kMr][4], const Tile& m) {
  for (int p = 0; p < kPairs; ++p) {
    for (int q = 0; q < 4; ++q) {
      const int64x2_t lo = vreinterpretq_s64_s32(m[p][2 * q]);
      const int64x2_t hi = vreinterpretq_s64_s32(m[p][2 * q + 1]);
      a[2 * p][q] = vaddq_s32(a[2 * p][q], vreinterpretq_s32_s64(vzip1q_s64(lo, hi)));
      a[2 * p + 1][q] = vaddq_s32(a[2 * p + 1][q], vreinterpretq_s32_s64(vzip2q_s64(lo, hi)));
    }
  }
}

inline void zero_tile(Tile& m) {
  for (auto& pair : m) {
    for (auto& v : pair) v = vdupq_n_s32(0);
  }
}

// GemmFn: rows <= kMr; missing rows alias the last real one (row_index) and are not stored.
template <int kBits>
void gemm(std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
          std::size_t x_stride, int32_t* acc) {
  const uint8_t* xr[kMr];
  for (int r = 0; r < kMr; ++r) xr[r] = x + row_index(static_cast<std::size_t>(r), rows) * x_stride;
  Tile m;
  zero_tile(m);
  mm_span<kBits>(m, xr, nblocks, w);
  int32x4_t a[kMr][4];
  for (auto& row : a) {
    for (auto& v : row) v = vdupq_n_s32(0);
  }
  add_tile(a, m);
  for (std::size_t r = 0; r < rows && r < static_cast<std::size_t>(kMr); ++r) {
    for (int q = 0; q < 4; ++q) vst1q_s32(acc + 16 * r + 4 * q, a[r][q]);
  }
}

template <int kBits>
void gemm_requant(std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                  std::size_t x_stride, const int32_t* row_sums, std::size_t sums_stride,
                  const GemmQs8Params& p, std::size_t tile, std::size_t nc, int8_t* out,
                  std::size_t out_stride) {
  std::size_t idx[kMr];
  int8_t* o[kMr];
  int32x4_t a[kMr][4];
  start_rows<kMr>(p, tile, rows, row_sums, sums_stride, out, out_stride, idx, o, a);
  const uint8_t* xr[kMr];
  for (int r = 0; r < kMr; ++r) xr[r] = x + idx[r] * x_stride;
  Tile m;
  zero_tile(m);
  mm_span<kBits>(m, xr, nblocks, w);
  add_tile(a, m);
  requant_store<kMr>(a, p, tile, nc, o);
}

template <int kBits>
void igemm_requant(std::size_t rows, std::size_t taps, std::size_t blocks_per_tap,
                   const uint8_t* w, const uint8_t* const* ind, const int32_t* row_sums,
                   const GemmQs8Params& p, std::size_t tile, std::size_t nc, int8_t* out,
                   std::size_t out_stride) {
  std::size_t idx[kMr];
  int8_t* o[kMr];
  int32x4_t a[kMr][4];
  start_rows<kMr>(p, tile, rows, row_sums, 1, out, out_stride, idx, o, a);
  Tile m;
  zero_tile(m);
  for (std::size_t t = 0; t < taps; ++t) {
    const uint8_t* xr[kMr];
    for (int r = 0; r < kMr; ++r) xr[r] = ind[idx[r] * taps + t];
    mm_span<kBits>(m, xr, blocks_per_tap, w + t * blocks_per_tap * 64);
  }
  add_tile(a, m);
  requant_store<kMr>(a, p, tile, nc, o);
}

// The kernels by name (docs/kernels.md): each name is the symbol.
void qs8_qc8w_gemm_4x16c4__i8mm(EDGE_GEMM_PARAMS) { gemm<8>(EDGE_GEMM_ARGS); }
void qs8_qc4w_gemm_4x16c4__i8mm(EDGE_GEMM_PARAMS) { gemm<4>(EDGE_GEMM_ARGS); }
void qs8_qc2w_gemm_4x16c4__i8mm(EDGE_GEMM_PARAMS) { gemm<2>(EDGE_GEMM_ARGS); }
void qs8_qc8w_gemm_requant_4x16c4__i8mm(EDGE_GEMM_QS8_PARAMS) {
  gemm_requant<8>(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc4w_gemm_requant_4x16c4__i8mm(EDGE_GEMM_QS8_PARAMS) {
  gemm_requant<4>(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc2w_gemm_requant_4x16c4__i8mm(EDGE_GEMM_QS8_PARAMS) {
  gemm_requant<2>(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc8w_igemm_requant_4x16c4__i8mm(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<8>(EDGE_IGEMM_QS8_ARGS);
}
void qs8_qc4w_igemm_requant_4x16c4__i8mm(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<4>(EDGE_IGEMM_QS8_ARGS);
}
void qs8_qc2w_igemm_requant_4x16c4__i8mm(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<2>(EDGE_IGEMM_QS8_ARGS);
}

// GEMV entries are null: one row would leave half of every SMMLA idle, so dotprod's run.
constexpr GemmKernels kGemm8 = {{nullptr, 1, nullptr},
                                EDGE_UKERNEL(qs8_qc8w_gemm_4x16c4__i8mm, kMr), XFormat::kInt8,
                                prepare_int8_neon};
constexpr GemmKernels kGemm4 = {{nullptr, 1, nullptr},
                                EDGE_UKERNEL(qs8_qc4w_gemm_4x16c4__i8mm, kMr), XFormat::kInt8,
                                prepare_int8_neon, row_sums_int8_neon};
// Ternary and int2 weights are both 2-bit fields: one kernel (the plan folds the zero points).
constexpr GemmKernels kGemm2 = {{nullptr, 1, nullptr},
                                EDGE_UKERNEL(qs8_qc2w_gemm_4x16c4__i8mm, kMr), XFormat::kInt8,
                                prepare_int8_neon, row_sums_int8_neon};
constexpr GemmQs8Kernel kGemmQs8_2 = EDGE_UKERNEL(qs8_qc2w_gemm_requant_4x16c4__i8mm, kMr);
constexpr IgemmQs8Kernel kIgemmQs8_2 = EDGE_UKERNEL(qs8_qc2w_igemm_requant_4x16c4__i8mm, kMr);

}  // namespace

// Null entries (GEMV, epilogues, depthwise) are dotprod's (isa.cc, with_base).
const IsaKernels kI8mmKernels = {
    {kGemm8, kGemm4, kGemm2, kGemm2},
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    {EDGE_UKERNEL(qs8_qc8w_gemm_requant_4x16c4__i8mm, kMr),
     EDGE_UKERNEL(qs8_qc4w_gemm_requant_4x16c4__i8mm, kMr), kGemmQs8_2, kGemmQs8_2},
    {EDGE_UKERNEL(qs8_qc8w_igemm_requant_4x16c4__i8mm, kMr),
     EDGE_UKERNEL(qs8_qc4w_igemm_requant_4x16c4__i8mm, kMr), kIgemmQs8_2, kIgemmQs8_2},
};

}  // namespace detail
}  // namespace edge
