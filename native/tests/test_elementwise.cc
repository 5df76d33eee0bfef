// Element-wise kernels (edge/kernels/elementwise.h): every ISA's variant against the scalar
// reference bit for bit (random lengths and channel counts around the vector widths, extreme
// values and parameters), and the scalar ADD reference against LiteRT's vector-loop lane
// semantics as the runtime writes them (litert_compat.h).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "edge/kernels/elementwise.h"
#include "edge/kernels/isa.h"
#include "edge/kernels/requant.h"
#include "kernels/x86/vadd_step.h"
#include "kernel_reference.h"
#include "litert_compat.h"
#include "test_main.h"

using edge::Isa;
using namespace edge_test;

namespace {

int8_t random_int8(Rng& rng, bool extreme) {
  if (extreme) return static_cast<int8_t>(rng.uniform(0, 1) ? 127 : -128);
  return static_cast<int8_t>(rng.uniform(-128, 127));
}

// Parameters over the ranges the kernels accept, with their edges drawn often.
edge::QS8AddParams random_add_params(Rng& rng) {
  auto multiplier = [&] {
    switch (rng.uniform(0, 4)) {
      case 0: return 0;
      case 1: return (1 << 30);
      case 2: return 0x7fffffff;
      default: return rng.uniform(1 << 30, 0x7fffffff);
    }
  };
  auto pick = [&](int32_t lo, int32_t hi) {
    const int r = rng.uniform(0, 5);
    return r == 0 ? lo : r == 1 ? hi : rng.uniform(lo, hi);
  };
  edge::QS8AddParams p;
  p.a_offset = pick(-127, 128);
  p.b_offset = pick(-127, 128);
  p.a_multiplier = multiplier();
  p.b_multiplier = multiplier();
  // LiteRT's counts are 20 + shift with shift in [-31, 0]; the kernels take [-31, 31].
  p.a_shift = rng.uniform(0, 3) ? pick(-11, 20) : pick(-31, 31);
  p.b_shift = rng.uniform(0, 3) ? pick(-11, 20) : pick(-31, 31);
  p.out_multiplier = multiplier();
  p.out_exponent = pick(0, 31);
  p.out_offset = pick(-128, 127);
  p.out_min = rng.uniform(0, 1) ? -128 : rng.uniform(-128, 127);
  p.out_max = rng.uniform(0, 1) ? 127 : rng.uniform(p.out_min, 127);
  return p;
}

// AddImpl::vec of the runtime (ops_elementwise.cc) in the kernels' parameters.
int8_t litert_vector_add(int8_t a, int8_t b, const edge::QS8AddParams& p) {
  namespace lanes = edge::runtime::lanes;
  const int32_t xa = lanes::qrdmulh(lanes::shl(p.a_offset + a, p.a_shift), p.a_multiplier);
  const int32_t xb = lanes::qrdmulh(lanes::shl(p.b_offset + b, p.b_shift), p.b_multiplier);
  int32_t s = lanes::qrdmulh(
      static_cast<int32_t>(static_cast<uint32_t>(xa) + static_cast<uint32_t>(xb)),
      p.out_multiplier);
  s = lanes::rdbp(s, p.out_exponent);
  const int16_t t = lanes::wrap16(lanes::wrap16(s) + p.out_offset);
  const int32_t r = lanes::sat8(t);
  return static_cast<int8_t>(std::min(std::max(r, p.out_min), p.out_max));
}

}  // namespace

// Trials from 400 on take the shifts LiteRT's ADD gives (20 + an input's shift, which is 0 or a
// few below) and those just past them: where the AVX-512 kernel takes each input's step in
// 32-bit lanes (shifts 15-22, offsets -128..128), and the edges where it keeps the 64-bit form.
EDGE_TEST(elementwise_vadd_every_isa_matches_scalar) {
  Rng rng(71);
  const edge::ElementwiseKernels& scalar = edge::elementwise_kernels(Isa::kScalar);
  int bad = 0;
  for (int trial = 0; trial < 1000 && bad < 5; ++trial) {
    edge::QS8AddParams p = random_add_params(rng);
    if (trial >= 400) {
      p.a_shift = rng.uniform(13, 24);
      p.b_shift = rng.uniform(0, 3) ? rng.uniform(13, 24) : p.a_shift;
      // -128: the 32-bit form's widest v (-256); 129: past it, the 64-bit form
      if (trial % 5 == 0) p.a_offset = rng.uniform(0, 1) ? -128 : 129;
    }
    const auto n = static_cast<std::size_t>(rng.uniform(0, 3) ? rng.uniform(0, 70)
                                                               : rng.uniform(0, 600));
    const bool extreme = trial % 4 == 0;
    std::vector<int8_t> a(n), b(n);
    for (std::size_t i = 0; i < n; ++i) {
      a[i] = random_int8(rng, extreme);
      b[i] = random_int8(rng, extreme);
    }
    std::vector<int8_t> want(n);
    scalar.vadd(n, a.data(), b.data(), p, want.data());
    for (std::size_t i = 0; i < n; ++i) {
      if (want[i] != litert_vector_add(a[i], b[i], p)) {
        std::printf("  scalar vadd differs from LiteRT's lanes at %zu (trial %d)\n", i, trial);
        ++bad;
        break;
      }
    }
    for (Isa isa : test_isas()) {
      const edge::ElementwiseKernels& k = edge::elementwise_kernels(isa);
      // One guard byte past the end: a kernel must not write beyond n.
      std::vector<int8_t> got(n + 1, 0x5a);
      k.vadd(n, a.data(), b.data(), p, got.data());
      if (!std::equal(want.begin(), want.end(), got.begin()) || got[n] != 0x5a) {
        std::printf("  %s differs from scalar (n=%zu, trial %d, shifts %d / %d, offset %d)\n",
                    k.vadd_name, n, trial, p.a_shift, p.b_shift, p.a_offset);
        ++bad;
      }
    }
  }
  EDGE_CHECK(bad == 0);
}

// vadd_step.h's identity on its own, exhaustively where it applies: every input byte, every
// shift 15..22, the offsets' ends (-128 gives |v| = 256) and multipliers whose high and low
// halves reach their ends, against LiteRT's SQRDMULH(v << s, m). The step is a template over
// the lane type; on plain int32 it is the same expression the kernels run on ymm / zmm lanes.
// The ADD test above meets it only through the output's requantisation, which hides most
// off-by-one roundings (a +1 on the rounding constant passed it; caught here).
EDGE_TEST(elementwise_vadd_step_equals_litert_sqrdmulh_where_it_applies) {
  namespace step = edge::detail::vadd_step;
  namespace lanes = edge::runtime::lanes;
  Rng rng(73);
  std::vector<int32_t> multipliers = {0, 1, 0xFFFF, 0x10000, 1 << 30, (1 << 30) | 0xFFFF,
                                      0x7FFF0000, 0x7FFFFFFF};
  for (int i = 0; i < 64; ++i) multipliers.push_back(rng.uniform(1 << 30, 0x7FFFFFFF));
  EDGE_CHECK(step::applies(-128, 15) && step::applies(128, 22));
  EDGE_CHECK(!step::applies(-129, 20) && !step::applies(129, 20) && !step::applies(0, 14) &&
             !step::applies(0, 23));
  long compared = 0, bad = 0;
  for (int32_t shift = step::kMinShift; shift <= step::kMaxShift; ++shift) {
    for (int32_t offset : {-128, -127, -1, 0, 1, 127, 128}) {
      for (int32_t m : multipliers) {
        const step::Input t = step::input(offset, m, shift);
        for (int32_t a = -128; a <= 127; ++a) {
          const int32_t want = lanes::qrdmulh(lanes::shl(a + offset, shift), m);
          const int32_t got = step::step(a, t);
          ++compared;
          if (got != want && ++bad <= 5) {
            std::printf("  a %d offset %d shift %d multiplier %d: step %d, SQRDMULH %d\n", a,
                        offset, shift, m, got, want);
          }
        }
      }
    }
  }
  std::printf("  %ld steps compared\n", compared);
  EDGE_CHECK(bad == 0);
}

EDGE_TEST(elementwise_maxpool_every_isa_matches_scalar) {
  Rng rng(72);
  const edge::ElementwiseKernels& scalar = edge::elementwise_kernels(Isa::kScalar);
  int bad = 0;
  for (int trial = 0; trial < 300 && bad < 5; ++trial) {
    const auto channels = static_cast<std::size_t>(
        rng.uniform(0, 2) ? rng.uniform(1, 70) : rng.uniform(1, 300));
    const auto taps = static_cast<std::size_t>(rng.uniform(1, 10));
    const bool extreme = trial % 5 == 0;
    // Each tap its own allocation, so that an over-read shows under AddressSanitizer.
    std::vector<std::vector<int8_t>> rows(taps, std::vector<int8_t>(channels));
    std::vector<const int8_t*> ptrs(taps);
    for (std::size_t t = 0; t < taps; ++t) {
      for (auto& v : rows[t]) v = random_int8(rng, extreme);
      ptrs[t] = rows[t].data();
    }
    const auto lo = static_cast<int8_t>(rng.uniform(0, 1) ? -128 : rng.uniform(-128, 127));
    const auto hi = static_cast<int8_t>(rng.uniform(0, 1) ? 127 : rng.uniform(lo, 127));
    std::vector<int8_t> want(channels);
    scalar.maxpool(channels, taps, ptrs.data(), lo, hi, want.data());
    for (Isa isa : test_isas()) {
      const edge::ElementwiseKernels& k = edge::elementwise_kernels(isa);
      std::vector<int8_t> got(channels + 1, 0x5a);
      k.maxpool(channels, taps, ptrs.data(), lo, hi, got.data());
      if (!std::equal(want.begin(), want.end(), got.begin()) || got[channels] != 0x5a) {
        std::printf("  %s differs from scalar (channels=%zu taps=%zu)\n", k.maxpool_name,
                    channels, taps);
        ++bad;
      }
    }
  }
  EDGE_CHECK(bad == 0);
}

EDGE_TEST(elementwise_rsum_every_isa_matches_scalar) {
  Rng rng(73);
  const edge::ElementwiseKernels& scalar = edge::elementwise_kernels(Isa::kScalar);
  int bad = 0;
  for (int trial = 0; trial < 200 && bad < 5; ++trial) {
    const auto rows = static_cast<std::size_t>(rng.uniform(0, 60));
    const auto channels = static_cast<std::size_t>(rng.uniform(1, 150));
    const std::size_t stride = channels + static_cast<std::size_t>(rng.uniform(0, 9));
    const bool extreme = trial % 4 == 0;
    std::vector<int8_t> in(rows * stride + 1);
    for (auto& v : in) v = random_int8(rng, extreme);
    std::vector<int32_t> start(channels);
    for (auto& v : start) v = rng.uniform(-100000, 100000);
    std::vector<int32_t> want = start;
    scalar.rsum(rows, channels, in.data(), stride, want.data());
    for (Isa isa : test_isas()) {
      const edge::ElementwiseKernels& k = edge::elementwise_kernels(isa);
      std::vector<int32_t> got = start;
      got.push_back(0x5a5a5a5a);
      k.rsum(rows, channels, in.data(), stride, got.data());
      if (!std::equal(want.begin(), want.end(), got.begin()) || got[channels] != 0x5a5a5a5a) {
        std::printf("  %s differs from scalar (rows=%zu channels=%zu)\n", k.rsum_name, rows,
                    channels);
        ++bad;
      }
    }
  }
  EDGE_CHECK(bad == 0);
}

EDGE_TEST(elementwise_kernel_names_carry_the_isa) {
  for (Isa isa : test_isas()) {
    const edge::ElementwiseKernels& k = edge::elementwise_kernels(isa);
    const std::string suffix = std::string("__") + edge::isa_name(isa);
    const bool scalar = isa == Isa::kScalar;
    for (const char* name : {k.vadd_name, k.maxpool_name, k.rsum_name}) {
      const std::string s = name;
      // An ISA runs its own variant or, where it has none, the scalar one (AVX-512 and dotprod
      // run the AVX2 and NEON ones): the name says which.
      const bool ok = s.find("__") != std::string::npos &&
                      (scalar ? s.size() > 8 && s.compare(s.size() - 8, 8, "__scalar") == 0
                              : s.compare(0, 4, "qs8_") == 0);
      if (!ok) std::printf("  %s: kernel name %s\n", edge::isa_name(isa), name);
      EDGE_CHECK(ok);
    }
  }
}
