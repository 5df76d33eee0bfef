// Builds small .edge images with the generated FlatBuffers API (shared by the runtime tests).
// Besides well-formed models it makes the hostile ones the hardening tests need: tensors sharing
// one buffer, buffers and int64 vectors at misaligned offsets, any quantisation parameters.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "edge_generated.h"

namespace edge_test {

namespace fmt = edge::fmt;

// Quantisation parameters as the file holds them.
struct Quant {
  std::vector<float> scale;
  std::vector<int64_t> zero_point;
  int32_t axis = 0;
  int32_t block_size = 0;
  // Write the zero points as a vector whose elements sit at 4 mod 8 from the buffer start
  // (legal for the Verifier, which only checks 4-byte alignment of a vector): `skew` 0 or 1
  // moves it by 4 bytes, so that one of the two lands misaligned.
  bool misaligned_zero_points = false;
  int skew = 0;
};

class Builder {
 public:
  Builder() { buffers_.push_back(fmt::CreateBuffer(b_)); }

  int tensor(const char* name, std::vector<int32_t> shape, fmt::DType dtype, float scale,
             int64_t zp, const std::vector<uint8_t>* data = nullptr,
             fmt::Storage storage = fmt::Storage::PLAIN) {
    uint32_t buffer = 0;
    if (data != nullptr) buffer = add_buffer(*data);
    Quant q;
    if (scale > 0) {
      q.scale = {scale};
      q.zero_point = {zp};
    }
    return tensor_on(name, std::move(shape), dtype, buffer, q, storage);
  }

  // A tensor on buffer `buffer` (0: none) with quantisation `q` (no scales: none).
  int tensor_on(const char* name, std::vector<int32_t> shape, fmt::DType dtype, uint32_t buffer,
                const Quant& q, fmt::Storage storage = fmt::Storage::PLAIN) {
    flatbuffers::Offset<fmt::Quantization> qo = 0;
    if (!q.scale.empty()) {
      auto scale = b_.CreateVector(q.scale);
      flatbuffers::Offset<flatbuffers::Vector<int64_t>> zp = 0;
      if (q.misaligned_zero_points) {
        zp = misaligned_int64_vector(q.zero_point, q.skew);
      } else if (!q.zero_point.empty()) {
        zp = b_.CreateVector(q.zero_point);
      }
      qo = fmt::CreateQuantization(b_, scale, zp, q.axis, q.block_size);
    }
    tensors_.push_back(fmt::CreateTensorDirect(b_, name, &shape, dtype, buffer, storage, qo));
    return static_cast<int>(tensors_.size() - 1);
  }

  // A buffer aligned as the Python writer aligns them (16 bytes); returns its index.
  uint32_t add_buffer(const std::vector<uint8_t>& data) {
    buffers_.push_back(fmt::CreateBufferDirect(b_, &data));
    return static_cast<uint32_t>(buffers_.size() - 1);
  }

  // A buffer whose data is only 4-byte aligned: `skew` 0 or 1 moves it by 4 bytes (one of the
  // two is at 4 mod 8, misaligned for INT64 values).
  uint32_t add_unaligned_buffer(const std::vector<uint8_t>& data, int skew) {
    if (skew) b_.PushElement<uint32_t>(0);
    auto vec = b_.CreateVector(data);  // uint8: aligned to the 4-byte length only
    buffers_.push_back(fmt::CreateBuffer(b_, vec));
    return static_cast<uint32_t>(buffers_.size() - 1);
  }

  void op(fmt::OpType type, std::vector<int32_t> ins, std::vector<int32_t> outs,
          fmt::OpOptions otype = fmt::OpOptions::NONE, flatbuffers::Offset<void> opts = 0) {
    ops_.push_back(fmt::CreateOperatorDirect(b_, type, &ins, &outs, otype, opts));
  }

  flatbuffers::FlatBufferBuilder& fbb() { return b_; }

  std::vector<uint8_t> finish(std::vector<int32_t> inputs, std::vector<int32_t> outputs,
                              uint16_t major = 1) {
    std::vector<flatbuffers::Offset<fmt::SubGraph>> sgs = {
        fmt::CreateSubGraphDirect(b_, "main", &tensors_, &ops_, &inputs, &outputs)};
    auto model = fmt::CreateModelDirect(b_, major, 0, "test", &sgs, &buffers_);
    fmt::FinishModelBuffer(b_, model);
    std::vector<uint8_t> bytes(b_.GetBufferPointer(), b_.GetBufferPointer() + b_.GetSize());
    for (const Patch& p : patches_) {
      // Vector offsets count from the end of the finished buffer.
      const std::size_t at = bytes.size() - p.offset_from_end;
      std::memcpy(bytes.data() + at, &p.length, sizeof(p.length));
    }
    return bytes;
  }

 private:
  struct Patch {
    uint32_t offset_from_end;
    uint32_t length;
  };

  // Written as a byte vector (4-byte aligned) whose length is patched to the int64 count
  // after finish().
  flatbuffers::Offset<flatbuffers::Vector<int64_t>> misaligned_int64_vector(
      const std::vector<int64_t>& values, int skew) {
    if (skew) b_.PushElement<uint32_t>(0);
    std::vector<uint8_t> raw(values.size() * sizeof(int64_t));
    if (!raw.empty()) std::memcpy(raw.data(), values.data(), raw.size());
    auto vec = b_.CreateVector(raw);
    patches_.push_back({vec.o, static_cast<uint32_t>(values.size())});
    return flatbuffers::Offset<flatbuffers::Vector<int64_t>>(vec.o);
  }

  flatbuffers::FlatBufferBuilder b_;
  std::vector<flatbuffers::Offset<fmt::Tensor>> tensors_;
  std::vector<flatbuffers::Offset<fmt::Buffer>> buffers_;
  std::vector<flatbuffers::Offset<fmt::Operator>> ops_;
  std::vector<Patch> patches_;
};

}  // namespace edge_test
