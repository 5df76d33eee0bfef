// The layer builder shared by the .edge runtime and the TFLite delegate (layer_builder.h).
#include "edge/kernels/layer_builder.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "edge/packing/int2.h"
#include "edge/packing/int4.h"
#include "edge/packing/ternary.h"

namespace edge {
namespace {

int storage_bits(WeightStorage s) {
  switch (s) {
    case WeightStorage::kInt8: return 8;
    case WeightStorage::kInt4:
    case WeightStorage::kUInt4: return 4;
    case WeightStorage::kInt2: return 2;
    case WeightStorage::kBase3: return 0;
  }
  return 8;
}

std::size_t storage_bytes(WeightStorage s, int64_t count) {
  const auto n = static_cast<std::size_t>(count);
  if (s == WeightStorage::kBase3) return base3_bytes(n);
  const std::size_t per_byte = static_cast<std::size_t>(8 / storage_bits(s));
  return (n + per_byte - 1) / per_byte;
}

}  // namespace

std::vector<int8_t> decode_weights(const StoredWeights& w) {
  if (w.count < 0 || w.bytes < storage_bytes(w.storage, w.count)) {
    throw std::invalid_argument("weights: " + std::to_string(w.bytes) + " bytes cannot hold " +
                                std::to_string(w.count) + " values");
  }
  std::vector<int8_t> v(static_cast<std::size_t>(w.count));
  if (w.storage == WeightStorage::kInt8) {
    if (!v.empty()) std::memcpy(v.data(), w.data, v.size());
  } else if (w.storage == WeightStorage::kBase3) {
    decode_base3(w.data, v.size(), v.data());
  } else {
    const int bits = storage_bits(w.storage);
    const int per_byte = 8 / bits;
    const int mask = (1 << bits) - 1;
    const bool is_signed = w.storage != WeightStorage::kUInt4;
    for (int64_t i = 0; i < w.count; ++i) {
      const int code = (w.data[i / per_byte] >> ((i % per_byte) * bits)) & mask;
      v[static_cast<std::size_t>(i)] = static_cast<int8_t>(
          is_signed && code >= (1 << (bits - 1)) ? code - (1 << bits) : code);
    }
  }
  return v;
}

PackedWeights pack_layer_weights(const StoredWeights& w, WeightType type, int32_t n, int32_t k,
                                 const WeightQuantization& q) {
  const WeightStorage s = w.storage;
  PackedWeights packed;
  if (type == WeightType::kInt8 && s == WeightStorage::kInt8) {
    if (w.bytes < storage_bytes(s, int64_t{n} * k)) {
      throw std::invalid_argument("int8 weights: " + std::to_string(w.bytes) +
                                  " bytes for " + std::to_string(n) + " x " + std::to_string(k));
    }
    packed = pack_weights(type, reinterpret_cast<const int8_t*>(w.data), n, k, q.scales,
                          q.num_scales, q.zero_points);
  } else if (type == WeightType::kInt4 && s == WeightStorage::kInt4) {
    packed = pack_int4_tflite(w.data, w.bytes, n, k, q.scales, q.num_scales, q.zero_points);
  } else if (type == WeightType::kInt2 && s == WeightStorage::kInt2) {
    packed = pack_int2_tflite(w.data, w.bytes, n, k, q.scales, q.num_scales, q.zero_points,
                              /*as_ternary=*/false);
  } else if (type == WeightType::kTernary && q.zero_points == nullptr &&
             (s == WeightStorage::kInt2 || s == WeightStorage::kBase3)) {
    packed = s == WeightStorage::kBase3
                 ? pack_ternary_base3(w.data, w.bytes, n, k, q.scales, q.num_scales)
                 : pack_int2_tflite(w.data, w.bytes, n, k, q.scales, q.num_scales, nullptr,
                                    /*as_ternary=*/true);
  } else {
    throw std::invalid_argument(std::string("cannot pack ") + weight_type_name(type) +
                                " weights from this storage" +
                                (q.zero_points != nullptr ? " with zero points" : ""));
  }
  if (q.group_size > 0) packed.set_group_scales(q.group_size, q.group_scales);
  return packed;
}

std::vector<int32_t> fc_output_shape(const std::vector<int32_t>& input_shape, int32_t k,
                                     int32_t n, bool keep_num_dims) {
  if (keep_num_dims && !input_shape.empty()) {
    std::vector<int32_t> shape = input_shape;
    shape.back() = n;
    return shape;
  }
  int64_t elements = 1;
  for (int32_t d : input_shape) elements *= d;
  return {static_cast<int32_t>(k > 0 ? elements / k : 0), n};
}

ConvGeometry conv_geometry(const std::vector<int32_t>& nhwc, int32_t kh, int32_t kw,
                           const ConvParams& p) {
  if (nhwc.size() != 4) throw std::invalid_argument("conv input must be 4-D NHWC");
  ConvGeometry g;
  g.batch = nhwc[0];
  g.input_height = nhwc[1];
  g.input_width = nhwc[2];
  g.input_channels = nhwc[3];
  g.kernel_height = kh;
  g.kernel_width = kw;
  g.stride_height = p.stride_h;
  g.stride_width = p.stride_w;
  g.dilation_height = p.dilation_h;
  g.dilation_width = p.dilation_w;
  g.padding = p.padding;
  if (p.padding == Padding::kExplicit) {
    g.pad_top = p.pad_top;
    g.pad_bottom = p.pad_bottom;
    g.pad_left = p.pad_left;
    g.pad_right = p.pad_right;
  }
  return g;
}

std::vector<int32_t> conv_output_shape(const ConvGeometry& g, int32_t output_channels) {
  if (g.padding != Padding::kExplicit) {
    const AxisGeometry h = conv_axis_geometry(g.input_height, g.kernel_height, g.stride_height,
                                              g.dilation_height, g.padding);
    const AxisGeometry w = conv_axis_geometry(g.input_width, g.kernel_width, g.stride_width,
                                              g.dilation_width, g.padding);
    return {g.batch, h.output, w.output, output_channels};
  }
  // Explicit padding (the .edge format's) in 64 bits: pads and sizes come from the file.
  const int64_t eh = int64_t{g.kernel_height - 1} * g.dilation_height + 1;
  const int64_t ew = int64_t{g.kernel_width - 1} * g.dilation_width + 1;
  const int64_t sh = int64_t{g.input_height} + g.pad_top + g.pad_bottom - eh;
  const int64_t sw = int64_t{g.input_width} + g.pad_left + g.pad_right - ew;
  if (sh < 0 || sw < 0) {
    throw std::invalid_argument("the filter (" + std::to_string(eh) + "x" + std::to_string(ew) +
                                " with dilation) is larger than the padded input");
  }
  if (g.stride_height < 1 || g.stride_width < 1) {
    throw std::invalid_argument("conv geometry: stride must be positive");
  }
  return {g.batch, static_cast<int32_t>(sh / g.stride_height + 1),
          static_cast<int32_t>(sw / g.stride_width + 1), output_channels};
}

LayerOptions int8_layer_options(TensorQuant input, TensorQuant output, Activation activation,
                                const int32_t* bias, Rounding rounding, std::optional<Isa> isa) {
  LayerOptions o;
  o.input = input;
  o.output = output;
  o.activation = activation;
  o.bias = bias;
  o.output_type = OutputType::kInt8;
  o.rounding = rounding;
  o.isa = isa;
  return o;
}

}  // namespace edge
