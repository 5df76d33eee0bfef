// Internal: the micro-kernel table of an ISA. Private to the library.
#pragma once

#include "edge/kernels/isa.h"
#include "kernels/ukernels.h"

namespace edge {
namespace detail {

// The table for `isa`; the ISA must be available (resolve_isa() checks that).
const IsaKernels& isa_kernels(Isa isa);

// Test seam, for the native test binary only: `table` (null to undo) serves `isa` from now on
// and makes it available on this CPU. The AVX-VNNI kernels are checked on hosts without
// AVX-VNNI through their EVEX twin (native/tests/avxvnni_evex_twin.cc: the same source with the
// AVX-512 VL encoding of vpdpbusd) standing in for the VEX table this way.
void set_isa_kernels_for_test(Isa isa, const IsaKernels* table);

}  // namespace detail
}  // namespace edge
