// Packing to and from the tiled layout of packing/layout.h, TFLite's sub-byte buffers, and the
// dense base-3 ternary storage.
#include <array>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "edge/packing/int2.h"
#include "edge/packing/int4.h"
#include "edge/packing/int8.h"
#include "edge/packing/layout.h"
#include "edge/packing/packed_weights.h"
#include "edge/packing/ternary.h"

namespace edge {
namespace {

constexpr int32_t kMaxK = 65536;  // keeps every raw int32 dot product exact (see gemm_plan.cc)

std::string where(int32_t n, int32_t k) {
  return "(channel " + std::to_string(n) + ", k " + std::to_string(k) + ")";
}

void check_shape(int32_t n, int32_t k) {
  if (n <= 0 || k <= 0) {
    throw std::invalid_argument("weights: shape [" + std::to_string(n) + ", " + std::to_string(k) +
                                "] must have n >= 1 and k >= 1");
  }
  if (k > kMaxK) {
    throw std::invalid_argument("weights: k = " + std::to_string(k) + " exceeds the kernels' limit " +
                                std::to_string(kMaxK) + " (int32 accumulators could overflow)");
  }
}

void check_scales(const float* scales, int32_t num_scales, int32_t n) {
  if (scales == nullptr || (num_scales != 1 && num_scales != n)) {
    throw std::invalid_argument("weights: need 1 or " + std::to_string(n) + " scales, got " +
                                (scales == nullptr ? std::string("none")
                                                   : std::to_string(num_scales)));
  }
  for (int32_t i = 0; i < num_scales; ++i) {
    if (!std::isfinite(scales[i]) || scales[i] < 0.0f) {
      throw std::invalid_argument("weights: scale " + std::to_string(i) + " = " +
                                  std::to_string(scales[i]) + " must be finite and >= 0");
    }
  }
}

// Writes the codes of an [n][k] matrix given by code_at(n, k) into the layout. Iterates in
// packed order so that each output byte is written once.
template <typename CodeAt>
void fill_codes(WeightType type, int32_t n, int32_t k, uint8_t* data, const CodeAt& code_at) {
  const int bits = weight_bits(type);
  const int fields = 8 / bits;
  const int kb = block_k(type);
  const std::size_t kblocks = k_blocks(type, static_cast<std::size_t>(k));
  const std::size_t tiles = n_tiles(static_cast<std::size_t>(n));
  for (std::size_t t = 0; t < tiles; ++t) {
    for (std::size_t b = 0; b < kblocks; ++b) {
      uint8_t* block = data + (t * kblocks + b) * kBlockBytes;
      for (int c = 0; c < kTileN; ++c) {
        const int32_t ch = static_cast<int32_t>(t) * kTileN + c;
        if (ch >= n) break;  // padded channels stay 0
        for (int kk = 0; kk < 4; ++kk) {
          unsigned byte = 0;
          for (int i = 0; i < fields; ++i) {
            const int32_t kidx = static_cast<int32_t>(b) * kb + 4 * i + kk;
            if (kidx < k) byte |= static_cast<unsigned>(code_at(ch, kidx)) << (bits * i);
          }
          block[c * 4 + kk] = static_cast<uint8_t>(byte);
        }
      }
    }
  }
}

}  // namespace

const char* weight_type_name(WeightType type) {
  switch (type) {
    case WeightType::kInt8: return "int8";
    case WeightType::kInt4: return "int4";
    case WeightType::kTernary: return "ternary";
    case WeightType::kInt2: return "int2";
  }
  return "unknown";
}

WeightType parse_weight_type(const std::string& name) {
  for (WeightType t : {WeightType::kInt8, WeightType::kInt4, WeightType::kTernary,
                       WeightType::kInt2}) {
    if (name == weight_type_name(t)) return t;
  }
  throw std::invalid_argument("unknown weight type '" + name +
                              "': expected one of int8, int4, ternary, int2");
}

// ------------------------------------------------------------------------- views and owners

uint8_t PackedWeightsView::code(int32_t channel, int32_t kk) const {
  const CodePosition pos = code_position(type, k_blocks(type, static_cast<std::size_t>(k)),
                                         static_cast<std::size_t>(channel),
                                         static_cast<std::size_t>(kk));
  const unsigned mask = (1u << weight_bits(type)) - 1u;
  return static_cast<uint8_t>((data[pos.byte] >> pos.shift) & mask);
}

void PackedWeightsView::validate() const {
  check_shape(n, k);
  if (data == nullptr) throw std::invalid_argument("weights: no packed data");
  if (zero_points == nullptr) throw std::invalid_argument("weights: no zero points");
  check_scales(scales, num_scales, n);
  for (int32_t c = 0; c < n; ++c) {
    const int32_t zp = zero_points[c];
    const bool ok = type == WeightType::kInt8 ? (zp >= -128 && zp <= 127)
                    : type == WeightType::kTernary ? zp == 1
                                                   : (zp >= 0 && zp <= max_code(type));
    if (!ok) {
      throw std::invalid_argument("weights: zero point " + std::to_string(zp) + " of channel " +
                                  std::to_string(c) + " is outside the " +
                                  weight_type_name(type) + " code range");
    }
  }
  if (group_size != 0) {
    if (group_size < 0 || group_size % block_k(type) != 0) {
      throw std::invalid_argument("weights: group size " + std::to_string(group_size) +
                                  " must be a positive multiple of " +
                                  std::to_string(block_k(type)) + " for " +
                                  weight_type_name(type));
    }
    if (group_scales == nullptr) throw std::invalid_argument("weights: no group scales");
    const int64_t count = static_cast<int64_t>(n) * num_groups();
    for (int64_t i = 0; i < count; ++i) {
      if (!std::isfinite(group_scales[i])) {
        throw std::invalid_argument("weights: group scale " + std::to_string(i) +
                                    " is not finite");
      }
    }
  }
}

PackedWeights::PackedWeights(WeightType type, int32_t n, int32_t k) : type_(type), n_(n), k_(k) {
  check_shape(n, k);
  data_.resize(packed_bytes(type, static_cast<std::size_t>(n), static_cast<std::size_t>(k)));
  zero_points_.assign(static_cast<std::size_t>(n), 0);
  scales_.assign(1, 1.0f);
}

void PackedWeights::set_group_scales(int32_t group_size, const float* group_scales) {
  if (group_size == 0) {
    group_size_ = 0;
    group_scales_.clear();
    return;
  }
  if (group_size < 0 || group_size % block_k(type_) != 0 || group_scales == nullptr) {
    throw std::invalid_argument("weights: group size " + std::to_string(group_size) +
                                " must be a positive multiple of " +
                                std::to_string(block_k(type_)) + " for " +
                                weight_type_name(type_) + ", with scales");
  }
  group_size_ = group_size;
  const std::size_t groups = static_cast<std::size_t>((k_ + group_size - 1) / group_size);
  group_scales_.assign(group_scales, group_scales + groups * static_cast<std::size_t>(n_));
}

PackedWeightsView PackedWeights::view() const {
  PackedWeightsView v;
  v.type = type_;
  v.n = n_;
  v.k = k_;
  v.data = data_.data();
  v.zero_points = zero_points_.data();
  v.scales = scales_.data();
  v.num_scales = static_cast<int32_t>(scales_.size());
  v.group_size = group_size_;
  v.group_scales = group_scales_.empty() ? nullptr : group_scales_.data();
  return v;
}

// ------------------------------------------------------------------------- pack / unpack

PackedWeights pack_codes(WeightType type, const uint8_t* codes, int32_t n, int32_t k,
                         const float* scales, int32_t num_scales,
                         const int32_t* code_zero_points) {
  check_shape(n, k);
  check_scales(scales, num_scales, n);
  PackedWeights out(type, n, k);
  const int top = max_code(type);
  for (int64_t i = 0; i < static_cast<int64_t>(n) * k; ++i) {
    if (codes[i] > top) {
      throw std::invalid_argument("weights: code " + std::to_string(codes[i]) + " at " +
                                  where(static_cast<int32_t>(i / k), static_cast<int32_t>(i % k)) +
                                  " exceeds " + std::to_string(top) + " for " +
                                  weight_type_name(type));
    }
  }
  fill_codes(type, n, k, out.data().data(), [&](int32_t c, int32_t kk) {
    return codes[static_cast<int64_t>(c) * k + kk];
  });
  for (int32_t c = 0; c < n; ++c) {
    out.zero_points()[c] = code_zero_points != nullptr ? code_zero_points[c] : -value_offset(type);
  }
  out.scales().assign(scales, scales + num_scales);
  out.view().validate();
  return out;
}

PackedWeights pack_weights(WeightType type, const int8_t* values, int32_t n, int32_t k,
                           const float* scales, int32_t num_scales, const int32_t* zero_points) {
  check_shape(n, k);
  check_scales(scales, num_scales, n);
  const int lo = min_value(type), hi = max_value(type);
  for (int64_t i = 0; i < static_cast<int64_t>(n) * k; ++i) {
    if (values[i] < lo || values[i] > hi) {
      throw std::invalid_argument("weights: value " + std::to_string(values[i]) + " at " +
                                  where(static_cast<int32_t>(i / k), static_cast<int32_t>(i % k)) +
                                  " is outside the " + weight_type_name(type) + " range [" +
                                  std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
  }
  PackedWeights out(type, n, k);
  const int offset = value_offset(type);
  fill_codes(type, n, k, out.data().data(), [&](int32_t c, int32_t kk) {
    return static_cast<uint8_t>(values[static_cast<int64_t>(c) * k + kk] - offset);
  });
  for (int32_t c = 0; c < n; ++c) {
    const int32_t zp = zero_points != nullptr ? zero_points[c] : 0;
    if (type == WeightType::kTernary && zp != 0) {
      throw std::invalid_argument("weights: ternary weights need zero point 0, channel " +
                                  std::to_string(c) + " has " + std::to_string(zp));
    }
    if (zp < lo || zp > hi) {
      throw std::invalid_argument("weights: zero point " + std::to_string(zp) + " of channel " +
                                  std::to_string(c) + " is outside the " +
                                  weight_type_name(type) + " range");
    }
    out.zero_points()[c] = zp - offset;
  }
  out.scales().assign(scales, scales + num_scales);
  return out;
}

void unpack_weights(const PackedWeightsView& w, int8_t* values, int32_t* zero_points) {
  w.validate();
  const int offset = value_offset(w.type);
  for (int32_t c = 0; c < w.n; ++c) {
    for (int32_t kk = 0; kk < w.k; ++kk) {
      const int code = w.code(c, kk);
      values[static_cast<int64_t>(c) * w.k + kk] =
          static_cast<int8_t>(w.type == WeightType::kInt8 ? static_cast<int8_t>(code)
                                                          : code + offset);
    }
    if (zero_points != nullptr) zero_points[c] = w.zero_points[c] + offset;
  }
}

// ------------------------------------------------------------------------- TFLite buffers

namespace {

PackedWeights pack_tflite_subbyte(WeightType type, int bits, const uint8_t* bytes,
                                  std::size_t size, int32_t n, int32_t k, const float* scales,
                                  int32_t num_scales, const int32_t* zero_points) {
  check_shape(n, k);
  check_scales(scales, num_scales, n);
  const std::size_t count = static_cast<std::size_t>(n) * static_cast<std::size_t>(k);
  const std::size_t need = (count * static_cast<std::size_t>(bits) + 7) / 8;
  if (bytes == nullptr || size < need) {
    throw std::invalid_argument("weights: a TFLite " + std::to_string(bits) + "-bit [" +
                                std::to_string(n) + ", " + std::to_string(k) + "] tensor needs " +
                                std::to_string(need) + " bytes, got " + std::to_string(size));
  }
  const int per_byte = 8 / bits;
  const unsigned mask = (1u << bits) - 1u;
  const int sign_bit = 1 << (bits - 1);
  const int offset = value_offset(type);
  const int lo = min_value(type), hi = max_value(type);
  PackedWeights out(type, n, k);
  fill_codes(type, n, k, out.data().data(), [&](int32_t c, int32_t kk) {
    const std::size_t i = static_cast<std::size_t>(c) * static_cast<std::size_t>(k) +
                          static_cast<std::size_t>(kk);
    const int raw = static_cast<int>((bytes[i / per_byte] >> (bits * (i % per_byte))) & mask);
    const int q = raw >= sign_bit ? raw - (1 << bits) : raw;  // TFLite stores signed values
    if (q < lo || q > hi) {
      throw std::invalid_argument("weights: value " + std::to_string(q) + " at " + where(c, kk) +
                                  " is outside the " + weight_type_name(type) + " range");
    }
    return static_cast<uint8_t>(q - offset);
  });
  for (int32_t c = 0; c < n; ++c) {
    const int32_t zp = zero_points != nullptr ? zero_points[c] : 0;
    if ((type == WeightType::kTernary && zp != 0) || zp < lo || zp > hi) {
      throw std::invalid_argument("weights: zero point " + std::to_string(zp) + " of channel " +
                                  std::to_string(c) + " is not valid for " +
                                  weight_type_name(type));
    }
    out.zero_points()[c] = zp - offset;
  }
  out.scales().assign(scales, scales + num_scales);
  return out;
}

}  // namespace

PackedWeights pack_int4_tflite(const uint8_t* tflite_bytes, std::size_t tflite_size, int32_t n,
                               int32_t k, const float* scales, int32_t num_scales,
                               const int32_t* zero_points) {
  return pack_tflite_subbyte(WeightType::kInt4, 4, tflite_bytes, tflite_size, n, k, scales,
                             num_scales, zero_points);
}

PackedWeights pack_int2_tflite(const uint8_t* tflite_bytes, std::size_t tflite_size, int32_t n,
                               int32_t k, const float* scales, int32_t num_scales,
                               const int32_t* zero_points, bool as_ternary) {
  return pack_tflite_subbyte(as_ternary ? WeightType::kTernary : WeightType::kInt2, 2,
                             tflite_bytes, tflite_size, n, k, scales, num_scales, zero_points);
}

// ------------------------------------------------------------------------- base 3

namespace {

// Trits of every valid byte value, lowest first, as q = trit - 1.
struct Base3Table {
  std::array<std::array<int8_t, 5>, 243> trits{};
  Base3Table() {
    for (int v = 0; v < 243; ++v) {
      int rest = v;
      for (int i = 0; i < 5; ++i) {
        trits[v][i] = static_cast<int8_t>(rest % 3 - 1);
        rest /= 3;
      }
    }
  }
};

const Base3Table& base3_table() {
  static const Base3Table table;
  return table;
}

}  // namespace

void encode_base3(const int8_t* values, std::size_t count, uint8_t* out) {
  for (std::size_t byte = 0; byte < base3_bytes(count); ++byte) {
    int v = 0;
    for (int i = 4; i >= 0; --i) {
      const std::size_t idx = byte * 5 + static_cast<std::size_t>(i);
      int q = 0;  // padding past the end: trit 1
      if (idx < count) {
        q = values[idx];
        if (q < -1 || q > 1) {
          throw std::invalid_argument("ternary: value " + std::to_string(q) + " at index " +
                                      std::to_string(idx) + " is not in {-1, 0, 1}");
        }
      }
      v = v * 3 + (q + 1);
    }
    out[byte] = static_cast<uint8_t>(v);
  }
}

void decode_base3(const uint8_t* bytes, std::size_t count, int8_t* values) {
  const Base3Table& table = base3_table();
  for (std::size_t byte = 0; byte < base3_bytes(count); ++byte) {
    if (bytes[byte] > 242) {
      throw std::invalid_argument("ternary base-3 data: byte " + std::to_string(bytes[byte]) +
                                  " at offset " + std::to_string(byte) +
                                  " is not a valid base-3 byte (max 242)");
    }
    const auto& trits = table.trits[bytes[byte]];
    for (std::size_t i = 0; i < 5 && byte * 5 + i < count; ++i) values[byte * 5 + i] = trits[i];
  }
}

PackedWeights pack_ternary_base3(const uint8_t* bytes, std::size_t size, int32_t n, int32_t k,
                                 const float* scales, int32_t num_scales) {
  check_shape(n, k);
  check_scales(scales, num_scales, n);
  const std::size_t count = static_cast<std::size_t>(n) * static_cast<std::size_t>(k);
  if (bytes == nullptr || size < base3_bytes(count)) {
    throw std::invalid_argument("ternary base-3 data: [" + std::to_string(n) + ", " +
                                std::to_string(k) + "] needs " +
                                std::to_string(base3_bytes(count)) + " bytes, got " +
                                std::to_string(size));
  }
  for (std::size_t i = 0; i < base3_bytes(count); ++i) {
    if (bytes[i] > 242) {
      throw std::invalid_argument("ternary base-3 data: byte " + std::to_string(bytes[i]) +
                                  " at offset " + std::to_string(i) +
                                  " is not a valid base-3 byte (max 242)");
    }
  }
  const Base3Table& table = base3_table();
  PackedWeights out(WeightType::kTernary, n, k);
  fill_codes(WeightType::kTernary, n, k, out.data().data(), [&](int32_t c, int32_t kk) {
    const std::size_t i = static_cast<std::size_t>(c) * static_cast<std::size_t>(k) +
                          static_cast<std::size_t>(kk);
    return static_cast<uint8_t>(table.trits[bytes[i / 5]][i % 5] + 1);
  });
  for (int32_t c = 0; c < n; ++c) out.zero_points()[c] = 1;
  out.scales().assign(scales, scales + num_scales);
  return out;
}

}  // namespace edge
