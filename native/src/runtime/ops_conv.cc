// FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D: thin adapters from .edge operators to the
// native kernel library (issue 3), which owns the GEMM, packing, requantisation and threads.
//
// TODO(kernels API): the kernel library's public headers (per-layer prepared plans, thread
// pool, ISA dispatch) are not on main yet. Until they land these operators are reported as
// unsupported; no second GEMM is written here.
#include "op_kernel.h"

namespace edge {
namespace runtime {
namespace {

class PendingKernel final : public OpKernel {
 public:
  void prepare(PrepareContext& ctx) override {
    throw ctx.unsupported("this build has no ", op_name(ctx.op.type),
                          " kernel yet (it comes from the native kernel library)");
  }
  void run(const RunContext&) override {}
  std::string kernel_name() const override { return "none"; }
};

}  // namespace

std::unique_ptr<OpKernel> make_fully_connected() { return std::make_unique<PendingKernel>(); }
std::unique_ptr<OpKernel> make_conv2d() { return std::make_unique<PendingKernel>(); }
std::unique_ptr<OpKernel> make_depthwise_conv2d() { return std::make_unique<PendingKernel>(); }

}  // namespace runtime
}  // namespace edge
