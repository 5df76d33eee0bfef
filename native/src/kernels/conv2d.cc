#include "edge/kernels/conv2d.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "edge/kernels/isa.h"
#include "edge/thread_pool.h"
#include "kernels/gemm_plan.h"

namespace edge {
namespace {

// Output pixels per task: im2col rows live in a per-thread workspace of this many rows, small
// enough to stay in L2 next to the weights (rows of K = 4608 bytes: 300 KB at 64).
constexpr std::size_t kConvRowBlock = 64;
constexpr std::size_t kConvWorkspaceBytes = 256 * 1024;

// memcpy of a span of im2col_copy: up to 32 bytes as two fixed-size copies that may overlap
// (each a load and a store the compiler inlines), longer ones through memcpy. The 7x7 RGB stem
// copies 7 spans of 21 bytes per row, 44,800 libc memmove calls per 160x160 image, where the
// call and its length dispatch cost more than the bytes: 1.5 % of the int8 ResNet-like
// model's samples on Zen 4 (perf), beside the stem's GEMM at 6.5 %. With these: the stem
// 0.488 -> 0.474-0.477 ms (AVX-512 VNNI, 1 thread, profile minimums, both orders alternated).
inline void copy_span(uint8_t* dst, const uint8_t* src, std::size_t n) {
  if (n >= 16 && n <= 32) {
    std::memcpy(dst, src, 16);
    std::memcpy(dst + n - 16, src + n - 16, 16);
  } else if (n >= 8 && n < 16) {
    std::memcpy(dst, src, 8);
    std::memcpy(dst + n - 8, src + n - 8, 8);
  } else if (n >= 4 && n < 8) {
    std::memcpy(dst, src, 4);
    std::memcpy(dst + n - 4, src + n - 4, 4);
  } else {
    std::memcpy(dst, src, n);
  }
}

void check_positive(int32_t v, const char* what) {
  if (v <= 0) {
    throw std::invalid_argument(std::string("conv geometry: ") + what + " must be >= 1, got " +
                                std::to_string(v));
  }
}

}  // namespace

AxisGeometry conv_axis_geometry(int32_t input, int32_t kernel, int32_t stride, int32_t dilation,
                                Padding padding, int32_t pad_before, int32_t pad_after) {
  check_positive(input, "input size");
  check_positive(kernel, "kernel size");
  check_positive(stride, "stride");
  check_positive(dilation, "dilation");
  const int32_t eff = (kernel - 1) * dilation + 1;
  AxisGeometry g;
  switch (padding) {
    case Padding::kSame: {
      g.output = (input + stride - 1) / stride;
      const int32_t total = std::max((g.output - 1) * stride + eff - input, 0);
      g.pad_before = total / 2;
      break;
    }
    case Padding::kValid:
      g.output = input >= eff ? (input - eff) / stride + 1 : 0;
      g.pad_before = 0;
      break;
    case Padding::kExplicit:
      if (pad_before < 0 || pad_after < 0) {
        throw std::invalid_argument("conv geometry: explicit padding must be >= 0");
      }
      g.output = input + pad_before + pad_after >= eff
                     ? (input + pad_before + pad_after - eff) / stride + 1
                     : 0;
      g.pad_before = pad_before;
      break;
  }
  if (g.output <= 0) {
    throw std::invalid_argument("conv geometry: input size " + std::to_string(input) +
                                " is smaller than the dilated kernel " + std::to_string(eff));
  }
  return g;
}

namespace detail {

ResolvedGeometry resolve_geometry(const ConvGeometry& g) {
  check_positive(g.batch, "batch");
  check_positive(g.input_channels, "input channels");
  ResolvedGeometry r;
  r.g = g;
  const AxisGeometry h = conv_axis_geometry(g.input_height, g.kernel_height, g.stride_height,
                                            g.dilation_height, g.padding, g.pad_top, g.pad_bottom);
  const AxisGeometry w = conv_axis_geometry(g.input_width, g.kernel_width, g.stride_width,
                                            g.dilation_width, g.padding, g.pad_left, g.pad_right);
  r.out_h = h.output;
  r.out_w = w.output;
  r.pad_top = h.pad_before;
  r.pad_left = w.pad_before;
  return r;
}

}  // namespace detail

struct Conv2D::Impl {
  struct ThreadWorkspace {
    AlignedBuffer<uint8_t> xprep;
    AlignedBuffer<int32_t> sums;
    std::vector<int8_t> col;
  };

  Impl(const PackedWeightsView& w, const Conv2DOptions& options)
      : geo(detail::resolve_geometry(options.geometry)), plan(w, options, false) {
    const ConvGeometry& g = geo.g;
    const int64_t k = static_cast<int64_t>(g.kernel_height) * g.kernel_width * g.input_channels;
    if (k != w.k) {
      throw std::invalid_argument("Conv2D: weights have k = " + std::to_string(w.k) +
                                  " but kernel " + std::to_string(g.kernel_height) + "x" +
                                  std::to_string(g.kernel_width) + " x " +
                                  std::to_string(g.input_channels) + " channels needs " +
                                  std::to_string(k));
    }
    pointwise = g.kernel_height == 1 && g.kernel_width == 1 && g.stride_height == 1 &&
                g.stride_width == 1 && geo.pad_top == 0 && geo.pad_left == 0;
    row_block = std::max<std::size_t>(
        plan.gemm->gemm.mr,
        std::min(kConvRowBlock, kConvWorkspaceBytes / plan.row_stride / plan.gemm->gemm.mr *
                                    plan.gemm->gemm.mr));
    const std::size_t cin = static_cast<std::size_t>(g.input_channels);
    // Each tap must be whole K blocks: channels padded up to a multiple of block_k when that
    // adds at most a third more products and the window has several taps. A pad channel reads
    // the input zero point, so it adds exactly 0 to every output (see pad_channels).
    // - AVX-512 VNNI: windows of at most 9 taps (the 3x3/2 stem over RGB, 3 -> 4 channels for
    //   int8 weights: 0.22 -> 0.17 ms; the 7x7/2 stem measured slower, 0.65 -> 0.82 ms: 49
    //   one-block taps, each 8 pointer loads for 8 vpdpbusd, and a third more products than
    //   im2col's 7-pixel spans).
    // - AVX2: up to the 7x7 stem (int8 weights, 160x160x3 -> 64: 1.69 -> 1.57 ms): there a
    //   block is 4 vpmaddwd per row, so the pointer loads weigh less, and im2col's int16 rows
    //   cost twice the bytes.
    // - No 1x1 (every ISA): its im2col row is the input row itself, so there is no copy to
    //   save, and the per-pixel pad loop cost more than it saved (MobileNet 1x1 56x56x24 -> 144,
    //   ternary: AVX-512 0.175 -> 0.21 ms, AVX2 0.34 -> 0.42 ms).
    const std::size_t cpad = (cin + plan.kb - 1) / plan.kb * plan.kb;
    const int32_t window = g.kernel_height * g.kernel_width;
    const int32_t max_padded_window = plan.isa == Isa::kAvx2 ? 49 : 9;
    const detail::IgemmQs8Kernel& indirect = plan.kernels->igemm_qs8[static_cast<int>(plan.type)];
    // AVX2, sub-byte weights, 1x1 stride 1 over few channels: the fused GEMM (4 rows per call,
    // per-block widening) beat the indirect kernel (3 rows, int16 sums over blocks), whose
    // per-call costs weigh at 2-10 K blocks: 112x112x32 -> 64 ternary 0.637 vs 0.723 ms;
    // at K = 256 they tie (0.517 / 0.512), at 1024 the indirect one wins (0.453 -> 0.420).
    // With the rows read in place (run(): no per-row copy), 2-bit weights keep the GEMM up to
    // K < 1024: 28x28x256 -> 256 0.50 -> 0.43 ms, 10x10x384 -> 64 0.0228 -> 0.0220 ms; int4
    // lost at K = 384 (0.0215 -> 0.0233 ms) and keeps K < 256.
    const std::size_t pointwise_k = plan.type == WeightType::kInt4 ? 256 : 1024;
    const bool small_pointwise = plan.isa == Isa::kAvx2 && plan.type != WeightType::kInt8 &&
                                 pointwise && static_cast<std::size_t>(w.k) < pointwise_k;
    // AMX, int8 weights, deep enough for tiles (gemm_plan.h): im2col into the tile GEMM.
    const bool amx_tiles = detail::on_amx_tiles(plan.isa, plan.type, static_cast<std::size_t>(w.k));
    if (indirect.fn != nullptr && plan.use_qs8 && plan.groups == 0 && !small_pointwise &&
        !amx_tiles &&
        (cpad == cin || (cpad * 3 <= cin * 4 && window > 1 && window <= max_padded_window)) &&
        ab_switch_on("EDGE_CONV_IGEMM")) {
      cin_pad = cpad;
      if (cpad != cin) {
        padded_plan = std::make_unique<detail::GemmPlan>(pad_channels(w, cin, cpad), options,
                                                         false);
      }
      igemm = &indirect;
      // Two 16-channel tiles per call (igemm_qs8_x2) where the ISA has such a kernel, the
      // layer has two tiles or more, and its weights serve many output pixels (>= 256) or long
      // rows (K >= 512): each activation broadcast then feeds two dot products. Measured in the
      // MobileNet-like int8 model (AVX-512 VNNI, Zen 4, per-layer minimums; docs/kernels.md):
      // stem 160x160x3 -> 32 0.122 -> 0.104 ms, 1x1 80x80x16 -> 96 0.156 -> 0.143, 40x40x24 ->
      // 144 0.066 -> 0.063, 5x5x960 -> 320 0.053 -> 0.047; but 5x5x160 -> 960 0.027 -> 0.033
      // and 10x10x64 -> 384 0.019 -> 0.020, so layers of few pixels and short rows keep one
      // tile (the profile names the kernel each layer ran).
      const detail::IgemmQs8Kernel& wide =
          plan.kernels->igemm_qs8_x2[static_cast<int>(plan.type)];
      const std::size_t out_pixels = static_cast<std::size_t>(g.batch) *
                                     static_cast<std::size_t>(geo.out_h) *
                                     static_cast<std::size_t>(geo.out_w);
      if (wide.fn != nullptr && plan.ntiles > 1 && (out_pixels >= 256 || w.k >= 512)) {
        igemm = &wide;
        igemm_tiles = 2;
      }
      build_indirection();
      // 1x1 int8 layers whose rows are input pixels as they are (no padding tap, K filling
      // whole blocks, no row sums) and whose outputs fit one call (16 channels, 32 on the
      // two-tile kernel): the ISA's `_raw` kernels read the rows in place, flipping each
      // broadcast to x + 128 in the register, where the others need the input flipped first.
      // One call per row reads each input byte once, so the flips are as many as the prepare
      // pass's, in registers, and that pass over the input (prepare_bytes: 5 % of the
      // MobileNet-like int8 model's samples on AVX-512 VNNI, Zen 4) and, on 2 threads, its
      // pool job are gone. With more calls per row each would flip the row again: measured
      // slower there (10x10x384 -> 64 0.0122 -> 0.0146 ms, 5x5x160 -> 960 0.0213 -> 0.025;
      // 40x40x144 -> 24 0.035 -> 0.030, 40x40x96 -> 24 0.025 -> 0.022-0.025, 80x80x32 -> 16
      // 0.034-0.037 -> 0.033-0.034: benchmarks/results/edge-models-2026-12-07.md, 08:47).
      const detail::IgemmQs8Kernel& raw = plan.kernels->igemm_qs8_raw[igemm_tiles - 1];
      if (raw.fn != nullptr && plan.type == WeightType::kInt8 && taps == 1 && cpad == cin &&
          plan.ntiles <= igemm_tiles &&
          !need_sums && raw.mr <= kMaxRawRows && ab_switch_on("EDGE_CONV_RAW") &&
          std::find(ind_pixel.begin(), ind_pixel.end(), in_pixels) == ind_pixel.end()) {
        igemm = &raw;
        raw_rows = true;
        xbuf = AlignedBuffer<uint8_t>();  // rows are read from the input
        ind.clear();
        ind.shrink_to_fit();
      }
      if (!need_sums && !raw_rows) {
        ind_pixel.clear();
        ind_pixel.shrink_to_fit();
      }
    }
    plan_row_copies();
  }

  // im2col by byte copies (copy_rows): a conv that takes the im2col path, is not 1x1 stride 1
  // (whose rows are the input rows), has no weight zero points (the row sums serve only those:
  // LiteRT's int8 weights, symmetric sub-byte ones) and no horizontal dilation. The input is
  // prepared (the plan's XFormat: x + 128 for VNNI / AMX int8 weights) once per run into
  // `xin`, and each im2col row is then spans of it and of a prepared zero-point row, copied,
  // where im2col_prepared converts and sums span by span: the 7x7 stride-2 stem over 3 channels
  // has 7 spans of 21 bytes a row, each a conversion call (its rows feed the AMX tile GEMM).
  void plan_row_copies() {
    const ConvGeometry& g = geo.g;
    copy_rows = igemm == nullptr && !pointwise && plan.groups == 0 && g.dilation_width == 1 &&
                plan.epilogue.wzp == nullptr && plan.epilogue.wzp_uniform == 0;
    if (!copy_rows) return;
    const std::size_t cin = static_cast<std::size_t>(g.input_channels);
    const std::size_t in_total = static_cast<std::size_t>(g.batch) *
                                 static_cast<std::size_t>(g.input_height) *
                                 static_cast<std::size_t>(g.input_width) * cin;
    xin.resize(in_total * plan.element_size);
    xzero.resize(cin * static_cast<std::size_t>(g.kernel_width) * plan.element_size);
    plan.fill_span(static_cast<int8_t>(plan.input_zero_point),
                   cin * static_cast<std::size_t>(g.kernel_width), xzero.data(), 0);
  }

  // The im2col row of output pixel `p` from the prepared input (copy_rows); its sum is not
  // needed (no weight zero points).
  void im2col_copy(std::size_t p, uint8_t* row) const {
    const ConvGeometry& g = geo.g;
    const std::size_t cin = static_cast<std::size_t>(g.input_channels);
    const std::size_t es = plan.element_size;
    const std::size_t ow = static_cast<std::size_t>(geo.out_w);
    const std::size_t oh = static_cast<std::size_t>(geo.out_h);
    const int32_t ox = static_cast<int32_t>(p % ow);
    const int32_t oy = static_cast<int32_t>((p / ow) % oh);
    const std::size_t b = p / (ow * oh);
    const int32_t kw_n = g.kernel_width;
    const int32_t ix0 = ox * g.stride_width - geo.pad_left;
    const int32_t lo = std::max(0, -ix0), hi = std::min(kw_n, g.input_width - ix0);
    const std::size_t span = cin * static_cast<std::size_t>(kw_n) * es;
    uint8_t* dst = row;
    for (int32_t kh = 0; kh < g.kernel_height; ++kh, dst += span) {
      const int32_t iy = oy * g.stride_height - geo.pad_top + kh * g.dilation_height;
      if (iy < 0 || iy >= g.input_height || lo >= hi) {
        copy_span(dst, xzero.data(), span);
        continue;
      }
      const std::size_t left = cin * static_cast<std::size_t>(lo) * es;
      const std::size_t mid = cin * static_cast<std::size_t>(hi - lo) * es;
      const std::size_t pixel =
          (b * static_cast<std::size_t>(g.input_height) + static_cast<std::size_t>(iy)) *
              static_cast<std::size_t>(g.input_width) +
          static_cast<std::size_t>(ix0 + lo);
      if (left != 0) copy_span(dst, xzero.data(), left);
      copy_span(dst + left, xin.data() + pixel * cin * es, mid);
      if (left + mid < span) copy_span(dst + left + mid, xzero.data(), span - left - mid);
    }
    plan.pad_row(row);
  }

  // The weights with every tap's channels padded from cin to cpad; the pad weights are the
  // channel's zero point (a valid code of every type). The pad inputs are the input zero point,
  // so every pad product (x - xz) (c - z) is 0 and the padded conv equals the original exactly.
  const PackedWeightsView& pad_channels(const PackedWeightsView& w, std::size_t cin,
                                        std::size_t cpad) {
    const std::size_t taps_n = static_cast<std::size_t>(w.k) / cin;
    const std::size_t kp = taps_n * cpad;
    const std::size_t n = static_cast<std::size_t>(w.n);
    std::vector<uint8_t> codes(n * kp);
    for (std::size_t c = 0; c < n; ++c) {
      for (std::size_t t = 0; t < taps_n; ++t) {
        for (std::size_t ch = 0; ch < cpad; ++ch) {
          codes[c * kp + t * cpad + ch] =
              ch < cin ? w.code(static_cast<int32_t>(c), static_cast<int32_t>(t * cin + ch))
                       : static_cast<uint8_t>(w.zero_points[c]);
        }
      }
    }
    padded_weights = std::make_unique<PackedWeights>(
        pack_codes(w.type, codes.data(), w.n, static_cast<int32_t>(kp), w.scales, w.num_scales,
                   w.zero_points));
    padded_view = padded_weights->view();
    return padded_view;
  }

  // The plan the indirect conv runs: the padded one when channels were padded.
  const detail::GemmPlan& iplan() const { return padded_plan ? *padded_plan : plan; }

  // The indirect conv: at plan time, for the fixed input shape, one pointer per output pixel
  // and tap into `xbuf` (the input as the kernel wants it, rewritten once per run in the plan's
  // XFormat: x + 128 for VNNI int8 weights, int16 for AVX2 int8 weights, a plain copy
  // otherwise) or at its last row, the prepared input zero point (padding). XNNPACK's indirection buffer, with the +128 offset paid once per input element
  // instead of once per im2col element (kernel_h * kernel_w times).
  void build_indirection() {
    const ConvGeometry& g = geo.g;
    const std::size_t cin = static_cast<std::size_t>(g.input_channels);
    in_pixels = static_cast<std::size_t>(g.batch) * static_cast<std::size_t>(g.input_height) *
                static_cast<std::size_t>(g.input_width);
    taps = static_cast<std::size_t>(g.kernel_height) * static_cast<std::size_t>(g.kernel_width);
    const std::size_t cp = cin_pad;
    pixel_bytes = cp * iplan().element_size;
    xbuf.resize((in_pixels + 1) * pixel_bytes);
    const int8_t zp = static_cast<int8_t>(plan.input_zero_point);
    // The zero row, and the pad channels of every pixel (never rewritten by run()).
    iplan().fill_span(zp, cp, xbuf.data() + in_pixels * pixel_bytes, 0);
    for (std::size_t p = 0; cp != cin && p < in_pixels; ++p) {
      iplan().fill_span(zp, cp - cin, xbuf.data() + p * pixel_bytes, cin);
    }
    pad_sum = static_cast<int32_t>(zp) * static_cast<int32_t>(cp - cin);
    need_sums = iplan().qs8.wzp != nullptr || iplan().qs8.wzp_uniform != 0;
    if (need_sums) {
      pixel_sums.assign(in_pixels + 1, 0);
      pixel_sums[in_pixels] = static_cast<int32_t>(zp) * static_cast<int32_t>(cp);
    }
    const std::size_t oh = static_cast<std::size_t>(geo.out_h);
    const std::size_t ow = static_cast<std::size_t>(geo.out_w);
    const std::size_t pixels = static_cast<std::size_t>(g.batch) * oh * ow;
    ind_pixel.assign(pixels * taps, in_pixels);
    for (std::size_t p = 0; p < pixels; ++p) {
      const int32_t ox = static_cast<int32_t>(p % ow);
      const int32_t oy = static_cast<int32_t>((p / ow) % oh);
      const std::size_t b = p / (ow * oh);
      std::size_t t = 0;
      for (int32_t kh = 0; kh < g.kernel_height; ++kh) {
        const int32_t iy = oy * g.stride_height - geo.pad_top + kh * g.dilation_height;
        for (int32_t kw = 0; kw < g.kernel_width; ++kw, ++t) {
          const int32_t ix = ox * g.stride_width - geo.pad_left + kw * g.dilation_width;
          if (iy < 0 || iy >= g.input_height || ix < 0 || ix >= g.input_width) continue;
          ind_pixel[p * taps + t] =
              (b * static_cast<std::size_t>(g.input_height) + static_cast<std::size_t>(iy)) *
                  static_cast<std::size_t>(g.input_width) +
              static_cast<std::size_t>(ix);
        }
      }
    }
    ind.resize(pixels * taps);
    for (std::size_t i = 0; i < ind.size(); ++i) ind[i] = xbuf.data() + ind_pixel[i] * pixel_bytes;
  }

  void reserve(int threads) {
    if (threads < 1) threads = 1;
    while (workspaces.size() < static_cast<std::size_t>(threads)) {
      ThreadWorkspace ws;
      if (igemm != nullptr) {  // the indirect conv needs only the row sums
        ws.sums.resize(kConvRowBlock);
      } else {
        ws.xprep.resize(row_block * plan.row_stride);
        ws.sums.resize(row_block * plan.sums_per_row);
        ws.col.resize(static_cast<std::size_t>(plan.k));
      }
      workspaces.push_back(std::move(ws));
    }
  }

  // im2col of output pixel `p` (flattened over batch, oy, ox) straight into prepared row `row`
  // (padding reads as the input zero point); returns the row's sum. Used without groups.
  int32_t im2col_prepared(const int8_t* input, std::size_t p, uint8_t* row) const {
    const ConvGeometry& g = geo.g;
    const std::size_t cin = static_cast<std::size_t>(g.input_channels);
    if (pointwise) {
      const int32_t sum = plan.prepare_span(input + p * cin, cin, row, 0);
      plan.pad_row(row);
      return sum;
    }
    const std::size_t ow = static_cast<std::size_t>(geo.out_w);
    const std::size_t oh = static_cast<std::size_t>(geo.out_h);
    const int32_t ox = static_cast<int32_t>(p % ow);
    const int32_t oy = static_cast<int32_t>((p / ow) % oh);
    const std::size_t b = p / (ow * oh);
    const int8_t zp = static_cast<int8_t>(plan.input_zero_point);
    int32_t sum = 0;
    std::size_t offset = 0;
    if (g.dilation_width == 1) {
      // The kernel_width taps of a window row are adjacent input pixels: one span of
      // kernel_width * cin bytes (its in-bounds part) instead of one call per tap, which matters
      // for few channels (the 7x7 stem over 3 channels: 7 spans of 21 bytes, not 49 of 3).
      const int32_t kw_n = g.kernel_width;
      const int32_t ix0 = ox * g.stride_width - geo.pad_left;
      const int32_t lo = std::max(0, -ix0), hi = std::min(kw_n, g.input_width - ix0);
      for (int32_t kh = 0; kh < g.kernel_height; ++kh) {
        const int32_t iy = oy * g.stride_height - geo.pad_top + kh * g.dilation_height;
        if (iy < 0 || iy >= g.input_height || lo >= hi) {
          sum += plan.fill_span(zp, cin * static_cast<std::size_t>(kw_n), row, offset);
        } else {
          if (lo > 0) sum += plan.fill_span(zp, cin * static_cast<std::size_t>(lo), row, offset);
          const std::size_t pixel =
              (b * static_cast<std::size_t>(g.input_height) + static_cast<std::size_t>(iy)) *
                  static_cast<std::size_t>(g.input_width) +
              static_cast<std::size_t>(ix0 + lo);
          sum += plan.prepare_span(input + pixel * cin, cin * static_cast<std::size_t>(hi - lo),
                                   row, offset + cin * static_cast<std::size_t>(lo));
          if (hi < kw_n) {
            sum += plan.fill_span(zp, cin * static_cast<std::size_t>(kw_n - hi), row,
                                  offset + cin * static_cast<std::size_t>(hi));
          }
        }
        offset += cin * static_cast<std::size_t>(kw_n);
      }
      plan.pad_row(row);
      return sum;
    }
    for (int32_t kh = 0; kh < g.kernel_height; ++kh) {
      const int32_t iy = oy * g.stride_height - geo.pad_top + kh * g.dilation_height;
      for (int32_t kw = 0; kw < g.kernel_width; ++kw, offset += cin) {
        const int32_t ix = ox * g.stride_width - geo.pad_left + kw * g.dilation_width;
        if (iy < 0 || iy >= g.input_height || ix < 0 || ix >= g.input_width) {
          sum += plan.fill_span(zp, cin, row, offset);
        } else {
          const std::size_t pixel =
              (b * static_cast<std::size_t>(g.input_height) + static_cast<std::size_t>(iy)) *
                  static_cast<std::size_t>(g.input_width) +
              static_cast<std::size_t>(ix);
          sum += plan.prepare_span(input + pixel * cin, cin, row, offset);
        }
      }
    }
    plan.pad_row(row);
    return sum;
  }

  // The im2col row of output pixel `p` (flattened over batch, oy, ox), padded with the input
  // zero point; 1x1 stride-1 convs return the input row itself.
  const int8_t* im2col(const int8_t* input, std::size_t p, int8_t* col) const {
    const ConvGeometry& g = geo.g;
    const std::size_t cin = static_cast<std::size_t>(g.input_channels);
    if (pointwise) return input + p * cin;
    const std::size_t ow = static_cast<std::size_t>(geo.out_w);
    const std::size_t oh = static_cast<std::size_t>(geo.out_h);
    const int32_t ox = static_cast<int32_t>(p % ow);
    const int32_t oy = static_cast<int32_t>((p / ow) % oh);
    const std::size_t b = p / (ow * oh);
    const int8_t zp = static_cast<int8_t>(plan.input_zero_point);
    int8_t* dst = col;
    for (int32_t kh = 0; kh < g.kernel_height; ++kh) {
      const int32_t iy = oy * g.stride_height - geo.pad_top + kh * g.dilation_height;
      for (int32_t kw = 0; kw < g.kernel_width; ++kw, dst += cin) {
        const int32_t ix = ox * g.stride_width - geo.pad_left + kw * g.dilation_width;
        if (iy < 0 || iy >= g.input_height || ix < 0 || ix >= g.input_width) {
          std::memset(dst, zp, cin);
        } else {
          const std::size_t pixel =
              (b * static_cast<std::size_t>(g.input_height) + static_cast<std::size_t>(iy)) *
                  static_cast<std::size_t>(g.input_width) +
              static_cast<std::size_t>(ix);
          std::memcpy(dst, input + pixel * cin, cin);
        }
      }
    }
    return col;
  }

  // Returns whether `done` (if given) was called for every output row (whole-row splits only).
  bool run(const int8_t* input, void* output, OutputType type, ThreadPool* pool,
           const RowsDone* done = nullptr) {
    if (type != plan.output_type) {
      throw std::invalid_argument("Conv2D::run: the output buffer type does not match the plan's "
                                  "output type");
    }
    if (input == nullptr || output == nullptr) {
      throw std::invalid_argument("Conv2D::run: null input or output");
    }
    const int threads = pool != nullptr ? pool->num_threads() : 1;
    reserve(threads);
    if (igemm != nullptr && type == OutputType::kInt8) {
      return run_indirect(input, static_cast<int8_t*>(output), pool, threads,
                          done != nullptr && done->fn != nullptr ? done : nullptr);
    }
    if (copy_rows) {  // the input in the kernel's format, once (im2col_copy reads it)
      plan.prepare_span(input, xin.size() / plan.element_size, xin.data(), 0);
    }
    const std::size_t pixels = static_cast<std::size_t>(geo.g.batch) *
                               static_cast<std::size_t>(geo.out_h) *
                               static_cast<std::size_t>(geo.out_w);
    const std::size_t elem = type == OutputType::kInt8 ? 1 : 4;
    const detail::WorkSplit split = cached_split(pixels, plan.ntiles, plan.gemm->gemm.mr, threads,
                                                 row_block, static_cast<std::size_t>(plan.n) * elem,
                                                 kTileN * elem);
    const bool in_place = reads_in_place(type);  // (reads_in_place)
    // Rows written whole by one task (every channel): `done` may run on them in the task.
    const RowsDone* rows_done = done != nullptr && done->fn != nullptr &&
                                        type == OutputType::kInt8 && split.tile_chunks == 1
                                    ? done
                                    : nullptr;
    auto task = [&](std::size_t t, int thread) {
      const std::size_t rb = split.row_block_of(t), tc = split.tile_chunk_of(t);
      const std::size_t r0 = rb * split.row_block;
      const std::size_t r1 = std::min(pixels, r0 + split.row_block);
      const std::size_t t0 = tc * split.tile_chunk;
      const std::size_t t1 = std::min(plan.ntiles, t0 + split.tile_chunk);
      gemm_rows(input, static_cast<uint8_t*>(output), elem, in_place, r0, r1, t0, t1,
                workspaces[static_cast<std::size_t>(thread)]);
      if (rows_done != nullptr) rows_done->fn(rows_done->ctx, r0, r1);
    };
    if (pool != nullptr && split.tasks() > 1) {
      pool->parallel_for(split.tasks(), task);
    } else {
      for (std::size_t t = 0; t < split.tasks(); ++t) task(t, 0);
    }
    return rows_done != nullptr;
  }

  // 1x1 stride-1 rows that need no preparation (the kernel takes int8 activations as they are
  // and K fills whole K blocks: the AVX2 sub-byte 1x1 layers of issue 17's MobileNet) go to
  // the fused GEMM in place, at the input's own stride; only their sums are formed, and only
  // where weight zero points use them. Per row the copy, its zero padding (a memset call of
  // 0 bytes) and the prepare call had cost as much as the fused GEMM's own work at K = 32:
  // 80x80x32 -> 16 2-bit on AVX2, prepare_int8 27 %, the row loop 14 %, memset 4 % of the
  // layer's samples.
  bool reads_in_place(OutputType type) const {
    const std::size_t cin = static_cast<std::size_t>(geo.g.input_channels);
    return pointwise && !copy_rows && plan.groups == 0 && plan.use_qs8 &&
           type == OutputType::kInt8 && plan.xformat == detail::XFormat::kInt8 &&
           plan.kpad == static_cast<std::size_t>(plan.k) && cin == static_cast<std::size_t>(plan.k);
  }

  // Output rows [r0, r1) (at most row_block of them), tiles [t0, t1), of the im2col path (run),
  // with one thread's workspace; `elem`: output bytes per element.
  void gemm_rows(const int8_t* input, uint8_t* output, std::size_t elem, bool in_place,
                 std::size_t r0, std::size_t r1, std::size_t t0, std::size_t t1,
                 ThreadWorkspace& ws) {
    const std::size_t cin = static_cast<std::size_t>(geo.g.input_channels);
    const std::size_t n = static_cast<std::size_t>(plan.n);
    const bool row_sums = plan.qs8.wzp != nullptr || plan.qs8.wzp_uniform != 0;
    if (in_place && r1 - r0 >= 2) {  // compute's fused path takes 2 rows or more
      if (row_sums && plan.gemm->row_sums != nullptr) {  // the ISA's (AVX2: vpsadbw)
        plan.gemm->row_sums(input + r0 * cin, cin, cin, r1 - r0, ws.sums.data());
      } else if (row_sums) {
        for (std::size_t r = r0; r < r1; ++r) {
          const int8_t* x = input + r * cin;
          int32_t sum = 0;
          for (std::size_t i = 0; i < cin; ++i) sum += x[i];
          ws.sums[r - r0] = sum;
        }
      }
      plan.compute(reinterpret_cast<const uint8_t*>(input + r0 * cin), ws.sums.data(), r1 - r0,
                   t0, t1, output + r0 * n * elem, n, cin);
      return;
    }
    for (std::size_t r = r0; r < r1; ++r) {
      uint8_t* row = ws.xprep.data() + (r - r0) * plan.row_stride;
      int32_t* sums = ws.sums.data() + (r - r0) * plan.sums_per_row;
      if (copy_rows) {
        im2col_copy(r, row);
        sums[0] = 0;
      } else if (plan.groups == 0) {
        sums[0] = im2col_prepared(input, r, row);
      } else {
        plan.prepare_row(im2col(input, r, ws.col.data()), row, sums);
      }
    }
    plan.compute(ws.xprep.data(), ws.sums.data(), r1 - r0, t0, t1, output + r0 * n * elem, n);
  }

  // The input pixels [p0, p1) into xbuf (and their sums into pixel_sums where weight zero
  // points need them), as the indirect conv's kernel reads them (run_indirect).
  void prepare_pixels(const int8_t* input, std::size_t p0, std::size_t p1) {
    const std::size_t cin = static_cast<std::size_t>(geo.g.input_channels);
    const detail::GemmPlan& ip = iplan();
    if (cin_pad != cin && ip.xformat == detail::XFormat::kInt16 && cin == 3 && !need_sums) {
      // The RGB stem (AVX2, int8 weights): the channel count known to the compiler, no loop
      // per pixel (the general loop below costs most of what the stem's GEMM does).
      for (std::size_t p = p0; p < p1; ++p) {
        const int8_t* src = input + p * 3;
        int16_t* dst = reinterpret_cast<int16_t*>(xbuf.data() + p * pixel_bytes);
        dst[0] = src[0];
        dst[1] = src[1];
        dst[2] = src[2];
      }
    } else if (cin_pad != cin && ip.xformat == detail::XFormat::kInt16) {
      for (std::size_t p = p0; p < p1; ++p) {  // few channels: an element loop
        const int8_t* src = input + p * cin;
        int16_t* dst = reinterpret_cast<int16_t*>(xbuf.data() + p * pixel_bytes);
        int32_t sum = pad_sum;
        for (std::size_t ch = 0; ch < cin; ++ch) {
          dst[ch] = src[ch];
          sum += src[ch];
        }
        if (need_sums) pixel_sums[p] = sum;
      }
    } else if (cin_pad != cin) {  // few channels: a byte loop beats a SIMD call per pixel
      const uint8_t flip = ip.xformat == detail::XFormat::kUint8 ? 0x80 : 0;
      std::size_t p = p0;
      if (!need_sums && pixel_bytes == 4) {
        // 1-3 channels padded to 4 bytes (the RGB stem): one 32-bit word per pixel, its
        // channel bytes flipped and its pad bytes (set once, at plan time) kept: 0.083 ->
        // 0.015 ms for 160x160x3 on Zen 4, half of the MobileNet stem's 0.17 ms. The word
        // load reads up to 3 bytes past a pixel's channels, so the last pixels of the range
        // (those whose word would end past it) take the byte loop below: the range's end, not
        // the input's (394babc), so that no caller's range reads pixels it was not given. Only
        // windows > 1 pad their channels (the stems), whose input pass runs in a job of its
        // own; a 1x1 layer, the one a fused job feeds pixels another thread may still be
        // writing (run_pixels), never comes here.
        const uint32_t mask = (uint32_t{1} << (8 * cin)) - 1u;
        const uint32_t flips = (uint32_t{flip} * 0x01010101u) & mask;
        const std::size_t bytes = p1 * cin;
        const std::size_t safe = bytes >= 4 ? (bytes - 4) / cin + 1 : 0;  // word fits
        const std::size_t end = std::min(p1, safe);
        for (; p < end; ++p) {
          uint32_t v = 0, d = 0;
          std::memcpy(&v, input + p * cin, 4);
          std::memcpy(&d, xbuf.data() + p * 4, 4);
          v = ((v ^ flips) & mask) | (d & ~mask);
          std::memcpy(xbuf.data() + p * 4, &v, 4);
        }
      }
      for (; p < p1; ++p) {
        const int8_t* src = input + p * cin;
        uint8_t* dst = xbuf.data() + p * pixel_bytes;
        int32_t sum = pad_sum;
        for (std::size_t ch = 0; ch < cin; ++ch) {
          dst[ch] = static_cast<uint8_t>(src[ch]) ^ flip;
          sum += src[ch];
        }
        if (need_sums) pixel_sums[p] = sum;
      }
    } else if (need_sums) {
      for (std::size_t p = p0; p < p1; ++p) {
        pixel_sums[p] = plan.gemm->prepare(input + p * cin, cin, xbuf.data() + p * pixel_bytes);
      }
    } else if (p1 > p0) {
      plan.gemm->prepare(input + p0 * cin, (p1 - p0) * cin, xbuf.data() + p0 * pixel_bytes);
    }
  }

  bool run_indirect(const int8_t* input, int8_t* out, ThreadPool* pool, int threads,
                    const RowsDone* done) {
    const detail::GemmPlan& ip = iplan();
    // The input, prepared once (and its per-pixel sums when weight zero points need them).
    // Up to 4 parts per thread (at least 16 pixels each), so that threads which run take a
    // late one's parts, and a whole number per thread, so that thread t prepares the t-th part
    // of the input: the rows the layer before wrote on that thread and its own row blocks read
    // (split_work's whole rows). On the caller alone (below 64 pixels per part, as it was: a
    // 10x10 layer) the caller read the other thread's half of the input and that thread read
    // the caller's prepared copy back, each line across the two cores: with a VM's two vCPUs
    // on different dies the MobileNet-like int8 model's 10x10 and 5x5 layers took 3-5 us
    // more each, 1.16 -> 1.08-1.09 ms in all (0.777 -> 0.780 ms on one die).
    std::size_t parts =
        pool != nullptr && threads > 1
            ? std::max<std::size_t>(1, std::min(4 * static_cast<std::size_t>(threads),
                                                in_pixels / 16))
            : 1;
    parts = whole_parts_per_thread(parts, static_cast<std::size_t>(threads));
    auto prepare = [&](std::size_t part, int) {
      prepare_pixels(input, in_pixels * part / parts, in_pixels * (part + 1) / parts);
    };
    const std::size_t pixels = static_cast<std::size_t>(geo.g.batch) *
                               static_cast<std::size_t>(geo.out_h) *
                               static_cast<std::size_t>(geo.out_w);
    const std::size_t mr = igemm->mr;
    // Work is split in whole calls: groups of igemm_tiles tiles (the last may be short).
    const std::size_t step = igemm_tiles;
    const std::size_t groups = (ip.ntiles + step - 1) / step;
    const detail::WorkSplit split = cached_split(pixels, groups, mr, threads, kConvRowBlock,
                                                 static_cast<std::size_t>(plan.n), step * kTileN);
    // A 1x1 stride-1 layer whose output pixel r reads input pixel r, split by whole rows (one
    // task per row block): each GEMM task prepares its own rows' input first, in the same job,
    // and no other task reads them. The input pass was a pool job of its own before the GEMM's
    // (a hand-off and a wait for the slower thread: 0.5-0.7 us on one die, 1.3-1.7 us with a
    // VM's two vCPUs on different dies), twice per 10x10 or larger pointwise layer: 18 of the
    // MobileNet-like model's 82 jobs per inference at 2 threads. Every pixel is prepared once
    // by the same code either way, so the bytes are the same.
    const bool pass_in_task = !raw_rows && pool != nullptr && threads > 1 && pointwise &&
                              pixels == in_pixels && split.tile_chunks == 1 &&
                              split.tasks() > 1;
    const RowsDone* rows_done = split.tile_chunks == 1 ? done : nullptr;
    if (raw_rows || pass_in_task) {
      // nothing to prepare here: the `_raw` kernel reads the input rows, or each task
      // prepares its own (task below)
    } else if (parts > 1) {
      pool->parallel_for(parts, prepare);
    } else {
      prepare(0, 0);
    }
    auto task = [&](std::size_t t, int thread) {
      const std::size_t rb = split.row_block_of(t), tc = split.tile_chunk_of(t);
      const std::size_t r0 = rb * split.row_block;
      const std::size_t r1 = std::min(pixels, r0 + split.row_block);
      int32_t* sums = workspaces[static_cast<std::size_t>(thread)].sums.data();
      if (pass_in_task) prepare_pixels(input, r0, r1);
      const std::size_t tb = tc * split.tile_chunk * step;
      igemm_rows(input, out, r0, r1, tb, std::min(ip.ntiles, tb + split.tile_chunk * step), sums);
      if (rows_done != nullptr) rows_done->fn(rows_done->ctx, r0, r1);
    };
    if (pool != nullptr && split.tasks() > 1) {
      pool->parallel_for(split.tasks(), task);
    } else {
      for (std::size_t t = 0; t < split.tasks(); ++t) task(t, 0);
    }
    return rows_done != nullptr;
  }

  // Output rows [r0, r1) (at most kConvRowBlock of them), tiles [tb, te) of the indirect conv,
  // their input prepared (xbuf, or the input itself for a `_raw` kernel); `sums`: one
  // thread's workspace for the rows' sums.
  void igemm_rows(const int8_t* input, int8_t* out, std::size_t r0, std::size_t r1,
                  std::size_t tb, std::size_t te, int32_t* sums) {
    const std::size_t cin = static_cast<std::size_t>(geo.g.input_channels);
    const detail::GemmPlan& ip = iplan();
    const std::size_t n = static_cast<std::size_t>(plan.n);
    const std::size_t mr = igemm->mr;
    const std::size_t step = igemm_tiles;
    const std::size_t bpt = cin_pad / ip.kb;
    // Tiles per pass over a row block: their weights stay in L2 (as GemmPlan::compute).
    const std::size_t chunk = std::max<std::size_t>(
        1, (std::size_t{256} << 10) / (ip.kblocks * kBlockBytes) / step) * step;
    if (need_sums) {
      for (std::size_t r = r0; r < r1; ++r) {
        int32_t sum = 0;
        for (std::size_t k = 0; k < taps; ++k) sum += pixel_sums[ind_pixel[r * taps + k]];
        sums[r - r0] = sum;
      }
    }
    // AVX-512 VNNI: the rows go in ceil(rows / mr) calls of nearly equal size (25 rows: 7, 6,
    // 6, 6, not 8, 8, 8, 1): a call of one or two rows has one or two accumulator chains per
    // tile, each vpdpbusd waiting on the last, where the same products in fuller calls issue
    // back to back. Zen 4, int8, 1 thread, profile minimums alternated with the mr-first split:
    // the MobileNet-like model's 5x5 and 10x10 1x1 layers 4-14 % faster (5x5x960 -> 160
    // 0.0211 -> 0.0180 ms), its layer sum 1.371 -> 1.327 ms; the ResNet-like 5x5x512 3x3 layers
    // 3 % (0.310 -> 0.300). AVX2 (6 rows per call) lost 2-4 % on the 5x5 layers (25 rows: 5 x 5
    // where 6 x 4 + 1 was), so other ISAs keep the mr-first split.
    const std::size_t calls = plan.isa == Isa::kAvx512Vnni ? (r1 - r0 + mr - 1) / mr : 0;
    for (std::size_t c0 = tb; c0 < te; c0 += chunk) {
      const std::size_t c1 = std::min(te, c0 + chunk);
      std::size_t rr = 0;
      for (std::size_t r = r0, call = 0; r < r1; r += rr, ++call) {
        rr = calls == 0 ? std::min(mr, r1 - r) : (r1 - r + (calls - call) - 1) / (calls - call);
        // The `_raw` kernels' rows are input pixels; there `ind` is empty (its data() null:
        // no offset may be applied to it, even unused).
        const uint8_t* in_rows[kMaxRawRows];
        const uint8_t* const* rows = in_rows;
        if (raw_rows) {  // 1x1: one tap, row i is input pixel ind_pixel[r + i]
          for (std::size_t i = 0; i < rr; ++i) {
            in_rows[i] = reinterpret_cast<const uint8_t*>(input + ind_pixel[r + i] * cin);
          }
        } else {
          rows = ind.data() + r * taps;
        }
        for (std::size_t tile = c0; tile < c1; tile += step) {
          const std::size_t nc = std::min(step * kTileN, n - tile * kTileN);
          igemm->fn(rr, taps, bpt, ip.data + tile * ip.kblocks * kBlockBytes, rows,
                    sums + (r - r0), ip.qs8, tile, nc, out + r * n + tile * kTileN, n);
        }
      }
    }
  }

  // Conv2D::runs_pixels / run_pixels: any range of a 1x1 stride-1 layer's output pixels, on
  // the calling thread, by the code run() gives a row block (the same bytes: each output row
  // depends only on its input row), in row blocks that fit the thread's workspace.
  bool runs_pixels() const {
    if (!pointwise || plan.output_type != OutputType::kInt8) return false;
    const std::size_t pixels = static_cast<std::size_t>(geo.g.batch) *
                               static_cast<std::size_t>(geo.out_h) *
                               static_cast<std::size_t>(geo.out_w);
    return igemm != nullptr ? pixels == in_pixels : !copy_rows;
  }
  void run_pixels(const int8_t* input, int8_t* output, std::size_t p0, std::size_t p1,
                  int thread) {
    ThreadWorkspace& ws = workspaces.at(static_cast<std::size_t>(thread));
    if (igemm != nullptr) {
      if (!raw_rows) prepare_pixels(input, p0, p1);
      for (std::size_t r = p0; r < p1; r += kConvRowBlock) {
        igemm_rows(input, output, r, std::min(p1, r + kConvRowBlock), 0, iplan().ntiles,
                   ws.sums.data());
      }
      return;
    }
    const bool in_place = reads_in_place(OutputType::kInt8);
    for (std::size_t r = p0; r < p1; r += row_block) {
      gemm_rows(input, reinterpret_cast<uint8_t*>(output), 1, in_place, r,
                std::min(p1, r + row_block), 0, plan.ntiles, ws);
    }
  }

  // split_work's answer for the last thread count (the shape is fixed per plan).
  detail::WorkSplit cached_split(std::size_t rows, std::size_t tiles, std::size_t mr,
                                 int threads, std::size_t max_row_block, std::size_t row_bytes,
                                 std::size_t tile_bytes) {
    if (threads != split_threads) {
      split = detail::split_work(rows, tiles, mr, threads, max_row_block, row_bytes, tile_bytes);
      split_threads = threads;
    }
    return split;
  }

  detail::ResolvedGeometry geo;
  detail::GemmPlan plan;
  detail::WorkSplit split;
  int split_threads = 0;
  std::unique_ptr<PackedWeights> owned;
  bool pointwise = false;
  bool copy_rows = false;      // plan_row_copies
  std::vector<uint8_t> xin;    // the prepared input (copy_rows)
  std::vector<uint8_t> xzero;  // kernel_width pixels of the prepared input zero point
  std::size_t row_block = kConvRowBlock;
  std::vector<ThreadWorkspace> workspaces;
  // The indirect conv (build_indirection); igemm is null where it does not apply.
  const detail::IgemmQs8Kernel* igemm = nullptr;
  std::size_t igemm_tiles = 1;  // 16-channel tiles per call of igemm (1, or 2: igemm_qs8_x2)
  bool raw_rows = false;  // igemm is a `_raw` kernel: rows from the input, ind_pixel's pixels
  static constexpr std::size_t kMaxRawRows = 16;  // >= the `_raw` kernels' mr
  std::size_t in_pixels = 0, taps = 0;
  AlignedBuffer<uint8_t> xbuf;
  std::vector<const uint8_t*> ind;
  std::vector<std::size_t> ind_pixel;  // the same as input pixel indices (for the row sums)
  std::vector<int32_t> pixel_sums;
  bool need_sums = false;
  std::size_t cin_pad = 0;  // channels per pixel of xbuf (input channels, padded to block_k)
  std::size_t pixel_bytes = 0;  // bytes per pixel of xbuf (cin_pad elements of the XFormat)
  int32_t pad_sum = 0;      // the pad channels' share of a pixel sum
  std::unique_ptr<PackedWeights> padded_weights;
  PackedWeightsView padded_view;
  std::unique_ptr<detail::GemmPlan> padded_plan;
};

Conv2D::Conv2D(const PackedWeightsView& weights, const Conv2DOptions& options)
    : impl_(std::make_unique<Impl>(weights, options)) {}

Conv2D::Conv2D(PackedWeights&& weights, const Conv2DOptions& options) {
  auto owned = std::make_unique<PackedWeights>(std::move(weights));
  impl_ = std::make_unique<Impl>(owned->view(), options);
  impl_->owned = std::move(owned);
}

Conv2D::~Conv2D() = default;
Conv2D::Conv2D(Conv2D&&) noexcept = default;
Conv2D& Conv2D::operator=(Conv2D&&) noexcept = default;

void Conv2D::reserve(int max_threads) { impl_->reserve(max_threads); }
void Conv2D::run(const int8_t* input, int8_t* output, ThreadPool* pool) {
  impl_->run(input, output, OutputType::kInt8, pool);
}
void Conv2D::run(const int8_t* input, float* output, ThreadPool* pool) {
  impl_->run(input, output, OutputType::kFloat32, pool);
}
void Conv2D::run(const int8_t* input, int32_t* output, ThreadPool* pool) {
  impl_->run(input, output, OutputType::kInt32, pool);
}
bool Conv2D::run(const int8_t* input, int8_t* output, ThreadPool* pool, const RowsDone& done) {
  return impl_->run(input, output, OutputType::kInt8, pool, &done);
}
bool Conv2D::runs_pixels() const { return impl_->runs_pixels(); }
void Conv2D::run_pixels(const int8_t* input, int8_t* output, std::size_t p0, std::size_t p1,
                        int thread) {
  impl_->run_pixels(input, output, p0, p1, thread);
}
int32_t Conv2D::output_height() const { return impl_->geo.out_h; }
int32_t Conv2D::output_width() const { return impl_->geo.out_w; }
int32_t Conv2D::output_channels() const { return impl_->plan.n; }
const ConvGeometry& Conv2D::geometry() const { return impl_->geo.g; }
OutputType Conv2D::output_type() const { return impl_->plan.output_type; }
Isa Conv2D::isa() const { return impl_->plan.isa; }
const char* Conv2D::kernel_name() const {
  if (impl_->igemm != nullptr && impl_->plan.output_type == OutputType::kInt8) {
    return impl_->igemm->name;
  }
  return impl_->plan.kernel_name(2);
}

std::size_t Conv2D::prepared_bytes() const {
  const Impl& p = *impl_;
  return detail::packed_weights_bytes(p.owned.get()) + p.plan.prepared_bytes() +
         detail::packed_weights_bytes(p.padded_weights.get()) +
         (p.padded_plan ? p.padded_plan->prepared_bytes() : 0);
}

}  // namespace edge
