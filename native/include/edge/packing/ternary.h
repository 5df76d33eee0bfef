// Packed ternary weights (WeightType::kTernary, kernel names "qt2w"), and the dense base-3
// storage form.
//
// Kernel format. {-1, 0, +1} as 2-bit codes q + 1 in {0, 1, 2}, zero point 1, in the 2-bit
// layout of int2.h (16 channels x 16 k per 64-byte block). The kernels are the 2-bit ones: a
// ternary weight is a 2-bit weight whose code never reaches 3, so nothing is gained by special
// ternary arithmetic on CPUs with byte dot products (see the algorithm notes below).
//
// Storage format (base 3). Five trits per byte, 1.6 bits per weight (log2(3) = 1.585 is the
// limit): byte = sum_{i<5} (q_i + 1) * 3^i over five consecutive weights of the [n][k] row-major
// matrix (the flattened sequence, not per row); the last byte is padded with trit 1 (q = 0), so
// decoding past the end yields zeros. Bytes above 242 are invalid. `.edge` files store ternary
// weights this way (20% smaller than 2-bit) and unpack them to the kernel format at load time
// (pack_ternary_base3) with a 243-entry table.
//
// Algorithm notes (why unpack-to-bytes + dot product, measured on x86 Zen 4 and reasoned on Arm):
// see "Algorithm choices" in docs/design-notes.md for the measured alternatives (LUT via
// pshufb, bit-serial popcount) and their figures.
#pragma once

#include <cstddef>
#include <cstdint>

#include "edge/packing/packed_weights.h"

namespace edge {

// pack_weights(WeightType::kTernary, ...): values [n][k] in {-1, 0, 1}.
inline PackedWeights pack_ternary(const int8_t* values, int32_t n, int32_t k, const float* scales,
                                  int32_t num_scales) {
  return pack_weights(WeightType::kTernary, values, n, k, scales, num_scales, nullptr);
}

// Bytes needed for `count` trits: ceil(count / 5).
constexpr std::size_t base3_bytes(std::size_t count) { return (count + 4) / 5; }

// Encodes `count` values in {-1, 0, 1} into base3_bytes(count) bytes. Throws
// std::invalid_argument naming the index of a value outside {-1, 0, 1}.
void encode_base3(const int8_t* values, std::size_t count, uint8_t* out);
// Decodes `count` values from base3_bytes(count) bytes. Throws std::invalid_argument naming the
// byte offset of a byte above 242.
void decode_base3(const uint8_t* bytes, std::size_t count, int8_t* values);

// Unpacks base-3 storage of an [n][k] ternary matrix straight into the kernel layout.
// `size` must be at least base3_bytes(n * k).
PackedWeights pack_ternary_base3(const uint8_t* bytes, std::size_t size, int32_t n, int32_t k,
                                 const float* scales, int32_t num_scales);

}  // namespace edge
