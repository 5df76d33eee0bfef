// Reading and writing NumPy .npy files (format versions 1.0-3.0), so that edge-run needs no
// Python on the device. Only what models use: little-endian (or byte-sized) bool, int8, uint8,
// int16, int32, int64, float16, float32 arrays in C order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "edge/runtime/model.h"

namespace edge {
namespace runtime {

struct NpyArray {
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;  // element bytes, C order, little-endian
  int64_t num_elements() const;
};

// Parses .npy bytes; throws InputError naming `name` and what is wrong (bad magic, truncated
// header, unsupported dtype or Fortran order, data shorter or longer than the shape needs).
NpyArray parse_npy(const uint8_t* bytes, std::size_t size, const std::string& name);
NpyArray read_npy(const std::string& path);

// The .npy type string of a runtime dtype ("|i1", "<f4", ...); throws for sub-byte types.
std::string npy_descr(DType dtype);
// Serialises an array as .npy (version 1.0, header padded to 64 bytes).
std::vector<uint8_t> encode_npy(DType dtype, const std::vector<int64_t>& shape, const void* data,
                                std::size_t bytes);
// Writes to a temporary name beside `path` and renames it (no half-written files).
void write_npy(const std::string& path, DType dtype, const std::vector<int64_t>& shape,
               const void* data, std::size_t bytes);

}  // namespace runtime
}  // namespace edge
