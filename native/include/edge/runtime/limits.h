// The memory budget of one load of one .edge file: the most bytes the runtime may allocate for
// it (one run-time tensor, the activation arena plus operator workspaces, the prepared weights).
// A hostile file of a few hundred bytes can declare gigabyte tensors; the runtime checks what it
// is about to allocate against this budget and throws a FormatError that names the tensor or
// operator and the limit instead of exhausting the machine.
//
// The budget is the one the Python loaders use (sdk/base/limits.py): 2 GiB by default, or
// EDGESDK_MEMORY_BUDGET (bytes, or a number with a K/M/G/T suffix: "512M", "2G"); edge-run also
// takes --memory-budget, and InterpreterOptions / Model::load take it explicitly.
#pragma once

#include <cstdint>
#include <string>

namespace edge {
namespace runtime {

constexpr uint64_t kDefaultMemoryBudget = uint64_t{2} << 30;
constexpr const char* kMemoryBudgetEnv = "EDGESDK_MEMORY_BUDGET";

// "2G" -> 2147483648: digits, optional spaces, an optional K/M/G/T (binary units), an optional
// "i" and "B" (sdk.base.limits.parse_size's grammar). Throws std::invalid_argument otherwise (or
// when the value overflows 64 bits, or is 0).
uint64_t parse_size(const std::string& text);

// $EDGESDK_MEMORY_BUDGET if set (an InputError naming the variable when it is not a size),
// else kDefaultMemoryBudget.
uint64_t default_memory_budget();

// `budget` if non-zero, else default_memory_budget().
inline uint64_t resolve_memory_budget(uint64_t budget) {
  return budget != 0 ? budget : default_memory_budget();
}

// " (raise it with EDGESDK_MEMORY_BUDGET=<size> or edge-run --memory-budget if the model is
// trusted)": the tail of every budget error.
std::string budget_hint();

}  // namespace runtime
}  // namespace edge
