// Internal: the micro-kernels of dynamic input quantisation (edge/kernels/quantize.h), one table
// per ISA, each defined in that ISA's own translation unit (quantize_*.cc). Same ODR rules as
// ukernels.h: declarations and plain structs only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "edge/kernels/kernel_name.h"

namespace edge {
namespace detail {

// *min / *max of x[0..n) (n >= 1). Exact on every ISA (signed zeros may come back either way;
// the callers only use |min|, |max| and comparisons with 0, where -0 == +0).
using MinMaxFn = void (*)(std::size_t n, const float* x, float* min, float* max);

// q[i] = int8(round_half_away(min(max(offset + x[i] * inv, qmin), qmax))) for i < n, with the
// multiply and the add as two float operations (no FMA). qmin / qmax are integers in
// [-128, 127], so clamping before rounding equals clamping after it.
using QuantizeFn = void (*)(std::size_t n, const float* x, float inv, float offset, float qmin,
                            float qmax, int8_t* q);

struct QuantizeKernels {
  const char* name;  // "f32_qs8_quantize_32x__avx2"
  MinMaxFn minmax;
  QuantizeFn quantize;
};

// The table entry of quantize kernel `fn` (its name is the symbol; kernel_name.h).
#define EDGE_QUANTIZE_KERNELS(fn, minmax) {#fn, minmax, fn}

extern const QuantizeKernels kScalarQuantize;
#if defined(EDGE_HAVE_AVX2)
extern const QuantizeKernels kAvx2Quantize;
#endif
#if defined(EDGE_HAVE_AVX512VNNI)
extern const QuantizeKernels kAvx512Quantize;
#endif
#if defined(EDGE_HAVE_NEON)
extern const QuantizeKernels kNeonQuantize;
#endif

}  // namespace detail
}  // namespace edge
