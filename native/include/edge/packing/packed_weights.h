// Packed weights: the codes in the tiled layout of layout.h plus their quantisation parameters.
//
// `PackedWeights` owns its memory; `PackedWeightsView` points at memory someone else owns (a
// memory-mapped `.edge` file, a TFLite buffer converted once). Plans (fully_connected.h,
// conv2d.h) take a view and never copy the packed codes, so the owner must outlive the plan.
//
// Quantisation. Integer weight = code - zero_point[n] (int8: int8(code) - zero_point[n]); real
// weight = scale[n] * (code - zero_point[n]) * group_scale[n][k / group_size] (the group factor
// only when group_size > 0). `scales` has 1 entry (per tensor) or N (per output channel).
// Zero points here are in the *code* domain; pack_weights() converts from TFLite's q domain.
//
// The format of each weight type, and type-specific helpers, are in int8.h, int4.h, ternary.h
// and int2.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "edge/aligned_buffer.h"
#include "edge/packing/layout.h"

namespace edge {

struct PackedWeightsView {
  WeightType type = WeightType::kInt8;
  int32_t n = 0;                         // output channels
  int32_t k = 0;                         // reduction length
  const uint8_t* data = nullptr;         // packed_bytes(type, n, k) bytes, layout.h
  const int32_t* zero_points = nullptr;  // [n], code domain
  const float* scales = nullptr;         // [num_scales]
  int32_t num_scales = 0;                // 1 (per tensor) or n (per channel)
  int32_t group_size = 0;                // 0: no per-group scales; else a multiple of block_k
  const float* group_scales = nullptr;   // [n][num_groups()] when group_size > 0

  int32_t num_groups() const { return group_size > 0 ? (k + group_size - 1) / group_size : 0; }
  std::size_t data_bytes() const {
    return packed_bytes(type, static_cast<std::size_t>(n), static_cast<std::size_t>(k));
  }
  float scale(int32_t channel) const { return scales[num_scales == 1 ? 0 : channel]; }
  // The code of weight (channel, kk) (a slow accessor for tests and unpacking).
  uint8_t code(int32_t channel, int32_t kk) const;
  // Throws std::invalid_argument (naming the field) when the view is inconsistent: sizes,
  // missing pointers, zero points outside the code range, group size not a multiple of block_k.
  void validate() const;
};

class PackedWeights {
 public:
  PackedWeights() = default;
  // Zero-filled storage for the given shape: codes all 0, zero points 0, scales 1, no groups.
  PackedWeights(WeightType type, int32_t n, int32_t k);

  WeightType type() const { return type_; }
  int32_t n() const { return n_; }
  int32_t k() const { return k_; }
  AlignedBuffer<uint8_t>& data() { return data_; }
  const AlignedBuffer<uint8_t>& data() const { return data_; }
  std::vector<int32_t>& zero_points() { return zero_points_; }
  const std::vector<int32_t>& zero_points() const { return zero_points_; }
  std::vector<float>& scales() { return scales_; }
  const std::vector<float>& scales() const { return scales_; }
  int32_t group_size() const { return group_size_; }
  const std::vector<float>& group_scales() const { return group_scales_; }
  // Sets per-group scales ([n][ceil(k / group_size)] row-major); group_size 0 removes them.
  void set_group_scales(int32_t group_size, const float* group_scales);

  PackedWeightsView view() const;

 private:
  WeightType type_ = WeightType::kInt8;
  int32_t n_ = 0, k_ = 0;
  AlignedBuffer<uint8_t> data_;
  std::vector<int32_t> zero_points_;
  std::vector<float> scales_;
  int32_t group_size_ = 0;
  std::vector<float> group_scales_;
};

// Packs quantised weights given as TFLite does: `values` [n][k] row-major holds q in the type's
// range (int8 [-128, 127], int4 [-8, 7], ternary [-1, 1], int2 [-2, 1]); real = scale * (q - zp).
// `scales` has num_scales (1 or n) entries; `zero_points` (q domain, nullable = all 0) has n.
// Ternary weights must have zero point 0. Throws std::invalid_argument naming the first
// offending value (channel, k) or parameter.
PackedWeights pack_weights(WeightType type, const int8_t* values, int32_t n, int32_t k,
                           const float* scales, int32_t num_scales,
                           const int32_t* zero_points = nullptr);

// Packs raw codes ([n][k] row-major, 0..max_code) with code-domain zero points (nullable: the
// type's natural zero point, -value_offset). The inverse of codes read back with view.code().
PackedWeights pack_codes(WeightType type, const uint8_t* codes, int32_t n, int32_t k,
                         const float* scales, int32_t num_scales,
                         const int32_t* code_zero_points = nullptr);

// The inverse of pack_weights: q values [n][k] (int8) and q-domain zero points [n] (nullable).
void unpack_weights(const PackedWeightsView& weights, int8_t* values,
                    int32_t* zero_points = nullptr);

}  // namespace edge
