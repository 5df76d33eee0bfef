// The scalar reference kernels: portable C++, always built, and the definition every SIMD
// variant is tested against bit for bit. Written for clarity, not speed.
#include <cmath>
#include <cstdint>

#include "edge/kernels/requant.h"
#include "kernels/ukernels.h"

namespace edge {
namespace detail {
namespace {

// Walks the packed layout literally: block b, byte j = 4c + kk, field i -> k = KB*b + 4i + kk.
template <int kBits, bool kSignedCodes>
void gemm_scalar(std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                 std::size_t x_stride, int32_t* acc) {
  constexpr int kFields = 8 / kBits;
  constexpr int kBlockK = 4 * kFields;
  constexpr unsigned kMask = (1u << kBits) - 1u;
  for (std::size_t r = 0; r < rows; ++r) {
    const int8_t* xr = reinterpret_cast<const int8_t*>(x + r * x_stride);
    for (int c = 0; c < 16; ++c) {
      // uint32 arithmetic: wrapping is defined (sums stay far from 2^31 for K <= 65536 anyway).
      uint32_t sum = 0;
      for (std::size_t b = 0; b < nblocks; ++b) {
        const uint8_t* bytes = w + b * 64 + c * 4;
        const int8_t* xb = xr + b * kBlockK;
        for (int kk = 0; kk < 4; ++kk) {
          for (int i = 0; i < kFields; ++i) {
            const unsigned code = (static_cast<unsigned>(bytes[kk]) >> (kBits * i)) & kMask;
            const int32_t value =
                kSignedCodes ? static_cast<int32_t>(static_cast<int8_t>(code))
                             : static_cast<int32_t>(code);
            sum += static_cast<uint32_t>(static_cast<int32_t>(xb[4 * i + kk]) * value);
          }
        }
      }
      acc[r * 16 + c] = static_cast<int32_t>(sum);
    }
  }
}

int32_t corrected(int32_t acc, int32_t row_sum, const EpilogueParams& p, std::size_t c) {
  uint32_t v = static_cast<uint32_t>(acc) + static_cast<uint32_t>(p.bias[c]);
  const int32_t zp = p.wzp != nullptr ? p.wzp[c] : p.wzp_uniform;
  v -= static_cast<uint32_t>(zp) * static_cast<uint32_t>(row_sum);
  return static_cast<int32_t>(v);
}

void requant_scalar(std::size_t n, const int32_t* acc, int32_t row_sum, const EpilogueParams& p,
                    std::size_t c0, int8_t* out) {
  const Rounding rounding = static_cast<Rounding>(p.rounding);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = c0 + i;
    const int32_t v = corrected(acc[i], row_sum, p, c);
    const int32_t scaled = multiply_by_quantized_multiplier(
        v, p.multiplier[c], p.left_shift[c] - p.right_shift[c], rounding);
    int32_t q = static_cast<int32_t>(static_cast<uint32_t>(scaled) +
                                     static_cast<uint32_t>(p.out_zero_point));
    q = q < p.out_min ? p.out_min : q;
    q = q > p.out_max ? p.out_max : q;
    out[i] = static_cast<int8_t>(q);
  }
}

void dequant_scalar(std::size_t n, const int32_t* acc, int32_t row_sum, const EpilogueParams& p,
                    std::size_t c0, float* out) {
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = c0 + i;
    float f = static_cast<float>(corrected(acc[i], row_sum, p, c)) * p.scale[c];
    f = f < p.float_min ? p.float_min : f;
    f = f > p.float_max ? p.float_max : f;
    out[i] = f;
  }
}

void dwconv_scalar(std::size_t channels, std::size_t taps, const int8_t* const* inputs,
                   const int32_t* weights, std::size_t stride, int32_t* acc) {
  for (std::size_t c = 0; c < channels; ++c) {
    uint32_t sum = 0;
    for (std::size_t t = 0; t < taps; ++t) {
      sum += static_cast<uint32_t>(static_cast<int32_t>(inputs[t][c]) * weights[t * stride + c]);
    }
    acc[c] = static_cast<int32_t>(sum);
  }
}

int32_t prepare_int8_scalar(const int8_t* src, std::size_t n, uint8_t* dst) {
  int32_t sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    dst[i] = static_cast<uint8_t>(src[i]);
    sum += src[i];
  }
  return sum;
}

// The kernels by name (docs/kernels.md; XNNPACK's convention): the table below takes each
// name from the symbol.
void qs8_qc8w_gemm_1x16c4__scalar(EDGE_GEMM_PARAMS) { gemm_scalar<8, true>(EDGE_GEMM_ARGS); }
void qs8_qc8w_gemm_4x16c4__scalar(EDGE_GEMM_PARAMS) { gemm_scalar<8, true>(EDGE_GEMM_ARGS); }
void qs8_qc4w_gemm_1x16c4__scalar(EDGE_GEMM_PARAMS) { gemm_scalar<4, false>(EDGE_GEMM_ARGS); }
void qs8_qc4w_gemm_4x16c4__scalar(EDGE_GEMM_PARAMS) { gemm_scalar<4, false>(EDGE_GEMM_ARGS); }
void qs8_qc2w_gemm_1x16c4__scalar(EDGE_GEMM_PARAMS) { gemm_scalar<2, false>(EDGE_GEMM_ARGS); }
void qs8_qc2w_gemm_4x16c4__scalar(EDGE_GEMM_PARAMS) { gemm_scalar<2, false>(EDGE_GEMM_ARGS); }
void qs8_qc8w_dwconv_1c__scalar(EDGE_DW_PARAMS) { dwconv_scalar(EDGE_DW_ARGS); }

constexpr GemmKernels kGemm8 = {EDGE_UKERNEL(qs8_qc8w_gemm_1x16c4__scalar, 1),
                                EDGE_UKERNEL(qs8_qc8w_gemm_4x16c4__scalar, 4), XFormat::kInt8,
                                prepare_int8_scalar};
constexpr GemmKernels kGemm4 = {EDGE_UKERNEL(qs8_qc4w_gemm_1x16c4__scalar, 1),
                                EDGE_UKERNEL(qs8_qc4w_gemm_4x16c4__scalar, 4), XFormat::kInt8,
                                prepare_int8_scalar};
// Ternary and int2 weights are both 2-bit fields: one kernel (the plan folds the zero points).
constexpr GemmKernels kGemm2 = {EDGE_UKERNEL(qs8_qc2w_gemm_1x16c4__scalar, 1),
                                EDGE_UKERNEL(qs8_qc2w_gemm_4x16c4__scalar, 4), XFormat::kInt8,
                                prepare_int8_scalar};

}  // namespace

const IsaKernels kScalarKernels = {
    {kGemm8, kGemm4, kGemm2, kGemm2},
    requant_scalar,
    dequant_scalar,
    EDGE_NAMED(qs8_qc8w_dwconv_1c__scalar),
    nullptr,
    nullptr,
    {},
    {},  // no indirect conv yet: convs take im2col
};

}  // namespace detail
}  // namespace edge
