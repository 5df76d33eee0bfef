// edge-run: load a .edge model, run it, time it, report. The on-device runner: one static
// executable with no dependencies, pushed next to the model by `sdk.devices`.
//
//   edge-run model.edge [--inputs x.npy[,y.npy]|random] [--runs 100] [--warmup 10]
//            [--threads N] [--isa NAME] [--outputs out.npy] [--json] [--profile-layers]
//            [--cpus 4-7] [--seed S] [--memory-budget 2G] [--info]
//
// Exit codes: 0 ok, 1 unexpected failure, 2 bad command line, 3 malformed model file,
// 4 model uses something this runtime does not support, 5 bad input, 6 file system error.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "edge/cpu_features.h"
#include "edge/runtime/error.h"
#include "edge/runtime/interpreter.h"
#include "edge/runtime/limits.h"
#include "edge/runtime/model.h"
#include "edge/runtime/npy.h"
#include "edge/thread_pool.h"

#if defined(__linux__)
#include <sched.h>
#include <sys/resource.h>
#include <time.h>
#endif

namespace {

using edge::runtime::DType;
using edge::runtime::Error;

constexpr int kExitOk = 0, kExitFailure = 1, kExitUsage = 2, kExitFormat = 3,
              kExitUnsupported = 4, kExitInput = 5, kExitIo = 6;

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const char* kUsage =
    "usage: edge-run MODEL.edge [options]\n"
    "  --inputs A.npy[,B.npy] | random   input arrays, one per model input (default: random)\n"
    "  --runs N             timed runs (default 100)\n"
    "  --warmup N           untimed runs after the first (default 10)\n"
    "  --threads N          kernel threads (default: physical cores it may run on)\n"
    "  --isa NAME           force the kernel ISA (scalar, avx2, avxvnni, avx512vnni,\n"
    "                       avx512amx, neon, dotprod, i8mm; one this CPU runs)\n"
    "  --cpus LIST          pin to CPUs, e.g. 4-7 or 0,2,4 (Linux)\n"
    "  --outputs OUT.npy    write the outputs (OUT_1.npy, ... for more than one)\n"
    "  --profile-layers     time every layer\n"
    "  --seed S             seed of the random inputs (default 0)\n"
    "  --json               print a JSON report instead of text\n"
    "  --memory-budget SIZE most bytes the model may take: tensors, arena, workspace, prepared\n"
    "                       weights (bytes or K/M/G/T; default $EDGESDK_MEMORY_BUDGET or 2G)\n"
    "  --info               print the model summary and exit\n"
    "exit codes: 0 ok, 1 failure, 2 usage, 3 malformed model, 4 unsupported, 5 bad input, 6 I/O\n";

struct Args {
  std::string model;
  std::string inputs = "random";
  int runs = 100;
  int warmup = 10;
  int threads = 0;
  std::string isa;
  std::string cpus;
  std::string outputs;
  bool profile = false;
  bool json = false;
  bool info = false;
  uint64_t seed = 0;
  uint64_t memory_budget = 0;  // resolved by parse_args: never 0
};

int parse_int(const std::string& flag, const std::string& value, int lo, int hi) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno != 0 || v < lo || v > hi) {
    throw UsageError(flag + " needs an integer in [" + std::to_string(lo) + ", " +
                     std::to_string(hi) + "], got '" + value + "'");
  }
  return static_cast<int>(v);
}

Args parse_args(int argc, char** argv) {
  Args a;
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const std::string& flag) -> std::string {
      const std::size_t eq = arg.find('=');
      if (eq != std::string::npos) return arg.substr(eq + 1);
      if (i + 1 >= argc) throw UsageError(flag + " needs a value");
      return argv[++i];
    };
    auto is = [&](const char* flag) {
      return arg == flag || arg.rfind(std::string(flag) + "=", 0) == 0;
    };
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      std::exit(kExitOk);
    } else if (is("--inputs")) {
      a.inputs = value("--inputs");
    } else if (is("--runs")) {
      a.runs = parse_int("--runs", value("--runs"), 0, 10000000);
    } else if (is("--warmup")) {
      a.warmup = parse_int("--warmup", value("--warmup"), 0, 10000000);
    } else if (is("--threads")) {
      a.threads = parse_int("--threads", value("--threads"), 0, 1024);
    } else if (is("--isa")) {
      a.isa = value("--isa");
    } else if (is("--cpus")) {
      a.cpus = value("--cpus");
    } else if (is("--outputs")) {
      a.outputs = value("--outputs");
    } else if (is("--seed")) {
      a.seed = static_cast<uint64_t>(parse_int("--seed", value("--seed"), 0, 2147483647));
    } else if (is("--memory-budget")) {
      const std::string v = value("--memory-budget");
      try {
        a.memory_budget = edge::runtime::parse_size(v);
      } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--memory-budget: ") + e.what());
      }
    } else if (arg == "--profile-layers") {
      a.profile = true;
    } else if (arg == "--json") {
      a.json = true;
    } else if (arg == "--info") {
      a.info = true;
    } else if (!arg.empty() && arg[0] == '-') {
      throw UsageError("unknown option " + arg);
    } else {
      rest.push_back(arg);
    }
  }
  if (rest.size() != 1) throw UsageError("expected one model file, got " + std::to_string(rest.size()));
  a.model = rest[0];
  if (a.memory_budget == 0) {
    try {
      a.memory_budget = edge::runtime::default_memory_budget();
    } catch (const Error& e) {
      throw UsageError(e.what());
    }
  }
  return a;
}

std::vector<int> parse_cpus(const std::string& text) {
  std::vector<int> cpus;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    const std::size_t dash = part.find('-');
    if (dash == std::string::npos) {
      cpus.push_back(parse_int("--cpus", part, 0, 4095));
    } else {
      const int lo = parse_int("--cpus", part.substr(0, dash), 0, 4095);
      const int hi = parse_int("--cpus", part.substr(dash + 1), 0, 4095);
      if (hi < lo) throw UsageError("--cpus range " + part + " is backwards");
      for (int c = lo; c <= hi; ++c) cpus.push_back(c);
    }
  }
  if (cpus.empty()) throw UsageError("--cpus needs at least one CPU");
  return cpus;
}

void pin_cpus(const std::vector<int>& cpus) {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) {
    if (c >= CPU_SETSIZE) throw UsageError("CPU " + std::to_string(c) + " is out of range");
    CPU_SET(c, &set);
  }
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    throw UsageError(std::string("cannot pin to the requested CPUs: ") + std::strerror(errno));
  }
#else
  (void)cpus;
  throw UsageError("--cpus is only supported on Linux and Android");
#endif
}

// Peak resident set of this process: VmHWM of /proc/self/status, the high-water mark of this
// process's own memory map, which exec makes new. getrusage's ru_maxrss is not that: a process
// keeps the larger of its parent's mark and its own across fork + exec, so edge-run started from a
// Python that holds 180 MB reported 180 MB for a run that used 11. ru_maxrss stays the fallback
// where /proc is not mounted.
long peak_rss_kb() {
#if defined(__linux__)
  if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    long kb = -1;
    while (std::fgets(line, sizeof line, f) != nullptr) {
      if (std::strncmp(line, "VmHWM:", 6) == 0) {
        kb = std::strtol(line + 6, nullptr, 10);
        break;
      }
    }
    std::fclose(f);
    if (kb >= 0) return kb;
  }
  struct rusage ru {};
  if (getrusage(RUSAGE_SELF, &ru) == 0) return ru.ru_maxrss;
#endif
  return -1;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

template <typename T>
std::string json_list(const std::vector<T>& v) {
  std::ostringstream os;
  os << "[";
  for (std::size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  os << "]";
  return os.str();
}

struct Stats {
  double mean = 0, std = 0, min = 0, max = 0, p50 = 0, p90 = 0, p99 = 0;
};

Stats stats_of(std::vector<double> ms) {
  Stats s;
  if (ms.empty()) return s;
  std::sort(ms.begin(), ms.end());
  double sum = 0;
  for (double v : ms) sum += v;
  s.mean = sum / static_cast<double>(ms.size());
  double var = 0;
  for (double v : ms) var += (v - s.mean) * (v - s.mean);
  s.std = std::sqrt(var / static_cast<double>(ms.size()));
  s.min = ms.front();
  s.max = ms.back();
  // Nearest-rank percentiles.
  auto pct = [&](double q) {
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(ms.size())));
    return ms[std::min(ms.size() - 1, rank == 0 ? 0 : rank - 1)];
  };
  s.p50 = pct(0.50);
  s.p90 = pct(0.90);
  s.p99 = pct(0.99);
  return s;
}

void fill_random(DType dtype, void* data, int64_t count, std::mt19937_64& rng) {
  switch (dtype) {
    case DType::kInt8: {
      std::uniform_int_distribution<int> d(-128, 127);
      auto* p = static_cast<int8_t*>(data);
      for (int64_t i = 0; i < count; ++i) p[i] = static_cast<int8_t>(d(rng));
      break;
    }
    case DType::kUInt8: {
      std::uniform_int_distribution<int> d(0, 255);
      auto* p = static_cast<uint8_t*>(data);
      for (int64_t i = 0; i < count; ++i) p[i] = static_cast<uint8_t>(d(rng));
      break;
    }
    case DType::kFloat32: {
      std::uniform_real_distribution<float> d(-1.0f, 1.0f);
      auto* p = static_cast<float*>(data);
      for (int64_t i = 0; i < count; ++i) p[i] = d(rng);
      break;
    }
    case DType::kInt32: {
      std::uniform_int_distribution<int32_t> d(-1000, 1000);
      auto* p = static_cast<int32_t*>(data);
      for (int64_t i = 0; i < count; ++i) p[i] = d(rng);
      break;
    }
    default:
      throw edge::runtime::InputError(std::string("cannot make random inputs of type ") +
                                      edge::runtime::dtype_name(dtype));
  }
}

std::string output_path(const std::string& base, std::size_t i, std::size_t n) {
  if (n == 1) return base;
  std::string stem = base, ext;
  if (base.size() > 4 && base.compare(base.size() - 4, 4, ".npy") == 0) {
    stem = base.substr(0, base.size() - 4);
    ext = ".npy";
  }
  return i == 0 ? base : stem + "_" + std::to_string(i) + ext;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// CPU time of this process, all its threads (the pool's workers, spinning included), in ms; -1
// where the clock is missing. The timed runs' CPU is the difference of two readings taken in
// this process around them: a monotonic clock, so never negative, and free of the load time
// and of time spent waiting for a core (which a wall-clock init_ms subtracted from the whole
// process's rusage was not: benchmarks/contention.py got negative CPU times that way).
double process_cpu_ms() {
#if defined(__linux__)
  timespec ts{};
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0) {
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
  }
#endif
  return -1;
}

std::vector<int64_t> shape64(const std::vector<int32_t>& s) {
  return std::vector<int64_t>(s.begin(), s.end());
}

void print_info_json(const edge::runtime::Model& m) {
  std::ostringstream os;
  os << "{\n  \"model\": " << json_string(m.path()) << ",\n  \"format_version\": \""
     << m.version_major() << "." << m.version_minor() << "\",\n  \"producer\": "
     << json_string(m.metadata().producer) << ",\n  \"quantization_recipe\": "
     << json_string(m.metadata().quantization_recipe) << ",\n  \"source_model_sha256\": "
     << json_string(m.metadata().source_model_sha256) << ",\n  \"file_bytes\": "
     << m.file_bytes() << ",\n  \"constant_bytes\": " << m.constant_bytes()
     << ",\n  \"tensors\": " << m.tensors().size() << ",\n  \"operators\": [";
  for (std::size_t i = 0; i < m.operators().size(); ++i) {
    const auto& op = m.operators()[i];
    os << (i ? ", " : "") << json_string(edge::runtime::op_name(op.type));
  }
  os << "]\n}\n";
  std::cout << os.str();
}

int run(const Args& args) {
  if (!args.cpus.empty()) pin_cpus(parse_cpus(args.cpus));
  const auto t_init = std::chrono::steady_clock::now();
  std::shared_ptr<const edge::runtime::Model> model = edge::runtime::Model::load(args.model, args.memory_budget);
  if (args.info) {
    print_info_json(*model);
    return kExitOk;
  }
  edge::runtime::InterpreterOptions opts;
  opts.threads = args.threads;
  opts.isa = args.isa;
  opts.memory_budget = args.memory_budget;
  edge::runtime::Interpreter interp(model, opts);
  const double init_ms = ms_since(t_init);

  // ---- inputs
  std::vector<std::string> input_sources;
  std::mt19937_64 rng(args.seed);
  if (args.inputs == "random") {
    for (std::size_t i = 0; i < interp.input_count(); ++i) {
      const auto& t = interp.input_tensor(i);
      fill_random(t.dtype, interp.input_data(i), t.num_elements(), rng);
      input_sources.push_back("random");
    }
  } else {
    std::vector<std::string> paths;
    std::stringstream ss(args.inputs);
    std::string part;
    while (std::getline(ss, part, ',')) paths.push_back(part);
    if (paths.size() != interp.input_count()) {
      throw edge::runtime::InputError("the model has " + std::to_string(interp.input_count()) +
                                      " inputs, --inputs names " + std::to_string(paths.size()));
    }
    for (std::size_t i = 0; i < paths.size(); ++i) {
      const auto& t = interp.input_tensor(i);
      const edge::runtime::NpyArray a = edge::runtime::read_npy(paths[i]);
      if (a.dtype != t.dtype || a.shape != shape64(t.shape)) {
        std::ostringstream os;
        os << paths[i] << ": holds " << edge::runtime::dtype_name(a.dtype) << " "
           << json_list(a.shape) << ", but input " << i << " ('" << t.name << "') is "
           << edge::runtime::dtype_name(t.dtype) << " " << json_list(t.shape);
        throw edge::runtime::InputError(os.str());
      }
      interp.set_input(i, a.data.data(), a.data.size());
      input_sources.push_back(paths[i]);
    }
  }

  // ---- runs
  auto t0 = std::chrono::steady_clock::now();
  interp.run();
  const double first_ms = ms_since(t0);
  std::vector<double> warm;
  for (int i = 0; i < args.warmup; ++i) {
    t0 = std::chrono::steady_clock::now();
    interp.run();
    warm.push_back(ms_since(t0));
  }
  interp.set_profiling(args.profile);
  std::vector<double> times;
  times.reserve(static_cast<std::size_t>(args.runs));
  const double cpu0 = process_cpu_ms();
  for (int i = 0; i < args.runs; ++i) {
    t0 = std::chrono::steady_clock::now();
    interp.run();
    times.push_back(ms_since(t0));
  }
  const double cpu1 = process_cpu_ms();
  const bool cpu_known = cpu0 >= 0 && cpu1 >= 0;
  const Stats s = stats_of(times);
  const Stats w = stats_of(warm);

  // ---- outputs
  std::vector<std::string> out_paths;
  if (!args.outputs.empty()) {
    for (std::size_t i = 0; i < interp.output_count(); ++i) {
      const auto& t = interp.output_tensor(i);
      const std::string path = output_path(args.outputs, i, interp.output_count());
      edge::runtime::write_npy(path, t.dtype, shape64(t.shape), interp.output_data(i),
                               t.runtime_bytes());
      out_paths.push_back(path);
    }
  }

  const edge::CpuFeatures& cpu = edge::cpu_features();
  const auto& layers = interp.layer_stats();
  std::ostringstream os;
  if (args.json) {
    os << "{\n";
    os << "  \"model\": " << json_string(args.model) << ",\n";
    os << "  \"format_version\": \"" << model->version_major() << "." << model->version_minor()
       << "\",\n";
    os << "  \"producer\": " << json_string(model->metadata().producer) << ",\n";
    os << "  \"quantization_recipe\": " << json_string(model->metadata().quantization_recipe)
       << ",\n";
    os << "  \"arch\": " << json_string(cpu.arch) << ",\n";
    os << "  \"cpu_features\": [";
    const auto names = cpu.names();
    for (std::size_t i = 0; i < names.size(); ++i) os << (i ? ", " : "") << json_string(names[i]);
    os << "],\n";
    os << "  \"threads\": " << interp.threads() << ",\n";
    os << "  \"cpus\": " << (args.cpus.empty() ? "null" : json_string(args.cpus)) << ",\n";
    os << "  \"model_bytes\": " << model->file_bytes() << ",\n";
    os << "  \"init_ms\": " << json_number(init_ms) << ",\n";
    os << "  \"first_run_ms\": " << json_number(first_ms) << ",\n";
    os << "  \"warmup\": {\"runs\": " << args.warmup << ", \"mean_ms\": "
       << (warm.empty() ? "null" : json_number(w.mean)) << "},\n";
    os << "  \"runs\": " << args.runs << ",\n";
    os << "  \"latency_ms\": {\"mean\": " << json_number(s.mean) << ", \"std\": "
       << json_number(s.std) << ", \"min\": " << json_number(s.min) << ", \"max\": "
       << json_number(s.max) << ", \"p50\": " << json_number(s.p50) << ", \"p90\": "
       << json_number(s.p90) << ", \"p99\": " << json_number(s.p99) << "},\n";
    os << "  \"timed_cpu_ms\": " << (cpu_known ? json_number(cpu1 - cpu0) : "null") << ",\n";
    os << "  \"peak_rss_kb\": " << peak_rss_kb() << ",\n";
    os << "  \"arena_bytes\": " << interp.arena_bytes() << ",\n";
    os << "  \"scratch_bytes\": " << interp.scratch_bytes() << ",\n";
    os << "  \"unshared_activation_bytes\": " << interp.unshared_activation_bytes() << ",\n";
    os << "  \"prepared_weight_bytes\": " << interp.prepared_weight_bytes() << ",\n";
    os << "  \"inputs\": [";
    for (std::size_t i = 0; i < interp.input_count(); ++i) {
      const auto& t = interp.input_tensor(i);
      os << (i ? ", " : "") << "{\"name\": " << json_string(t.name) << ", \"dtype\": \""
         << edge::runtime::dtype_name(t.dtype) << "\", \"shape\": " << json_list(t.shape)
         << ", \"source\": " << json_string(input_sources[i]) << "}";
    }
    os << "],\n  \"outputs\": [";
    for (std::size_t i = 0; i < interp.output_count(); ++i) {
      const auto& t = interp.output_tensor(i);
      os << (i ? ", " : "") << "{\"name\": " << json_string(t.name) << ", \"dtype\": \""
         << edge::runtime::dtype_name(t.dtype) << "\", \"shape\": " << json_list(t.shape)
         << ", \"path\": " << (out_paths.empty() ? "null" : json_string(out_paths[i])) << "}";
    }
    // The pool's serial back-offs over the whole process (warm-up included): a 2-thread run
    // whose latency is near the 1-thread one often backed off (docs/kernels.md, Threads).
    os << "],\n  \"pool\": {\"late_jobs\": " << interp.thread_pool().late_jobs()
       << ", \"contended_windows\": " << interp.thread_pool().contended_windows()
       << ", \"unstacked\": " << interp.thread_pool().unstacked()
       << ", \"unstack_failures\": " << interp.thread_pool().unstack_failures();
    // Who ran which tasks (ThreadPool::moves(), kept with EDGE_POOL_MOVES=1): tasks stolen,
    // runner changes along a job and tasks whose place the other thread ran in the job before
    // (rows read across the cores).
    const edge::ThreadPool::Moves moves = interp.thread_pool().moves();
    os << ", \"jobs\": " << moves.jobs << ", \"stolen_tasks\": " << moves.stolen
       << ", \"boundaries\": " << moves.boundaries << ", \"moved_tasks\": " << moves.moved
       << "}";
    os << ",\n  \"layers\": [";
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const auto& l = layers[i];
      os << (i ? "," : "") << "\n    {\"index\": " << l.op_index << ", \"op\": "
         << json_string(l.op) << ", \"label\": " << json_string(l.label) << ", \"kernel\": "
         << json_string(l.kernel);
      if (args.profile && l.runs > 0) {
        os << ", \"mean_ms\": " << json_number(l.total_ms / static_cast<double>(l.runs))
           << ", \"min_ms\": " << json_number(l.min_ms)
           << ", \"threads\": " << l.threads(interp.threads())
           << ", \"threads_why\": " << json_string(l.threads_why(interp.threads()));
      }
      os << "}";
    }
    os << "\n  ]\n}\n";
  } else {
    os << "model:        " << args.model << " (.edge " << model->version_major() << "."
       << model->version_minor() << ", " << model->file_bytes() << " bytes, "
       << model->metadata().quantization_recipe << ")\n";
    os << "cpu:          " << cpu.arch << ", " << interp.threads() << " threads"
       << (args.cpus.empty() ? "" : ", cpus " + args.cpus) << "\n";
    os << "init:         " << json_number(init_ms) << " ms\n";
    os << "first run:    " << json_number(first_ms) << " ms\n";
    if (!warm.empty()) os << "warmup mean:  " << json_number(w.mean) << " ms (" << args.warmup << " runs)\n";
    os << "latency (ms): mean " << json_number(s.mean) << "  std " << json_number(s.std)
       << "  min " << json_number(s.min) << "  max " << json_number(s.max) << "  p50 "
       << json_number(s.p50) << "  p90 " << json_number(s.p90) << "  p99 " << json_number(s.p99)
       << "  (" << args.runs << " runs)\n";
    os << "memory:       peak RSS " << peak_rss_kb() << " KiB, arena " << interp.arena_bytes()
       << " bytes (unshared " << interp.unshared_activation_bytes() << "), scratch "
       << interp.scratch_bytes() << " bytes\n";
    os << "layers:\n";
    for (const auto& l : layers) {
      os << "  " << l.label << "  " << l.kernel;
      if (args.profile && l.runs > 0) {
        os << "  " << json_number(l.total_ms / static_cast<double>(l.runs)) << " ms  ["
           << l.threads_why(interp.threads()) << "]";
      }
      os << "\n";
    }
    for (const auto& p : out_paths) os << "wrote " << p << "\n";
  }
  std::cout << os.str();
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const UsageError& e) {
    std::cerr << "edge-run: " << e.what() << "\n" << kUsage;
    return kExitUsage;
  } catch (const Error& e) {
    std::cerr << "edge-run: error: " << e.what() << "\n";
    switch (e.kind()) {
      case Error::Kind::kFormat: return kExitFormat;
      case Error::Kind::kUnsupported: return kExitUnsupported;
      case Error::Kind::kInput: return kExitInput;
      case Error::Kind::kIo: return kExitIo;
    }
    return kExitFailure;
  } catch (const std::bad_alloc&) {
    std::cerr << "edge-run: error: out of memory\n";
    return kExitFailure;
  } catch (const std::exception& e) {
    std::cerr << "edge-run: error: " << e.what() << "\n";
    return kExitFailure;
  }
}
