// A fixed-size thread pool for kernels: parallel_for over a task range, nothing allocated per
// call, built to hold up when other processes share the cores and on big.LITTLE CPUs.
//
// Scheduling. Each thread owns a share of the tasks and runs it in order; a thread that is done
// with its share takes the remaining tasks of the others one at a time, from the back of their
// shares (work stealing, as XNNPACK's pthreadpool does). (Stop 29 tried odd threads running their
// block back to front, so that a thief's tasks stay one run beside its own: a third fewer tasks
// changed thread per inference and no inference got faster; dropped at stop 30, moves() kept.)
// With the cores to itself every thread runs just its own share; when a core is taken by another process, or is a slow little
// core, the threads that run take the late one's tasks instead of waiting for it. The caller takes
// part as thread 0 and waits only for the tasks in flight, never for a worker to wake up: a
// worker that arrives after its share is gone finds nothing to do and goes back to waiting.
//
// Waiting. Workers spin briefly between jobs (kernel layers come back to back, and a futex
// wake-up costs tens of microseconds, as much as a whole M=1 layer), then sleep on a futex
// (condition variable off Linux), so an idle pool costs no CPU. The caller spins briefly for
// the last tasks in flight, then sleeps too, so that under contention the core goes to the
// thread it waits for. EDGE_POOL_SPIN_US sets the spin time (default 20 microseconds). While
// no thread beyond one per CPU is runnable (runnable_threads() of /proc/loadavg, re-read every
// 50 us), nobody waits for the core a spinning thread holds: then threads spin on for up to
// EDGE_POOL_IDLE_SPIN_US more (default 1000; 0: never), as XNNPACK's pthreadpool spins, so
// that a layer after a stretch on one thread (a small ADD, a MEAN) finds its workers awake.
//
// Sharing the CPUs. A fork/join job on more runnable threads than CPUs waits, job after job,
// for whichever of its threads the scheduler has taken off its core: with one busy process on
// a 2-core host (3 runnable threads on 2 cores) the MobileNet-like model ran 2.3-3.5 ms on 2
// threads against 1.9 ms on 1, and the ResNet-like 5.7 ms against 5.1. The pool watches its
// workers' run delay (the time they were runnable but waited for a CPU: schedstat, re-read at
// most once a millisecond), which counts only the threads the scheduler preferred to ours, not
// lower-priority load that yields to us. When the workers waited a quarter of a window of
// parallel jobs or more beyond a wake-up's usual 50 us per scheduling (workers_contended()), or a caller waited for a late worker (longer than
// kLateNs and than its own tasks took, for a job's last tasks or for a worker to leave the
// previous job: a worker descheduled in a task holds it a time slice of another process), the
// next jobs run on the caller alone for a back-off time (1 ms at first, doubling while parallel
// jobs keep coming back contended, up to 32 ms; EDGE_POOL_BACKOFF_US sets the first, 0 turns
// both rules off), then the workers are tried again. An idle host keeps every thread.
//
// Placement. A worker woken on the CPU its caller ran on as it opened the job (the scheduler's
// "wake affine" choice) would run only while the caller waits; it moves itself off that CPU
// (unstack(), counted by unstacked()) to another its affinity allows, and keeps that affinity.
//
// Two shares: parallel_for gives thread t a contiguous block of tasks; parallel_for_static
// gives it tasks t, t + N, t + 2N, .... Both give a thread the same tasks on every call, so that
// a layer run again and again finds "its" weights still in the core's own L2. The layers use
// parallel_for: their tasks are numbered so that a contiguous block is whole weight chunks
// (gemm_plan.h, WorkSplit), and neighbouring tasks' outputs meet in a cache line only at the
// block's ends. Either way a task may be run by another thread when its owner is late:
// `thread` is the thread that runs it (for per-thread scratch), and results must not depend
// on it.
//
// Pinning. With EDGE_THREAD_AFFINITY=big (or Affinity::kBigCores) the workers run only on the
// fastest cores of the process's CPU set (highest cpu_capacity, else cpuinfo_max_freq, in
// /sys/devices/system/cpu), and a pool built with num_threads <= 0 gets one thread per such
// core. The calling thread is never re-pinned.
//
// Calls: one job at a time per pool; concurrent callers are serialised. A parallel_for from
// inside a task of the same pool runs inline on that thread (with its thread index). Tasks
// must not throw (kernels do not).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>  // cpu_set_t (move_off_cpu)
#endif

namespace edge {

enum class Affinity {
  kNone,      // the scheduler places the workers
  kBigCores,  // workers only on the fastest cores (see big_cores())
};

// EDGE_THREAD_AFFINITY: "big" -> kBigCores; unset, "" or "none" -> kNone. Anything else
// throws std::invalid_argument naming the variable and the value.
Affinity affinity_from_env();

// The fastest CPUs among `allowed` by the sysfs tree at `sysfs_cpu_dir` (normally
// /sys/devices/system/cpu): those with the highest cpuN/cpu_capacity, else the highest
// cpuN/cpufreq/cpuinfo_max_freq. Returns `allowed` unchanged when neither file is readable for
// all of them, i.e. when the cores cannot be told apart.
std::vector<int> fastest_cpus(const std::string& sysfs_cpu_dir, const std::vector<int>& allowed);
// fastest_cpus() of this process's CPU set from /sys/devices/system/cpu (empty off Linux).
std::vector<int> big_cores();

// The runnable threads of the whole system from a /proc/loadavg file (its fourth field,
// "running/total"); -1 when the file cannot be read or is malformed.
int runnable_threads(const std::string& loadavg_path);

// The run delay (ns runnable but waiting for a CPU) and the scheduling count of a
// /proc/<pid>/task/<tid>/schedstat line ("cpu_ns delay_ns slices"); false if malformed.
bool parse_schedstat(const char* text, int64_t* delay_ns, int64_t* slices);
// Whether `workers` workers that waited delay_ns in all for a CPU, over `slices` schedulings,
// in window_ns of parallel jobs were contended: beyond 50 us per scheduling (a wake-up's
// usual wait), a quarter of the window each, on average, or more.
bool workers_contended(int64_t delay_ns, int64_t slices, int64_t window_ns, int workers);

// The largest count <= n that gives each of `threads` threads a whole number of parts (n
// itself when n <= threads): a job of that many parts in contiguous shares (parallel_for) gives
// thread t the t-th part of a range, the part the row-split layer before it wrote on that
// thread (3 parts on 2 threads gave one thread a third). Used by the element-wise ranges
// (runtime/op_kernel.h, parallel_ranges) and the indirect conv's input pass (conv2d.cc).
template <typename T>
constexpr T whole_parts_per_thread(T n, T threads) {
  return threads > 0 && n > threads ? n - n % threads : n;
}

#if defined(__linux__)
// What move_off_cpu() did to the calling thread.
enum class MoveOff {
  kStayed,         // its affinity allows no CPU but `cpu`, or could not be read or narrowed
  kMoved,          // moved off `cpu`, its own affinity set again
  kRestoreFailed,  // moved off `cpu`, but setting its own affinity again failed: it is left
                   // on the narrowed set (its own minus `cpu`)
};
// Sets the calling thread's affinity (sched_setaffinity(0, ...) in the pool; tests stand in a
// failing one). Returns 0 on success.
using SetOwnAffinity = int (*)(const cpu_set_t& set);
// Moves the calling thread off `cpu`: its affinity without that CPU (the kernel migrates a
// thread off a CPU its new mask excludes before the call returns), then its own affinity again
// through `set`. ThreadPool's unstack().
MoveOff move_off_cpu(int cpu, SetOwnAffinity set);
#endif

class ThreadPool {
 public:
  // num_threads <= 0: one per physical core the constructing thread may run on
  // (usable_core_count(): `taskset -c 0` gives one), or per big core with Affinity::kBigCores.
  explicit ThreadPool(int num_threads = 0);
  ThreadPool(int num_threads, Affinity affinity);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }
  // The CPUs the workers are pinned to (empty: not pinned).
  const std::vector<int>& pinned_cpus() const { return pinned_cpus_; }
  // Jobs so far whose caller waited for a late worker, and sampling windows whose workers
  // waited for a CPU (workers_contended()); each started or extended a serial back-off.
  uint64_t late_jobs() const {
    std::lock_guard<std::mutex> lock(run_mutex_);
    return late_jobs_;
  }
  uint64_t contended_windows() const {
    std::lock_guard<std::mutex> lock(run_mutex_);
    return contended_windows_;
  }
  // Jobs whose worker was woken on the CPU the caller ran on and moved off it (unstack()).
  uint64_t unstacked() const { return unstacked_.load(std::memory_order_relaxed); }
  // Moves whose worker could not be given its own affinity back (MoveOff::kRestoreFailed):
  // after the first, the pool moves no worker again (each move would narrow a worker's set
  // for good), and such a worker is not counted in unstacked().
  uint64_t unstack_failures() const { return unstack_failures_.load(std::memory_order_relaxed); }

  // What the calls so far ran on: the caller's own counts (a profile takes the difference
  // around one layer to say how many threads ran it and why). `parallel`: jobs handed to the
  // workers; `backed_off`: calls run on the caller alone because the pool was backing off;
  // `single_task`: calls of one task (run by the caller, nothing to share). Concurrent
  // callers' single-task calls (which take no lock) are all counted.
  struct Calls {
    uint64_t parallel = 0, backed_off = 0, single_task = 0;
  };
  Calls calls() const {
    return {parallel_calls_.load(std::memory_order_relaxed),
            backed_off_calls_.load(std::memory_order_relaxed),
            single_task_calls_.load(std::memory_order_relaxed)};
  }

  // The most threads a job handed to the workers since the last call could use (its tasks,
  // up to num_threads()), and resets it to 0: a profile takes it around one layer to say how
  // many threads ran it (a pool of 4 given a 3-task job ran it on 3). Call from the thread
  // that calls parallel_for.
  int take_widest_job() { return widest_job_.exchange(0, std::memory_order_relaxed); }

  // Who ran which tasks of the jobs handed to the workers under parallel_for (contiguous shares),
  // over the pool's life: a count for the far-die analysis in docs/kernels.md (Threads), edge-run's
  // JSON; kept only with EDGE_POOL_MOVES=1 (all 0 otherwise: the count reads every share after
  // each job, on the caller's path to the next one). `stolen`: tasks run by a
  // thread other than their share's owner. `boundaries`: places along a job's tasks where the
  // thread that ran them changes (a layer split by rows reads a halo row of its input across each).
  // `moved`: tasks of a job whose place, as a fraction of the job, another thread ran in the
  // previous such job (for layers split by rows, which read the rows the layer before wrote: rows
  // read from the other core's cache). Exact on 2 threads; with more, a stolen task's thief is not
  // recorded and its place counts as moved.
  struct Moves {
    uint64_t jobs = 0, stolen = 0, boundaries = 0;
    double moved = 0;
  };
  Moves moves() const {
    std::lock_guard<std::mutex> lock(run_mutex_);
    return moves_;
  }
  // Calls fn(task, thread) for every task in [0, num_tasks) and returns when all are done;
  // thread is in [0, num_threads()), 0 being the caller. `fn` is called through a pointer, so
  // lambdas with captures cost no allocation.
  template <typename F>
  void parallel_for(std::size_t num_tasks, const F& fn) {
    run(num_tasks, &call<F>, &fn, false);
  }

  // Like parallel_for, with task i owned by thread i % num_threads() (run by it unless that
  // thread is late and another one has taken it).
  template <typename F>
  void parallel_for_static(std::size_t num_tasks, const F& fn) {
    run(num_tasks, &call<F>, &fn, true);
  }

 private:
  using TaskFn = void (*)(const void* ctx, std::size_t task, int thread);
  template <typename F>
  static void call(const void* ctx, std::size_t task, int thread) {
    (*static_cast<const F*>(ctx))(task, thread);
  }

  // One thread's share of the current job: tasks base + i * stride for i in [0, count). The
  // owner claims indices 0, 1, ... and thieves count - 1, count - 2, ....
  struct alignas(64) Share {
    std::atomic<int64_t> left{0};  // not yet claimed; a claim is a successful decrement
    std::atomic<int64_t> back{0};  // thieves take index back - 1 (decremented per theft)
    int64_t front = 0;             // the owner's next index (owner only)
    int64_t count = 0;
    std::size_t base = 0, stride = 1;
    std::size_t task(int64_t i) const { return base + static_cast<std::size_t>(i) * stride; }
  };

  void run(std::size_t num_tasks, TaskFn fn, const void* ctx, bool static_schedule);
  void run_job(TaskFn fn, const void* ctx, std::size_t offset, std::size_t num_tasks,
               bool static_schedule);
  void worker(int index);
  // Moves the calling worker off `cpu` (the caller's): its affinity without that CPU, then its
  // own affinity again (none where that CPU is the only one it may run on).
  void unstack(int cpu);
  // Called when a spin of spin_ns_ from `start` is over: true (and a later *deadline) to spin
  // on while the idle spin lasts and no other thread waits for a CPU.
  bool keep_spinning(int64_t start, int64_t* deadline) const;
  void work(int thread);
  // After a parallel_for job of num_tasks: adds it to moves_ (runner map against the last).
  void note_moves(std::size_t num_tasks);
  uint32_t wait_for_job(uint32_t seen);
  // Returns how long the caller waited (0: the job was done when its own work ended).
  int64_t wait_until_done();
  // After a job whose caller waited `waited_ns` for its workers, having run its own tasks in
  // `own_ns`: starts or extends the serial back-off when that wait says a worker was late.
  void note_wait(int64_t now, int64_t waited_ns, int64_t own_ns);
  // Starts the serial back-off at `now` (doubled when the parallel stretch since the last one,
  // up to `since`, was short).
  void back_off(int64_t now, int64_t since);
  // The workers' summed run delay and scheduling count (schedstat); false if unreadable.
  bool workers_schedstat(int64_t* delay_ns, int64_t* slices);

  int num_threads_ = 1;
  std::vector<int> pinned_cpus_;
  std::atomic<int> caller_cpu_{-1};  // where the caller ran as it opened the current job
  std::atomic<uint64_t> unstacked_{0};
  std::atomic<uint64_t> unstack_failures_{0};  // unstack() off once non-zero
  std::vector<std::thread> threads_;
  std::vector<Share> shares_;  // one per thread, allocated once
  mutable std::mutex run_mutex_;  // one job at a time
  int64_t spin_ns_ = 20000;
  int64_t idle_spin_ns_ = 0;
  int cpus_ = 1;  // CPUs this process may use, at construction

  // Odd: a job is open; even: none. Bumped by the caller to open and to close each job.
  std::atomic<uint32_t> generation_{0};
  std::atomic<uint32_t> sleepers_{0};     // workers asleep (or about to) on generation_
  std::atomic<uint32_t> active_{0};       // workers inside an open job (reading its state)
  std::atomic<uint32_t> pending_{0};      // tasks of the job not yet finished
  std::atomic<uint32_t> caller_waiting_{0};
  std::atomic<bool> stop_{false};
  // Serial back-off (under run_mutex_): jobs before serial_until_ns_ run on the caller alone.
  int64_t first_backoff_ns_ = 0;  // 0: never back off
  int64_t backoff_ns_ = 0;        // the current back-off
  int64_t serial_until_ns_ = 0;
  // calls(): the parallel and backed-off counts are written under run_mutex_ only (a load
  // and a store: no atomic add on the hot path), atomics so that another thread may read them.
  // The single-task count is bumped outside the lock, by any number of concurrent callers: an
  // atomic add (a load and a store lost counts there).
  static void count(std::atomic<uint64_t>& c) {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  std::atomic<uint64_t> parallel_calls_{0}, backed_off_calls_{0}, single_task_calls_{0};
  std::atomic<int> widest_job_{0};  // take_widest_job(); raised under run_mutex_
  bool count_moves_ = false;  // moves() kept (EDGE_POOL_MOVES)
  // moves() (under run_mutex_): the last job's runner map, [lo, hi) fractions of the job and
  // the thread that ran them (-1 - t: a thief of thread t's share, unknown), 2 per thread.
  struct Run {
    double lo = 0, hi = 0;
    int thread = 0;
  };
  std::vector<Run> runs_, last_runs_;
  Moves moves_;
  uint64_t late_jobs_ = 0;
  uint64_t contended_windows_ = 0;
  // The run-delay rule (under run_mutex_): the workers' schedstat, sampled every kSampleNs.
  std::vector<std::atomic<int>> worker_tids_;  // written by each worker as it starts
  std::vector<int> stat_fds_;                  // their schedstat files, opened on first use
  int64_t last_delay_ns_ = -1;
  int64_t last_slices_ = 0;
  int64_t sampled_ns_ = INT64_MIN / 2;
  // The current job; written while generation_ is even and no worker is active.
  TaskFn fn_ = nullptr;
  const void* ctx_ = nullptr;
  std::size_t offset_ = 0;
};

// A process-wide pool with one thread per physical core, created on first use.
ThreadPool& default_thread_pool();

}  // namespace edge
