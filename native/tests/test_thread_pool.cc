// The thread pool (edge/thread_pool.h): every task run once, results independent of the
// schedule, late threads' shares taken by the others, sleeping and waking, nesting, concurrent
// callers, shutdown, and the big-core selection from a (fake) sysfs tree.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#if defined(__linux__)
#include <sched.h>
#endif

#include "edge/thread_pool.h"
#include "test_main.h"

namespace {

using Clock = std::chrono::steady_clock;

// Runs `body` with EDGE_POOL_SPIN_US set to `spin_us` ("" leaves the default).
template <typename F>
void with_spin(const char* spin_us, const F& body) {
  const char* old = std::getenv("EDGE_POOL_SPIN_US");
  const std::string saved = old != nullptr ? old : "";
  if (*spin_us != '\0') {
    setenv("EDGE_POOL_SPIN_US", spin_us, 1);
  } else {
    unsetenv("EDGE_POOL_SPIN_US");
  }
  body();
  if (old != nullptr) {
    setenv("EDGE_POOL_SPIN_US", saved.c_str(), 1);
  } else {
    unsetenv("EDGE_POOL_SPIN_US");
  }
}

// A task whose cost depends on its index; the value depends only on the index.
uint32_t uneven_value(std::size_t t) {
  uint32_t h = static_cast<uint32_t>(t) * 2654435761u;
  const std::size_t rounds = 1 + (t % 7 == 0 ? 4000 : t % 5 * 50);
  for (std::size_t r = 0; r < rounds; ++r) h = h * 1664525u + 1013904223u + static_cast<uint32_t>(r);
  return h;
}

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

}  // namespace

EDGE_TEST(thread_pool_every_task_once_1_to_8_threads) {
  for (const char* spin : {"", "0"}) {
    with_spin(spin, [&] {
      for (int threads : {1, 2, 3, 4, 8}) {
        edge::ThreadPool pool(threads, edge::Affinity::kNone);
        EDGE_CHECK(pool.num_threads() == threads);
        for (std::size_t tasks : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{7},
                                  std::size_t{64}, std::size_t{1000}}) {
          for (bool static_schedule : {false, true}) {
            std::vector<std::atomic<int>> hits(tasks);
            for (auto& h : hits) h.store(0);
            std::atomic<bool> thread_ok{true};
            auto fn = [&](std::size_t t, int thread) {
              hits[t].fetch_add(1);
              if (thread < 0 || thread >= threads) thread_ok.store(false);
            };
            if (static_schedule) {
              pool.parallel_for_static(tasks, fn);
            } else {
              pool.parallel_for(tasks, fn);
            }
            bool once = true;
            for (auto& h : hits) once = once && h.load() == 1;
            EDGE_CHECK(once);
            EDGE_CHECK(thread_ok.load());
          }
        }
      }
    });
  }
}

EDGE_TEST(thread_pool_uneven_work_is_bit_exact_with_serial) {
  const std::size_t tasks = 3001;
  std::vector<uint32_t> expected(tasks);
  for (std::size_t t = 0; t < tasks; ++t) expected[t] = uneven_value(t);
  for (int threads : {2, 3, 4}) {
    edge::ThreadPool pool(threads, edge::Affinity::kNone);
    for (int round = 0; round < 4; ++round) {
      std::vector<uint32_t> out(tasks, 0);
      auto fn = [&](std::size_t t, int) { out[t] = uneven_value(t); };
      if (round % 2 == 0) {
        pool.parallel_for_static(tasks, fn);
      } else {
        pool.parallel_for(tasks, fn);
      }
      EDGE_CHECK(out == expected);
    }
  }
}

// Thousands of back-to-back jobs (the spinning path), then jobs far apart (workers asleep on
// the futex, with no spinning at all when EDGE_POOL_SPIN_US=0).
EDGE_TEST(thread_pool_serial_calls_back_to_back_and_after_sleep) {
  for (const char* spin : {"", "0"}) {
    with_spin(spin, [&] {
      edge::ThreadPool pool(3, edge::Affinity::kNone);
      std::atomic<uint64_t> sum{0};
      uint64_t want = 0;
      for (int job = 0; job < 3000; ++job) {
        const std::size_t tasks = 1 + static_cast<std::size_t>(job % 9);
        for (std::size_t t = 0; t < tasks; ++t) want += t + 1;
        pool.parallel_for_static(tasks, [&](std::size_t t, int) { sum.fetch_add(t + 1); });
      }
      EDGE_CHECK(sum.load() == want);
      for (int job = 0; job < 5; ++job) {
        sleep_ms(3);  // past the spin time: the workers sleep
        std::atomic<int> count{0};
        pool.parallel_for(50, [&](std::size_t, int) { count.fetch_add(1); });
        EDGE_CHECK(count.load() == 50);
      }
    });
  }
}

// A parallel_for from inside a task of the same pool runs inline, on that thread.
EDGE_TEST(thread_pool_nested_call_runs_inline) {
  edge::ThreadPool pool(2, edge::Affinity::kNone);
  std::vector<std::atomic<int>> hits(8 * 16);
  for (auto& h : hits) h.store(0);
  std::atomic<bool> same_thread{true};
  pool.parallel_for(8, [&](std::size_t outer, int thread) {
    const auto me = std::this_thread::get_id();
    pool.parallel_for(16, [&](std::size_t inner, int inner_thread) {
      if (inner_thread != thread || std::this_thread::get_id() != me) same_thread.store(false);
      hits[outer * 16 + inner].fetch_add(1);
    });
  });
  bool once = true;
  for (auto& h : hits) once = once && h.load() == 1;
  EDGE_CHECK(once);
  EDGE_CHECK(same_thread.load());
}

// Two threads calling one pool at once: the jobs are serialised, each complete.
EDGE_TEST(thread_pool_concurrent_callers_are_serialised) {
  edge::ThreadPool pool(2, edge::Affinity::kNone);
  std::atomic<bool> ok{true};
  auto caller = [&](int seed) {
    for (int job = 0; job < 300; ++job) {
      const std::size_t tasks = 2 + static_cast<std::size_t>((job + seed) % 11);
      std::vector<int> hits(tasks, 0);
      pool.parallel_for(tasks, [&](std::size_t t, int) { hits[t] += 1; });
      for (int h : hits) {
        if (h != 1) ok.store(false);
      }
    }
  };
  std::thread a(caller, 0), b(caller, 5);
  a.join();
  b.join();
  EDGE_CHECK(ok.load());
}

EDGE_TEST(thread_pool_shutdown_while_idle) {
  for (const char* spin : {"", "0"}) {
    with_spin(spin, [&] {
      { edge::ThreadPool fresh(4, edge::Affinity::kNone); }  // destroyed before any job
      edge::ThreadPool* pool = new edge::ThreadPool(4, edge::Affinity::kNone);
      std::atomic<int> count{0};
      pool->parallel_for(40, [&](std::size_t, int) { count.fetch_add(1); });
      sleep_ms(5);  // workers asleep
      const auto t0 = Clock::now();
      delete pool;
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      EDGE_CHECK(count.load() == 40);
      EDGE_CHECK(ms < 2000);
    });
  }
}

// A thread that stops mid-run (descheduled by another process, or a slow little core) keeps the
// task it is in, and the others take the rest of its share: with a static split the whole
// layer waited for it.
EDGE_TEST(thread_pool_late_thread_share_is_taken_by_the_others) {
  for (bool static_schedule : {true, false}) {
    for (int late : {1, 0}) {  // a worker late, then the caller itself
      edge::ThreadPool pool(2, edge::Affinity::kNone);
      std::atomic<int> per_thread[2];
      per_thread[0].store(0);
      per_thread[1].store(0);
      std::atomic<bool> slept{false};
      std::vector<std::atomic<int>> hits(32);
      for (auto& h : hits) h.store(0);
      auto fn = [&](std::size_t t, int thread) {
        per_thread[thread].fetch_add(1);
        hits[t].fetch_add(1);
        if (thread == late && !slept.exchange(true)) sleep_ms(300);
      };
      if (static_schedule) {
        pool.parallel_for_static(hits.size(), fn);
      } else {
        pool.parallel_for(hits.size(), fn);
      }
      bool once = true;
      for (auto& h : hits) once = once && h.load() == 1;
      EDGE_CHECK(once);
      // The late thread ran the one task it was in (or none, if it never got a share).
      if (per_thread[late].load() > 1) {
        std::fprintf(stderr, "late thread %d ran %d of 32 tasks (static=%d)\n", late,
                     per_thread[late].load(), static_cast<int>(static_schedule));
      }
      EDGE_CHECK(per_thread[late].load() <= 1);
    }
  }
}

EDGE_TEST(thread_pool_fastest_cpus_from_sysfs) {
  char dir[] = "/tmp/edge_sysfs_XXXXXX";
  EDGE_CHECK(mkdtemp(dir) != nullptr);
  const std::string root = dir;
  auto write = [&](const std::string& rel, const std::string& text) {
    std::ofstream(root + "/" + rel) << text << "\n";
  };
  for (int cpu = 0; cpu < 6; ++cpu) {
    const std::string c = root + "/cpu" + std::to_string(cpu);
    mkdir(c.c_str(), 0700);
    mkdir((c + "/cpufreq").c_str(), 0700);
  }
  // No files at all: the cores cannot be told apart.
  EDGE_CHECK((edge::fastest_cpus(root, {0, 1, 2}) == std::vector<int>{0, 1, 2}));
  // Frequencies only (e.g. a 2+4 phone without cpu_capacity).
  const char* freq[] = {"1800000", "1800000", "1800000", "1800000", "2800000", "2800000"};
  for (int cpu = 0; cpu < 6; ++cpu) {
    write("cpu" + std::to_string(cpu) + "/cpufreq/cpuinfo_max_freq", freq[cpu]);
  }
  EDGE_CHECK((edge::fastest_cpus(root, {0, 1, 2, 3, 4, 5}) == std::vector<int>{4, 5}));
  EDGE_CHECK((edge::fastest_cpus(root, {0, 1, 5}) == std::vector<int>{5}));
  EDGE_CHECK((edge::fastest_cpus(root, {0, 1}) == std::vector<int>{0, 1}));
  // cpu_capacity wins over the frequency where every CPU has it.
  const char* cap[] = {"1024", "1024", "446", "446", "446", "446"};
  for (int cpu = 0; cpu < 6; ++cpu) write("cpu" + std::to_string(cpu) + "/cpu_capacity", cap[cpu]);
  EDGE_CHECK((edge::fastest_cpus(root, {0, 1, 2, 3, 4, 5}) == std::vector<int>{0, 1}));
  EDGE_CHECK((edge::fastest_cpus(root, {2, 3}) == std::vector<int>{2, 3}));
  // A CPU outside the tree: falls back to the frequencies... which it lacks too: all allowed.
  EDGE_CHECK((edge::fastest_cpus(root, {0, 9}) == std::vector<int>{0, 9}));
  EDGE_CHECK(edge::fastest_cpus(root, {}).empty());
  for (int cpu = 0; cpu < 6; ++cpu) {
    const std::string c = root + "/cpu" + std::to_string(cpu);
    std::remove((c + "/cpufreq/cpuinfo_max_freq").c_str());
    std::remove((c + "/cpu_capacity").c_str());
    rmdir((c + "/cpufreq").c_str());
    rmdir(c.c_str());
  }
  rmdir(root.c_str());
}

EDGE_TEST(thread_pool_affinity_from_env) {
  unsetenv("EDGE_THREAD_AFFINITY");
  EDGE_CHECK(edge::affinity_from_env() == edge::Affinity::kNone);
  setenv("EDGE_THREAD_AFFINITY", "big", 1);
  EDGE_CHECK(edge::affinity_from_env() == edge::Affinity::kBigCores);
  setenv("EDGE_THREAD_AFFINITY", "none", 1);
  EDGE_CHECK(edge::affinity_from_env() == edge::Affinity::kNone);
  setenv("EDGE_THREAD_AFFINITY", "little", 1);
  bool threw = false;
  try {
    edge::affinity_from_env();
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("little") != std::string::npos;
  }
  EDGE_CHECK(threw);
  unsetenv("EDGE_THREAD_AFFINITY");
  setenv("EDGE_POOL_SPIN_US", "soon", 1);
  threw = false;
  try {
    edge::ThreadPool pool(2, edge::Affinity::kNone);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("EDGE_POOL_SPIN_US") != std::string::npos;
  }
  EDGE_CHECK(threw);
  unsetenv("EDGE_POOL_SPIN_US");
}

#if defined(__linux__)
// Pinned workers run only on the big cores (on a host whose cores are all alike: any of them).
EDGE_TEST(thread_pool_pins_workers_to_big_cores) {
  edge::ThreadPool pool(2, edge::Affinity::kBigCores);
  const std::vector<int> big = edge::big_cores();
  EDGE_CHECK(!big.empty());
  EDGE_CHECK(pool.pinned_cpus() == big);
  std::atomic<bool> inside{true};
  std::atomic<int> worker_tasks{0};
  for (int round = 0; round < 50 && worker_tasks.load() == 0; ++round) {
    pool.parallel_for(64, [&](std::size_t, int thread) {
      if (thread == 0) return;
      worker_tasks.fetch_add(1);
      cpu_set_t set;
      CPU_ZERO(&set);
      sched_getaffinity(0, sizeof(set), &set);
      for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (!CPU_ISSET(cpu, &set)) continue;
        bool listed = false;
        for (int b : big) listed = listed || b == cpu;
        if (!listed) inside.store(false);
      }
    });
  }
  EDGE_CHECK(inside.load());
  edge::ThreadPool unpinned(2, edge::Affinity::kNone);
  EDGE_CHECK(unpinned.pinned_cpus().empty());
}
#endif
