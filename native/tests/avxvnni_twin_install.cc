// Generic code (no ISA flags): what runs at start-up must not use instructions this CPU lacks.
#include "avxvnni_twin.h"

#include "edge/cpu_features.h"
#include "edge/kernels/isa.h"
#include "kernels/registry.h"

namespace edge {
namespace detail {
#if defined(EDGE_TEST_AVXVNNI_EVEX_TWIN)
extern const IsaKernels kAvxVnniEvexTwinKernels;
#endif
}  // namespace detail
}  // namespace edge

namespace edge_test {
namespace {

#if defined(EDGE_TEST_AVXVNNI_EVEX_TWIN)
// The AVX-VNNI table with its own entries (GEMM, fused GEMM, indirect conv, fused depthwise)
// replaced by the twin's; the rest (AVX2's unfused depthwise and epilogues) as shipped.
edge::detail::IsaKernels make_twin() {
  edge::detail::IsaKernels t = edge::detail::isa_kernels(edge::Isa::kAvxVnni);
  const edge::detail::IsaKernels& own = edge::detail::kAvxVnniEvexTwinKernels;
  for (int i = 0; i < 4; ++i) {
    t.gemm[i] = own.gemm[i];
    t.gemm_qs8[i] = own.gemm_qs8[i];
    t.igemm_qs8[i] = own.igemm_qs8[i];
  }
  t.dwconv_qs8 = own.dwconv_qs8;
  t.dwconv_qs8_name = own.dwconv_qs8_name;
  return t;
}
#endif

}  // namespace

AvxVnniForm install_avxvnni_evex_twin() {
  if (!edge::isa_built(edge::Isa::kAvxVnni)) return AvxVnniForm::kNone;
  const edge::CpuFeatures& f = edge::cpu_features();
  if (f.avx2 && f.avxvnni) return AvxVnniForm::kVex;
#if defined(EDGE_TEST_AVXVNNI_EVEX_TWIN)
  if (f.avx2 && f.avx512f && f.avx512vl && f.avx512vnni) {
    edge::detail::set_isa_kernels_for_test(edge::Isa::kAvxVnni, nullptr);
    static const edge::detail::IsaKernels twin = make_twin();
    edge::detail::set_isa_kernels_for_test(edge::Isa::kAvxVnni, &twin);
    return AvxVnniForm::kEvexTwin;
  }
#endif
  return AvxVnniForm::kNone;
}

}  // namespace edge_test
