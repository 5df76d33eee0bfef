#include "edge/kernels/isa.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "edge/cpu_features.h"
#include "edge/kernels/elementwise.h"
#include "edge/kernels/quantize.h"
#include "edge/packing/layout.h"
#include "kernels/registry.h"

namespace edge {
namespace {

// Tier order: within an architecture each ISA is better than the ones before it.
constexpr Isa kAllIsas[] = {Isa::kScalar, Isa::kAvx2,    Isa::kAvxVnni, Isa::kAvx512Vnni,
                            Isa::kAvx512Amx, Isa::kNeon, Isa::kDotprod, Isa::kI8mm};

// Test seam (registry.h, set_isa_kernels_for_test): a table standing in for an ISA's own.
const detail::IsaKernels* g_test_tables[9] = {};

std::string lower(const std::string& s) {
  std::string out = s;
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

std::string describe_cpu() {
  const CpuFeatures& f = cpu_features();
  std::string out = f.arch + " with {";
  bool first = true;
  for (const auto& name : f.names()) {
    out += (first ? "" : ", ") + name;
    first = false;
  }
  return out + "}";
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512Vnni: return "avx512vnni";
    case Isa::kNeon: return "neon";
    case Isa::kDotprod: return "dotprod";
    case Isa::kAvxVnni: return "avxvnni";
    case Isa::kI8mm: return "i8mm";
    case Isa::kAvx512Amx: return "avx512amx";
  }
  return "unknown";
}

Isa parse_isa(const std::string& name) {
  const std::string wanted = lower(name);
  for (Isa isa : kAllIsas) {
    if (wanted == isa_name(isa)) return isa;
  }
  throw std::invalid_argument(
      "unknown kernel ISA '" + name +
      "': expected one of scalar, avx2, avxvnni, avx512vnni, avx512amx, neon, dotprod, i8mm");
}

bool isa_built(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2:
#if defined(EDGE_HAVE_AVX2)
      return true;
#else
      return false;
#endif
    case Isa::kAvx512Vnni:
#if defined(EDGE_HAVE_AVX512VNNI)
      return true;
#else
      return false;
#endif
    case Isa::kNeon:
#if defined(EDGE_HAVE_NEON)
      return true;
#else
      return false;
#endif
    case Isa::kDotprod:
#if defined(EDGE_HAVE_DOTPROD)
      return true;
#else
      return false;
#endif
    case Isa::kAvxVnni:
#if defined(EDGE_HAVE_AVXVNNI)
      return true;
#else
      return false;
#endif
    case Isa::kI8mm:
#if defined(EDGE_HAVE_I8MM)
      return true;
#else
      return false;
#endif
    case Isa::kAvx512Amx:
#if defined(EDGE_HAVE_AVX512AMX)
      return true;
#else
      return false;
#endif
  }
  return false;
}

bool isa_runs_on(Isa isa, const CpuFeatures& f) {
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return f.avx2;
    // The AVX2 kernels (depthwise, element-wise, epilogues) run beside the VNNI GEMMs.
    case Isa::kAvxVnni: return f.avx2 && f.avxvnni;
    case Isa::kAvx512Vnni: return f.avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni;
    case Isa::kNeon: return f.neon;
    case Isa::kDotprod: return f.neon && f.dotprod;
    // The dotprod kernels (GEMV, depthwise) run beside the SMMLA GEMMs.
    case Isa::kI8mm: return f.neon && f.dotprod && f.i8mm;
    // The AVX-512 VNNI kernels run everything but the int8 tile GEMM.
    case Isa::kAvx512Amx:
      return isa_runs_on(Isa::kAvx512Vnni, f) && f.amx_int8;
  }
  return false;
}

Isa best_isa_for(const CpuFeatures& f) {
  Isa best = Isa::kScalar;
  for (Isa isa : kAllIsas) {
    if (isa_built(isa) && isa_runs_on(isa, f)) best = isa;
  }
  return best;
}

bool isa_available(Isa isa) {
  if (!isa_built(isa)) return false;
  if (g_test_tables[static_cast<int>(isa)] != nullptr) return true;
  return isa_runs_on(isa, cpu_features());
}

std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  for (Isa isa : kAllIsas) {
    if (isa_available(isa)) out.push_back(isa);
  }
  return out;
}

Isa best_isa() { return best_isa_for(cpu_features()); }

std::vector<std::string> kernel_names() {
  std::vector<std::string> out;
  const auto add = [&out](const char* name) {
    if (name != nullptr) out.emplace_back(name);
  };
  for (Isa isa : kAllIsas) {
    if (!isa_built(isa)) continue;
    const detail::IsaKernels& k = detail::isa_kernels(isa);
    for (const detail::GemmKernels& g : k.gemm) {
      add(g.gemv.name);
      add(g.gemm.name);
    }
    for (const detail::GemmQs8Kernel& g : k.gemm_qs8) add(g.fn != nullptr ? g.name : nullptr);
    for (const detail::IgemmQs8Kernel& g : k.igemm_qs8) add(g.fn != nullptr ? g.name : nullptr);
    for (const detail::IgemmQs8Kernel& g : k.igemm_qs8_x2) add(g.fn != nullptr ? g.name : nullptr);
    for (const detail::IgemmQs8Kernel& g : k.igemm_qs8_raw) add(g.fn != nullptr ? g.name : nullptr);
    add(k.dwconv_name);
    add(k.dwconv_qs8 != nullptr ? k.dwconv_qs8_name : nullptr);
    const ElementwiseKernels& e = elementwise_kernels(isa);
    add(e.vadd_name);
    add(e.maxpool_name);
    add(e.rsum_name);
    add(quantize_kernel_name(isa));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool ab_switch_on(const char* name) {
  const char* env = std::getenv(name);
  return env == nullptr || std::string(env) != "0";
}

int ab_count(const char* name, int fallback) {
  const char* env = std::getenv(name);
  if (env == nullptr || *env == '\0') return fallback;
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(env, &end, 10);
  if (errno != 0 || end == env || *end != '\0' || v < 1 || v > 1024) {
    throw std::invalid_argument(std::string(name) + "='" + env +
                                "': expected a whole number from 1 to 1024");
  }
  return static_cast<int>(v);
}

Isa resolve_isa(std::optional<Isa> requested) {
  Isa isa;
  std::string source;
  if (requested) {
    isa = *requested;
    source = "requested";
  } else if (const char* env = std::getenv("EDGE_KERNEL_ISA"); env != nullptr && *env != '\0') {
    isa = parse_isa(env);
    source = "EDGE_KERNEL_ISA";
  } else {
    return best_isa();
  }
  if (!isa_built(isa)) {
    throw IsaUnavailableError(std::string("kernel ISA '") + isa_name(isa) + "' (" + source +
                              ") is not built into this binary (" + describe_cpu() + ")");
  }
  if (!isa_available(isa)) {
    throw IsaUnavailableError(std::string("kernel ISA '") + isa_name(isa) + "' (" + source +
                              ") cannot run on this CPU: " + describe_cpu());
  }
  return isa;
}

namespace detail {

namespace {

// `own` with every entry it leaves null taken from `base` (the tier below). An unfused GEMM
// entry the tier leaves empty (no GEMV and no GEMM of its own) is taken whole: its activation
// format and prepare function belong to the base's kernels.
[[maybe_unused]] IsaKernels with_base(const IsaKernels& own, const IsaKernels& base) {
  IsaKernels t = own;
  for (int i = 0; i < 4; ++i) {
    if (t.gemm[i].gemv.fn == nullptr && t.gemm[i].gemm.fn == nullptr) t.gemm[i] = base.gemm[i];
    if (t.gemm[i].gemv.fn == nullptr) t.gemm[i].gemv = base.gemm[i].gemv;
    if (t.gemm[i].gemm.fn == nullptr) t.gemm[i].gemm = base.gemm[i].gemm;
    if (t.gemm_qs8[i].fn == nullptr) t.gemm_qs8[i] = base.gemm_qs8[i];
    if (t.igemm_qs8[i].fn == nullptr) t.igemm_qs8[i] = base.igemm_qs8[i];
    if (t.igemm_qs8_x2[i].fn == nullptr) t.igemm_qs8_x2[i] = base.igemm_qs8_x2[i];
  }
  for (int i = 0; i < 2; ++i) {
    if (t.igemm_qs8_raw[i].fn == nullptr) t.igemm_qs8_raw[i] = base.igemm_qs8_raw[i];
  }
  if (t.requant == nullptr) t.requant = base.requant;
  if (t.dequant == nullptr) t.dequant = base.dequant;
  if (t.dwconv == nullptr) {
    t.dwconv = base.dwconv;
    t.dwconv_name = base.dwconv_name;
  }
  if (t.dwconv_qs8 == nullptr) {
    t.dwconv_qs8 = base.dwconv_qs8;
    t.dwconv_qs8_name = base.dwconv_qs8_name;
  }
  return t;
}

}  // namespace

void set_isa_kernels_for_test(Isa isa, const IsaKernels* table) {
  g_test_tables[static_cast<int>(isa)] = table;
}

const IsaKernels& isa_kernels(Isa isa) {
  if (const IsaKernels* t = g_test_tables[static_cast<int>(isa)]) return *t;
  switch (isa) {
    case Isa::kScalar: return kScalarKernels;
#if defined(EDGE_HAVE_AVX2)
    case Isa::kAvx2: return kAvx2Kernels;
#endif
#if defined(EDGE_HAVE_AVX512VNNI)
    case Isa::kAvx512Vnni: return kAvx512VnniKernels;
#endif
#if defined(EDGE_HAVE_NEON)
    case Isa::kNeon: return kNeonKernels;
#endif
#if defined(EDGE_HAVE_DOTPROD)
    case Isa::kDotprod: return kDotprodKernels;
#endif
#if defined(EDGE_HAVE_AVXVNNI)
    case Isa::kAvxVnni: {
      static const IsaKernels table = with_base(kAvxVnniKernels, kAvx2Kernels);
      return table;
    }
#endif
#if defined(EDGE_HAVE_I8MM)
    case Isa::kI8mm: {
      static const IsaKernels table = with_base(kI8mmKernels, kDotprodKernels);
      return table;
    }
#endif
#if defined(EDGE_HAVE_AVX512AMX)
    case Isa::kAvx512Amx: {
      // Its own int8 tile GEMM, the rest AVX-512 VNNI's, the int8 indirect convs included
      // (Conv2D and GemmPlan choose tiles only from kAmxMinDepth on, gemm_plan.h); the tile
      // GEMM reads the rows VNNI's GEMM entry prepares (x + 128).
      static const IsaKernels table = with_base(kAvx512AmxKernels, kAvx512VnniKernels);
      return table;
    }
#endif
    default: break;
  }
  throw IsaUnavailableError(std::string("kernel ISA '") + isa_name(isa) +
                            "' is not built into this binary");
}

}  // namespace detail
}  // namespace edge
