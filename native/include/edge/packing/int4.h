// Packed int4 weights (WeightType::kInt4, kernel names "qc4w").
//
// Format. Codes 0..15, two per byte: in a block (16 channels x 8 k, layout.h KB = 8) byte j
// holds channel 16 * tile + j / 4 with k = 8b + j%4 in bits 0-3 and k = 8b + 4 + j%4 in bits 4-7.
// Code = q + 8 for TFLite's signed INT4 q in [-8, 7]; the stored zero point is 8 + TFLite's zero
// point (symmetric int4: 8). Per-channel scale, optional per-group scales along K.
//
// Size: ceil(N / 16) * ceil(K / 8) * 64 bytes, i.e. N * K / 2 bytes plus tile padding.
//
// Kernels: one shift and two ANDs unpack a block into two int8 "16x4c4" blocks of codes 0..15
// (unsigned), then vpdpbusd (AVX-512 VNNI), vpmaddubsw with int16 accumulation for 4 blocks
// before vpmaddwd (AVX2: 15 * 128 * 2 * 8 < 2^15), sdot, or smlal + sadalp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "edge/packing/packed_weights.h"

namespace edge {

// pack_weights(WeightType::kInt4, ...): values [n][k] in [-8, 7].
inline PackedWeights pack_int4(const int8_t* values, int32_t n, int32_t k, const float* scales,
                               int32_t num_scales, const int32_t* zero_points = nullptr) {
  return pack_weights(WeightType::kInt4, values, n, k, scales, num_scales, zero_points);
}

// Packs a TFLite INT4 buffer directly ([n][k] row-major flattened, two values per byte, element
// 2i in the low nibble, as LiteRT stores TensorType INT4): no unpacked copy is made.
// `tflite_bytes` must hold ceil(n * k / 2) bytes.
PackedWeights pack_int4_tflite(const uint8_t* tflite_bytes, std::size_t tflite_size, int32_t n,
                               int32_t k, const float* scales, int32_t num_scales,
                               const int32_t* zero_points = nullptr);

}  // namespace edge
