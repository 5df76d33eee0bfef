// The ymm load and 4-byte broadcast every x86 GEMM kernel starts from, written once for the
// translation units that use them: avx2.cc (-mavx2), vnni_ymm.h's kernels (avxvnni.cc,
// -mavxvnni; the test binary's EVEX twin, -mavx512vl -mavx512vnni) and avx512vnni.cc (its ymm
// tiles, TileVec<true>, and its zmm broadcast through load4).
//
// Linkage: internal (an anonymous namespace), as requant8_ymm.h and dw_ymm.h. These files are
// compiled with different -m flags, so the same inline function is different machine code in
// each (the AVX-512 one may be EVEX-encoded, e.g. vpbroadcastd ymm{k}); with external linkage
// the linker would keep one copy for all of them and could hand the AVX-512 body to the AVX2
// kernels, which a CPU without AVX-512 cannot run. Each includer compiles its own copy with its
// own flags instead, and inlines it: the object code of every kernel is the one it had when
// each file spelled these out.
#pragma once

#if !defined(__AVX2__)
#error "ymm_io.h: only for translation units compiled with AVX2 or above (-mavx2 at least)"
#endif

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace edge {
namespace detail {
namespace {

namespace ymm_io {

// 4 bytes from anywhere (activation rows are byte-aligned): memcpy, which compiles to one load.
inline int32_t load4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// 4 activation bytes in every dword: the vpdpbusd / vpmaddubsw operand of a c4 block.
inline __m256i bcast32(const uint8_t* p) { return _mm256_set1_epi32(load4(p)); }

}  // namespace ymm_io

}  // namespace
}  // namespace detail
}  // namespace edge
