#include "kernel_reference.h"

#include <algorithm>

namespace edge_test {

std::vector<int8_t> fill_values(Rng& rng, std::size_t count, int32_t lo, int32_t hi, Fill fill) {
  std::vector<int8_t> v(count);
  for (std::size_t i = 0; i < count; ++i) {
    switch (fill) {
      case Fill::kRandom: v[i] = static_cast<int8_t>(rng.uniform(lo, hi)); break;
      case Fill::kMin: v[i] = static_cast<int8_t>(lo); break;
      case Fill::kMax: v[i] = static_cast<int8_t>(hi); break;
      case Fill::kZero: v[i] = 0; break;
      case Fill::kAlternate: v[i] = static_cast<int8_t>(i % 2 ? lo : hi); break;
    }
  }
  return v;
}

std::vector<edge::Isa> test_isas() { return edge::available_isas(); }

std::string isa_list(const std::vector<edge::Isa>& isas) {
  std::string out;
  for (edge::Isa isa : isas) out += std::string(out.empty() ? "" : ",") + edge::isa_name(isa);
  return out;
}

FcProblem random_fc(Rng& rng, edge::WeightType type, int32_t m, int32_t n, int32_t k, Fill x_fill,
                    Fill w_fill) {
  FcProblem p;
  p.type = type;
  p.m = m;
  p.n = n;
  p.k = k;
  const int lo = edge::min_value(type), hi = edge::max_value(type);
  p.x = fill_values(rng, static_cast<std::size_t>(m) * k, -128, 127, x_fill);
  p.w = fill_values(rng, static_cast<std::size_t>(n) * k, lo, hi, w_fill);
  p.wzp.assign(static_cast<std::size_t>(n), 0);
  if (type == edge::WeightType::kInt4 || type == edge::WeightType::kInt2 ||
      (type == edge::WeightType::kInt8 && rng.uniform(0, 3) == 0)) {
    for (auto& z : p.wzp) z = rng.uniform(lo, hi);
  }
  p.scales.resize(rng.uniform(0, 3) == 0 ? 1 : static_cast<std::size_t>(n));
  for (auto& s : p.scales) s = rng.uniform_float(0.0005f, 0.02f);
  p.bias.resize(static_cast<std::size_t>(n));
  for (auto& b : p.bias) b = rng.uniform(-20000, 20000);
  p.options.input = {rng.uniform_float(0.01f, 0.1f), rng.uniform(-128, 127)};
  p.options.output = {rng.uniform_float(0.05f, 2.0f), rng.uniform(-128, 127)};
  const edge::Activation acts[] = {edge::Activation::kNone, edge::Activation::kRelu,
                                   edge::Activation::kRelu6, edge::Activation::kReluN1To1};
  p.options.activation = acts[rng.uniform(0, 3)];
  p.options.rounding = static_cast<edge::Rounding>(rng.uniform(0, 2));
  p.options.bias = nullptr;  // set by the caller to p.bias.data() after copies settle
  return p;
}

std::vector<int32_t> reference_fc_acc(const FcProblem& p) {
  std::vector<int32_t> acc(static_cast<std::size_t>(p.m) * p.n);
  const int32_t xz = p.options.input.zero_point;
  for (int32_t r = 0; r < p.m; ++r) {
    for (int32_t c = 0; c < p.n; ++c) {
      int64_t sum = p.bias.empty() ? 0 : p.bias[c];
      for (int32_t kk = 0; kk < p.k; ++kk) {
        sum += static_cast<int64_t>(p.x[static_cast<std::size_t>(r) * p.k + kk] - xz) *
               (p.w[static_cast<std::size_t>(c) * p.k + kk] - p.wzp[c]);
      }
      acc[static_cast<std::size_t>(r) * p.n + c] =
          static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(sum)));
    }
  }
  return acc;
}

std::vector<int8_t> reference_requant(const std::vector<int32_t>& acc, int32_t n,
                                      const std::vector<float>& scales,
                                      const edge::LayerOptions& options, bool per_tensor_fc_rule) {
  std::vector<int8_t> out(acc.size());
  const edge::ClampRange range =
      options.clamp ? *options.clamp : edge::activation_range(options.activation, options.output);
  for (std::size_t i = 0; i < acc.size(); ++i) {
    const int32_t c = static_cast<int32_t>(i % static_cast<std::size_t>(n));
    const float ws = scales.size() == 1 ? scales[0] : scales[c];
    const double real =
        scales.size() == 1 && per_tensor_fc_rule
            ? edge::fc_per_tensor_effective_scale(options.input.scale, ws, options.output.scale)
            : edge::conv_effective_scale(options.input.scale, ws, options.output.scale);
    const edge::QuantizedMultiplier qm = edge::quantize_multiplier(real);
    out[i] = edge::requantize_one(acc[i], qm.multiplier, qm.shift, options.output.zero_point,
                                  range.min, range.max, options.rounding);
  }
  return out;
}

namespace {

struct Axis {
  int32_t out, pad;
};

Axis axis(int32_t in, int32_t kernel, int32_t stride, int32_t dilation, edge::Padding padding,
          int32_t before, int32_t after) {
  const edge::AxisGeometry g =
      edge::conv_axis_geometry(in, kernel, stride, dilation, padding, before, after);
  return {g.output, g.pad_before};
}

}  // namespace

std::vector<int32_t> reference_conv_acc(const edge::ConvGeometry& g, int32_t out_channels,
                                        const std::vector<int8_t>& input,
                                        const std::vector<int8_t>& filter,
                                        const std::vector<int32_t>& wzp, int32_t input_zp,
                                        const std::vector<int32_t>& bias) {
  const Axis h = axis(g.input_height, g.kernel_height, g.stride_height, g.dilation_height,
                      g.padding, g.pad_top, g.pad_bottom);
  const Axis w = axis(g.input_width, g.kernel_width, g.stride_width, g.dilation_width, g.padding,
                      g.pad_left, g.pad_right);
  std::vector<int32_t> out(static_cast<std::size_t>(g.batch) * h.out * w.out * out_channels);
  std::size_t o = 0;
  for (int32_t b = 0; b < g.batch; ++b) {
    for (int32_t oy = 0; oy < h.out; ++oy) {
      for (int32_t ox = 0; ox < w.out; ++ox) {
        for (int32_t oc = 0; oc < out_channels; ++oc) {
          int64_t sum = bias.empty() ? 0 : bias[oc];
          for (int32_t kh = 0; kh < g.kernel_height; ++kh) {
            const int32_t iy = oy * g.stride_height - h.pad + kh * g.dilation_height;
            if (iy < 0 || iy >= g.input_height) continue;
            for (int32_t kw = 0; kw < g.kernel_width; ++kw) {
              const int32_t ix = ox * g.stride_width - w.pad + kw * g.dilation_width;
              if (ix < 0 || ix >= g.input_width) continue;
              for (int32_t ic = 0; ic < g.input_channels; ++ic) {
                const int32_t xv =
                    input[((static_cast<std::size_t>(b) * g.input_height + iy) * g.input_width +
                           ix) * g.input_channels + ic];
                const int32_t wv =
                    filter[((static_cast<std::size_t>(oc) * g.kernel_height + kh) *
                                g.kernel_width + kw) * g.input_channels + ic];
                sum += static_cast<int64_t>(xv - input_zp) * (wv - wzp[oc]);
              }
            }
          }
          out[o++] = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(sum)));
        }
      }
    }
  }
  return out;
}

std::vector<int32_t> reference_depthwise_acc(const edge::ConvGeometry& g, int32_t multiplier,
                                             const std::vector<int8_t>& input,
                                             const std::vector<int8_t>& filter,
                                             const std::vector<int32_t>& wzp, int32_t input_zp,
                                             const std::vector<int32_t>& bias) {
  const Axis h = axis(g.input_height, g.kernel_height, g.stride_height, g.dilation_height,
                      g.padding, g.pad_top, g.pad_bottom);
  const Axis w = axis(g.input_width, g.kernel_width, g.stride_width, g.dilation_width, g.padding,
                      g.pad_left, g.pad_right);
  const int32_t cout = g.input_channels * multiplier;
  std::vector<int32_t> out(static_cast<std::size_t>(g.batch) * h.out * w.out * cout);
  std::size_t o = 0;
  for (int32_t b = 0; b < g.batch; ++b) {
    for (int32_t oy = 0; oy < h.out; ++oy) {
      for (int32_t ox = 0; ox < w.out; ++ox) {
        for (int32_t oc = 0; oc < cout; ++oc) {
          const int32_t ic = oc / multiplier;
          int64_t sum = bias.empty() ? 0 : bias[oc];
          for (int32_t kh = 0; kh < g.kernel_height; ++kh) {
            const int32_t iy = oy * g.stride_height - h.pad + kh * g.dilation_height;
            if (iy < 0 || iy >= g.input_height) continue;
            for (int32_t kw = 0; kw < g.kernel_width; ++kw) {
              const int32_t ix = ox * g.stride_width - w.pad + kw * g.dilation_width;
              if (ix < 0 || ix >= g.input_width) continue;
              const int32_t xv =
                  input[((static_cast<std::size_t>(b) * g.input_height + iy) * g.input_width +
                         ix) * g.input_channels + ic];
              const int32_t wv =
                  filter[(static_cast<std::size_t>(kh) * g.kernel_width + kw) * cout + oc];
              sum += static_cast<int64_t>(xv - input_zp) * (wv - wzp[oc]);
            }
          }
          out[o++] = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(sum)));
        }
      }
    }
  }
  return out;
}

}  // namespace edge_test
