#include "edge/kernels/depthwise_conv2d.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "edge/kernels/isa.h"
#include "kernels/gemm_plan.h"
#include "kernels/registry.h"

namespace edge {
namespace {

std::size_t round_up(std::size_t v, std::size_t m) { return (v + m - 1) / m * m; }

}  // namespace

struct DepthwiseConv2D::Impl {
  struct ThreadWorkspace {
    std::vector<const int8_t*> taps;
    std::vector<const int8_t*> columns;  // the fused kernel's row indirection (run)
    std::vector<int8_t> expanded;  // [taps][channels] when depth_multiplier > 1
    AlignedBuffer<int32_t> acc;
  };

  Impl(const int8_t* filter, const float* scales, int32_t num_scales, const int32_t* zero_points,
       const DepthwiseConv2DOptions& options)
      : geo(detail::resolve_geometry(options.geometry)), multiplier_(options.depth_multiplier) {
    if (filter == nullptr) throw std::invalid_argument("DepthwiseConv2D: no filter");
    if (multiplier_ < 1) {
      throw std::invalid_argument("DepthwiseConv2D: depth multiplier must be >= 1, got " +
                                  std::to_string(multiplier_));
    }
    if (options.input.zero_point < -128 || options.input.zero_point > 127 ||
        options.output.zero_point < -128 || options.output.zero_point > 127) {
      throw std::invalid_argument("DepthwiseConv2D: zero points must be in [-128, 127]");
    }
    const ConvGeometry& g = geo.g;
    channels = static_cast<std::size_t>(g.input_channels) * static_cast<std::size_t>(multiplier_);
    const int32_t nch = static_cast<int32_t>(channels);
    if (scales == nullptr || (num_scales != 1 && num_scales != nch)) {
      throw std::invalid_argument("DepthwiseConv2D: need 1 or " + std::to_string(nch) +
                                  " scales, got " + std::to_string(num_scales));
    }
    isa = resolve_isa(options.isa);
    kernels = &detail::isa_kernels(isa);
    output_type = options.output_type;
    taps = static_cast<std::size_t>(g.kernel_height) * static_cast<std::size_t>(g.kernel_width);
    stride = round_up(channels, 16);

    // Weights as int32 (w - zero point), [taps][stride], and the folded bias. Taps are kept in
    // column-major order (t = kw * kernel_height + kh, the filter's is kh * kernel_width + kw):
    // the fused kernel's row indirection (run) shares a pixel's window with its neighbours
    // column by column.
    // acc = sum_t (x_t - xz)(w_t - wz) + bias = sum_t x_t (w_t - wz) + (bias - xz sum_t (w_t - wz)).
    weights.resize(taps * stride);
    // Epilogue arrays: 16 more than `stride`, as the tail call starts at a multiple of 8.
    const std::size_t epi = stride + 16;
    bias_term.assign(epi, 0);
    std::vector<int32_t> wsum_c(channels, 0);
    bool weights_int8 = true;
    const int32_t xz = options.input.zero_point;
    for (std::size_t c = 0; c < channels; ++c) {
      const int32_t wz = zero_points != nullptr ? zero_points[c] : 0;
      if (wz < -128 || wz > 127) {
        throw std::invalid_argument("DepthwiseConv2D: zero point of channel " + std::to_string(c) +
                                    " outside [-128, 127]");
      }
      uint32_t wsum = 0;
      for (std::size_t t = 0; t < taps; ++t) {
        const int32_t v = static_cast<int32_t>(filter[filter_tap(t) * channels + c]) - wz;
        weights[t * stride + c] = v;
        wsum += static_cast<uint32_t>(v);
        weights_int8 = weights_int8 && v >= -128 && v <= 127;
      }
      wsum_c[c] = static_cast<int32_t>(wsum);
      const int32_t bias = options.bias != nullptr ? options.bias[c] : 0;
      bias_term[c] = static_cast<int32_t>(static_cast<uint32_t>(bias) -
                                          static_cast<uint32_t>(xz) * wsum);
    }
    scale.assign(epi, 0.0f);
    for (std::size_t c = 0; c < channels; ++c) {
      scale[c] = options.input.scale * scales[num_scales == 1 ? 0 : c];
    }
    const Rounding tail = options.tail_rounding.value_or(options.rounding);
    if (output_type == OutputType::kInt8) {
      requant.build(options, nch, epi, scales, num_scales, false, options.rounding);
      tail_requant.build(options, nch, epi, scales, num_scales, false, tail);
    } else {
      requant.zeros(epi);
      tail_requant.zeros(epi);
    }
    const ClampRange range = detail::output_clamp(options);
    ep.bias = bias_term.data();
    ep.wzp = nullptr;
    ep.wzp_uniform = 0;
    requant.attach(ep);
    ep.scale = scale.data();
    detail::float_clamp(options.activation, &ep.float_min, &ep.float_max);
    ep.out_zero_point = options.output.zero_point;
    ep.out_min = range.min;
    ep.out_max = range.max;
    ep.rounding = static_cast<int32_t>(options.rounding);
    tail_ep = ep;
    tail_ep.rounding = static_cast<int32_t>(tail);
    tail_requant.attach(tail_ep);
    vector_channels = tail_ep.rounding == ep.rounding ? channels : channels / 8 * 8;
    zero_row.assign(channels, static_cast<int8_t>(xz));
    if (output_type == OutputType::kInt8 && kernels->dwconv_qs8 != nullptr && weights_int8 &&
        !requant.saturate && !tail_requant.saturate) {
      build_fused(wsum_c);
    }
    for (int32_t kw = 0; kw < g.kernel_width; ++kw) {
      for (int32_t kh = 0; kh < g.kernel_height; ++kh) {
        tap_offsets.push_back((static_cast<std::size_t>(kh) * g.dilation_height *
                                   static_cast<std::size_t>(g.input_width) +
                               static_cast<std::size_t>(kw) * g.dilation_width) *
                              static_cast<std::size_t>(g.input_channels));
      }
    }
  }

  // The filter's (row-major) index of tap t in our column-major order.
  std::size_t filter_tap(std::size_t t) const {
    const std::size_t kh = static_cast<std::size_t>(geo.g.kernel_height);
    return (t % kh) * static_cast<std::size_t>(geo.g.kernel_width) + t / kh;
  }

  // The fused int8 kernel's weights and requantisation tables, in its permuted channel order
  // (ukernels.h, DwQs8Fn): lane p of accumulator q of block b holds channel 64b + 16(p/4) +
  // 4q + p%4. Channels from vector_channels on take tail_requant's rule.
  void build_fused(const std::vector<int32_t>& wsum) {
    if (isa == Isa::kNeon || isa == Isa::kDotprod || isa == Isa::kI8mm) {
      build_fused_arm();
      return;
    }
    groups = (taps + 3) / 4;
    const std::size_t blocks = (channels + 63) / 64;
    fused_weights.resize(blocks * groups * 256);
    std::memset(fused_weights.data(), 0, fused_weights.size());
    fused_blocks.assign(blocks * 4, detail::DwRequantBlock{});
    bool any_pre = false, any_neg = false, shift_32_53 = true;
    for (std::size_t b = 0; b < blocks; ++b) {
      for (std::size_t q = 0; q < 4; ++q) {
        detail::DwRequantBlock& blk = fused_blocks[b * 4 + q];
        for (std::size_t p = 0; p < 16; ++p) {
          const std::size_t c = 64 * b + 16 * (p / 4) + 4 * q + p % 4;
          if (c >= channels) continue;
          for (std::size_t g = 0; g < groups; ++g) {
            for (std::size_t j = 0; j < 4 && 4 * g + j < taps; ++j) {
              fused_weights[((b * groups + g) * 4 + q) * 64 + p * 4 + j] =
                  static_cast<int8_t>(weights[(4 * g + j) * stride + c]);
            }
          }
          const detail::RequantTables& t = c >= vector_channels ? tail_requant : requant;
          blk.bias[p] = static_cast<int32_t>(static_cast<uint32_t>(bias_term[c]) -
                                             128u * static_cast<uint32_t>(wsum[c]));
          blk.pre_shift[p] = t.pre_shift[c];
          blk.multiplier[p % 2][p / 2] = t.multiplier[c];
          blk.rounding_add[p % 2][p / 2] = t.rounding_add[c];
          blk.negative_add[p % 2][p / 2] = t.negative_add[c];
          blk.total_shift[p % 2][p / 2] = t.total_shift[c];
          any_pre = any_pre || t.pre_shift[c] != 0;
          any_neg = any_neg || t.negative_add[c] != 0;
          shift_32_53 = shift_32_53 && t.total_shift[c] >= 32;
        }
      }
    }
    // The output zero point joins the rounding constant when no shift exceeds 53:
    // floor((p + add) / 2^s) + zp = floor((p + add + zp 2^s) / 2^s), and |p| < 2^62,
    // add <= 2^(s-1) + 2^30, |zp| 2^s <= 2^60 keep the sum inside int64. The low dword is then
    // the wrapping int32 sum the other epilogues form.
    bool fold_zp = true;
    for (const detail::DwRequantBlock& blk : fused_blocks) {
      for (int e = 0; e < 2; ++e) {
        for (int i = 0; i < 8; ++i) fold_zp = fold_zp && blk.total_shift[e][i] <= 53;
      }
    }
    if (fold_zp) {
      for (detail::DwRequantBlock& blk : fused_blocks) {
        for (int e = 0; e < 2; ++e) {
          for (int i = 0; i < 8; ++i) {
            blk.rounding_add[e][i] += static_cast<int64_t>(ep.out_zero_point) *
                                      (int64_t{1} << blk.total_shift[e][i]);
          }
        }
      }
    }
    if (isa == Isa::kAvx2) widen_fused_weights_for_avx2();
    fused.blocks = fused_blocks.data();
    fused.out_zero_point = fold_zp ? 0 : ep.out_zero_point;
    fused.out_min = ep.out_min;
    fused.out_max = ep.out_max;
    fused.any_pre_shift = any_pre ? 1 : 0;
    fused.any_negative_add = any_neg ? 1 : 0;
    fused.shift_32_53 = shift_32_53 && fold_zp ? 1 : 0;  // fold_zp: every shift <= 53
    fused.lone_last_tap = taps % 4 == 1 ? 1 : 0;
    use_fused = true;
    // Row indirection needs undilated columns (pixel windows as contiguous slices of one column
    // list) and the input's own rows (a depth multiplier expands them per pixel).
    const ConvGeometry& g = geo.g;
    use_row_indirection = g.dilation_width == 1 && multiplier_ == 1;
    row_columns = static_cast<std::size_t>(geo.out_w - 1) * static_cast<std::size_t>(g.stride_width) +
                  static_cast<std::size_t>(g.kernel_width);
  }

  // The Arm fused kernels' weights and tables, in natural channel order (ukernels.h,
  // DwArmTables). kUpward and kAwayFromZero channels mix through the `away` table; kSingle
  // mixed with another rule (a tail rule) keeps the unfused path.
  void build_fused_arm() {
    const bool single = static_cast<Rounding>(ep.rounding) == Rounding::kSingle;
    if (single != (static_cast<Rounding>(tail_ep.rounding) == Rounding::kSingle)) return;
    groups = (taps + 3) / 4;
    arm_tables.assign(6 * stride, 0);
    int32_t* const tab[6] = {arm_tables.data(),              arm_tables.data() + stride,
                             arm_tables.data() + 2 * stride, arm_tables.data() + 3 * stride,
                             arm_tables.data() + 4 * stride, arm_tables.data() + 5 * stride};
    bool any_away = false, any_ls = false;
    for (std::size_t c = 0; c < channels; ++c) {
      const bool tail = c >= vector_channels;
      const detail::RequantTables& t = tail ? tail_requant : requant;
      const bool away =
          static_cast<Rounding>((tail ? tail_ep : ep).rounding) == Rounding::kAwayFromZero;
      const int32_t ls = t.left_shift[c], rs = t.right_shift[c];
      tab[0][c] = bias_term[c];
      tab[1][c] = t.multiplier[c];
      tab[2][c] = ls;
      tab[3][c] = -rs;
      tab[4][c] = away ? -rs : 0;
      tab[5][c] = -(31 - ls + rs);
      any_away = any_away || (away && rs != 0);
      any_ls = any_ls || ls != 0;
    }
    if (isa == Isa::kDotprod || isa == Isa::kI8mm) {  // int8 [group][stride][4 taps]
      fused_weights.resize(groups * stride * 4);
      std::memset(fused_weights.data(), 0, fused_weights.size());
      for (std::size_t t = 0; t < taps; ++t) {
        for (std::size_t c = 0; c < channels; ++c) {
          fused_weights[((t / 4) * stride + c) * 4 + t % 4] =
              static_cast<int8_t>(weights[t * stride + c]);
        }
      }
    } else {  // int16 [tap][stride]
      fused_weights.resize(taps * stride * 2);
      std::memset(fused_weights.data(), 0, fused_weights.size());
      auto* w16 = reinterpret_cast<int16_t*>(fused_weights.data());
      for (std::size_t t = 0; t < taps; ++t) {
        for (std::size_t c = 0; c < channels; ++c) {
          w16[t * stride + c] = static_cast<int16_t>(weights[t * stride + c]);
        }
      }
    }
    detail::DwArmTables& a = fused.arm;
    a.bias = tab[0];
    a.multiplier = tab[1];
    a.left_shift = tab[2];
    a.neg_right_shift = tab[3];
    a.away = tab[4];
    a.neg_total_shift = tab[5];
    a.stride = stride;
    a.taps = taps;
    a.single = single ? 1 : 0;
    a.any_away = any_away ? 1 : 0;
    a.any_left_shift = any_ls ? 1 : 0;
    a.zero_point = ep.out_zero_point;
    a.out_min = ep.out_min;
    a.out_max = ep.out_max;
    use_fused = true;
  }

  // AVX2 has no vpdpbusd: its kernel (qs8_qc8w_dwconv_rowx32c4__avx2) multiplies the even and the
  // odd bytes of each 4-tap dword with vpmaddwd, so it wants the weights as int16, split by tap
  // parity. Doing that split once here instead of per pixel (a shift pair per weight vector per
  // pixel) is 3 of its ~10 instructions per 32 channels x 4 taps. Layout: per 64-byte vector
  // of the 64c4 layout ([block][group][q]) and per 32-byte half h, 16 int16 of taps 0 / 2 of
  // each dword lane (the even bytes), then 16 int16 of taps 1 / 3 (the odd bytes): 128 bytes.
  // Every layer, whatever its size: the kernel runs its pixels inside each 32-channel half, so
  // only that half's weights (768 bytes widened for 3x3) need to stay in L1. The 20 KB cap on
  // a layer's widened weights and tables kept before (14x14x512 had measured slower widened)
  // no longer held: it left the MobileNet-like model's 10x10 and 5x5 layers splitting per
  // pixel. Widened (Zen 4, edge_conv_bench --isa avx2, stop 28): 10x10x384 0.0189 -> 0.0157 ms,
  // 10x10x576 0.0294 -> 0.0246, 5x5x960 0.0126 -> 0.0112, 14x14x512 0.0512 -> 0.0423.
  void widen_fused_weights_for_avx2() {
    AlignedBuffer<int8_t> wide(fused_weights.size() * 2);
    auto* dst = reinterpret_cast<int16_t*>(wide.data());
    for (std::size_t v = 0; v < fused_weights.size() / 64; ++v) {
      for (std::size_t h = 0; h < 2; ++h) {
        const int8_t* src = fused_weights.data() + v * 64 + h * 32;
        int16_t* out = dst + (v * 2 + h) * 32;
        for (std::size_t k = 0; k < 16; ++k) {
          out[k] = src[2 * k];
          out[16 + k] = src[2 * k + 1];
        }
      }
    }
    fused_weights = std::move(wide);
  }

  void reserve(int threads) {
    if (threads < 1) threads = 1;
    while (workspaces.size() < static_cast<std::size_t>(threads)) {
      ThreadWorkspace ws;
      // The fused kernel reads taps in fours: the extra pointers stay at the zero-point row.
      ws.taps.assign(use_fused ? 4 * groups : taps, zero_row.data());
      if (use_row_indirection) {
        // Every input column the row's windows touch, kernel_height pointers each, then the
        // last pixel's padding pointers (past its taps, up to 4 * groups), at the zero row.
        ws.columns.assign(row_columns * static_cast<std::size_t>(geo.g.kernel_height) +
                              4 * groups - taps,
                          zero_row.data());
      }
      if (multiplier_ > 1) ws.expanded.resize(taps * channels);
      ws.acc.resize(stride);
      workspaces.push_back(std::move(ws));
    }
  }

  // Tap pointers of a pixel whose window leaves the input: padding taps read the zero-point row;
  // depth multipliers > 1 expand input channel ic into channels ic * m .. ic * m + m - 1.
  void set_border_taps(const int8_t* input, std::size_t b, int32_t oy, int32_t ox,
                       ThreadWorkspace& ws) const {
    const ConvGeometry& g = geo.g;
    const std::size_t cin = static_cast<std::size_t>(g.input_channels);
    std::size_t t = 0;
    for (int32_t kw = 0; kw < g.kernel_width; ++kw) {
      const int32_t ix = ox * g.stride_width - geo.pad_left + kw * g.dilation_width;
      for (int32_t kh = 0; kh < g.kernel_height; ++kh, ++t) {
        const int32_t iy = oy * g.stride_height - geo.pad_top + kh * g.dilation_height;
        const int8_t* src = zero_row.data();
        if (iy >= 0 && iy < g.input_height && ix >= 0 && ix < g.input_width) {
          src = input + ((b * static_cast<std::size_t>(g.input_height) +
                          static_cast<std::size_t>(iy)) *
                             static_cast<std::size_t>(g.input_width) +
                         static_cast<std::size_t>(ix)) *
                            cin;
          if (multiplier_ > 1) {
            int8_t* dst = ws.expanded.data() + t * channels;
            for (std::size_t ic = 0; ic < cin; ++ic) {
              std::memset(dst + ic * static_cast<std::size_t>(multiplier_), src[ic],
                          static_cast<std::size_t>(multiplier_));
            }
            src = dst;
          }
        }
        ws.taps[t] = src;
      }
    }
  }

  // Returns whether `done` (if given) was called for every output row (whole-row splits only).
  bool run(const int8_t* input, void* output, OutputType type, ThreadPool* pool,
           const PixelsDone* done = nullptr, const InputRows* in_rows = nullptr) {
    if (type != output_type) {
      throw std::invalid_argument("DepthwiseConv2D::run: the output buffer type does not match "
                                  "the plan's output type");
    }
    if (input == nullptr || output == nullptr) {
      throw std::invalid_argument("DepthwiseConv2D::run: null input or output");
    }
    const int threads = pool != nullptr ? pool->num_threads() : 1;
    reserve(threads);
    const ConvGeometry& g = geo.g;
    const std::size_t rows = static_cast<std::size_t>(g.batch) * static_cast<std::size_t>(geo.out_h);
    const std::size_t elem = type == OutputType::kInt8 ? 1 : 4;
    const std::size_t cin = static_cast<std::size_t>(g.input_channels);
    if (threads != split_threads) {
      split_threads = threads;
      segments = row_segments(rows, static_cast<std::size_t>(geo.out_w), threads);
    }
    const std::size_t out_w = static_cast<std::size_t>(geo.out_w);
    const std::size_t seg_w = (out_w + segments - 1) / segments;
    // Output row `row`, pixels [x_begin, x_end) of it, on `thread`'s workspace.
    auto piece = [&](std::size_t row, std::size_t x_begin, std::size_t x_end, int thread) {
      ThreadWorkspace& ws = workspaces[static_cast<std::size_t>(thread)];
      const std::size_t b = row / static_cast<std::size_t>(geo.out_h);
      const int32_t oy = static_cast<int32_t>(row % static_cast<std::size_t>(geo.out_h));
      const int32_t iy0 = oy * g.stride_height - geo.pad_top;
      const bool rows_inside =
          iy0 >= 0 && iy0 + (g.kernel_height - 1) * g.dilation_height < g.input_height;
      if (use_row_indirection) {
        // The segment in one call: input column j - pad_left's kernel_height rows (zero row
        // outside the input) at columns[j * kernel_height ..], pixel ox's window starting at
        // column ox * stride_width. Only the segment's columns are set, one kernel row at a
        // time over the columns inside the input (no test per pointer): set per element with
        // its three bounds tests, the list of an 80x80x32 3x3 layer's rows had taken 20 % of
        // the layer's time on AVX2 (Zen 4, perf), each segment of a row setting the whole row.
        const std::size_t kh_n = static_cast<std::size_t>(g.kernel_height);
        const std::size_t sw = static_cast<std::size_t>(g.stride_width);
        const std::size_t j0 = x_begin * sw;
        const std::size_t j1 = (x_end - 1) * sw + static_cast<std::size_t>(g.kernel_width);
        const std::size_t pad_l = static_cast<std::size_t>(geo.pad_left);
        const std::size_t in_w = static_cast<std::size_t>(g.input_width);
        // [ja, jb): the segment's columns inside the input
        const std::size_t ja = std::min(j1, std::max(j0, pad_l));
        const std::size_t jb = std::max(ja, std::min(j1, pad_l + in_w));
        const std::size_t row_bytes = in_w * cin;
        const int8_t* image = input + b * static_cast<std::size_t>(g.input_height) * row_bytes;
        const int8_t* const zero = zero_row.data();
        const int8_t** cols = ws.columns.data();
        std::fill(cols + j0 * kh_n, cols + ja * kh_n, zero);
        std::fill(cols + jb * kh_n, cols + j1 * kh_n, zero);
        // Row kh's pointer at column ja (the zero row outside the input) and its step per column.
        auto row_at = [&](std::size_t kh, std::size_t* step) {
          const int32_t iy = iy0 + static_cast<int32_t>(kh) * g.dilation_height;
          *step = iy >= 0 && iy < g.input_height ? cin : 0;
          return *step != 0 ? image + static_cast<std::size_t>(iy) * row_bytes + (ja - pad_l) * cin
                            : zero;
        };
        if (ja == jb) {
          // no column of the segment inside the input
        } else if (kh_n == 3) {  // 3xN windows: a column's three pointers stored together
          std::size_t s0, s1, s2;
          const int8_t* p0 = row_at(0, &s0);
          const int8_t* p1 = row_at(1, &s1);
          const int8_t* p2 = row_at(2, &s2);
          for (const int8_t** c = cols + ja * 3; c != cols + jb * 3; c += 3) {
            c[0] = p0;
            c[1] = p1;
            c[2] = p2;
            p0 += s0;
            p1 += s1;
            p2 += s2;
          }
        } else {
          for (std::size_t kh = 0; kh < kh_n; ++kh) {
            std::size_t sk;
            const int8_t* pk = row_at(kh, &sk);
            for (std::size_t j = ja; j < jb; ++j, pk += sk) cols[j * kh_n + kh] = pk;
          }
        }
        // The last pixel's padding pointers (past its taps; zero weights) read on past j1: a
        // readable row, not another segment's stale pointer (reserve put the row's own at the
        // zero row).
        const std::size_t pad_ptrs = 4 * groups - taps;
        std::fill(cols + j1 * kh_n, cols + j1 * kh_n + pad_ptrs, zero);
        const std::size_t step = sw * kh_n;
        kernels->dwconv_qs8(x_end - x_begin, channels, groups, ws.columns.data() + x_begin * step,
                            step, fused_weights.data(), fused,
                            static_cast<int8_t*>(output) + (row * out_w + x_begin) * channels);
        return;
      }
      for (int32_t ox = static_cast<int32_t>(x_begin); ox < static_cast<int32_t>(x_end); ++ox) {
        const int32_t ix0 = ox * g.stride_width - geo.pad_left;
        if (rows_inside && multiplier_ == 1 && ix0 >= 0 &&
            ix0 + (g.kernel_width - 1) * g.dilation_width < g.input_width) {
          // Interior pixel: every tap is in bounds, at a fixed offset from the window's corner.
          const int8_t* corner =
              input + ((b * static_cast<std::size_t>(g.input_height) +
                        static_cast<std::size_t>(iy0)) *
                           static_cast<std::size_t>(g.input_width) +
                       static_cast<std::size_t>(ix0)) *
                          cin;
          for (std::size_t t = 0; t < taps; ++t) ws.taps[t] = corner + tap_offsets[t];
        } else {
          set_border_taps(input, b, oy, ox, ws);
        }
        const std::size_t pixel = row * static_cast<std::size_t>(geo.out_w) +
                                  static_cast<std::size_t>(ox);
        void* out = static_cast<uint8_t*>(output) + pixel * channels * elem;
        if (use_fused) {
          kernels->dwconv_qs8(1, channels, groups, ws.taps.data(), 0, fused_weights.data(), fused,
                              static_cast<int8_t*>(out));
          continue;
        }
        kernels->dwconv(channels, taps, ws.taps.data(), weights.data(), stride, ws.acc.data());
        switch (type) {
          case OutputType::kInt8:
            kernels->requant(vector_channels, ws.acc.data(), 0, ep, 0, static_cast<int8_t*>(out));
            if (vector_channels < channels) {
              kernels->requant(channels - vector_channels, ws.acc.data() + vector_channels, 0,
                               tail_ep, vector_channels,
                               static_cast<int8_t*>(out) + vector_channels);
            }
            break;
          case OutputType::kFloat32:
            kernels->dequant(channels, ws.acc.data(), 0, ep, 0, static_cast<float*>(out));
            break;
          case OutputType::kInt32:
            for (std::size_t c = 0; c < channels; ++c) {
              static_cast<int32_t*>(out)[c] = static_cast<int32_t>(
                  static_cast<uint32_t>(ws.acc[c]) + static_cast<uint32_t>(bias_term[c]));
            }
            break;
        }
      }
    };
    // Task t of the unfused split: output row t / segments, its (t % segments)-th segment.
    auto segment = [&](std::size_t t, int thread) {
      const std::size_t x_begin = t % segments * seg_w;
      piece(t / segments, x_begin, std::min(out_w, x_begin + seg_w), thread);
    };
    // With `done`, tasks of even shares of the output pixels, 2 per thread where there are
    // pixels enough, each a contiguous run of pixels (whole rows where whole rows balance, as
    // `segments` says; else runs that cross row ends), then `done` on the task's pixels on its
    // thread (PixelsDone): the 1x1 layer's GEMM runs on a task's pixels at once, one pass over
    // its weights per task. Per row segment (the MobileNet-like model's 5x5 layers: 2-3 pixels
    // on 2 threads) it had re-read all its weights per 2-3 pixels, 20-27 % slower per depthwise
    // + 1x1 (+ ADD) block than the two jobs; per 10-pixel row the 10x10 blocks were up to 3.5 %
    // slower (Zen 4, vCPUs on one die). Threads that run still take a late one's task.
    if (segments != 1 && !fuse_runs && in_rows == nullptr) done = nullptr;
    const std::size_t pixels = rows * out_w;
    const std::size_t fused_tasks =
        segments == 1 ? std::min(rows, fused_rows_tasks_per_thread() * std::size_t(threads))
                      : std::min(pixels, 2 * static_cast<std::size_t>(threads));
    std::size_t tasks = done != nullptr ? fused_tasks : rows * segments;
    if (in_rows != nullptr) {  // whole rows, the tasks of input_row_cuts
      if (threads != input_rows_threads) {  // planned once per thread count
        input_rows_ok = input_row_cuts(threads, &row_cuts);
        input_rows_threads = threads;
      }
      if (!input_rows_ok || done == nullptr) {
        throw std::invalid_argument("DepthwiseConv2D::run: input rows need a PixelsDone and a "
                                    "plan that takes them (takes_input_rows)");
      }
      tasks = (row_cuts.size() - 1) / 2;
      if (joins_size < tasks) {
        joins = std::make_unique<Join[]>(tasks);
        joins_size = tasks;
      }
      for (std::size_t t = 0; t < tasks; ++t) {
        Join& j = joins[t];
        j.inputs.store(0, std::memory_order_relaxed);
        j.finished.store(0, std::memory_order_relaxed);
        j.half[0].store(0, std::memory_order_relaxed);
        j.half[1].store(0, std::memory_order_relaxed);
      }
    }
    // Output rows [o0, o1) whole, then `done` on them (the input-rows job's parts).
    auto whole_rows = [&](std::size_t o0, std::size_t o1, int thread) {
      if (o0 >= o1) return;
      for (std::size_t o = o0; o < o1; ++o) piece(o, 0, out_w, thread);
      done->fn(done->ctx, o0 * out_w, o1 * out_w, thread);
    };
    // Half h of boundary t's rows (0: the upper, next to task t's rows), once (claimed).
    auto boundary_half = [&](std::size_t t, int h, int thread) {
      if (joins[t].half[h].exchange(1, std::memory_order_relaxed) != 0) return;
      const std::size_t b0 = row_cuts[2 * t + 1], b1 = row_cuts[2 * t + 2];
      const std::size_t mid = (b0 + b1 + 1) / 2;
      whole_rows(h == 0 ? b0 : mid, h == 0 ? mid : b1, thread);
    };
    // Task t - 1 + side, done with its own rows, on boundary t: its half where both tasks'
    // input rows are written by now, and whatever half is left if the other task is done too
    // (both input rows written then). Each half runs once, on the side that is not late, so
    // that the boundary rows between two threads split between them.
    auto finish = [&](std::size_t t, int side, int thread) {
      Join& j = joins[t];
      if (j.inputs.load(std::memory_order_acquire) == 2) boundary_half(t, side, thread);
      if (j.finished.fetch_add(1, std::memory_order_acq_rel) == 1) {
        boundary_half(t, 0, thread);
        boundary_half(t, 1, thread);
      }
    };
    auto task = [&](std::size_t t, int thread) {
      if (in_rows != nullptr) {  // its input rows, its own output rows, then the boundaries'
        const std::size_t in_h = static_cast<std::size_t>(g.input_height);
        const std::size_t a0 = in_h * t / tasks, a1 = in_h * (t + 1) / tasks;
        if (a0 < a1) in_rows->fn(in_rows->ctx, a0, a1, thread);
        if (t > 0) joins[t - 1].inputs.fetch_add(1, std::memory_order_acq_rel);
        if (t + 1 < tasks) joins[t].inputs.fetch_add(1, std::memory_order_acq_rel);
        whole_rows(row_cuts[2 * t], row_cuts[2 * t + 1], thread);
        if (t > 0) finish(t - 1, 1, thread);
        if (t + 1 < tasks) finish(t, 0, thread);
        return;
      }
      if (done == nullptr) {
        segment(t, thread);
        return;
      }
      std::size_t p0, p1;
      if (segments == 1) {
        p0 = rows * t / tasks * out_w;  // whole rows, even shares
        p1 = rows * (t + 1) / tasks * out_w;
      } else {
        p0 = pixels * t / tasks;
        p1 = pixels * (t + 1) / tasks;
      }
      for (std::size_t p = p0; p < p1;) {
        const std::size_t row = p / out_w, x0 = p % out_w;
        const std::size_t x1 = std::min(out_w, x0 + (p1 - p));
        piece(row, x0, x1, thread);
        p += x1 - x0;
      }
      done->fn(done->ctx, p0, p1, thread);
    };
    if (pool != nullptr && tasks > 1) {
      pool->parallel_for(tasks, task);
    } else {
      for (std::size_t t = 0; t < tasks; ++t) task(t, 0);
    }
    return done != nullptr;
  }

  // The input-rows job (run with InputRows; batch 1): `tasks` tasks, task t owning input rows
  // [H t / tasks, H (t + 1) / tasks) (even shares: the expansion's work), and the output rows in
  // three kinds: a row whose window (its first to last input row, inside the input) lies in
  // task t's rows is task t's own; one whose window spans tasks t and t + 1 is boundary t's,
  // run by whichever of the two finishes its part last. In output order: own rows of task 0,
  // boundary 0, own rows of task 1, ... (windows move down monotonically). `row_cuts` holds
  // 2 tasks + 1 cuts: task t's own rows [cut 2t, cut 2t+1), boundary t's [cut 2t+1, cut 2t+2).
  // False where a window spans three tasks (a task of fewer rows than a window) or lies wholly
  // in the padding.
  bool input_row_cuts(int threads, std::vector<std::size_t>* row_cuts) const {
    const ConvGeometry& g = geo.g;
    row_cuts->clear();
    if (g.batch != 1 || output_type != OutputType::kInt8 || threads < 1 || geo.out_h < 1) {
      return false;
    }
    const std::size_t out_h = static_cast<std::size_t>(geo.out_h);
    const std::size_t in_h = static_cast<std::size_t>(g.input_height);
    const std::size_t tasks =
        std::min(out_h, fused_rows_tasks_per_thread() * static_cast<std::size_t>(threads));
    auto owner = [&](std::size_t r) {  // the task that owns input row r
      std::size_t t = r * tasks / in_h;
      while (t + 1 < tasks && in_h * (t + 1) / tasks <= r) ++t;
      while (t > 0 && in_h * t / tasks > r) --t;
      return t;
    };
    std::vector<std::size_t> cuts(2 * tasks + 1, out_h);
    cuts[0] = 0;
    std::size_t kind = 0;  // 2t: task t's own rows; 2t + 1: boundary t
    for (std::size_t o = 0; o < out_h; ++o) {
      const int64_t top = static_cast<int64_t>(o) * g.stride_height - geo.pad_top;
      const int64_t lo = std::max<int64_t>(top, 0);
      const int64_t hi = std::min<int64_t>(
          top + int64_t{g.kernel_height - 1} * g.dilation_height, int64_t{g.input_height} - 1);
      if (lo > hi) return false;
      const std::size_t tl = owner(static_cast<std::size_t>(lo));
      const std::size_t th = owner(static_cast<std::size_t>(hi));
      if (th > tl + 1) return false;
      const std::size_t k = th == tl ? 2 * tl : 2 * tl + 1;
      if (k < kind) return false;
      for (; kind < k; ++kind) cuts[kind + 1] = o;
    }
    *row_cuts = std::move(cuts);
    return true;
  }
  bool takes_input_rows(int threads) const {
    std::vector<std::size_t> cuts;
    return input_row_cuts(threads, &cuts);
  }

  // Tasks per thread of a fused job (with PixelsDone) of whole rows: 2, or EDGE_FUSE_TASKS
  // (read once per process; for A/B measurements: more tasks leave a late thread less of the
  // layer, fewer give the 1x1 layer more pixels per pass over its weights). A value that is
  // not a count throws, naming it (ab_count).
  static std::size_t fused_rows_tasks_per_thread() {
    static const std::size_t n = static_cast<std::size_t>(ab_count("EDGE_FUSE_TASKS", 2));
    return n;
  }

  // Segments per output row for `threads` threads: whole rows where they balance (one thread
  // per row gives 3 + 2 rows on 2 threads for a 5x5 output: 1.67x at most), else rows cut
  // into equal pixel segments of at least 2 pixels: among the segment counts up to 4 tasks per
  // thread, at least 4 tasks per thread where the shape has them (threads that run take a late
  // one's tasks), then the fewest pixels on the busiest thread under parallel_for's contiguous
  // shares, then fewer segments. Outputs do not depend on the split.
  static std::size_t row_segments(std::size_t rows, std::size_t width, int threads) {
    if (threads <= 1 || rows == 0 || width == 0) return 1;
    const std::size_t n = static_cast<std::size_t>(threads);
    const std::size_t max_segments = std::max<std::size_t>(1, std::min(width / 2, 4 * n));
    const std::size_t want = std::min(4 * n, rows * max_segments);
    std::size_t best = 0, best_pixels = 0;
    for (std::size_t s = 1; s <= max_segments; ++s) {
      const std::size_t seg_w = (width + s - 1) / s;
      if ((width + seg_w - 1) / seg_w != s) continue;  // not s non-empty segments
      const std::size_t tasks = rows * s;
      std::size_t busiest = 0;
      for (std::size_t t = 0; t < n; ++t) {
        std::size_t pixels = 0;
        for (std::size_t i = tasks * t / n; i < tasks * (t + 1) / n; ++i) {
          const std::size_t x0 = i % s * seg_w;
          pixels += std::min(width, x0 + seg_w) - x0;
        }
        busiest = std::max(busiest, pixels);
      }
      const bool enough = tasks >= want, best_enough = rows * best >= want;
      if (best == 0 || (enough && !best_enough) ||
          (enough == best_enough && busiest < best_pixels)) {
        best = s;
        best_pixels = busiest;
      }
    }
    return best;
  }

  detail::ResolvedGeometry geo;
  int32_t multiplier_ = 1;
  std::size_t channels = 0, taps = 0, stride = 0;
  Isa isa = Isa::kScalar;
  const detail::IsaKernels* kernels = nullptr;
  OutputType output_type = OutputType::kInt8;
  AlignedBuffer<int32_t> weights;
  std::vector<int32_t> bias_term;
  detail::RequantTables requant, tail_requant;
  std::vector<float> scale;
  std::vector<int8_t> zero_row;
  std::vector<std::size_t> tap_offsets;  // input offset of each tap from the window's corner
  detail::EpilogueParams ep{}, tail_ep{};
  std::size_t vector_channels = 0;  // channels requantised with `ep`; the rest with `tail_ep`
  // The fused int8 kernel (IsaKernels::dwconv_qs8), when the ISA has one and the weights
  // (minus their zero points) fit int8.
  bool use_fused = false;
  bool use_row_indirection = false;  // one fused call per output row (run)
  // `done` on runs of pixels that cross row ends where rows are cut into segments (run);
  // EDGE_FUSE_RUNS=0 runs the 1x1 layer after such a layer in its own job (A/B measurements).
  bool fuse_runs = ab_switch_on("EDGE_FUSE_RUNS");
  std::size_t row_columns = 0;       // input columns a row's windows span, padding included
  std::size_t groups = 0;
  AlignedBuffer<int8_t> fused_weights;
  std::vector<detail::DwRequantBlock> fused_blocks;
  std::vector<int32_t> arm_tables;  // DwArmTables' six arrays of `stride` entries
  detail::DwRequantParams fused{};
  std::vector<ThreadWorkspace> workspaces;
  int split_threads = 0;       // the thread count `segments` was chosen for
  std::size_t segments = 1;    // tasks per output row (row_segments)
  // Per task boundary t of the input-rows job: how many of tasks t and t + 1 have written their
  // input rows and finished their own output rows, and which halves of its rows are claimed.
  struct Join {
    std::atomic<int> inputs{0}, finished{0};
    std::atomic<int> half[2] = {0, 0};
  };
  std::unique_ptr<Join[]> joins;
  std::size_t joins_size = 0;
  int input_rows_threads = 0;  // the thread count row_cuts were planned for
  bool input_rows_ok = false;
  std::vector<std::size_t> row_cuts;  // input_row_cuts
};

DepthwiseConv2D::DepthwiseConv2D(const int8_t* filter, const float* scales, int32_t num_scales,
                                 const int32_t* zero_points, const DepthwiseConv2DOptions& options)
    : impl_(std::make_unique<Impl>(filter, scales, num_scales, zero_points, options)) {}
DepthwiseConv2D::~DepthwiseConv2D() = default;
DepthwiseConv2D::DepthwiseConv2D(DepthwiseConv2D&&) noexcept = default;
DepthwiseConv2D& DepthwiseConv2D::operator=(DepthwiseConv2D&&) noexcept = default;

void DepthwiseConv2D::reserve(int max_threads) { impl_->reserve(max_threads); }
void DepthwiseConv2D::run(const int8_t* input, int8_t* output, ThreadPool* pool) {
  impl_->run(input, output, OutputType::kInt8, pool);
}
bool DepthwiseConv2D::run(const int8_t* input, int8_t* output, ThreadPool* pool,
                          const PixelsDone& done) {
  return impl_->run(input, output, OutputType::kInt8, pool,
                    done.fn != nullptr ? &done : nullptr);
}
bool DepthwiseConv2D::takes_input_rows(int threads) const {
  return impl_->takes_input_rows(threads);
}
void DepthwiseConv2D::run(const int8_t* input, int8_t* output, ThreadPool* pool,
                          const PixelsDone& done, const InputRows& rows) {
  impl_->run(input, output, OutputType::kInt8, pool, done.fn != nullptr ? &done : nullptr,
             rows.fn != nullptr ? &rows : nullptr);
}
void DepthwiseConv2D::run(const int8_t* input, float* output, ThreadPool* pool) {
  impl_->run(input, output, OutputType::kFloat32, pool);
}
void DepthwiseConv2D::run(const int8_t* input, int32_t* output, ThreadPool* pool) {
  impl_->run(input, output, OutputType::kInt32, pool);
}
int32_t DepthwiseConv2D::output_height() const { return impl_->geo.out_h; }
int32_t DepthwiseConv2D::output_width() const { return impl_->geo.out_w; }
int32_t DepthwiseConv2D::output_channels() const {
  return static_cast<int32_t>(impl_->channels);
}
OutputType DepthwiseConv2D::output_type() const { return impl_->output_type; }
Isa DepthwiseConv2D::isa() const { return impl_->isa; }
const char* DepthwiseConv2D::kernel_name() const {
  return impl_->use_fused ? impl_->kernels->dwconv_qs8_name : impl_->kernels->dwconv_name;
}

std::size_t DepthwiseConv2D::prepared_bytes() const {
  using detail::vector_bytes;
  const Impl& p = *impl_;
  return vector_bytes(p.weights) + vector_bytes(p.bias_term) + p.requant.bytes() +
         p.tail_requant.bytes() + vector_bytes(p.scale) + vector_bytes(p.zero_row) +
         vector_bytes(p.tap_offsets) + vector_bytes(p.fused_weights) +
         vector_bytes(p.fused_blocks) + vector_bytes(p.arm_tables);
}

}  // namespace edge
