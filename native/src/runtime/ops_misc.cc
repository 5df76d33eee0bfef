// Data movement and SOFTMAX: RESHAPE, CONCATENATION, PAD (any 1-byte or 4-byte type where
// the values only move), SOFTMAX (int8, LiteRT's float lookup-table kernel).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "edge/kernels/kernel_name.h"
#include "op_kernel.h"

namespace edge {
namespace runtime {
namespace {

bool same_quant(const Tensor& a, const Tensor& b) {
  if (a.quant.scale.size() != b.quant.scale.size()) return false;
  for (std::size_t i = 0; i < a.quant.scale.size(); ++i) {
    if (std::fabs(a.quant.scale[i] - b.quant.scale[i]) > 1e-6f * std::fabs(b.quant.scale[i])) {
      return false;
    }
    if (a.quant.zero_point_at(i) != b.quant.zero_point_at(i)) return false;
  }
  return true;
}

void expect_moveable(const PrepareContext& ctx, const Tensor& in, const Tensor& out) {
  if (in.dtype != out.dtype) {
    throw ctx.error("input is ", dtype_name(in.dtype), " but output is ", dtype_name(out.dtype));
  }
  if (dtype_bits(in.dtype) < 8) {
    throw ctx.unsupported("run-time tensors of type ", dtype_name(in.dtype));
  }
  if (!same_quant(in, out)) {
    throw ctx.unsupported("input '", in.name, "' and output '", out.name,
                          "' are quantised differently; this op only moves values");
  }
}

// ---------------------------------------------------------------- RESHAPE
class ReshapeKernel final : public OpKernel {
 public:
  void prepare(PrepareContext& ctx) override {
    const Tensor& in = ctx.input(0);
    const Tensor& out = ctx.output();
    expect_moveable(ctx, in, out);
    if (in.num_elements() != out.num_elements()) {
      throw ctx.error("cannot reshape ", shape_str(in.shape), " (", in.num_elements(),
                      " elements) to ", shape_str(out.shape), " (", out.num_elements(), ")");
    }
    bytes_ = in.runtime_bytes();
  }
  void run(const RunContext& ctx) override { xx_copy__scalar(ctx); }

  // The kernel (docs/kernels.md).
  void xx_copy__scalar(const RunContext& ctx) {
    const void* src = ctx.in<void>(0);
    void* dst = ctx.out<void>();
    if (src != dst && bytes_ != 0) std::memmove(dst, src, bytes_);
  }
  std::string kernel_name() const override {
    return EDGE_MEMBER_KERNEL_NAME(ReshapeKernel, xx_copy__scalar);
  }

 private:
  std::size_t bytes_ = 0;
};

// ---------------------------------------------------------------- CONCATENATION
// LiteRT's int8 concatenation requires every input to share the output's scale and zero point
// (it only copies); so do we.
class ConcatKernel final : public OpKernel {
 public:
  void prepare(PrepareContext& ctx) override {
    const Tensor& out = ctx.output();
    const int rank = static_cast<int>(out.shape.size());
    int axis = ctx.op.options.axis;
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) {
      throw ctx.error("axis ", ctx.op.options.axis, " is out of range for rank ", rank);
    }
    if (ctx.op.options.activation != Activation::kNone) {
      throw ctx.unsupported("a fused activation on CONCATENATION");
    }
    const std::size_t elem = dtype_runtime_bytes(out.dtype);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; ++i) outer *= out.shape[i];
    for (int i = axis + 1; i < rank; ++i) inner *= out.shape[i];
    int64_t total = 0;
    chunks_.clear();
    for (int k = 0; k < ctx.num_inputs(); ++k) {
      if (!ctx.has_input(k)) throw ctx.error("input ", k, " is missing");
      const Tensor& in = ctx.input(k);
      expect_moveable(ctx, in, out);
      if (static_cast<int>(in.shape.size()) != rank) {
        throw ctx.error("input ", k, " has rank ", in.shape.size(), ", the output ", rank);
      }
      for (int i = 0; i < rank; ++i) {
        if (i != axis && in.shape[i] != out.shape[i]) {
          throw ctx.error("input ", k, " shape ", shape_str(in.shape),
                          " does not match the output ", shape_str(out.shape),
                          " outside axis ", axis);
        }
      }
      total += in.shape[axis];
      chunks_.push_back(static_cast<std::size_t>(in.shape[axis] * inner) * elem);
    }
    if (total != out.shape[axis]) {
      throw ctx.error("inputs add up to ", total, " along axis ", axis, ", the output has ",
                      out.shape[axis]);
    }
    outer_ = outer;
    outer_bytes_ = 0;
    for (const std::size_t c : chunks_) outer_bytes_ += c;
  }
  // Outer indices are split among the threads when the output is large (copies of a few
  // kilobytes stay on one thread).
  void run(const RunContext& ctx) override { xx_concat__scalar(ctx); }

  // The kernel (docs/kernels.md).
  void xx_concat__scalar(const RunContext& ctx) {
    const int64_t min_outer =
        std::max<int64_t>(1, kMinParallelBytes / std::max<int64_t>(
                                 static_cast<int64_t>(outer_bytes_), 1));
    parallel_ranges(ctx.pool(), outer_, 1, min_outer, [&](int64_t begin, int64_t end, int) {
      auto* dst = ctx.out<uint8_t>() + begin * static_cast<int64_t>(outer_bytes_);
      for (int64_t o = begin; o < end; ++o) {
        for (std::size_t k = 0; k < chunks_.size(); ++k) {
          const auto* src = ctx.in<uint8_t>(static_cast<int>(k)) + o * chunks_[k];
          std::memcpy(dst, src, chunks_[k]);
          dst += chunks_[k];
        }
      }
    });
  }
  std::string kernel_name() const override {
    return EDGE_MEMBER_KERNEL_NAME(ConcatKernel, xx_concat__scalar);
  }

 private:
  std::vector<std::size_t> chunks_;  // bytes of each input per outer index
  std::size_t outer_bytes_ = 0;      // their sum: output bytes per outer index
  int64_t outer_ = 1;
};

// ---------------------------------------------------------------- PAD
class PadKernel final : public OpKernel {
 public:
  void prepare(PrepareContext& ctx) override {
    const Tensor& in = ctx.input(0);
    const Tensor& out = ctx.output();
    expect_moveable(ctx, in, out);
    const int rank = static_cast<int>(in.shape.size());
    std::vector<int64_t> pads;
    if (ctx.has_input(1)) {
      pads = constant_ints(ctx, 1, "paddings", true);
    } else if (ctx.op.options.has_paddings) {
      pads.assign(ctx.op.options.paddings.begin(), ctx.op.options.paddings.end());
    } else {
      throw ctx.error("PAD needs paddings (in PadOptions or as a constant second input)");
    }
    if (static_cast<int>(pads.size()) != 2 * rank) {
      throw ctx.error(pads.size(), " padding values for a rank-", rank, " input (need ",
                      2 * rank, ")");
    }
    std::vector<int32_t> expect(rank);
    for (int i = 0; i < rank; ++i) {
      if (pads[2 * i] < 0 || pads[2 * i + 1] < 0 || pads[2 * i] > (1 << 24) ||
          pads[2 * i + 1] > (1 << 24)) {
        throw ctx.error("padding (", pads[2 * i], ", ", pads[2 * i + 1], ") of dimension ", i,
                        " must be between 0 and 2^24");
      }
      expect[i] = static_cast<int32_t>(in.shape[i] + pads[2 * i] + pads[2 * i + 1]);
    }
    if (out.shape != expect) {
      throw ctx.error("output shape ", shape_str(out.shape), " should be ", shape_str(expect));
    }
    in_dims_.assign(in.shape.begin(), in.shape.end());
    before_.resize(rank);
    for (int i = 0; i < rank; ++i) before_[i] = pads[2 * i];
    out_dims_.assign(out.shape.begin(), out.shape.end());
    elem_ = dtype_runtime_bytes(in.dtype);
    const auto zp = static_cast<int32_t>(out.quant.present() ? out.quant.zero_point_at(0) : 0);
    fill_byte_ = elem_ == 1 ? static_cast<uint8_t>(zp) : 0;
    if (elem_ != 1 && zp != 0) throw ctx.unsupported("PAD of a multi-byte type with zero point");
    out_bytes_ = out.runtime_bytes();
    in_index_.assign(rank, 0);
  }

  void run(const RunContext& ctx) override { xx_pad__scalar(ctx); }

  // The kernel (docs/kernels.md).
  void xx_pad__scalar(const RunContext& ctx) {
    auto* dst = ctx.out<uint8_t>();
    const auto* src = ctx.in<uint8_t>(0);
    std::memset(dst, fill_byte_, out_bytes_);
    const int rank = static_cast<int>(in_dims_.size());
    if (rank == 0) {
      std::memcpy(dst, src, elem_);
      return;
    }
    // Copy input rows (last dimension) to their place in the output.
    int64_t rows = 1;
    for (int i = 0; i + 1 < rank; ++i) rows *= in_dims_[i];
    const std::size_t row_bytes = static_cast<std::size_t>(in_dims_[rank - 1]) * elem_;
    std::fill(in_index_.begin(), in_index_.end(), 0);
    for (int64_t r = 0; r < rows && row_bytes > 0; ++r) {
      int64_t o = 0;
      for (int i = 0; i < rank; ++i) o = o * out_dims_[i] + in_index_[i] + before_[i];
      std::memcpy(dst + o * elem_, src + r * row_bytes, row_bytes);
      for (int d = rank - 1; d-- > 0;) {
        if (++in_index_[d] < in_dims_[d]) break;
        in_index_[d] = 0;
      }
    }
  }
  std::string kernel_name() const override {
    return EDGE_MEMBER_KERNEL_NAME(PadKernel, xx_pad__scalar);
  }

 private:
  std::vector<int64_t> in_dims_, out_dims_, before_, in_index_;
  std::size_t elem_ = 1, out_bytes_ = 0;
  uint8_t fill_byte_ = 0;
};

// ---------------------------------------------------------------- TRANSPOSE
// Output dimension i is input dimension perm[i]; values move, nothing is computed.
class TransposeKernel final : public OpKernel {
 public:
  void prepare(PrepareContext& ctx) override {
    const Tensor& in = ctx.input(0);
    const Tensor& out = ctx.output();
    expect_moveable(ctx, in, out);
    const int rank = static_cast<int>(in.shape.size());
    std::vector<int64_t> perm;
    if (ctx.has_input(1)) {
      perm = constant_ints(ctx, 1, "permutation");
    } else if (ctx.op.options.has_perm) {
      perm.assign(ctx.op.options.perm.begin(), ctx.op.options.perm.end());
    } else {
      throw ctx.error("TRANSPOSE needs a permutation (in TransposeOptions or as a constant "
                      "second input)");
    }
    if (static_cast<int>(perm.size()) != rank) {
      throw ctx.error("permutation of ", perm.size(), " axes for a rank-", rank, " input");
    }
    std::vector<char> seen(rank, 0);
    std::vector<int32_t> expect(rank);
    for (int i = 0; i < rank; ++i) {
      if (perm[i] < 0 || perm[i] >= rank || seen[perm[i]]) {
        throw ctx.error("axis ", perm[i], " at position ", i, " does not make a permutation");
      }
      seen[perm[i]] = 1;
      expect[i] = in.shape[perm[i]];
    }
    if (out.shape != expect) {
      throw ctx.error("output shape ", shape_str(out.shape), " should be ", shape_str(expect));
    }
    elem_ = dtype_runtime_bytes(in.dtype);
    // Input strides (in elements) in output-dimension order.
    std::vector<int64_t> in_stride(rank, 1);
    for (int i = rank - 2; i >= 0; --i) in_stride[i] = in_stride[i + 1] * in.shape[i + 1];
    dims_.assign(out.shape.begin(), out.shape.end());
    strides_.resize(rank);
    for (int i = 0; i < rank; ++i) strides_[i] = in_stride[perm[i]];
    index_.assign(rank, 0);
    count_ = out.num_elements();
  }

  void run(const RunContext& ctx) override { xx_transpose__scalar(ctx); }

  // The kernel (docs/kernels.md).
  void xx_transpose__scalar(const RunContext& ctx) {
    const auto* src = ctx.in<uint8_t>(0);
    auto* dst = ctx.out<uint8_t>();
    const int rank = static_cast<int>(dims_.size());
    std::fill(index_.begin(), index_.end(), 0);
    int64_t from = 0;
    for (int64_t o = 0; o < count_; ++o) {
      std::memcpy(dst + o * elem_, src + from * elem_, elem_);
      for (int d = rank; d-- > 0;) {
        from += strides_[d];
        if (++index_[d] < dims_[d]) break;
        from -= strides_[d] * dims_[d];
        index_[d] = 0;
      }
    }
  }
  std::string kernel_name() const override {
    return EDGE_MEMBER_KERNEL_NAME(TransposeKernel, xx_transpose__scalar);
  }

 private:
  std::vector<int64_t> dims_, strides_, index_;
  std::size_t elem_ = 1;
  int64_t count_ = 0;
};

// ---------------------------------------------------------------- SOFTMAX
// LiteRT's int8 softmax on x86 and Armv7 (optimized_ops::Softmax with a float table): exp of
// each possible difference to the row maximum is tabulated once, the row is summed in float in
// order, and each probability is scaled by 1 / (sum * output_scale) and rounded half away from
// zero. (LiteRT's aarch64 clang builds use a uint16 table instead; our reference is x86.)
class SoftmaxKernel final : public OpKernel {
 public:
  void prepare(PrepareContext& ctx) override {
    const Tensor& in = ctx.input(0);
    const auto [qi, qo] = int8_in_out(ctx, true);
    if (in.shape.empty()) throw ctx.error("softmax needs an input of rank >= 1");
    const float beta = ctx.op.options.beta;
    if (!std::isfinite(beta)) throw ctx.error("beta ", beta, " is not finite");
    const float scale = -qi.scale * beta;
    for (int32_t v = 0; v <= 255; ++v) table_[255 - v] = std::exp(scale * static_cast<float>(v));
    out_scale_ = qo.scale;
    out_zp_ = qo.zero_point;
    depth_ = in.shape.back();
    rows_ = depth_ == 0 ? 0 : in.num_elements() / depth_;
  }

  void run(const RunContext& ctx) override { qs8_softmax__scalar(ctx); }

  // The kernel (docs/kernels.md).
  void qs8_softmax__scalar(const RunContext& ctx) {
    const int8_t* in = ctx.in<int8_t>(0);
    int8_t* out = ctx.out<int8_t>();
    for (int64_t r = 0; r < rows_; ++r) {
      int32_t max_val = -128;
      for (int64_t j = 0; j < depth_; ++j) max_val = std::max<int32_t>(max_val, in[j]);
      // table_[255 - max + x] = exp(-beta * in_scale * (max - x)); the index is in [0, 255].
      const int32_t base = 255 - max_val;
      float sum = 0.0f;
      for (int64_t j = 0; j < depth_; ++j) sum += table_[base + in[j]];
      const float inv = 1.0f / (sum * out_scale_);
      for (int64_t j = 0; j < depth_; ++j) {
        float p = std::round(table_[base + in[j]] * inv);
        p = std::min(std::max(p, -1e9f), 1e9f);
        const int32_t q = static_cast<int32_t>(p) + out_zp_;
        out[j] = static_cast<int8_t>(std::min(std::max(q, -128), 127));
      }
      in += depth_;
      out += depth_;
    }
  }
  std::string kernel_name() const override {
    return EDGE_MEMBER_KERNEL_NAME(SoftmaxKernel, qs8_softmax__scalar);
  }

 private:
  float table_[256] = {};
  float out_scale_ = 1;
  int32_t out_zp_ = 0;
  int64_t depth_ = 0, rows_ = 0;
};

}  // namespace

void add_misc_kernel_names(std::vector<std::string>& out) {
  out.insert(out.end(), {EDGE_MEMBER_KERNEL_NAME(ReshapeKernel, xx_copy__scalar),
                         EDGE_MEMBER_KERNEL_NAME(ConcatKernel, xx_concat__scalar),
                         EDGE_MEMBER_KERNEL_NAME(PadKernel, xx_pad__scalar),
                         EDGE_MEMBER_KERNEL_NAME(TransposeKernel, xx_transpose__scalar),
                         EDGE_MEMBER_KERNEL_NAME(SoftmaxKernel, qs8_softmax__scalar)});
}

std::unique_ptr<OpKernel> make_reshape() { return std::make_unique<ReshapeKernel>(); }
std::unique_ptr<OpKernel> make_concatenation() { return std::make_unique<ConcatKernel>(); }
std::unique_ptr<OpKernel> make_pad() { return std::make_unique<PadKernel>(); }
std::unique_ptr<OpKernel> make_softmax() { return std::make_unique<SoftmaxKernel>(); }
std::unique_ptr<OpKernel> make_transpose() { return std::make_unique<TransposeKernel>(); }

}  // namespace runtime
}  // namespace edge
