#include "edge/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "edge/cpu_features.h"

#if defined(__linux__)
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

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

// Sleep while `word` holds `expected` (spurious returns allowed); wake every sleeper of `word`.
#if defined(__linux__)
void sleep_while(std::atomic<uint32_t>& word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}
void wake_all(std::atomic<uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
}
#else
std::mutex& park_mutex() {
  static std::mutex m;
  return m;
}
std::condition_variable& park_cv() {
  static std::condition_variable cv;
  return cv;
}
void sleep_while(std::atomic<uint32_t>& word, uint32_t expected) {
  std::unique_lock<std::mutex> lock(park_mutex());
  if (word.load(std::memory_order_seq_cst) == expected) park_cv().wait(lock);
}
void wake_all(std::atomic<uint32_t>&) {
  std::lock_guard<std::mutex> lock(park_mutex());
  park_cv().notify_all();
}
#endif

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// How long a thread polls before it sleeps (EDGE_POOL_SPIN_US overrides). Long enough to
// bridge the gap between two layers, short enough that a thread waiting on a late one does not
// keep the core that one needs: on the 2-core host with another process spinning, 20 us gave
// the ResNet-like model on 2 threads 6 ms where 100 us gave 8-43 ms and 500 us 35-42 ms
// (benchmarks/results/contention-2026-12-06.md).
constexpr int64_t kDefaultSpinNs = 20000;

// The runnable count of a /proc/loadavg line ("0.20 0.18 0.12 2/345 9876": 2), -1 if malformed.
int parse_runnable(const char* text) {
  const char* p = text;
  for (int field = 0; field < 3; ++field) {
    while (*p == ' ') ++p;
    while (*p != '\0' && *p != ' ') ++p;
  }
  while (*p == ' ') ++p;
  if (*p < '0' || *p > '9') return -1;
  long v = 0;
  for (; *p >= '0' && *p <= '9'; ++p) {
    v = v * 10 + (*p - '0');
    if (v > 1000000000L) return -1;
  }
  return *p == '/' ? static_cast<int>(v) : -1;
}

// How much longer a thread polls when no other thread waits for a CPU (runnable_threads() <=
// the CPUs this process may use; EDGE_POOL_IDLE_SPIN_US overrides, 0: never longer). Nobody
// loses a core to it then, and the gaps it bridges are those between layers that stay on one
// thread (a small ADD, MEAN) and a layer's end: a worker that slept there cost the next layer
// a futex wake-up, 7 us for the caller and 4-5 us before the worker ran (2-core Zen 4 VM).
// With another thread runnable, only the short spin above.
constexpr int64_t kDefaultIdleSpinNs = 1000000;

// A job's caller that waits longer than this for its last tasks (and longer than its own
// tasks took) or for a worker to leave the previous job is waiting on a thread the scheduler
// has taken off its core: a worker running normally finishes within one task, tens of
// microseconds, while a descheduled one comes back a time slice later (EEVDF's 0.75-3 ms).
constexpr int64_t kLateNs = 200000;
// The first serial back-off after a late job (EDGE_POOL_BACKOFF_US overrides, 0: never) and the
// longest one: each late job that comes within the back-off's own length of parallel running
// after the last one doubles it.
constexpr int64_t kDefaultBackoffNs = 1000000;
constexpr int64_t kMaxBackoffNs = 32000000;

// An on/off switch (EDGE_POOL_MOVES): unset, "" or "0": off; "1": on; anything else throws
// naming it.
bool switch_from_env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0' || std::string(v) == "0") return false;
  if (std::string(v) == "1") return true;
  throw std::invalid_argument(std::string(name) + ": expected '0' or '1', got '" + v + "'");
}

int64_t us_from_env(const char* name, int64_t default_ns) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return default_ns;
  char* end = nullptr;
  const long us = std::strtol(v, &end, 10);
  if (*end != '\0' || us < 0 || us > 1000000) {
    throw std::invalid_argument(std::string(name) + ": expected microseconds in [0, 1000000], "
                                "got '" + v + "'");
  }
  return static_cast<int64_t>(us) * 1000;
}

// The CPUs this process may run on (1 where that cannot be read).
int allowed_cpu_count() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return 1;
}

// runnable_threads("/proc/loadavg") through a descriptor opened once (pread: no seek state).
int system_runnable_threads() {
#if defined(__linux__)
  static const int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[128];
  const ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return -1;
  buf[n] = '\0';
  return parse_runnable(buf);
#else
  return -1;
#endif
}

// How often run() re-reads the workers' run delay (a pread of a schedstat file costs 1-2 us; a
// MobileNet-like inference is ~70 jobs in ~1 ms).
constexpr int64_t kSampleNs = 1000000;

// The run delay and scheduling count of the thread whose schedstat file is open as `fd`
// (/proc/self/task/TID/schedstat); false if unreadable.
bool thread_schedstat(int fd, int64_t* delay_ns, int64_t* slices) {
#if defined(__linux__)
  if (fd < 0) return false;
  char buf[96];
  const ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return false;
  buf[n] = '\0';
  return parse_schedstat(buf, delay_ns, slices);
#else
  (void)fd, (void)delay_ns, (void)slices;
  return false;
#endif
}

// Reads one integer from a file; false when it is missing or unreadable.
bool read_long(const std::string& path, long long* value) {
  std::ifstream f(path);
  return static_cast<bool>(f >> *value);
}

// The pool and thread index of the task running on this thread (a nested call runs inline).
thread_local const void* tl_pool = nullptr;
thread_local int tl_thread = 0;

// Jobs are cut into pieces of at most this many tasks (pending_ is 32-bit).
constexpr std::size_t kMaxJob = std::size_t{1} << 30;

}  // namespace

Affinity affinity_from_env() {
  const char* v = std::getenv("EDGE_THREAD_AFFINITY");
  if (v == nullptr || *v == '\0' || std::string(v) == "none") return Affinity::kNone;
  if (std::string(v) == "big") return Affinity::kBigCores;
  throw std::invalid_argument(std::string("EDGE_THREAD_AFFINITY: expected 'big' or 'none', got '") +
                              v + "'");
}

std::vector<int> fastest_cpus(const std::string& sysfs_cpu_dir, const std::vector<int>& allowed) {
  for (const char* file : {"/cpu_capacity", "/cpufreq/cpuinfo_max_freq"}) {
    std::vector<long long> value(allowed.size());
    bool all = !allowed.empty();
    for (std::size_t i = 0; i < allowed.size() && all; ++i) {
      all = read_long(sysfs_cpu_dir + "/cpu" + std::to_string(allowed[i]) + file, &value[i]);
    }
    if (!all) continue;
    const long long best = *std::max_element(value.begin(), value.end());
    std::vector<int> out;
    for (std::size_t i = 0; i < allowed.size(); ++i) {
      if (value[i] == best) out.push_back(allowed[i]);
    }
    return out;
  }
  return allowed;
}

namespace {
// The CPUs this thread may run on (empty where that cannot be read).
std::vector<int> allowed_cpus() {
  std::vector<int> allowed;
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return {};
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) allowed.push_back(cpu);
  }
#endif
  return allowed;
}

// The CPU this thread runs on now, -1 where that cannot be known (getcpu through the vDSO:
// tens of nanoseconds).
int current_cpu() {
#if defined(__linux__)
  return sched_getcpu();
#else
  return -1;
#endif
}
}  // namespace

std::vector<int> big_cores() {
#if defined(__linux__)
  const std::vector<int> allowed = allowed_cpus();
  if (allowed.empty()) return {};
  return fastest_cpus("/sys/devices/system/cpu", allowed);
#else
  return {};
#endif
}

ThreadPool::ThreadPool(int num_threads) : ThreadPool(num_threads, affinity_from_env()) {}

ThreadPool::ThreadPool(int num_threads, Affinity affinity) {
  spin_ns_ = us_from_env("EDGE_POOL_SPIN_US", kDefaultSpinNs);
  idle_spin_ns_ = us_from_env("EDGE_POOL_IDLE_SPIN_US", kDefaultIdleSpinNs);
  first_backoff_ns_ = us_from_env("EDGE_POOL_BACKOFF_US", kDefaultBackoffNs);
  backoff_ns_ = first_backoff_ns_;
  count_moves_ = switch_from_env("EDGE_POOL_MOVES");
  cpus_ = allowed_cpu_count();
  if (affinity == Affinity::kBigCores) pinned_cpus_ = big_cores();
  if (num_threads > 0) {
    num_threads_ = num_threads;
  } else if (!pinned_cpus_.empty()) {
    // One per big core, SMT siblings included only when there are no more physical cores.
    num_threads_ = std::max(1, std::min(static_cast<int>(pinned_cpus_.size()),
                                        physical_core_count()));
  } else {
    num_threads_ = usable_core_count();
  }
  shares_ = std::vector<Share>(static_cast<std::size_t>(num_threads_));
  worker_tids_ = std::vector<std::atomic<int>>(static_cast<std::size_t>(num_threads_));
  stat_fds_.assign(static_cast<std::size_t>(num_threads_), -1);
  runs_.reserve(2 * static_cast<std::size_t>(num_threads_));
  last_runs_.reserve(2 * static_cast<std::size_t>(num_threads_));
  threads_.reserve(static_cast<std::size_t>(num_threads_ - 1));
  for (int i = 1; i < num_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_seq_cst);
  generation_.fetch_add(2, std::memory_order_seq_cst);  // parity kept: no job is open
  wake_all(generation_);
  for (auto& t : threads_) t.join();
#if defined(__linux__)
  for (int fd : stat_fds_) {
    if (fd >= 0) close(fd);
  }
#endif
}

bool ThreadPool::keep_spinning(int64_t start, int64_t* deadline) const {
  // Past the short spin: poll on, 50 us at a time, while the idle spin lasts and no thread
  // beyond one per CPU is runnable (ours included: a spinning thread is one of them).
  const int64_t now = now_ns();
  if (now - start >= spin_ns_ + idle_spin_ns_) return false;
  const int runnable = system_runnable_threads();
  if (runnable < 0 || runnable > cpus_) return false;
  *deadline = std::min(now + 50000, start + spin_ns_ + idle_spin_ns_);
  return true;
}

bool parse_schedstat(const char* text, int64_t* delay_ns, int64_t* slices) {
  const char* p = text;
  int64_t field[3];
  for (int f = 0; f < 3; ++f) {
    while (*p == ' ') ++p;
    if (*p < '0' || *p > '9') return false;
    int64_t v = 0;
    for (; *p >= '0' && *p <= '9'; ++p) {
      if (v > (INT64_MAX - 9) / 10) return false;
      v = v * 10 + (*p - '0');
    }
    field[f] = v;
  }
  if (*p != ' ' && *p != '\n' && *p != '\0') return false;
  *delay_ns = field[1];
  *slices = field[2];
  return true;
}

bool workers_contended(int64_t delay_ns, int64_t slices, int64_t window_ns, int workers) {
  // Each wake-up waits a little for its CPU (tens of us on a busy host, even when the waker
  // gets it at once); only the delay beyond kWakeDelayNs per scheduling counts.
  constexpr int64_t kWakeDelayNs = 50000;
  const int64_t excess = delay_ns - slices * kWakeDelayNs;
  return workers > 0 && window_ns > 0 && excess * 4 > window_ns * workers;
}

int runnable_threads(const std::string& loadavg_path) {
  std::ifstream f(loadavg_path);
  std::string line;
  if (!std::getline(f, line)) return -1;
  return parse_runnable(line.c_str());
}

uint32_t ThreadPool::wait_for_job(uint32_t seen) {
  uint32_t gen = generation_.load(std::memory_order_acquire);
  if (gen != seen) return gen;
  const int64_t start = now_ns();
  int64_t deadline = start + spin_ns_;
  for (int polls = 1;; ++polls) {
    cpu_relax();
    gen = generation_.load(std::memory_order_acquire);
    if (gen != seen) return gen;
    if (polls % 64 == 0 && now_ns() > deadline && !keep_spinning(start, &deadline)) break;
  }
  for (;;) {
    // Announce the sleep before the last look: the caller bumps generation_ and then reads
    // sleepers_ (both seq_cst), so either it sees us and wakes us, or we see its bump; and the
    // futex sleeps only while the word still holds `seen`.
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    gen = generation_.load(std::memory_order_seq_cst);
    if (gen == seen) sleep_while(generation_, seen);
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
    gen = generation_.load(std::memory_order_acquire);
    if (gen != seen) return gen;
  }
}

void ThreadPool::worker(int index) {
#if defined(__linux__)
  worker_tids_[static_cast<std::size_t>(index)].store(static_cast<int>(syscall(SYS_gettid)),
                                                      std::memory_order_release);
#endif
#if defined(__linux__)
  if (!pinned_cpus_.empty()) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int cpu : pinned_cpus_) CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof(set), &set);  // best effort: a refusal leaves it unpinned
  }
#endif
  uint32_t seen = 0;
  for (;;) {
    seen = wait_for_job(seen);
    if (stop_.load(std::memory_order_acquire)) return;
    if ((seen & 1u) == 0) continue;  // a job opened and closed while we were away
    // Enter the job only if it is still the one we saw: the caller closes a job (even
    // generation), then waits for active_ == 0 before it writes the next one.
    active_.fetch_add(1, std::memory_order_seq_cst);
    if (generation_.load(std::memory_order_seq_cst) == seen) {
      // Woken on the CPU the caller ran on as it opened the job: one of the two is not
      // running, and the job would run one thread after the other (below).
      const int caller = caller_cpu_.load(std::memory_order_relaxed);
      if (caller >= 0 && unstack_failures_.load(std::memory_order_relaxed) == 0 &&
          current_cpu() == caller) {
        unstack(caller);
      }
      work(index);
    }
    active_.fetch_sub(1, std::memory_order_release);
  }
}

void ThreadPool::unstack(int cpu) {
  // A sleeping worker is woken where the scheduler finds room, often on the waker's own CPU
  // ("wake affine"); once there it runs only when the caller waits, job after job, and after
  // the caller's 20 us spin and a futex round trip: the MobileNet-like model's 15-run edge-run
  // calls at 2 threads took 3.0-3.3 ms (1 thread: 2.67) in the runs where 261-380 of ~1000 jobs
  // had the worker on the caller's CPU, 1.48-1.51 ms where none had (loaded 2-core Zen 4 host,
  // 06:20 UTC 2026-12-07). A mask without that CPU moves it at once (the kernel migrates a
  // thread off a CPU its new mask excludes before sched_setaffinity returns); its own mask
  // again right after, so that the scheduler may still place it anywhere it could before.
  // That mask is read here, not remembered from the pool's start: the thread's affinity may
  // have been narrowed since (`taskset -a -p`, the application pinning its threads), and a
  // worker allowed only the caller's CPU stays there.
#if defined(__linux__)
  // `own` is a superset of the mask accepted a moment ago, so setting it again fails only
  // where something changed in between (a cpuset rewritten, a seccomp or LSM rule): then the
  // worker keeps the narrowed set, and further moves would narrow it more (or another
  // worker's) for good; the pool stops moving workers and says so (unstack_failures()).
  switch (move_off_cpu(cpu, [](const cpu_set_t& set) {
    return sched_setaffinity(0, sizeof(set), &set);
  })) {
    case MoveOff::kMoved:
      unstacked_.fetch_add(1, std::memory_order_relaxed);
      break;
    case MoveOff::kRestoreFailed:
      unstack_failures_.fetch_add(1, std::memory_order_relaxed);
      break;
    case MoveOff::kStayed:
      break;
  }
#else
  (void)cpu;
#endif
}

#if defined(__linux__)
MoveOff move_off_cpu(int cpu, SetOwnAffinity set) {
  cpu_set_t own;
  CPU_ZERO(&own);
  if (sched_getaffinity(0, sizeof(own), &own) != 0) return MoveOff::kStayed;
  cpu_set_t away = own;
  CPU_CLR(cpu, &away);
  if (CPU_COUNT(&away) == 0 || set(away) != 0) return MoveOff::kStayed;
  return set(own) == 0 ? MoveOff::kMoved : MoveOff::kRestoreFailed;
}
#endif

void ThreadPool::work(int thread) {
  const TaskFn fn = fn_;
  const void* ctx = ctx_;
  const std::size_t offset = offset_;
  const void* outer_pool = tl_pool;
  const int outer_thread = tl_thread;
  tl_pool = this;
  tl_thread = thread;
  uint32_t done = 0;
  // Our own share, in its order.
  Share& own = shares_[static_cast<std::size_t>(thread)];
  while (own.left.load(std::memory_order_relaxed) > 0 &&
         own.left.fetch_sub(1, std::memory_order_acq_rel) > 0) {
    fn(ctx, offset + own.task(own.front++), thread);
    ++done;
  }
  // Then the others' remaining tasks, from the back of their shares.
  for (int k = 1; k < num_threads_; ++k) {
    const int victim = (thread + k) % num_threads_;
    Share& s = shares_[static_cast<std::size_t>(victim)];
    while (s.left.load(std::memory_order_relaxed) > 0 &&
           s.left.fetch_sub(1, std::memory_order_acq_rel) > 0) {
      fn(ctx, offset + s.task(s.back.fetch_sub(1, std::memory_order_relaxed) - 1), thread);
      ++done;
    }
  }
  tl_pool = outer_pool;
  tl_thread = outer_thread;
  if (done == 0) return;
  if (pending_.fetch_sub(done, std::memory_order_acq_rel) == done &&
      caller_waiting_.load(std::memory_order_seq_cst) != 0) {
    wake_all(pending_);
  }
}

int64_t ThreadPool::wait_until_done() {
  if (pending_.load(std::memory_order_acquire) == 0) return 0;
  const int64_t start = now_ns();
  int64_t deadline = start + spin_ns_;
  for (int polls = 1;; ++polls) {
    cpu_relax();
    if (pending_.load(std::memory_order_acquire) == 0) return now_ns() - start;
    if (polls % 64 == 0 && now_ns() > deadline && !keep_spinning(start, &deadline)) break;
  }
  // The last finisher subtracts, then reads caller_waiting_ (seq_cst): it wakes us or we see 0.
  caller_waiting_.store(1, std::memory_order_seq_cst);
  for (;;) {
    const uint32_t left = pending_.load(std::memory_order_seq_cst);
    if (left == 0) break;
    sleep_while(pending_, left);
  }
  caller_waiting_.store(0, std::memory_order_relaxed);
  return now_ns() - start;
}

void ThreadPool::note_wait(int64_t now, int64_t waited_ns, int64_t own_ns) {
  if (first_backoff_ns_ == 0 || waited_ns <= kLateNs || waited_ns <= own_ns) return;
  ++late_jobs_;
  back_off(now, now - waited_ns);
}

void ThreadPool::back_off(int64_t now, int64_t since) {
  // Parallel running since the last back-off ended, up to `since`: short (the workers were
  // contended again as soon as they came back) doubles the back-off, long starts it afresh.
  const int64_t clean = since - serial_until_ns_;
  backoff_ns_ = serial_until_ns_ != 0 && clean < backoff_ns_ + 2 * kSampleNs
                    ? std::min(2 * backoff_ns_, std::max(kMaxBackoffNs, first_backoff_ns_))
                    : first_backoff_ns_;
  serial_until_ns_ = now + backoff_ns_;
}

bool ThreadPool::workers_schedstat(int64_t* delay_ns, int64_t* slices) {
#if defined(__linux__)
  *delay_ns = 0;
  *slices = 0;
  for (std::size_t i = 1; i < stat_fds_.size(); ++i) {
    if (stat_fds_[i] < 0) {
      const int tid = worker_tids_[i].load(std::memory_order_acquire);
      if (tid == 0) return false;  // not started yet
      const std::string path = "/proc/self/task/" + std::to_string(tid) + "/schedstat";
      stat_fds_[i] = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (stat_fds_[i] < 0) return false;
    }
    int64_t d = 0, n = 0;
    if (!thread_schedstat(stat_fds_[i], &d, &n)) return false;
    *delay_ns += d;
    *slices += n;
  }
  return true;
#else
  (void)delay_ns, (void)slices;
  return false;
#endif
}

void ThreadPool::run_job(TaskFn fn, const void* ctx, std::size_t offset, std::size_t num_tasks,
                         bool static_schedule) {
  // Workers still inside the previous (closed) job read its state: let them leave first.
  if (active_.load(std::memory_order_seq_cst) != 0) {
    const int64_t start = now_ns();
    for (int polls = 1; active_.load(std::memory_order_seq_cst) != 0; ++polls) {
      cpu_relax();
      if (polls % 256 == 0) std::this_thread::yield();
    }
    const int64_t now = now_ns();
    note_wait(now, now - start, 0);
  }
  fn_ = fn;
  ctx_ = ctx;
  offset_ = offset;
  const std::size_t n = static_cast<std::size_t>(num_threads_);
  for (std::size_t t = 0; t < n; ++t) {
    Share& s = shares_[t];
    std::size_t count = 0;
    if (static_schedule) {
      s.base = t;
      s.stride = n;
      count = num_tasks > t ? (num_tasks - t + n - 1) / n : 0;
    } else {
      s.base = num_tasks * t / n;
      s.stride = 1;
      count = num_tasks * (t + 1) / n - s.base;
    }
    s.front = 0;
    s.count = static_cast<int64_t>(count);
    s.left.store(static_cast<int64_t>(count), std::memory_order_relaxed);
    s.back.store(static_cast<int64_t>(count), std::memory_order_relaxed);
  }
  pending_.store(static_cast<uint32_t>(num_tasks), std::memory_order_relaxed);
  caller_cpu_.store(current_cpu(), std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_seq_cst);  // open (odd); publishes the state
  if (sleepers_.load(std::memory_order_seq_cst) != 0) wake_all(generation_);
  const int64_t start = now_ns();
  work(0);
  const int64_t own_done = now_ns();
  const int64_t waited = wait_until_done();
  generation_.fetch_add(1, std::memory_order_seq_cst);  // close (even)
  if (waited > kLateNs) note_wait(own_done + waited, waited, own_done - start);
  if (count_moves_ && !static_schedule) note_moves(num_tasks);
}

void ThreadPool::note_moves(std::size_t num_tasks) {
  // Every task is done (pending_ reached 0 with acquire): each share's `back` is final, and
  // its thieves ran positions [back, count), its owner [0, back).
  const double n = static_cast<double>(num_tasks);
  runs_.clear();
  const auto add = [&](std::size_t lo, std::size_t hi, int thread) {
    if (lo == hi) return;
    if (!runs_.empty() && runs_.back().thread == thread) {
      runs_.back().hi = static_cast<double>(hi) / n;
      return;
    }
    runs_.push_back({static_cast<double>(lo) / n, static_cast<double>(hi) / n, thread});
  };
  for (int t = 0; t < num_threads_; ++t) {
    const Share& s = shares_[static_cast<std::size_t>(t)];
    const auto stolen = static_cast<std::size_t>(s.count - s.back.load(std::memory_order_relaxed));
    const auto owned = static_cast<std::size_t>(s.count) - stolen;
    const int thief = num_threads_ == 2 ? 1 - t : -1 - t;
    moves_.stolen += stolen;
    add(s.base, s.base + owned, t);
    add(s.base + owned, s.base + owned + stolen, thief);
  }
  ++moves_.jobs;
  moves_.boundaries += runs_.size() - 1;
  if (!last_runs_.empty()) {
    // The length of [0, 1) where the two maps name different threads, in tasks of this job.
    double differ = 0;
    std::size_t j = 0;
    for (const Run& r : runs_) {
      while (j < last_runs_.size() && last_runs_[j].hi <= r.lo) ++j;
      for (std::size_t k = j; k < last_runs_.size() && last_runs_[k].lo < r.hi; ++k) {
        if (last_runs_[k].thread == r.thread && r.thread >= 0) continue;
        differ += std::min(r.hi, last_runs_[k].hi) - std::max(r.lo, last_runs_[k].lo);
      }
    }
    moves_.moved += differ * n;
  }
  std::swap(runs_, last_runs_);
}

void ThreadPool::run(std::size_t num_tasks, TaskFn fn, const void* ctx, bool static_schedule) {
  if (num_tasks == 0) return;
  if (num_threads_ == 1 || num_tasks == 1 || tl_pool == this) {
    // Serial: one thread, one task, or a nested call from inside one of our own tasks.
    const int thread = tl_pool == this ? tl_thread : 0;
    if (num_tasks == 1 && num_threads_ > 1 && tl_pool != this) {
      single_task_calls_.fetch_add(1, std::memory_order_relaxed);  // outside the lock
    }
    for (std::size_t t = 0; t < num_tasks; ++t) fn(ctx, t, thread);
    return;
  }
  std::lock_guard<std::mutex> lock(run_mutex_);
  int64_t now = now_ns();
  if (first_backoff_ns_ > 0 && now >= serial_until_ns_ && now - sampled_ns_ >= kSampleNs) {
    // The workers' run delay over the last window of parallel jobs (a window that began
    // before the last back-off ended is only a new baseline).
    int64_t delay = 0, slices = 0;
    const bool read = workers_schedstat(&delay, &slices);
    if (read && last_delay_ns_ >= 0 && sampled_ns_ >= serial_until_ns_ &&
        workers_contended(delay - last_delay_ns_, slices - last_slices_, now - sampled_ns_,
                          num_threads_ - 1)) {
      ++contended_windows_;
      back_off(now, now);
    }
    last_delay_ns_ = read ? delay : -1;
    last_slices_ = slices;
    sampled_ns_ = now;
  }
  if (serial_until_ns_ != 0 && now < serial_until_ns_) {
    // Backing off (workers contended or late): the caller alone, as thread 0 (nested calls
    // inline).
    count(backed_off_calls_);
    const void* outer_pool = tl_pool;
    const int outer_thread = tl_thread;
    tl_pool = this;
    tl_thread = 0;
    for (std::size_t t = 0; t < num_tasks; ++t) fn(ctx, t, 0);
    tl_pool = outer_pool;
    tl_thread = outer_thread;
    return;
  }
  count(parallel_calls_);
  const int width = static_cast<int>(std::min<std::size_t>(num_tasks, num_threads_));
  if (width > widest_job_.load(std::memory_order_relaxed)) {
    widest_job_.store(width, std::memory_order_relaxed);
  }
  for (std::size_t offset = 0; offset < num_tasks; offset += kMaxJob) {
    run_job(fn, ctx, offset, std::min(kMaxJob, num_tasks - offset), static_schedule);
  }
}

ThreadPool& default_thread_pool() {
  static ThreadPool pool(0);
  return pool;
}

}  // namespace edge
