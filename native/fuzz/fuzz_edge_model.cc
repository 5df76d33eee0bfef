// libFuzzer harness of the .edge runtime: load (every check of model.cc), prepare (every
// operator's shape and parameter checks, weight packing, the arena plan) and one run, on any
// bytes. A malformed input must end in an edge::runtime::Error; anything else that escapes (a
// std::invalid_argument, std::bad_alloc, ...) is a finding, as is every ASan / UBSan report, a
// run over -timeout and memory over -rss_limit_mb.
//
// Built by `make fuzz-native` (clang, -fsanitize=fuzzer,address,undefined); see
// docs/security.md ("The .edge runtime and edge-run") for the command and the figures.
//
// The memory budget is EDGE_FUZZ_MEMORY_BUDGET (default 64M): what a model may allocate here,
// kept well under -rss_limit_mb so that a model at the budget is not reported as a leak of RSS.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "edge/runtime/error.h"
#include "edge/runtime/interpreter.h"
#include "edge/runtime/limits.h"
#include "edge/runtime/model.h"

namespace {

uint64_t fuzz_budget() {
  static const uint64_t budget = [] {
    const char* raw = std::getenv("EDGE_FUZZ_MEMORY_BUDGET");
    return edge::runtime::parse_size(raw != nullptr && *raw != '\0' ? raw : "64M");
  }();
  return budget;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace edge::runtime;
  try {
    std::shared_ptr<const Model> model = Model::from_bytes(data, size, "fuzz.edge", fuzz_budget());
    InterpreterOptions opts;
    opts.threads = 1;
    opts.memory_budget = fuzz_budget();
    Interpreter interp(model, opts);
    // Inputs: a fixed pseudo-random pattern (the same bytes for the same model).
    uint32_t state = 2463534242u ^ static_cast<uint32_t>(size);
    for (std::size_t i = 0; i < interp.input_count(); ++i) {
      auto* p = static_cast<uint8_t*>(interp.input_data(i));
      const std::size_t n = interp.input_tensor(i).runtime_bytes();
      const DType dt = interp.input_tensor(i).dtype;
      for (std::size_t b = 0; b < n; ++b) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        p[b] = static_cast<uint8_t>(state);
      }
      if (dt == DType::kFloat32 || dt == DType::kFloat16) {
        // Finite floats (NaN / inf inputs are the caller's business, not the file's).
        if (dt == DType::kFloat32) {
          auto* f = static_cast<float*>(interp.input_data(i));
          for (std::size_t k = 0; k < n / 4; ++k) f[k] = static_cast<float>(p[4 * k] % 64) / 8.0f;
        } else {
          std::memset(p, 0, n);
        }
      }
    }
    interp.run();
  } catch (const Error&) {
    // The expected outcome for a malformed file: a FormatError / UnsupportedError / ...
  }
  return 0;
}
