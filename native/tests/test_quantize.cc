// Dynamic input quantisation (edge/kernels/quantize.h): the scalar reference against values
// worked out by hand from TFLite's definitions and against a naive re-derivation, then every ISA
// this CPU runs bit for bit against scalar: random rows of every length up to 300 (odd ones and
// SIMD tails included), extreme magnitudes, all-zero and constant rows, exact .5 ties.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "edge/kernels/isa.h"
#include "edge/kernels/quantize.h"
#include "kernel_reference.h"
#include "test_main.h"

using edge::InputQuantization;
using edge::Isa;

namespace {

struct Quantised {
  std::vector<int8_t> q;
  std::vector<float> scales;
  std::vector<int32_t> zero_points;
  bool operator==(const Quantised& o) const {
    return q == o.q && zero_points == o.zero_points && scales.size() == o.scales.size() &&
           std::memcmp(scales.data(), o.scales.data(), scales.size() * sizeof(float)) == 0;
  }
};

Quantised run(const std::vector<float>& x, int32_t rows, int32_t cols, InputQuantization mode,
              Isa isa) {
  Quantised r;
  r.q.assign(static_cast<std::size_t>(rows) * cols, 99);
  r.scales.assign(static_cast<std::size_t>(rows), -1.0f);
  r.zero_points.assign(static_cast<std::size_t>(rows), 99);
  edge::quantize_rows(x.data(), rows, cols, mode, r.q.data(), r.scales.data(),
                      r.zero_points.data(), isa);
  return r;
}

// A second, naive derivation of one row (straight from the TFLite definitions, no tables).
Quantised naive(const std::vector<float>& x, InputQuantization mode) {
  Quantised r;
  float lo = x[0], hi = x[0];
  for (float v : x) {
    lo = std::fmin(lo, v);
    hi = std::fmax(hi, v);
  }
  r.q.assign(x.size(), 0);
  if (mode == InputQuantization::kSymmetric) {
    const float range = std::fmax(std::fabs(lo), std::fabs(hi));
    r.zero_points = {0};
    if (range == 0) {
      r.scales = {1.0f};
      return r;
    }
    r.scales = {range / 127};
    const float inv = 127 / range;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float p = x[i] * inv;
      r.q[i] = static_cast<int8_t>(std::fmin(127.0f, std::fmax(-127.0f, std::round(p))));
    }
    return r;
  }
  const double rmin = std::fmin(0.0, lo), rmax = std::fmax(0.0, hi);
  if (rmin == rmax) {
    r.scales = {1.0f};
    r.zero_points = {0};
    return r;
  }
  const double s = (rmax - rmin) / 255;
  const double z = std::fabs(-128.0) + std::fabs(rmin / s) < std::fabs(127.0) + std::fabs(rmax / s)
                       ? -128 - rmin / s
                       : 127 - rmax / s;
  const int32_t zp = z <= -128 ? -128 : z >= 127 ? 127 : static_cast<int32_t>(std::round(z));
  r.scales = {static_cast<float>(s)};
  r.zero_points = {zp};
  const float inv = static_cast<float>(1.0 / static_cast<double>(r.scales[0]));
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float p = x[i] * inv;
    const float v = static_cast<float>(zp) + p;
    r.q[i] = static_cast<int8_t>(std::fmin(127.0f, std::fmax(-128.0f, std::round(v))));
  }
  return r;
}

bool every_isa_matches_scalar(const std::vector<float>& x, int32_t rows, int32_t cols,
                              InputQuantization mode) {
  const Quantised ref = run(x, rows, cols, mode, Isa::kScalar);
  bool ok = true;
  for (Isa isa : edge_test::test_isas()) {
    if (!(run(x, rows, cols, mode, isa) == ref)) {
      std::printf("  mismatch isa=%s rows=%d cols=%d mode=%s\n", edge::isa_name(isa), rows, cols,
                  mode == InputQuantization::kSymmetric ? "symmetric" : "asymmetric");
      ok = false;
    }
  }
  return ok;
}

constexpr InputQuantization kModes[] = {InputQuantization::kSymmetric,
                                        InputQuantization::kAsymmetric};

}  // namespace

EDGE_TEST(quantize_reference_values) {
  // Symmetric: range 1 -> scale 1/127; 0.5 * 127 = 63.5 rounds away from zero.
  Quantised s = run({-1.0f, 0.0f, 0.5f, 1.0f, -0.5f}, 1, 5, InputQuantization::kSymmetric,
                    Isa::kScalar);
  EDGE_CHECK((s.q == std::vector<int8_t>{-127, 0, 64, 127, -64}));
  EDGE_CHECK(s.scales[0] == 1.0f / 127.0f && s.zero_points[0] == 0);
  // Range 127: inv = 1, exact ties 2.5 -> 3, -2.5 -> -3.
  s = run({127.0f, 2.5f, -2.5f, 0.49999997f}, 1, 4, InputQuantization::kSymmetric, Isa::kScalar);
  EDGE_CHECK((s.q == std::vector<int8_t>{127, 3, -3, 0}));
  // Asymmetric: [0, 2.55] -> scale 0.01, zero point -128 (both candidates agree).
  Quantised a = run({0.0f, 2.55f, 1.0f}, 1, 3, InputQuantization::kAsymmetric, Isa::kScalar);
  EDGE_CHECK(a.zero_points[0] == -128);
  EDGE_CHECK(std::fabs(a.scales[0] - 0.01f) < 1e-8f);
  EDGE_CHECK((a.q == std::vector<int8_t>{-128, 127, -28}));
  // Negative-only rows include 0 in the range: [-2.55, 0] -> zero point 127.
  a = run({-2.55f, -1.0f}, 1, 2, InputQuantization::kAsymmetric, Isa::kScalar);
  EDGE_CHECK(a.zero_points[0] == 127 && (a.q == std::vector<int8_t>{-128, 27}));
  // All-zero rows: q = 0, scale 1, zero point 0, in both modes, next to a non-zero row.
  for (InputQuantization mode : kModes) {
    const Quantised z = run({0, 0, 0, 0, 0, 1, -1, 0.25f, 0, 0}, 2, 5, mode, Isa::kScalar);
    EDGE_CHECK((std::vector<int8_t>(z.q.begin(), z.q.begin() + 5) == std::vector<int8_t>(5, 0)));
    EDGE_CHECK(z.scales[0] == 1.0f && z.zero_points[0] == 0);
    EDGE_CHECK(z.scales[1] != 1.0f);
  }
  // Bad shapes are errors; zero rows is a no-op.
  float x = 1;
  int8_t q = 0;
  float sc = 0;
  int32_t zp = 0;
  bool threw = false;
  try {
    edge::quantize_rows(&x, 1, 0, InputQuantization::kSymmetric, &q, &sc, &zp);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  EDGE_CHECK(threw);
  edge::quantize_rows(&x, 0, 1, InputQuantization::kSymmetric, &q, &sc, &zp);
}

EDGE_TEST(quantize_scalar_matches_naive_derivation) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const int cols = 1 + static_cast<int>(rng() % 200);
    const float mag = std::ldexp(1.0f, static_cast<int>(rng() % 40) - 20);
    const float shift = (rng() % 3 == 0) ? mag * 0.7f : 0.0f;
    std::uniform_real_distribution<float> d(-mag, mag);
    std::vector<float> x(static_cast<std::size_t>(cols));
    for (float& v : x) v = d(rng) + shift;
    for (InputQuantization mode : kModes) {
      const Quantised got = run(x, 1, cols, mode, Isa::kScalar);
      const Quantised want = naive(x, mode);
      EDGE_CHECK(got == want);
    }
  }
}

EDGE_TEST(quantize_every_isa_matches_scalar) {
  std::mt19937 rng(11);
  for (int cols = 1; cols <= 300; ++cols) {
    const int rows = 1 + cols % 3;
    const float mag = std::ldexp(1.0f, static_cast<int>(rng() % 60) - 30);
    std::uniform_real_distribution<float> d(-mag, mag);
    std::vector<float> x(static_cast<std::size_t>(rows) * cols);
    for (float& v : x) v = d(rng) + (cols % 4 == 1 ? mag : 0.0f);  // some one-signed rows
    if (cols % 7 == 0) std::fill(x.begin(), x.begin() + cols, 0.0f);  // an all-zero row
    for (InputQuantization mode : kModes) EDGE_CHECK(every_isa_matches_scalar(x, rows, cols, mode));
  }
}

EDGE_TEST(quantize_every_isa_extreme_values) {
  std::vector<std::vector<float>> rows = {
      {FLT_MAX, -FLT_MAX, 0.0f, 1.0f, -1.0f},
      {FLT_MAX, 1e30f, 3.0f},
      {-FLT_MAX, -1e-30f},
      {1e-30f, -1e-30f, 5e-31f, 0.0f},
      {-0.0f, 0.0f, -0.0f},
      {2.5f, -2.5f, 127.0f, 0.5f, -0.5f, 1.5f, -1.5f},
      {7.0f},
      {-7.0f},
#if !defined(__arm__)
      // Armv7 NEON flushes subnormals to zero: there only normal floats are bit-exact.
      {FLT_MIN / 4, -FLT_MIN / 8, 0.0f},
#endif
  };
  for (const std::vector<float>& row : rows) {
    for (int repeat : {1, 3, 17, 40}) {  // the same values through the SIMD bodies and tails
      std::vector<float> x;
      for (int i = 0; i < repeat; ++i) x.insert(x.end(), row.begin(), row.end());
      for (InputQuantization mode : kModes) {
        EDGE_CHECK(every_isa_matches_scalar(x, 1, static_cast<int32_t>(x.size()), mode));
      }
    }
  }
  // Every ISA names its kernel.
  for (Isa isa : edge_test::test_isas()) {
    EDGE_CHECK(std::strstr(edge::quantize_kernel_name(isa), "f32_qs8_quantize") != nullptr);
  }
}
