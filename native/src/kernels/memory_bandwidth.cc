#include "edge/kernels/memory_bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "edge/aligned_buffer.h"

namespace edge {
namespace {

// Eight independent XOR chains over 64-byte lines: the compiler vectorises this into wide loads
// and the result is stored so the loads cannot be dropped.
uint64_t read_range(const uint64_t* p, std::size_t words) {
  uint64_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (std::size_t i = 0; i + 8 <= words; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] ^= p[i + j];
  }
  uint64_t r = 0;
  for (uint64_t a : acc) r ^= a;
  return r;
}

}  // namespace

double read_bandwidth_gbps(std::size_t bytes, int repeats, ThreadPool* pool) {
  const std::size_t words = std::max<std::size_t>(bytes / 8, 64);
  AlignedBuffer<uint64_t> buf(words);
  for (std::size_t i = 0; i < words; ++i) buf[i] = i * 0x9E3779B97F4A7C15ull;
  const int threads = pool != nullptr ? pool->num_threads() : 1;
  std::vector<uint64_t> sink(static_cast<std::size_t>(threads) * 8, 0);
  const std::size_t chunk = (words / static_cast<std::size_t>(threads) + 7) / 8 * 8;
  double best = 0.0;
  for (int r = 0; r < std::max(repeats, 1) + 1; ++r) {  // the first pass only warms up
    const auto t0 = std::chrono::steady_clock::now();
    auto task = [&](std::size_t t, int thread) {
      const std::size_t begin = std::min(words, t * chunk);
      const std::size_t end = std::min(words, begin + chunk);
      sink[static_cast<std::size_t>(thread) * 8] ^= read_range(buf.data() + begin, end - begin);
    };
    if (pool != nullptr) {
      pool->parallel_for(static_cast<std::size_t>(threads), task);
    } else {
      task(0, 0);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) best = std::max(best, static_cast<double>(words * 8) / s / 1e9);
  }
  volatile uint64_t keep = 0;
  for (uint64_t v : sink) keep = keep ^ v;
  (void)keep;
  return best;
}

}  // namespace edge
