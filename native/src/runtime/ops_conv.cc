// FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D: thin adapters from .edge operators to the
// native kernel library (issue 3: edge/kernels/*.h), which owns packing, the GEMM and
// depthwise micro-kernels, requantisation, ISA dispatch and the thread pool. This file reads
// the .edge tensors and options into the layer builder's terms (edge/kernels/layer_builder.h,
// shared with the TFLite delegate: weight decoding and packing, geometry, output shapes),
// checks what the .edge format can get wrong, builds the per-layer plan once and runs it.
//
// Rounding: LiteRT's x86 int8 FULLY_CONNECTED and CONV_2D requantise with ties rounded up
// (Rounding::kUpward); its DEPTHWISE_CONV_2D does the same for channels in vectors of 8 and
// rounds the C % 8 leftover channels away from zero (see depthwise_conv2d.h). The plans are set
// up to reproduce that, so .edge int8 results equal LiteRT's builtin kernels bit for bit.
#include <optional>
#include <stdexcept>
#include <utility>

#include "edge/kernels/conv2d.h"
#include "edge/kernels/depthwise_conv2d.h"
#include "edge/kernels/fully_connected.h"
#include "edge/kernels/isa.h"
#include "edge/kernels/layer_builder.h"
#include "edge/packing/packed_weights.h"
#include "edge/runtime/limits.h"
#include "edge/thread_pool.h"
#include "op_kernel.h"

namespace edge {
namespace runtime {
namespace {

edge::Activation kernel_activation(Activation a) {
  switch (a) {
    case Activation::kNone: return edge::Activation::kNone;
    case Activation::kRelu: return edge::Activation::kRelu;
    case Activation::kReluN1To1: return edge::Activation::kReluN1To1;
    case Activation::kRelu6: return edge::Activation::kRelu6;
  }
  return edge::Activation::kNone;
}

// Weight tensor facts every weighted op needs.
struct Weights {
  const Tensor* tensor = nullptr;
  int32_t n = 0, k = 0;
  std::vector<float> scales;      // per channel (or one)
  std::vector<int32_t> zero_points;  // q domain, [n] (empty: all 0)
  int32_t group_size = 0;
  std::vector<float> group_scales;
};

// Checks the weight quantisation: per tensor, per channel along `channel_axis`, or per group
// (block_size along the last axis).
Weights weight_facts(const PrepareContext& ctx, const Tensor& w, int32_t n, int32_t k,
                     int channel_axis) {
  Weights out;
  out.tensor = &w;
  out.n = n;
  out.k = k;
  if (w.data == nullptr) throw ctx.unsupported("weights '", w.name, "' computed at run time");
  const Quantization& q = w.quant;
  if (!q.present()) throw ctx.error("weights '", w.name, "' are not quantised");
  for (float s : q.scale) {
    if (!(s > 0.0f)) throw ctx.error("weights '", w.name, "' have a scale ", s, " (must be > 0)");
  }
  if (q.block_size > 0) {
    if (q.axis != channel_axis) {
      throw ctx.error("per-group weight scales must be along axis ", channel_axis);
    }
    // The kernel reads n x ceil(k / block_size) group scales, k being the whole reduction
    // (KH * KW * Cin for CONV_2D); the loader could only check the count against the tensor's
    // last dimension (Cin), so a filter with KH * KW > 1 must be checked here.
    const int64_t groups = (int64_t{k} + q.block_size - 1) / q.block_size;
    if (static_cast<int64_t>(q.scale.size()) != int64_t{n} * groups) {
      throw ctx.error("weights '", w.name, "' ", shape_str(w.shape), " carry ", q.scale.size(),
                      " per-group scales; block size ", q.block_size, " over K = ", k,
                      " needs ", n, " x ", groups, " = ", int64_t{n} * groups);
    }
    out.group_size = q.block_size;
    out.group_scales = q.scale;
    out.scales.assign(1, 1.0f);
  } else if (q.scale.size() == 1) {
    out.scales = q.scale;
  } else {
    if (q.axis != channel_axis || static_cast<int32_t>(q.scale.size()) != n) {
      throw ctx.error("weights '", w.name, "' have ", q.scale.size(), " scales along axis ",
                      q.axis, "; expected one or ", n, " along axis ", channel_axis);
    }
    out.scales = q.scale;
  }
  bool any_zp = false;
  for (std::size_t i = 0; i < q.zero_point.size(); ++i) any_zp |= q.zero_point[i] != 0;
  if (any_zp) {
    out.zero_points.resize(n);
    for (int32_t c = 0; c < n; ++c) {
      out.zero_points[c] = static_cast<int32_t>(
          q.zero_point_at(q.zero_point.size() == 1 ? 0 : static_cast<std::size_t>(c)));
    }
  }
  return out;
}

// The weight tensor's storage in the layer builder's terms (INT8, INT4, UINT4, INT2 and TERNARY
// in 2-bit fields as TFLite packs them, TERNARY in BASE3).
StoredWeights stored(const Tensor& w) {
  StoredWeights s;
  s.data = w.data;
  s.bytes = w.data_bytes;
  s.count = w.num_elements();
  if (w.storage == Storage::kBase3) {
    s.storage = WeightStorage::kBase3;
  } else if (w.dtype == DType::kInt4) {
    s.storage = WeightStorage::kInt4;
  } else if (w.dtype == DType::kUInt4) {
    s.storage = WeightStorage::kUInt4;
  } else if (w.dtype == DType::kInt2 || w.dtype == DType::kTernary) {
    s.storage = WeightStorage::kInt2;
  }
  return s;
}

WeightType weight_type(const PrepareContext& ctx, const Tensor& w) {
  switch (w.dtype) {
    case DType::kInt8: return WeightType::kInt8;
    case DType::kInt4: return WeightType::kInt4;
    case DType::kInt2: return WeightType::kInt2;
    case DType::kTernary: return WeightType::kTernary;
    default: break;
  }
  throw ctx.unsupported("weights '", w.name, "' of type ", dtype_name(w.dtype),
                        " (supported: INT8, INT4, INT2, TERNARY)");
}

PackedWeights pack(const PrepareContext& ctx, const Weights& f) {
  const Tensor& w = *f.tensor;
  const WeightType type = weight_type(ctx, w);
  if (type == WeightType::kTernary && !f.zero_points.empty()) {
    throw ctx.unsupported("ternary weights with a zero point");
  }
  WeightQuantization q;
  q.scales = f.scales.data();
  q.num_scales = static_cast<int32_t>(f.scales.size());
  q.zero_points = f.zero_points.empty() ? nullptr : f.zero_points.data();
  q.group_size = f.group_size;
  q.group_scales = f.group_size > 0 ? f.group_scales.data() : nullptr;
  return pack_layer_weights(stored(w), type, f.n, f.k, q);
}

// Bias: constant INT32 [n] (or absent).
const int32_t* bias_of(const PrepareContext& ctx, int32_t n) {
  if (!ctx.has_input(2)) return nullptr;
  const Tensor& b = ctx.input(2);
  if (b.dtype != DType::kInt32 || b.data == nullptr || b.num_elements() != n) {
    throw ctx.error("bias '", b.name, "' must be a constant INT32 tensor of ", n, " values");
  }
  return reinterpret_cast<const int32_t*>(b.data);
}

LayerOptions layer_options(const PrepareContext& ctx, const Tensor& x, const Tensor& out,
                           int32_t n) {
  expect_dtype(ctx, x, DType::kInt8, "input");
  expect_dtype(ctx, out, DType::kInt8, "output");
  const runtime::TensorQuant qi = per_tensor_quant(ctx, x, "input");
  const runtime::TensorQuant qo = per_tensor_quant(ctx, out, "output");
  return int8_layer_options({qi.scale, qi.zero_point}, {qo.scale, qo.zero_point},
                            kernel_activation(ctx.op.options.activation), bias_of(ctx, n),
                            Rounding::kUpward, requested_isa(ctx));
}

ConvGeometry conv_geometry(const PrepareContext& ctx, const Tensor& x, int32_t kh, int32_t kw) {
  if (x.shape.size() != 4) throw ctx.error("input must be 4-D NHWC, got ", shape_str(x.shape));
  const OpOptions& o = ctx.op.options;
  const Padding& p = o.padding;
  if (p.top < 0 || p.left < 0 || p.bottom < 0 || p.right < 0 || p.top > (1 << 16) ||
      p.left > (1 << 16) || p.bottom > (1 << 16) || p.right > (1 << 16)) {
    throw ctx.error("padding (", p.top, ", ", p.left, ", ", p.bottom, ", ", p.right,
                    ") must be between 0 and 65536");
  }
  ConvParams params;
  params.stride_h = o.stride_h;
  params.stride_w = o.stride_w;
  params.dilation_h = o.dilation_h;
  params.dilation_w = o.dilation_w;
  params.padding = edge::Padding::kExplicit;
  params.pad_top = p.top;
  params.pad_bottom = p.bottom;
  params.pad_left = p.left;
  params.pad_right = p.right;
  return edge::conv_geometry(x.shape, kh, kw, params);
}

void expect_conv_output(const PrepareContext& ctx, const Tensor& x, const Tensor& out,
                        const ConvGeometry& g, int32_t oc) {
  std::vector<int32_t> expect;
  try {
    expect = conv_output_shape(g, oc);
  } catch (const std::invalid_argument& e) {
    throw ctx.error(e.what(), " ", shape_str(x.shape));
  }
  if (out.shape != expect) {
    throw ctx.error("output shape ", shape_str(out.shape), " should be ", shape_str(expect),
                    " for input ", shape_str(x.shape), ", this filter, stride and padding");
  }
}

// Runs `fn`, turning the kernel library's exceptions into errors naming the operator.
template <typename F>
auto guarded(const PrepareContext& ctx, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const IsaUnavailableError& e) {
    throw UnsupportedError(ctx.model.where() + ctx.op.label + ": " + e.what());
  } catch (const std::invalid_argument& e) {
    throw FormatError(ctx.model.where() + ctx.op.label + ": " + e.what());
  }
}

// ---------------------------------------------------------------- FULLY_CONNECTED
class FullyConnectedKernel final : public OpKernel {
 public:
  void prepare(PrepareContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    const Tensor& out = ctx.output();
    if (w.shape.size() != 2) throw ctx.error("weights must be [N, K], got ", shape_str(w.shape));
    const int32_t n = w.shape[0], k = w.shape[1];
    if (k <= 0 || n <= 0 || x.num_elements() % k != 0) {
      throw ctx.error("input ", shape_str(x.shape), " is not a whole number of rows of K = ", k);
    }
    m_ = static_cast<int32_t>(x.num_elements() / k);
    const bool keep_num_dims = ctx.op.options.keep_num_dims;
    if (keep_num_dims && (x.shape.empty() || x.shape.back() != k)) {
      throw ctx.error("with keep_num_dims the input's last dimension must be K = ", k);
    }
    const std::vector<int32_t> expect = fc_output_shape(x.shape, k, n, keep_num_dims);
    if (out.num_elements() != int64_t{m_} * n ||
        (out.shape != expect && !(out.shape.size() == 1 && m_ == 1))) {
      throw ctx.error("output shape ", shape_str(out.shape), " should be ", shape_str(expect));
    }
    const Weights f = weight_facts(ctx, w, n, k, 0);
    LayerOptions o = layer_options(ctx, x, out, n);
    plan_ = guarded(ctx, [&] {
      return std::make_unique<FullyConnected>(pack(ctx, f), o);
    });
    guarded(ctx, [&] {
      plan_->reserve(m_, ctx.threads);
      return 0;
    });
    // The plan's packed weights and per-channel tables (epilogue), not the packed codes alone.
    ctx.prepared_bytes = plan_->prepared_bytes();
    name_ = plan_->kernel_name(m_);
  }

  void run(const RunContext& ctx) override {
    plan_->run(ctx.in<int8_t>(0), m_, ctx.out<int8_t>(),
               static_cast<ThreadPool*>(ctx.thread_pool));
  }
  std::string kernel_name() const override { return name_; }

 private:
  std::unique_ptr<FullyConnected> plan_;
  int32_t m_ = 1;
  std::string name_;
};

// ---------------------------------------------------------------- CONV_2D, DEPTHWISE_CONV_2D
// A kernel-library plan for one input shape, built at prepare time and run as it is.
template <typename Plan>
class SpatialKernel : public OpKernel {
 public:
  void run(const RunContext& ctx) override {
    plan_->run(ctx.in<int8_t>(0), ctx.out<int8_t>(), static_cast<ThreadPool*>(ctx.thread_pool));
  }
  std::string kernel_name() const override { return name_; }

 protected:
  Plan& plan() { return *plan_; }
  const Plan& const_plan() const { return *plan_; }
  // Keeps the plan `make` builds (the library's errors become this operator's), sizes its
  // workspace for the interpreter's threads and notes its kernel name.
  template <typename Make>
  void adopt(const PrepareContext& ctx, Make&& make) {
    plan_ = guarded(ctx, std::forward<Make>(make));
    guarded(ctx, [&] {
      plan_->reserve(ctx.threads);
      return 0;
    });
    name_ = plan_->kernel_name();
  }

 private:
  std::unique_ptr<Plan> plan_;
  std::string name_;
};

class Conv2DKernel final : public SpatialKernel<Conv2D> {
 public:
  bool run_rows_done(const RunContext& ctx, const RowsDone& done) override {
    return plan().run(ctx.in<int8_t>(0), ctx.out<int8_t>(), ctx.pool(), done);
  }
  bool runs_pixels() const override { return const_plan().runs_pixels(); }
  void run_pixels(const RunContext& ctx, std::size_t p0, std::size_t p1, int thread) override {
    plan().run_pixels(ctx.in<int8_t>(0), ctx.out<int8_t>(), p0, p1, thread);
  }

  void prepare(PrepareContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    const Tensor& out = ctx.output();
    if (w.shape.size() != 4) {
      throw ctx.error("filter must be [Cout, KH, KW, Cin], got ", shape_str(w.shape));
    }
    const ConvGeometry g = conv_geometry(ctx, x, w.shape[1], w.shape[2]);
    if (w.shape[3] != g.input_channels) {
      throw ctx.unsupported("filter ", shape_str(w.shape), " over input ", shape_str(x.shape),
                            " (grouped convolution)");
    }
    expect_conv_output(ctx, x, out, g, w.shape[0]);
    const int32_t n = w.shape[0];
    const int32_t k = w.shape[1] * w.shape[2] * w.shape[3];
    const Weights f = weight_facts(ctx, w, n, k, 0);
    // The indirect conv keeps a pointer and a pixel index per output pixel and tap (16 bytes)
    // and a copy of the input (at most int16): checked before the plan allocates them. A 1 KB
    // filter of 32x32 taps over a 1024x1024 output would otherwise ask for 16 GiB.
    const uint64_t pixels = static_cast<uint64_t>(g.batch) * static_cast<uint64_t>(out.shape[1]) *
                            static_cast<uint64_t>(out.shape[2]);
    const uint64_t taps = static_cast<uint64_t>(w.shape[1]) * static_cast<uint64_t>(w.shape[2]);
    const uint64_t input_copy = 2 * (static_cast<uint64_t>(x.num_elements()) + 64);
    if ((pixels != 0 && taps > ctx.memory_budget / 16 / pixels) ||
        pixels * taps * 16 + input_copy > ctx.memory_budget) {
      throw ctx.error("the convolution's indirection buffers (", pixels, " output pixels x ",
                      taps, " taps x 16 bytes) and input copy need more than the memory budget "
                      "of ", ctx.memory_budget, " bytes", budget_hint());
    }
    const uint64_t plan_bytes = pixels * taps * 16 + input_copy;
    Conv2DOptions o;
    static_cast<LayerOptions&>(o) = layer_options(ctx, x, out, n);
    o.geometry = g;
    adopt(ctx, [&] { return std::make_unique<Conv2D>(pack(ctx, f), o); });
    ctx.prepared_bytes = const_plan().prepared_bytes();
    ctx.plan_bytes = static_cast<std::size_t>(plan_bytes);
  }
};

// ---------------------------------------------------------------- DEPTHWISE_CONV_2D
// The kernel library's depthwise kernel takes int8 filters; sub-byte depthwise weights are
// decoded to int8 values (the arithmetic is the same, only the storage was smaller).
class DepthwiseKernel final : public SpatialKernel<DepthwiseConv2D> {
 public:
  bool run_pixels_done(const RunContext& ctx, const PixelsDone& done) override {
    if (const_plan().output_type() != OutputType::kInt8) {
      run(ctx);
      return false;
    }
    return plan().run(ctx.in<int8_t>(0), ctx.out<int8_t>(), ctx.pool(), done);
  }
  bool takes_input_rows(int threads) const override {
    return const_plan().takes_input_rows(threads);
  }
  void run_input_rows(const RunContext& ctx, const InputRows& rows,
                      const PixelsDone& done) override {
    plan().run(ctx.in<int8_t>(0), ctx.out<int8_t>(), ctx.pool(), done, rows);
  }
  void prepare(PrepareContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    const Tensor& out = ctx.output();
    if (w.shape.size() != 4 || w.shape[0] != 1) {
      throw ctx.error("filter must be [1, KH, KW, C * depth_multiplier], got ",
                      shape_str(w.shape));
    }
    const ConvGeometry g = conv_geometry(ctx, x, w.shape[1], w.shape[2]);
    const int32_t dm = ctx.op.options.depth_multiplier;
    if (dm < 1 || int64_t{g.input_channels} * dm != w.shape[3]) {
      throw ctx.error("filter channels ", w.shape[3], " != input channels ", g.input_channels,
                      " x depth multiplier ", dm);
    }
    const int32_t oc = w.shape[3];
    expect_conv_output(ctx, x, out, g, oc);
    weight_type(ctx, w);  // a supported weight type
    const Weights f = weight_facts(ctx, w, oc, w.shape[1] * w.shape[2], 3);
    if (f.group_size > 0) throw ctx.unsupported("per-group scales on depthwise weights");
    const std::vector<int8_t> filter = guarded(ctx, [&] { return decode_weights(stored(w)); });
    DepthwiseConv2DOptions o;
    static_cast<LayerOptions&>(o) = layer_options(ctx, x, out, oc);
    o.geometry = g;
    o.depth_multiplier = dm;
    o.tail_rounding = Rounding::kAwayFromZero;
    adopt(ctx, [&] {
      return std::make_unique<DepthwiseConv2D>(
          filter.data(), f.scales.data(), static_cast<int32_t>(f.scales.size()),
          f.zero_points.empty() ? nullptr : f.zero_points.data(), o);
    });
    // The plan's own buffers: its int32 taps and fused copies are several times the filter.
    ctx.prepared_bytes = const_plan().prepared_bytes();
  }
};

}  // namespace

std::unique_ptr<OpKernel> make_fully_connected() {
  return std::make_unique<FullyConnectedKernel>();
}
std::unique_ptr<OpKernel> make_conv2d() { return std::make_unique<Conv2DKernel>(); }
std::unique_ptr<OpKernel> make_depthwise_conv2d() { return std::make_unique<DepthwiseKernel>(); }

}  // namespace runtime
}  // namespace edge
