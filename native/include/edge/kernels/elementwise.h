// Element-wise, pooling and reduction micro-kernels for the int8 operators of the .edge runtime
// that are not GEMMs: ADD (LiteRT's vector-loop arithmetic), MAX_POOL_2D (one output pixel from
// a list of tap rows, XNNPACK's indirection form) and the column sums of MEAN / global average
// pooling.
//
// Every kernel has a scalar reference (the definition; written for clarity) and SIMD variants
// (AVX2, NEON) that are tested bit for bit against it over random shapes, tails and extreme
// values. They are chosen by the same rules as every other kernel (edge/kernels/isa.h:
// explicit request, EDGE_KERNEL_ISA, best available); an ISA that has no variant of a kernel
// runs the scalar one, and the name in the table (`qs8_vadd_x16__avx2`, `..__scalar`) says which
// ran, for profiles.
//
// Only plain structs and declarations here: the header is included by translation units
// compiled with ISA flags (see the ODR note in src/kernels/ukernels.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace edge {

enum class Isa;  // edge/kernels/isa.h

// ADD as LiteRT's AddElementwiseInt8 vector loop computes it (the x86 build of LiteRT runs the
// NEON code through an SSE translation, so these are NEON lane semantics), per element:
//   xa  = SQRDMULH(SHL(a + a_offset, a_shift), a_multiplier)      (and the same for b)
//   s   = RoundingDivideByPOT(SQRDMULH(xa + xb, out_multiplier), out_exponent)
//   out = clamp(int16(s + out_offset), out_min, out_max)
// SHL by a signed count (>= 0: left, wrapping; < 0: arithmetic right shift, truncating; 20 +
// the input's shift in LiteRT), SQRDMULH = floor((x * m + 2^30) / 2^31) (multipliers are >= 0),
// RoundingDivideByPOT rounds ties away from zero (exponent in [0, 31]), int16(.) wraps, and
// out_min/out_max lie in [-128, 127] (so the int8 saturation of LiteRT's narrowing is the
// clamp). The runtime uses it for the elements LiteRT's vector loop handles (blocks of 16);
// the kernels take any n.
struct QS8AddParams {
  int32_t a_offset, b_offset;          // minus the input zero points
  int32_t a_multiplier, b_multiplier;  // Q31, >= 0
  int32_t a_shift, b_shift;            // SHL counts in [-31, 31]
  int32_t out_multiplier;              // Q31, >= 0
  int32_t out_exponent;                // in [0, 31]
  int32_t out_offset;                  // the output zero point
  int32_t out_min, out_max;            // the fused activation, inside [-128, 127]
};
using QS8VAddFn = void (*)(std::size_t n, const int8_t* a, const int8_t* b,
                           const QS8AddParams& params, int8_t* out);

// MAX_POOL_2D, one output pixel:
//   out[c] = min(max(out_min, max over t < taps of inputs[t][c]), out_max),  c < channels.
// inputs[t] are the window's rows of `channels` bytes (taps >= 1); out never aliases them.
using QS8MaxPoolFn = void (*)(std::size_t channels, std::size_t taps,
                              const int8_t* const* inputs, int8_t out_min, int8_t out_max,
                              int8_t* out);

// Column sums (MEAN, global average pooling): sums[c] += sum over r < rows of
// in[r * row_stride + c], c < channels, in wrapping int32.
using QS8RSumFn = void (*)(std::size_t rows, std::size_t channels, const int8_t* in,
                           std::size_t row_stride, int32_t* sums);

struct ElementwiseKernels {
  QS8VAddFn vadd;
  const char* vadd_name;  // "qs8_vadd_x16__avx2"
  QS8MaxPoolFn maxpool;
  const char* maxpool_name;
  QS8RSumFn rsum;
  const char* rsum_name;
};

// The element-wise kernels of `isa`, which must be available (resolve_isa() checks that).
const ElementwiseKernels& elementwise_kernels(Isa isa);

}  // namespace edge
