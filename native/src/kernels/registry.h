// Internal: the micro-kernel table of an ISA. Private to the library.
#pragma once

#include "edge/kernels/isa.h"
#include "kernels/ukernels.h"

namespace edge {
namespace detail {

// The table for `isa`; the ISA must be available (resolve_isa() checks that).
const IsaKernels& isa_kernels(Isa isa);

}  // namespace detail
}  // namespace edge
