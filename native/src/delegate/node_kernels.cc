// Delegate kernels: TFLite FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D nodes (and the edgesdk
// custom ops) on the native kernel plans. Nothing here computes: it reads TFLite tensors through
// our ABI declarations into the layer builder's terms (edge/kernels/layer_builder.h, shared with
// the .edge runtime: weight decoding and packing, geometry, output shapes), packs weights once
// and calls the plans (fully_connected.h, conv2d.h, depthwise_conv2d.h).
#include "node_kernels.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "custom_options.h"
#include "edge/kernels/depthwise_conv2d.h"
#include "edge/kernels/fully_connected.h"
#include "edge/kernels/layer_builder.h"
#include "edge/kernels/quantize.h"
#include "edge/packing/packed_weights.h"

namespace edge {
namespace delegate {

using namespace tflite_abi;  // NOLINT: our own ABI declarations, used throughout

const char kNotClaimable[] = "not a claimable op";

namespace {

TfLiteTensor& tensor_at(TfLiteContext* context, int index) { return context->tensors[index]; }

int64_t num_elements(const TfLiteTensor& t) {
  int64_t n = 1;
  if (t.dims == nullptr) return 0;
  for (int i = 0; i < t.dims->size; ++i) n *= t.dims->data[i];
  return n;
}

const TfLiteAffineQuantization* affine(const TfLiteTensor& t) {
  if (t.quantization.type != kTfLiteAffineQuantization || t.quantization.params == nullptr) {
    return nullptr;
  }
  return static_cast<const TfLiteAffineQuantization*>(t.quantization.params);
}

bool per_tensor_int8(const TfLiteTensor& t) {
  if (t.type != kTfLiteInt8) return false;
  const TfLiteAffineQuantization* q = affine(t);
  // The legacy `params` always carries the per-tensor values; refuse per-channel activations.
  return q == nullptr || q->scale == nullptr || q->scale->size <= 1;
}

Activation to_activation(TfLiteFusedActivation a) {
  switch (a) {
    case kTfLiteActRelu: return Activation::kRelu;
    case kTfLiteActReluN1To1: return Activation::kReluN1To1;
    case kTfLiteActRelu6: return Activation::kRelu6;
    default: return Activation::kNone;
  }
}

bool supported_activation(TfLiteFusedActivation a) {
  return a == kTfLiteActNone || a == kTfLiteActRelu || a == kTfLiteActReluN1To1 ||
         a == kTfLiteActRelu6;
}

// A TFLite weight tensor (INT8, INT4, INT2) in the layer builder's terms.
StoredWeights stored(const TfLiteTensor& t) {
  StoredWeights s;
  s.storage = t.type == kTfLiteInt4   ? WeightStorage::kInt4
              : t.type == kTfLiteInt2 ? WeightStorage::kInt2
                                      : WeightStorage::kInt8;
  s.data = static_cast<const uint8_t*>(t.data);
  s.bytes = t.bytes;
  s.count = num_elements(t);
  return s;
}

// All q values of a weight tensor as int8 (for depthwise, and to detect ternary weights).
std::vector<int8_t> weight_values(const TfLiteTensor& t) { return decode_weights(stored(t)); }

std::size_t packed_tflite_bytes(TfLiteType type, int64_t count) {
  switch (type) {
    case kTfLiteInt4: return static_cast<std::size_t>((count + 1) / 2);
    case kTfLiteInt2: return static_cast<std::size_t>((count + 3) / 4);
    default: return static_cast<std::size_t>(count);
  }
}

// Per-channel quantisation parameters of a weight tensor, expanded as the plans want them.
struct WeightQuant {
  std::vector<float> scales;       // 1 or channels
  std::vector<int32_t> zero_points;  // channels (q domain)
  bool all_zero_points_zero = true;
  // Block-wise (TFLite BlockwiseQuantization): scales are 1 and each block of group_size along
  // K has its own scale, group_scales[n][k / group_size].
  int32_t group_size = 0;
  std::vector<float> group_scales;
};

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h >> 15) << 31;
  const int exponent = (h >> 10) & 0x1F;
  const uint32_t mantissa = h & 0x3FF;
  uint32_t bits = 0;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | (static_cast<uint32_t>(exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal half: normalise
    int e = -1;
    uint32_t m = mantissa;
    do {
      ++e;
      m <<= 1;
    } while ((m & 0x400) == 0);
    bits = sign | (static_cast<uint32_t>(112 - e) << 23) | ((m & 0x3FF) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Block-wise weights of a dynamic-range FULLY_CONNECTED [n][k]: FLOAT16 (or FLOAT32) scales
// [n][ceil(k / blocksize)] in the tensor the quantisation names. Symmetric: LiteRT's
// InterpreterBuilder does not carry a block-wise zero point (ai-edge-quantizer writes none).
std::string blockwise_quant(TfLiteContext* context, const TfLiteTensor& w, int n, int k,
                            WeightType type, WeightQuant* out) {
  const auto* b = static_cast<const TfLiteBlockwiseQuantization*>(w.quantization.params);
  if (b == nullptr) return "block-wise weights without parameters";
  if (b->blocksize <= 0 || b->blocksize % block_k(type) != 0) {
    return "block size " + std::to_string(b->blocksize) + " is not a multiple of " +
           std::to_string(block_k(type));
  }
  if (b->scale < 0 || static_cast<std::size_t>(b->scale) >= context->tensors_size) {
    return "block-wise weights without a scale tensor";
  }
  const TfLiteTensor& st = context->tensors[b->scale];
  const int groups = (k + b->blocksize - 1) / b->blocksize;
  const int64_t count = static_cast<int64_t>(n) * groups;
  if (st.data == nullptr || num_elements(st) != count ||
      (st.type != kTfLiteFloat16 && st.type != kTfLiteFloat32)) {
    return "block scales are not a FLOAT16 / FLOAT32 [" + std::to_string(n) + ", " +
           std::to_string(groups) + "] constant";
  }
  out->group_scales.resize(static_cast<std::size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const float v = st.type == kTfLiteFloat16
                        ? half_to_float(static_cast<const uint16_t*>(st.data)[i])
                        : static_cast<const float*>(st.data)[i];
    if (!(v > 0.0f) || !std::isfinite(v)) return "a block scale is not a positive number";
    out->group_scales[static_cast<std::size_t>(i)] = v;
  }
  out->group_size = b->blocksize;
  out->scales.assign(static_cast<std::size_t>(n), 1.0f);
  out->zero_points.assign(static_cast<std::size_t>(n), 0);
  out->all_zero_points_zero = true;
  return "";
}

std::string weight_quant(const TfLiteTensor& w, int axis, int channels, WeightQuant* out) {
  const TfLiteAffineQuantization* q = affine(w);
  if (q == nullptr || q->scale == nullptr || q->scale->size == 0) {
    return w.quantization.type == kTfLiteBlockwiseQuantization
               ? "block-wise weights (the delegate takes per-channel or per-tensor scales)"
               : "weights are not affine-quantised";
  }
  const int ns = q->scale->size;
  if (ns != 1 && ns != channels) {
    return "weights have " + std::to_string(ns) + " scales for " + std::to_string(channels) +
           " channels";
  }
  if (ns > 1 && q->quantized_dimension != axis) {
    return "weights are quantised along axis " + std::to_string(q->quantized_dimension) +
           ", expected " + std::to_string(axis);
  }
  out->scales.assign(q->scale->data, q->scale->data + ns);
  for (float s : out->scales) {
    if (!(s > 0.0f)) return "weights have a scale <= 0";
  }
  out->zero_points.assign(static_cast<std::size_t>(channels), 0);
  if (q->zero_point != nullptr && q->zero_point->size > 0) {
    const int nz = q->zero_point->size;
    if (nz != 1 && nz != channels) return "weights have a bad number of zero points";
    for (int c = 0; c < channels; ++c) {
      out->zero_points[static_cast<std::size_t>(c)] = q->zero_point->data[nz == 1 ? 0 : c];
    }
  }
  for (int32_t z : out->zero_points) out->all_zero_points_zero &= (z == 0);
  return "";
}

std::string weight_type_of(const TfLiteTensor& w, const WeightQuant& wq, const Options& options,
                           WeightType* type) {
  switch (w.type) {
    case kTfLiteInt8:
      if (!options.int8) return "int8 weights not claimed (precisions option)";
      *type = WeightType::kInt8;
      return "";
    case kTfLiteInt4:
      if (!options.int4) return "int4 weights not claimed (precisions option)";
      *type = WeightType::kInt4;
      return "";
    case kTfLiteInt2: {
      if (!options.int2) return "int2 weights not claimed (precisions option)";
      bool ternary = wq.all_zero_points_zero;
      if (ternary) {
        const std::vector<int8_t> values = weight_values(w);
        ternary = std::find(values.begin(), values.end(), int8_t{-2}) == values.end();
      }
      *type = ternary ? WeightType::kTernary : WeightType::kInt2;
      return "";
    }
    default:
      return std::string("weights are ") + type_name(w.type);
  }
}

std::string check_bias(TfLiteContext* context, int bias, int channels, bool dynamic) {
  if (bias < 0) return "";
  const TfLiteTensor& b = tensor_at(context, bias);
  const TfLiteType want = dynamic ? kTfLiteFloat32 : kTfLiteInt32;
  if (b.type != want) return std::string("bias is ") + type_name(b.type);
  if (b.allocation_type != kTfLiteMmapRo || b.data == nullptr) return "bias is not a constant";
  if (num_elements(b) != channels) return "bias size does not match the output channels";
  return "";
}

}  // namespace

std::vector<int> tensor_dims(const TfLiteTensor& t) {
  std::vector<int> d;
  if (t.dims != nullptr) d.assign(t.dims->data, t.dims->data + t.dims->size);
  return d;
}

const char* type_name(TfLiteType type) {
  switch (type) {
    case kTfLiteNoType: return "NOTYPE";
    case kTfLiteFloat32: return "FLOAT32";
    case kTfLiteInt32: return "INT32";
    case kTfLiteUInt8: return "UINT8";
    case kTfLiteInt64: return "INT64";
    case kTfLiteString: return "STRING";
    case kTfLiteBool: return "BOOL";
    case kTfLiteInt16: return "INT16";
    case kTfLiteComplex64: return "COMPLEX64";
    case kTfLiteInt8: return "INT8";
    case kTfLiteFloat16: return "FLOAT16";
    case kTfLiteFloat64: return "FLOAT64";
    case kTfLiteComplex128: return "COMPLEX128";
    case kTfLiteUInt64: return "UINT64";
    case kTfLiteResource: return "RESOURCE";
    case kTfLiteVariant: return "VARIANT";
    case kTfLiteUInt32: return "UINT32";
    case kTfLiteUInt16: return "UINT16";
    case kTfLiteInt4: return "INT4";
    case kTfLiteBFloat16: return "BFLOAT16";
    case kTfLiteInt2: return "INT2";
    case kTfLiteUInt4: return "UINT4";
  }
  return "UNKNOWN";
}

const char* weight_type_label(WeightType type) { return weight_type_name(type); }

// The fields TfLiteConvParams and TfLiteDepthwiseConvParams share (same names in both); an
// empty string, or what is wrong with them.
template <typename Params>
std::string read_conv_params(const Params* p, const char* op, NodeInfo* n) {
  if (p == nullptr) return std::string("missing ") + op + " options";
  if (p->padding != kTfLitePaddingSame && p->padding != kTfLitePaddingValid) {
    return "unknown padding";
  }
  n->padding = p->padding == kTfLitePaddingSame ? Padding::kSame : Padding::kValid;
  n->stride_h = p->stride_height;
  n->stride_w = p->stride_width;
  n->dilation_h = p->dilation_height_factor;
  n->dilation_w = p->dilation_width_factor;
  n->activation = p->activation;
  return "";
}

// inspect_node's steps, in the order it takes them: each returns "" or why the node is not
// claimed (the first reason found is the one reported).
namespace {

// Which op this is (kind, name, ours or a builtin) and whether `options` claims that op.
std::string claim_op(const TfLiteRegistration* registration, const Options& options,
                     NodeInfo* n) {
  const int code = registration->builtin_code;
  if (code == kBuiltinFullyConnected) {
    n->kind = OpKind::kFullyConnected;
    n->op = "FULLY_CONNECTED";
    if (!options.fully_connected) return "FULLY_CONNECTED not claimed (ops option)";
  } else if (code == kBuiltinConv2D) {
    n->kind = OpKind::kConv2D;
    n->op = "CONV_2D";
    if (!options.conv_2d) return "CONV_2D not claimed (ops option)";
  } else if (code == kBuiltinDepthwiseConv2D) {
    n->kind = OpKind::kDepthwiseConv2D;
    n->op = "DEPTHWISE_CONV_2D";
    if (!options.depthwise_conv_2d) return "DEPTHWISE_CONV_2D not claimed (ops option)";
  } else if (code == kBuiltinCustom && registration->custom_name != nullptr &&
             custom_op_kind(registration->custom_name) >= 0) {
    n->custom = true;
    n->op = registration->custom_name;
    n->kind = custom_op_kind(registration->custom_name) == 0 ? OpKind::kConv2D
                                                              : OpKind::kDepthwiseConv2D;
  } else {
    return kNotClaimable;
  }
  return "";
}

// The tensor indices: input, weights, optional bias, one output.
std::string read_tensor_indices(const TfLiteNode* node, NodeInfo* n) {
  const TfLiteIntArray* ins = node->inputs;
  const TfLiteIntArray* outs = node->outputs;
  if (ins == nullptr || outs == nullptr || ins->size < 2 || outs->size != 1) {
    return "unexpected number of inputs or outputs";
  }
  n->input = ins->data[0];
  n->weights = ins->data[1];
  n->bias = ins->size > 2 ? ins->data[2] : -1;
  n->output = outs->data[0];
  if (n->input < 0 || n->weights < 0) return "missing input or weights";
  return "";
}

// Int8 activations (per tensor), or float32 ones around quantised weights (dynamic range,
// "hybrid"); each claimed only if `options` asks for it.
std::string check_activations(const TfLiteTensor& x, const TfLiteTensor& y,
                              const Options& options, NodeInfo* n) {
  n->dynamic = !n->custom && x.type == kTfLiteFloat32 && y.type == kTfLiteFloat32;
  if (n->dynamic) {
    if (!options.dynamic_nodes) return "dynamic-range node not claimed (precisions option)";
    return "";
  }
  if (!per_tensor_int8(x) || !per_tensor_int8(y)) {
    return std::string("activations are ") + type_name(x.type) + " -> " + type_name(y.type) +
           " (the delegate runs int8 activations with per-tensor quantisation, or float32 "
           "activations with quantised weights)";
  }
  if (!n->custom && !options.static_nodes) {
    return "int8-activation node not claimed (precisions option)";
  }
  return "";
}

// The weights are quantised and constant (what the delegate packs once).
std::string check_weight_tensor(const TfLiteTensor& w) {
  if (w.type == kTfLiteFloat32 || w.type == kTfLiteFloat16) {
    return std::string("weights are ") + type_name(w.type) + " (not quantised)";
  }
  if (w.allocation_type != kTfLiteMmapRo || w.data == nullptr) {
    return "weights are not a constant";
  }
  return "";
}

// FULLY_CONNECTED: its options, 2-D weights [N, K] and an input of whole rows of K.
std::string read_fc_layer(const TfLiteNode* node, const TfLiteTensor& x,
                          const std::vector<int>& wd, NodeInfo* n, int* channels) {
  const auto* p = static_cast<const TfLiteFullyConnectedParams*>(node->builtin_data);
  if (p == nullptr) return "missing FULLY_CONNECTED options";
  if (p->weights_format != 0) return "shuffled weights format";
  n->activation = p->activation;
  n->keep_num_dims = p->keep_num_dims;
  n->asymmetric_inputs = n->dynamic && p->asymmetric_quantize_inputs;
  if (wd.size() != 2) return "weights are not 2-D";
  *channels = wd[0];
  if (wd[1] <= 0 || num_elements(x) % wd[1] != 0) return "input size is not a multiple of K";
  return "";
}

// The convolution options: our custom ops' flexbuffer, or the builtin's params.
std::string read_conv_options(const TfLiteNode* node, NodeInfo* n) {
  if (n->custom) {
    ConvCustomOptions o;
    const std::string err =
        parse_custom_options(node->custom_initial_data, node->custom_initial_data_size, &o);
    if (!err.empty()) return err;
    n->padding = o.padding_valid ? Padding::kValid : Padding::kSame;
    n->stride_h = o.stride_h;
    n->stride_w = o.stride_w;
    n->dilation_h = o.dilation_h;
    n->dilation_w = o.dilation_w;
    n->activation = static_cast<TfLiteFusedActivation>(o.activation);
    n->depth_multiplier = o.depth_multiplier;
    return "";
  }
  if (n->kind == OpKind::kConv2D) {
    return read_conv_params(static_cast<const TfLiteConvParams*>(node->builtin_data), "CONV_2D",
                            n);
  }
  return read_conv_params(static_cast<const TfLiteDepthwiseConvParams*>(node->builtin_data),
                          "DEPTHWISE_CONV_2D", n);
}

// CONV_2D / DEPTHWISE_CONV_2D (builtin or ours): options, 4-D shapes, the output channels and
// the axis the weights are quantised along.
std::string read_conv_layer(const TfLiteNode* node, const std::vector<int>& xd,
                            const std::vector<int>& wd, NodeInfo* n, int* channels, int* axis) {
  if (wd.size() != 4 || xd.size() != 4) return "input or weights are not 4-D";
  const std::string err = read_conv_options(node, n);
  if (!err.empty()) return err;
  if (n->stride_h < 1 || n->stride_w < 1 || n->dilation_h < 1 || n->dilation_w < 1) {
    return "stride or dilation < 1";
  }
  if (n->kind == OpKind::kConv2D) {
    *channels = wd[0];
    if (wd[3] != xd[3]) return "grouped convolution (filter depth != input channels)";
    return "";
  }
  *channels = wd[3];
  *axis = 3;
  if (wd[0] != 1 || xd[3] <= 0 || *channels % xd[3] != 0) {
    return "filter channels are not a multiple of the input channels";
  }
  // TFLite ignores the depth_multiplier option (it may be stale); the shapes decide.
  n->depth_multiplier = *channels / xd[3];
  return "";
}

// The weights' scales and zero points: block-wise (dynamic-range FULLY_CONNECTED only) or per
// channel / per tensor along `axis`.
std::string read_weight_quant(TfLiteContext* context, const TfLiteTensor& w,
                              const std::vector<int>& wd, const NodeInfo& n, int axis,
                              int channels, const Options& options, WeightQuant* wq) {
  if (w.quantization.type != kTfLiteBlockwiseQuantization) {
    return weight_quant(w, axis, channels, wq);
  }
  if (!n.dynamic || n.kind != OpKind::kFullyConnected) {
    return "block-wise weights (the delegate takes them in dynamic-range FULLY_CONNECTED only)";
  }
  // The weight type decides the block_k the block size must be a multiple of.
  WeightType type = WeightType::kInt8;
  const std::string err = weight_type_of(w, *wq, options, &type);
  if (!err.empty()) return err;
  return blockwise_quant(context, w, wd[0], wd[1], type, wq);
}

// LiteRT's hybrid convs quantise each image asymmetrically when the filter is per-channel
// (its EvalHybridPerChannel), symmetrically with a per-tensor filter; depthwise always
// asymmetrically (it needs per-channel filters). FULLY_CONNECTED says so in its options.
void set_hybrid_input_quantisation(const WeightQuant& wq, NodeInfo* n) {
  if (n->dynamic && n->kind == OpKind::kConv2D) n->asymmetric_inputs = wq.scales.size() > 1;
  if (n->dynamic && n->kind == OpKind::kDepthwiseConv2D) n->asymmetric_inputs = true;
}

// The weight type the kernels run (ternary told from INT2 by its values) and whether it is
// claimed: our custom ops whatever `precisions` says (nothing else runs them), INT2 only.
std::string claim_weight_type(const TfLiteTensor& w, const WeightQuant& wq,
                              const Options& options, NodeInfo* n) {
  Options claim = options;
  if (n->custom) claim.int2 = true;
  const std::string err = weight_type_of(w, wq, claim, &n->weight_type);
  if (!err.empty()) return err;
  if (n->custom && w.type != kTfLiteInt2) return "custom op weights must be INT2";
  if (n->weight_type == WeightType::kInt8 && !wq.all_zero_points_zero) {
    return "int8 weights with non-zero zero points";
  }
  return "";
}

}  // namespace

std::string inspect_node(TfLiteContext* context, int node_index, const TfLiteNode* node,
                         const TfLiteRegistration* registration, const Options& options,
                         NodeInfo* info) {
  NodeInfo n;
  n.node_index = node_index;
  std::string err = claim_op(registration, options, &n);
  if (err.empty()) err = read_tensor_indices(node, &n);
  if (!err.empty()) return err;
  const TfLiteTensor& x = tensor_at(context, n.input);
  const TfLiteTensor& w = tensor_at(context, n.weights);
  const TfLiteTensor& y = tensor_at(context, n.output);
  err = check_activations(x, y, options, &n);
  if (err.empty()) err = check_weight_tensor(w);
  if (!err.empty()) return err;
  const std::vector<int> wd = tensor_dims(w);
  int channels = 0, axis = 0;
  err = n.kind == OpKind::kFullyConnected
            ? read_fc_layer(node, x, wd, &n, &channels)
            : read_conv_layer(node, tensor_dims(x), wd, &n, &channels, &axis);
  if (!err.empty()) return err;
  if (!supported_activation(n.activation)) return "unsupported fused activation";
  // Before anything reads the weights (weight_type_of looks at INT2 values).
  if (w.bytes < packed_tflite_bytes(w.type, num_elements(w))) return "weight buffer too small";
  WeightQuant wq;
  err = read_weight_quant(context, w, wd, n, axis, channels, options, &wq);
  if (!err.empty()) return err;
  set_hybrid_input_quantisation(wq, &n);
  err = claim_weight_type(w, wq, options, &n);
  if (err.empty()) err = check_bias(context, n.bias, channels, n.dynamic);
  if (!err.empty()) return err;
  *info = n;
  return "";
}

namespace {

WeightQuant quant_of(TfLiteContext* context, const NodeInfo& info, int* channels) {
  const TfLiteTensor& w = tensor_at(context, info.weights);
  const std::vector<int> wd = tensor_dims(w);
  const int axis = info.kind == OpKind::kDepthwiseConv2D ? 3 : 0;
  *channels = wd[static_cast<std::size_t>(axis)];
  WeightQuant wq;
  const std::string err =
      w.quantization.type == kTfLiteBlockwiseQuantization
          ? blockwise_quant(context, w, wd[0], wd[1], info.weight_type, &wq)
          : weight_quant(w, axis, *channels, &wq);
  if (!err.empty()) throw std::invalid_argument(err);
  return wq;
}

// Packs a [n][k] TFLite weight tensor (FC [N, K]; conv OHWI with K = KH*KW*I) for the GEMM.
PackedWeights pack_gemm_weights(const TfLiteTensor& w, WeightType type, int32_t n, int32_t k,
                                const WeightQuant& wq) {
  WeightQuantization q;
  q.scales = wq.scales.data();
  q.num_scales = static_cast<int32_t>(wq.scales.size());
  q.zero_points = wq.all_zero_points_zero ? nullptr : wq.zero_points.data();
  q.group_size = wq.group_size;
  q.group_scales = wq.group_size > 0 ? wq.group_scales.data() : nullptr;
  return pack_layer_weights(stored(w), type, n, k, q);
}

LayerOptions layer_options(TfLiteContext* context, const NodeInfo& info, const Options& options) {
  const TfLiteTensor& x = tensor_at(context, info.input);
  const TfLiteTensor& y = tensor_at(context, info.output);
  return int8_layer_options(
      {x.params.scale, x.params.zero_point}, {y.params.scale, y.params.zero_point},
      to_activation(info.activation),
      info.bias >= 0 ? static_cast<const int32_t*>(tensor_at(context, info.bias).data) : nullptr,
      options.rounding, options.isa);
}

TfLiteStatus resize_output(TfLiteContext* context, int index, const std::vector<int>& shape) {
  TfLiteTensor& t = tensor_at(context, index);
  if (tensor_dims(t) == shape) return kTfLiteOk;
  // ResizeTensor takes ownership of the array and frees it with free() (TfLiteIntArrayFree):
  // allocate it with malloc, laid out as {size, data[size]}. (ResizeTensorExplicit would copy,
  // but LiteRT leaves that pointer null in its kernel context.)
  auto* dims = static_cast<TfLiteIntArray*>(
      std::malloc(sizeof(int) * (shape.size() + 1)));
  if (dims == nullptr) return kTfLiteError;
  dims->size = static_cast<int>(shape.size());
  std::memcpy(dims->data, shape.data(), sizeof(int) * shape.size());
  return context->ResizeTensor(context, &t, dims);
}

// FULLY_CONNECTED's output for the current input: m = elements / k rows of n, shaped [m, n] or,
// with keep_num_dims, as the input with its last dimension n. A model whose output keeps an
// extra leading 1 (e.g. [1, 1, N]) keeps its own shape.
TfLiteStatus resize_fc_output(TfLiteContext* context, const NodeInfo& info, int32_t k, int32_t n,
                              int32_t* m) {
  const TfLiteTensor& x = tensor_at(context, info.input);
  *m = static_cast<int32_t>(num_elements(x) / k);
  const std::vector<int> shape = fc_output_shape(tensor_dims(x), k, n, info.keep_num_dims);
  const TfLiteTensor& y = tensor_at(context, info.output);
  if (num_elements(y) != static_cast<int64_t>(*m) * n) {
    return resize_output(context, info.output, shape);
  }
  return kTfLiteOk;
}

// ---------------------------------------------------------------- FULLY_CONNECTED
class FullyConnectedKernel final : public NodeKernel {
 public:
  FullyConnectedKernel(TfLiteContext* context, const NodeInfo& info, const Options& options,
                       ThreadPool* pool)
      : NodeKernel(info, pool) {
    const TfLiteTensor& w = tensor_at(context, info.weights);
    const std::vector<int> wd = tensor_dims(w);
    n_ = wd[0];
    k_ = wd[1];
    int channels = 0;
    const WeightQuant wq = quant_of(context, info, &channels);
    plan_ = std::make_unique<FullyConnected>(pack_gemm_weights(w, info.weight_type, n_, k_, wq),
                                             layer_options(context, info, options));
  }

  TfLiteStatus prepare(TfLiteContext* context) override {
    if (resize_fc_output(context, info_, k_, n_, &m_) != kTfLiteOk) return kTfLiteError;
    plan_->reserve(m_, pool_ != nullptr ? pool_->num_threads() : 1);
    return kTfLiteOk;
  }

  TfLiteStatus invoke(TfLiteContext* context) override {
    const TfLiteTensor& x = tensor_at(context, info_.input);
    TfLiteTensor& y = tensor_at(context, info_.output);
    plan_->run(static_cast<const int8_t*>(x.data), m_, static_cast<int8_t*>(y.data), pool_);
    return kTfLiteOk;
  }

  std::string kernel_name() const override { return plan_->kernel_name(m_ > 0 ? m_ : 1); }

 private:
  int32_t n_ = 0, k_ = 0, m_ = 1;
  std::unique_ptr<FullyConnected> plan_;
};

ConvGeometry geometry_of(const NodeInfo& info, const std::vector<int>& xd, int kh, int kw) {
  ConvParams p;
  p.stride_h = info.stride_h;
  p.stride_w = info.stride_w;
  p.dilation_h = info.dilation_h;
  p.dilation_w = info.dilation_w;
  p.padding = info.padding;
  return conv_geometry(xd, kh, kw, p);
}

// ---------------------------------------------------------------- CONV_2D, DEPTHWISE_CONV_2D
// A plan for the current input shape, rebuilt when LiteRT resizes the input; the output is
// resized to what the plan computes.
template <typename Plan>
class SpatialKernel : public NodeKernel {
 public:
  TfLiteStatus prepare(TfLiteContext* context) override {
    const std::vector<int> xd = tensor_dims(tensor_at(context, info_.input));
    if (xd != input_dims_) build(xd);
    if (resize_output(context, info_.output,
                      {xd[0], plan_->output_height(), plan_->output_width(),
                       plan_->output_channels()}) != kTfLiteOk) {
      return kTfLiteError;
    }
    return kTfLiteOk;
  }

  TfLiteStatus invoke(TfLiteContext* context) override {
    const TfLiteTensor& x = tensor_at(context, info_.input);
    TfLiteTensor& y = tensor_at(context, info_.output);
    plan_->run(static_cast<const int8_t*>(x.data), static_cast<int8_t*>(y.data), pool_);
    return kTfLiteOk;
  }

  std::string kernel_name() const override { return plan_->kernel_name(); }

 protected:
  SpatialKernel(TfLiteContext* context, const NodeInfo& info, const Options& options,
                ThreadPool* pool)
      : NodeKernel(info, pool), options_(layer_options(context, info, options)) {
    const std::vector<int> wd = tensor_dims(tensor_at(context, info.weights));
    kh_ = wd[1];
    kw_ = wd[2];
  }

  // The bias is copied by the plan, but plans are rebuilt when the input shape changes.
  void keep_bias(int channels) {
    if (options_.bias != nullptr) {
      bias_.assign(options_.bias, options_.bias + channels);
      options_.bias = bias_.data();
    }
  }

  // Called by the derived constructor (once its weights are ready) and on input resizes.
  void build(const std::vector<int>& xd) {
    plan_ = make_plan(geometry_of(info_, xd, kh_, kw_));
    plan_->reserve(pool_ != nullptr ? pool_->num_threads() : 1);
    input_dims_ = xd;
  }

  virtual std::unique_ptr<Plan> make_plan(const ConvGeometry& geometry) const = 0;

  LayerOptions options_;

 private:
  std::vector<int32_t> bias_;
  int kh_ = 1, kw_ = 1;
  std::vector<int> input_dims_;
  std::unique_ptr<Plan> plan_;
};

// CONV_2D and EDGE_CONV_INT2: weights packed once for the GEMM.
class Conv2DKernel final : public SpatialKernel<Conv2D> {
 public:
  Conv2DKernel(TfLiteContext* context, const NodeInfo& info, const Options& options,
               ThreadPool* pool)
      : SpatialKernel(context, info, options, pool) {
    const TfLiteTensor& w = tensor_at(context, info.weights);
    const std::vector<int> wd = tensor_dims(w);
    int channels = 0;
    const WeightQuant wq = quant_of(context, info, &channels);
    weights_ = pack_gemm_weights(w, info.weight_type, wd[0], wd[1] * wd[2] * wd[3], wq);
    keep_bias(wd[0]);
    build(tensor_dims(tensor_at(context, info.input)));
  }

 private:
  std::unique_ptr<Conv2D> make_plan(const ConvGeometry& geometry) const override {
    Conv2DOptions co;
    static_cast<LayerOptions&>(co) = options_;
    co.geometry = geometry;
    return std::make_unique<Conv2D>(weights_.view(), co);
  }

  PackedWeights weights_;
};

// DEPTHWISE_CONV_2D and EDGE_DWCONV_INT2: the depthwise kernels take int8 filters, so sub-byte
// weights are widened once, here.
class DepthwiseKernel final : public SpatialKernel<DepthwiseConv2D> {
 public:
  DepthwiseKernel(TfLiteContext* context, const NodeInfo& info, const Options& options,
                  ThreadPool* pool)
      : SpatialKernel(context, info, options, pool) {
    filter_ = weight_values(tensor_at(context, info.weights));
    int channels = 0;
    wq_ = quant_of(context, info, &channels);
    keep_bias(channels);
    build(tensor_dims(tensor_at(context, info.input)));
  }

 private:
  std::unique_ptr<DepthwiseConv2D> make_plan(const ConvGeometry& geometry) const override {
    DepthwiseConv2DOptions o;
    static_cast<LayerOptions&>(o) = options_;
    o.geometry = geometry;
    o.depth_multiplier = info_.depth_multiplier;
    // LiteRT's optimised depthwise kernel requantises the C % 8 leftover channels with gemmlowp's
    // scalar code (ties away from zero): reproduce it (depthwise_conv2d.h).
    if (options_.rounding == Rounding::kUpward) o.tail_rounding = Rounding::kAwayFromZero;
    return std::make_unique<DepthwiseConv2D>(
        filter_.data(), wq_.scales.data(), static_cast<int32_t>(wq_.scales.size()),
        wq_.all_zero_points_zero ? nullptr : wq_.zero_points.data(), o);
  }

  std::vector<int8_t> filter_;
  WeightQuant wq_;
};


// ---------------------------------------------------------------- dynamic range ("hybrid")
// Float input quantised to int8 at run time (edge/kernels/quantize.h), the plans' int32 sums,
// dequantised in float. The plans get input scale 1, no bias and no activation: the float
// epilogue below applies the real scales, the float bias and the activation.

// The fused activation as a clamp [lo, hi] in real units (TFLite's float kernels clamp the same
// way: min(max(v, lo), hi)); hoisted out of the loops, branch-free in them.
struct FloatClamp {
  float lo = -std::numeric_limits<float>::infinity();
  float hi = std::numeric_limits<float>::infinity();
  float operator()(float v) const { return std::min(std::max(v, lo), hi); }
};

FloatClamp float_clamp_of(TfLiteFusedActivation a) {
  FloatClamp c;
  if (a == kTfLiteActRelu || a == kTfLiteActRelu6) c.lo = 0.0f;
  if (a == kTfLiteActRelu6) c.hi = 6.0f;
  if (a == kTfLiteActReluN1To1) {
    c.lo = -1.0f;
    c.hi = 1.0f;
  }
  return c;
}

LayerOptions int32_options(const Options& options, int32_t input_zero_point) {
  LayerOptions o;
  o.input = {1.0f, input_zero_point};
  o.output = {1.0f, 0};
  o.activation = Activation::kNone;
  o.bias = nullptr;
  o.output_type = OutputType::kInt32;
  o.isa = options.isa;
  return o;
}

// The per-channel weight scales expanded to `channels`, and the float bias (or zeros).
struct DynamicParams {
  std::vector<float> weight_scale;
  std::vector<float> bias;
  InputQuantization mode = InputQuantization::kSymmetric;
};

DynamicParams dynamic_params(TfLiteContext* context, const NodeInfo& info, int channels,
                             const WeightQuant& wq) {
  DynamicParams d;
  d.weight_scale.resize(static_cast<std::size_t>(channels));
  for (int c = 0; c < channels; ++c) {
    d.weight_scale[static_cast<std::size_t>(c)] = wq.scales[wq.scales.size() == 1 ? 0 : c];
  }
  d.bias.assign(static_cast<std::size_t>(channels), 0.0f);
  if (info.bias >= 0) {
    const auto* b = static_cast<const float*>(tensor_at(context, info.bias).data);
    d.bias.assign(b, b + channels);
  }
  d.mode = info.asymmetric_inputs ? InputQuantization::kAsymmetric : InputQuantization::kSymmetric;
  return d;
}

// FULLY_CONNECTED: one scale (and zero point) per batch row, as LiteRT's hybrid FC. The plan
// runs with input zero point 0; the row's zero point is taken out exactly in int32 with the
// weights' code sums: acc - zp[r] * sum_k w[n][k]. Then, in LiteRT's order,
// y = act(bias[n] + float(acc) * (input_scale[r] * weight_scale[n])).
class DynamicFullyConnectedKernel final : public NodeKernel {
 public:
  DynamicFullyConnectedKernel(TfLiteContext* context, const NodeInfo& info,
                              const Options& options, ThreadPool* pool)
      : NodeKernel(info, pool), isa_(resolve_isa(options.isa)) {
    const TfLiteTensor& w = tensor_at(context, info.weights);
    const std::vector<int> wd = tensor_dims(w);
    n_ = wd[0];
    k_ = wd[1];
    int channels = 0;
    const WeightQuant wq = quant_of(context, info, &channels);
    params_ = dynamic_params(context, info, channels, wq);
    const std::vector<int8_t> values = weight_values(w);
    const auto value = [&](int32_t c, int32_t i) {
      return int32_t{values[static_cast<std::size_t>(c) * static_cast<std::size_t>(k_) +
                            static_cast<std::size_t>(i)]};
    };
    row_sums_.assign(static_cast<std::size_t>(n_), 0);
    for (int32_t c = 0; c < n_; ++c) {
      int32_t sum = 0;
      for (int32_t i = 0; i < k_; ++i) {
        sum += value(c, i) - wq.zero_points[static_cast<std::size_t>(c)];
      }
      row_sums_[static_cast<std::size_t>(c)] = sum;
    }
    LayerOptions o = int32_options(options, 0);
    grouped_ = wq.group_size > 0;
    if (grouped_) {
      // Block-wise weights have no single int32 sum: the plan writes sum_g scale_g * acc_g in
      // float, and the zero-point term is sum_g scale_g * sum_{k in g} w (precomputed here).
      o.output_type = OutputType::kFloat32;
      const int32_t groups = (k_ + wq.group_size - 1) / wq.group_size;
      group_sums_.assign(static_cast<std::size_t>(n_), 0.0f);
      for (int32_t c = 0; c < n_; ++c) {
        double total = 0.0;
        for (int32_t g = 0; g < groups; ++g) {
          int32_t sum = 0;
          for (int32_t i = g * wq.group_size; i < std::min(k_, (g + 1) * wq.group_size); ++i) {
            sum += value(c, i);
          }
          total += static_cast<double>(sum) *
                   wq.group_scales[static_cast<std::size_t>(c) * groups + g];
        }
        group_sums_[static_cast<std::size_t>(c)] = static_cast<float>(total);
      }
    }
    plan_ = std::make_unique<FullyConnected>(pack_gemm_weights(w, info.weight_type, n_, k_, wq),
                                             o);
  }

  TfLiteStatus prepare(TfLiteContext* context) override {
    if (resize_fc_output(context, info_, k_, n_, &m_) != kTfLiteOk) return kTfLiteError;
    qx_.resize(static_cast<std::size_t>(m_) * k_);
    scales_.resize(static_cast<std::size_t>(m_));
    zero_points_.resize(static_cast<std::size_t>(m_));
    if (!grouped_) acc_.resize(static_cast<std::size_t>(m_) * n_);
    plan_->reserve(m_, pool_ != nullptr ? pool_->num_threads() : 1);
    return kTfLiteOk;
  }

  TfLiteStatus invoke(TfLiteContext* context) override {
    const TfLiteTensor& x = tensor_at(context, info_.input);
    TfLiteTensor& y = tensor_at(context, info_.output);
    if (m_ == 0) return kTfLiteOk;
    quantize_rows(static_cast<const float*>(x.data), m_, k_, params_.mode, qx_.data(),
                  scales_.data(), zero_points_.data(), isa_);
    auto* out = static_cast<float*>(y.data);
    const FloatClamp clamp = float_clamp_of(info_.activation);
    if (grouped_) {
      // y = act(bias + s_x * (sum_g scale_g * acc_g - zp * sum_g scale_g * sum w)); the plan
      // writes the sums straight into y.
      plan_->run(qx_.data(), m_, out, pool_);
      for (int32_t r = 0; r < m_; ++r) {
        const float zp = static_cast<float>(zero_points_[static_cast<std::size_t>(r)]);
        const float sx = scales_[static_cast<std::size_t>(r)];
        float* yr = out + static_cast<std::size_t>(r) * n_;
        for (int32_t c = 0; c < n_; ++c) {
          const std::size_t ci = static_cast<std::size_t>(c);
          const float v = yr[c] - zp * group_sums_[ci];
          yr[c] = clamp(params_.bias[ci] + v * sx);
        }
      }
      return kTfLiteOk;
    }
    plan_->run(qx_.data(), m_, acc_.data(), pool_);
    for (int32_t r = 0; r < m_; ++r) {
      const int32_t zp = zero_points_[static_cast<std::size_t>(r)];
      const float sx = scales_[static_cast<std::size_t>(r)];
      const int32_t* acc = acc_.data() + static_cast<std::size_t>(r) * n_;
      float* yr = out + static_cast<std::size_t>(r) * n_;
      for (int32_t c = 0; c < n_; ++c) {
        const std::size_t ci = static_cast<std::size_t>(c);
        // Wrapping int32 arithmetic, as the sums themselves.
        const int32_t v = static_cast<int32_t>(static_cast<uint32_t>(acc[c]) -
                                               static_cast<uint32_t>(zp) *
                                                   static_cast<uint32_t>(row_sums_[ci]));
        const float scale = sx * params_.weight_scale[ci];
        yr[c] = clamp(params_.bias[ci] + static_cast<float>(v) * scale);
      }
    }
    return kTfLiteOk;
  }

  std::string kernel_name() const override {
    return std::string(quantize_kernel_name(isa_)) + "+" + plan_->kernel_name(m_ > 0 ? m_ : 1);
  }

 private:
  Isa isa_;
  int32_t n_ = 0, k_ = 0, m_ = 1;
  DynamicParams params_;
  std::vector<int32_t> row_sums_;
  bool grouped_ = false;
  std::vector<float> group_sums_;  // block-wise: sum_g scale_g * sum_{k in g} w[n][k]
  std::unique_ptr<FullyConnected> plan_;
  std::vector<int8_t> qx_;
  std::vector<float> scales_;
  std::vector<int32_t> zero_points_;
  std::vector<int32_t> acc_;
};

// CONV_2D and DEPTHWISE_CONV_2D: one scale and zero point per image, as LiteRT's hybrid convs.
// The plans are built with that zero point as their input zero point, so padded taps read as
// real 0 and the int32 sums are already sum (x - zp) * w; a plan per zero point seen recently is
// kept (building one reads the weights once, the image's convolution reads them per pixel).
// Then y = act(float(acc) * weight_scale[n] * input_scale + bias[n]).
template <typename Plan>
class DynamicConvKernel final : public NodeKernel {
 public:
  DynamicConvKernel(TfLiteContext* context, const NodeInfo& info, const Options& options,
                    ThreadPool* pool)
      : NodeKernel(info, pool), options_(options), isa_(resolve_isa(options.isa)) {
    const TfLiteTensor& w = tensor_at(context, info.weights);
    const std::vector<int> wd = tensor_dims(w);
    kh_ = wd[1];
    kw_ = wd[2];
    int channels = 0;
    wq_ = quant_of(context, info, &channels);
    params_ = dynamic_params(context, info, channels, wq_);
    if (info.kind == OpKind::kConv2D) {
      weights_ = pack_gemm_weights(w, info.weight_type, wd[0], wd[1] * wd[2] * wd[3], wq_);
    } else {
      filter_ = weight_values(w);
    }
    input_dims_ = tensor_dims(tensor_at(context, info.input));
    plan_for(0);
  }

  TfLiteStatus prepare(TfLiteContext* context) override {
    const std::vector<int> xd = tensor_dims(tensor_at(context, info_.input));
    if (xd != input_dims_) {
      input_dims_ = xd;
      plans_.clear();
    }
    const Plan& p = plan_for(0);
    if (resize_output(context, info_.output,
                      {xd[0], p.output_height(), p.output_width(), p.output_channels()}) !=
        kTfLiteOk) {
      return kTfLiteError;
    }
    const std::size_t image = static_cast<std::size_t>(xd[1]) * xd[2] * xd[3];
    qx_.resize(static_cast<std::size_t>(xd[0]) * image);
    scales_.resize(static_cast<std::size_t>(xd[0]));
    zero_points_.resize(static_cast<std::size_t>(xd[0]));
    acc_.resize(static_cast<std::size_t>(p.output_height()) * p.output_width() *
                p.output_channels());
    return kTfLiteOk;
  }

  TfLiteStatus invoke(TfLiteContext* context) override {
    const TfLiteTensor& x = tensor_at(context, info_.input);
    TfLiteTensor& y = tensor_at(context, info_.output);
    const int32_t batch = input_dims_[0];
    const int32_t image = input_dims_[1] * input_dims_[2] * input_dims_[3];
    if (batch == 0 || image == 0) return kTfLiteOk;
    quantize_rows(static_cast<const float*>(x.data), batch, image, params_.mode, qx_.data(),
                  scales_.data(), zero_points_.data(), isa_);
    auto* out = static_cast<float*>(y.data);
    const FloatClamp clamp = float_clamp_of(info_.activation);
    const std::size_t channels = params_.weight_scale.size();
    const std::size_t pixels = acc_.size() / channels;
    for (int32_t b = 0; b < batch; ++b) {
      Plan& p = plan_for(zero_points_[static_cast<std::size_t>(b)]);
      p.run(qx_.data() + static_cast<std::size_t>(b) * image, acc_.data(), pool_);
      const float sx = scales_[static_cast<std::size_t>(b)];
      float* yb = out + static_cast<std::size_t>(b) * acc_.size();
      for (std::size_t px = 0; px < pixels; ++px) {
        const int32_t* a = acc_.data() + px * channels;
        float* yp = yb + px * channels;
        for (std::size_t c = 0; c < channels; ++c) {
          const float v = static_cast<float>(a[c]) * params_.weight_scale[c] * sx;
          yp[c] = clamp(v + params_.bias[c]);
        }
      }
    }
    return kTfLiteOk;
  }

  std::string kernel_name() const override {
    return std::string(quantize_kernel_name(isa_)) + "+" +
           (plans_.empty() ? "" : plans_.back().second->kernel_name());
  }

 private:
  Plan& plan_for(int32_t zero_point) {
    for (auto& entry : plans_) {
      if (entry.first == zero_point) return *entry.second;
    }
    constexpr std::size_t kKeep = 4;
    if (plans_.size() >= kKeep) plans_.erase(plans_.begin());
    plans_.emplace_back(zero_point, build(zero_point));
    return *plans_.back().second;
  }

  std::unique_ptr<Plan> build(int32_t zero_point);

  Options options_;
  Isa isa_;
  int kh_ = 1, kw_ = 1;
  WeightQuant wq_;
  DynamicParams params_;
  PackedWeights weights_;        // CONV_2D
  std::vector<int8_t> filter_;   // DEPTHWISE_CONV_2D
  std::vector<int> input_dims_;
  std::vector<std::pair<int32_t, std::unique_ptr<Plan>>> plans_;
  std::vector<int8_t> qx_;
  std::vector<float> scales_;
  std::vector<int32_t> zero_points_;
  std::vector<int32_t> acc_;
};

template <>
std::unique_ptr<Conv2D> DynamicConvKernel<Conv2D>::build(int32_t zero_point) {
  Conv2DOptions co;
  static_cast<LayerOptions&>(co) = int32_options(options_, zero_point);
  std::vector<int> one = input_dims_;
  one[0] = 1;  // image by image: each has its own zero point
  co.geometry = geometry_of(info_, one, kh_, kw_);
  auto plan = std::make_unique<Conv2D>(weights_.view(), co);
  plan->reserve(pool_ != nullptr ? pool_->num_threads() : 1);
  return plan;
}

template <>
std::unique_ptr<DepthwiseConv2D> DynamicConvKernel<DepthwiseConv2D>::build(int32_t zero_point) {
  DepthwiseConv2DOptions o;
  static_cast<LayerOptions&>(o) = int32_options(options_, zero_point);
  std::vector<int> one = input_dims_;
  one[0] = 1;
  o.geometry = geometry_of(info_, one, kh_, kw_);
  o.depth_multiplier = info_.depth_multiplier;
  auto plan = std::make_unique<DepthwiseConv2D>(
      filter_.data(), wq_.scales.data(), static_cast<int32_t>(wq_.scales.size()),
      wq_.all_zero_points_zero ? nullptr : wq_.zero_points.data(), o);
  plan->reserve(pool_ != nullptr ? pool_->num_threads() : 1);
  return plan;
}

}  // namespace

TfLiteStatus NodeKernel::run(TfLiteContext* context) {
  if (pool_of_node_ == nullptr || pool_of_node_->num_threads() <= 1) return invoke(context);
  // Restores the node's pool however invoke() leaves (kernels do not throw, plans may).
  struct Restore {
    ThreadPool*& current;
    ThreadPool* pool;
    ~Restore() { current = pool; }
  } restore{pool_, pool_of_node_};
  pool_ = choice_.parallel_next() ? pool_of_node_ : nullptr;
  const auto start = std::chrono::steady_clock::now();
  const TfLiteStatus status = invoke(context);
  choice_.record(std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::steady_clock::now() - start).count());
  return status;
}

std::unique_ptr<NodeKernel> NodeKernel::create(TfLiteContext* context, const NodeInfo& info,
                                               const Options& options, ThreadPool* pool) {
  if (info.dynamic) {
    switch (info.kind) {
      case OpKind::kFullyConnected:
        return std::make_unique<DynamicFullyConnectedKernel>(context, info, options, pool);
      case OpKind::kConv2D:
        return std::make_unique<DynamicConvKernel<Conv2D>>(context, info, options, pool);
      case OpKind::kDepthwiseConv2D:
        return std::make_unique<DynamicConvKernel<DepthwiseConv2D>>(context, info, options,
                                                                    pool);
    }
  }
  switch (info.kind) {
    case OpKind::kFullyConnected:
      return std::make_unique<FullyConnectedKernel>(context, info, options, pool);
    case OpKind::kConv2D:
      return std::make_unique<Conv2DKernel>(context, info, options, pool);
    case OpKind::kDepthwiseConv2D:
      return std::make_unique<DepthwiseKernel>(context, info, options, pool);
  }
  return nullptr;
}

}  // namespace delegate
}  // namespace edge
