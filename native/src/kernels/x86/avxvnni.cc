// x86 AVX-VNNI kernels: VEX-encoded vpdpbusd on ymm (vnni_ymm.h holds them, written over the
// dot-product step). Compiled with -mavx2 -mfma -mavxvnni only (no AVX-512 flag: the compiler
// must not pick an EVEX encoding or ymm16-31 that an Alder Lake core lacks); called only when
// CPUID says AVX-VNNI and AVX2 (isa.cc). Depthwise, element-wise, quantize and the unfused
// epilogues are the AVX2 kernels: nothing there is a 4-byte dot product the VEX form helps with,
// and their names (__avx2) say what ran.
#include "kernels/x86/vnni_ymm.h"

namespace edge {
namespace detail {
namespace {

struct VexDot {
  static __m256i dpbusd(__m256i acc, __m256i u8, __m256i s8) {
    return _mm256_dpbusd_avx_epi32(acc, u8, s8);
  }
};

using namespace vnni_ymm;

// The kernels by name (docs/kernels.md): each name is the symbol.
void qs8_qc8w_gemm_1x16c4__avxvnni(EDGE_GEMM_PARAMS) { gemv<VexDot, 8>(EDGE_GEMM_ARGS); }
void qs8_qc8w_gemm_6x16c4__avxvnni(EDGE_GEMM_PARAMS) { gemm<VexDot, 8>(EDGE_GEMM_ARGS); }
void qs8_qc4w_gemm_1x16c4__avxvnni(EDGE_GEMM_PARAMS) { gemv<VexDot, 4>(EDGE_GEMM_ARGS); }
void qs8_qc4w_gemm_4x16c4__avxvnni(EDGE_GEMM_PARAMS) { gemm<VexDot, 4>(EDGE_GEMM_ARGS); }
void qs8_qc2w_gemm_1x16c4__avxvnni(EDGE_GEMM_PARAMS) { gemv<VexDot, 2>(EDGE_GEMM_ARGS); }
void qs8_qc2w_gemm_4x16c4__avxvnni(EDGE_GEMM_PARAMS) { gemm<VexDot, 2>(EDGE_GEMM_ARGS); }
void qs8_qc8w_gemm_requant_6x16c4__avxvnni(EDGE_GEMM_QS8_PARAMS) {
  gemm_requant<VexDot, 8>(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc4w_gemm_requant_4x16c4__avxvnni(EDGE_GEMM_QS8_PARAMS) {
  gemm_requant<VexDot, 4>(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc2w_gemm_requant_4x16c4__avxvnni(EDGE_GEMM_QS8_PARAMS) {
  gemm_requant<VexDot, 2>(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc8w_igemm_requant_6x16c4__avxvnni(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<VexDot, 8>(EDGE_IGEMM_QS8_ARGS);
}
void qs8_qc4w_igemm_requant_4x16c4__avxvnni(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<VexDot, 4>(EDGE_IGEMM_QS8_ARGS);
}
void qs8_qc2w_igemm_requant_4x16c4__avxvnni(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<VexDot, 2>(EDGE_IGEMM_QS8_ARGS);
}

constexpr GemmKernels kGemm8 = {EDGE_UKERNEL(qs8_qc8w_gemm_1x16c4__avxvnni, 1),
                                EDGE_UKERNEL(qs8_qc8w_gemm_6x16c4__avxvnni, kInt8Mr),
                                XFormat::kUint8, prepare<true>};
constexpr GemmKernels kGemm4 = {EDGE_UKERNEL(qs8_qc4w_gemm_1x16c4__avxvnni, 1),
                                EDGE_UKERNEL(qs8_qc4w_gemm_4x16c4__avxvnni, kSubbyteMr),
                                XFormat::kInt8, prepare<false>};
// Ternary and int2 weights are both 2-bit fields: one kernel (the plan folds the zero points).
constexpr GemmKernels kGemm2 = {EDGE_UKERNEL(qs8_qc2w_gemm_1x16c4__avxvnni, 1),
                                EDGE_UKERNEL(qs8_qc2w_gemm_4x16c4__avxvnni, kSubbyteMr),
                                XFormat::kInt8, prepare<false>};
constexpr GemmQs8Kernel kGemmQs8_2 =
    EDGE_UKERNEL(qs8_qc2w_gemm_requant_4x16c4__avxvnni, kSubbyteMr);
constexpr IgemmQs8Kernel kIgemmQs8_2 =
    EDGE_UKERNEL(qs8_qc2w_igemm_requant_4x16c4__avxvnni, kSubbyteMr);

}  // namespace

// Null entries (epilogues, depthwise) are AVX2's (isa.cc, with_base).
const IsaKernels kAvxVnniKernels = {
    {kGemm8, kGemm4, kGemm2, kGemm2},
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    {EDGE_UKERNEL(qs8_qc8w_gemm_requant_6x16c4__avxvnni, kInt8Mr),
     EDGE_UKERNEL(qs8_qc4w_gemm_requant_4x16c4__avxvnni, kSubbyteMr), kGemmQs8_2, kGemmQs8_2},
    {EDGE_UKERNEL(qs8_qc8w_igemm_requant_6x16c4__avxvnni, kInt8Mr),
     EDGE_UKERNEL(qs8_qc4w_igemm_requant_4x16c4__avxvnni, kSubbyteMr), kIgemmQs8_2, kIgemmQs8_2},
};

}  // namespace detail
}  // namespace edge
