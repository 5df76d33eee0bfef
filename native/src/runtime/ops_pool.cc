// Pooling and reduction: MAX_POOL_2D, AVERAGE_POOL_2D, MEAN (int8, NHWC), as LiteRT's builtin
// int8 kernels compute them.
#include <algorithm>
#include <cmath>
#include <string>

#include "edge/kernels/elementwise.h"
#include "litert_compat.h"
#include "edge/kernels/kernel_name.h"
#include "op_kernel.h"

namespace edge {
namespace runtime {
namespace {

struct PoolGeometry {
  int batches = 0, in_h = 0, in_w = 0, depth = 0, out_h = 0, out_w = 0;
  int filter_h = 0, filter_w = 0, stride_h = 1, stride_w = 1, pad_top = 0, pad_left = 0;
};

PoolGeometry pool_geometry(const PrepareContext& ctx) {
  const Tensor& in = ctx.input(0);
  const Tensor& out = ctx.output();
  const OpOptions& o = ctx.op.options;
  if (in.shape.size() != 4 || out.shape.size() != 4) {
    throw ctx.error("pooling needs 4-D NHWC input and output, got ", shape_str(in.shape), " and ",
                    shape_str(out.shape));
  }
  PoolGeometry g;
  g.batches = in.shape[0];
  g.in_h = in.shape[1];
  g.in_w = in.shape[2];
  g.depth = in.shape[3];
  g.filter_h = o.filter_h;
  g.filter_w = o.filter_w;
  g.stride_h = o.stride_h;
  g.stride_w = o.stride_w;
  g.pad_top = o.padding.top;
  g.pad_left = o.padding.left;
  const Padding& p = o.padding;
  if (g.filter_h < 1 || g.filter_w < 1) {
    throw ctx.error("filter size ", g.filter_h, "x", g.filter_w, " must be at least 1x1");
  }
  // A padding at least as large as the filter would give windows that see no input at all.
  if (p.top < 0 || p.left < 0 || p.bottom < 0 || p.right < 0 || p.top >= g.filter_h ||
      p.bottom >= g.filter_h || p.left >= g.filter_w || p.right >= g.filter_w) {
    throw ctx.error("padding (", p.top, ", ", p.left, ", ", p.bottom, ", ", p.right,
                    ") must be >= 0 and smaller than the filter ", g.filter_h, "x", g.filter_w);
  }
  const int64_t span_h = int64_t{g.in_h} + p.top + p.bottom - g.filter_h;
  const int64_t span_w = int64_t{g.in_w} + p.left + p.right - g.filter_w;
  if (span_h < 0 || span_w < 0) {
    throw ctx.error("filter ", g.filter_h, "x", g.filter_w, " is larger than the padded input");
  }
  const std::vector<int32_t> expect = {g.batches, static_cast<int32_t>(span_h / g.stride_h + 1),
                                       static_cast<int32_t>(span_w / g.stride_w + 1), g.depth};
  if (out.shape != expect) {
    throw ctx.error("output shape ", shape_str(out.shape), " should be ", shape_str(expect),
                    " for input ", shape_str(in.shape), ", this filter, stride and padding");
  }
  g.out_h = expect[1];
  g.out_w = expect[2];
  return g;
}

// Window bounds of one output position, clipped to the input (TFLite's filter_*_start/end).
struct Window {
  int y0, y1, x0, x1;
};
inline Window window(const PoolGeometry& g, int oy, int ox) {
  const int iy = oy * g.stride_h - g.pad_top;
  const int ix = ox * g.stride_w - g.pad_left;
  return {std::max(0, -iy) + iy, std::min(g.filter_h, g.in_h - iy) + iy,
          std::max(0, -ix) + ix, std::min(g.filter_w, g.in_w - ix) + ix};
}

// MAX_POOL_2D and AVERAGE_POOL_2D. Output rows are split among the pool's threads (each thread
// writes whole rows of whole pixels: no shared cache lines but at row ends, which are written
// once). The max runs the ISA's max-pool kernel on the window's clipped list of input pixels;
// the average sums in int32 per channel (rare in the models we see; scalar).
class PoolKernel final : public OpKernel {
 public:
  explicit PoolKernel(bool max) : max_(max) {}

  void prepare(PrepareContext& ctx) override {
    const auto [qi, qo] = int8_in_out(ctx, false);
    if (std::fabs(qi.scale - qo.scale) > 1e-6f || qi.zero_point != qo.zero_point) {
      throw ctx.unsupported("int8 pooling needs the same quantisation on input and output (",
                            qi.scale, ", ", qi.zero_point, " vs ", qo.scale, ", ", qo.zero_point,
                            ")");
    }
    g_ = pool_geometry(ctx);
    const auto threads = static_cast<std::size_t>(std::max(ctx.threads, 1));
    taps_ = static_cast<std::size_t>(g_.filter_h) * static_cast<std::size_t>(g_.filter_w);
    if (max_) {
      const ElementwiseKernels& k = elementwise_kernels(resolve_isa(requested_isa(ctx)));
      maxpool_ = k.maxpool;
      name_ = k.maxpool_name;
      inputs_.assign(threads * taps_, nullptr);
    } else {
      name_ = EDGE_MEMBER_KERNEL_NAME(PoolKernel, qs8_avgpool__scalar);
      acc_.assign(threads * static_cast<std::size_t>(g_.depth), 0);
    }
    activation_range_int8(ctx.op.options.activation, qo.scale, qo.zero_point, &act_min_,
                          &act_max_);
  }

  void run(const RunContext& ctx) override {
    const int8_t* in = ctx.in<int8_t>(0);
    int8_t* out = ctx.out<int8_t>();
    const int64_t rows = int64_t{g_.batches} * g_.out_h;
    const int64_t row_bytes = int64_t{g_.out_w} * g_.depth;
    const int64_t min_rows =
        std::max<int64_t>(1, kMinParallelBytes / std::max<int64_t>(row_bytes, 1));
    parallel_ranges(ctx.pool(), rows, 1, min_rows, [&](int64_t begin, int64_t end, int thread) {
      for (int64_t row = begin; row < end; ++row) {
        run_row(in, out, static_cast<int>(row / g_.out_h), static_cast<int>(row % g_.out_h),
                thread);
      }
    });
  }

  std::string kernel_name() const override { return name_; }

 private:
  void run_row(const int8_t* in, int8_t* out, int b, int oy, int thread) {
    const int64_t d = g_.depth;
    for (int ox = 0; ox < g_.out_w; ++ox) {
      const Window w = window(g_, oy, ox);
      int8_t* o = out + ((int64_t{b} * g_.out_h + oy) * g_.out_w + ox) * d;
      if (max_) {
        // The window's pixels, clipped to the input (the max of the others is not taken, as in
        // TFLite); starting the max at act_min gives what TFLite's max from act_min gives.
        const int8_t** taps = inputs_.data() + static_cast<std::size_t>(thread) * taps_;
        std::size_t n = 0;
        for (int y = w.y0; y < w.y1; ++y) {
          for (int x = w.x0; x < w.x1; ++x) {
            taps[n++] = in + ((int64_t{b} * g_.in_h + y) * g_.in_w + x) * d;
          }
        }
        maxpool_(static_cast<std::size_t>(d), n, taps, static_cast<int8_t>(act_min_),
                 static_cast<int8_t>(act_max_), o);
      } else {
        qs8_avgpool__scalar(in, w, b, o, acc_.data() + static_cast<std::size_t>(thread) *
                                                           static_cast<std::size_t>(d));
      }
    }
  }

 public:
  // The kernel (docs/kernels.md): one output pixel of AVERAGE_POOL_2D, the window's (clipped)
  // input pixels summed per channel in acc and divided by their count.
  void qs8_avgpool__scalar(const int8_t* in, const Window& w, int b, int8_t* o,
                           int32_t* acc) const {
    const int64_t d = g_.depth;
    for (int64_t c = 0; c < d; ++c) acc[c] = 0;
    for (int y = w.y0; y < w.y1; ++y) {
      for (int x = w.x0; x < w.x1; ++x) {
        const int8_t* px = in + ((int64_t{b} * g_.in_h + y) * g_.in_w + x) * d;
        for (int64_t c = 0; c < d; ++c) acc[c] += px[c];
      }
    }
    // TFLite rounds the average half away from zero with integer division.
    const int count = (w.y1 - w.y0) * (w.x1 - w.x0);
    for (int64_t c = 0; c < d; ++c) {
      const int32_t v = acc[c] > 0 ? (acc[c] + count / 2) / count
                                   : (acc[c] - count / 2) / count;
      o[c] = clamp8(v, act_min_, act_max_);
    }
  }

 private:
  bool max_;
  PoolGeometry g_;
  std::size_t taps_ = 0;
  QS8MaxPoolFn maxpool_ = nullptr;
  std::string name_;
  std::vector<const int8_t*> inputs_;  // max: per thread, one window's input pixels
  std::vector<int32_t> acc_;           // average: per thread, one accumulator per channel
  int32_t act_min_ = -128, act_max_ = 127;
};

// ---------------------------------------------------------------- MEAN
// LiteRT has two int8 MEAN paths and both are reproduced:
//  * keep_dims, 4-D input, axes {1, 2} (global average pooling): the optimized kernel sums the
//    raw values, scales by in_scale / (count * out_scale) (formed in float) and adds a bias of
//    out_zp - round(in_zp * in_scale / out_scale). It splits the channels among
//    min(depth / 8, threads) tasks, and each task runs vector blocks of 16 channels from its own
//    first channel, then the scalar code: which channels take the vector rounding depends on
//    LiteRT's thread count, so the split is reproduced for this interpreter's thread count
//    (the same model gives the same outputs as LiteRT with as many threads);
//  * everything else: the reference QuantizedMeanOrSum, which subtracts the input zero point
//    from the sum and folds 1 / count into the fixed-point multiplier.
// For LiteRT's int8 Mean4D with `threads` threads: per channel, whether its vector loop (1) or
// its scalar code (0) scales it. The tasks split the channels as evenly as possible, in order.
std::vector<char> litert_mean_vector_channels(int64_t depth, int threads) {
  constexpr int64_t kMinDepthPerThread = 8, kBlock = 16;
  const int64_t tasks = std::min<int64_t>(std::max<int64_t>(depth / kMinDepthPerThread, 1),
                                          std::max(threads, 1));
  std::vector<char> vector(static_cast<std::size_t>(depth), 0);
  int64_t start = 0;
  for (int64_t i = 0; i < tasks; ++i) {
    const int64_t end = start + (depth - start) / (tasks - i);
    const int64_t vec_end = end - (end - start) % kBlock;
    std::fill(vector.begin() + start, vector.begin() + vec_end, 1);
    start = end;
  }
  return vector;
}

class MeanKernel final : public OpKernel {
 public:
  void prepare(PrepareContext& ctx) override {
    const Tensor& in = ctx.input(0);
    const Tensor& out = ctx.output();
    const auto [qi, qo] = int8_in_out(ctx, false);
    const int rank = static_cast<int>(in.shape.size());
    std::vector<int64_t> axes(ctx.op.options.axes.begin(), ctx.op.options.axes.end());
    if (ctx.has_input(1)) {
      axes = constant_ints(ctx, 1, "axes");
    } else if (!ctx.op.options.has_axes) {
      throw ctx.error("MEAN needs axes (in ReducerOptions or as a constant second input)");
    }
    std::vector<char> reduced(rank, 0);
    for (const int64_t ax : axes) {
      const int64_t r = ax < 0 ? ax + rank : ax;
      if (r < 0 || r >= rank) throw ctx.error("axis ", ax, " is out of range for rank ", rank);
      reduced[r] = 1;
    }
    keep_dims_ = ctx.op.options.keep_dims;
    std::vector<int32_t> expect;
    count_ = 1;
    for (int i = 0; i < rank; ++i) {
      if (reduced[i]) {
        count_ *= in.shape[i];
        if (keep_dims_) expect.push_back(1);
      } else {
        expect.push_back(in.shape[i]);
      }
    }
    if (out.shape != expect) {
      throw ctx.error("output shape ", shape_str(out.shape), " should be ", shape_str(expect));
    }
    dims_.assign(in.shape.begin(), in.shape.end());
    reduced_ = reduced;
    out_stride_.assign(rank, 0);
    index_.assign(rank, 0);
    int64_t stride = 1;
    for (int i = rank; i-- > 0;) {
      if (!reduced[i]) {
        out_stride_[i] = stride;
        stride *= dims_[i];
      }
    }
    in_zp_ = qi.zero_point;
    out_zp_ = qo.zero_point;
    in_count_ = in.num_elements();
    out_count_ = out.num_elements();
    global_pool_ = keep_dims_ && rank == 4 && reduced[1] && reduced[2] && !reduced[0] &&
                   !reduced[3];
    if (count_ == 0) throw ctx.unsupported("MEAN over an empty axis");
    if (global_pool_) {
      const float num = static_cast<float>(in.shape[1] * in.shape[2]);
      float temp = static_cast<float>(qi.zero_point) * qi.scale / qo.scale;
      temp = temp > 0 ? temp + 0.5f : temp - 0.5f;
      temp = std::min(std::max(temp, -1e9f), 1e9f);
      bias_ = qo.zero_point - static_cast<int32_t>(temp);
      const float real_scale = qi.scale / (num * qo.scale);
      m_ = quantize_multiplier(ctx, static_cast<double>(real_scale));
      vector_channel_ = litert_mean_vector_channels(in.shape[3], ctx.threads);
    } else {
      const QuantizedMultiplier base =
          quantize_multiplier(ctx, static_cast<double>(qi.scale) / static_cast<double>(qo.scale));
      int shift = 63 - __builtin_clzll(static_cast<unsigned long long>(count_));
      shift = std::min(shift, 32);
      shift = std::min(shift, 31 + base.shift);
      shift = std::max(shift, 0);
      m_.multiplier = static_cast<int32_t>((static_cast<int64_t>(base.multiplier) << shift) /
                                           count_);
      m_.shift = base.shift - shift;
    }
    if (m_.shift < -31) throw ctx.error("quantisation scales out of range for MEAN");
    // Reduced axes that form one run of dimensions make the input [outer][reduce][inner]: the
    // sums are column sums of `reduce` rows of `inner` bytes, the ISA's rsum kernel.
    int first = rank, last = -1;
    for (int i = 0; i < rank; ++i) {
      if (reduced[i]) first = std::min(first, i), last = std::max(last, i);
    }
    contiguous_ = last >= 0;
    outer_ = inner_ = 1;
    for (int i = 0; i < rank; ++i) {
      if (i >= first && i <= last) {
        contiguous_ = contiguous_ && reduced[i];
      } else {
        (i < first ? outer_ : inner_) *= in.shape[i];
      }
    }
    const ElementwiseKernels& k = elementwise_kernels(resolve_isa(requested_isa(ctx)));
    rsum_ = k.rsum;
    name_ = contiguous_ ? k.rsum_name : EDGE_MEMBER_KERNEL_NAME(MeanKernel, qs8_rmean__scalar);
    ctx.scratch_request = static_cast<std::size_t>(out_count_) * sizeof(int32_t);
  }

  void run(const RunContext& ctx) override {
    const int8_t* in = ctx.in<int8_t>(0);
    int8_t* out = ctx.out<int8_t>();
    auto* sums = static_cast<int32_t*>(ctx.scratch);
    if (!contiguous_) {
      qs8_rmean__scalar(in, sums);
      requantize(sums, out, 0, out_count_);
      return;
    }
    // Each thread sums and requantises its own range of inner columns (in whole 16-column, i.e.
    // 64-byte, pieces of the sums) for every outer index.
    const int64_t min_cols =
        std::max<int64_t>(16, kMinParallelBytes / std::max<int64_t>(count_, 1));
    parallel_ranges(ctx.pool(), inner_, 16, min_cols, [&](int64_t begin, int64_t end, int) {
      for (int64_t o = 0; o < outer_; ++o) {
        int32_t* s = sums + o * inner_;
        std::fill(s + begin, s + end, 0);
        rsum_(static_cast<std::size_t>(count_), static_cast<std::size_t>(end - begin),
              in + o * count_ * inner_ + begin, static_cast<std::size_t>(inner_), s + begin);
        requantize(sums, out, o * inner_ + begin, o * inner_ + end);
      }
    });
  }

  std::string kernel_name() const override { return name_; }

 public:
  // The kernel of the general case (docs/kernels.md; reduced axes apart from one another): the
  // output index of each input element, walking the input in row-major order and keeping the
  // output position of the non-reduced coordinates.
  void qs8_rmean__scalar(const int8_t* in, int32_t* sums) {
    std::fill(sums, sums + out_count_, 0);
    const int rank = static_cast<int>(dims_.size());
    std::vector<int64_t>& idx = index_;
    std::fill(idx.begin(), idx.end(), 0);
    int64_t o = 0;
    for (int64_t i = 0; i < in_count_; ++i) {
      sums[o] += in[i];
      for (int d = rank; d-- > 0;) {
        ++idx[d];
        o += out_stride_[d];
        if (idx[d] < dims_[d]) break;
        o -= out_stride_[d] * dims_[d];
        idx[d] = 0;
      }
    }
  }

 private:
  // Outputs [begin, end) from their sums.
  void requantize(const int32_t* sums, int8_t* out, int64_t begin, int64_t end) const {
    if (global_pool_) {
      // LiteRT's Mean4D int8 kernel: channels in vector blocks of 16 scaled by
      // MultiplyByQuantizedMultiplier4Rows (a rounding right shift that rounds ties up), the
      // remaining channels by the scalar MultiplyByQuantizedMultiplier (ties away from zero).
      const int64_t depth = dims_[3];
      const int left = std::max(m_.shift, 0), right = std::min(m_.shift, 0);
      for (int64_t k = begin; k < end; ++k) {
        const int32_t sum = sums[k];
        int32_t v;
        if (vector_channel_[static_cast<std::size_t>(k % depth)]) {
          v = lanes::rshl(lanes::qrdmulh(lanes::shl(sum, left), m_.multiplier), right);
        } else {
          v = multiply_by_quantized_multiplier(sum, m_.multiplier, m_.shift, kScalarRounding);
        }
        out[k] = clamp8(v + bias_, -128, 127);
      }
      return;
    }
    for (int64_t k = begin; k < end; ++k) {
      const int32_t shifted = static_cast<int32_t>(sums[k] - static_cast<int64_t>(in_zp_) * count_);
      const int32_t v =
          multiply_by_quantized_multiplier(shifted, m_.multiplier, m_.shift, kScalarRounding);
      out[k] = clamp8_add(v, out_zp_);
    }
  }

  bool keep_dims_ = false, global_pool_ = false, contiguous_ = false;
  std::vector<int64_t> dims_;
  std::vector<char> reduced_;
  std::vector<char> vector_channel_;  // global pool: channels LiteRT's vector loop scales
  std::vector<int64_t> out_stride_, index_;  // per-dimension walk state, sized at prepare
  int64_t count_ = 1, in_count_ = 0, out_count_ = 0, outer_ = 1, inner_ = 1;
  int32_t in_zp_ = 0, out_zp_ = 0, bias_ = 0;
  QuantizedMultiplier m_;
  QS8RSumFn rsum_ = nullptr;
  std::string name_;
};

}  // namespace

void add_pool_kernel_names(std::vector<std::string>& out) {
  out.insert(out.end(), {EDGE_MEMBER_KERNEL_NAME(PoolKernel, qs8_avgpool__scalar),
                         EDGE_MEMBER_KERNEL_NAME(MeanKernel, qs8_rmean__scalar)});
}

std::unique_ptr<OpKernel> make_max_pool() { return std::make_unique<PoolKernel>(true); }
std::unique_ptr<OpKernel> make_average_pool() { return std::make_unique<PoolKernel>(false); }
std::unique_ptr<OpKernel> make_mean() { return std::make_unique<MeanKernel>(); }

}  // namespace runtime
}  // namespace edge
