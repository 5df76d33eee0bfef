// CPU feature detection: what the running core can execute, read once at start-up.
//
// x86 reads CPUID and, for the AVX families, also checks with XGETBV that the OS saves the
// wider registers (a CPU can report AVX2 while the kernel has it disabled). Arm reads the
// kernel's HWCAP words with getauxval(); user space cannot read the ID registers itself on
// every kernel, and HWCAP is what the kernel promises will not trap.
#pragma once

#include <string>
#include <vector>

namespace edge {

struct CpuFeatures {
  // "x86_64", "aarch64", "armv7" or "unknown": what this binary was compiled for.
  std::string arch;
  // x86
  bool sse41 = false;
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512vnni = false;
  bool avxvnni = false;  // the VEX-encoded VNNI of Alder Lake and Zen 5
  // AMX-INT8 (Sapphire Rapids and later Xeons): CPUID says AMX-TILE and AMX-INT8, XCR0 has the
  // tile state enabled, and Linux granted this process the tile data permission
  // (arch_prctl(ARCH_REQ_XCOMP_PERM), asked for at detection): all three, or a tile
  // instruction faults.
  bool amx_int8 = false;
  // Arm
  bool neon = false;
  bool dotprod = false;  // Armv8.2 SDOT/UDOT
  bool i8mm = false;     // Armv8.6 SMMLA/USMMLA

  // Names of the features present, e.g. {"sse4.1", "avx2", "fma"}.
  std::vector<std::string> names() const;
};

// Features of the CPU this process runs on. Thread-safe; computed once.
const CpuFeatures& cpu_features();

// Number of physical cores (SMT siblings counted once), at least 1. Falls back to the number
// of online logical CPUs when the topology is not readable (e.g. some Android kernels).
int physical_core_count();

// Physical cores among the CPUs the calling thread may run on (its affinity: `taskset`, a
// cpuset), at least 1 and at most physical_core_count(): the default thread count. Threads
// beyond it could only take turns: the MobileNet-like int8 model under `taskset -c 0` on the
// 2-core Zen 4 host ran 2 threads at a median of 1.83-9.73 ms a run against 1.62-1.71 ms on one
// (load 14, 2026-12-07 09:05). Read on each call (the affinity may change).
int usable_core_count();

}  // namespace edge
