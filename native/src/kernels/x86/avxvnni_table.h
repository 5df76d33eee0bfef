// The `avxvnni` tier's named kernels and their table, written once over the dot-product step
// (`Dot::dpbusd`, vnni_ymm.h) for the two builds of vnni_ymm.h:
//   * avxvnni.cc (-mavx2 -mfma -mavxvnni): Dot = the VEX form; the shipped table kAvxVnniKernels,
//     its names ending in __avxvnni.
//   * native/tests/avxvnni_evex_twin.cc (test binary only, -mavx512vl -mavx512vnni): Dot = the EVEX
//     form; its names end in __avxvnni_evex_twin, so a test or a timing says which form ran.
// Each kernel is a function template over Dot whose name is the kernel's name (docs/kernels.md:
// one definition, here). The includer defines EDGE_AVXVNNI_NAME_SUFFIX (a string literal, ""
// for the shipped table) before including this header: a table entry's name is its function's
// symbol with that suffix appended, so it cannot drift from the function.
#pragma once

#include "kernels/x86/row_sums_ymm.h"
#include "kernels/x86/vnni_ymm.h"

#ifndef EDGE_AVXVNNI_NAME_SUFFIX
#error "define EDGE_AVXVNNI_NAME_SUFFIX (\"\" for the shipped table) before including this header"
#endif

namespace edge {
namespace detail {
namespace {

namespace vnni_ymm {

// The kernels by name (docs/kernels.md): each name is the symbol.
template <class Dot>
void qs8_qc8w_gemm_1x16c4__avxvnni(EDGE_GEMM_PARAMS) { gemv<Dot, 8>(EDGE_GEMM_ARGS); }
template <class Dot>
void qs8_qc8w_gemm_6x16c4__avxvnni(EDGE_GEMM_PARAMS) { gemm<Dot, 8>(EDGE_GEMM_ARGS); }
template <class Dot>
void qs8_qc4w_gemm_1x16c4__avxvnni(EDGE_GEMM_PARAMS) { gemv<Dot, 4>(EDGE_GEMM_ARGS); }
template <class Dot>
void qs8_qc4w_gemm_4x16c4__avxvnni(EDGE_GEMM_PARAMS) { gemm<Dot, 4>(EDGE_GEMM_ARGS); }
template <class Dot>
void qs8_qc2w_gemm_1x16c4__avxvnni(EDGE_GEMM_PARAMS) { gemv<Dot, 2>(EDGE_GEMM_ARGS); }
template <class Dot>
void qs8_qc2w_gemm_4x16c4__avxvnni(EDGE_GEMM_PARAMS) { gemm<Dot, 2>(EDGE_GEMM_ARGS); }
template <class Dot>
void qs8_qc8w_gemm_requant_6x16c4__avxvnni(EDGE_GEMM_QS8_PARAMS) {
  gemm_requant<Dot, 8>(EDGE_GEMM_QS8_ARGS);
}
template <class Dot>
void qs8_qc4w_gemm_requant_4x16c4__avxvnni(EDGE_GEMM_QS8_PARAMS) {
  gemm_requant<Dot, 4>(EDGE_GEMM_QS8_ARGS);
}
template <class Dot>
void qs8_qc2w_gemm_requant_4x16c4__avxvnni(EDGE_GEMM_QS8_PARAMS) {
  gemm_requant<Dot, 2>(EDGE_GEMM_QS8_ARGS);
}
template <class Dot>
void qs8_qc8w_igemm_requant_6x16c4__avxvnni(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<Dot, 8>(EDGE_IGEMM_QS8_ARGS);
}
template <class Dot>
void qs8_qc4w_igemm_requant_4x16c4__avxvnni(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<Dot, 4>(EDGE_IGEMM_QS8_ARGS);
}
template <class Dot>
void qs8_qc2w_igemm_requant_4x16c4__avxvnni(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<Dot, 2>(EDGE_IGEMM_QS8_ARGS);
}
template <class Dot>
void qs8_qc8w_dwconv_rowx32c4__avxvnni(EDGE_DW_QS8_PARAMS) {
  dw_ymm::dwconv<DwTaps<Dot>>(EDGE_DW_QS8_ARGS);
}

// A table entry {name, mr, fn} of kernel template `fn` over Dot (kernel_name.h's EDGE_UKERNEL,
// with the build's suffix).
#define EDGE_AVXVNNI_UKERNEL(fn, mr) {#fn EDGE_AVXVNNI_NAME_SUFFIX, mr, fn<Dot>}
// The pair `fn<Dot>, "fn" suffix` (the depthwise entries; kernel_name.h's EDGE_NAMED).
#define EDGE_AVXVNNI_NAMED(fn) fn<Dot>, #fn EDGE_AVXVNNI_NAME_SUFFIX

// The tier's own entries: GEMM, fused GEMM and indirect conv by WeightType (ternary and int2
// weights are both 2-bit fields: one kernel, the plan folds the zero points), and the fused
// depthwise kernel. Null entries (epilogues, the unfused depthwise taps) are AVX2's (isa.cc,
// with_base; the twin's installer, likewise).
template <class Dot>
constexpr IsaKernels avxvnni_table() {
  constexpr GemmKernels kGemm8 = {EDGE_AVXVNNI_UKERNEL(qs8_qc8w_gemm_1x16c4__avxvnni, 1),
                                  EDGE_AVXVNNI_UKERNEL(qs8_qc8w_gemm_6x16c4__avxvnni, kInt8Mr),
                                  XFormat::kUint8, prepare<true>};
  constexpr GemmKernels kGemm4 = {EDGE_AVXVNNI_UKERNEL(qs8_qc4w_gemm_1x16c4__avxvnni, 1),
                                  EDGE_AVXVNNI_UKERNEL(qs8_qc4w_gemm_4x16c4__avxvnni, kSubbyteMr),
                                  XFormat::kInt8, prepare<false>, row_sums_int8};
  constexpr GemmKernels kGemm2 = {EDGE_AVXVNNI_UKERNEL(qs8_qc2w_gemm_1x16c4__avxvnni, 1),
                                  EDGE_AVXVNNI_UKERNEL(qs8_qc2w_gemm_4x16c4__avxvnni, kSubbyteMr),
                                  XFormat::kInt8, prepare<false>, row_sums_int8};
  constexpr GemmQs8Kernel kGemmQs8_2 =
      EDGE_AVXVNNI_UKERNEL(qs8_qc2w_gemm_requant_4x16c4__avxvnni, kSubbyteMr);
  constexpr IgemmQs8Kernel kIgemmQs8_2 =
      EDGE_AVXVNNI_UKERNEL(qs8_qc2w_igemm_requant_4x16c4__avxvnni, kSubbyteMr);
  return {
      {kGemm8, kGemm4, kGemm2, kGemm2},
      nullptr,
      nullptr,
      nullptr,
      nullptr,
      EDGE_AVXVNNI_NAMED(qs8_qc8w_dwconv_rowx32c4__avxvnni),
      {EDGE_AVXVNNI_UKERNEL(qs8_qc8w_gemm_requant_6x16c4__avxvnni, kInt8Mr),
       EDGE_AVXVNNI_UKERNEL(qs8_qc4w_gemm_requant_4x16c4__avxvnni, kSubbyteMr), kGemmQs8_2,
       kGemmQs8_2},
      {EDGE_AVXVNNI_UKERNEL(qs8_qc8w_igemm_requant_6x16c4__avxvnni, kInt8Mr),
       EDGE_AVXVNNI_UKERNEL(qs8_qc4w_igemm_requant_4x16c4__avxvnni, kSubbyteMr), kIgemmQs8_2,
       kIgemmQs8_2},
  };
}

#undef EDGE_AVXVNNI_UKERNEL
#undef EDGE_AVXVNNI_NAMED

}  // namespace vnni_ymm
}  // namespace
}  // namespace detail
}  // namespace edge
