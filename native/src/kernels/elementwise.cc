// The scalar element-wise references (the definitions every SIMD variant equals bit for bit)
// and the ISA dispatch of the element-wise kernels.
#include "edge/kernels/elementwise.h"

#include <algorithm>

#include "edge/kernels/isa.h"
#include "edge/kernels/requant.h"
#include "kernels/elementwise_ukernels.h"

namespace edge {
namespace detail {
namespace {

// NEON's VSHL.S32 by a signed count (what LiteRT's vector loop does): left shifts wrap, right
// shifts truncate; counts past the width give 0 or the sign.
int32_t shl(int32_t x, int count) {
  if (count >= 32) return 0;
  if (count >= 0) return static_cast<int32_t>(static_cast<uint32_t>(x) << count);
  if (count <= -32) return x < 0 ? -1 : 0;
  return x >> -count;
}

}  // namespace

void qs8_vadd__scalar(std::size_t n, const int8_t* a, const int8_t* b, const QS8AddParams& p,
                      int8_t* out) {
  for (std::size_t i = 0; i < n; ++i) {
    const int32_t xa =
        saturating_rounding_doubling_high_mul(shl(a[i] + p.a_offset, p.a_shift), p.a_multiplier);
    const int32_t xb =
        saturating_rounding_doubling_high_mul(shl(b[i] + p.b_offset, p.b_shift), p.b_multiplier);
    const auto sum = static_cast<int32_t>(static_cast<uint32_t>(xa) + static_cast<uint32_t>(xb));
    const int32_t s = rounding_right_shift(
        saturating_rounding_doubling_high_mul(sum, p.out_multiplier), p.out_exponent,
        Rounding::kAwayFromZero);
    // LiteRT narrows to int16 (wrapping) before it adds the zero point in int16.
    const auto t = static_cast<int16_t>(
        static_cast<uint16_t>(static_cast<uint32_t>(s) + static_cast<uint32_t>(p.out_offset)));
    out[i] = static_cast<int8_t>(std::min<int32_t>(std::max<int32_t>(t, p.out_min), p.out_max));
  }
}

void qs8_maxpool__scalar(std::size_t channels, std::size_t taps, const int8_t* const* inputs,
                         int8_t out_min, int8_t out_max, int8_t* out) {
  for (std::size_t c = 0; c < channels; ++c) {
    int8_t m = out_min;
    for (std::size_t t = 0; t < taps; ++t) m = std::max(m, inputs[t][c]);
    out[c] = std::min(m, out_max);
  }
}

void qs8_rsum__scalar(std::size_t rows, std::size_t channels, const int8_t* in,
                      std::size_t row_stride, int32_t* sums) {
  for (std::size_t r = 0; r < rows; ++r) {
    const int8_t* row = in + r * row_stride;
    for (std::size_t c = 0; c < channels; ++c) {
      sums[c] = static_cast<int32_t>(static_cast<uint32_t>(sums[c]) +
                                     static_cast<uint32_t>(int32_t{row[c]}));
    }
  }
}

const ElementwiseKernels kScalarElementwise = {
    EDGE_NAMED(qs8_vadd__scalar),
    EDGE_NAMED(qs8_maxpool__scalar),
    EDGE_NAMED(qs8_rsum__scalar),
};

}  // namespace detail

const ElementwiseKernels& elementwise_kernels(Isa isa) {
  switch (isa) {
#if defined(EDGE_HAVE_AVX2)
    case Isa::kAvx2: return detail::kAvx2Elementwise;
    case Isa::kAvxVnni: return detail::kAvx2Elementwise;  // no dot products here
#endif
#if defined(EDGE_HAVE_AVX512VNNI)
    case Isa::kAvx512Vnni: return detail::kAvx512Elementwise;
    case Isa::kAvx512Amx: return detail::kAvx512Elementwise;  // tiles serve only the GEMM
#endif
#if defined(EDGE_HAVE_NEON)
    case Isa::kNeon: return detail::kNeonElementwise;
    // Nothing here needs dot products: the NEON kernels serve both Arm levels.
    case Isa::kDotprod: return detail::kNeonElementwise;
    case Isa::kI8mm: return detail::kNeonElementwise;
#endif
    default: break;
  }
  return detail::kScalarElementwise;
}

}  // namespace edge
