// Internal: the edgesdk custom ops (EDGE_CONV_INT2, EDGE_DWCONV_INT2) and their options.
//
// The format is documented where it is written: converters/tflite/custom_ops.py. 40 bytes,
// little-endian: "EDGE", uint16 version, uint16 size, then int32 stride_h, stride_w,
// dilation_h, dilation_w, padding (0 SAME, 1 VALID), activation (0 NONE, 1 RELU,
// 2 RELU_N1_TO_1, 3 RELU6 — TFLite's TfLiteFusedActivation values), depth_multiplier,
// weight kind (0 int2, 1 ternary). Readers accept larger sizes (fields appended later).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace edge {
namespace delegate {

constexpr const char* kEdgeConvInt2 = "EDGE_CONV_INT2";
constexpr const char* kEdgeDwConvInt2 = "EDGE_DWCONV_INT2";
constexpr int kCustomOptionsSize = 40;

// 0: EDGE_CONV_INT2, 1: EDGE_DWCONV_INT2, -1: not ours.
inline int custom_op_kind(const char* name) {
  if (std::strcmp(name, kEdgeConvInt2) == 0) return 0;
  if (std::strcmp(name, kEdgeDwConvInt2) == 0) return 1;
  return -1;
}

struct ConvCustomOptions {
  int32_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  bool padding_valid = false;
  int32_t activation = 0;
  int32_t depth_multiplier = 1;
  int32_t weight_kind = 0;
};

inline int32_t read_le32(const unsigned char* p) {
  return static_cast<int32_t>(static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
                              static_cast<uint32_t>(p[2]) << 16 |
                              static_cast<uint32_t>(p[3]) << 24);
}

// "" on success, else what is wrong.
inline std::string parse_custom_options(const void* data, int size, ConvCustomOptions* out) {
  if (data == nullptr || size < kCustomOptionsSize) {
    return "custom options: " + std::to_string(size < 0 ? 0 : size) + " bytes, need " +
           std::to_string(kCustomOptionsSize);
  }
  const auto* p = static_cast<const unsigned char*>(data);
  if (std::memcmp(p, "EDGE", 4) != 0) return "custom options: bad magic (expected \"EDGE\")";
  const int version = p[4] | p[5] << 8;
  const int length = p[6] | p[7] << 8;
  if (version < 1 || length < kCustomOptionsSize) {
    return "custom options: unsupported version " + std::to_string(version);
  }
  ConvCustomOptions o;
  o.stride_h = read_le32(p + 8);
  o.stride_w = read_le32(p + 12);
  o.dilation_h = read_le32(p + 16);
  o.dilation_w = read_le32(p + 20);
  const int32_t padding = read_le32(p + 24);
  o.activation = read_le32(p + 28);
  o.depth_multiplier = read_le32(p + 32);
  o.weight_kind = read_le32(p + 36);
  if (padding != 0 && padding != 1) return "custom options: bad padding code";
  if (o.activation < 0 || o.activation > 3) return "custom options: bad activation code";
  o.padding_valid = padding == 1;
  *out = o;
  return "";
}

}  // namespace delegate
}  // namespace edge
