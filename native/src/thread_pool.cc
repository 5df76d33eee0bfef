#include "edge/thread_pool.h"

#include <chrono>

#include "edge/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace edge {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ __volatile__("yield");
#endif
}

// How long a worker keeps polling for the next job before it sleeps. Long enough to bridge the
// gap between two layers of a model, short enough that an idle pool gives its core back.
constexpr auto kSpinTime = std::chrono::microseconds(200);

}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  num_threads_ = num_threads > 0 ? num_threads : physical_core_count();
  threads_.reserve(static_cast<std::size_t>(num_threads_ - 1));
  for (int i = 1; i < num_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::work(int thread) {
  const TaskFn fn = fn_;
  const void* ctx = ctx_;
  const std::size_t count = num_tasks_;
  if (static_) {
    for (std::size_t task = static_cast<std::size_t>(thread); task < count;
         task += static_cast<std::size_t>(num_threads_)) {
      fn(ctx, task, thread);
    }
    return;
  }
  for (;;) {
    const std::size_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= count) break;
    fn(ctx, task, thread);
  }
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    // Spin, then sleep, until a new generation (job or stop) is published.
    uint64_t gen = generation_.load(std::memory_order_acquire);
    if (gen == seen) {
      const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
      int polls = 0;
      while ((gen = generation_.load(std::memory_order_acquire)) == seen) {
        cpu_relax();
        if (++polls % 64 == 0 && std::chrono::steady_clock::now() > deadline) break;
      }
      if (gen == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        ++sleepers_;
        wake_.wait(lock, [&] {
          return generation_.load(std::memory_order_acquire) != seen;
        });
        --sleepers_;
        gen = generation_.load(std::memory_order_acquire);
      }
    }
    seen = gen;
    if (stop_.load(std::memory_order_acquire)) return;  // set before its generation bump
    work(index);
    busy_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run(std::size_t num_tasks, TaskFn fn, const void* ctx, bool static_schedule) {
  if (num_tasks == 0) return;
  if (num_threads_ == 1 || num_tasks == 1) {
    for (std::size_t t = 0; t < num_tasks; ++t) fn(ctx, t, 0);
    return;
  }
  static_ = static_schedule;
  fn_ = fn;
  ctx_ = ctx;
  num_tasks_ = num_tasks;
  next_task_.store(0, std::memory_order_relaxed);
  busy_.store(num_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  {
    // A worker that is about to sleep holds the mutex while it re-checks the generation, so
    // taking it here orders our bump before that check or our notify after its wait.
    std::lock_guard<std::mutex> lock(mutex_);
    if (sleepers_ > 0) wake_.notify_all();
  }
  work(0);
  int polls = 0;
  while (busy_.load(std::memory_order_acquire) != 0) {
    cpu_relax();
    if (++polls % 1024 == 0) std::this_thread::yield();
  }
}

ThreadPool& default_thread_pool() {
  static ThreadPool pool(0);
  return pool;
}

}  // namespace edge
