#include "edge/runtime/limits.h"

#include <cctype>
#include <cstdlib>
#include <limits>
#include <stdexcept>

#include "edge/runtime/error.h"

namespace edge {
namespace runtime {

uint64_t parse_size(const std::string& text) {
  auto bad = [&] {
    return std::invalid_argument("not a size: '" + text +
                                 "' (write bytes, or a number with K, M, G or T)");
  };
  std::size_t i = 0;
  const std::size_t n = text.size();
  auto skip_spaces = [&] {
    while (i < n && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  };
  skip_spaces();
  uint64_t value = 0;
  const std::size_t digits_start = i;
  for (; i < n && text[i] >= '0' && text[i] <= '9'; ++i) {
    const uint64_t d = static_cast<uint64_t>(text[i] - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - d) / 10) throw bad();
    value = value * 10 + d;
  }
  if (i == digits_start) throw bad();
  skip_spaces();
  int shift = 0;
  if (i < n) {
    switch (std::tolower(static_cast<unsigned char>(text[i]))) {
      case 'k': shift = 10; ++i; break;
      case 'm': shift = 20; ++i; break;
      case 'g': shift = 30; ++i; break;
      case 't': shift = 40; ++i; break;
      default: break;
    }
  }
  if (i < n && (text[i] == 'i' || text[i] == 'I')) ++i;
  if (i < n && (text[i] == 'b' || text[i] == 'B')) ++i;
  skip_spaces();
  if (i != n) throw bad();
  if (shift != 0 && value > (std::numeric_limits<uint64_t>::max() >> shift)) throw bad();
  value <<= shift;
  if (value == 0) throw std::invalid_argument("a memory budget of 0 bytes allows nothing");
  return value;
}

uint64_t default_memory_budget() {
  const char* raw = std::getenv(kMemoryBudgetEnv);
  if (raw == nullptr || *raw == '\0') return kDefaultMemoryBudget;
  try {
    return parse_size(raw);
  } catch (const std::invalid_argument& e) {
    throw InputError(std::string(kMemoryBudgetEnv) + ": " + e.what());
  }
}

std::string budget_hint() {
  return std::string(" (raise it with ") + kMemoryBudgetEnv +
         "=<size> or edge-run --memory-budget if the model is trusted)";
}

}  // namespace runtime
}  // namespace edge
