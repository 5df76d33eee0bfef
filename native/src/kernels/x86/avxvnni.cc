// x86 AVX-VNNI kernels: VEX-encoded vpdpbusd on ymm (vnni_ymm.h holds them, written over the
// dot-product step; avxvnni_table.h names them and builds the table). Compiled with -mavx2 -mfma
// -mavxvnni only (no AVX-512 flag: the compiler must not pick an EVEX encoding or ymm16-31 that
// an Alder Lake core lacks); called only when CPUID says AVX-VNNI and AVX2 (isa.cc). Depthwise,
// element-wise, quantize and the unfused epilogues are the AVX2 kernels: nothing there is a
// 4-byte dot product the VEX form helps with, and their names (__avx2) say what ran.
#define EDGE_AVXVNNI_NAME_SUFFIX ""  // the shipped names: qs8_qc8w_gemm_6x16c4__avxvnni, ...
#include "kernels/x86/avxvnni_table.h"

namespace edge {
namespace detail {
namespace {

struct VexDot {
  static __m256i dpbusd(__m256i acc, __m256i u8, __m256i s8) {
    return _mm256_dpbusd_avx_epi32(acc, u8, s8);
  }
};

}  // namespace

// Null entries (epilogues, depthwise) are AVX2's (isa.cc, with_base).
const IsaKernels kAvxVnniKernels = vnni_ymm::avxvnni_table<VexDot>();

}  // namespace detail
}  // namespace edge
