// Internal: the per-ISA tables of the element-wise kernels (edge/kernels/elementwise.h), each
// defined in its ISA's translation unit, and the scalar references the other tables fall back
// to. Declarations only (the ODR note of ukernels.h applies).
#pragma once

#include "edge/kernels/elementwise.h"
#include "edge/kernels/kernel_name.h"

namespace edge {
namespace detail {

void qs8_vadd__scalar(std::size_t n, const int8_t* a, const int8_t* b, const QS8AddParams& params,
                      int8_t* out);
void qs8_maxpool__scalar(std::size_t channels, std::size_t taps, const int8_t* const* inputs,
                         int8_t out_min, int8_t out_max, int8_t* out);
void qs8_rsum__scalar(std::size_t rows, std::size_t channels, const int8_t* in,
                      std::size_t row_stride, int32_t* sums);

extern const ElementwiseKernels kScalarElementwise;
#if defined(EDGE_HAVE_AVX2)
extern const ElementwiseKernels kAvx2Elementwise;
#endif
#if defined(EDGE_HAVE_AVX512VNNI)
// x86/elementwise_avx512.cc (the AVX-512 table, in elementwise_avx2.cc, takes it)
void qs8_vadd_x32__avx512vnni(std::size_t n, const int8_t* a, const int8_t* b,
                              const QS8AddParams& params, int8_t* out);
extern const ElementwiseKernels kAvx512Elementwise;
#endif
#if defined(EDGE_HAVE_NEON)
extern const ElementwiseKernels kNeonElementwise;
#endif

}  // namespace detail
}  // namespace edge
