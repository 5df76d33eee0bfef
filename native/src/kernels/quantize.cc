// Dynamic input quantisation (edge/kernels/quantize.h): the per-row parameters are computed here,
// once per row and identically for every ISA; the ISA's micro-kernels do the min/max reduction
// and the element loop (quantize_ukernels.h).
#include "edge/kernels/quantize.h"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/quantize_ukernels.h"

namespace edge {
namespace detail {
namespace {

const QuantizeKernels& quantize_kernels(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return kScalarQuantize;
#if defined(EDGE_HAVE_AVX2)
    case Isa::kAvx2:
    case Isa::kAvxVnni: return kAvx2Quantize;
#endif
#if defined(EDGE_HAVE_AVX512VNNI)
    case Isa::kAvx512Vnni:
    case Isa::kAvx512Amx: return kAvx512Quantize;
#endif
#if defined(EDGE_HAVE_NEON)
    // Dot-product CPUs run the NEON quantiser: the loop has no dot products.
    case Isa::kNeon:
    case Isa::kDotprod:
    case Isa::kI8mm: return kNeonQuantize;
#endif
    default: break;
  }
  throw IsaUnavailableError(std::string("kernel ISA '") + isa_name(isa) +
                            "' has no quantisation kernel in this binary");
}

// Rows whose range is so small that the float inverse overflows (subnormal ranges: TFLite's
// float arithmetic would multiply 0 by infinity there) are quantised in double instead, the same
// on every ISA: q = clamp(round(offset + x / scale)).
void quantize_tiny_range(std::size_t n, const float* x, double scale, double offset, double qmin,
                         int8_t* q) {
  for (std::size_t i = 0; i < n; ++i) {
    double v = offset + static_cast<double>(x[i]) / scale;
    v = v < qmin ? qmin : (v > 127.0 ? 127.0 : v);
    q[i] = static_cast<int8_t>(std::round(v));
  }
}

}  // namespace
}  // namespace detail

const char* quantize_kernel_name(Isa isa) { return detail::quantize_kernels(isa).name; }

void quantize_rows(const float* input, int32_t rows, int32_t cols, InputQuantization mode,
                   int8_t* q, float* scales, int32_t* zero_points, std::optional<Isa> isa) {
  if (rows < 0 || cols < 1) {
    throw std::invalid_argument("quantize_rows: need rows >= 0 and cols >= 1, got " +
                                std::to_string(rows) + " x " + std::to_string(cols));
  }
  const detail::QuantizeKernels& k = detail::quantize_kernels(resolve_isa(isa));
  const std::size_t n = static_cast<std::size_t>(cols);
  for (int32_t r = 0; r < rows; ++r) {
    const float* x = input + static_cast<std::size_t>(r) * n;
    int8_t* out = q + static_cast<std::size_t>(r) * n;
    float lo = 0.0f, hi = 0.0f;
    k.minmax(n, x, &lo, &hi);
    if (mode == InputQuantization::kSymmetric) {
      if (zero_points != nullptr) zero_points[r] = 0;
      const float range = std::fmax(std::fabs(lo), std::fabs(hi));
      if (range == 0.0f) {
        std::memset(out, 0, n);
        scales[r] = 1.0f;
        continue;
      }
      scales[r] = range / 127.0f;
      const float inv = 127.0f / range;
      if (std::isfinite(inv)) {
        k.quantize(n, x, inv, 0.0f, -127.0f, 127.0f, out);
      } else {
        detail::quantize_tiny_range(n, x, static_cast<double>(range) / 127.0, 0.0, -127.0, out);
      }
    } else {
      const double rmin = std::fmin(0.0, static_cast<double>(lo));
      const double rmax = std::fmax(0.0, static_cast<double>(hi));
      if (rmin == rmax) {
        std::memset(out, 0, n);
        scales[r] = 1.0f;
        zero_points[r] = 0;
        continue;
      }
      // The zero point whose derivation loses less (TFLite's nudging), in double.
      const double scale = (rmax - rmin) / 255.0;
      const double from_min = -128.0 - rmin / scale;
      const double from_max = 127.0 - rmax / scale;
      const double error_min = 128.0 + std::fabs(rmin / scale);
      const double error_max = 127.0 + std::fabs(rmax / scale);
      const double zp = error_min < error_max ? from_min : from_max;
      int32_t nudged = 0;
      if (zp <= -128.0) {
        nudged = -128;
      } else if (zp >= 127.0) {
        nudged = 127;
      } else {
        nudged = static_cast<int32_t>(std::round(zp));
      }
      scales[r] = static_cast<float>(scale);
      zero_points[r] = nudged;
      const float inv = static_cast<float>(1.0 / static_cast<double>(scales[r]));
      if (std::isfinite(inv)) {
        k.quantize(n, x, inv, static_cast<float>(nudged), -128.0f, 127.0f, out);
      } else {
        detail::quantize_tiny_range(n, x, scale, nudged, -128.0, out);
      }
    }
  }
}

}  // namespace edge
