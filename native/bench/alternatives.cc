// The algorithm alternatives of issue 3, measured against the library's kernels on the same
// problem (FC GEMV, M = 1, ternary weights, K = N = 4096, int8 activations) on this x86 host.
// Every variant is checked bit for bit against a plain int64 reference before it is timed.
// Build: part of the host CMake build (target edge_kernel_alternatives, x86 only; not a test).
// Run:   build/host/edge_kernel_alternatives     (prints one JSON object)
//
//   unpack_dot   the library kernel: 2-bit codes unpacked with AND masks, vpdpbusd (AVX-512
//                VNNI) or vpmaddubsw (AVX2) - what the plans use.
//   lut_vpermw   T-MAC style table lookup, exact: per triplet of activations a 27-entry int16
//                table of every ternary combination, weights stored as base-3 triplet indices
//                (2.67 bits/weight), vpermw looks up 32 channels x 3 weights at a time, int16
//                accumulation; K-blocked so the tables stay in L1.
//   bitserial    DeepliteRT style: weights as +1 / -1 bit planes, activations as 8 bit planes,
//                AND + VPOPCNTQ, 16 plane pairs per 512 products.
// GCC 12's AVX-512 headers trip -Wuninitialized on their own _mm512_undefined_epi32() once
// inlined (GCC bug 105593, fixed in GCC 13).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "edge/cpu_features.h"
#include "edge/kernels/isa.h"
#include "edge/packing/ternary.h"
#include "kernels/registry.h"

namespace {

constexpr int kN = 4096, kK = 4096;

template <typename F>
double best_seconds(const F& f, int reps) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// ------------------------------------------------------------------------------ LUT (vpermw)
struct Triplets {
  int kt = 0;
  std::vector<uint8_t> data;  // [group of 64 channels][kt][64 bytes]
};

Triplets pack_triplets(const std::vector<int8_t>& w) {
  Triplets p;
  p.kt = (kK + 2) / 3;
  p.data.assign(static_cast<std::size_t>(kN / 64) * p.kt * 64, 13);  // 13: all three zero
  for (int ch = 0; ch < kN; ++ch) {
    for (int j = 0; j < p.kt; ++j) {
      int idx = 0;
      for (int t = 0, m = 1; t < 3; ++t, m *= 3) {
        const int kk = 3 * j + t;
        idx += ((kk < kK ? w[static_cast<std::size_t>(ch) * kK + kk] : 0) + 1) * m;
      }
      // word w of a group row holds channel w (low byte) and channel w + 32 (high byte)
      const int c = ch % 64;
      p.data[(static_cast<std::size_t>(ch / 64) * p.kt + j) * 64 + 2 * (c % 32) + c / 32] =
          static_cast<uint8_t>(idx);
    }
  }
  return p;
}

__attribute__((target("avx512f,avx512bw"))) void lut_tables(const int8_t* x, int kt,
                                                            int16_t* tables) {
  alignas(64) int16_t d[3][32];
  for (int i = 0; i < 32; ++i) {
    for (int t = 0, v = i; t < 3; ++t, v /= 3) d[t][i] = static_cast<int16_t>(i < 27 ? v % 3 - 1 : 0);
  }
  const __m512i d0 = _mm512_load_si512(d[0]), d1 = _mm512_load_si512(d[1]),
                d2 = _mm512_load_si512(d[2]);
  for (int j = 0; j < kt; ++j) {
    const auto xv = [&](int t) { return static_cast<int16_t>(3 * j + t < kK ? x[3 * j + t] : 0); };
    const __m512i t = _mm512_add_epi16(
        _mm512_add_epi16(_mm512_mullo_epi16(d0, _mm512_set1_epi16(xv(0))),
                         _mm512_mullo_epi16(d1, _mm512_set1_epi16(xv(1)))),
        _mm512_mullo_epi16(d2, _mm512_set1_epi16(xv(2))));
    _mm512_store_si512(tables + 32 * j, t);
  }
}

__attribute__((target("avx512f,avx512bw"), noinline)) void lut_gemv(const Triplets& p,
                                                                    const int16_t* tables,
                                                                    int32_t* out) {
  constexpr int kChunk = 84;  // 84 * 384 < 2^15: int16 sums of a chunk cannot overflow
  std::memset(out, 0, kN * sizeof(int32_t));
  for (int j0 = 0; j0 < p.kt; j0 += kChunk) {
    const int j1 = std::min(p.kt, j0 + kChunk);
    for (int g = 0; g < kN / 64; ++g) {
      const uint8_t* w = p.data.data() + static_cast<std::size_t>(g) * p.kt * 64;
      __m512i a0 = _mm512_setzero_si512(), a1 = a0;
      for (int j = j0; j < j1; ++j) {
        const __m512i wj = _mm512_loadu_si512(w + static_cast<std::size_t>(j) * 64);
        const __m512i tj = _mm512_load_si512(tables + 32 * j);
        a0 = _mm512_add_epi16(a0, _mm512_permutexvar_epi16(wj, tj));
        a1 = _mm512_add_epi16(a1, _mm512_permutexvar_epi16(_mm512_srli_epi16(wj, 8), tj));
      }
      int32_t* o = out + g * 64;
      const __m512i parts[4] = {_mm512_cvtepi16_epi32(_mm512_castsi512_si256(a0)),
                                _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(a0, 1)),
                                _mm512_cvtepi16_epi32(_mm512_castsi512_si256(a1)),
                                _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(a1, 1))};
      for (int q = 0; q < 4; ++q) {
        _mm512_storeu_si512(o + 16 * q, _mm512_add_epi32(_mm512_loadu_si512(o + 16 * q), parts[q]));
      }
    }
  }
}

// ------------------------------------------------------------------------------ bit-serial
__attribute__((target("avx512f,avx512bw,avx512vpopcntdq"), noinline)) void bitserial_gemv(
    const uint64_t* plus, const uint64_t* minus, const uint64_t* xbits, int32_t* out) {
  constexpr int k64 = kK / 64;
  for (int c = 0; c < kN; ++c) {
    __m512i acc[8];
    for (auto& a : acc) a = _mm512_setzero_si512();
    for (int w = 0; w < k64; w += 8) {
      const __m512i p = _mm512_loadu_si512(plus + static_cast<std::size_t>(c) * k64 + w);
      const __m512i q = _mm512_loadu_si512(minus + static_cast<std::size_t>(c) * k64 + w);
      for (int i = 0; i < 8; ++i) {
        const __m512i x = _mm512_loadu_si512(xbits + static_cast<std::size_t>(i) * k64 + w);
        acc[i] = _mm512_add_epi64(acc[i], _mm512_sub_epi64(_mm512_popcnt_epi64(_mm512_and_si512(p, x)),
                                                           _mm512_popcnt_epi64(_mm512_and_si512(q, x))));
      }
    }
    int64_t s = 0;
    for (int i = 0; i < 8; ++i) s += (i == 7 ? -128 : (1 << i)) * _mm512_reduce_add_epi64(acc[i]);
    out[c] = static_cast<int32_t>(s);
  }
}

void bitplanes(const int8_t* x, uint64_t* xbits) {
  std::memset(xbits, 0, 8 * (kK / 64) * sizeof(uint64_t));
  for (int k = 0; k < kK; ++k) {
    const uint8_t u = static_cast<uint8_t>(x[k]);
    for (int i = 0; i < 8; ++i) {
      if ((u >> i) & 1) xbits[static_cast<std::size_t>(i) * (kK / 64) + k / 64] |= 1ull << (k % 64);
    }
  }
}

void report(bool& first, const char* name, const char* isa, double seconds, double weight_mb,
            bool exact) {
  std::printf("%s\n  {\"variant\": \"%s\", \"isa\": \"%s\", \"time_us\": %.1f, \"gmacs\": %.1f, "
              "\"weight_mb\": %.2f, \"bit_exact\": %s}",
              first ? "" : ",", name, isa, seconds * 1e6, double(kN) * kK / seconds / 1e9,
              weight_mb, exact ? "true" : "false");
  first = false;
}

}  // namespace

int main() {
  std::mt19937 rng(1);
  std::vector<int8_t> w(static_cast<std::size_t>(kN) * kK), x(kK);
  for (auto& v : w) v = static_cast<int8_t>(static_cast<int>(rng() % 3) - 1);
  for (auto& v : x) v = static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
  std::vector<int32_t> want(kN), got(kN);
  for (int c = 0; c < kN; ++c) {
    int64_t s = 0;
    for (int k = 0; k < kK; ++k) s += int64_t{w[static_cast<std::size_t>(c) * kK + k]} * x[k];
    want[c] = static_cast<int32_t>(s);
  }
  const edge::CpuFeatures& f = edge::cpu_features();
  std::printf("{\"problem\": \"ternary FC GEMV, M=1, K=N=%d, one thread\", \"results\": [", kK);
  bool first = true;

  // The library's micro-kernels (raw dot products; codes 0..2 -> subtract the column sums).
  const std::vector<float> scales(kN, 1.0f);
  const edge::PackedWeights packed = edge::pack_ternary(w.data(), kN, kK, scales.data(), kN);
  const std::size_t nblocks = edge::k_blocks(edge::WeightType::kTernary, kK);
  for (edge::Isa isa : edge::available_isas()) {
    if (isa == edge::Isa::kScalar) continue;
    const auto& gk = edge::detail::isa_kernels(isa).gemm[static_cast<int>(edge::WeightType::kTernary)];
    std::vector<uint8_t> xp(nblocks * 16 + 64, 0);
    std::memcpy(xp.data(), x.data(), kK);
    int32_t xsum = 0;
    for (int8_t v : x) xsum += v;
    const auto run = [&] {
      for (int t = 0; t < kN / 16; ++t) {
        gk.gemv.fn(1, nblocks, packed.data().data() + t * nblocks * 64, xp.data(), 0, got.data() + 16 * t);
      }
    };
    run();
    bool exact = true;
    for (int c = 0; c < kN; ++c) exact = exact && got[c] - xsum == want[c];  // codes = w + 1
    report(first, "unpack_dot", edge::isa_name(isa), best_seconds(run, 200),
           packed.data().size() / 1e6, exact);
  }
  if (f.avx512f && f.avx512bw) {
    const Triplets trip = pack_triplets(w);
    std::vector<int16_t> storage(static_cast<std::size_t>(trip.kt) * 32 + 32);
    int16_t* tables = reinterpret_cast<int16_t*>((reinterpret_cast<uintptr_t>(storage.data()) + 63) &
                                                 ~uintptr_t{63});
    const auto run = [&] {
      lut_tables(x.data(), trip.kt, tables);
      lut_gemv(trip, tables, got.data());
    };
    run();
    report(first, "lut_vpermw", "avx512bw", best_seconds(run, 200), trip.data.size() / 1e6,
           got == want);
  }
  if (f.avx512f && __builtin_cpu_supports("avx512vpopcntdq")) {
    constexpr int k64 = kK / 64;
    std::vector<uint64_t> plus(static_cast<std::size_t>(kN) * k64), minus(plus.size()), xbits(8 * k64);
    for (int c = 0; c < kN; ++c) {
      for (int k = 0; k < kK; ++k) {
        const int8_t v = w[static_cast<std::size_t>(c) * kK + k];
        if (v != 0) (v > 0 ? plus : minus)[static_cast<std::size_t>(c) * k64 + k / 64] |= 1ull << (k % 64);
      }
    }
    const auto run = [&] {
      bitplanes(x.data(), xbits.data());
      bitserial_gemv(plus.data(), minus.data(), xbits.data(), got.data());
    };
    run();
    report(first, "bitserial", "avx512vpopcntdq", best_seconds(run, 30),
           (plus.size() + minus.size()) * 8 / 1e6, got == want);
  }
  std::printf("\n]}\n");
  return 0;
}
