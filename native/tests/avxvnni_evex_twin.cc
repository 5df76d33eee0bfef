// The EVEX twin of the AVX-VNNI kernels (test binary only): vnni_ymm.h instantiated with the
// AVX-512 VL encoding of ymm vpdpbusd (`_mm256_dpbusd_epi32`), which computes exactly what the
// VEX form (`_mm256_dpbusd_avx_epi32`, avxvnni.cc) computes. Compiled with -mavx512vl
// -mavx512vnni; nothing here runs unless the CPU has AVX-512 VNNI + VL (test_isa_tiers.cc
// installs the table, through detail::set_isa_kernels_for_test, only then). Only constant
// tables are defined at namespace scope, so no code of this file runs at start-up.
#include "kernels/x86/vnni_ymm.h"

namespace edge {
namespace detail {
namespace {

struct EvexDot {
  static __m256i dpbusd(__m256i acc, __m256i u8, __m256i s8) {
    return _mm256_dpbusd_epi32(acc, u8, s8);
  }
};

using namespace vnni_ymm;

void qs8_qc8w_gemm_1x16c4__avxvnni_evex_twin(EDGE_GEMM_PARAMS) { gemv<EvexDot, 8>(EDGE_GEMM_ARGS); }
void qs8_qc8w_gemm_6x16c4__avxvnni_evex_twin(EDGE_GEMM_PARAMS) { gemm<EvexDot, 8>(EDGE_GEMM_ARGS); }
void qs8_qc4w_gemm_1x16c4__avxvnni_evex_twin(EDGE_GEMM_PARAMS) { gemv<EvexDot, 4>(EDGE_GEMM_ARGS); }
void qs8_qc4w_gemm_4x16c4__avxvnni_evex_twin(EDGE_GEMM_PARAMS) { gemm<EvexDot, 4>(EDGE_GEMM_ARGS); }
void qs8_qc2w_gemm_1x16c4__avxvnni_evex_twin(EDGE_GEMM_PARAMS) { gemv<EvexDot, 2>(EDGE_GEMM_ARGS); }
void qs8_qc2w_gemm_4x16c4__avxvnni_evex_twin(EDGE_GEMM_PARAMS) { gemm<EvexDot, 2>(EDGE_GEMM_ARGS); }
void qs8_qc8w_gemm_requant_6x16c4__avxvnni_evex_twin(EDGE_GEMM_QS8_PARAMS) {
  gemm_requant<EvexDot, 8>(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc4w_gemm_requant_4x16c4__avxvnni_evex_twin(EDGE_GEMM_QS8_PARAMS) {
  gemm_requant<EvexDot, 4>(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc2w_gemm_requant_4x16c4__avxvnni_evex_twin(EDGE_GEMM_QS8_PARAMS) {
  gemm_requant<EvexDot, 2>(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc8w_igemm_requant_6x16c4__avxvnni_evex_twin(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<EvexDot, 8>(EDGE_IGEMM_QS8_ARGS);
}
void qs8_qc4w_igemm_requant_4x16c4__avxvnni_evex_twin(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<EvexDot, 4>(EDGE_IGEMM_QS8_ARGS);
}
void qs8_qc2w_igemm_requant_4x16c4__avxvnni_evex_twin(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<EvexDot, 2>(EDGE_IGEMM_QS8_ARGS);
}

constexpr GemmKernels kGemm8 = {EDGE_UKERNEL(qs8_qc8w_gemm_1x16c4__avxvnni_evex_twin, 1),
                                EDGE_UKERNEL(qs8_qc8w_gemm_6x16c4__avxvnni_evex_twin, kInt8Mr),
                                XFormat::kUint8, prepare<true>};
constexpr GemmKernels kGemm4 = {EDGE_UKERNEL(qs8_qc4w_gemm_1x16c4__avxvnni_evex_twin, 1),
                                EDGE_UKERNEL(qs8_qc4w_gemm_4x16c4__avxvnni_evex_twin, kSubbyteMr),
                                XFormat::kInt8, prepare<false>};
constexpr GemmKernels kGemm2 = {EDGE_UKERNEL(qs8_qc2w_gemm_1x16c4__avxvnni_evex_twin, 1),
                                EDGE_UKERNEL(qs8_qc2w_gemm_4x16c4__avxvnni_evex_twin, kSubbyteMr),
                                XFormat::kInt8, prepare<false>};
constexpr GemmQs8Kernel kGemmQs8_2 =
    EDGE_UKERNEL(qs8_qc2w_gemm_requant_4x16c4__avxvnni_evex_twin, kSubbyteMr);
constexpr IgemmQs8Kernel kIgemmQs8_2 =
    EDGE_UKERNEL(qs8_qc2w_igemm_requant_4x16c4__avxvnni_evex_twin, kSubbyteMr);

}  // namespace

// The twin's own entries; test_isa_tiers.cc takes the rest from the AVX-VNNI table (AVX2's).
extern const IsaKernels kAvxVnniEvexTwinKernels;
const IsaKernels kAvxVnniEvexTwinKernels = {
    {kGemm8, kGemm4, kGemm2, kGemm2},
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    {EDGE_UKERNEL(qs8_qc8w_gemm_requant_6x16c4__avxvnni_evex_twin, kInt8Mr),
     EDGE_UKERNEL(qs8_qc4w_gemm_requant_4x16c4__avxvnni_evex_twin, kSubbyteMr), kGemmQs8_2,
     kGemmQs8_2},
    {EDGE_UKERNEL(qs8_qc8w_igemm_requant_6x16c4__avxvnni_evex_twin, kInt8Mr),
     EDGE_UKERNEL(qs8_qc4w_igemm_requant_4x16c4__avxvnni_evex_twin, kSubbyteMr), kIgemmQs8_2,
     kIgemmQs8_2},
};

}  // namespace detail
}  // namespace edge
