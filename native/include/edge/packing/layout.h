// The packed (tiled) weight layout shared by every weight type and every ISA.
//
// One layout for all back ends keeps packed weights portable: a `.edge` file written on x86
// runs unchanged on Arm, and the runtime never repacks at load time. The layout is built around
// the instruction that every back end has for "4 products summed into one int32 lane"
// (x86 vpdpbusd / vpmaddubsw+vpmaddwd, Arm sdot / smull+sadalp), hence the "c4" interleave.
//
// Terms. A weight matrix has N output channels and K reduction elements (FC: TFLite's [out, in]
// row-major; conv: TFLite's OHWI filter flattened to K = KH*KW*Cin). Each weight is stored as an
// unsigned *code* of `bits` bits, and the integer it stands for is `code - zero_point[n]`
// (int8: the two's-complement byte, `int8(code) - zero_point[n]`). The real weight is
// `scale[n] * (code - zero_point[n])` (times a per-group scale when the weights have them).
//
//   bits                 8 (int8)   4 (int4)   2 (ternary, int2)
//   codes per byte       1          2          4
//   K per block (KB)     4          8          16
//
// Tiles and blocks. Channels are grouped in tiles of 16 (kTileN); K in blocks of KB. Every
// (tile, block) pair is one 64-byte block, and blocks are stored tile-major:
//     block_offset(tile, b) = (tile * k_blocks + b) * 64,   k_blocks = ceil(K / KB)
// Inside a block, byte j (0..63) belongs to channel c = j / 4 of the tile and lane kk = j % 4,
// and its bit field i (bits [bits*i, bits*i + bits), i = 0 .. 8/bits - 1, lowest bits first)
// holds the code of
//     channel n = 16 * tile + c,   k = KB * b + 4 * i + kk.
// So field i of all 64 bytes, extracted with one shift and one AND, is a plain "16x4c4" block of
// 8-bit codes for k = KB*b + 4i .. +3: exactly what one vpdpbusd on zmm (16 lanes x 4 bytes),
// two vpmaddubsw on ymm (channels 0-7 and 8-15) or four sdot on q registers (4 channels x 4
// bytes each) consume, with the 4 activations of that k group broadcast.
//
// Why fields and not plain sub-byte rows: a kernel unpacks a whole 64-byte block with a handful
// of vector shifts/ANDs (no byte shuffles) and every unpacked field lines up with the same c4
// activation broadcast; the x86 and Arm kernels read the same bytes in the same order.
//
// Padding. N is padded to a multiple of 16 and K to a multiple of KB with code 0. A padded k
// multiplies code 0 (so the activation it meets does not matter), and padded channels are never
// stored; code sums and zero-point corrections are taken over the real K only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace edge {

enum class WeightType {
  kInt8,     // int8 values, per-channel zero point (TFLite: 0)
  kInt4,     // 4-bit codes 0..15, value = code - zero_point (TFLite INT4 [-8, 7]: zp 8 + tfl zp)
  kTernary,  // {-1, 0, +1} as 2-bit codes 0..2, zero point 1
  kInt2,     // 2-bit uniform: codes 0..3, per-channel zero point (TFLite INT2 [-2, 1]: 2 + tfl zp)
};

constexpr int kTileN = 16;
constexpr int kBlockBytes = 64;

// "int8", "int4", "ternary", "int2".
const char* weight_type_name(WeightType type);
// Parses those names; throws std::invalid_argument naming the accepted values.
WeightType parse_weight_type(const std::string& name);

constexpr int weight_bits(WeightType type) {
  return type == WeightType::kInt8 ? 8 : type == WeightType::kInt4 ? 4 : 2;
}
// K elements per 64-byte block: 4, 8 or 16.
constexpr int block_k(WeightType type) { return 4 * (8 / weight_bits(type)); }
// Largest code a weight type can hold (int8: 255 as a byte pattern).
constexpr int max_code(WeightType type) {
  return type == WeightType::kTernary ? 2 : (1 << weight_bits(type)) - 1;
}
// The quantised integer (TFLite's q) that code 0 stands for, before the zero point:
// q = code + value_offset. int8: the code byte *is* q (two's complement), offset 0 by convention.
constexpr int value_offset(WeightType type) {
  return type == WeightType::kInt8 ? 0 : type == WeightType::kInt4 ? -8
         : type == WeightType::kTernary ? -1 : -2;
}
// Range of q (TFLite's quantised values) a weight type holds.
constexpr int min_value(WeightType type) {
  return type == WeightType::kInt8 ? -128 : value_offset(type);
}
constexpr int max_value(WeightType type) {
  return type == WeightType::kInt8 ? 127 : value_offset(type) + max_code(type);
}

inline std::size_t k_blocks(WeightType type, std::size_t k) {
  return (k + block_k(type) - 1) / block_k(type);
}
inline std::size_t n_tiles(std::size_t n) { return (n + kTileN - 1) / kTileN; }
inline std::size_t packed_bytes(WeightType type, std::size_t n, std::size_t k) {
  return n_tiles(n) * k_blocks(type, k) * kBlockBytes;
}

// Where the code of weight (n, k) lives: byte offset in the packed buffer and bit shift.
struct CodePosition {
  std::size_t byte;
  int shift;
};
inline CodePosition code_position(WeightType type, std::size_t kblocks, std::size_t n,
                                  std::size_t k) {
  const std::size_t kb = static_cast<std::size_t>(block_k(type));
  const std::size_t tile = n / kTileN, c = n % kTileN;
  const std::size_t block = k / kb, r = k % kb;
  return {(tile * kblocks + block) * kBlockBytes + c * 4 + r % 4,
          static_cast<int>(r / 4) * weight_bits(type)};
}

}  // namespace edge
