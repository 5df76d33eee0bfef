#include "edge/cpu_features.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__linux__) && (defined(__aarch64__) || defined(__arm__))
#include <sys/auxv.h>
#endif

namespace edge {
namespace {

#if defined(__x86_64__) || defined(__i386__)
unsigned long long read_xcr0() {
  unsigned int eax = 0, edx = 0;
  // XGETBV with ECX=0 reads XCR0; only legal when CPUID says OSXSAVE.
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

// Linux (5.16+) hands out the 8 KB tile data state only to processes that ask for it: until
// then the first tile instruction raises SIGILL. The permission is per process and sticky, so
// asking once at detection covers every thread, including those started later. Other systems
// (and older kernels, where the call fails): no AMX.
bool request_amx_permission() {
#if defined(__linux__) && defined(__x86_64__)
  constexpr long kArchGetXcompPerm = 0x1022;  // <asm/prctl.h>, spelled out for old headers
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return false;
  unsigned long long granted = 0;
  if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &granted) != 0) return false;
  return ((granted >> kXfeatureXtiledata) & 1) != 0;
#else
  return false;
#endif
}

void detect_x86(CpuFeatures& f) {
  f.arch = "x86_64";
  unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return;
  const unsigned int max_leaf = eax;
  __get_cpuid(1, &eax, &ebx, &ecx, &edx);
  f.sse41 = (ecx >> 19) & 1;
  const bool osxsave = (ecx >> 27) & 1;
  const bool avx = (ecx >> 28) & 1;
  const bool fma = (ecx >> 12) & 1;
  const unsigned long long xcr0 = osxsave ? read_xcr0() : 0;
  const bool ymm_saved = (xcr0 & 0x6) == 0x6;           // SSE + AVX state
  const bool zmm_saved = (xcr0 & 0xe6) == 0xe6;         // + opmask, ZMM_Hi256, Hi16_ZMM
  if (max_leaf < 7) return;
  __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx);
  f.avx2 = avx && ymm_saved && ((ebx >> 5) & 1);
  f.fma = f.avx2 && fma;
  f.avx512f = zmm_saved && ((ebx >> 16) & 1);
  f.avx512bw = f.avx512f && ((ebx >> 30) & 1);
  f.avx512vl = f.avx512f && ((ebx >> 31) & 1);
  f.avx512vnni = f.avx512f && ((ecx >> 11) & 1);
  // AMX: leaf 7 EDX bit 24 AMX-TILE, bit 25 AMX-INT8; XCR0 bits 17 (XTILECFG) and 18
  // (XTILEDATA) say the OS context-switches the tile state.
  const bool amx_cpu = ((edx >> 24) & 1) && ((edx >> 25) & 1) && (xcr0 & 0x60000) == 0x60000;
  __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx);
  f.avxvnni = f.avx2 && ((eax >> 4) & 1);
  f.amx_int8 = f.avx512vnni && f.avx512bw && f.avx512vl && amx_cpu && request_amx_permission();
}
#endif

#if defined(__aarch64__)
void detect_aarch64(CpuFeatures& f) {
  f.arch = "aarch64";
  f.neon = true;  // Advanced SIMD is mandatory in Armv8-A
#if defined(__linux__)
  // Bit numbers from the Linux uapi <asm/hwcap.h>, spelled out so that the build does not
  // depend on the kernel headers of the cross toolchain being recent enough.
  constexpr unsigned long kHwcapAsimddp = 1UL << 20;
  constexpr unsigned long kHwcap2I8mm = 1UL << 13;
  const unsigned long hwcap = getauxval(AT_HWCAP);
  const unsigned long hwcap2 = getauxval(AT_HWCAP2);
  f.dotprod = (hwcap & kHwcapAsimddp) != 0;
  f.i8mm = (hwcap2 & kHwcap2I8mm) != 0;
#endif
}
#endif

#if defined(__arm__)
void detect_armv7(CpuFeatures& f) {
  f.arch = "armv7";
#if defined(__linux__)
  constexpr unsigned long kHwcapNeon = 1UL << 12;
  f.neon = (getauxval(AT_HWCAP) & kHwcapNeon) != 0;
#endif
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
  f.arch = "unknown";
#if defined(__x86_64__) || defined(__i386__)
  detect_x86(f);
#elif defined(__aarch64__)
  detect_aarch64(f);
#elif defined(__arm__)
  detect_armv7(f);
#endif
  return f;
}

}  // namespace

std::vector<std::string> CpuFeatures::names() const {
  std::vector<std::string> out;
  const std::pair<bool, const char*> table[] = {
      {sse41, "sse4.1"},         {avx2, "avx2"},       {fma, "fma"},
      {avx512f, "avx512f"},      {avx512bw, "avx512bw"}, {avx512vl, "avx512vl"},
      {avx512vnni, "avx512vnni"},
      {avxvnni, "avxvnni"},      {amx_int8, "amx_int8"},
      {neon, "neon"},            {dotprod, "dotprod"},
      {i8mm, "i8mm"},
  };
  for (const auto& [present, name] : table) {
    if (present) out.emplace_back(name);
  }
  return out;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

namespace {
using Core = std::pair<std::string, std::string>;  // (package, core) ids

// The physical core of a logical CPU, from sysfs; false where its topology is not readable.
bool core_of(int cpu, Core* core) {
  const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
  std::ifstream core_file(base + "core_id");
  if (!core_file) return false;
  core_file >> core->second;
  std::ifstream package_file(base + "physical_package_id");
  package_file >> core->first;
  return true;
}
}  // namespace

int physical_core_count() {
  static const int count = [] {
#if defined(__linux__)
    // Count distinct (package, core) pairs from sysfs; SMT siblings share one.
    std::set<Core> cores;
    for (int cpu = 0; cpu < 4096; ++cpu) {
      Core core;
      if (!core_of(cpu, &core)) {
        if (cpu > 0) break;
        continue;
      }
      cores.insert(core);
    }
    if (!cores.empty()) return static_cast<int>(cores.size());
#endif
    const unsigned int logical = std::thread::hardware_concurrency();
    return logical > 0 ? static_cast<int>(logical) : 1;
  }();
  return count;
}

int usable_core_count() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    std::set<Core> cores;
    int cpus = 0;
    bool all_read = true;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &set)) continue;
      ++cpus;
      Core core;
      if (core_of(cpu, &core)) {
        cores.insert(core);
      } else {
        all_read = false;
      }
    }
    const int usable = all_read && !cores.empty() ? static_cast<int>(cores.size()) : cpus;
    return std::max(1, std::min(usable, physical_core_count()));
  }
#endif
  return physical_core_count();
}

}  // namespace edge
