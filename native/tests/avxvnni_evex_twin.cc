// The EVEX twin of the AVX-VNNI kernels (test binary only): vnni_ymm.h instantiated with the
// AVX-512 VL encoding of ymm vpdpbusd (`_mm256_dpbusd_epi32`), which computes exactly what the
// VEX form (`_mm256_dpbusd_avx_epi32`, avxvnni.cc) computes; the same named kernels and table
// (avxvnni_table.h), its names ending in __avxvnni_evex_twin. Compiled with -mavx512vl
// -mavx512vnni; nothing here runs unless the CPU has AVX-512 VNNI + VL (test_isa_tiers.cc
// installs the table, through detail::set_isa_kernels_for_test, only then). Only constant
// tables are defined at namespace scope, so no code of this file runs at start-up.
#define EDGE_AVXVNNI_NAME_SUFFIX "_evex_twin"
#include "kernels/x86/avxvnni_table.h"

namespace edge {
namespace detail {
namespace {

struct EvexDot {
  static __m256i dpbusd(__m256i acc, __m256i u8, __m256i s8) {
    return _mm256_dpbusd_epi32(acc, u8, s8);
  }
};

}  // namespace

// The twin's own entries; test_isa_tiers.cc takes the rest from the AVX-VNNI table (AVX2's).
extern const IsaKernels kAvxVnniEvexTwinKernels;
const IsaKernels kAvxVnniEvexTwinKernels = vnni_ymm::avxvnni_table<EvexDot>();

}  // namespace detail
}  // namespace edge
