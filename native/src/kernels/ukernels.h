// The micro-kernel interface between the plans (ISA-independent drivers) and the per-ISA
// translation units. Private to the library (tests include it to check kernels directly).
//
// ODR warning: this header is included by translation units compiled with -mavx2, -mavx512*,
// -march=armv8.2-a+dotprod. It must hold only declarations and plain structs: an inline function
// or template instantiated both here and in a generic TU would be emitted twice and the linker
// could keep the copy compiled for an ISA the CPU lacks. ISA TUs keep their helpers in anonymous
// namespaces and include no STL headers that instantiate code.
#pragma once

#include <cstddef>
#include <cstdint>

#include "edge/kernels/kernel_name.h"

namespace edge {
namespace detail {

// How a GEMM micro-kernel wants its activations prepared (rows of kpad elements, zero-padded).
enum class XFormat : uint8_t {
  kInt8 = 0,   // the int8 values
  kUint8 = 1,  // x ^ 0x80, i.e. x + 128 as uint8 (VNNI's unsigned operand)
  kInt16 = 2,  // sign-extended to int16 (AVX2 int8 x int8 via vpmaddwd)
};

// Bytes a prepared row takes per k element.
constexpr std::size_t xformat_bytes(XFormat f) { return f == XFormat::kInt16 ? 2 : 1; }

// Raw dot products of `rows` prepared activation rows with one 16-channel weight tile:
//   acc[r * 16 + c] = sum over the nblocks blocks of x[r][k] * code[c][k]
// with code the unsigned field (sub-byte) or int8(code) (int8 weights), and x in the kernel's
// XFormat (x + 128 for kUint8). `w` points at the first 64-byte block to use (layout.h), `x` at
// row 0's first element of that block, row r at x + r * x_stride bytes. rows <= the kernel's mr.
using GemmFn = void (*)(std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                        std::size_t x_stride, int32_t* acc);

struct GemmKernel {
  const char* name;  // "qs8_qc2w_gemm_4x16c4__avx2"
  uint32_t mr;       // rows per call
  GemmFn fn;
};

// Copies n int8 activations to dst in a kernel's XFormat and returns their sum (of the int8
// values, not of the transformed ones).
using PrepareFn = int32_t (*)(const int8_t* src, std::size_t n, uint8_t* dst);

// The int8 sums of `rows` activation rows of n elements, row r at x + r * stride, into sums[r]
// (for weight zero points, where the rows are read in place and not prepared).
using RowSumsFn = void (*)(const int8_t* x, std::size_t n, std::size_t stride, std::size_t rows,
                           int32_t* sums);

struct GemmKernels {
  GemmKernel gemv;  // used for single rows (mr = 1)
  GemmKernel gemm;  // used for row groups
  XFormat xformat;
  PrepareFn prepare;
  RowSumsFn row_sums = nullptr;  // null: the caller sums with a plain loop
};

// Per-channel epilogue parameters; arrays are indexed by absolute output channel and must be
// readable over [c0, c0 + round_up(n, 16)) for a call on channels [c0, c0 + n) (SIMD epilogues
// load whole vectors).
struct EpilogueParams {
  const int32_t* bias;         // folded column term: bias - input_zp * sum(code) + ...
  const int32_t* wzp;          // weight zero points, or null when they are all wzp_uniform
  int32_t wzp_uniform;         // the zero point of every channel when wzp is null (often 0)
  const int32_t* multiplier;   // Q31 significands
  const int32_t* left_shift;   // max(shift, 0)
  const int32_t* right_shift;  // max(-shift, 0)
  const float* scale;          // float output: input_scale * weight_scale
  float float_min;             // float output clamp (the fused activation in real units)
  float float_max;
  int32_t out_zero_point;
  int32_t out_min;
  int32_t out_max;
  int32_t rounding;            // static_cast<int32_t>(Rounding)
  // The same requantisation as one 64-bit multiply-add-shift, for ISAs with 64-bit arithmetic
  // shifts (AVX-512). With v' = int32(v << pre_shift[c]) and p = int64(v') * multiplier[c]:
  //   y = (p + rounding_add[c] + (p < -2^30 ? negative_add[c] : 0)) >> total_shift[c]
  // then clamped to int32 when `saturate`. Exact for all three rules (gemm_plan.cc derives it):
  //   kUpward:       pre_shift = ls, add = 2^30 + (rs ? 2^(30+rs) : 0), shift = 31 + rs
  //   kAwayFromZero: the same, negative_add = rs ? -2^31 : 0
  //   kSingle:       pre_shift = 0, shift = 31 - ls + rs, add = 2^(shift-1), saturate if ls > 0
  const int32_t* pre_shift;
  const int64_t* rounding_add;
  const int64_t* total_shift;
  const int64_t* negative_add;
  int32_t saturate;
};

// For c in [c0, c0 + n): v = acc[c - c0] + bias[c] - zp[c] * row_sum (wrapping int32, zp[c] =
// wzp ? wzp[c] : wzp_uniform), then
//   RequantFn: out[c - c0] = clamp(requant(v) + out_zero_point, out_min, out_max)
//   DequantFn: out[c - c0] = min(max(float(v) * scale[c], float_min), float_max)
using RequantFn = void (*)(std::size_t n, const int32_t* acc, int32_t row_sum,
                           const EpilogueParams& p, std::size_t c0, int8_t* out);
using DequantFn = void (*)(std::size_t n, const int32_t* acc, int32_t row_sum,
                           const EpilogueParams& p, std::size_t c0, float* out);

// Depthwise accumulation for one output pixel:
//   acc[c] = sum_{t < taps} int32(inputs[t][c]) * weights[t * stride + c]
// for c < channels (inputs[t] never null: padding taps point at a row of input zero points).
// `weights` is readable up to the next multiple of 16 channels; inputs only up to `channels`.
using DwFn = void (*)(std::size_t channels, std::size_t taps, const int8_t* const* inputs,
                      const int32_t* weights, std::size_t stride, int32_t* acc);

// Depthwise, int8 output, accumulation and requantisation fused (AVX-512 VNNI; AVX2 emulates it):
// output pixels with all their channels, in blocks of 64 channels. Taps are taken four at a time
// (groups = ceil(taps / 4); inputs has 4 * groups pointers, the padding ones at any readable row
// of `channels` bytes, with zero weights). Within a 64-channel block the four taps of channel c
// are interleaved by two in-lane unpacks (bytes, then 16-bit pairs), which leaves channel
//   c = 64 b + 16 (p / 4) + 4 q + p % 4
// in dword lane p (0..15) of accumulator q (0..3); the weights and the requantisation tables are
// stored in that order, and two in-lane packs (32 -> 16 -> 8 bit) put the outputs back in
// natural order. Layout of `weights`: [block][group][q][lane p][tap 4g .. 4g+3] int8 (64-byte
// vectors, zero past `taps` and `channels`). Activations enter as x + 128 (unsigned operand);
// 128 * sum(w) is in the bias.
struct DwRequantBlock {  // 16 channels (one accumulator q of one block), in lane order
  int32_t bias[16];          // bias - input_zp * sum(w) - 128 * sum(w)
  int32_t pre_shift[16];     // EpilogueParams::pre_shift
  int64_t multiplier[2][8];  // [0]: even lanes 0, 2, .., 14; [1]: odd lanes 1, 3, .., 15
  int64_t rounding_add[2][8];
  int64_t negative_add[2][8];
  int64_t total_shift[2][8];
};
// The Arm fused depthwise kernels (qs8_qc8w_dwconv_16c__neon,
// qs8_qc8w_dwconv_16c4__dotprod) keep channels in natural order instead (NEON has no in-lane
// permutation to undo, and natural order lets the channel tail reuse the last whole 16-channel
// block, shifted back to end at `channels`): per-channel tables of `stride` (channels rounded up
// to 16) entries, and weights (w - zero point) laid out as
//   NEON:    int16 [tap][stride]                  (taps = DwArmTables::taps; no grouping)
//   dotprod: int8  [group][stride][tap 4g .. 4g+3] (zero past `taps`), one sdot per 4 channels
// Activations enter as themselves (signed x signed products), so bias has no 128 term.
struct DwArmTables {
  const int32_t* bias;             // bias - input_zp * sum(w)
  const int32_t* multiplier;       // Q31 significands
  const int32_t* left_shift;       // max(shift, 0) (kUpward / kAwayFromZero)
  const int32_t* neg_right_shift;  // -max(-shift, 0)
  const int32_t* away;             // neg_right_shift where the channel rounds ties away, else 0
  const int32_t* neg_total_shift;  // kSingle: -(31 - left + right)
  std::size_t stride, taps;
  int32_t single;                  // every channel's rule is kSingle (else kUpward / away mix)
  int32_t any_away, any_left_shift;
  int32_t zero_point;              // the output zero point (never folded)
  int32_t out_min, out_max;
};
struct DwRequantParams {
  const DwRequantBlock* blocks;  // [block][q]
  int32_t out_zero_point, out_min, out_max;
  int32_t any_pre_shift;         // some pre_shift is non-zero
  int32_t any_negative_add;      // some channel rounds ties away from zero
  int32_t shift_32_53;           // every total_shift in [32, 53], zero point folded (requant8_ymm.h)
  int32_t lone_last_tap;         // taps % 4 == 1: the last group has one real tap (AVX-512)
  DwArmTables arm;               // Arm only (blocks unused there)
};
// One call computes `pixels` output pixels (a row segment): pixel n reads its 4 * groups tap
// pointers at inputs + n * input_step and writes its `channels` bytes at out + n * channels.
// Weights and bias are loaded once per call and per block and held in registers where they fit,
// and the driver builds the tap pointers once per row: with taps in column-major order
// (t = kw * kernel_height + kh) and no horizontal dilation, neighbouring pixels' windows are
// overlapping slices of one list of input columns (input_step = stride_width * kernel_height),
// as in XNNPACK's indirection buffer. A pixel's padding pointers past its taps may then be the
// next pixel's (readable rows; their weights are zero).
using DwQs8Fn = void (*)(std::size_t pixels, std::size_t channels, std::size_t groups,
                         const int8_t* const* inputs, std::size_t input_step,
                         const int8_t* weights, const DwRequantParams& p, int8_t* out);

// GEMM with int8 output, requantisation fused (the accumulators never leave the
// registers): rows x 16 channels of tile `tile` (channels 16 tile .. 16 tile + nc), prepared rows
// as GemmFn's, outputs at out + r * out_stride. The per-channel constants are loaded once per
// call and serve all its rows. Tables per 16-channel tile in natural channel order, split into
// even and odd lanes for the 64-bit multiply (vpmuldq reads the low dword of each qword).
struct RequantEvenOdd {
  int64_t multiplier[2][8];  // [0]: channels 0, 2, .., 14 of the tile; [1]: 1, 3, .., 15
  int64_t rounding_add[2][8];  // EpilogueParams' forms (with the output zero point folded in
  int64_t negative_add[2][8];  // when out_zero_point below is 0)
  int64_t total_shift[2][8];
};
struct GemmQs8Params {
  const int32_t* bias;       // EpilogueParams::bias (padded to the tiles)
  const int32_t* wzp;        // per-channel weight zero points, or null
  int32_t wzp_uniform;       // the one zero point when wzp is null
  const int32_t* pre_shift;  // padded to the tiles
  const RequantEvenOdd* tiles;
  int32_t out_zero_point, out_min, out_max;
  int32_t any_pre_shift, any_negative_add;
  int32_t shift_32_53;  // every total_shift in [32, 53], zero point folded (requant8_ymm.h)
  // The 32-bit forms, for ISAs that requantise in 32-bit lanes (NEON: SQRDMULH + SRSHL):
  // EpilogueParams' per-channel arrays (natural order, padded to the tiles), its rounding rule
  // and the output zero point itself (out_zero_point above is 0 when it is folded).
  const int32_t* multiplier;
  const int32_t* left_shift;
  const int32_t* right_shift;
  int32_t rounding;
  int32_t zero_point;
};
using GemmQs8Fn = void (*)(std::size_t rows, std::size_t nblocks, const uint8_t* w,
                           const uint8_t* x, std::size_t x_stride, const int32_t* row_sums,
                           std::size_t sums_stride, const GemmQs8Params& p, std::size_t tile,
                           std::size_t nc, int8_t* out, std::size_t out_stride);
struct GemmQs8Kernel {
  const char* name;  // "qs8_qc8w_gemm_requant_8x16c4__avx512vnni"
  uint32_t mr;
  GemmQs8Fn fn;      // null where the ISA has none
};

// Indirect (im2col-free) GEMM with int8 output, requantisation fused, for convolutions whose
// every tap is a whole number of K blocks (input channels a multiple of the weights' block_k):
// row r of the conv's im2col matrix is never formed; its `taps` pieces are read where they lie,
// at ind[r * taps + t] (t = kh * kernel_width + kw), each `blocks_per_tap` K blocks of prepared
// activations (the kernel's XFormat; padding taps point at a row of the prepared input zero
// point). Weight block t * blocks_per_tap + j of the tile multiplies piece t's block j, exactly
// the im2col order, so the dot products, and with the same epilogue the outputs, are those of
// GemmQs8Fn on the im2col rows. Row sums (for weight zero points) as in GemmQs8Fn.
using IgemmQs8Fn = void (*)(std::size_t rows, std::size_t taps, std::size_t blocks_per_tap,
                            const uint8_t* w, const uint8_t* const* ind, const int32_t* row_sums,
                            const GemmQs8Params& p, std::size_t tile, std::size_t nc, int8_t* out,
                            std::size_t out_stride);
struct IgemmQs8Kernel {
  const char* name;  // "qs8_qc8w_igemm_requant_8x16c4__avx512vnni"
  uint32_t mr;
  IgemmQs8Fn fn;
};

// ---------------------------------------------------------------- names (docs/kernels.md)
// A kernel's name is its function's symbol: each ISA translation unit defines one function per
// name, `void qs8_qc8w_gemm_4x16c4__avx2(EDGE_GEMM_PARAMS) { ... }`, and its table takes the
// name from that symbol with kernel_name.h's macros. The parameter lists of the kernel types:
#define EDGE_GEMM_PARAMS                                                                  \
  std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,              \
      std::size_t x_stride, int32_t* acc
#define EDGE_GEMM_ARGS rows, nblocks, w, x, x_stride, acc
#define EDGE_GEMM_QS8_PARAMS                                                              \
  std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,              \
      std::size_t x_stride, const int32_t* row_sums, std::size_t sums_stride,             \
      const GemmQs8Params& p, std::size_t tile, std::size_t nc, int8_t* out,              \
      std::size_t out_stride
#define EDGE_GEMM_QS8_ARGS \
  rows, nblocks, w, x, x_stride, row_sums, sums_stride, p, tile, nc, out, out_stride
#define EDGE_IGEMM_QS8_PARAMS                                                             \
  std::size_t rows, std::size_t taps, std::size_t blocks_per_tap, const uint8_t* w,       \
      const uint8_t* const* ind, const int32_t* row_sums, const GemmQs8Params& p,         \
      std::size_t tile, std::size_t nc, int8_t* out, std::size_t out_stride
#define EDGE_IGEMM_QS8_ARGS \
  rows, taps, blocks_per_tap, w, ind, row_sums, p, tile, nc, out, out_stride
#define EDGE_DW_PARAMS                                                                    \
  std::size_t channels, std::size_t taps, const int8_t* const* inputs,                    \
      const int32_t* weights, std::size_t stride, int32_t* acc
#define EDGE_DW_ARGS channels, taps, inputs, weights, stride, acc
#define EDGE_DW_QS8_PARAMS                                                                \
  std::size_t pixels, std::size_t channels, std::size_t groups,                           \
      const int8_t* const* inputs, std::size_t input_step, const int8_t* weights,         \
      const DwRequantParams& p, int8_t* out
#define EDGE_DW_QS8_ARGS pixels, channels, groups, inputs, input_step, weights, p, out

struct IsaKernels {
  GemmKernels gemm[4];  // indexed by WeightType (ternary and int2 share the 2-bit kernels)
  RequantFn requant;
  DequantFn dequant;
  DwFn dwconv;
  const char* dwconv_name;
  DwQs8Fn dwconv_qs8;           // null where the ISA has none (DepthwiseConv2D uses dwconv)
  const char* dwconv_qs8_name;
  GemmQs8Kernel gemm_qs8[4];    // by WeightType; int8 output, no per-group scales
  IgemmQs8Kernel igemm_qs8[4];  // by WeightType; fn null where the ISA has no indirect conv
  // The indirect conv over two 16-channel tiles per call (channels 16 tile .. 16 tile + nc, nc
  // up to 32; nc <= 16 computes one tile): by WeightType, fn null where the ISA has none.
  IgemmQs8Kernel igemm_qs8_x2[4] = {};
  // int8 weights on an ISA whose int8 kernels take x + 128 (XFormat::kUint8): the same indirect
  // kernels reading the int8 rows as they are, each 4-byte broadcast flipped in the register
  // (XNNPACK's form), for rows that need no preparation (Conv2D: 1x1 layers with no padding, K
  // filling whole blocks): no pass over the input before the GEMM. [0] one tile per call (as
  // igemm_qs8), [1] two (as igemm_qs8_x2); fn null where the ISA has none.
  IgemmQs8Kernel igemm_qs8_raw[2] = {};
};

// One table per ISA carried by this binary, defined in that ISA's translation unit.
extern const IsaKernels kScalarKernels;
#if defined(EDGE_HAVE_AVX2)
extern const IsaKernels kAvx2Kernels;
#endif
#if defined(EDGE_HAVE_AVX512VNNI)
extern const IsaKernels kAvx512VnniKernels;
#endif
#if defined(EDGE_HAVE_NEON)
extern const IsaKernels kNeonKernels;
#endif
#if defined(EDGE_HAVE_DOTPROD)
extern const IsaKernels kDotprodKernels;
#endif
// Tiers that borrow kernels of the tier below them (AVX-VNNI: AVX2's epilogues and depthwise;
// i8mm: dotprod's GEMV, epilogues and depthwise) define only their own entries, the others
// null; isa.cc fills those in from the lower tier's table (in generic code: kernel_names() reads
// these tables on CPUs that cannot run them).
#if defined(EDGE_HAVE_AVXVNNI)
extern const IsaKernels kAvxVnniKernels;
#endif
#if defined(EDGE_HAVE_I8MM)
extern const IsaKernels kI8mmKernels;
#endif
#if defined(EDGE_HAVE_AVX512AMX)
extern const IsaKernels kAvx512AmxKernels;  // AMX-INT8: its int8 GEMM over AVX-512 VNNI's
#endif

}  // namespace detail
}  // namespace edge
