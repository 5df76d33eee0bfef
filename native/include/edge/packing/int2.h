// Packed 2-bit uniform weights (WeightType::kInt2, kernel names "qc2w").
//
// Format. Codes 0..3, four per byte: in a block (16 channels x 16 k, layout.h KB = 16) byte j
// holds channel 16 * tile + j / 4, and its bits [2i, 2i + 2) hold k = 16b + 4i + j%4.
// Code = q + 2 for TFLite's INT2 q in [-2, 1]; the stored zero point is 2 + TFLite's zero point
// (so the four levels are code - zero_point, any per-channel offset). Per-channel scale and
// optional per-group scales along K.
//
// Size: ceil(N / 16) * ceil(K / 16) * 64 bytes, i.e. N * K / 4 bytes plus tile padding.
//
// Kernels: see ternary.h (the same kernels; ternary is 2-bit with codes 0..2 and zero point 1).
#pragma once

#include <cstddef>
#include <cstdint>

#include "edge/packing/packed_weights.h"

namespace edge {

// pack_weights(WeightType::kInt2, ...): values [n][k] in [-2, 1].
inline PackedWeights pack_int2(const int8_t* values, int32_t n, int32_t k, const float* scales,
                               int32_t num_scales, const int32_t* zero_points = nullptr) {
  return pack_weights(WeightType::kInt2, values, n, k, scales, num_scales, zero_points);
}

// Packs a TFLite INT2 buffer directly ([n][k] row-major flattened, four values per byte, element
// 4i + j in bits [2j, 2j + 2), as LiteRT stores TensorType INT2). `as_ternary` packs it as
// WeightType::kTernary instead (values must then be in [-1, 1] with zero point 0: this is how
// ai-edge-quantizer's dynamic_wi2c_afp32 recipe stores ternary weights).
PackedWeights pack_int2_tflite(const uint8_t* tflite_bytes, std::size_t tflite_size, int32_t n,
                               int32_t k, const float* scales, int32_t num_scales,
                               const int32_t* zero_points = nullptr, bool as_ternary = false);

}  // namespace edge
