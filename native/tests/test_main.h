// A tiny self-registering test harness: the native tests must build with nothing but a
// cross compiler (no gtest in Debian's cross sysroots) and run under qemu-user.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace edge_test {

struct TestCase {
  const char* name;
  std::function<void()> body;
};

std::vector<TestCase>& registry();
void record_failure(const char* file, int line, const std::string& what);

struct Register {
  Register(const char* name, std::function<void()> body) {
    registry().push_back({name, std::move(body)});
  }
};

}  // namespace edge_test

#define EDGE_TEST_CONCAT2(a, b) a##b
#define EDGE_TEST_CONCAT(a, b) EDGE_TEST_CONCAT2(a, b)
// A macro is the only way to get file/line and a registration object per test.
#define EDGE_TEST(name)                                                          \
  static void name();                                                            \
  static edge_test::Register EDGE_TEST_CONCAT(edge_test_reg_, name)(#name, name); \
  static void name()
#define EDGE_CHECK(cond)                                                 \
  do {                                                                   \
    if (!(cond)) edge_test::record_failure(__FILE__, __LINE__, #cond);   \
  } while (0)
