// A kernel's name is its function's symbol (docs/kernels.md). The tables of every ISA
// (ukernels.h, elementwise_ukernels.h, quantize_ukernels.h) and the runtime's own operators take
// the name from the symbol with these macros, so that a name a profile prints greps to exactly
// one definition: `grep -rn "qs8_qc8w_gemm_4x16c4__avx2(" native/src`.
#pragma once

// A table entry {name, mr, fn} (GemmKernel, GemmQs8Kernel, IgemmQs8Kernel) of kernel `fn`.
#define EDGE_UKERNEL(fn, mr) {#fn, mr, fn}
// The pair `fn, "fn"` (IsaKernels' depthwise entries, ElementwiseKernels).
#define EDGE_NAMED(fn) fn, #fn
// The name of kernel `fn` alone, checked to be a function in scope (a renamed or misspelt kernel
// does not compile): for operators whose name is not in a table.
#define EDGE_KERNEL_NAME(fn) (static_cast<void>(&fn), #fn)
// The same for a member function `fn` of class `cls` (an operator whose kernel reads its state).
#define EDGE_MEMBER_KERNEL_NAME(cls, fn) (static_cast<void>(&cls::fn), #fn)
