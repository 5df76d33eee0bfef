// The ISA tiers added for issue 17 (AVX-VNNI, Arm i8mm): the tier a CPU gets from its feature
// bits (faked feature sets: no host has them all), and which form of the AVX-VNNI kernels this
// host tests. The kernels themselves go through every bit-exact test of test_kernels.cc, which
// runs each ISA in test_isas() against the scalar reference:
//   * AVX-VNNI: on a host with AVX-VNNI, its own (VEX) table; on a host with AVX-512 VNNI + VL
//     and no AVX-VNNI, the EVEX twin (avxvnni_evex_twin.cc: the same source, the EVEX encoding of
//     the same instruction) installed below in its place; elsewhere it is not tested (said so).
//   * i8mm: under qemu-aarch64 -cpu max (EDGE_EXPECT_I8MM=1); -cpu neoverse-n1 / cortex-a72
//     (EDGE_EXPECT_I8MM=0) prove that a core without it gets dotprod / NEON.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "edge/cpu_features.h"
#include "edge/kernels/isa.h"
#include "avxvnni_twin.h"
#include "kernels/registry.h"
#include "test_main.h"

using edge::CpuFeatures;
using edge::Isa;

namespace {

using edge_test::AvxVnniForm;

// Decided before any test runs (static initialisation of this file), so that test_isas() of
// every kernel test includes avxvnni wherever one of its forms can run here.
const AvxVnniForm kAvxVnniForm = edge_test::install_avxvnni_evex_twin();

CpuFeatures x86(bool avx2, bool avxvnni, bool avx512) {
  CpuFeatures f;
  f.arch = "x86_64";
  f.sse41 = true;
  f.avx2 = f.fma = avx2;
  f.avxvnni = avxvnni;
  f.avx512f = f.avx512bw = f.avx512vl = f.avx512vnni = avx512;
  return f;
}

CpuFeatures arm(bool dotprod, bool i8mm) {
  CpuFeatures f;
  f.arch = "aarch64";
  f.neon = true;
  f.dotprod = dotprod;
  f.i8mm = i8mm;
  return f;
}

bool ends_with(const char* s, const char* suffix) {
  const std::size_t n = std::strlen(s), m = std::strlen(suffix);
  return n >= m && std::strcmp(s + n - m, suffix) == 0;
}

}  // namespace

EDGE_TEST(isa_tier_from_cpu_features) {
  // What each CPU class can execute, whatever this binary carries.
  const CpuFeatures haswell = x86(true, false, false), alder_lake = x86(true, true, false);
  const CpuFeatures zen4 = x86(true, false, true), sapphire_rapids = x86(true, true, true);
  EDGE_CHECK(!edge::isa_runs_on(Isa::kAvxVnni, haswell));
  EDGE_CHECK(edge::isa_runs_on(Isa::kAvxVnni, alder_lake));
  EDGE_CHECK(!edge::isa_runs_on(Isa::kAvx512Vnni, alder_lake));
  EDGE_CHECK(!edge::isa_runs_on(Isa::kAvxVnni, zen4));  // VEX vpdpbusd is SIGILL on Zen 4
  EDGE_CHECK(edge::isa_runs_on(Isa::kAvxVnni, sapphire_rapids));
  EDGE_CHECK(!edge::isa_runs_on(Isa::kAvxVnni, x86(false, true, false)));  // needs AVX2 too
  const CpuFeatures a72 = arm(false, false), n1 = arm(true, false), a710 = arm(true, true);
  EDGE_CHECK(!edge::isa_runs_on(Isa::kI8mm, a72) && !edge::isa_runs_on(Isa::kI8mm, n1));
  EDGE_CHECK(edge::isa_runs_on(Isa::kI8mm, a710));
  EDGE_CHECK(!edge::isa_runs_on(Isa::kI8mm, arm(false, true)));  // borrows dotprod's kernels
  // The tier dispatch picks, among what this binary carries.
  if (edge::isa_built(Isa::kAvxVnni)) {  // x86
    EDGE_CHECK(edge::best_isa_for(haswell) == Isa::kAvx2);
    EDGE_CHECK(edge::best_isa_for(alder_lake) == Isa::kAvxVnni);
    EDGE_CHECK(edge::best_isa_for(zen4) == Isa::kAvx512Vnni);
    EDGE_CHECK(edge::best_isa_for(sapphire_rapids) == Isa::kAvx512Vnni);  // zmm beats ymm
    EDGE_CHECK(edge::best_isa_for(x86(false, false, false)) == Isa::kScalar);
    EDGE_CHECK(edge::best_isa_for(a710) == Isa::kScalar);  // no Arm kernels in an x86 binary
  }
  if (edge::isa_built(Isa::kI8mm)) {  // aarch64
    EDGE_CHECK(edge::best_isa_for(a72) == Isa::kNeon);
    EDGE_CHECK(edge::best_isa_for(n1) == Isa::kDotprod);
    EDGE_CHECK(edge::best_isa_for(a710) == Isa::kI8mm);
    EDGE_CHECK(edge::best_isa_for(arm(false, true)) == Isa::kNeon);
    EDGE_CHECK(edge::best_isa_for(alder_lake) == Isa::kScalar);
  }
  // AMX-INT8 over AVX-512 VNNI; never without it (its other kernels are the VNNI ones), and
  // the tile bit alone (no OS permission: CpuFeatures::amx_int8 false) gives no AMX.
  CpuFeatures spr_amx = sapphire_rapids;
  spr_amx.amx_int8 = true;
  CpuFeatures amx_no_avx512 = alder_lake;
  amx_no_avx512.amx_int8 = true;
  EDGE_CHECK(edge::isa_runs_on(Isa::kAvx512Amx, spr_amx));
  EDGE_CHECK(!edge::isa_runs_on(Isa::kAvx512Amx, sapphire_rapids));
  EDGE_CHECK(!edge::isa_runs_on(Isa::kAvx512Amx, amx_no_avx512));
  if (edge::isa_built(Isa::kAvx512Amx)) {
    EDGE_CHECK(edge::best_isa_for(spr_amx) == Isa::kAvx512Amx);
    EDGE_CHECK(edge::best_isa_for(amx_no_avx512) == Isa::kAvxVnni);
  }
  EDGE_CHECK(edge::best_isa() == edge::best_isa_for(edge::cpu_features()));
  EDGE_CHECK(edge::parse_isa("AVX512AMX") == Isa::kAvx512Amx);
  EDGE_CHECK(std::string(edge::isa_name(Isa::kAvx512Amx)) == "avx512amx");
  EDGE_CHECK(edge::parse_isa("AVXVNNI") == Isa::kAvxVnni && edge::parse_isa("i8mm") == Isa::kI8mm);
  EDGE_CHECK(std::string(edge::isa_name(Isa::kAvxVnni)) == "avxvnni");
  EDGE_CHECK(std::string(edge::isa_name(Isa::kI8mm)) == "i8mm");
}

EDGE_TEST(isa_tiers_tested_on_this_host) {
#if defined(__x86_64__)
  EDGE_CHECK(edge::isa_built(Isa::kAvxVnni));
#endif
  if (edge::isa_built(Isa::kAvx512Amx)) {
    // The table: its own int8 tile GEMM (16 rows a call); everything else AVX-512 VNNI's, the
    // int8 indirect convs included (shallow layers: gemm_plan.h kAmxMinDepth), and named so.
    const auto& t = edge::detail::isa_kernels(Isa::kAvx512Amx);
    EDGE_CHECK(ends_with(t.gemm_qs8[0].name, "__avx512amx") && t.gemm_qs8[0].mr == 16);
    EDGE_CHECK(ends_with(t.igemm_qs8[0].name, "__avx512vnni"));
    EDGE_CHECK(ends_with(t.igemm_qs8_x2[0].name, "__avx512vnni"));
    for (int i = 1; i < 4; ++i) {
      EDGE_CHECK(ends_with(t.gemm_qs8[i].name, "__avx512vnni"));
      EDGE_CHECK(ends_with(t.igemm_qs8[i].name, "__avx512vnni"));
    }
    for (int i = 0; i < 4; ++i) {
      EDGE_CHECK(ends_with(t.gemm[i].gemm.name, "__avx512vnni"));
      EDGE_CHECK(ends_with(t.gemm[i].gemv.name, "__avx512vnni"));
    }
    EDGE_CHECK(ends_with(t.dwconv_qs8_name, "__avx512vnni") && t.requant != nullptr);
    const bool here = edge::cpu_features().amx_int8;
    EDGE_CHECK(edge::isa_available(Isa::kAvx512Amx) == (here && edge::cpu_features().avx512vnni));
    std::printf("  avx512amx: %s\n",
                here ? "this CPU has AMX-INT8 (and Linux granted the tile state); its kernel "
                       "runs in every kernel test"
                     : "SKIPPED in the kernel tests: this CPU (or its OS) has no AMX-INT8 "
                       "(dispatch gives it avx512vnni)");
  }
  switch (kAvxVnniForm) {
    case AvxVnniForm::kVex:
      std::printf("  avxvnni: this CPU has AVX-VNNI; the VEX kernels run in every kernel test\n");
      break;
    case AvxVnniForm::kEvexTwin:
      std::printf("  avxvnni: no AVX-VNNI here; its EVEX twin (AVX-512 VL) runs in every kernel "
                  "test in its place\n");
      break;
    case AvxVnniForm::kNone:
      std::printf("  avxvnni: SKIPPED: %s\n",
                  edge::isa_built(Isa::kAvxVnni)
                      ? "this CPU has neither AVX-VNNI nor AVX-512 VNNI + VL"
                      : "not built for this architecture");
      break;
  }
  if (kAvxVnniForm != AvxVnniForm::kNone) {
    EDGE_CHECK(edge::isa_available(Isa::kAvxVnni));
    const auto& t = edge::detail::isa_kernels(Isa::kAvxVnni);
    const char* own = kAvxVnniForm == AvxVnniForm::kVex ? "__avxvnni" : "__avxvnni_evex_twin";
    for (int i = 0; i < 4; ++i) {
      EDGE_CHECK(ends_with(t.gemm[i].gemv.name, own) && ends_with(t.gemm[i].gemm.name, own));
      EDGE_CHECK(ends_with(t.gemm_qs8[i].name, own) && ends_with(t.igemm_qs8[i].name, own));
    }
    EDGE_CHECK(ends_with(t.dwconv_qs8_name, own));  // its own vpdpbusd depthwise
    EDGE_CHECK(ends_with(t.dwconv_name, "__avx2"));  // the unfused taps: borrowed, named so
  }
  if (edge::isa_built(Isa::kAvxVnni) && kAvxVnniForm != AvxVnniForm::kVex) {
    // The shipped (VEX) table, whatever stands in for it here: own names (the fused depthwise
    // included), AVX2's unfused depthwise taps.
    edge::detail::set_isa_kernels_for_test(Isa::kAvxVnni, nullptr);
    const auto& t = edge::detail::isa_kernels(Isa::kAvxVnni);
    EDGE_CHECK(ends_with(t.gemm[0].gemm.name, "__avxvnni") && t.gemm[0].gemm.mr == 6);
    EDGE_CHECK(ends_with(t.igemm_qs8[2].name, "__avxvnni"));
    EDGE_CHECK(ends_with(t.dwconv_qs8_name, "qs8_qc8w_dwconv_rowx32c4__avxvnni"));
    EDGE_CHECK(ends_with(t.dwconv_name, "__avx2") && t.requant != nullptr);
    EDGE_CHECK(!edge::isa_available(Isa::kAvxVnni));
    edge_test::install_avxvnni_evex_twin();
  }
  if (edge::isa_built(Isa::kI8mm)) {
    const auto& t = edge::detail::isa_kernels(Isa::kI8mm);
    EDGE_CHECK(ends_with(t.gemm[0].gemm.name, "__i8mm") && ends_with(t.gemm[0].gemv.name, "__dotprod"));
    EDGE_CHECK(ends_with(t.igemm_qs8[1].name, "__i8mm") && ends_with(t.dwconv_qs8_name, "__dotprod"));
    std::printf("  i8mm: %s\n", edge::isa_available(Isa::kI8mm)
                                    ? "this CPU has it; its kernels run in every kernel test"
                                    : "SKIPPED: this CPU has no i8mm (dispatch gives it dotprod/NEON)");
    if (const char* expect = std::getenv("EDGE_EXPECT_I8MM")) {
      const bool want = std::string(expect) == "1";
      EDGE_CHECK(edge::isa_available(Isa::kI8mm) == want);
      EDGE_CHECK((edge::best_isa() == Isa::kI8mm) == want);
    }
  }
}
