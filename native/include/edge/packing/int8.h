// Packed int8 weights (WeightType::kInt8, kernel names "qc8w").
//
// Format. One code per byte: the code *is* the int8 weight q as a two's-complement byte.
// Blocks hold 16 channels x 4 k (layout.h, KB = 4): byte j of block (tile, b) is weight
// (16 * tile + j / 4, 4 * b + j % 4). Per-channel zero point (TFLite int8 weights: 0) and scale.
//
// Size: ceil(N / 16) * ceil(K / 4) * 64 bytes, i.e. N * K bytes plus tile padding.
//
// Kernels: AVX2 sign-extends to int16 and uses vpmaddwd (vpmaddubsw would saturate for int8 x
// int8); AVX-512 VNNI feeds the weights as vpdpbusd's signed operand and shifts the activations
// to unsigned (x + 128), correcting with 128 * sum(w) per channel; NEON uses smull + sadalp
// (never two smlal in a row: (-128)(-128) * 2 overflows int16); dotprod uses sdot directly.
#pragma once

#include <cstdint>

#include "edge/packing/packed_weights.h"

namespace edge {

// pack_weights(WeightType::kInt8, ...): values [n][k] in [-128, 127].
inline PackedWeights pack_int8(const int8_t* values, int32_t n, int32_t k, const float* scales,
                               int32_t num_scales, const int32_t* zero_points = nullptr) {
  return pack_weights(WeightType::kInt8, values, n, k, scales, num_scales, zero_points);
}

}  // namespace edge
