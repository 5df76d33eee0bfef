// Which instruction set a kernel runs with, and how one is chosen.
//
// Every kernel family has a scalar reference and SIMD variants. The variant is picked when a plan
// is built, in this order of precedence:
//   1. an explicit request (the `isa` field of a plan's options, `sdk.kernels.*(isa=...)`),
//   2. the environment variable EDGE_KERNEL_ISA=scalar|avx2|avxvnni|avx512vnni|avx512amx|neon|dotprod|
//      i8mm,
//   3. the best ISA this binary carries and the running CPU supports (cpu_features()).
// A request for an ISA this build does not carry or this CPU cannot execute is an error
// (IsaUnavailableError), never a silent fallback: tests force each ISA and must know it ran.
//
// What each ISA means here:
//   scalar      portable C++, the bit-exact reference; always built.
//   avx2        x86-64 AVX2: vpmaddubsw / vpmaddwd. Needs AVX2 (and OS support for ymm state).
//   avxvnni     x86-64 AVX-VNNI: VEX vpdpbusd on ymm (Alder Lake and newer client cores, N100,
//               Zen 5 without AVX-512). Needs AVX2 too: depthwise, element-wise, quantize and
//               the unfused epilogues are the AVX2 kernels (their names end in __avx2).
//   avx512vnni  x86-64 AVX-512 F+BW+VL+VNNI: vpdpbusd on zmm (Ice Lake, Sapphire Rapids, Zen 4+).
//               Also needs AVX2: the float epilogue runs the AVX2 code. Preferred over avxvnni
//               where a CPU has both (16 channels per instruction instead of 8).
//   avx512amx   x86-64 AMX-INT8 tiles (tdpbusd: 16 rows x 16 channels x 64 k per instruction;
//               Sapphire Rapids and later Xeons; CpuFeatures::amx_int8, which includes Linux's
//               per-process tile permission) for the int8-weight GEMM with int8 output, which
//               convolutions reach through im2col; everything else (sub-byte weights, depthwise,
//               GEMV, epilogues) is the avx512vnni kernels (names end in __avx512vnni).
//   neon        Arm NEON without dot product: Armv7-A (32-bit) or Armv8-A (aarch64); the same
//               source compiled for either (no AArch64-only instructions), names end in __neon.
//   dotprod     Armv8.2-A SDOT (aarch64 only; the CPU feature `dotprod`), names end in __dotprod.
//   i8mm        Armv8.6-A SMMLA (aarch64; HWCAP2 `i8mm` and `asimddp`: Cortex-A510/A710/X2 and
//               newer, Neoverse V1/N2, Apple M2+): the multi-row GEMM / conv kernels; single-row GEMV,
//               depthwise and the rest are the dotprod / NEON kernels.
// AMX is tested only on hosts that have it (qemu 7.2's TCG cannot execute a tile instruction);
// elsewhere its bit-exact tests say they were skipped.
// A kernel's name ends in `__` and the isa_name() of the ISA it is compiled for; the name is
// also its function's symbol (docs/kernels.md).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace edge {

enum class Isa {
  kScalar,
  kAvx2,
  kAvx512Vnni,
  kNeon,
  kDotprod,
  kAvxVnni,
  kI8mm,
  kAvx512Amx,
};

// Raised when an ISA is requested that this binary lacks or this CPU cannot run.
class IsaUnavailableError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "scalar", "avx2", "avxvnni", "avx512vnni", "avx512amx", "neon", "dotprod", "i8mm": also the suffix of kernel names
// (XNNPACK style, `qs8_qc8w_gemm_4x16c4__dotprod`).
const char* isa_name(Isa isa);
// Parses an ISA name (case-insensitive); throws std::invalid_argument naming the accepted values.
Isa parse_isa(const std::string& name);

// True when this binary carries kernels for `isa`.
bool isa_built(Isa isa);
// True when this binary carries kernels for `isa` and the running CPU can execute them.
bool isa_available(Isa isa);
// Every ISA available here, scalar first, best last.
std::vector<Isa> available_isas();
// The best available ISA, ignoring EDGE_KERNEL_ISA: best_isa_for(cpu_features()).
Isa best_isa();

struct CpuFeatures;
// Whether a CPU with features `f` can execute `isa`'s kernels (CPUID / HWCAP bits only; not
// whether this binary carries them). Pure: the tier choice is tested on faked feature sets.
bool isa_runs_on(Isa isa, const CpuFeatures& f);
// The best ISA this binary carries that a CPU with features `f` runs. Tiers, worst to best:
//   x86: scalar < avx2 < avxvnni < avx512vnni;   Arm: scalar < neon < dotprod < i8mm.
Isa best_isa_for(const CpuFeatures& f);
// Every kernel name the tables of the ISAs this binary carries hold (GEMM, fused GEMM, indirect
// conv, depthwise, element-wise, quantize), sorted, each once. Each is a function's symbol
// (docs/kernels.md); the .edge runtime's own operators add runtime::op_kernel_names().
std::vector<std::string> kernel_names();
// Applies the precedence rules above. Throws std::invalid_argument for an unknown name in
// EDGE_KERNEL_ISA and IsaUnavailableError (naming the ISA and this CPU's features) when the
// chosen ISA is not available.
Isa resolve_isa(std::optional<Isa> requested = std::nullopt);

// An A/B switch of the benchmarks: on unless the environment variable `name` is "0"
// (EDGE_CONV_IGEMM, EDGE_CONV_RAW in the conv planner, EDGE_FUSE_ROWS in the interpreter).
bool ab_switch_on(const char* name);

// A count knob of the benchmarks (EDGE_FUSE_TASKS): `fallback` when the variable `name` is
// unset or empty, else its value, which must be a whole number in [1, 1024]; anything else
// throws std::invalid_argument naming the variable and the value (a typo must not silently
// measure the default).
int ab_count(const char* name, int fallback);

}  // namespace edge
