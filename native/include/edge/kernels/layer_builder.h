// One layer builder for FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D, shared by the .edge
// runtime (src/runtime/ops_conv.cc) and the TFLite delegate (src/delegate/node_kernels.cc). Each
// front end reads its own file's tensors and options into these terms (and checks what only its
// format can get wrong); the weight decoding and packing, the conv geometry, the output shapes
// and the layer options are computed here, once for both.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "edge/kernels/conv2d.h"
#include "edge/kernels/fully_connected.h"
#include "edge/packing/packed_weights.h"

namespace edge {

// How a layer's weights are stored. The sub-byte fields are TFLite's: element i in byte
// i / (8 / bits), from the low bits up; signed fields are two's complement. Ternary weights are
// kInt2 fields with values -1..1, or kBase3 (five trits a byte, packing/ternary.h).
enum class WeightStorage { kInt8, kInt4, kUInt4, kInt2, kBase3 };

struct StoredWeights {
  WeightStorage storage = WeightStorage::kInt8;
  const uint8_t* data = nullptr;
  std::size_t bytes = 0;  // readable bytes at data
  int64_t count = 0;      // elements
};

// The stored values (not codes) as int8, in storage order. Throws std::invalid_argument when
// `bytes` cannot hold `count` elements.
std::vector<int8_t> decode_weights(const StoredWeights& w);

// A layer's weight quantisation as the plans take it.
struct WeightQuantization {
  const float* scales = nullptr;         // one, or one per output channel
  int32_t num_scales = 1;
  const int32_t* zero_points = nullptr;  // per output channel (value domain); null: all 0
  int32_t group_size = 0;                // > 0: scales per group of K, group_scales[n][groups]
  const float* group_scales = nullptr;
};

// [n][k] weights (FULLY_CONNECTED [N, K]; CONV_2D OHWI, k = KH * KW * Cin) packed for the GEMM
// plans as `type` (kTernary from kInt2 or kBase3 storage, with no zero points). Throws
// std::invalid_argument naming what does not fit.
PackedWeights pack_layer_weights(const StoredWeights& w, WeightType type, int32_t n, int32_t k,
                                 const WeightQuantization& q);

// FULLY_CONNECTED's output shape for weights [n][k]: [m, n] with m = elements / k, or with
// keep_num_dims the input's shape with its last dimension n.
std::vector<int32_t> fc_output_shape(const std::vector<int32_t>& input_shape, int32_t k,
                                     int32_t n, bool keep_num_dims);

// A conv's parameters as both formats store them (explicit pads only with Padding::kExplicit).
struct ConvParams {
  int32_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  Padding padding = Padding::kValid;
  int32_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
};

// The geometry of a CONV_2D / DEPTHWISE_CONV_2D with a kh x kw filter over an NHWC input.
ConvGeometry conv_geometry(const std::vector<int32_t>& nhwc, int32_t kh, int32_t kw,
                           const ConvParams& p);

// [batch, output height, output width, output_channels], as TFLite computes them
// (conv_axis_geometry). Throws std::invalid_argument "the filter (EHxEW with dilation) is larger
// than the padded input" for explicit padding that leaves no output position.
std::vector<int32_t> conv_output_shape(const ConvGeometry& g, int32_t output_channels);

// The options of an int8-in, int8-out layer.
LayerOptions int8_layer_options(TensorQuant input, TensorQuant output, Activation activation,
                                const int32_t* bias, Rounding rounding, std::optional<Isa> isa);

}  // namespace edge
