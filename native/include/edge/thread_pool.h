// A fixed-size thread pool for kernels: parallel_for over a task range, nothing allocated per
// call.
//
// The calling thread takes part as thread 0, so ThreadPool(1) starts no thread at all and runs
// everything inline. Workers spin briefly after a job (kernel layers come back to back, and a
// futex wake-up costs tens of microseconds, as much as a whole M=1 layer) and then sleep on a
// condition variable, so an idle pool costs no CPU. Tasks are handed out one at a time from an
// atomic counter, which balances uneven tasks and cores that other processes share.
//
// Two schedules: parallel_for hands tasks out dynamically (balances uneven tasks and cores that
// other processes share); parallel_for_static gives thread t the tasks t, t + N, t + 2N, ...,
// the same ones on every call, so that a layer run again and again finds "its" weights still in
// the core's own L2 (what the plans use).
//
// One job at a time: parallel_for must not be called concurrently on the same pool, nor from
// inside a task. Tasks must not throw (kernels do not).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace edge {

class ThreadPool {
 public:
  // num_threads <= 0: one per physical core (physical_core_count()).
  explicit ThreadPool(int num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Calls fn(task, thread) for every task in [0, num_tasks) and returns when all are done;
  // thread is in [0, num_threads()), 0 being the caller. `fn` is called through a pointer, so
  // lambdas with captures cost no allocation.
  template <typename F>
  void parallel_for(std::size_t num_tasks, const F& fn) {
    run(num_tasks, [](const void* ctx, std::size_t task, int thread) {
      (*static_cast<const F*>(ctx))(task, thread);
    }, &fn, false);
  }

  // Like parallel_for, with task i always run by thread i % num_threads().
  template <typename F>
  void parallel_for_static(std::size_t num_tasks, const F& fn) {
    run(num_tasks, [](const void* ctx, std::size_t task, int thread) {
      (*static_cast<const F*>(ctx))(task, thread);
    }, &fn, true);
  }

 private:
  using TaskFn = void (*)(const void* ctx, std::size_t task, int thread);
  void run(std::size_t num_tasks, TaskFn fn, const void* ctx, bool static_schedule);
  void worker(int index);
  void work(int thread);

  int num_threads_ = 1;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_;
  int sleepers_ = 0;  // guarded by mutex_
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> generation_{0};
  std::atomic<std::size_t> next_task_{0};
  std::atomic<int> busy_{0};
  // The current job; written before generation_ is bumped (release), read after (acquire).
  TaskFn fn_ = nullptr;
  const void* ctx_ = nullptr;
  std::size_t num_tasks_ = 0;
  bool static_ = false;
};

// A process-wide pool with one thread per physical core, created on first use.
ThreadPool& default_thread_pool();

}  // namespace edge
