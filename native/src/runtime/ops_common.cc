// Shared operator checks and the op-type -> implementation table.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "op_kernel.h"

namespace edge {
namespace runtime {

std::unique_ptr<OpKernel> create_kernel(const Operator& op) {
  switch (op.type) {
    case OpType::kAdd: return make_add();
    case OpType::kMul: return make_mul();
    case OpType::kConcatenation: return make_concatenation();
    case OpType::kMaxPool2D: return make_max_pool();
    case OpType::kAveragePool2D: return make_average_pool();
    case OpType::kReshape: return make_reshape();
    case OpType::kSoftmax: return make_softmax();
    case OpType::kLogistic: return make_logistic();
    case OpType::kHardSwish: return make_hard_swish();
    case OpType::kQuantize: return make_quantize();
    case OpType::kDequantize: return make_dequantize();
    case OpType::kMean: return make_mean();
    case OpType::kPad: return make_pad();
    case OpType::kFullyConnected: return make_fully_connected();
    case OpType::kConv2D: return make_conv2d();
    case OpType::kDepthwiseConv2D: return make_depthwise_conv2d();
    case OpType::kTranspose: return make_transpose();
  }
  return nullptr;
}

void expect_dtype(const PrepareContext& ctx, const Tensor& t, DType dtype, const char* role) {
  if (t.dtype != dtype) {
    throw ctx.unsupported(role, " '", t.name, "' is ", dtype_name(t.dtype), "; this runtime runs ",
                          op_name(ctx.op.type), " with ", dtype_name(dtype), " here");
  }
}

void expect_same_shape(const PrepareContext& ctx, const Tensor& a, const Tensor& b,
                       const char* role_a, const char* role_b) {
  if (a.shape != b.shape) {
    throw ctx.error(role_a, " shape ", shape_str(a.shape), " differs from ", role_b, " shape ",
                    shape_str(b.shape));
  }
}

TensorQuant per_tensor_quant(const PrepareContext& ctx, const Tensor& t, const char* role) {
  if (t.quant.scale.size() != 1 || t.quant.block_size != 0) {
    throw ctx.error(role, " '", t.name, "' needs per-tensor quantisation (one scale), it has ",
                    t.quant.scale.size());
  }
  const float scale = t.quant.scale[0];
  if (!(scale > 0.0f)) throw ctx.error(role, " '", t.name, "' has scale ", scale, " (must be > 0)");
  const int64_t zp = t.quant.zero_point_at(0);
  int64_t lo = -128, hi = 127;
  if (t.dtype == DType::kUInt8) lo = 0, hi = 255;
  if (t.dtype == DType::kInt16) lo = -32768, hi = 32767;
  if (zp < lo || zp > hi) {
    throw ctx.error(role, " '", t.name, "' has zero point ", zp, ", outside [", lo, ", ", hi, "]");
  }
  return {scale, static_cast<int32_t>(zp)};
}

InOutQuant int8_in_out(const PrepareContext& ctx, bool same_shape) {
  const Tensor& in = ctx.input(0);
  const Tensor& out = ctx.output();
  expect_dtype(ctx, in, DType::kInt8, "input");
  expect_dtype(ctx, out, DType::kInt8, "output");
  if (same_shape) expect_same_shape(ctx, in, out, "input", "output");
  return {per_tensor_quant(ctx, in, "input"), per_tensor_quant(ctx, out, "output")};
}

std::vector<int64_t> constant_ints(const PrepareContext& ctx, int k, const char* what,
                                   bool int64_ok) {
  const Tensor& t = ctx.input(k);
  const bool int64 = int64_ok && t.dtype == DType::kInt64;
  if (t.data == nullptr || (t.dtype != DType::kInt32 && !int64)) {
    throw ctx.error("the ", what, " input must be a constant INT32", int64_ok ? " or INT64" : "",
                    " tensor");
  }
  std::vector<int64_t> values(static_cast<std::size_t>(t.num_elements()));
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = int64 ? reinterpret_cast<const int64_t*>(t.data)[i]
                      : reinterpret_cast<const int32_t*>(t.data)[i];
  }
  return values;
}

std::optional<Isa> requested_isa(const PrepareContext& ctx) {
  if (ctx.isa.empty()) return std::nullopt;
  try {
    return parse_isa(ctx.isa);
  } catch (const std::invalid_argument& e) {
    throw UnsupportedError(ctx.model.where() + ctx.op.label + ": " + e.what());
  }
}

QuantizedMultiplier quantize_multiplier(const PrepareContext& ctx, double real_multiplier) {
  if (!(real_multiplier >= 0.0) || !std::isfinite(real_multiplier)) {
    throw ctx.error("quantisation scales give the multiplier ", real_multiplier,
                    " (must be a finite number >= 0)");
  }
  return edge::quantize_multiplier(real_multiplier);
}

void activation_range_int8(Activation act, float scale, int32_t zero_point, int32_t* act_min,
                           int32_t* act_max) {
  // zero_point + round(f / scale), as TFLite's CalculateActivationRangeQuantized; the float is
  // clamped first so that a tiny scale cannot overflow the conversion.
  auto quantize = [&](float f) {
    float q = std::round(f / scale);
    q = std::min(std::max(q, -1e9f), 1e9f);
    return zero_point + static_cast<int32_t>(q);
  };
  int32_t lo = -128, hi = 127;
  switch (act) {
    case Activation::kNone: break;
    case Activation::kRelu: lo = std::max(lo, quantize(0.0f)); break;
    case Activation::kRelu6:
      lo = std::max(lo, quantize(0.0f));
      hi = std::min(hi, quantize(6.0f));
      break;
    case Activation::kReluN1To1:
      lo = std::max(lo, quantize(-1.0f));
      hi = std::min(hi, quantize(1.0f));
      break;
  }
  *act_min = lo;
  *act_max = hi;
}

std::vector<std::string> op_kernel_names() {
  std::vector<std::string> out;
  add_elementwise_kernel_names(out);
  add_misc_kernel_names(out);
  add_pool_kernel_names(out);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace runtime
}  // namespace edge
