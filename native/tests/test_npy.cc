// edge-run's own .npy reader and writer.
#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "edge/runtime/error.h"
#include "edge/runtime/npy.h"
#include "test_main.h"

using edge::runtime::DType;
using edge::runtime::InputError;

EDGE_TEST(npy_round_trip) {
  const std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -1.0f};
  const auto bytes = edge::runtime::encode_npy(DType::kFloat32, {2, 3}, values.data(),
                                               values.size() * sizeof(float));
  EDGE_CHECK(bytes.size() % 64 == 24);  // 64-byte aligned header + 24 data bytes
  const auto a = edge::runtime::parse_npy(bytes.data(), bytes.size(), "x.npy");
  EDGE_CHECK(a.dtype == DType::kFloat32);
  EDGE_CHECK((a.shape == std::vector<int64_t>{2, 3}));
  EDGE_CHECK(std::memcmp(a.data.data(), values.data(), a.data.size()) == 0);
  const std::vector<int8_t> one = {-5};
  const auto b = edge::runtime::encode_npy(DType::kInt8, {1}, one.data(), 1);
  const std::string header(b.begin() + 10, b.end() - 1);
  EDGE_CHECK(header.find("'shape': (1,)") != std::string::npos);
  EDGE_CHECK(header.find("'descr': '|i1'") != std::string::npos);
}

EDGE_TEST(npy_parses_numpy_headers) {
  // What numpy 1.x/2.x writes for np.zeros((2, 2), np.int32), byte for byte.
  std::string h = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }";
  h.append(128 - 10 - h.size() - 1, ' ');
  h.push_back('\n');
  std::vector<uint8_t> bytes = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                static_cast<uint8_t>(h.size()), 0};
  bytes.insert(bytes.end(), h.begin(), h.end());
  bytes.insert(bytes.end(), 16, 0);
  const auto a = edge::runtime::parse_npy(bytes.data(), bytes.size(), "z.npy");
  EDGE_CHECK(a.dtype == DType::kInt32 && a.num_elements() == 4);
}

EDGE_TEST(npy_rejects_malformed_files) {
  const std::vector<int8_t> v = {1, 2, 3, 4};
  const auto good = edge::runtime::encode_npy(DType::kInt8, {4}, v.data(), 4);
  auto rejects = [](const std::vector<uint8_t>& bytes, const char* needle) {
    try {
      edge::runtime::parse_npy(bytes.data(), bytes.size(), "bad.npy");
    } catch (const InputError& e) {
      return needle == nullptr || std::string(e.what()).find(needle) != std::string::npos;
    }
    return false;
  };
  for (std::size_t n = 0; n < good.size(); ++n) {
    EDGE_CHECK(rejects(std::vector<uint8_t>(good.begin(), good.begin() + n), nullptr));
  }
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  EDGE_CHECK(rejects(longer, "needs 4 data bytes, the file has 5"));
  std::vector<uint8_t> fortran = good;
  const std::string key = "False";
  auto it = std::search(fortran.begin(), fortran.end(), key.begin(), key.end());
  std::memcpy(&*it, "True ", 5);
  EDGE_CHECK(rejects(fortran, "Fortran"));
  std::vector<uint8_t> magic = good;
  magic[1] = 'X';
  EDGE_CHECK(rejects(magic, "magic"));
  // Random corruption of the header never crashes.
  std::mt19937 rng(7);
  for (int i = 0; i < 500; ++i) {
    std::vector<uint8_t> b = good;
    b[rng() % 64] ^= static_cast<uint8_t>(1u << (rng() % 8));
    try {
      edge::runtime::parse_npy(b.data(), b.size(), "fuzz.npy");
    } catch (const InputError&) {
    }
  }
}
