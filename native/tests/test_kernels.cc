// Kernel tests: every ISA the CPU supports against the scalar reference (bit for bit), and the
// scalar reference against naive implementations written from the TFLite definitions.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "edge/kernels/conv2d.h"
#include "edge/kernels/depthwise_conv2d.h"
#include "edge/kernels/fully_connected.h"
#include "edge/kernels/isa.h"
#include "edge/kernels/requant.h"
#include "edge/packing/int2.h"
#include "edge/packing/int4.h"
#include "edge/packing/ternary.h"
#include "edge/thread_pool.h"
#include "kernel_reference.h"
#include "kernels/gemm_plan.h"
#include "kernels/registry.h"
#include "test_main.h"

using edge::Isa;
using edge::OutputType;
using edge::WeightType;
using namespace edge_test;

namespace {

constexpr WeightType kTypes[] = {WeightType::kInt8, WeightType::kInt4, WeightType::kTernary,
                                 WeightType::kInt2};

template <typename E, typename F>
bool throws(const F& fn) {
  try {
    fn();
  } catch (const E&) {
    return true;
  } catch (...) {
    return false;
  }
  return false;
}

edge::PackedWeights pack(const FcProblem& p) {
  edge::PackedWeights w = edge::pack_weights(p.type, p.w.data(), p.n, p.k, p.scales.data(),
                                             static_cast<int32_t>(p.scales.size()), p.wzp.data());
  if (p.group_size > 0) w.set_group_scales(p.group_size, p.group_scales.data());
  return w;
}

template <typename T>
std::vector<T> run_fc(const FcProblem& p, const edge::PackedWeights& w, Isa isa, OutputType type,
                      edge::ThreadPool* pool = nullptr) {
  edge::LayerOptions o = p.options;
  o.isa = isa;
  o.output_type = type;
  o.bias = p.bias.data();
  edge::FullyConnected fc(w.view(), o);
  std::vector<T> out(static_cast<std::size_t>(p.m) * p.n);
  fc.run(p.x.data(), p.m, out.data(), pool);
  return out;
}

bool same_floats(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void report(const char* what, const FcProblem& p, Isa isa, long at) {
  std::printf("  mismatch (%s) type=%s isa=%s m=%d n=%d k=%d at %ld\n", what,
              edge::weight_type_name(p.type), edge::isa_name(isa), p.m, p.n, p.k, at);
}

// Checks one FC problem on every ISA: int32 against the naive sums, int8 against TFLite's
// requantisation of them, float bit-identical to scalar.
bool check_fc(const FcProblem& p) {
  const edge::PackedWeights w = pack(p);
  const std::vector<int32_t> acc = reference_fc_acc(p);
  const std::vector<int8_t> q = reference_requant(acc, p.n, p.scales, p.options, true);
  std::vector<float> scalar_float;
  bool ok = true;
  for (Isa isa : test_isas()) {
    const long a = first_mismatch(run_fc<int32_t>(p, w, isa, OutputType::kInt32), acc);
    if (a >= 0) { report("int32", p, isa, a); ok = false; }
    const long b = first_mismatch(run_fc<int8_t>(p, w, isa, OutputType::kInt8), q);
    if (b >= 0) { report("int8", p, isa, b); ok = false; }
    const std::vector<float> f = run_fc<float>(p, w, isa, OutputType::kFloat32);
    if (isa == Isa::kScalar) {
      scalar_float = f;
    } else if (!same_floats(f, scalar_float)) {
      report("float32", p, isa, 0);
      ok = false;
    }
  }
  return ok;
}

}  // namespace

EDGE_TEST(kernels_isa_list) {
  const auto isas = test_isas();
  std::printf("  testing ISAs: %s (best %s)\n", isa_list(isas).c_str(),
              edge::isa_name(edge::best_isa()));
  EDGE_CHECK(!isas.empty() && isas.front() == Isa::kScalar);
#if defined(__x86_64__)
  EDGE_CHECK(edge::isa_built(Isa::kAvx2) && edge::isa_built(Isa::kAvx512Vnni));
#elif defined(__aarch64__)
  EDGE_CHECK(edge::isa_available(Isa::kNeon));
  if (const char* expect = std::getenv("EDGE_EXPECT_DOTPROD")) {
    EDGE_CHECK(edge::isa_available(Isa::kDotprod) == (std::string(expect) == "1"));
  }
#elif defined(__arm__)
  EDGE_CHECK(edge::isa_available(Isa::kNeon));
  EDGE_CHECK(!edge::isa_built(Isa::kDotprod));
#endif
}

EDGE_TEST(kernels_isa_resolution_and_errors) {
  EDGE_CHECK(edge::parse_isa("AVX2") == Isa::kAvx2);
  EDGE_CHECK(throws<std::invalid_argument>([] { edge::parse_isa("sse9"); }));
  EDGE_CHECK(edge::resolve_isa(Isa::kScalar) == Isa::kScalar);
  ::setenv("EDGE_KERNEL_ISA", "scalar", 1);
  EDGE_CHECK(edge::resolve_isa() == Isa::kScalar);
  ::setenv("EDGE_KERNEL_ISA", "nonsense", 1);
  EDGE_CHECK(throws<std::invalid_argument>([] { edge::resolve_isa(); }));
  ::unsetenv("EDGE_KERNEL_ISA");
  EDGE_CHECK(edge::resolve_isa() == edge::best_isa());
  // Forcing an ISA this CPU or binary lacks is an error, never a fallback.
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512Vnni, Isa::kNeon, Isa::kDotprod}) {
    if (!edge::isa_available(isa)) {
      EDGE_CHECK(throws<edge::IsaUnavailableError>([isa] { edge::resolve_isa(isa); }));
      ::setenv("EDGE_KERNEL_ISA", edge::isa_name(isa), 1);
      EDGE_CHECK(throws<edge::IsaUnavailableError>([] { edge::resolve_isa(); }));
      ::unsetenv("EDGE_KERNEL_ISA");
    }
  }
}

// The benchmarks' count knob (EDGE_FUSE_TASKS): unset or empty gives the fallback, a count
// its value, anything else an error naming the variable: "abc" or "2x" must not quietly run
// the default tasks per thread (atoi's old reading).
EDGE_TEST(kernels_ab_count_knob) {
  const char* name = "EDGE_TEST_AB_COUNT";
  ::unsetenv(name);
  EDGE_CHECK(edge::ab_count(name, 2) == 2);
  ::setenv(name, "", 1);
  EDGE_CHECK(edge::ab_count(name, 2) == 2);
  ::setenv(name, "40", 1);
  EDGE_CHECK(edge::ab_count(name, 2) == 40);
  for (const char* bad : {"abc", "2x", "0", "-3", "99999999999999999999", "2000"}) {
    ::setenv(name, bad, 1);
    bool named = false;
    try {
      edge::ab_count(name, 2);
    } catch (const std::invalid_argument& e) {
      named = std::string(e.what()).find(name) != std::string::npos &&
              std::string(e.what()).find(bad) != std::string::npos;
    }
    EDGE_CHECK(named);
  }
  ::unsetenv(name);
}

EDGE_TEST(requant_reference_values) {
  using edge::quantize_multiplier;
  EDGE_CHECK(quantize_multiplier(0.5).multiplier == (1 << 30) && quantize_multiplier(0.5).shift == 0);
  EDGE_CHECK(quantize_multiplier(1.0).multiplier == (1 << 30) && quantize_multiplier(1.0).shift == 1);
  EDGE_CHECK(quantize_multiplier(0.25).shift == -1);
  EDGE_CHECK(quantize_multiplier(1e-12).multiplier == 0);
  EDGE_CHECK(quantize_multiplier(0.0).multiplier == 0);
  // 0.9999999999 rounds up to 2^31 and renormalises.
  EDGE_CHECK(quantize_multiplier(0.99999999999).multiplier == (1 << 30));
  EDGE_CHECK(quantize_multiplier(0.99999999999).shift == 1);
  EDGE_CHECK(throws<std::invalid_argument>([] { quantize_multiplier(-1.0); }));
  const int32_t kMin = std::numeric_limits<int32_t>::min();
  EDGE_CHECK(edge::saturating_rounding_doubling_high_mul(kMin, kMin) ==
             std::numeric_limits<int32_t>::max());
  EDGE_CHECK(edge::saturating_rounding_doubling_high_mul(1 << 30, 1 << 30) == (1 << 29));
  // -0.5 in Q31 rounds towards +infinity.
  EDGE_CHECK(edge::saturating_rounding_doubling_high_mul(-(1 << 15), 1 << 15) == 0);
  using edge::Rounding;
  EDGE_CHECK(edge::rounding_right_shift(-3, 1, Rounding::kUpward) == -1);
  EDGE_CHECK(edge::rounding_right_shift(-3, 1, Rounding::kAwayFromZero) == -2);
  EDGE_CHECK(edge::rounding_right_shift(3, 1, Rounding::kUpward) == 2);
  EDGE_CHECK(edge::rounding_right_shift(3, 1, Rounding::kAwayFromZero) == 2);
  EDGE_CHECK(edge::rounding_right_shift(-5, 2, Rounding::kAwayFromZero) == -1);
  EDGE_CHECK(edge::rounding_right_shift(-6, 2, Rounding::kAwayFromZero) == -2);
  EDGE_CHECK(edge::rounding_right_shift(-6, 2, Rounding::kUpward) == -1);
  EDGE_CHECK(edge::rounding_right_shift(kMin, 31, Rounding::kAwayFromZero) == -1);
  EDGE_CHECK(edge::rounding_right_shift(7, 0, Rounding::kAwayFromZero) == 7);
  EDGE_CHECK(edge::rounding_right_shift(-7, 0, Rounding::kAwayFromZero) == -7);
  // Single rounding: 2.4999... rounds to 2 where double rounding first lands on 2.5.
  const edge::QuantizedMultiplier qm = quantize_multiplier(2.49999 / 100000.0);
  EDGE_CHECK(edge::multiply_by_quantized_multiplier(100000, qm.multiplier, qm.shift,
                                                    Rounding::kSingle) == 2);
  EDGE_CHECK(edge::single_rounding_multiply(kMin, (1 << 30), 30) ==
             std::numeric_limits<int32_t>::min());
  // Activation ranges as TFLite computes them.
  const edge::TensorQuant out{0.05f, -10};
  EDGE_CHECK(edge::activation_range(edge::Activation::kRelu, out).min == -10);
  EDGE_CHECK(edge::activation_range(edge::Activation::kRelu6, out).max == 110);
  EDGE_CHECK(edge::activation_range(edge::Activation::kReluN1To1, out).min == -30);
  EDGE_CHECK(edge::activation_range(edge::Activation::kRelu6, {1.0f, 120}).max == 126);
}

// The SIMD epilogues against the scalar one, on random and extreme accumulators, every
// multiplier exponent, both rounding rules, with and without weight zero points.
EDGE_TEST(requant_epilogue_every_isa_matches_scalar) {
  Rng rng(11);
  const auto& ref = edge::detail::isa_kernels(Isa::kScalar);
  const int32_t kMin = std::numeric_limits<int32_t>::min(), kMax = std::numeric_limits<int32_t>::max();
  for (Isa isa : test_isas()) {
    const auto& kern = edge::detail::isa_kernels(isa);
    int bad = 0;
    for (int trial = 0; trial < 1000; ++trial) {
      const std::size_t n = static_cast<std::size_t>(rng.uniform(1, 40));
      // Per-channel arrays are padded to a multiple of 16 (the epilogue contract).
      const std::size_t padded = (n + 15) / 16 * 16;
      std::vector<int32_t> acc(n), bias(padded), wzp(padded);
      edge::detail::RequantTables tables;
      tables.zeros(padded);
      std::vector<int32_t>& mult = tables.multiplier;
      std::vector<int32_t>& ls = tables.left_shift;
      std::vector<int32_t>& rs = tables.right_shift;
      std::vector<float> scale(padded);
      for (std::size_t i = 0; i < n; ++i) {
        const int kind = rng.uniform(0, 9);
        acc[i] = kind == 0 ? kMin : kind == 1 ? kMax : kind < 5 ? rng.uniform(-2000, 2000)
                                                                : static_cast<int32_t>(rng.next());
        bias[i] = rng.uniform(-100000, 100000);
        wzp[i] = rng.uniform(-128, 127);
        const int shift = rng.uniform(-31, 2);
        ls[i] = shift > 0 ? shift : 0;
        rs[i] = shift > 0 ? 0 : -shift;
        mult[i] = rng.uniform(0, 7) == 0 ? 0 : rng.uniform(1 << 30, kMax);
        if (rng.uniform(0, 3) == 0) {
          // Exact ties: m = 2^30 halves v exactly, small right shifts leave halves behind.
          mult[i] = 1 << 30;
          acc[i] = rng.uniform(-64, 64);
          bias[i] = rng.uniform(-64, 64);
          wzp[i] = 0;
          ls[i] = 0;
          rs[i] = rng.uniform(1, 4);
        }
        scale[i] = rng.uniform_float(1e-5f, 1e-2f);
      }
      edge::detail::EpilogueParams p{};
      p.bias = bias.data();
      p.wzp = rng.uniform(0, 1) ? wzp.data() : nullptr;
      p.wzp_uniform = rng.uniform(-3, 3);
      p.scale = scale.data();
      p.float_min = rng.uniform(0, 1) ? -std::numeric_limits<float>::infinity() : 0.0f;
      p.float_max = rng.uniform(0, 1) ? std::numeric_limits<float>::infinity() : 6.0f;
      p.out_zero_point = rng.uniform(-20, 20);
      p.out_min = rng.uniform(-128, -60);
      p.out_max = rng.uniform(60, 127);
      p.rounding = rng.uniform(0, 2);
      tables.derive(static_cast<edge::Rounding>(p.rounding));
      tables.attach(p);
      const int32_t row_sum = rng.uniform(0, 3) == 0 ? static_cast<int32_t>(rng.next())
                                                     : rng.uniform(-100000, 100000);
      const std::size_t c0 = 0;
      std::vector<int8_t> a(n), b(n);
      ref.requant(n, acc.data(), row_sum, p, c0, a.data());
      kern.requant(n, acc.data(), row_sum, p, c0, b.data());
      std::vector<float> fa(n), fb(n);
      ref.dequant(n, acc.data(), row_sum, p, c0, fa.data());
      kern.dequant(n, acc.data(), row_sum, p, c0, fb.data());
      if (a != b || !same_floats(fa, fb)) ++bad;
    }
    if (bad) std::printf("  %s: %d epilogue mismatches\n", edge::isa_name(isa), bad);
    EDGE_CHECK(bad == 0);
  }
}

// Raw micro-kernels against scalar, including extreme codes and activations.
EDGE_TEST(gemm_ukernels_every_isa_match_scalar) {
  Rng rng(5);
  const auto& ref = edge::detail::isa_kernels(Isa::kScalar);
  for (Isa isa : test_isas()) {
    const auto& kern = edge::detail::isa_kernels(isa);
    for (WeightType type : kTypes) {
      const auto& set = kern.gemm[static_cast<int>(type)];
      const auto& rset = ref.gemm[static_cast<int>(type)];
      const std::size_t kb = static_cast<std::size_t>(edge::block_k(type));
      int bad = 0;
      for (int trial = 0; trial < 60; ++trial) {
        for (const auto* k : {&set.gemv, &set.gemm}) {
          const std::size_t rows = static_cast<std::size_t>(rng.uniform(1, static_cast<int32_t>(k->mr)));
          const std::size_t nblocks = static_cast<std::size_t>(rng.uniform(1, 40));
          const int wmode = rng.uniform(0, 3), xmode = rng.uniform(0, 3);
          std::vector<uint8_t> w(nblocks * 64);
          for (auto& b : w) b = wmode == 0 ? 0xFF : wmode == 1 ? 0x00 : wmode == 2 ? 0x80
                                                                      : static_cast<uint8_t>(rng.next());
          const std::size_t kpad = nblocks * kb;
          std::vector<int8_t> x(rows * kpad);
          for (auto& v : x) v = static_cast<int8_t>(xmode == 0 ? -128 : xmode == 1 ? 127
                                                     : rng.uniform(-128, 127));
          // Prepared copies: int8 for scalar, the kernel's own prepare() for the ISA.
          const std::size_t stride = kpad * edge::detail::xformat_bytes(set.xformat) + 64;
          std::vector<uint8_t> xs(rows * stride), xk(rows * stride);
          for (std::size_t r = 0; r < rows; ++r) {
            std::memcpy(&xs[r * stride], &x[r * kpad], kpad);
            int32_t want_sum = 0;
            for (std::size_t i = 0; i < kpad; ++i) want_sum += x[r * kpad + i];
            if (set.prepare(&x[r * kpad], kpad, &xk[r * stride]) != want_sum) ++bad;
          }
          std::vector<int32_t> a(rows * 16, 7), b(rows * 16, -7);
          rset.gemv.fn(1, nblocks, w.data(), xs.data(), stride, a.data());
          for (std::size_t r = 1; r < rows; ++r) {
            rset.gemv.fn(1, nblocks, w.data(), xs.data() + r * stride, stride, a.data() + r * 16);
          }
          k->fn(rows, nblocks, w.data(), xk.data(), stride, b.data());
          if (set.xformat == edge::detail::XFormat::kUint8) {
            // (x + 128) * w: remove 128 * sum(w) per channel to compare.
            for (std::size_t c = 0; c < 16; ++c) {
              int32_t sum = 0;
              for (std::size_t bl = 0; bl < nblocks; ++bl) {
                for (int kk = 0; kk < 4; ++kk) sum += static_cast<int8_t>(w[bl * 64 + c * 4 + kk]);
              }
              for (std::size_t r = 0; r < rows; ++r) b[r * 16 + c] -= 128 * sum;
            }
          }
          if (a != b) {
            ++bad;
            if (bad == 1) {
              std::printf("  %s %s rows=%zu nblocks=%zu wmode=%d xmode=%d\n", k->name,
                          edge::isa_name(isa), rows, nblocks, wmode, xmode);
            }
          }
        }
      }
      EDGE_CHECK(bad == 0);
    }
  }
}

// `trials` random FC problems of every weight type, m, n and k drawn from the lists (in that
// order, from `rng`), each checked on every ISA against the scalar reference: the failures.
template <std::size_t M, std::size_t N, std::size_t K>
int random_fc_failures(Rng& rng, const int32_t (&ms)[M], const int32_t (&ns)[N],
                       const int32_t (&ks)[K], int trials) {
  int failures = 0, cases = 0;
  for (WeightType type : kTypes) {
    for (int trial = 0; trial < trials; ++trial) {
      const int32_t m = ms[rng.uniform(0, static_cast<int32_t>(M) - 1)],
                    n = ns[rng.uniform(0, static_cast<int32_t>(N) - 1)],
                    k = ks[rng.uniform(0, static_cast<int32_t>(K) - 1)];
      FcProblem p = random_fc(rng, type, m, n, k);
      ++cases;
      if (!check_fc(p)) ++failures;
    }
  }
  std::printf("  %d cases on %s, %d failed\n", cases, isa_list(test_isas()).c_str(), failures);
  return failures;
}

// GemmKernels::row_sums (the sums of 1x1 rows read in place, conv2d.cc) against a plain loop,
// for every ISA that has one: every row length 1-80 (the 32-, 16- and 8-byte steps and the byte
// tail in each combination), long rows, rows apart by a stride, and the extreme values (sums of
// 255 x -128 and 127 bytes). Every SIMD table whose sub-byte entries take int8 rows as they are
// (XFormat::kInt8: every x86 and Arm tier) has one.
EDGE_TEST(row_sums_every_isa_match_scalar) {
  Rng rng(17);
  int bad = 0, checked = 0;
  for (Isa isa : test_isas()) {
    const auto& kern = edge::detail::isa_kernels(isa);
    for (WeightType type : kTypes) {
      const edge::detail::GemmKernels& gk = kern.gemm[static_cast<int>(type)];
      if (isa != Isa::kScalar && type != WeightType::kInt8 &&
          gk.xformat == edge::detail::XFormat::kInt8 && gk.row_sums == nullptr) {
        std::printf("  %s %s: no row_sums\n", edge::isa_name(isa), edge::weight_type_name(type));
        ++bad;
      }
      const edge::detail::RowSumsFn fn = gk.row_sums;
      if (fn == nullptr) continue;
      for (std::size_t n = 1; n <= 1040; n += n < 80 ? 1 : 137) {
        const std::size_t rows = static_cast<std::size_t>(rng.uniform(1, 9));
        const std::size_t stride = n + static_cast<std::size_t>(rng.uniform(0, 3)) * 7;
        const int mode = static_cast<int>(n % 3);
        std::vector<int8_t> x(rows * stride);
        for (auto& v : x) {
          v = static_cast<int8_t>(mode == 0 ? -128 : mode == 1 ? 127 : rng.uniform(-128, 127));
        }
        std::vector<int32_t> got(rows, 12345);
        fn(x.data(), n, stride, rows, got.data());
        for (std::size_t r = 0; r < rows; ++r) {
          int32_t want = 0;
          for (std::size_t i = 0; i < n; ++i) want += x[r * stride + i];
          if (got[r] != want) ++bad;
          ++checked;
        }
      }
    }
  }
  std::printf("  %d row sums checked, %d wrong\n", checked, bad);
  EDGE_CHECK(bad == 0);
}

EDGE_TEST(fc_every_isa_random_shapes) {
  Rng rng(1);
  const int32_t ms[] = {1, 2, 3, 4, 5, 7, 8, 9, 13};
  const int32_t ns[] = {1, 3, 15, 16, 17, 33, 40};
  const int32_t ks[] = {1, 3, 4, 5, 8, 15, 16, 17, 31, 33, 64, 100, 255};
  EDGE_CHECK(random_fc_failures(rng, ms, ns, ks, 100) == 0);
}

// Tall and deep: row counts around the 16-row tile of the AMX GEMM (and the 8-row register
// blocks of the VNNI ones) and K around its 64-k steps (16 blocks per B tile, with and without a
// remainder), every ISA against the scalar reference.
EDGE_TEST(fc_every_isa_tile_rows_and_k_steps) {
  Rng rng(11);
  const int32_t ms[] = {14, 15, 16, 17, 31, 32, 33, 48};
  const int32_t ns[] = {16, 17, 48};
  const int32_t ks[] = {60, 63, 64, 65, 128, 129, 192, 260, 1024};
  EDGE_CHECK(random_fc_failures(rng, ms, ns, ks, 24) == 0);
}

EDGE_TEST(fc_every_isa_extreme_values) {
  Rng rng(2);
  const Fill fills[] = {Fill::kMin, Fill::kMax, Fill::kZero, Fill::kAlternate};
  int failures = 0;
  for (WeightType type : kTypes) {
    for (Fill xf : fills) {
      for (Fill wf : fills) {
        FcProblem p = random_fc(rng, type, rng.uniform(1, 6), 19, 700, xf, wf);
        if (!check_fc(p)) ++failures;
      }
    }
  }
  // All -1 ternary, at the largest M*K the suite affords.
  FcProblem p = random_fc(rng, WeightType::kTernary, 3, 17, 2000, Fill::kMin, Fill::kMin);
  if (!check_fc(p)) ++failures;
  EDGE_CHECK(failures == 0);
}

EDGE_TEST(fc_per_group_scales_every_isa) {
  Rng rng(3);
  int failures = 0;
  for (WeightType type : kTypes) {
    for (int trial = 0; trial < 6; ++trial) {
      const int32_t kb = edge::block_k(type);
      FcProblem p = random_fc(rng, type, rng.uniform(1, 9), rng.uniform(1, 40), rng.uniform(1, 200));
      p.group_size = kb * rng.uniform(1, 4);
      const int32_t groups = (p.k + p.group_size - 1) / p.group_size;
      p.group_scales.resize(static_cast<std::size_t>(p.n) * groups);
      for (auto& s : p.group_scales) s = rng.uniform_float(0.1f, 2.0f);
      const edge::PackedWeights w = pack(p);
      // Float reference in double: real = in_scale * scale * (bias + sum_g gs * acc_g).
      std::vector<double> want(static_cast<std::size_t>(p.m) * p.n);
      for (int32_t r = 0; r < p.m; ++r) {
        for (int32_t c = 0; c < p.n; ++c) {
          double total = p.bias[c];
          for (int32_t g = 0; g < groups; ++g) {
            int64_t acc = 0;
            for (int32_t kk = g * p.group_size; kk < std::min(p.k, (g + 1) * p.group_size); ++kk) {
              acc += static_cast<int64_t>(p.x[static_cast<std::size_t>(r) * p.k + kk] -
                                          p.options.input.zero_point) *
                     (p.w[static_cast<std::size_t>(c) * p.k + kk] - p.wzp[c]);
            }
            total += static_cast<double>(p.group_scales[static_cast<std::size_t>(c) * groups + g]) * acc;
          }
          const float ws = p.scales.size() == 1 ? p.scales[0] : p.scales[c];
          want[static_cast<std::size_t>(r) * p.n + c] = total * p.options.input.scale * ws;
        }
      }
      p.options.activation = edge::Activation::kNone;
      std::vector<float> f0;
      std::vector<int8_t> q0;
      for (Isa isa : test_isas()) {
        const std::vector<float> f = run_fc<float>(p, w, isa, OutputType::kFloat32);
        const std::vector<int8_t> q = run_fc<int8_t>(p, w, isa, OutputType::kInt8);
        if (isa == Isa::kScalar) {
          f0 = f;
          q0 = q;
          for (std::size_t i = 0; i < f.size(); ++i) {
            const double tol = 1e-4 * (std::fabs(want[i]) + 1e-3) + 1e-6;
            if (std::fabs(f[i] - want[i]) > tol) {
              ++failures;
              std::printf("  group float %s: %g vs %g\n", edge::weight_type_name(type), f[i], want[i]);
              break;
            }
          }
        } else if (!same_floats(f, f0) || q != q0) {
          ++failures;
          std::printf("  group mismatch %s %s\n", edge::weight_type_name(type), edge::isa_name(isa));
        }
      }
    }
  }
  EDGE_CHECK(failures == 0);
}

EDGE_TEST(fc_threads_do_not_change_results) {
  Rng rng(4);
  edge::ThreadPool pool1(1), pool2(2), pool3(3);
  for (WeightType type : kTypes) {
    for (int32_t m : {1, 37}) {
      FcProblem p = random_fc(rng, type, m, 300, 130);
      const edge::PackedWeights w = pack(p);
      const Isa isa = edge::best_isa();
      const auto a = run_fc<int8_t>(p, w, isa, OutputType::kInt8, nullptr);
      EDGE_CHECK(a == run_fc<int8_t>(p, w, isa, OutputType::kInt8, &pool1));
      EDGE_CHECK(a == run_fc<int8_t>(p, w, isa, OutputType::kInt8, &pool2));
      EDGE_CHECK(a == run_fc<int8_t>(p, w, isa, OutputType::kInt8, &pool3));
      EDGE_CHECK(a == reference_requant(reference_fc_acc(p), p.n, p.scales, p.options, true));
    }
  }
}

EDGE_TEST(fc_rejects_bad_input) {
  Rng rng(9);
  FcProblem p = random_fc(rng, WeightType::kInt8, 2, 5, 7);
  const edge::PackedWeights w = pack(p);
  edge::LayerOptions o = p.options;
  o.output_type = OutputType::kInt8;
  edge::FullyConnected fc(w.view(), o);
  std::vector<float> f(10);
  EDGE_CHECK(throws<std::invalid_argument>([&] { fc.run(p.x.data(), 2, f.data()); }));
  o.clamp = edge::ClampRange{10, -10};
  EDGE_CHECK(throws<std::invalid_argument>([&] { edge::FullyConnected bad(w.view(), o); }));
  o.clamp.reset();
  o.input.zero_point = 300;
  EDGE_CHECK(throws<std::invalid_argument>([&] { edge::FullyConnected bad(w.view(), o); }));
}

namespace {

// The int8 outputs the reference gives for convolution problem `p` (geometry g, oc channels).
std::vector<int8_t> reference_conv_int8(const edge::ConvGeometry& g, int32_t oc,
                                        const std::vector<int8_t>& input, const FcProblem& p) {
  const std::vector<int32_t> acc = reference_conv_acc(g, oc, input, p.w, p.wzp,
                                                      p.options.input.zero_point, p.bias);
  return reference_requant(acc, oc, p.scales, p.options, false);
}

// An int8-output convolution of problem `p` (its weights' options and bias) on `isa`.
edge::Conv2DOptions conv_options(const FcProblem& p, const edge::ConvGeometry& g, Isa isa) {
  edge::Conv2DOptions o;
  static_cast<edge::LayerOptions&>(o) = p.options;
  o.geometry = g;
  o.isa = isa;
  o.bias = p.bias.data();
  o.output_type = OutputType::kInt8;
  return o;
}

// A random batch (1-2), kernel (1-3 each way) and stride (1-2), drawn in this order: the start
// of every random conv geometry below.
edge::ConvGeometry random_window(Rng& rng) {
  edge::ConvGeometry g;
  g.batch = rng.uniform(1, 2);
  g.kernel_height = rng.uniform(1, 3);
  g.kernel_width = rng.uniform(1, 3);
  g.stride_height = rng.uniform(1, 2);
  g.stride_width = rng.uniform(1, 2);
  return g;
}

// A random convolution geometry (the draws in this order from `rng`): random_window, dilations
// 1-2, any padding mode with explicit pads 0-2, an input of at least one dilated kernel window
// and at most max_hw rows / columns, 1 to max_channels channels.
edge::ConvGeometry random_geometry(Rng& rng, int32_t max_hw, int32_t max_channels) {
  const edge::Padding paddings[] = {edge::Padding::kValid, edge::Padding::kSame,
                                    edge::Padding::kExplicit};
  edge::ConvGeometry g = random_window(rng);
  g.dilation_height = rng.uniform(1, 2);
  g.dilation_width = rng.uniform(1, 2);
  g.padding = paddings[rng.uniform(0, 2)];
  g.pad_top = rng.uniform(0, 2);
  g.pad_bottom = rng.uniform(0, 2);
  g.pad_left = rng.uniform(0, 2);
  g.pad_right = rng.uniform(0, 2);
  g.input_height = rng.uniform((g.kernel_height - 1) * g.dilation_height + 1, max_hw);
  g.input_width = rng.uniform((g.kernel_width - 1) * g.dilation_width + 1, max_hw);
  g.input_channels = rng.uniform(1, max_channels);
  return g;
}

}  // namespace

EDGE_TEST(conv2d_every_isa_random_geometry) {
  Rng rng(6);
  int failures = 0, cases = 0;
  for (WeightType type : kTypes) {
    for (int trial = 0; trial < 25; ++trial) {
      edge::ConvGeometry g = random_geometry(rng, 9, 20);
      if (trial == 0) {  // a pointwise conv takes the im2col-free path
        g.kernel_height = g.kernel_width = g.stride_height = g.stride_width = 1;
        g.padding = edge::Padding::kValid;
      }
      const int32_t oc = rng.uniform(1, 40);
      const int32_t k = g.kernel_height * g.kernel_width * g.input_channels;
      FcProblem p = random_fc(rng, type, 1, oc, k);  // weights, scales, quant options
      const std::vector<int8_t> input =
          rng.int8s(static_cast<std::size_t>(g.batch) * g.input_height * g.input_width *
                        g.input_channels, -128, 127);
      const std::vector<int32_t> acc = reference_conv_acc(g, oc, input, p.w, p.wzp,
                                                          p.options.input.zero_point, p.bias);
      const std::vector<int8_t> want = reference_requant(acc, oc, p.scales, p.options, false);
      const edge::PackedWeights w = pack(p);
      ++cases;
      for (Isa isa : test_isas()) {
        edge::Conv2DOptions o = conv_options(p, g, isa);
        o.output_type = OutputType::kInt32;
        edge::Conv2D conv32(w.view(), o);
        std::vector<int32_t> got32(acc.size());
        conv32.run(input.data(), got32.data());
        o.output_type = OutputType::kInt8;
        edge::Conv2D conv8(w.view(), o);
        std::vector<int8_t> got8(acc.size());
        edge::ThreadPool pool(2);
        conv8.run(input.data(), got8.data(), &pool);
        const long a = first_mismatch(got32, acc), b = first_mismatch(got8, want);
        if (a >= 0 || b >= 0) {
          ++failures;
          std::printf("  conv mismatch %s %s k=%dx%d s=%d,%d d=%d,%d pad=%d cin=%d oc=%d at %ld/%ld\n",
                      edge::weight_type_name(type), edge::isa_name(isa), g.kernel_height,
                      g.kernel_width, g.stride_height, g.stride_width, g.dilation_height,
                      g.dilation_width, static_cast<int>(g.padding), g.input_channels, oc, a, b);
        }
      }
    }
  }
  std::printf("  %d cases, %d failed\n", cases, failures);
  EDGE_CHECK(failures == 0);
}

// The fused GEMM epilogues (qs8_*_gemm_requant_*, AVX-512 VNNI and AVX2, every weight type,
// output rows past the kernels' 8 / 4 / 3-row groups): multipliers >= 1 (pre-shift; with
// single rounding they saturate and take the unfused path), tiny ones (no zero-point fold),
// weight zero points (none, uniform, per channel), channel tails, every rounding rule.
EDGE_TEST(conv2d_fused_requant_multiplier_regimes) {
  Rng rng(23);
  int failures = 0, cases = 0;
  for (int trial = 0; trial < 48; ++trial) {
    edge::ConvGeometry g;
    g.kernel_height = g.kernel_width = trial % 2 == 0 ? 1 : 3;
    g.padding = edge::Padding::kSame;
    g.input_height = rng.uniform(3, 7);
    g.input_width = rng.uniform(3, 7);
    g.input_channels = rng.uniform(1, 70);
    const int32_t oc = rng.uniform(1, 50);
    const int32_t k = g.kernel_height * g.kernel_width * g.input_channels;
    const WeightType type = kTypes[(trial / 2) % 4];
    // Extremes (all -128 / all 127 activations and weights) now and then.
    const Fill fill = trial % 8 == 5 ? Fill::kMin : trial % 8 == 6 ? Fill::kMax : Fill::kRandom;
    FcProblem p = random_fc(rng, type, 1, oc, k, Fill::kRandom, fill);
    p.options.rounding = static_cast<edge::Rounding>(trial % 3);
    const int regime = (trial / 3) % 3;
    if (regime == 1) {  // multipliers in [1, 8)
      p.options.input.scale = 0.05f;
      p.options.output.scale = 0.002f;
      for (auto& sc : p.scales) sc = rng.uniform_float(0.05f, 0.3f);
    } else if (regime == 2) {  // below 2^-24
      p.options.input.scale = 0.01f;
      p.options.output.scale = 100.0f;
      for (auto& sc : p.scales) sc = rng.uniform_float(0.0001f, 0.0004f);
      for (auto& b : p.bias) b = rng.uniform(-1000000000, 1000000000);
    }
    const int zp_kind = (trial / 9) % 3;
    if (type == WeightType::kInt8) {  // sub-byte types keep random_fc's zero points
      for (std::size_t c = 0; c < p.wzp.size(); ++c) {
        p.wzp[c] = zp_kind == 0 ? 0 : zp_kind == 1 ? 3 : rng.uniform(-5, 5);
      }
    }
    const std::vector<int8_t> input = fill_values(
        rng, static_cast<std::size_t>(g.input_height) * g.input_width * g.input_channels, -128,
        127, fill);
    const std::vector<int8_t> want = reference_conv_int8(g, oc, input, p);
    const edge::PackedWeights w = pack(p);
    ++cases;
    for (Isa isa : test_isas()) {
      const edge::Conv2DOptions o = conv_options(p, g, isa);
      edge::Conv2D conv(w.view(), o);
      if (isa == Isa::kAvx512Vnni || isa == Isa::kAvx2) {
        const bool saturating = regime == 1 && p.options.rounding == edge::Rounding::kSingle;
        EDGE_CHECK((std::strstr(conv.kernel_name(), "requant") != nullptr) != saturating);
      }
      std::vector<int8_t> got(want.size());
      conv.run(input.data(), got.data());
      const long b = first_mismatch(got, want);
      if (b >= 0) {
        ++failures;
        std::printf("  fused conv mismatch %s %s regime=%d zp=%d rounding=%d cin=%d oc=%d at %ld\n",
                    edge::weight_type_name(type), edge::isa_name(isa), regime, zp_kind, trial % 3,
                    g.input_channels, oc, b);
      }
    }
  }
  std::printf("  %d cases, %d failed\n", cases, failures);
  EDGE_CHECK(failures == 0);
}

// A 1x1 stride-1 layer over one row of `pixels` pixels of k channels: weights and options from
// random_fc (rounding drawn, then `clamp` where given), the input, and the reference output.
struct PointwiseCase {
  edge::ConvGeometry g;
  int32_t oc = 0;
  FcProblem p;
  std::vector<int8_t> input;
  std::vector<int8_t> want;
};

PointwiseCase random_pointwise(Rng& rng, WeightType type, int32_t pixels, int32_t k, int32_t oc,
                               std::optional<edge::ClampRange> clamp = std::nullopt) {
  PointwiseCase c;
  c.g.kernel_height = c.g.kernel_width = 1;
  c.g.padding = edge::Padding::kValid;
  c.g.input_height = 1;
  c.g.input_width = pixels;
  c.g.input_channels = k;
  c.oc = oc;
  c.p = random_fc(rng, type, 1, oc, k);
  c.p.options.rounding = static_cast<edge::Rounding>(rng.uniform(0, 2));
  if (clamp) c.p.options.clamp = *clamp;
  c.input = rng.int8s(static_cast<std::size_t>(pixels) * k, -128, 127);
  c.want = reference_conv_int8(c.g, oc, c.input, c.p);
  return c;
}

// Runs `conv` on `input` alone and on `pool2`; returns the runs that differ from c.want, each
// printed with `what` and the layer.
int pointwise_mismatches(edge::Conv2D& conv, const PointwiseCase& c, const int8_t* input,
                         edge::ThreadPool* pool2, const char* what) {
  int failures = 0;
  for (edge::ThreadPool* pool : {static_cast<edge::ThreadPool*>(nullptr), pool2}) {
    std::vector<int8_t> got(c.want.size(), 0x55);
    conv.run(input, got.data(), pool);
    const long b = first_mismatch(got, c.want);
    if (b >= 0) {
      ++failures;
      std::printf("  %s mismatch %s %s %s threads=%d pixels=%d k=%d oc=%d rounding=%d at %ld\n",
                  what, edge::weight_type_name(c.p.type), edge::isa_name(conv.isa()),
                  conv.kernel_name(), pool != nullptr ? pool->num_threads() : 1,
                  c.g.input_width, c.g.input_channels, c.oc,
                  static_cast<int>(c.p.options.rounding), b);
    }
  }
  return failures;
}

// The fused sub-byte GEMM over many rows per call (AVX2: qs8_qc4w/qc2w_gemm_requant_4x16c4
// take up to GemmQs8Kernel::mr = 64 rows of one tile, in 4-row groups and a 1-3 row tail, the
// epilogue constants loaded once per call, rows requantised and clamped in pairs): 1x1 convs
// over the MobileNet's small K (8-96), pixel counts around the 64-row calls and the 4-row
// groups, channel tails, narrow clamps, weight zero points, every rounding rule, 1 and 2
// threads; bit-exact against the reference on every ISA of the host.
EDGE_TEST(conv2d_fused_subbyte_pointwise_row_calls) {
  Rng rng(41);
  int failures = 0, cases = 0;
  const int32_t pixels[] = {1, 2, 3, 5, 7, 63, 64, 65, 66, 67, 129, 200};
  // K 384 and 512: 2-bit weights run the fused GEMM up to K < 1024 on AVX2 (Conv2D's
  // small_pointwise), rows read in place
  const int32_t ks[] = {8, 16, 24, 32, 40, 96, 384, 512};
  const int32_t ocs[] = {5, 16, 17, 24, 40, 96};
  const WeightType types[] = {WeightType::kInt4, WeightType::kTernary, WeightType::kInt2};
  edge::ThreadPool pool2(2);
  for (int trial = 0; trial < 36; ++trial) {
    const int32_t k = ks[rng.uniform(0, 7)];
    const int32_t oc = ocs[rng.uniform(0, 5)];
    std::optional<edge::ClampRange> clamp;
    if (trial % 4 == 1) clamp = edge::ClampRange{-20, 90};  // narrow, both sides
    if (trial % 4 == 3) clamp = edge::ClampRange{-128, -100};
    const PointwiseCase c =
        random_pointwise(rng, types[trial % 3], pixels[trial % 12], k, oc, clamp);
    const edge::PackedWeights w = pack(c.p);
    ++cases;
    for (Isa isa : test_isas()) {
      edge::Conv2D conv(w.view(), conv_options(c.p, c.g, isa));
      failures += pointwise_mismatches(conv, c, c.input.data(), &pool2, "pointwise");
    }
  }
  std::printf("  %d cases, %d failed\n", cases, failures);
  EDGE_CHECK(failures == 0);
}

// Conv2D::run_pixels (issue 17: a depthwise layer's tasks run the 1x1 layer after it on the
// pixels they wrote): any range of a 1x1 layer's output pixels, on any thread's workspace, in
// any order, gives run()'s bytes; int8 and sub-byte weights, ranges across the 64-row calls and
// the 4-row groups, 1-row ranges; every ISA of the host, with the indirect conv on and off
// (EDGE_CONV_IGEMM=0: the im2col path and its in-place rows).
EDGE_TEST(conv2d_run_pixels_any_range_gives_run_bytes) {
  Rng rng(43);
  int failures = 0, cases = 0;
  const WeightType types[] = {WeightType::kInt8, WeightType::kInt4, WeightType::kTernary,
                              WeightType::kInt2};
  const int32_t pixels[] = {1, 5, 67, 200};
  const int32_t ks[] = {16, 32, 96, 144};
  const int32_t ocs[] = {16, 24, 40, 96};
  for (const char* igemm : {"", "0"}) {
    setenv("EDGE_CONV_IGEMM", igemm, 1);
    for (int trial = 0; trial < 16; ++trial) {
      const PointwiseCase c = random_pointwise(rng, types[trial % 4], pixels[trial / 4 % 4],
                                               ks[rng.uniform(0, 3)], ocs[rng.uniform(0, 3)]);
      const edge::PackedWeights w = pack(c.p);
      const std::size_t n = static_cast<std::size_t>(c.g.input_width);
      for (Isa isa : test_isas()) {
        edge::Conv2D conv(w.view(), conv_options(c.p, c.g, isa));
        EDGE_CHECK(conv.runs_pixels());
        conv.reserve(3);
        ++cases;
        std::vector<int8_t> got(c.want.size(), 0x55);
        // Ranges of 1 to 70 pixels, from the back, on threads 2, 1, 0, 2, ...
        std::size_t p1 = n;
        for (int part = 0; p1 > 0; ++part) {
          const std::size_t len =
              std::min(p1, static_cast<std::size_t>(part % 3 == 0 ? 1 : rng.uniform(2, 70)));
          conv.run_pixels(c.input.data(), got.data(), p1 - len, p1, 2 - part % 3);
          p1 -= len;
        }
        const long b = first_mismatch(got, c.want);
        if (b >= 0) {
          ++failures;
          std::printf("  run_pixels mismatch %s %s %s igemm=%s pixels=%zu k=%d oc=%d at %ld\n",
                      edge::weight_type_name(c.p.type), edge::isa_name(conv.isa()),
                      conv.kernel_name(), igemm, n, c.g.input_channels, c.oc, b);
        }
      }
    }
  }
  unsetenv("EDGE_CONV_IGEMM");
  std::printf("  %d cases, %d failed\n", cases, failures);
  EDGE_CHECK(failures == 0);
}

// A buffer of `bytes` that ends exactly where an unreadable page starts: a kernel that reads
// one byte past it faults, on every build (Release, qemu-user), not only under ASan (whose
// redzone would also catch it). Falls back to a plain heap buffer where mmap is not available.
class GuardedBytes {
 public:
  explicit GuardedBytes(std::size_t bytes) {
#if defined(__linux__)
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    span_ = (bytes + page - 1) / page * page + page;
    void* m = ::mmap(nullptr, span_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) {
      base_ = static_cast<uint8_t*>(m);
      if (::mprotect(base_ + span_ - page, page, PROT_NONE) == 0) {
        data_ = reinterpret_cast<int8_t*>(base_ + span_ - page - bytes);
        guarded_ = true;
        return;
      }
      ::munmap(base_, span_);
      base_ = nullptr;
    }
#endif
    heap_.resize(bytes);
    data_ = heap_.data();
  }
  ~GuardedBytes() {
#if defined(__linux__)
    if (base_ != nullptr) ::munmap(base_, span_);
#endif
  }
  GuardedBytes(const GuardedBytes&) = delete;
  GuardedBytes& operator=(const GuardedBytes&) = delete;
  int8_t* data() { return data_; }
  bool guarded() const { return guarded_; }

 private:
  std::size_t span_ = 0;
  uint8_t* base_ = nullptr;
  int8_t* data_ = nullptr;
  bool guarded_ = false;
  std::vector<int8_t> heap_;
};

// 1x1 stride-1 layers whose input ends at an unreadable page, every weight type and ISA, the
// indirect conv on and off (EDGE_CONV_IGEMM=0: then every ISA's 1x1 rows that need no
// preparation, int8 on the Arm tiers included, are read in place at the input's stride, ee85008),
// 1 and 2 threads: no kernel may read past the last input row (the fused kernels alias missing
// rows to the last real one; their K tails load 4 or 8 bytes, not a whole vector), and the
// outputs are bit-exact against the reference. K covers odd int8 block counts (i8mm's last
// 4-byte block), K % 16 != 0 (the dotprod 16-byte steps' tail) and a K that is no whole
// block (the prepared path).
EDGE_TEST(conv2d_pointwise_rows_end_at_a_guard_page) {
  Rng rng(43);
  int failures = 0, cases = 0, guarded = 0, gemm_runs = 0;
  const int32_t pixels[] = {2, 3, 5, 7, 66};
  const int32_t ks[] = {4, 8, 10, 12, 16, 20, 24, 32, 36, 48, 96};
  const int32_t ocs[] = {5, 16, 24, 40};
  const char* saved = std::getenv("EDGE_CONV_IGEMM");
  const std::string saved_value = saved != nullptr ? saved : "";
  edge::ThreadPool pool2(2);
  for (int trial = 0; trial < 40; ++trial) {
    const int32_t k = ks[rng.uniform(0, 10)];
    const int32_t oc = ocs[rng.uniform(0, 3)];
    const PointwiseCase c = random_pointwise(rng, kTypes[trial % 4], pixels[trial % 5], k, oc);
    GuardedBytes guarded_input(c.input.size());
    std::memcpy(guarded_input.data(), c.input.data(), c.input.size());
    guarded += guarded_input.guarded() ? 1 : 0;
    const edge::PackedWeights w = pack(c.p);
    ++cases;
    for (const char* igemm : {"1", "0"}) {
      ::setenv("EDGE_CONV_IGEMM", igemm, 1);  // read when the Conv2D is planned
      for (Isa isa : test_isas()) {
        edge::Conv2D conv(w.view(), conv_options(c.p, c.g, isa));
        // the fused GEMM (rows in place where they need no preparation), not the indirect conv
        gemm_runs += std::strstr(conv.kernel_name(), "_gemm_requant_") != nullptr ? 1 : 0;
        failures += pointwise_mismatches(conv, c, guarded_input.data(), &pool2,
                                         igemm[0] == '1' ? "guarded pointwise, indirect on"
                                                         : "guarded pointwise, indirect off");
      }
    }
  }
  if (saved != nullptr) {
    ::setenv("EDGE_CONV_IGEMM", saved_value.c_str(), 1);
  } else {
    ::unsetenv("EDGE_CONV_IGEMM");
  }
  std::printf("  %d cases (%d with the input against a guard page), %d layers on the fused GEMM, "
              "%d failed\n",
              cases, guarded, gemm_runs, failures);
  EDGE_CHECK(failures == 0);
}

// Conv2D::run_pixels reads no input past its range (stop 29's review of 7e025ca): in a fused
// depthwise + 1x1 job a task's 1x1 layer runs on the pixels its depthwise task just wrote while
// another thread may still write the pixels after them (runs of pixels that cross row ends:
// any range), so a read past the range, even of bytes masked off, is a data race. Every weight
// type and ISA, the indirect conv on and off, K from 1 (padded blocks) to 144 (the raw int8 rows,
// the prepared rows, the fused GEMM's rows read in place, their K tails); ranges of 1-9 pixels,
// each with its input ending at an unreadable page: a read past the range faults; the bytes
// equal the reference.
EDGE_TEST(conv2d_run_pixels_reads_no_input_past_its_range) {
  Rng rng(47);
  int failures = 0, cases = 0, guarded = 0;
  const int32_t ks[] = {1, 2, 3, 4, 10, 16, 20, 32, 36, 96, 144};
  const int32_t pixel_counts[] = {5, 9, 40};
  const int32_t ocs[] = {5, 16, 24, 40};
  const char* saved = std::getenv("EDGE_CONV_IGEMM");
  const std::string saved_value = saved != nullptr ? saved : "";
  for (int trial = 0; trial < 44; ++trial) {
    const int32_t k = ks[trial % 11];
    const PointwiseCase c = random_pointwise(rng, kTypes[trial % 4], pixel_counts[trial % 3], k,
                                             ocs[rng.uniform(0, 3)]);
    const edge::PackedWeights w = pack(c.p);
    const std::size_t n = static_cast<std::size_t>(c.g.input_width);
    const std::size_t cin = static_cast<std::size_t>(k);
    for (const char* igemm : {"1", "0"}) {
      ::setenv("EDGE_CONV_IGEMM", igemm, 1);  // read when the Conv2D is planned
      for (Isa isa : test_isas()) {
        edge::Conv2D conv(w.view(), conv_options(c.p, c.g, isa));
        if (!conv.runs_pixels()) continue;
        conv.reserve(1);
        ++cases;
        std::vector<int8_t> got(c.want.size(), 0x55);
        for (std::size_t p0 = 0; p0 < n;) {
          const std::size_t p1 = std::min(n, p0 + static_cast<std::size_t>(rng.uniform(1, 9)));
          GuardedBytes input(p1 * cin);  // pixels [0, p1): the ones after p1 unreadable
          std::memcpy(input.data(), c.input.data(), p1 * cin);
          guarded += input.guarded() ? 1 : 0;
          conv.run_pixels(input.data(), got.data(), p0, p1, 0);
          p0 = p1;
        }
        const long b = first_mismatch(got, c.want);
        if (b >= 0) {
          ++failures;
          std::printf("  run_pixels mismatch %s %s %s igemm=%s pixels=%zu k=%d oc=%d at %ld\n",
                      edge::weight_type_name(c.p.type), edge::isa_name(conv.isa()),
                      conv.kernel_name(), igemm, n, k, c.oc, b);
        }
      }
    }
  }
  if (saved != nullptr) {
    ::setenv("EDGE_CONV_IGEMM", saved_value.c_str(), 1);
  } else {
    ::unsetenv("EDGE_CONV_IGEMM");
  }
  std::printf("  %d cases (%d ranges against a guard page), %d failed\n", cases, guarded,
              failures);
  EDGE_CHECK(cases > 0 && failures == 0);
}

// The indirect conv (qs8_*_igemm_requant_*, on the ISAs whose table has one; taken when the
// input channels are a multiple of the weights' block_k, or padded to one): padding on every
// side, strides, dilations, batches,
// odd output channels (tile tails) and pixel counts (row tails), weight zero points, extreme
// inputs, every rounding rule, 1 and 2 threads; bit-exact against the reference.
EDGE_TEST(conv2d_indirect_gemm_random_geometry) {
  Rng rng(31);
  int failures = 0, cases = 0;
  int indirect[9] = {};  // by Isa: cases the indirect kernel took
  int eligible[9] = {};  // by Isa: cases whose weight type has an indirect kernel on that ISA
  for (int trial = 0; trial < 64; ++trial) {
    const WeightType type = kTypes[trial % 4];
    edge::ConvGeometry g = random_window(rng);
    g.dilation_height = trial % 8 == 5 ? 2 : 1;
    g.dilation_width = trial % 8 == 3 ? 2 : 1;
    g.padding = trial % 3 == 0 ? edge::Padding::kSame : edge::Padding::kExplicit;
    g.pad_top = rng.uniform(0, 2);
    g.pad_bottom = rng.uniform(0, 2);
    g.pad_left = rng.uniform(0, 2);
    g.pad_right = rng.uniform(0, 2);
    if (trial % 16 == 1) {  // pointwise, stride 1: the one-pass offset instead of a row copy
      g.kernel_height = g.kernel_width = g.stride_height = g.stride_width = 1;
      g.dilation_height = g.dilation_width = 1;
      g.padding = edge::Padding::kValid;
    }
    g.input_height = rng.uniform((g.kernel_height - 1) * g.dilation_height + 1, 10);
    g.input_width = rng.uniform((g.kernel_width - 1) * g.dilation_width + 1, 10);
    g.input_channels = edge::block_k(type) * rng.uniform(1, 3);
    // One channel short of the blocks: the taps are padded to whole blocks (the 3-channel stem).
    if ((trial / 4) % 2 == 1) g.input_channels -= 1;
    const int32_t oc = rng.uniform(1, 40) | 1;
    const int32_t k = g.kernel_height * g.kernel_width * g.input_channels;
    FcProblem p = random_fc(rng, type, 1, oc, k);
    p.options.rounding = static_cast<edge::Rounding>(trial % 3);
    if (type == WeightType::kInt8) {
      const int zp_kind = (trial / 4) % 3;
      for (std::size_t c = 0; c < p.wzp.size(); ++c) {
        p.wzp[c] = zp_kind == 0 ? 0 : zp_kind == 1 ? 3 : rng.uniform(-5, 5);
      }
    }
    const std::size_t in_size = static_cast<std::size_t>(g.batch) * g.input_height *
                                g.input_width * g.input_channels;
    std::vector<int8_t> input = rng.int8s(in_size, -128, 127);
    if (trial % 5 == 2) std::fill(input.begin(), input.end(), int8_t{-128});
    if (trial % 5 == 4) std::fill(input.begin(), input.end(), int8_t{127});
    if (trial % 7 == 3) p.options.input.zero_point = trial % 2 == 0 ? -128 : 127;
    const std::vector<int8_t> want = reference_conv_int8(g, oc, input, p);
    const edge::PackedWeights w = pack(p);
    ++cases;
    for (Isa isa : test_isas()) {
      const edge::Conv2DOptions o = conv_options(p, g, isa);
      edge::Conv2D conv(w.view(), o);
      if (std::strstr(conv.kernel_name(), "_igemm_") != nullptr) ++indirect[static_cast<int>(isa)];
      if (edge::detail::isa_kernels(isa).igemm_qs8[static_cast<int>(type)].fn != nullptr) {
        ++eligible[static_cast<int>(isa)];
      }
      edge::ThreadPool pool(2);
      for (edge::ThreadPool* pp : {static_cast<edge::ThreadPool*>(nullptr), &pool}) {
        std::vector<int8_t> got(want.size());
        conv.run(input.data(), got.data(), pp);
        conv.run(input.data(), got.data(), pp);  // a second run reuses the prepared buffers
        const long b = first_mismatch(got, want);
        if (b >= 0) {
          ++failures;
          std::printf("  indirect conv mismatch %s %s %s k=%dx%d s=%d,%d d=%d,%d cin=%d oc=%d "
                      "threads=%d at %ld\n",
                      edge::weight_type_name(type), edge::isa_name(isa), conv.kernel_name(),
                      g.kernel_height, g.kernel_width, g.stride_height, g.stride_width,
                      g.dilation_height, g.dilation_width, g.input_channels, oc,
                      pp != nullptr ? 2 : 1, b);
        }
      }
    }
  }
  std::printf("  %d cases, %d failed\n", cases, failures);
  EDGE_CHECK(failures == 0);
  // Most eligible cases take the indirect kernel (the rest pad too many channels); an ISA (or a
  // weight type: AMX's int8, which goes through im2col into its tile GEMM) without one, none.
  for (Isa isa : test_isas()) {
    const int i = static_cast<int>(isa);
    std::printf("  %s: %d of %d eligible cases on the indirect kernel\n", edge::isa_name(isa),
                indirect[i], eligible[i]);
    EDGE_CHECK(indirect[i] <= eligible[i] && (eligible[i] == 0 || 8 * indirect[i] > 5 * eligible[i]));
  }
}

// The two-tile indirect kernels (IsaKernels::igemm_qs8_x2: AVX-512 VNNI int8,
// qs8_qc8w_igemm_requant_8x32c4__avx512vnni): channel counts around 16 / 32 / 48 (a last tile
// alone, a short second tile; 23, 24: a second tile of <= 8 channels, on a ymm; 40: a last tile
// of 8 alone), 1x1 and 3x3 windows, K from one block to an L2 chunk of an odd number of tiles
// (960 channels: 17 tiles per pass, cut to 16), row tails, 1 to 3 threads (tile chunks of odd
// size), every rounding rule; bit-exact against the reference, and the
// layer runs the two-tile kernel exactly where Conv2D's rule says (the ISA has one, two tiles
// or more, >= 256 output pixels or K >= 512).
EDGE_TEST(conv2d_indirect_two_tiles) {
  Rng rng(41);
  int failures = 0, cases = 0, wide_cases = 0;
  const int32_t channels_out[] = {16, 17, 23, 24, 31, 32, 33, 40, 48, 80};
  const int32_t channels_in[] = {4, 16, 24, 96, 960};
  int trial = 0;
  for (int32_t cin : channels_in) {
    for (int32_t oc : channels_out) {
      ++trial;
      if (cin == 960 && oc % 16 != 0 && oc != 33) continue;  // keep the big K cases few
      edge::ConvGeometry g;
      g.kernel_height = g.kernel_width = trial % 3 == 0 ? 3 : 1;
      g.padding = edge::Padding::kSame;
      // 35 / 21 pixels (one tile per call below 256 pixels and K 512) or 17 x 17 = 289: row
      // tails for 8-row kernels either way
      g.input_height = trial % 4 < 2 ? 17 : trial % 2 == 0 ? 5 : 3;
      g.input_width = trial % 4 < 2 ? 17 : 7;
      g.input_channels = cin;
      const int32_t k = g.kernel_height * g.kernel_width * cin;
      FcProblem p = random_fc(rng, WeightType::kInt8, 1, oc, k, Fill::kRandom, Fill::kRandom);
      p.options.rounding = static_cast<edge::Rounding>(trial % 3);
      const std::vector<int8_t> input = fill_values(
          rng, static_cast<std::size_t>(g.input_height) * g.input_width * cin, -128, 127,
          Fill::kRandom);
      const std::vector<int8_t> want = reference_conv_int8(g, oc, input, p);
      const edge::PackedWeights w = pack(p);
      ++cases;
      for (Isa isa : test_isas()) {
        const edge::detail::IsaKernels& t = edge::detail::isa_kernels(isa);
        edge::Conv2D conv(w.view(), conv_options(p, g, isa));
        const bool indirect = std::strstr(conv.kernel_name(), "_igemm_") != nullptr;
        const bool wide = indirect && t.igemm_qs8_x2[0].fn != nullptr && oc > 16 &&
                          (g.input_height * g.input_width >= 256 || k >= 512);
        // 1x1 (no padding tap) on an ISA with `_raw` kernels: the two-tile one reading the rows
        // in place
        const bool raw = g.kernel_height == 1 && oc <= 32 && t.igemm_qs8_raw[1].fn != nullptr &&
                         std::all_of(p.wzp.begin(), p.wzp.end(), [](int32_t z) { return z == 0; });
        const char* wide_name = raw ? t.igemm_qs8_raw[1].name : t.igemm_qs8_x2[0].name;
        EDGE_CHECK(!wide || std::strcmp(conv.kernel_name(), wide_name) == 0);
        EDGE_CHECK(wide || wide_name == nullptr || std::strcmp(conv.kernel_name(), wide_name) != 0);
        if (wide) ++wide_cases;
        edge::ThreadPool pool2(2), pool3(3);
        for (edge::ThreadPool* pp : {static_cast<edge::ThreadPool*>(nullptr), &pool2, &pool3}) {
          std::vector<int8_t> got(want.size());
          conv.run(input.data(), got.data(), pp);
          const long b = first_mismatch(got, want);
          if (b >= 0) {
            ++failures;
            std::printf("  two-tile conv mismatch %s %s k=%dx%d cin=%d oc=%d threads=%d at %ld\n",
                        edge::isa_name(isa), conv.kernel_name(), g.kernel_height,
                        g.kernel_width, cin, oc, pp != nullptr ? pp->num_threads() : 1, b);
          }
        }
      }
    }
  }
  bool any_wide_isa = false;
  for (Isa isa : test_isas()) {
    any_wide_isa = any_wide_isa || edge::detail::isa_kernels(isa).igemm_qs8_x2[0].fn != nullptr;
  }
  std::printf("  %d cases, %d on a two-tile kernel, %d failed%s\n", cases, wide_cases, failures,
              any_wide_isa ? "" : " (no ISA of this host has a two-tile kernel)");
  EDGE_CHECK(failures == 0);
  EDGE_CHECK(any_wide_isa ? wide_cases > 10 : wide_cases == 0);
}

// The `_raw` indirect kernels (1x1 int8 layers reading their rows in place, each broadcast
// flipped to x + 128 in the register): bit-exact with the reference over K (every multiple of
// the block from 4 to 40, then long rows), output channels (tiles of 1-16 channels, one and two
// tiles, ymm halves), pixels (row tails of the 8-row kernels), strides 1 and 2, extreme inputs
// and zero points, 1-3 threads; chosen exactly where the rule says (docs/kernels.md, CONV_2D),
// and EDGE_CONV_RAW=0 gives the prepared-row kernel the same bytes.
EDGE_TEST(conv2d_pointwise_raw_rows_every_isa) {
  Rng rng(23);
  int failures = 0, cases = 0, raw_cases = 0, raw_eligible = 0;
  const int32_t ks[] = {4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 96, 144, 516};
  const int32_t ocs[] = {1, 5, 8, 9, 16, 17, 24, 31, 32, 33, 40, 96};
  const int32_t sides[] = {1, 3, 4, 9, 17};
  edge::ThreadPool pool2(2), pool3(3);
  for (int trial = 0; trial < 52; ++trial) {
    edge::ConvGeometry g;
    g.kernel_height = g.kernel_width = 1;
    g.stride_height = g.stride_width = trial % 4 == 3 ? 2 : 1;
    g.padding = trial % 2 == 0 ? edge::Padding::kSame : edge::Padding::kValid;
    g.input_height = sides[trial % 5];
    g.input_width = sides[(trial / 5) % 5];
    g.input_channels = ks[trial % 13];
    const int32_t oc = ocs[(trial * 7) % 12];
    FcProblem p = random_fc(rng, WeightType::kInt8, 1, oc, g.input_channels);
    p.options.rounding = static_cast<edge::Rounding>(trial % 3);
    if (trial % 6 == 5) p.options.input.zero_point = trial % 4 == 1 ? -128 : 127;
    std::vector<int8_t> input =
        rng.int8s(static_cast<std::size_t>(g.input_height) * g.input_width * g.input_channels,
                  -128, 127);
    if (trial % 5 == 2) std::fill(input.begin(), input.end(), int8_t{-128});
    if (trial % 5 == 4) std::fill(input.begin(), input.end(), int8_t{127});
    const std::vector<int8_t> want = reference_conv_int8(g, oc, input, p);
    const edge::PackedWeights w = pack(p);
    const bool wzp = std::any_of(p.wzp.begin(), p.wzp.end(), [](int32_t z) { return z != 0; });
    ++cases;
    for (Isa isa : test_isas()) {
      const edge::detail::IsaKernels& t = edge::detail::isa_kernels(isa);
      for (int env = 0; env < 2; ++env) {
        if (env == 1) ::setenv("EDGE_CONV_RAW", "0", 1);
        edge::Conv2D conv(w.view(), conv_options(p, g, isa));
        ::unsetenv("EDGE_CONV_RAW");
        const bool raw = std::strstr(conv.kernel_name(), "_raw_") != nullptr;
        const bool indirect = std::strstr(conv.kernel_name(), "_igemm_") != nullptr;
        // every 1x1 int8 layer here (K whole blocks) that takes the indirect kernel takes the
        // raw one where the ISA has it, unless switched off or the weights have zero points
        // (whose row sums the prepared path forms)
        // and its outputs fit one call (16 channels, 32 on the two-tile kernel)
        const int32_t out_pixels = conv.output_height() * conv.output_width();
        const bool wide = t.igemm_qs8_x2[0].fn != nullptr && oc > 16 &&
                          (out_pixels >= 256 || g.input_channels >= 512);
        const bool fits = oc <= 16 || (wide && oc <= 32);
        const bool want_raw =
            indirect && env == 0 && t.igemm_qs8_raw[0].fn != nullptr && !wzp && fits;
        EDGE_CHECK(raw == want_raw);
        if (raw) ++raw_cases;
        if (want_raw) ++raw_eligible;
        for (edge::ThreadPool* pp : {static_cast<edge::ThreadPool*>(nullptr), &pool2, &pool3}) {
          std::vector<int8_t> got(want.size(), 0x55);
          conv.run(input.data(), got.data(), pp);
          const long b = first_mismatch(got, want);
          if (b >= 0) {
            ++failures;
            std::printf("  raw-row conv mismatch %s %s cin=%d oc=%d %dx%d/%d threads=%d at %ld\n",
                        edge::isa_name(isa), conv.kernel_name(), g.input_channels, oc,
                        g.input_height, g.input_width, g.stride_height,
                        pp != nullptr ? pp->num_threads() : 1, b);
          }
        }
      }
    }
  }
  bool any_raw_isa = false;
  for (Isa isa : test_isas()) {
    any_raw_isa = any_raw_isa || edge::detail::isa_kernels(isa).igemm_qs8_raw[0].fn != nullptr;
  }
  std::printf("  %d cases, %d runs on a raw-row kernel, %d failed%s\n", cases, raw_cases,
              failures, any_raw_isa ? "" : " (no ISA of this host has raw-row kernels)");
  EDGE_CHECK(failures == 0);
  EDGE_CHECK(any_raw_isa ? raw_cases == raw_eligible && raw_eligible >= 10 : raw_cases == 0);
}

// im2col rows by byte copies of the once-prepared input (Conv2D copy_rows: no weight zero
// points, the im2col path): stems over 3 channels (7x7/2, 3x3/2 with its channel padding off the
// indirect path on some ISAs), windows cut by every edge, batches, 1 and 2 threads; every ISA
// bit-exact against the reference (int8 weights with and without zero points: the copies apply
// only without).
EDGE_TEST(conv2d_stem_rows_every_isa) {
  Rng rng(47);
  int failures = 0, cases = 0;
  for (int trial = 0; trial < 24; ++trial) {
    edge::ConvGeometry g;
    g.batch = trial % 5 == 0 ? 2 : 1;
    g.kernel_height = g.kernel_width = trial % 2 == 0 ? 7 : 5;
    g.stride_height = g.stride_width = 2;
    g.dilation_height = trial % 6 == 1 ? 2 : 1;
    g.padding = trial % 3 == 0 ? edge::Padding::kValid : edge::Padding::kSame;
    g.input_height = rng.uniform(13, 23);
    g.input_width = rng.uniform(13, 23);
    g.input_channels = trial % 4 == 3 ? 5 : 3;
    const int32_t oc = trial % 3 == 0 ? 64 : 33;
    const int32_t k = g.kernel_height * g.kernel_width * g.input_channels;
    FcProblem p = random_fc(rng, WeightType::kInt8, 1, oc, k, Fill::kRandom, Fill::kRandom);
    if (trial % 8 == 7) {
      for (auto& z : p.wzp) z = rng.uniform(-3, 3);
    }
    p.options.input.zero_point = trial % 4 == 1 ? -128 : rng.uniform(-20, 20);
    const std::vector<int8_t> input = fill_values(
        rng, static_cast<std::size_t>(g.batch) * g.input_height * g.input_width * g.input_channels,
        -128, 127, Fill::kRandom);
    const std::vector<int8_t> want = reference_conv_int8(g, oc, input, p);
    const edge::PackedWeights w = pack(p);
    ++cases;
    for (Isa isa : test_isas()) {
      edge::Conv2D conv(w.view(), conv_options(p, g, isa));
      edge::ThreadPool pool(2);
      for (edge::ThreadPool* pp : {static_cast<edge::ThreadPool*>(nullptr), &pool}) {
        std::vector<int8_t> got(want.size());
        conv.run(input.data(), got.data(), pp);
        conv.run(input.data(), got.data(), pp);
        const long b = first_mismatch(got, want);
        if (b >= 0) {
          ++failures;
          std::printf("  stem mismatch %s %s k=%d cin=%d batch=%d at %ld\n", edge::isa_name(isa),
                      conv.kernel_name(), g.kernel_height, g.input_channels, g.batch, b);
        }
      }
    }
  }
  std::printf("  %d cases, %d failed\n", cases, failures);
  EDGE_CHECK(failures == 0);
}

// AMX takes a convolution onto tiles from kAmxMinDepth on (im2col + the tile GEMM) and leaves
// shallower ones to the AVX-512 VNNI indirect kernel: the kernel each depth reports, bit-exact.
EDGE_TEST(conv2d_amx_tiles_from_depth) {
  if (!edge::isa_available(Isa::kAvx512Amx)) {
    std::printf("  SKIPPED: %s\n", edge::isa_built(Isa::kAvx512Amx)
                                        ? "this CPU (or its OS) has no AMX-INT8"
                                        : "avx512amx is not built for this architecture");
    return;
  }
  Rng rng(43);
  int failures = 0;
  for (int32_t cin : {64, 124, 128, 256}) {
    for (int32_t kernel : {1, 3}) {
      edge::ConvGeometry g;
      g.kernel_height = g.kernel_width = kernel;
      g.padding = edge::Padding::kSame;
      g.input_height = 9;
      g.input_width = 7;
      g.input_channels = cin;
      const int32_t k = kernel * kernel * cin, oc = 40;
      FcProblem p = random_fc(rng, WeightType::kInt8, 1, oc, k, Fill::kRandom, Fill::kRandom);
      const std::vector<int8_t> input = fill_values(
          rng, static_cast<std::size_t>(g.input_height) * g.input_width * cin, -128, 127,
          Fill::kRandom);
      const std::vector<int8_t> want = reference_conv_int8(g, oc, input, p);
      const edge::PackedWeights w = pack(p);
      edge::Conv2D conv(w.view(), conv_options(p, g, Isa::kAvx512Amx));
      const bool tiles = static_cast<std::size_t>(k) >= edge::detail::kAmxMinDepth;
      EDGE_CHECK(tiles == (std::strcmp(conv.kernel_name(),
                                       "qs8_qc8w_gemm_requant_16x16c4__avx512amx") == 0));
      EDGE_CHECK(tiles || std::strstr(conv.kernel_name(), "__avx512vnni") != nullptr);
      edge::ThreadPool pool(2);
      for (edge::ThreadPool* pp : {static_cast<edge::ThreadPool*>(nullptr), &pool}) {
        std::vector<int8_t> got(want.size());
        conv.run(input.data(), got.data(), pp);
        if (first_mismatch(got, want) >= 0) {
          ++failures;
          std::printf("  mismatch %s k=%d cin=%d\n", conv.kernel_name(), kernel, cin);
        }
      }
    }
  }
  EDGE_CHECK(failures == 0);
}

// The indirect kernels' int16 sums (AVX2: vpmaddubsw pairs accumulated over up to 10 2-bit or
// 4 int4 blocks before widening, across taps) at their bounds: every code at the type's largest
// or smallest value against all -128 / all 127 / alternating activations, 18 to 27 K blocks per
// output (several widenings, one mid-tap), channels one short of the blocks (padded taps),
// pixel counts that leave row tails for 3- and 4-row kernels, every rounding rule, 1 and 2
// threads; bit-exact against the reference and on the indirect kernel where the ISA has one.
EDGE_TEST(conv2d_indirect_int16_sum_bounds) {
  Rng rng(37);
  int failures = 0, cases = 0;
  const Fill x_fills[] = {Fill::kMin, Fill::kMax, Fill::kAlternate};
  for (WeightType type : kTypes) {
    for (int trial = 0; trial < 6; ++trial) {
      edge::ConvGeometry g;
      g.kernel_height = g.kernel_width = 3;
      g.padding = edge::Padding::kSame;
      g.input_height = 5;
      g.input_width = trial % 2 == 0 ? 6 : 5;  // 30 / 25 pixels
      g.input_channels = edge::block_k(type) * (trial < 3 ? 2 : 3) - (trial % 3 == 2 ? 1 : 0);
      const int32_t oc = trial % 2 == 0 ? 16 : 21;
      const int32_t k = g.kernel_height * g.kernel_width * g.input_channels;
      const Fill x_fill = x_fills[trial % 3];
      const Fill w_fill = trial % 4 == 3 ? Fill::kMin : Fill::kMax;
      FcProblem p = random_fc(rng, type, 1, oc, k, Fill::kRandom, w_fill);
      p.options.rounding = static_cast<edge::Rounding>(trial % 3);
      const std::vector<int8_t> input = fill_values(
          rng, static_cast<std::size_t>(g.input_height) * g.input_width * g.input_channels, -128,
          127, x_fill);
      const std::vector<int8_t> want = reference_conv_int8(g, oc, input, p);
      const edge::PackedWeights w = pack(p);
      ++cases;
      for (Isa isa : test_isas()) {
        const edge::Conv2DOptions o = conv_options(p, g, isa);
        edge::Conv2D conv(w.view(), o);
        const bool has_indirect =
            edge::detail::isa_kernels(isa).igemm_qs8[static_cast<int>(type)].fn != nullptr;
        EDGE_CHECK((std::strstr(conv.kernel_name(), "_igemm_") != nullptr) == has_indirect);
        edge::ThreadPool pool(2);
        for (edge::ThreadPool* pp : {static_cast<edge::ThreadPool*>(nullptr), &pool}) {
          std::vector<int8_t> got(want.size());
          conv.run(input.data(), got.data(), pp);
          const long b = first_mismatch(got, want);
          if (b >= 0) {
            ++failures;
            std::printf("  int16 bound mismatch %s %s %s cin=%d oc=%d trial=%d at %ld\n",
                        edge::weight_type_name(type), edge::isa_name(isa), conv.kernel_name(),
                        g.input_channels, oc, trial, b);
          }
        }
      }
    }
  }
  std::printf("  %d cases, %d failed\n", cases, failures);
  EDGE_CHECK(failures == 0);
}

namespace {

// LiteRT's optimised depthwise rounds the channels past the last multiple of 8 by another rule
// (`tail`): the expected outputs of those channels, recomputed under it.
void round_tail_channels(const std::vector<int32_t>& acc, int32_t cout, const FcProblem& p,
                         edge::Rounding tail, std::vector<int8_t>& want) {
  edge::LayerOptions t = p.options;
  t.rounding = tail;
  const std::vector<int8_t> tw = reference_requant(acc, cout, p.scales, t, false);
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (static_cast<int32_t>(i % static_cast<std::size_t>(cout)) >= cout / 8 * 8) want[i] = tw[i];
  }
}

// A depthwise layer of problem `p` on `isa` (output type left at its default).
edge::DepthwiseConv2DOptions depthwise_options(const FcProblem& p, const edge::ConvGeometry& g,
                                               int32_t mult, Isa isa,
                                               std::optional<edge::Rounding> tail) {
  edge::DepthwiseConv2DOptions o;
  static_cast<edge::LayerOptions&>(o) = p.options;
  o.tail_rounding = tail;
  o.geometry = g;
  o.depth_multiplier = mult;
  o.isa = isa;
  o.bias = p.bias.data();
  return o;
}

}  // namespace

EDGE_TEST(depthwise_every_isa_random_geometry) {
  Rng rng(7);
  int failures = 0, arm_cases = 0, arm_fused = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const edge::ConvGeometry g = random_geometry(rng, 8, 37);
    const int32_t mult = trial % 4 == 3 ? rng.uniform(2, 3) : 1;
    const int32_t cout = g.input_channels * mult;
    FcProblem p = random_fc(rng, WeightType::kInt8, 1, cout, 1);
    const Fill xf = trial == 5 ? Fill::kMin : trial == 6 ? Fill::kMax : Fill::kRandom;
    const Fill wf = trial == 5 ? Fill::kMin : trial == 6 ? Fill::kMax : Fill::kRandom;
    const std::vector<int8_t> input = fill_values(
        rng, static_cast<std::size_t>(g.batch) * g.input_height * g.input_width * g.input_channels,
        -128, 127, xf);
    const std::vector<int8_t> filter = fill_values(
        rng, static_cast<std::size_t>(g.kernel_height) * g.kernel_width * cout, -128, 127, wf);
    const std::vector<int32_t> acc = reference_depthwise_acc(g, mult, input, filter, p.wzp,
                                                             p.options.input.zero_point, p.bias);
    std::vector<int8_t> want = reference_requant(acc, cout, p.scales, p.options, false);
    // LiteRT's optimised depthwise rounds channels past the last multiple of 8 differently.
    std::optional<edge::Rounding> tail;
    if (trial % 3 == 1) {
      tail = edge::Rounding::kAwayFromZero;
      round_tail_channels(acc, cout, p, *tail, want);
    }
    std::vector<float> f0;
    for (Isa isa : test_isas()) {
      edge::DepthwiseConv2DOptions o = depthwise_options(p, g, mult, isa, tail);
      std::vector<int32_t> got32(acc.size());
      std::vector<int8_t> got8(acc.size());
      std::vector<float> gotf(acc.size());
      o.output_type = OutputType::kInt32;
      edge::DepthwiseConv2D(filter.data(), p.scales.data(), static_cast<int32_t>(p.scales.size()),
                            p.wzp.data(), o).run(input.data(), got32.data());
      o.output_type = OutputType::kFloat32;
      edge::DepthwiseConv2D(filter.data(), p.scales.data(), static_cast<int32_t>(p.scales.size()),
                            p.wzp.data(), o).run(input.data(), gotf.data());
      o.output_type = OutputType::kInt8;
      edge::ThreadPool pool(2);
      edge::DepthwiseConv2D dw8(filter.data(), p.scales.data(),
                                static_cast<int32_t>(p.scales.size()), p.wzp.data(), o);
      dw8.run(input.data(), got8.data(), trial % 2 == 0 ? &pool : nullptr);
      if (isa == Isa::kNeon || isa == Isa::kDotprod) {
        ++arm_cases;
        arm_fused += std::strstr(dw8.kernel_name(), "_dwconv_16c") != nullptr ? 1 : 0;
      }
      if (isa == Isa::kScalar) f0 = gotf;
      const long a = first_mismatch(got32, acc), b = first_mismatch(got8, want);
      if (a >= 0 || b >= 0 || !same_floats(gotf, f0)) {
        ++failures;
        std::printf("  depthwise mismatch %s c=%d mult=%d at %ld/%ld\n", edge::isa_name(isa),
                    g.input_channels, mult, a, b);
      }
    }
  }
  // Random weight zero points push some (w - zp) out of int8 (the fused kernels' domain) and
  // kSingle with the tail rule stays unfused on Arm: most cases, not all, take the fused kernel.
  if (arm_cases > 0) {
    std::printf("  Arm: %d of %d (isa, case) pairs fused\n", arm_fused, arm_cases);
    EDGE_CHECK(arm_fused * 3 > arm_cases);
  }
  EDGE_CHECK(failures == 0);
}

// The fused depthwise kernels (64 channels x 4 taps per step, AVX-512 VNNI; the same layout as
// two 32-channel halves on AVX2) permute channels
// inside 64-channel blocks and take taps in fours: channel counts around 16/32/64 and past them,
// tap counts that are not multiples of 4, multipliers >= 1 (pre-shift), tiny ones (shifts past
// the zero-point fold), every rounding rule with and without LiteRT's tail rule, extremes.
EDGE_TEST(depthwise_fused_blocks_every_isa) {
  Rng rng(17);
  int failures = 0, fused_cases = 0, arm_cases = 0, arm_fused = 0;
  // AVX2 widens every layer's weights (300 and 520 channels were past the 20 KB cap that
  // kept the plain ones before stop 28).
  const int32_t channel_counts[] = {1,  7,  16, 24,  31,  32,  33,  48,
                                    63, 64, 65, 96, 100, 129, 144, 300, 520};
  int trial = 0;
  for (int32_t cin : channel_counts) {
    for (int rep = 0; rep < 4; ++rep, ++trial) {
      edge::ConvGeometry g;
      g.batch = 1;
      g.kernel_height = rep == 3 ? 5 : rep == 2 ? 1 : 3;
      g.kernel_width = rep == 2 ? 2 : rep == 3 ? 5 : 3;
      g.stride_height = g.stride_width = 1 + rep % 2;
      g.dilation_height = g.dilation_width = rep == 1 ? 2 : 1;
      g.padding = rep == 3 ? edge::Padding::kValid : edge::Padding::kSame;
      g.input_height = rng.uniform(5, 9);
      g.input_width = rng.uniform(5, 9);
      g.input_channels = cin;
      const int32_t mult = trial % 7 == 6 ? 2 : 1;
      const int32_t cout = cin * mult;
      FcProblem p = random_fc(rng, WeightType::kInt8, 1, cout, 1);
      std::fill(p.wzp.begin(), p.wzp.end(), 0);
      if (trial % 5 == 1) {  // multipliers in [1, 8): a left pre-shift
        p.options.input.scale = 0.05f;
        p.options.output.scale = 0.002f;
        for (auto& sc : p.scales) sc = rng.uniform_float(0.05f, 0.3f);
      } else if (trial % 5 == 2) {  // below 2^-24: right shifts of 25+, no zero-point fold
        p.options.input.scale = 0.01f;
        p.options.output.scale = 100.0f;
        for (auto& sc : p.scales) sc = rng.uniform_float(0.0001f, 0.0004f);
        for (auto& b : p.bias) b = rng.uniform(-1000000000, 1000000000);
      } else if (trial % 5 == 3) {
        // Exact ties: 2^-4 exactly (m = 2^30, right shift 3), so SQRDMULH halves and 1 in 8 of
        // the halves is a tie of the rounding shift; small activations (zero point 0) keep the
        // outputs off the clamp, so ties reach every channel, the tail rule's ones included.
        p.options.input.scale = 0.25f;
        p.options.input.zero_point = 0;
        p.options.output.scale = 1.0f;
        for (auto& sc : p.scales) sc = 0.25f;
        for (auto& b : p.bias) b = rng.uniform(-300, 300);
        p.options.rounding = static_cast<edge::Rounding>((trial / 5) % 3);  // each rule in turn
        p.options.activation = edge::Activation::kNone;  // a ReLU would hide the negative ties
      }
      const int32_t x_lo = trial % 5 == 3 ? -4 : -128, x_hi = trial % 5 == 3 ? 4 : 127;
      const Fill fill = trial % 11 == 3 ? Fill::kMin : trial % 11 == 4 ? Fill::kMax : Fill::kRandom;
      const std::vector<int8_t> input = fill_values(
          rng, static_cast<std::size_t>(g.input_height) * g.input_width * cin, x_lo, x_hi, fill);
      const std::vector<int8_t> filter = fill_values(
          rng, static_cast<std::size_t>(g.kernel_height) * g.kernel_width * cout, -128, 127, fill);
      const std::vector<int32_t> acc = reference_depthwise_acc(
          g, mult, input, filter, p.wzp, p.options.input.zero_point, p.bias);
      std::vector<int8_t> want = reference_requant(acc, cout, p.scales, p.options, false);
      std::optional<edge::Rounding> tail;
      if ((trial % 2 == 0 || trial % 5 == 3) &&
          p.options.rounding != edge::Rounding::kAwayFromZero) {
        tail = edge::Rounding::kAwayFromZero;
        round_tail_channels(acc, cout, p, *tail, want);
      }
      for (Isa isa : test_isas()) {
        edge::DepthwiseConv2DOptions o = depthwise_options(p, g, mult, isa, tail);
        o.output_type = OutputType::kInt8;
        edge::DepthwiseConv2D dw(filter.data(), p.scales.data(),
                                 static_cast<int32_t>(p.scales.size()), p.wzp.data(), o);
        if (isa == Isa::kAvx512Vnni || isa == Isa::kAvx2 || isa == Isa::kAvxVnni) {
          // kSingle with a multiplier >= 1 saturates: the unfused epilogue handles it. AVX-VNNI
          // runs its own vpdpbusd kernel (or its EVEX twin here), not AVX2's.
          const bool saturating = trial % 5 == 1 && p.options.rounding == edge::Rounding::kSingle;
          const char* want_kernel = isa == Isa::kAvx2      ? "rowx32c4__avx2"
                                    : isa == Isa::kAvxVnni ? "rowx32c4__avxvnni"
                                                           : "rowx64c4";
          const bool fused = std::strstr(dw.kernel_name(), want_kernel) != nullptr;
          EDGE_CHECK(fused != saturating);
          fused_cases += fused ? 1 : 0;
        } else if (isa == Isa::kNeon || isa == Isa::kDotprod) {
          // The Arm kernels take every case but these two: saturating kSingle, and kSingle with
          // LiteRT's (ties-away) tail rule (a mixed kSingle table is not implemented).
          const bool single = p.options.rounding == edge::Rounding::kSingle;
          const bool unfused = single && (trial % 5 == 1 || tail.has_value());
          const bool fused = std::strstr(dw.kernel_name(), isa == Isa::kNeon
                                                               ? "qs8_qc8w_dwconv_16c__"
                                                               : "qs8_qc8w_dwconv_16c4__dotprod") !=
                             nullptr;
          EDGE_CHECK(fused != unfused);
          fused_cases += fused ? 1 : 0;
          ++arm_cases;
          arm_fused += fused ? 1 : 0;
        }
        std::vector<int8_t> got(want.size());
        edge::ThreadPool pool(2);
        dw.run(input.data(), got.data(), trial % 3 == 0 ? &pool : nullptr);
        const long b = first_mismatch(got, want);
        if (b >= 0) {
          ++failures;
          std::printf("  fused depthwise mismatch %s c=%d mult=%d k=%dx%d rounding=%d at %ld\n",
                      edge::isa_name(isa), cin, mult, g.kernel_height, g.kernel_width,
                      static_cast<int>(p.options.rounding), b);
        }
      }
    }
  }
  std::printf("  %d cases, %d through the fused kernel, %d failed\n", trial, fused_cases, failures);
  if (arm_cases > 0) {
    std::printf("  Arm: %d of %d (isa, case) pairs fused\n", arm_fused, arm_cases);
    EDGE_CHECK(arm_fused * 4 > arm_cases * 3);
  }
  EDGE_CHECK(failures == 0);
}

// The fused kernels' row calls (DwQs8Fn: a whole output row per call over one list of input
// columns, kernel_height pointers each, shared by neighbouring windows): row lengths 1..19
// (pixel counts that are not multiples of anything), every side padded by 0..2 (explicit) or
// SAME / VALID, strides 1 and 2 on each axis, vertical dilation on the row path and horizontal
// dilation / depth multipliers on the per-pixel fallback, windows of 1..15 taps (register-held
// weights up to 3 groups of 4, loaded ones past that), channel tails on both block widths,
// batches of 2 (rows of the second image), 1 and 2 threads, extreme inputs and weights, every
// rounding rule with and without LiteRT's tail rule.
EDGE_TEST(depthwise_fused_row_calls_every_isa) {
  Rng rng(23);
  int failures = 0, fused_cases = 0, row_cases = 0;
  const int32_t channel_counts[] = {1, 5, 16, 24, 32, 40, 64, 72, 100, 136};
  const edge::Padding paddings[] = {edge::Padding::kExplicit, edge::Padding::kSame,
                                    edge::Padding::kValid};
  for (int trial = 0; trial < 120; ++trial) {
    edge::ConvGeometry g;
    g.batch = trial % 6 == 5 ? 2 : 1;
    g.kernel_height = rng.uniform(1, 3);
    g.kernel_width = trial % 10 == 9 ? 5 : rng.uniform(1, 5);
    g.stride_height = rng.uniform(1, 2);
    g.stride_width = trial % 2 + 1;
    g.dilation_height = trial % 4 == 1 ? 2 : 1;
    g.dilation_width = trial % 8 == 3 ? 2 : 1;
    g.padding = paddings[trial % 3];
    g.pad_top = rng.uniform(0, 2);
    g.pad_bottom = rng.uniform(0, 2);
    g.pad_left = rng.uniform(0, 2);
    g.pad_right = rng.uniform(0, 2);
    g.input_height = rng.uniform((g.kernel_height - 1) * g.dilation_height + 1, 6);
    g.input_width = rng.uniform((g.kernel_width - 1) * g.dilation_width + 1, 19);
    const int32_t cin = channel_counts[trial % 10];
    g.input_channels = cin;
    const int32_t mult = trial % 16 == 7 ? 2 : 1;
    const int32_t cout = cin * mult;
    FcProblem p = random_fc(rng, WeightType::kInt8, 1, cout, 1);
    std::fill(p.wzp.begin(), p.wzp.end(), 0);
    p.options.rounding = static_cast<edge::Rounding>(trial % 3);
    const Fill fill = trial % 7 == 3 ? Fill::kMin : trial % 7 == 4 ? Fill::kMax : Fill::kRandom;
    const std::vector<int8_t> input = fill_values(
        rng, static_cast<std::size_t>(g.batch) * g.input_height * g.input_width * cin, -128, 127,
        fill);
    const std::vector<int8_t> filter = fill_values(
        rng, static_cast<std::size_t>(g.kernel_height) * g.kernel_width * cout, -128, 127,
        trial % 7 == 3 ? Fill::kMax : fill);
    const std::vector<int32_t> acc =
        reference_depthwise_acc(g, mult, input, filter, p.wzp, p.options.input.zero_point, p.bias);
    std::vector<int8_t> want = reference_requant(acc, cout, p.scales, p.options, false);
    std::optional<edge::Rounding> tail;
    if (trial % 4 == 2 && p.options.rounding != edge::Rounding::kAwayFromZero) {
      tail = edge::Rounding::kAwayFromZero;
      round_tail_channels(acc, cout, p, *tail, want);
    }
    for (Isa isa : test_isas()) {
      edge::DepthwiseConv2DOptions o = depthwise_options(p, g, mult, isa, tail);
      o.output_type = OutputType::kInt8;
      edge::DepthwiseConv2D dw(filter.data(), p.scales.data(),
                               static_cast<int32_t>(p.scales.size()), p.wzp.data(), o);
      const bool fused = std::strstr(dw.kernel_name(), "_dwconv_rowx") != nullptr;
      if (isa == Isa::kAvx512Vnni || isa == Isa::kAvx2) EDGE_CHECK(fused);
      fused_cases += fused ? 1 : 0;
      row_cases += fused && g.dilation_width == 1 && mult == 1 ? 1 : 0;
      edge::ThreadPool pool(2);
      for (edge::ThreadPool* pp : {static_cast<edge::ThreadPool*>(nullptr), &pool}) {
        std::vector<int8_t> got(want.size());
        dw.run(input.data(), got.data(), pp);
        const long b = first_mismatch(got, want);
        if (b >= 0) {
          ++failures;
          std::printf("  row-call depthwise mismatch %s c=%d mult=%d k=%dx%d s=%dx%d d=%dx%d "
                      "w=%d rounding=%d threads=%d at %ld\n",
                      edge::isa_name(isa), cin, mult, g.kernel_height, g.kernel_width,
                      g.stride_height, g.stride_width, g.dilation_height, g.dilation_width,
                      g.input_width, static_cast<int>(p.options.rounding), pp ? 2 : 1, b);
        }
      }
    }
  }
  std::printf("  %d fused cases (%d on row calls), %d failed\n", fused_cases, row_cases, failures);
  EDGE_CHECK(failures == 0);
}

// The x86 fused epilogues' two forms (native/src/kernels/x86/requant8_ymm.h): when every
// channel's shift is 32 to 53 (shift_32_53) the result is the high dword of the 64-bit sum
// shifted arithmetically, else (a shift of 31: effective scales in [1/2, 1)) the biased
// logical-shift form. Effective scales on both sides of 1/2 (t = 32 and t = 31), exact dyadic
// ones (ties of the rounding), all channels on one side or mixed channel by channel, through
// the fused GEMM (1x1) and indirect conv (3x3) for every weight type and the fused depthwise
// (with and without LiteRT's tail rule), every rounding rule; bit-exact against the reference.
EDGE_TEST(fused_requant_shift_32_boundary_every_isa) {
  Rng rng(41);
  int failures = 0, cases = 0;
  // [0]: effective scales in [1/4, 1/2) (total shift 32), [1]: in [1/2, 1) (total shift 31)
  const float dyadic[2][4] = {{0.25f, 0.3125f, 0.375f, 0.4375f}, {0.5f, 0.625f, 0.75f, 0.875f}};
  for (int trial = 0; trial < 36; ++trial) {
    const int side = trial % 3;  // 0: every channel t = 32, 1: every channel t = 31, 2: mixed
    auto scale = [&](int32_t c) {
      const int s = side == 2 ? static_cast<int>(c % 2) : side;
      return rng.uniform(0, 1) == 0 ? dyadic[s][rng.uniform(0, 3)]
                                    : s == 0 ? rng.uniform_float(0.26f, 0.49f)
                                             : rng.uniform_float(0.51f, 0.99f);
    };
    const auto rounding = static_cast<edge::Rounding>((trial / 3) % 3);
    edge::ConvGeometry g;
    g.kernel_height = g.kernel_width = trial % 2 == 0 ? 1 : 3;
    g.padding = edge::Padding::kSame;
    g.input_height = rng.uniform(3, 6);
    g.input_width = rng.uniform(3, 6);
    {  // fused GEMM / indirect conv
      g.input_channels = rng.uniform(1, 8);
      const int32_t oc = rng.uniform(1, 40);
      const WeightType type = kTypes[(trial / 9) % 4];
      FcProblem p = random_fc(rng, type, 1, oc, g.kernel_height * g.kernel_width * g.input_channels);
      p.options.rounding = rounding;
      p.options.activation = edge::Activation::kNone;
      p.options.input = {1.0f, 0};
      p.options.output = {1.0f, rng.uniform(-10, 10)};
      p.scales.resize(static_cast<std::size_t>(oc));
      for (int32_t c = 0; c < oc; ++c) p.scales[c] = scale(c);
      for (auto& b : p.bias) b = rng.uniform(-100, 100);
      const std::vector<int8_t> input = fill_values(
          rng, static_cast<std::size_t>(g.input_height) * g.input_width * g.input_channels, -3, 3,
          Fill::kRandom);
      const std::vector<int8_t> want = reference_conv_int8(g, oc, input, p);
      const edge::PackedWeights w = pack(p);
      ++cases;
      for (Isa isa : test_isas()) {
        edge::Conv2D conv(w.view(), conv_options(p, g, isa));
        std::vector<int8_t> got(want.size());
        conv.run(input.data(), got.data());
        const long b = first_mismatch(got, want);
        if (b >= 0) {
          ++failures;
          std::printf("  fused conv mismatch %s %s side=%d rounding=%d k=%d oc=%d at %ld\n",
                      edge::weight_type_name(type), edge::isa_name(isa), side,
                      static_cast<int>(rounding), g.kernel_height, oc, b);
        }
      }
    }
    {  // fused depthwise, 3x3
      g.kernel_height = g.kernel_width = 3;
      g.stride_height = g.stride_width = 1 + trial % 2;
      const int32_t ch = rng.uniform(1, 100);
      g.input_channels = ch;
      FcProblem p = random_fc(rng, WeightType::kInt8, 1, ch, 1);
      std::fill(p.wzp.begin(), p.wzp.end(), 0);
      p.options.rounding = rounding;
      p.options.activation = edge::Activation::kNone;
      p.options.input = {1.0f, 0};
      p.options.output = {1.0f, rng.uniform(-10, 10)};
      p.scales.resize(static_cast<std::size_t>(ch));
      for (int32_t c = 0; c < ch; ++c) p.scales[c] = scale(c);
      for (auto& b : p.bias) b = rng.uniform(-100, 100);
      const std::vector<int8_t> input = fill_values(
          rng, static_cast<std::size_t>(g.input_height) * g.input_width * ch, -3, 3, Fill::kRandom);
      const std::vector<int8_t> filter =
          fill_values(rng, static_cast<std::size_t>(9) * ch, -20, 20, Fill::kRandom);
      const std::vector<int32_t> acc = reference_depthwise_acc(
          g, 1, input, filter, p.wzp, p.options.input.zero_point, p.bias);
      std::vector<int8_t> want = reference_requant(acc, ch, p.scales, p.options, false);
      std::optional<edge::Rounding> tail;
      if (trial % 4 < 2 && rounding != edge::Rounding::kAwayFromZero) {
        tail = edge::Rounding::kAwayFromZero;
        round_tail_channels(acc, ch, p, *tail, want);
      }
      ++cases;
      for (Isa isa : test_isas()) {
        edge::DepthwiseConv2DOptions o = depthwise_options(p, g, 1, isa, tail);
        o.output_type = OutputType::kInt8;
        edge::DepthwiseConv2D dw(filter.data(), p.scales.data(),
                                 static_cast<int32_t>(p.scales.size()), p.wzp.data(), o);
        std::vector<int8_t> got(want.size());
        dw.run(input.data(), got.data());
        const long b = first_mismatch(got, want);
        if (b >= 0) {
          ++failures;
          std::printf("  fused depthwise mismatch %s side=%d rounding=%d c=%d at %ld\n",
                      edge::isa_name(isa), side, static_cast<int>(rounding), ch, b);
        }
      }
    }
  }
  std::printf("  %d cases, %d failed\n", cases, failures);
  EDGE_CHECK(failures == 0);
}

EDGE_TEST(packing_roundtrip_and_errors) {
  Rng rng(8);
  for (WeightType type : kTypes) {
    for (int trial = 0; trial < 8; ++trial) {
      FcProblem p = random_fc(rng, type, 1, rng.uniform(1, 40), rng.uniform(1, 130));
      const edge::PackedWeights w = pack(p);
      EDGE_CHECK(w.data().size() == edge::packed_bytes(type, p.n, p.k));
      std::vector<int8_t> back(p.w.size());
      std::vector<int32_t> zps(static_cast<std::size_t>(p.n));
      edge::unpack_weights(w.view(), back.data(), zps.data());
      EDGE_CHECK(back == p.w);
      EDGE_CHECK(zps == p.wzp);
      // Codes read back through the layout equal q - value_offset.
      bool codes_ok = true;
      for (int32_t c = 0; c < p.n; ++c) {
        for (int32_t kk = 0; kk < p.k; ++kk) {
          const int q = p.w[static_cast<std::size_t>(c) * p.k + kk];
          const int expect = type == WeightType::kInt8 ? static_cast<uint8_t>(q)
                                                       : q - edge::value_offset(type);
          codes_ok = codes_ok && w.view().code(c, kk) == expect;
        }
      }
      EDGE_CHECK(codes_ok);
    }
  }
  const float one = 1.0f;
  const int8_t bad4[] = {8};
  EDGE_CHECK(throws<std::invalid_argument>(
      [&] { edge::pack_weights(WeightType::kInt4, bad4, 1, 1, &one, 1); }));
  const int8_t bad2[] = {-3};
  EDGE_CHECK(throws<std::invalid_argument>(
      [&] { edge::pack_weights(WeightType::kInt2, bad2, 1, 1, &one, 1); }));
  const int8_t t[] = {1};
  const int32_t zp1[] = {1};
  EDGE_CHECK(throws<std::invalid_argument>(
      [&] { edge::pack_weights(WeightType::kTernary, t, 1, 1, &one, 1, zp1); }));
  EDGE_CHECK(throws<std::invalid_argument>(
      [&] { edge::pack_weights(WeightType::kInt8, t, 1, 0, &one, 1); }));
  std::vector<int8_t> big(70000);
  EDGE_CHECK(throws<std::invalid_argument>(
      [&] { edge::pack_weights(WeightType::kInt8, big.data(), 1, 70000, &one, 1); }));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EDGE_CHECK(throws<std::invalid_argument>(
      [&] { edge::pack_weights(WeightType::kInt8, t, 1, 1, &nan, 1); }));
  edge::PackedWeights w = edge::pack_weights(WeightType::kInt4, bad2 + 0 /* -3 */, 1, 1, &one, 1);
  EDGE_CHECK(throws<std::invalid_argument>([&] { w.set_group_scales(3, &one); }));
}

EDGE_TEST(packing_tflite_subbyte_and_base3) {
  Rng rng(10);
  for (int trial = 0; trial < 6; ++trial) {
    const int32_t n = rng.uniform(1, 33), k = rng.uniform(1, 70);
    const std::size_t count = static_cast<std::size_t>(n) * k;
    std::vector<float> scales(static_cast<std::size_t>(n), 0.5f);
    // int4: two per byte, low nibble first, two's complement.
    const std::vector<int8_t> v4 = rng.int8s(count, -8, 7);
    std::vector<uint8_t> b4((count + 1) / 2, 0);
    for (std::size_t i = 0; i < count; ++i) b4[i / 2] |= static_cast<uint8_t>((v4[i] & 15) << (4 * (i % 2)));
    const edge::PackedWeights a4 = edge::pack_int4_tflite(b4.data(), b4.size(), n, k, scales.data(), n);
    const edge::PackedWeights r4 = edge::pack_weights(WeightType::kInt4, v4.data(), n, k, scales.data(), n);
    EDGE_CHECK(std::memcmp(a4.data().data(), r4.data().data(), r4.data().size()) == 0);
    EDGE_CHECK(a4.zero_points() == r4.zero_points());
    // int2 / ternary: four per byte, lowest bits first.
    const std::vector<int8_t> v2 = rng.int8s(count, -1, 1);
    std::vector<uint8_t> b2((count + 3) / 4, 0);
    for (std::size_t i = 0; i < count; ++i) b2[i / 4] |= static_cast<uint8_t>((v2[i] & 3) << (2 * (i % 4)));
    const edge::PackedWeights a2 = edge::pack_int2_tflite(b2.data(), b2.size(), n, k, scales.data(), n, nullptr, true);
    const edge::PackedWeights r2 = edge::pack_weights(WeightType::kTernary, v2.data(), n, k, scales.data(), n);
    EDGE_CHECK(a2.type() == WeightType::kTernary);
    EDGE_CHECK(std::memcmp(a2.data().data(), r2.data().data(), r2.data().size()) == 0);
    // base 3: five trits per byte, decode(encode(v)) == v, and straight to the kernel layout.
    std::vector<uint8_t> b3(edge::base3_bytes(count));
    edge::encode_base3(v2.data(), count, b3.data());
    bool valid = true;
    for (uint8_t byte : b3) valid = valid && byte <= 242;
    EDGE_CHECK(valid);
    std::vector<int8_t> back(count);
    edge::decode_base3(b3.data(), count, back.data());
    EDGE_CHECK(back == v2);
    const edge::PackedWeights a3 = edge::pack_ternary_base3(b3.data(), b3.size(), n, k, scales.data(), n);
    EDGE_CHECK(std::memcmp(a3.data().data(), r2.data().data(), r2.data().size()) == 0);
  }
  const int8_t two[] = {2};
  uint8_t out[1];
  EDGE_CHECK(throws<std::invalid_argument>([&] { edge::encode_base3(two, 1, out); }));
  const uint8_t bad[] = {243};
  int8_t vals[5];
  EDGE_CHECK(throws<std::invalid_argument>([&] { edge::decode_base3(bad, 5, vals); }));
  // Known encoding: {-1, 0, 1, 1, -1} -> 0 + 1*3 + 2*9 + 2*27 + 0*81 = 75.
  const int8_t five[] = {-1, 0, 1, 1, -1};
  edge::encode_base3(five, 5, out);
  EDGE_CHECK(out[0] == 75);
}

EDGE_TEST(thread_pool_runs_every_task_once) {
  for (int threads : {1, 2, 4}) {
    edge::ThreadPool pool(threads);
    EDGE_CHECK(pool.num_threads() == threads);
    for (std::size_t tasks : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1000}}) {
      for (bool static_schedule : {false, true}) {
        std::vector<int> hits(tasks, 0);
        std::atomic<bool> thread_ok{true};
        auto fn = [&](std::size_t t, int thread) {
          hits[t] += 1;  // each task index is handed out exactly once, so no race
          if (thread < 0 || thread >= threads) thread_ok.store(false);
        };
        if (static_schedule) {
          pool.parallel_for_static(tasks, fn);
        } else {
          pool.parallel_for(tasks, fn);
        }
        bool once = true;
        for (int h : hits) once = once && h == 1;
        EDGE_CHECK(once && thread_ok);
      }
    }
  }
  EDGE_CHECK(edge::default_thread_pool().num_threads() >= 1);
}

namespace {

// The reference for caller-given multipliers: TFLite's requantisation of each exact sum.
std::vector<int8_t> requant_with(const std::vector<int32_t>& acc, int32_t n,
                                 const std::vector<edge::QuantizedMultiplier>& qm,
                                 const edge::LayerOptions& o) {
  const edge::ClampRange range = edge::detail::output_clamp(o);
  std::vector<int8_t> out(acc.size());
  for (std::size_t i = 0; i < acc.size(); ++i) {
    const edge::QuantizedMultiplier& q = qm[i % static_cast<std::size_t>(n)];
    out[i] = edge::requantize_one(acc[i], q.multiplier, q.shift, o.output.zero_point, range.min,
                                  range.max, o.rounding);
  }
  return out;
}

// Multipliers given directly, in one of four regimes: ties (significand 2^30 and right shifts
// 1..4: v m / 2^31 is v / 2, and the rounding shift meets an exact half on 1 output in 2..16;
// the callers keep the sums small so that those outputs are not clamped away), left shifts
// 1..8 (the wrapping pre-shift), right shifts 20..31, and ordinary ones. Per-tensor weights
// use [0].
std::vector<edge::QuantizedMultiplier> edge_multipliers(Rng& rng, int32_t n, int regime) {
  std::vector<edge::QuantizedMultiplier> qm(static_cast<std::size_t>(n));
  for (auto& q : qm) {
    q.multiplier = regime == 0 ? (1 << 30) : rng.uniform(1 << 30, 0x7FFFFFFF);
    q.shift = regime == 0   ? rng.uniform(-4, -1)
              : regime == 1 ? rng.uniform(1, 8)
              : regime == 2 ? rng.uniform(-31, -20)
                            : rng.uniform(-12, 0);
  }
  return qm;
}

// Activations within 1 of the zero point and small biases: sums of a few hundred at most, so
// that the tie regime's outputs land inside the int8 range.
void small_sums(Rng& rng, std::vector<int8_t>& x, int32_t zero_point, std::vector<int32_t>& bias) {
  for (auto& v : x) v = static_cast<int8_t>(std::min(127, std::max(-128, zero_point + rng.uniform(-1, 1))));
  for (auto& b : bias) b = rng.uniform(-64, 64);
}

bool is_arm(Isa isa) { return isa == Isa::kNeon || isa == Isa::kDotprod; }

}  // namespace

// The Arm fused kernels' edges (qs8_*_gemm_requant_* and qs8_*_igemm_requant_*, __neon /
// __neon 2 rows, __dotprod 4 rows; run on every ISA): row counts past the row groups,
// channel tails, K tails (dotprod's int8 loop loads 4 blocks at a time; NEON's sub-byte int16
// sums flush every 8 (int4) / 21 (2-bit) blocks), extreme values, weight zero points (none,
// uniform, per channel), every rounding rule in every multiplier regime; bit-exact against
// TFLite's requantisation of the exact sums. On Arm the fused kernels must be the ones taken.
EDGE_TEST(arm_fused_gemm_requant_edges) {
  Rng rng(57);
  int failures = 0, fused = 0, rule_differs = 0;
  for (int trial = 0; trial < 96; ++trial) {
    const WeightType type = kTypes[trial % 4];
    const int32_t kb = edge::block_k(type);
    const int32_t m = rng.uniform(2, 9);
    const int32_t n = trial % 5 == 0 ? 16 * rng.uniform(1, 2) : rng.uniform(1, 40);
    int32_t k = 0;
    switch ((trial / 4) % 4) {
      case 0: k = rng.uniform(1, 3 * kb); break;                        // 1-3 blocks, K tails
      case 1: k = kb * rng.uniform(4, 9) - rng.uniform(0, 1); break;    // around 4-block groups
      case 2: k = kb * rng.uniform(20, 23) - rng.uniform(0, 1); break;  // past the int16 flush
      default: k = rng.uniform(1, 300); break;
    }
    const int fills = trial % 6;
    const Fill xf = fills == 1 ? Fill::kMin : fills == 2 ? Fill::kMax : Fill::kRandom;
    const Fill wf = fills == 1 ? Fill::kMin : fills == 3 ? Fill::kMax : Fill::kRandom;
    FcProblem p = random_fc(rng, type, m, n, k, xf, wf);
    p.options.rounding = static_cast<edge::Rounding>(trial % 3);
    if (type == WeightType::kInt8) {
      const int zp_kind = (trial / 12) % 3;
      for (auto& z : p.wzp) z = zp_kind == 0 ? 0 : zp_kind == 1 ? -7 : rng.uniform(-128, 127);
    }
    if (trial % 7 == 3) p.options.input.zero_point = trial % 2 == 0 ? -128 : 127;
    if (trial % 11 == 4) {  // sums near the int32 limits (the pre-shift wraps them)
      for (auto& b : p.bias) b = rng.uniform(-1000000000, 1000000000);
    }
    const int regime = (trial / 3) % 4;
    const std::vector<edge::QuantizedMultiplier> qm = edge_multipliers(rng, n, regime);
    if (regime == 0) small_sums(rng, p.x, p.options.input.zero_point, p.bias);
    p.options.multipliers = qm.data();
    std::vector<edge::QuantizedMultiplier> qm_used = qm;
    if (p.scales.size() == 1) std::fill(qm_used.begin(), qm_used.end(), qm[0]);
    const std::vector<int32_t> acc = reference_fc_acc(p);
    const std::vector<int8_t> want = requant_with(acc, n, qm_used, p.options);
    if (regime == 0) {  // the rules must disagree on some outputs here, or ties went untested
      for (int rule = 0; rule < 3; ++rule) {
        edge::LayerOptions other = p.options;
        other.rounding = static_cast<edge::Rounding>(rule);
        const std::vector<int8_t> alt = requant_with(acc, n, qm_used, other);
        for (std::size_t i = 0; i < alt.size(); ++i) rule_differs += alt[i] != want[i] ? 1 : 0;
      }
    }
    // Single rounding with a left shift saturates: those plans keep the unfused epilogue.
    bool saturating = false;
    for (const auto& q : qm_used) saturating = saturating || q.shift > 0;
    saturating = saturating && p.options.rounding == edge::Rounding::kSingle;
    const edge::PackedWeights w = pack(p);
    edge::ThreadPool pool(2);
    for (Isa isa : test_isas()) {
      const auto got = run_fc<int8_t>(p, w, isa, OutputType::kInt8, trial % 4 == 1 ? &pool : nullptr);
      const long b = first_mismatch(got, want);
      if (b >= 0) {
        ++failures;
        std::printf("  fused gemm mismatch %s %s m=%d n=%d k=%d regime=%d rounding=%d at %ld: "
                    "%d vs %d\n", edge::weight_type_name(type), edge::isa_name(isa), m, n, k,
                    regime, trial % 3, b, got[static_cast<std::size_t>(b)],
                    want[static_cast<std::size_t>(b)]);
      }
      if (is_arm(isa)) {
        edge::LayerOptions o = p.options;
        o.isa = isa;
        o.output_type = OutputType::kInt8;
        o.bias = p.bias.data();
        const edge::FullyConnected fc(w.view(), o);
        const bool is_fused = std::strstr(fc.kernel_name(m), "_gemm_requant_") != nullptr;
        EDGE_CHECK(is_fused != saturating);
        fused += is_fused ? 1 : 0;
      }
    }
  }
  std::printf("  %d failed, %d Arm fused cases, %d tie outputs where the rules differ\n",
              failures, fused, rule_differs);
  EDGE_CHECK(failures == 0);
  EDGE_CHECK(rule_differs > 100);
}

// The Arm indirect conv kernels with the same multiplier regimes and rules: 1x1 to 3x3 windows,
// strides, padding (zero-point rows), channel counts of 1-3 blocks (whole taps), row tails,
// extreme inputs and weight zero points; bit-exact against the reference, 1 and 2 threads.
EDGE_TEST(arm_fused_igemm_requant_edges) {
  Rng rng(59);
  int failures = 0, indirect = 0;
  for (int trial = 0; trial < 48; ++trial) {
    const WeightType type = kTypes[trial % 4];
    edge::ConvGeometry g;
    g.batch = 1;
    g.kernel_height = rng.uniform(1, 3);
    g.kernel_width = rng.uniform(1, 3);
    g.stride_height = g.stride_width = rng.uniform(1, 2);
    g.padding = trial % 2 == 0 ? edge::Padding::kSame : edge::Padding::kValid;
    g.input_height = rng.uniform(g.kernel_height, 6);
    g.input_width = rng.uniform(g.kernel_width, 6);
    g.input_channels = edge::block_k(type) * rng.uniform(1, 3);
    const int32_t oc = trial % 5 == 0 ? 32 : rng.uniform(1, 40);
    const int32_t k = g.kernel_height * g.kernel_width * g.input_channels;
    const Fill fill = trial % 6 == 1 ? Fill::kMin : trial % 6 == 2 ? Fill::kMax : Fill::kRandom;
    FcProblem p = random_fc(rng, type, 1, oc, k, Fill::kRandom, fill);
    p.options.rounding = static_cast<edge::Rounding>(trial % 3);
    if (type == WeightType::kInt8) {
      const int zp_kind = (trial / 4) % 3;
      for (auto& z : p.wzp) z = zp_kind == 0 ? 0 : zp_kind == 1 ? 5 : rng.uniform(-128, 127);
    }
    const int regime = (trial / 3) % 4;
    const std::vector<edge::QuantizedMultiplier> qm = edge_multipliers(rng, oc, regime);
    p.options.multipliers = qm.data();
    std::vector<edge::QuantizedMultiplier> qm_used = qm;
    if (p.scales.size() == 1) std::fill(qm_used.begin(), qm_used.end(), qm[0]);
    std::vector<int8_t> input = fill_values(
        rng, static_cast<std::size_t>(g.input_height) * g.input_width * g.input_channels, -128,
        127, fill);
    if (regime == 0) small_sums(rng, input, p.options.input.zero_point, p.bias);
    const std::vector<int32_t> acc = reference_conv_acc(g, oc, input, p.w, p.wzp,
                                                        p.options.input.zero_point, p.bias);
    const std::vector<int8_t> want = requant_with(acc, oc, qm_used, p.options);
    const edge::PackedWeights w = pack(p);
    edge::ThreadPool pool(2);
    for (Isa isa : test_isas()) {
      const edge::Conv2DOptions o = conv_options(p, g, isa);
      edge::Conv2D conv(w.view(), o);
      if (is_arm(isa) && std::strstr(conv.kernel_name(), "_igemm_requant_") != nullptr) ++indirect;
      std::vector<int8_t> got(want.size());
      conv.run(input.data(), got.data(), trial % 3 == 1 ? &pool : nullptr);
      const long b = first_mismatch(got, want);
      if (b >= 0) {
        ++failures;
        std::printf("  fused igemm mismatch %s %s %s k=%dx%d cin=%d oc=%d regime=%d "
                    "rounding=%d at %ld\n", edge::weight_type_name(type), edge::isa_name(isa),
                    conv.kernel_name(), g.kernel_height, g.kernel_width, g.input_channels, oc,
                    regime, trial % 3, b);
      }
    }
  }
  std::printf("  %d failed, %d Arm indirect cases\n", failures, indirect);
  EDGE_CHECK(failures == 0);
  // Every trial but the saturating single-rounding ones with left shifts (trial % 3 == 2 in
  // regime 1: 4 of 48) takes the indirect kernel on each Arm ISA present.
  int arm_isas = 0;
  for (Isa isa : test_isas()) arm_isas += is_arm(isa) ? 1 : 0;
  EDGE_CHECK(indirect == arm_isas * 44);
}
