// Measured read bandwidth of this machine, for benchmarks that report "GB/s of weight traffic
// against the memory bandwidth" (benchmarks/kernels.py).
#pragma once

#include <cstddef>

#include "edge/thread_pool.h"

namespace edge {

// Streams a buffer of `bytes` (split over the pool's threads, nullptr = this thread) `repeats`
// times with plain loads and returns the best pass in GB/s (1e9 bytes per second). A buffer much
// larger than the last-level cache measures DRAM; one that fits measures that cache level.
double read_bandwidth_gbps(std::size_t bytes, int repeats, ThreadPool* pool = nullptr);

}  // namespace edge
