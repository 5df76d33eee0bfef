// Dynamic input quantisation: the scalar reference micro-kernels (quantize_ukernels.h).
#include <cmath>

#include "kernels/quantize_ukernels.h"

namespace edge {
namespace detail {
namespace {

void minmax_scalar(std::size_t n, const float* x, float* min, float* max) {
  float lo = x[0], hi = x[0];
  for (std::size_t i = 1; i < n; ++i) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
  }
  *min = lo;
  *max = hi;
}

void f32_qs8_quantize_1x__scalar(std::size_t n, const float* x, float inv, float offset,
                                 float qmin, float qmax, int8_t* q) {
  for (std::size_t i = 0; i < n; ++i) {
    const float product = x[i] * inv;
    float v = offset + product;
    v = v < qmin ? qmin : v;
    v = v > qmax ? qmax : v;
    q[i] = static_cast<int8_t>(std::round(v));  // half away from zero, as TfLiteRound
  }
}

}  // namespace

const QuantizeKernels kScalarQuantize =
    EDGE_QUANTIZE_KERNELS(f32_qs8_quantize_1x__scalar, minmax_scalar);

}  // namespace detail
}  // namespace edge
