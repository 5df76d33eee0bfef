#include <cstdio>
#include <cstdlib>
#include <string>

#include "edge/cpu_features.h"
#include "test_main.h"

EDGE_TEST(cpu_features_match_build_target) {
  const edge::CpuFeatures& f = edge::cpu_features();
  std::string joined;
  for (const auto& n : f.names()) joined += n + " ";
  std::printf("  arch=%s features=%s cores=%d\n", f.arch.c_str(), joined.c_str(),
              edge::physical_core_count());
#if defined(__x86_64__)
  EDGE_CHECK(f.arch == "x86_64");
  EDGE_CHECK(f.sse41);  // every x86_64 CPU we can meet today has SSE4.1
  EDGE_CHECK(!f.neon && !f.dotprod);
  EDGE_CHECK(!f.fma || f.avx2);
#elif defined(__aarch64__)
  EDGE_CHECK(f.arch == "aarch64");
  EDGE_CHECK(f.neon);
  EDGE_CHECK(!f.avx2);
#elif defined(__arm__)
  EDGE_CHECK(f.arch == "armv7");
  EDGE_CHECK(f.neon);  // we run the armv7 tests only on NEON cores
#endif
  EDGE_CHECK(edge::physical_core_count() >= 1);
  // Under qemu the test runner says which CPU model it emulates, so the test can prove that
  // detection sees dotprod on `-cpu max` and not on `-cpu cortex-a53`.
  if (const char* expect = std::getenv("EDGE_EXPECT_DOTPROD")) {
    EDGE_CHECK(f.dotprod == (std::string(expect) == "1"));
  }
}
