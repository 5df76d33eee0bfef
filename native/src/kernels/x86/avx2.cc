// x86 AVX2 kernels. Compiled with -mavx2 -mfma only (see CMakeLists.txt); called only when the
// CPU has AVX2 (isa.cc). Everything here has internal linkage except the table and the shared
// epilogues the AVX-512 table reuses (see the ODR note in ukernels.h).
//
// GEMM, sub-byte weights (int4, 2-bit, ternary): fields of a block are unpacked with one 16-bit
// shift and a byte AND (layout.h) and multiplied with vpmaddubsw: codes are unsigned (0..15),
// activations signed, so every pair sum is exact (|15 * -128 * 2| < 2^15); pair sums are added in
// int16 for a few blocks and widened with vpmaddwd. The M = 1 2-bit kernel skips half the shifts:
// (A & 0x0C) is 4x field 1, so fields 0/2 and 1/3 are summed in two int16 classes and combined
// as 4 * class1 + class4 by vpmaddwd's multiplier.
// GEMM, int8 weights: sign-extended to int16 and multiplied by int16 activations with vpmaddwd
// (vpmaddubsw would saturate on int8 x int8).
// Measured alternatives are in docs/design-notes.md ("Algorithm choices").
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/ukernels.h"
#include "kernels/x86/dw_ymm.h"
#include "kernels/x86/requant8_ymm.h"
#include "kernels/x86/row_sums_ymm.h"
#include "kernels/x86/ymm_io.h"

namespace edge {
namespace detail {
namespace {

using ymm_io::bcast32;
using ymm_io::load256;

inline __m256i bcast64(const uint8_t* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return _mm256_set1_epi64x(v);
}

inline void store_tile(int32_t* acc, __m256i lo, __m256i hi) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc), lo);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + 8), hi);
}

// ------------------------------------------------------------------------------ 2-bit, M = 1
void gemv_2bit(std::size_t, std::size_t nblocks, const uint8_t* w, const uint8_t* x, std::size_t,
               int32_t* acc) {
  const __m256i m03 = _mm256_set1_epi8(0x03), m0c = _mm256_set1_epi8(0x0C);
  const __m256i ones = _mm256_set1_epi16(1), fours = _mm256_set1_epi16(4);
  __m256i acc_a = _mm256_setzero_si256(), acc_b = _mm256_setzero_si256();  // 4x the true sums
  std::size_t b = 0;
  while (b < nblocks) {
    // int16 classes: class 4 gains at most 2 * 12 * 128 * 2 = 6144 per block: 4 blocks fit.
    const std::size_t end = b + 4 < nblocks ? b + 4 : nblocks;
    __m256i s1a = _mm256_setzero_si256(), s4a = _mm256_setzero_si256();
    __m256i s1b = _mm256_setzero_si256(), s4b = _mm256_setzero_si256();
    for (; b < end; ++b) {
      const uint8_t* blk = w + b * 64;
      const uint8_t* xb = x + b * 16;
      const __m256i a = load256(blk), bb = load256(blk + 32);
      const __m256i a2 = _mm256_srli_epi16(a, 4), b2 = _mm256_srli_epi16(bb, 4);
      const __m256i x0 = bcast32(xb), x1 = bcast32(xb + 4), x2 = bcast32(xb + 8),
                    x3 = bcast32(xb + 12);
      s1a = _mm256_add_epi16(s1a, _mm256_maddubs_epi16(_mm256_and_si256(a, m03), x0));
      s4a = _mm256_add_epi16(s4a, _mm256_maddubs_epi16(_mm256_and_si256(a, m0c), x1));
      s1a = _mm256_add_epi16(s1a, _mm256_maddubs_epi16(_mm256_and_si256(a2, m03), x2));
      s4a = _mm256_add_epi16(s4a, _mm256_maddubs_epi16(_mm256_and_si256(a2, m0c), x3));
      s1b = _mm256_add_epi16(s1b, _mm256_maddubs_epi16(_mm256_and_si256(bb, m03), x0));
      s4b = _mm256_add_epi16(s4b, _mm256_maddubs_epi16(_mm256_and_si256(bb, m0c), x1));
      s1b = _mm256_add_epi16(s1b, _mm256_maddubs_epi16(_mm256_and_si256(b2, m03), x2));
      s4b = _mm256_add_epi16(s4b, _mm256_maddubs_epi16(_mm256_and_si256(b2, m0c), x3));
    }
    acc_a = _mm256_add_epi32(acc_a, _mm256_add_epi32(_mm256_madd_epi16(s1a, fours),
                                                     _mm256_madd_epi16(s4a, ones)));
    acc_b = _mm256_add_epi32(acc_b, _mm256_add_epi32(_mm256_madd_epi16(s1b, fours),
                                                     _mm256_madd_epi16(s4b, ones)));
  }
  store_tile(acc, _mm256_srai_epi32(acc_a, 2), _mm256_srai_epi32(acc_b, 2));
}

// ------------------------------------------------------------------------------ int4, M = 1
void gemv_4bit(std::size_t, std::size_t nblocks, const uint8_t* w, const uint8_t* x, std::size_t,
               int32_t* acc) {
  const __m256i m0f = _mm256_set1_epi8(0x0F);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc_a = _mm256_setzero_si256(), acc_b = _mm256_setzero_si256();
  std::size_t b = 0;
  while (b < nblocks) {
    // 2 * 15 * 128 * 2 = 7680 per block: 4 blocks fit in int16.
    const std::size_t end = b + 4 < nblocks ? b + 4 : nblocks;
    __m256i sa = _mm256_setzero_si256(), sb = _mm256_setzero_si256();
    for (; b < end; ++b) {
      const uint8_t* blk = w + b * 64;
      const uint8_t* xb = x + b * 8;
      const __m256i a = load256(blk), bb = load256(blk + 32);
      const __m256i x0 = bcast32(xb), x1 = bcast32(xb + 4);
      sa = _mm256_add_epi16(sa, _mm256_maddubs_epi16(_mm256_and_si256(a, m0f), x0));
      sa = _mm256_add_epi16(
          sa, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(a, 4), m0f), x1));
      sb = _mm256_add_epi16(sb, _mm256_maddubs_epi16(_mm256_and_si256(bb, m0f), x0));
      sb = _mm256_add_epi16(
          sb, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(bb, 4), m0f), x1));
    }
    acc_a = _mm256_add_epi32(acc_a, _mm256_madd_epi16(sa, ones));
    acc_b = _mm256_add_epi32(acc_b, _mm256_madd_epi16(sb, ones));
  }
  store_tile(acc, acc_a, acc_b);
}

// ------------------------------------------------------------------------------ sub-byte, M <= 4
// The indirect conv's (igemm_requant_rows) sub-byte dot products of R rows x 16 channels, left
// in registers; SubbyteDot::block takes the R rows' addresses of one block.
//
// vpmaddubsw (unsigned codes x signed activations, adjacent pairs summed into int16) is exact
// and its int16 sums are accumulated over several blocks before one vpmaddwd by 1 widens them
// (int16 pairs -> int32), so the widening costs 2 ops per row and kMaxBlocks blocks instead of
// per block. The bound, per int16 lane (one channel, one pair of k positions per field):
//   2-bit: |code| <= 3, |x| <= 128: one vpmaddubsw pair <= 2 * 3 * 128 = 768; 4 fields per
//          block -> 3072; 10 blocks -> 30720 <= 32767.
//   int4:  |code| <= 15: a pair <= 2 * 15 * 128 = 3840; 2 fields -> 7680; 4 blocks -> 30720.
// (The positive side is smaller: 127 instead of 128.)
// The tile: this host (Zen 4, AVX2 only) issues 2 vpmaddubsw and 2 ymm loads per cycle; a
// block of 4 rows is 32 vpmaddubsw, 32 vpaddw and 14 field ops, so the kernels are bound by
// the vector ALUs, not the multiplier. 3 rows with both halves' fields (one broadcast per row
// and field) measured faster than 4 rows half by half for 2-bit (ResNet-like ternary .edge, 1
// thread: 9.68 -> 9.39 ms; 2 threads 5.11 -> 4.92), slower for int4 (9.03 -> 9.50 ms), which
// keeps 4 rows.
template <int kBits, int R>
struct SubbyteDot {
  static constexpr int kFields = 8 / kBits;
  static constexpr int kBlockK = 4 * kFields;
  static constexpr int kMaxBlocks = kBits == 2 ? 10 : 4;
  static_assert(kMaxBlocks * kFields * 2 * ((1 << kBits) - 1) * 128 <= 32767,
                "int16 sums of vpmaddubsw must not wrap");
  __m256i s16[R][2];  // int16 sums of the blocks since the last flush
  __m256i s32[R][2];  // int32 sums: channels 0-7 in [r][0], 8-15 in [r][1]
  int pending = 0;

  [[gnu::always_inline]] SubbyteDot() {
    for (int r = 0; r < R; ++r) {
      s16[r][0] = s16[r][1] = s32[r][0] = s32[r][1] = _mm256_setzero_si256();
    }
  }
  [[gnu::always_inline]] void flush() {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int r = 0; r < R; ++r) {
      for (int h = 0; h < 2; ++h) {
        s32[r][h] = _mm256_add_epi32(s32[r][h], _mm256_madd_epi16(s16[r][h], ones));
        s16[r][h] = _mm256_setzero_si256();
      }
    }
    pending = 0;
  }
  // One 64-byte weight block against row r's kBlockK activations at x[r]. Up to 3 rows: both
  // halves' fields at once, so each row's broadcast serves 16 channels (2 vpmaddubsw per
  // load). 4 rows: half by half (channels 0-7, then 8-15), as the fields of both halves, the
  // int16 sums and a broadcast do not fit in the 16 ymm registers (GCC spilled the sums).
  [[gnu::always_inline]] void block(const uint8_t* wb, const uint8_t* const* x) {
    const __m256i mask = _mm256_set1_epi8(static_cast<char>((1 << kBits) - 1));
    if (R <= 3) {
      const __m256i lo = load256(wb), hi = load256(wb + 32);
      for (int i = 0; i < kFields; ++i) {
        const __m256i fl = _mm256_and_si256(i == 0 ? lo : _mm256_srli_epi16(lo, kBits * i), mask);
        const __m256i fh = _mm256_and_si256(i == 0 ? hi : _mm256_srli_epi16(hi, kBits * i), mask);
        for (int r = 0; r < R; ++r) {
          const __m256i xb = bcast32(x[r] + 4 * i);
          s16[r][0] = _mm256_add_epi16(s16[r][0], _mm256_maddubs_epi16(fl, xb));
          s16[r][1] = _mm256_add_epi16(s16[r][1], _mm256_maddubs_epi16(fh, xb));
        }
      }
    } else {
      for (int h = 0; h < 2; ++h) {
        const __m256i raw = load256(wb + 32 * h);
        __m256i f[kFields];
        for (int i = 0; i < kFields; ++i) {
          f[i] = _mm256_and_si256(i == 0 ? raw : _mm256_srli_epi16(raw, kBits * i), mask);
        }
        for (int r = 0; r < R; ++r) {
          __m256i t = s16[r][h];
          for (int i = 0; i < kFields; ++i) {
            t = _mm256_add_epi16(t, _mm256_maddubs_epi16(f[i], bcast32(x[r] + 4 * i)));
          }
          s16[r][h] = t;
        }
      }
    }
    if (++pending == kMaxBlocks) flush();
  }
  // nblocks consecutive blocks of w against consecutive blocks of each row.
  [[gnu::always_inline]] void span(std::size_t nblocks, const uint8_t* w,
                                   const uint8_t* const* x) {
    const uint8_t* xb[R];
    for (int r = 0; r < R; ++r) xb[r] = x[r];
    for (std::size_t b = 0; b < nblocks; ++b) {
      block(w + 64 * b, xb);
      for (int r = 0; r < R; ++r) xb[r] += kBlockK;
    }
  }
};

// The GEMM kernels' (int32-out and fused, rows at a fixed stride) sub-byte dot products:
// widened to int32 after every block, one pass over K per half (channels 0-7, then 8-15) so
// that one half's fields + 1 int32 accumulator per row fit in 16 ymm. SubbyteDot's int16 sums over
// several blocks measured slower here: these kernels serve mostly small K (1x1 convs over 24-32
// channels, the stems over RGB, where the K blocks are 2-10 and the int16 state is one more
// register set to carry): 1x1 56x56x24 -> 144 ternary 0.334 -> 0.382 ms with it.
// init: the tile's 16 int32 start values (the fused kernels' bias), or null for zeros.
// kHalves = 1: channels 0-7 only (a tile with nc <= 8: the second half's sums are not formed).
template <int kBits, int R, int kHalves = 2>
[[gnu::always_inline]] inline void subbyte_dot_rows(std::size_t nblocks, const uint8_t* w,
                                                   const uint8_t* x, std::size_t x_stride,
                                                   __m256i (*acc32)[2],
                                                   const int32_t* init = nullptr) {
  constexpr int kFields = 8 / kBits;
  constexpr int kBlockK = 4 * kFields;
  const __m256i mask = _mm256_set1_epi8(static_cast<char>((1 << kBits) - 1));
  const __m256i ones = _mm256_set1_epi16(1);
  // One pass over K per half: 4 rows' accumulators of both halves, the 8 broadcasts GCC shares
  // between the halves and the fields do not fit in 16 ymm (it kept 7 of the 8 accumulators on
  // the stack, a load and a store per row and half and block); one half's state does.
  for (int h = 0; h < kHalves; ++h) {
    __m256i a[R];
    const __m256i a0 = init != nullptr
                           ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(init + 8 * h))
                           : _mm256_setzero_si256();
    for (int r = 0; r < R; ++r) a[r] = a0;
    for (std::size_t b = 0; b < nblocks; ++b) {
      const __m256i raw = load256(w + b * 64 + 32 * h);
      __m256i f[kFields];
      for (int i = 0; i < kFields; ++i) {
        f[i] = _mm256_and_si256(i == 0 ? raw : _mm256_srli_epi16(raw, kBits * i), mask);
      }
      for (int r = 0; r < R; ++r) {
        const uint8_t* xb = x + r * x_stride + b * kBlockK;
        // At most 4 fields * 3 * 128 * 2 (2-bit) or 2 * 15 * 128 * 2 (int4): fits int16.
        __m256i t = _mm256_maddubs_epi16(f[0], bcast32(xb));
        for (int i = 1; i < kFields; ++i) {
          t = _mm256_add_epi16(t, _mm256_maddubs_epi16(f[i], bcast32(xb + 4 * i)));
        }
        a[r] = _mm256_add_epi32(a[r], _mm256_madd_epi16(t, ones));
      }
    }
    for (int r = 0; r < R; ++r) acc32[r][h] = a[r];
  }
}

template <int kBits, int R>
void gemm_subbyte_rows(std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                       std::size_t x_stride, int32_t* acc) {
  __m256i acc32[R][2];
  subbyte_dot_rows<kBits, R>(nblocks, w, x, x_stride, acc32);
  for (int r = 0; r < R; ++r) store_tile(acc + 16 * r, acc32[r][0], acc32[r][1]);
}

template <int kBits>
void gemm_subbyte(std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                  std::size_t x_stride, int32_t* acc) {
  switch (rows) {
    case 1: gemm_subbyte_rows<kBits, 1>(nblocks, w, x, x_stride, acc); break;
    case 2: gemm_subbyte_rows<kBits, 2>(nblocks, w, x, x_stride, acc); break;
    case 3: gemm_subbyte_rows<kBits, 3>(nblocks, w, x, x_stride, acc); break;
    default: gemm_subbyte_rows<kBits, 4>(nblocks, w, x, x_stride, acc); break;
  }
}

// ------------------------------------------------------------------------------ int8
// Activations are int16 (XFormat::kInt16); a block is four 16-byte chunks of 4 channels x 4 k.
// vpmaddwd of a sign-extended chunk with the 4 activations leaves 2 partial sums per channel.
// Shared, as SubbyteDot, by the int32-out, fused and indirect kernels: Int8Dot::span takes
// each row's address.
template <int R>
struct Int8Dot {
  __m256i a[R][4];  // a[r][j] lanes: [c0 c0 c1 c1 | c2 c2 c3 c3] of chunk j (4 channels)

  [[gnu::always_inline]] Int8Dot() {
    for (int r = 0; r < R; ++r) {
      for (int j = 0; j < 4; ++j) a[r][j] = _mm256_setzero_si256();
    }
  }
  // nblocks consecutive blocks of w against row r's int16 activations from x[r] on.
  [[gnu::always_inline]] void span(std::size_t nblocks, const uint8_t* w,
                                   const uint8_t* const* x) {
    for (std::size_t b = 0; b < nblocks; ++b) {
      __m256i xq[R];
      for (int r = 0; r < R; ++r) xq[r] = bcast64(x[r] + b * 8);
      for (int j = 0; j < 4; ++j) {
        const __m256i wj = _mm256_cvtepi8_epi16(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + b * 64 + 16 * j)));
        for (int r = 0; r < R; ++r) {
          a[r][j] = _mm256_add_epi32(a[r][j], _mm256_madd_epi16(wj, xq[r]));
        }
      }
    }
  }
  // hadd the pairs and undo the lane split: channels 0-7 in s[r][0], 8-15 in s[r][1].
  [[gnu::always_inline]] void finish(__m256i (*s)[2]) const {
    const __m256i order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
    for (int r = 0; r < R; ++r) {
      s[r][0] = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(a[r][0], a[r][1]), order);
      s[r][1] = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(a[r][2], a[r][3]), order);
    }
  }
};

template <int R>
[[gnu::always_inline]] inline void int8_dot_rows(std::size_t nblocks, const uint8_t* w,
                                                const uint8_t* x, std::size_t x_stride,
                                                __m256i (*s)[2]) {
  Int8Dot<R> d;
  const uint8_t* xr[R];
  for (int r = 0; r < R; ++r) xr[r] = x + r * x_stride;
  d.span(nblocks, w, xr);
  d.finish(s);
}

template <int R>
void gemm_int8_rows(std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                    std::size_t x_stride, int32_t* acc) {
  __m256i s[R][2];
  int8_dot_rows<R>(nblocks, w, x, x_stride, s);
  for (int r = 0; r < R; ++r) store_tile(acc + 16 * r, s[r][0], s[r][1]);
}

void gemm_int8(std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
               std::size_t x_stride, int32_t* acc) {
  switch (rows) {
    case 1: gemm_int8_rows<1>(nblocks, w, x, x_stride, acc); break;
    case 2: gemm_int8_rows<2>(nblocks, w, x, x_stride, acc); break;
    default: gemm_int8_rows<3>(nblocks, w, x, x_stride, acc); break;
  }
}

// ------------------------------------------------------------------------------ epilogues
// Rows of up to 8 lanes: full loads when 8 remain, else through a zero-padded stack copy (the
// per-channel arrays are padded to 16, but acc and out are the caller's).
struct Lanes {
  __m256i acc, bias, wzp, mult, ls, rs;
};

inline Lanes load_lanes(std::size_t n, const int32_t* acc, const EpilogueParams& p,
                        std::size_t c) {
  Lanes l;
  if (n >= 8) {
    l.acc = load_i32(acc);
  } else {
    alignas(32) int32_t tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(tmp, acc, n * 4);
    l.acc = load_i32(tmp);
  }
  // Per-channel arrays are padded to a multiple of 16 channels by the plans.
  l.bias = load_i32(p.bias + c);
  l.wzp = p.wzp != nullptr ? load_i32(p.wzp + c) : _mm256_set1_epi32(p.wzp_uniform);
  l.mult = load_i32(p.multiplier + c);
  l.ls = load_i32(p.left_shift + c);
  l.rs = load_i32(p.right_shift + c);
  return l;
}

inline __m256i corrected(const Lanes& l, int32_t row_sum, bool per_channel_wzp,
                         int32_t uniform) {
  __m256i v = _mm256_add_epi32(l.acc, l.bias);
  if (per_channel_wzp) {
    v = _mm256_sub_epi32(v, _mm256_mullo_epi32(l.wzp, _mm256_set1_epi32(row_sum)));
  } else if (uniform != 0) {
    v = _mm256_sub_epi32(v, _mm256_set1_epi32(uniform));
  }
  return v;
}

// wzp_uniform * row_sum in wrapping int32.
inline int32_t uniform_term(const EpilogueParams& p, int32_t row_sum) {
  return static_cast<int32_t>(static_cast<uint32_t>(p.wzp_uniform) *
                              static_cast<uint32_t>(row_sum));
}

// Double rounding: RoundingRightShift(SRDHM(v << ls, m), rs) with ties up or away.
inline __m256i requant_double(__m256i v, const Lanes& l, bool away) {
  const __m256i shifted = _mm256_sllv_epi32(v, l.ls);
  const __m256i nudge = _mm256_set1_epi64x(int64_t{1} << 30);
  // floor((a*b + 2^30) / 2^31): bits 31..62 of the 64-bit sum, for even and odd lanes.
  const __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(shifted, l.mult), nudge);
  const __m256i po = _mm256_add_epi64(
      _mm256_mul_epi32(_mm256_srli_epi64(shifted, 32), _mm256_srli_epi64(l.mult, 32)), nudge);
  const __m256i q = interleave_dwords(_mm256_srli_epi64(pe, 31), _mm256_slli_epi64(po, 1));
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, l.rs), one);
  const __m256i rem = _mm256_and_si256(q, mask);
  __m256i threshold = _mm256_srli_epi32(mask, 1);
  if (away) {
    threshold = _mm256_sub_epi32(threshold, _mm256_cmpgt_epi32(_mm256_setzero_si256(), q));
  }
  return _mm256_sub_epi32(_mm256_srav_epi32(q, l.rs), _mm256_cmpgt_epi32(rem, threshold));
}

// Single rounding: (v * m + 2^(t-1)) >> t, t = 31 - ls + rs, in 64 bits, saturated to int32.
// AVX2 has no 64-bit arithmetic shift: bias by 2^62 (non-negative), shift logically, unbias.
inline __m256i single_lane_pair(__m256i v64, __m256i m64, __m256i t64) {
  const __m256i one = _mm256_set1_epi64x(1);
  const __m256i bias = _mm256_set1_epi64x(int64_t{1} << 62);
  __m256i p = _mm256_mul_epi32(v64, m64);
  p = _mm256_add_epi64(p, _mm256_sllv_epi64(one, _mm256_sub_epi64(t64, one)));
  p = _mm256_srlv_epi64(_mm256_add_epi64(p, bias), t64);
  p = _mm256_sub_epi64(p, _mm256_srlv_epi64(bias, t64));
  const __m256i hi = _mm256_set1_epi64x(INT32_MAX), lo = _mm256_set1_epi64x(INT32_MIN);
  p = _mm256_blendv_epi8(p, hi, _mm256_cmpgt_epi64(p, hi));
  p = _mm256_blendv_epi8(p, lo, _mm256_cmpgt_epi64(lo, p));
  return p;  // int32 result in the low dword of each qword
}

inline __m256i requant_single(__m256i v, const Lanes& l) {
  const __m256i t = _mm256_sub_epi32(_mm256_add_epi32(_mm256_set1_epi32(31), l.rs), l.ls);
  const __m256i lo32 = _mm256_set1_epi64x(0xFFFFFFFFll);
  const __m256i even = single_lane_pair(v, l.mult, _mm256_and_si256(t, lo32));
  const __m256i odd = single_lane_pair(_mm256_srli_epi64(v, 32), _mm256_srli_epi64(l.mult, 32),
                                       _mm256_srli_epi64(t, 32));
  return interleave_dwords(even, _mm256_slli_epi64(odd, 32));
}

void store_int8(std::size_t n, __m256i q, int8_t* out) {
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  const __m128i bytes = _mm_packs_epi16(_mm_packs_epi32(lo, hi), _mm_setzero_si128());
  if (n >= 8) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out), bytes);
  } else {
    alignas(16) int8_t tmp[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), bytes);
    std::memcpy(out, tmp, n);
  }
}

inline int64_t hsum_epi64(__m256i v) {
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}

// Row sums with vpsadbw: (x ^ 0x80) is x + 128 as an unsigned byte; 8 of them sum per lane.
int32_t prepare_int8(const int8_t* src, std::size_t n, uint8_t* dst) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  __m256i sum = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), v);
    sum = _mm256_add_epi64(sum, _mm256_sad_epu8(_mm256_xor_si256(v, flip), _mm256_setzero_si256()));
  }
  int64_t total = hsum_epi64(sum) - 128 * static_cast<int64_t>(i);
  for (; i < n; ++i) {
    dst[i] = static_cast<uint8_t>(src[i]);
    total += src[i];
  }
  return static_cast<int32_t>(total);
}

int32_t prepare_int16(const int8_t* src, std::size_t n, uint8_t* dst) {
  const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80));
  __m128i sum = _mm_setzero_si128();
  int16_t* d = reinterpret_cast<int16_t*>(dst);
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i), _mm256_cvtepi8_epi16(v));
    sum = _mm_add_epi64(sum, _mm_sad_epu8(_mm_xor_si128(v, flip), _mm_setzero_si128()));
  }
  int64_t total = _mm_cvtsi128_si64(sum) + _mm_extract_epi64(sum, 1) - 128 * static_cast<int64_t>(i);
  for (; i < n; ++i) {
    d[i] = src[i];
    total += src[i];
  }
  return static_cast<int32_t>(total);
}

// ------------------------------------------------------------------------------ fused int8 output
// The 64-bit multiply-add-shift requantisation on 8 int32 lanes (Requant8, load_requant8,
// requant8 / requant8_biased, finish8, pack16_int8, store_bytes) is requant8_ymm.h's, shared
// with the ymm VNNI kernels (vnni_ymm.h).

// The epilogue's variant, decided once per call (epilogue_variant), never per row:
//   kWzp:  a weight zero point (per channel or uniform) to subtract times the row sum;
//   kRare: some channel has a pre-shift or rounds ties away from zero. Both are then applied to
//          every channel: pre_shift and negative_add are zero on the channels without them, so
//          the shift by 0 and the add of 0 change nothing (bit-identical to testing per channel).
// The output zero point (0 when folded) and the clamp are applied as vectors always: adding 0 and
// clamping to [-128, 127] before the saturating packs change nothing either.
// Every option and constant is read into locals before the first store: the stores are through
// may-alias vector types, so GCC would otherwise reload p's fields after each row.
struct EpilogueVariant {
  bool wzp, rare;
};

inline EpilogueVariant epilogue_variant(const GemmQs8Params& p) {
  return {p.wzp != nullptr || p.wzp_uniform != 0, p.any_pre_shift != 0 || p.any_negative_add != 0};
}

// 0..3: the index of the (kWzp, kRare) instantiation in the kernels' tables.
inline int variant_index(const GemmQs8Params& p) {
  const EpilogueVariant v = epilogue_variant(p);
  return (v.wzp ? 2 : 0) + (v.rare ? 1 : 0);
}

// GEMM: the tile's epilogue constants (TileRequant, load_tile_requant), read once per call,
// and the requantisation and store of R rows of 16 int32 sums (acc[r][0]: channels 0..7, [1]:
// 8..15) with them (store_requant_rows), each row stored straight away.
// kHi: every channel's shift is 32 to 53 (GemmQs8Params::shift_32_53): requant8_hi, the output
// zero point already in its rounding constant. kBiasIn: the sums already start from the bias.
// A call over many row groups (the sub-byte GEMM, gemm_subbyte_requant) loads them once for
// all its groups instead of once per 4 rows.
template <bool kWzp, bool kRare, bool kHi>
struct TileRequant {
  __m256i bias[2], wzp[2], pre[2], offset[2];
  __m256i qmin8, qmax8;  // the clamp as int8 lanes, applied after the saturating packs
  __m256i pair_order;    // vpermd index: two rows' packed dwords -> row 0 | row 1
  Requant8 rq[2];
  Requant8Hi rh[2];
  std::size_t nc;
};

template <bool kWzp, bool kRare, bool kHi>
[[gnu::always_inline]] inline void load_tile_requant(const GemmQs8Params& p, std::size_t tile,
                                                     std::size_t nc,
                                                     TileRequant<kWzp, kRare, kHi>* e) {
  const std::size_t c0 = tile * 16;
  const RequantEvenOdd& t = p.tiles[tile];
  const __m256i zp = _mm256_set1_epi32(p.out_zero_point);
  // Clamping the int8 results of the saturating packs to [qmin, qmax] equals clamping the int32
  // values before them (the packs clamp to [-128, 127]; qmin <= qmax both in it or cut to it).
  auto to_int8 = [](int32_t v) { return static_cast<char>(v < -128 ? -128 : v > 127 ? 127 : v); };
  e->qmin8 = _mm256_set1_epi8(to_int8(p.out_min));
  e->qmax8 = _mm256_set1_epi8(to_int8(p.out_max));
  e->pair_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  e->nc = nc;
  for (int h = 0; h < 2; ++h) {
    e->bias[h] = load_i32(p.bias + c0 + 8 * h);
    if constexpr (kWzp) {
      e->wzp[h] =
          p.wzp != nullptr ? load_i32(p.wzp + c0 + 8 * h) : _mm256_set1_epi32(p.wzp_uniform);
    }
    if constexpr (kRare) e->pre[h] = load_i32(p.pre_shift + c0 + 8 * h);
    if constexpr (kHi) {
      e->rh[h] = load_requant8_hi(t, h);
    } else {
      e->rq[h] = load_requant8(t, h);
      e->offset[h] = _mm256_sub_epi32(e->rq[h].unbias, zp);
    }
  }
}

// Row r's 16 requantised int32 values as 8 int16 pairs per half: [lo0-3 hi0-3 | lo4-7 hi4-7].
// kLow: channels 0-7 only (nc <= 8); the high half repeats the low one and is never stored.
template <bool kWzp, bool kRare, bool kHi, bool kBiasIn, bool kLow = false>
[[gnu::always_inline]] inline __m256i requant_row16(const __m256i* acc, int32_t row_sum,
                                                    const TileRequant<kWzp, kRare, kHi>& e) {
  __m256i y[2];
  for (int h = 0; h < (kLow ? 1 : 2); ++h) {
    __m256i v = kBiasIn ? acc[h] : _mm256_add_epi32(acc[h], e.bias[h]);
    if constexpr (kWzp) {
      v = _mm256_sub_epi32(v, _mm256_mullo_epi32(e.wzp[h], _mm256_set1_epi32(row_sum)));
    }
    if constexpr (kRare) v = _mm256_sllv_epi32(v, e.pre[h]);
    if constexpr (kHi) {
      y[h] = requant8_hi(v, e.rh[h], kRare);
    } else {
      y[h] = _mm256_sub_epi32(requant8_biased(v, e.rq[h], kRare), e.offset[h]);
    }
  }
  if constexpr (kLow) y[1] = y[0];
  return _mm256_packs_epi32(y[0], y[1]);
}

inline void store_row16(int8_t* out, __m128i b, std::size_t nc) {
  if (nc >= 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), b);
  } else {
    store_bytes(out, b, nc);
  }
}

// Rows in pairs: the two rows' int16 values packed to bytes by one vpacksswb, put in order by
// one vpermd and clamped by one vpmaxsb / vpminsb for 32 outputs (a row alone: per 16 outputs
// vpacksswb, vpshufd and the byte clamp), instead of 4 int32 min / max, the extract and the
// shuffle per row.
template <int R, bool kWzp, bool kRare, bool kHi, bool kBiasIn, bool kLow = false>
[[gnu::always_inline]] inline void store_requant_rows(
    __m256i (*acc)[2], const int32_t* row_sums, std::size_t sums_stride,
    const TileRequant<kWzp, kRare, kHi>& e, int8_t* out, std::size_t out_stride) {
  int r = 0;
  for (; r + 2 <= R; r += 2) {
    const __m256i w0 = requant_row16<kWzp, kRare, kHi, kBiasIn, kLow>(
        acc[r], kWzp ? row_sums[r * sums_stride] : 0, e);
    const __m256i w1 = requant_row16<kWzp, kRare, kHi, kBiasIn, kLow>(
        acc[r + 1], kWzp ? row_sums[(r + 1) * sums_stride] : 0, e);
    // bytes per lane: [row 0 lo, row 0 hi, row 1 lo, row 1 hi] (4 channels each); lane 0 holds
    // channels 0-3 and 8-11, lane 1 4-7 and 12-15
    __m256i b = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w0, w1), e.pair_order);
    b = _mm256_min_epi8(_mm256_max_epi8(b, e.qmin8), e.qmax8);
    store_row16(out + r * out_stride, _mm256_castsi256_si128(b), e.nc);
    store_row16(out + (r + 1) * out_stride, _mm256_extracti128_si256(b, 1), e.nc);
  }
  if (r < R) {
    const __m256i w = requant_row16<kWzp, kRare, kHi, kBiasIn, kLow>(
        acc[r], kWzp ? row_sums[r * sums_stride] : 0, e);
    __m128i b = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    b = _mm_shuffle_epi32(b, _MM_SHUFFLE(3, 1, 2, 0));
    b = _mm_min_epi8(_mm_max_epi8(b, _mm256_castsi256_si128(e.qmin8)),
                     _mm256_castsi256_si128(e.qmax8));
    store_row16(out + r * out_stride, b, e.nc);
  }
}

// Both steps for one group of R rows (the int8 GEMM and the indirect kernels: one group a call).
template <int R, bool kWzp, bool kRare, bool kHi, bool kBiasIn = false>
[[gnu::always_inline]] inline void requant_store_rows(
    __m256i (*acc)[2], const int32_t* row_sums, std::size_t sums_stride, const GemmQs8Params& p,
    std::size_t tile, std::size_t nc, int8_t* out, std::size_t out_stride) {
  TileRequant<kWzp, kRare, kHi> e;
  load_tile_requant(p, tile, nc, &e);
  store_requant_rows<R, kWzp, kRare, kHi, kBiasIn>(acc, row_sums, sums_stride, e, out,
                                                    out_stride);
}

// int8 weights, fused: int8_dot_rows' sums (int16 rows, vpmaddwd) kept in registers.
template <int R, bool kWzp, bool kRare, bool kHi>
void gemm_int8_requant_rows(std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                            std::size_t x_stride, const int32_t* row_sums, std::size_t sums_stride,
                            const GemmQs8Params& p, std::size_t tile, std::size_t nc, int8_t* out,
                            std::size_t out_stride) {
  __m256i s[R][2];
  int8_dot_rows<R>(nblocks, w, x, x_stride, s);
  requant_store_rows<R, kWzp, kRare, kHi>(s, row_sums, sums_stride, p, tile, nc, out,
                                          out_stride);
}

void gemm_int8_requant(std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
                       std::size_t x_stride, const int32_t* row_sums, std::size_t sums_stride,
                       const GemmQs8Params& p, std::size_t tile, std::size_t nc, int8_t* out,
                       std::size_t out_stride) {
  using Fn = decltype(&gemm_int8_requant_rows<1, false, false, false>);
#define EDGE_AVX2_INT8_ROWS(W, X, H)                                                   \
  {gemm_int8_requant_rows<1, W, X, H>, gemm_int8_requant_rows<2, W, X, H>,             \
   gemm_int8_requant_rows<3, W, X, H>}
  static constexpr Fn kByRows[2][4][3] = {
      {EDGE_AVX2_INT8_ROWS(false, false, false), EDGE_AVX2_INT8_ROWS(false, true, false),
       EDGE_AVX2_INT8_ROWS(true, false, false), EDGE_AVX2_INT8_ROWS(true, true, false)},
      {EDGE_AVX2_INT8_ROWS(false, false, true), EDGE_AVX2_INT8_ROWS(false, true, true),
       EDGE_AVX2_INT8_ROWS(true, false, true), EDGE_AVX2_INT8_ROWS(true, true, true)}};
#undef EDGE_AVX2_INT8_ROWS
  kByRows[p.shift_32_53 != 0 ? 1 : 0][variant_index(p)][(rows < 3 ? rows : 3) - 1](
      nblocks, w, x, x_stride, row_sums, sums_stride, p, tile, nc, out, out_stride);
}

// Sub-byte weights, fused: subbyte_dot_rows' sums kept in registers, 4 rows at a time, over
// every row of the call (GemmQs8Kernel::mr of these kernels is kSubbyteRowsPerCall, not 4: the
// plan hands a call up to that many rows of one tile). At small K (1x1 convs over 16-96
// channels: 2-12 blocks) the tile's epilogue constants (load_tile_requant: ~30 vector
// instructions), the call and its variant dispatch weighed as much as a 4-row group's dot
// products; they are now paid once per call. The rows' 4-row groups and the 1-3 row tail run
// the same dot products and epilogue as before.
constexpr uint32_t kSubbyteRowsPerCall = 64;

template <int kBits, int R, bool kWzp, bool kRare, bool kHi, bool kLow>
[[gnu::always_inline]] inline void subbyte_requant_group(
    std::size_t nblocks, const uint8_t* w, const uint8_t* x, std::size_t x_stride,
    const int32_t* row_sums, std::size_t sums_stride, const int32_t* bias,
    const TileRequant<kWzp, kRare, kHi>& e, int8_t* out, std::size_t out_stride) {
  __m256i acc32[R][2];
  subbyte_dot_rows<kBits, R, kLow ? 1 : 2>(nblocks, w, x, x_stride, acc32, bias);
  store_requant_rows<R, kWzp, kRare, kHi, true, kLow>(acc32, row_sums, sums_stride, e, out,
                                                out_stride);
}

// The rows of one call, 4-row groups and a 1-3 row tail. kLow: the tile has nc <= 8 channels
// (a layer's last tile at 24 or 40 outputs): only the low ymm half is computed, where both
// halves would be; the MobileNet-like model's 40x40 1x1 layers to 24 channels.
template <int kBits, bool kWzp, bool kRare, bool kHi, bool kLow>
[[gnu::always_inline]] inline void subbyte_requant_rows(
    std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
    std::size_t x_stride, const int32_t* row_sums, std::size_t sums_stride, const int32_t* bias,
    const TileRequant<kWzp, kRare, kHi>& e, int8_t* out, std::size_t out_stride) {
  std::size_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    subbyte_requant_group<kBits, 4, kWzp, kRare, kHi, kLow>(
        nblocks, w, x + r * x_stride, x_stride, row_sums + r * sums_stride, sums_stride, bias, e,
        out + r * out_stride, out_stride);
  }
  x += r * x_stride;
  row_sums += r * sums_stride;
  out += r * out_stride;
  switch (rows - r) {
    case 3:
      subbyte_requant_group<kBits, 3, kWzp, kRare, kHi, kLow>(nblocks, w, x, x_stride, row_sums,
                                                             sums_stride, bias, e, out, out_stride);
      break;
    case 2:
      subbyte_requant_group<kBits, 2, kWzp, kRare, kHi, kLow>(nblocks, w, x, x_stride, row_sums,
                                                             sums_stride, bias, e, out, out_stride);
      break;
    case 1:
      subbyte_requant_group<kBits, 1, kWzp, kRare, kHi, kLow>(nblocks, w, x, x_stride, row_sums,
                                                             sums_stride, bias, e, out, out_stride);
      break;
    default: break;
  }
}

template <int kBits, bool kWzp, bool kRare, bool kHi>
void gemm_subbyte_requant_call(std::size_t rows, std::size_t nblocks, const uint8_t* w,
                               const uint8_t* x, std::size_t x_stride, const int32_t* row_sums,
                               std::size_t sums_stride, const GemmQs8Params& p, std::size_t tile,
                               std::size_t nc, int8_t* out, std::size_t out_stride) {
  TileRequant<kWzp, kRare, kHi> e;
  load_tile_requant(p, tile, nc, &e);
  const int32_t* bias = p.bias + tile * 16;
  if (nc <= 8) {
    subbyte_requant_rows<kBits, kWzp, kRare, kHi, true>(rows, nblocks, w, x, x_stride, row_sums,
                                                        sums_stride, bias, e, out, out_stride);
  } else {
    subbyte_requant_rows<kBits, kWzp, kRare, kHi, false>(rows, nblocks, w, x, x_stride, row_sums,
                                                         sums_stride, bias, e, out, out_stride);
  }
}

template <int kBits>
void gemm_subbyte_requant(std::size_t rows, std::size_t nblocks, const uint8_t* w,
                          const uint8_t* x, std::size_t x_stride, const int32_t* row_sums,
                          std::size_t sums_stride, const GemmQs8Params& p, std::size_t tile,
                          std::size_t nc, int8_t* out, std::size_t out_stride) {
  using Fn = decltype(&gemm_subbyte_requant_call<kBits, false, false, false>);
#define EDGE_AVX2_SUBBYTE_CALL(W, X, H) gemm_subbyte_requant_call<kBits, W, X, H>
  static constexpr Fn kVariants[2][4] = {
      {EDGE_AVX2_SUBBYTE_CALL(false, false, false), EDGE_AVX2_SUBBYTE_CALL(false, true, false),
       EDGE_AVX2_SUBBYTE_CALL(true, false, false), EDGE_AVX2_SUBBYTE_CALL(true, true, false)},
      {EDGE_AVX2_SUBBYTE_CALL(false, false, true), EDGE_AVX2_SUBBYTE_CALL(false, true, true),
       EDGE_AVX2_SUBBYTE_CALL(true, false, true), EDGE_AVX2_SUBBYTE_CALL(true, true, true)}};
#undef EDGE_AVX2_SUBBYTE_CALL
  kVariants[p.shift_32_53 != 0 ? 1 : 0][variant_index(p)](
      rows, nblocks, w, x, x_stride, row_sums, sums_stride, p, tile, nc, out, out_stride);
}

// ------------------------------------------------------------------------------ indirect, fused
// The fused kernels' dot products with each row's activations taken tap by tap from the
// indirection buffer (IgemmQs8Fn): no im2col copy. The int16 sums of the sub-byte kernels run
// on across taps (SubbyteDot flushes by block count, not by tap), so a 3x3 conv over 16
// channels (one block per tap) still widens once per 10 blocks.

// int8 weights, 3 rows, one block per tap (igemm_int8_requant's triples: the RGB stems over
// 3 + 1 padded channels): one pass over the taps per half of the tile (chunks 0-1: channels
// 0-7, then 2-3: 8-15), 6 accumulators where Int8Dot<3> holds 12. With 12, the 3 broadcasts
// and a weight chunk, one accumulator lived on the stack, and GCC, splitting the chunk loop
// over the taps, left it a load-add-store chain per tap (store-to-load forwarding on the
// critical path: ~30 % of the MobileNet-like stem's samples on the one instruction after it,
// Zen 4); the taps also ran Int8Dot::span's block loop of one block. The second pass loads the
// broadcasts and the tap pointers again. Sums as Int8Dot's (the same products, wrapping int32
// adds in another order: the same bits), each half finished as Int8Dot::finish does.
template <int R>
[[gnu::always_inline]] inline void int8_taps_by_half(std::size_t taps, const uint8_t* w,
                                                    const uint8_t* const* ind,
                                                    __m256i (*s)[2]) {
  const __m256i order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
  for (int h = 0; h < 2; ++h) {
    __m256i a[R][2];
    for (int r = 0; r < R; ++r) a[r][0] = a[r][1] = _mm256_setzero_si256();
    for (std::size_t t = 0; t < taps; ++t) {
      __m256i xq[R];
      for (int r = 0; r < R; ++r) xq[r] = bcast64(ind[r * taps + t]);
      for (int j = 0; j < 2; ++j) {
        const __m256i wj = _mm256_cvtepi8_epi16(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + t * 64 + 32 * h + 16 * j)));
        for (int r = 0; r < R; ++r) {
          a[r][j] = _mm256_add_epi32(a[r][j], _mm256_madd_epi16(wj, xq[r]));
        }
      }
    }
    for (int r = 0; r < R; ++r) {
      s[r][h] = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(a[r][0], a[r][1]), order);
    }
  }
}

template <int kBits, int R, bool kWzp, bool kRare, bool kHi>
void igemm_requant_rows(std::size_t taps, std::size_t blocks_per_tap, const uint8_t* w,
                        const uint8_t* const* ind, const int32_t* row_sums,
                        const GemmQs8Params& p, std::size_t tile, std::size_t nc, int8_t* out,
                        std::size_t out_stride) {
  __m256i acc[R][2];
  const std::size_t tap_bytes = blocks_per_tap * 64;
  if constexpr (kBits == 8 && R == 3) {
    // igemm_int8_requant groups rows in threes only when a tap is one block (blocks_per_tap
    // is cin_pad / kb >= 1: conv2d.cc), so triples always take this path; Int8Dot<3> is not
    // built here.
    int8_taps_by_half<R>(taps, w, ind, acc);
  } else if constexpr (kBits == 8) {
    Int8Dot<R> d;
    for (std::size_t t = 0; t < taps; ++t) {
      const uint8_t* x[R];
      for (int r = 0; r < R; ++r) x[r] = ind[r * taps + t];
      d.span(blocks_per_tap, w + t * tap_bytes, x);
    }
    d.finish(acc);
  } else {
    SubbyteDot<kBits, R> d;
    for (std::size_t t = 0; t < taps; ++t) {
      const uint8_t* x[R];
      for (int r = 0; r < R; ++r) x[r] = ind[r * taps + t];
      d.span(blocks_per_tap, w + t * tap_bytes, x);
    }
    d.flush();
    for (int r = 0; r < R; ++r) acc[r][0] = d.s32[r][0], acc[r][1] = d.s32[r][1];
  }
  requant_store_rows<R, kWzp, kRare, kHi>(acc, row_sums, 1, p, tile, nc, out, out_stride);
}

// int8 weights: a call takes up to 6 rows, as pairs (Int8Dot<2>: 8 accumulators, no spill)
// when a tap has several blocks, as triples when a tap is one block (the 7x7 stem over 3 + 1
// padded channels: 49 taps, where per-tap pointer loads and the epilogue weigh more): 3
// broadcasts and the weights' widening shared by 3 rows, each half of the tile in its own pass
// over the taps (int8_taps_by_half, 6 accumulators in registers; since e5b6da0, before which
// triples ran Int8Dot<3> with one accumulator spilled). Measured then with Int8Dot<3> (AVX2,
// 1 thread): 3x3 56x56x64 triples 2.02-2.15 ms, pairs 1.70-1.89; 7x7/2 stem 160x160x3 -> 64
// triples 1.56-1.59, pairs 1.90-2.32.
void igemm_int8_requant(std::size_t rows, std::size_t taps, std::size_t blocks_per_tap,
                        const uint8_t* w, const uint8_t* const* ind, const int32_t* row_sums,
                        const GemmQs8Params& p, std::size_t tile, std::size_t nc, int8_t* out,
                        std::size_t out_stride) {
  using Fn = decltype(&igemm_requant_rows<8, 1, false, false, false>);
#define EDGE_AVX2_IGEMM8_ROWS(W, X, H)                                                      \
  {igemm_requant_rows<8, 1, W, X, H>, igemm_requant_rows<8, 2, W, X, H>,                    \
   igemm_requant_rows<8, 3, W, X, H>}
  static constexpr Fn kVariants[2][4][3] = {
      {EDGE_AVX2_IGEMM8_ROWS(false, false, false), EDGE_AVX2_IGEMM8_ROWS(false, true, false),
       EDGE_AVX2_IGEMM8_ROWS(true, false, false), EDGE_AVX2_IGEMM8_ROWS(true, true, false)},
      {EDGE_AVX2_IGEMM8_ROWS(false, false, true), EDGE_AVX2_IGEMM8_ROWS(false, true, true),
       EDGE_AVX2_IGEMM8_ROWS(true, false, true), EDGE_AVX2_IGEMM8_ROWS(true, true, true)}};
#undef EDGE_AVX2_IGEMM8_ROWS
  const Fn* kByRows = kVariants[p.shift_32_53 != 0 ? 1 : 0][variant_index(p)];
  const std::size_t group = blocks_per_tap >= 2 ? 2 : 3;
  for (std::size_t r = 0; r < rows; r += group) {
    const std::size_t n = rows - r < group ? rows - r : group;
    kByRows[n - 1](taps, blocks_per_tap, w, ind + r * taps, row_sums + r, p, tile, nc,
                   out + r * out_stride, out_stride);
  }
}

template <int kBits, int Mr>
void igemm_requant(std::size_t rows, std::size_t taps, std::size_t blocks_per_tap,
                   const uint8_t* w, const uint8_t* const* ind, const int32_t* row_sums,
                   const GemmQs8Params& p, std::size_t tile, std::size_t nc, int8_t* out,
                   std::size_t out_stride) {
  using Fn = decltype(&igemm_requant_rows<kBits, 1, false, false, false>);
#define EDGE_AVX2_IGEMM_ROWS(W, X, H)                                                          \
  {igemm_requant_rows<kBits, 1, W, X, H>, igemm_requant_rows<kBits, 2, W, X, H>,               \
   igemm_requant_rows<kBits, 3, W, X, H>, igemm_requant_rows<kBits, 4, W, X, H>}
  static constexpr Fn kVariants[2][4][4] = {
      {EDGE_AVX2_IGEMM_ROWS(false, false, false), EDGE_AVX2_IGEMM_ROWS(false, true, false),
       EDGE_AVX2_IGEMM_ROWS(true, false, false), EDGE_AVX2_IGEMM_ROWS(true, true, false)},
      {EDGE_AVX2_IGEMM_ROWS(false, false, true), EDGE_AVX2_IGEMM_ROWS(false, true, true),
       EDGE_AVX2_IGEMM_ROWS(true, false, true), EDGE_AVX2_IGEMM_ROWS(true, true, true)}};
#undef EDGE_AVX2_IGEMM_ROWS
  const Fn* kByRows = kVariants[p.shift_32_53 != 0 ? 1 : 0][variant_index(p)];
  static_assert(Mr >= 1 && Mr <= 4, "row tails are dispatched over 1..4 rows");
  kByRows[(rows < Mr ? rows : Mr) - 1](taps, blocks_per_tap, w, ind, row_sums, p, tile, nc, out,
                                       out_stride);
}

// Depthwise, fused: dw_ymm.h's kernel (the 64c4 layout as two 32-channel halves) with
// vpdpbusd (x + 128 unsigned times w signed, four products per dword) emulated exactly by two
// vpmaddwd on the even and odd bytes widened to int16 (255 * 128 * 2 fits).
// The weights come widened and split by parity (depthwise_conv2d.cc,
// widen_fused_weights_for_avx2: 128 bytes per 64c4 vector, every layer on AVX2), so only the
// activations are split per pixel.

// Weight vector q (of 4) of a group for channel half h, as the even / odd int16 pair.
inline void dw_weights(const uint8_t* wgroup, int q, int h, __m256i* we, __m256i* wo) {
  const uint8_t* w = wgroup + 128 * q + 64 * h;
  *we = load256(w);
  *wo = load256(w + 32);
}

// Each dword's even bytes (taps 0, 2) and odd bytes (taps 1, 3) as int16 pairs against the
// weights' even / odd int16.
inline __m256i dot4_u8s8(__m256i acc, __m256i u, __m256i we, __m256i wo) {
  const __m256i lo8 = _mm256_set1_epi16(0x00FF);
  const __m256i ue = _mm256_and_si256(u, lo8), uo = _mm256_srli_epi16(u, 8);
  return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(ue, we), _mm256_madd_epi16(uo, wo)));
}

struct Avx2DwTaps {
  static constexpr std::size_t kGroupBytes = 512;
  [[gnu::always_inline]] static __m256i dot4(__m256i acc, __m256i u, const uint8_t* wg, int q,
                                             int h) {
    __m256i we, wo;
    dw_weights(wg, q, h, &we, &wo);
    return dot4_u8s8(acc, u, we, wo);
  }
  // A lone tap's dwords (x, 0, 0, 0): the even int16 of each pair is x, the odd one zero.
  [[gnu::always_inline]] static __m256i dot1(__m256i acc, __m256i u, const uint8_t* wg, int q,
                                             int h) {
    __m256i we, wo;
    dw_weights(wg, q, h, &we, &wo);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(u, we));
  }
};

void dwconv_qs8_avx2(std::size_t pixels, std::size_t channels, std::size_t groups,
                     const int8_t* const* inputs, std::size_t step, const int8_t* weights,
                     const DwRequantParams& p, int8_t* out) {
  dw_ymm::dwconv<Avx2DwTaps>(pixels, channels, groups, inputs, step, weights, p, out);
}

}  // namespace

void requant_avx2(std::size_t n, const int32_t* acc, int32_t row_sum, const EpilogueParams& p,
                  std::size_t c0, int8_t* out) {
  const bool has_wzp = p.wzp != nullptr;
  const int32_t uniform = uniform_term(p, row_sum);
  const __m256i zp = _mm256_set1_epi32(p.out_zero_point);
  const __m256i qmin = _mm256_set1_epi32(p.out_min), qmax = _mm256_set1_epi32(p.out_max);
  for (std::size_t i = 0; i < n; i += 8) {
    const std::size_t len = n - i < 8 ? n - i : 8;
    const Lanes l = load_lanes(len, acc + i, p, c0 + i);
    const __m256i v = corrected(l, row_sum, has_wzp, uniform);
    __m256i q = p.rounding == 2 ? requant_single(v, l) : requant_double(v, l, p.rounding == 1);
    q = _mm256_add_epi32(q, zp);
    q = _mm256_min_epi32(_mm256_max_epi32(q, qmin), qmax);
    store_int8(len, q, out + i);
  }
}

void dequant_avx2(std::size_t n, const int32_t* acc, int32_t row_sum, const EpilogueParams& p,
                  std::size_t c0, float* out) {
  const bool has_wzp = p.wzp != nullptr;
  const int32_t uniform = uniform_term(p, row_sum);
  const __m256 lo = _mm256_set1_ps(p.float_min), hi = _mm256_set1_ps(p.float_max);
  for (std::size_t i = 0; i < n; i += 8) {
    const std::size_t len = n - i < 8 ? n - i : 8;
    const Lanes l = load_lanes(len, acc + i, p, c0 + i);
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(corrected(l, row_sum, has_wzp, uniform)),
                             _mm256_loadu_ps(p.scale + c0 + i));
    // Exactly the scalar clamp (f < lo ? lo : f, then f > hi ? hi : f), signed zeros included.
    f = _mm256_blendv_ps(f, lo, _mm256_cmp_ps(f, lo, _CMP_LT_OQ));
    f = _mm256_blendv_ps(f, hi, _mm256_cmp_ps(f, hi, _CMP_GT_OQ));
    if (len == 8) {
      _mm256_storeu_ps(out + i, f);
    } else {
      alignas(32) float tmp[8];
      _mm256_store_ps(tmp, f);
      std::memcpy(out + i, tmp, len * 4);
    }
  }
}

void dwconv_avx2(std::size_t channels, std::size_t taps, const int8_t* const* inputs,
                 const int32_t* weights, std::size_t stride, int32_t* acc) {
  std::size_t c = 0;
  for (; c + 16 <= channels; c += 16) {
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
    for (std::size_t t = 0; t < taps; ++t) {
      const __m128i xv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(inputs[t] + c));
      const int32_t* wt = weights + t * stride + c;
      a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(_mm256_cvtepi8_epi32(xv), load_i32(wt)));
      a1 = _mm256_add_epi32(
          a1, _mm256_mullo_epi32(_mm256_cvtepi8_epi32(_mm_srli_si128(xv, 8)), load_i32(wt + 8)));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + c), a0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + c + 8), a1);
  }
  for (; c + 8 <= channels; c += 8) {
    __m256i a0 = _mm256_setzero_si256();
    for (std::size_t t = 0; t < taps; ++t) {
      const __m128i xv = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(inputs[t] + c));
      a0 = _mm256_add_epi32(
          a0, _mm256_mullo_epi32(_mm256_cvtepi8_epi32(xv), load_i32(weights + t * stride + c)));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + c), a0);
  }
  for (; c < channels; ++c) {
    uint32_t sum = 0;
    for (std::size_t t = 0; t < taps; ++t) {
      sum += static_cast<uint32_t>(static_cast<int32_t>(inputs[t][c]) * weights[t * stride + c]);
    }
    acc[c] = static_cast<int32_t>(sum);
  }
}

namespace {

// The kernels by name (docs/kernels.md; XNNPACK's convention): the table below takes each
// name from the symbol.
void qs8_qc8w_gemm_1x16c4__avx2(EDGE_GEMM_PARAMS) { gemm_int8(EDGE_GEMM_ARGS); }
void qs8_qc8w_gemm_3x16c4__avx2(EDGE_GEMM_PARAMS) { gemm_int8(EDGE_GEMM_ARGS); }
void qs8_qc4w_gemm_1x16c4__avx2(EDGE_GEMM_PARAMS) { gemv_4bit(EDGE_GEMM_ARGS); }
void qs8_qc4w_gemm_4x16c4__avx2(EDGE_GEMM_PARAMS) { gemm_subbyte<4>(EDGE_GEMM_ARGS); }
void qs8_qc2w_gemm_1x16c4__avx2(EDGE_GEMM_PARAMS) { gemv_2bit(EDGE_GEMM_ARGS); }
void qs8_qc2w_gemm_4x16c4__avx2(EDGE_GEMM_PARAMS) { gemm_subbyte<2>(EDGE_GEMM_ARGS); }
void qs8_qc8w_gemm_requant_3x16c4__avx2(EDGE_GEMM_QS8_PARAMS) {
  gemm_int8_requant(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc4w_gemm_requant_4x16c4__avx2(EDGE_GEMM_QS8_PARAMS) {
  gemm_subbyte_requant<4>(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc2w_gemm_requant_4x16c4__avx2(EDGE_GEMM_QS8_PARAMS) {
  gemm_subbyte_requant<2>(EDGE_GEMM_QS8_ARGS);
}
void qs8_qc8w_igemm_requant_6x16c4__avx2(EDGE_IGEMM_QS8_PARAMS) {
  igemm_int8_requant(EDGE_IGEMM_QS8_ARGS);
}
void qs8_qc4w_igemm_requant_4x16c4__avx2(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<4, 4>(EDGE_IGEMM_QS8_ARGS);
}
void qs8_qc2w_igemm_requant_3x16c4__avx2(EDGE_IGEMM_QS8_PARAMS) {
  igemm_requant<2, 3>(EDGE_IGEMM_QS8_ARGS);
}
void qs8_qc8w_dwconv_16c__avx2(EDGE_DW_PARAMS) { dwconv_avx2(EDGE_DW_ARGS); }
void qs8_qc8w_dwconv_rowx32c4__avx2(EDGE_DW_QS8_PARAMS) { dwconv_qs8_avx2(EDGE_DW_QS8_ARGS); }

constexpr GemmKernels kGemm8 = {EDGE_UKERNEL(qs8_qc8w_gemm_1x16c4__avx2, 1),
                                EDGE_UKERNEL(qs8_qc8w_gemm_3x16c4__avx2, 3), XFormat::kInt16,
                                prepare_int16};
constexpr GemmKernels kGemm4 = {EDGE_UKERNEL(qs8_qc4w_gemm_1x16c4__avx2, 1),
                                EDGE_UKERNEL(qs8_qc4w_gemm_4x16c4__avx2, 4), XFormat::kInt8,
                                prepare_int8, row_sums_int8};
// Ternary and int2 weights are both 2-bit fields: one kernel (the plan folds the zero points).
constexpr GemmKernels kGemm2 = {EDGE_UKERNEL(qs8_qc2w_gemm_1x16c4__avx2, 1),
                                EDGE_UKERNEL(qs8_qc2w_gemm_4x16c4__avx2, 4), XFormat::kInt8,
                                prepare_int8, row_sums_int8};
constexpr GemmQs8Kernel kGemmQs8_2 =
    EDGE_UKERNEL(qs8_qc2w_gemm_requant_4x16c4__avx2, kSubbyteRowsPerCall);
constexpr IgemmQs8Kernel kIgemmQs8_2 = EDGE_UKERNEL(qs8_qc2w_igemm_requant_3x16c4__avx2, 3);

}  // namespace

const IsaKernels kAvx2Kernels = {
    {kGemm8, kGemm4, kGemm2, kGemm2},
    requant_avx2,
    dequant_avx2,
    EDGE_NAMED(qs8_qc8w_dwconv_16c__avx2),
    EDGE_NAMED(qs8_qc8w_dwconv_rowx32c4__avx2),
    {EDGE_UKERNEL(qs8_qc8w_gemm_requant_3x16c4__avx2, 3),
     EDGE_UKERNEL(qs8_qc4w_gemm_requant_4x16c4__avx2, kSubbyteRowsPerCall), kGemmQs8_2,
     kGemmQs8_2},
    {EDGE_UKERNEL(qs8_qc8w_igemm_requant_6x16c4__avx2, 6),
     EDGE_UKERNEL(qs8_qc4w_igemm_requant_4x16c4__avx2, 4), kIgemmQs8_2, kIgemmQs8_2},
};

}  // namespace detail
}  // namespace edge
