// Installs the EVEX twin of the AVX-VNNI kernels (avxvnni_evex_twin.cc) in place of the VEX
// table on a CPU that has AVX-512 VNNI + VL but no AVX-VNNI, so that everything that runs ISA
// `avxvnni` (the kernel tests, edge_conv_bench --isa avxvnni) runs the same kernel source there.
#pragma once

namespace edge_test {

enum class AvxVnniForm {
  kNone,      // neither form can run here (or AVX-VNNI is not built for this architecture)
  kVex,       // this CPU has AVX-VNNI: the shipped kernels run
  kEvexTwin,  // the twin stands in (installed by this call)
};

// Idempotent. Returns which form `avxvnni` runs here from now on.
AvxVnniForm install_avxvnni_evex_twin();

}  // namespace edge_test
