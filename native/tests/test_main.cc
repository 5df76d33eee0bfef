#include "test_main.h"

#include <cstdlib>
#include <cstring>

namespace edge_test {
namespace {
int g_failures = 0;
}

std::vector<TestCase>& registry() {
  static std::vector<TestCase> cases;
  return cases;
}

void record_failure(const char* file, int line, const std::string& what) {
  ++g_failures;
  std::fprintf(stderr, "  FAILED %s:%d: %s\n", file, line, what.c_str());
}

}  // namespace edge_test

// Usage: edge_native_tests [substring]   runs the tests whose name contains substring.
int main(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : "";
  // Every pool runs its jobs on all its threads, whatever the host's load: the tests cover the
  // multi-thread paths on a busy CI host too (the back-off has its own tests). Kept if set.
  setenv("EDGE_POOL_BACKOFF_US", "0", 0);
  int run = 0, failed_tests = 0;
  for (const auto& test : edge_test::registry()) {
    if (std::strstr(test.name, filter) == nullptr) continue;
    const int before = edge_test::g_failures;
    std::printf("[ RUN  ] %s\n", test.name);
    test.body();
    ++run;
    const bool ok = edge_test::g_failures == before;
    if (!ok) ++failed_tests;
    std::printf("[ %s ] %s\n", ok ? " OK " : "FAIL", test.name);
  }
  std::printf("%d tests, %d failed\n", run, failed_tests);
  return failed_tests == 0 && run > 0 ? 0 : 1;
}
