// Internal: per delegate node, whether a call runs on the delegate's thread pool or on the
// calling thread alone, chosen from the node's own timed calls.
//
// Why: a claimed node of a few microseconds of work on 2 threads pays the pool's hand-off (wake
// the worker, join it) on every call, and what that costs depends on where the host placed the
// two vCPUs and on what else runs. On the 2-vCPU Zen 4 host FC 1024x1024 ternary took 6.6 us on
// one thread and, on two, 4.4-4.8 us where the split paid and 7.4-15.4 us where it did not
// (invoke only, alternated with stock LiteRT, round medians: benchmarks/delegate_alternate.py);
// in benchmarks/subbyte.py's separate processes 0.0163-0.0271 ms against 0.0186-0.0189 ms on one
// thread (benchmarks/results/subbyte-delegate-2026-12-07.md). So neither "always split" nor a
// fixed size threshold is right everywhere. As XNNPACK skips the split for small work, but from
// measurement: each node times its calls both ways and keeps the faster, re-checked as it runs.
//
// The rule: a trial of kSamples calls on the calling thread alone, then 1 + kSamples on the pool
// (the first not kept: the workers may have gone to sleep while the caller ran alone); the pool
// is kept when its median is at most kMargin of the serial median (ties stay serial: one core,
// no hand-off). After kRecheckCalls calls the trial runs again, so a change of placement or of
// load is followed within ~1000 calls. The claim rule (cost_rule.h) counts on this: a claimed
// node costs at most about its 1-thread time, whatever the placement.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>

namespace edge {
namespace delegate {

class ThreadChoice {
 public:
  static constexpr int kSamples = 8;
  static constexpr int64_t kRecheckCalls = 1024;
  static constexpr double kMargin = 0.95;

  enum class Phase { kSerialTrial, kParallelTrial, kSettled };

  // Whether the next call runs on the pool (false: on the calling thread alone).
  bool parallel_next() const {
    return phase_ == Phase::kParallelTrial || (phase_ == Phase::kSettled && parallel_);
  }

  // The duration of the call just made, the way parallel_next() said.
  void record(int64_t ns) {
    switch (phase_) {
      case Phase::kSerialTrial:
        serial_[count_++] = ns;
        if (count_ == kSamples) {
          phase_ = Phase::kParallelTrial;
          count_ = -1;  // the first call on the pool is not kept
        }
        break;
      case Phase::kParallelTrial:
        if (count_ >= 0) parallel_ns_[count_] = ns;
        if (++count_ == kSamples) settle();
        break;
      case Phase::kSettled:
        if (++count_ >= kRecheckCalls) restart();
        break;
    }
  }

  // A new trial now (the node's input shape changed).
  void restart() {
    phase_ = Phase::kSerialTrial;
    count_ = 0;
  }

  Phase phase() const { return phase_; }
  // The last decision (false before the first trial ends) and the medians it compared (ns).
  bool parallel() const { return parallel_; }
  int64_t serial_median_ns() const { return serial_median_; }
  int64_t parallel_median_ns() const { return parallel_median_; }
  uint64_t trials() const { return trials_; }

 private:
  static int64_t median(std::array<int64_t, kSamples> v) {
    std::nth_element(v.begin(), v.begin() + kSamples / 2, v.end());
    const int64_t hi = v[kSamples / 2];
    const int64_t lo = *std::max_element(v.begin(), v.begin() + kSamples / 2);
    return (lo + hi) / 2;
  }

  void settle() {
    serial_median_ = median(serial_);
    parallel_median_ = median(parallel_ns_);
    parallel_ = static_cast<double>(parallel_median_) <=
                kMargin * static_cast<double>(serial_median_);
    ++trials_;
    phase_ = Phase::kSettled;
    count_ = 0;
  }

  Phase phase_ = Phase::kSerialTrial;
  int64_t count_ = 0;
  bool parallel_ = false;
  std::array<int64_t, kSamples> serial_{}, parallel_ns_{};
  int64_t serial_median_ = 0, parallel_median_ = 0;
  uint64_t trials_ = 0;
};

}  // namespace delegate
}  // namespace edge
