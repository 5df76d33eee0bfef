// Depthwise 2-D convolution, NHWC, int8 activations and int8 weights (TFLite
// DEPTHWISE_CONV_2D semantics): output channel oc = ic * depth_multiplier + j reads input
// channel ic; filter [1][KH][KW][Cin * depth_multiplier]; stride, dilation, padding as conv2d.h;
// per-channel requantisation (requant.h), fused bias and clamp. Results are bit-identical on
// every ISA and equal LiteRT's.
//
// Algorithm: for each output pixel, channels are vectorised (16 per AVX-512 or 2 x 8 per AVX2
// register, 8 per NEON pair) and the KH*KW taps accumulate in int32; padded taps point at a row
// of input zero points, so every pixel runs the same code: acc = sum_t x_t * w_t - input_zp *
// sum_t w_t. Interior pixels take their tap pointers at fixed offsets (no bounds checks). Depth
// multipliers other than 1 expand each tap's input channels once per pixel (rare in practice:
// MobileNets use 1).
//
// Fused int8 kernel (AVX-512 VNNI, qs8_qc8w_dwconv_rowx64c4__avx512vnni): when the output is int8,
// the weights minus their zero points fit int8 and the rule needs no int32 saturation, each
// pixel runs accumulation and requantisation in one pass over 64-channel blocks, four taps per
// vpdpbusd (taps interleaved per channel by in-lane unpacks; channel order restored by the
// in-lane packs; blocks of <= 32 channels on ymm). Measured on Zen 4, 1 thread (edge_conv_bench):
// 112x112x32 0.447 -> 0.247 ms, 56x56x144 0.340 -> 0.188 ms, 14x14x512 0.075 -> 0.043 ms
// against the per-pixel 16-channel vpmulld kernel plus the separate epilogue (still used for
// float / int32 outputs and the other ISAs). AVX2 (qs8_qc8w_dwconv_rowx32c4__avx2) runs the same
// layout as two 32-channel halves, each vpdpbusd emulated exactly by two vpmaddwd. Both take a
// whole output row per call ("rowx"): the row's tap pointers are one list of input columns
// (kernel_height pointers each, taps in column-major order) that neighbouring windows share,
// and the weights stay in registers across the row (AVX-512, up to 12 taps); layers with a
// horizontal dilation or a depth multiplier call them per pixel. 112x112x32: 0.25 -> 0.18 ms
// (AVX-512), 0.34 -> 0.30 ms (AVX2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "edge/kernels/conv2d.h"

namespace edge {

// What a depthwise layer calls inside its pool job for input rows [row0, row1) of its (batch 1)
// input before it reads them, on thread `thread`: the 1x1 layer before it (a MobileNet block's
// expansion) computes them there (Conv2D::run_pixels), each row once, in the task that owns it
// (DepthwiseConv2D::run with InputRows), so that the expansion needs no pool job of its own.
struct InputRows {
  void (*fn)(const void* ctx, std::size_t row0, std::size_t row1, int thread) = nullptr;
  const void* ctx = nullptr;
};

struct DepthwiseConv2DOptions : LayerOptions {
  ConvGeometry geometry;
  int32_t depth_multiplier = 1;
  // Rounding of the output channels past the last multiple of 8 (default: `rounding`).
  // LiteRT's optimised DEPTHWISE_CONV_2D (its general kernel: always on x86, on Arm whenever
  // the 3x3 kernels do not apply) requantises channels in vectors of 8 with Rounding::kUpward and
  // the C % 8 leftover channels with scalar gemmlowp code, i.e. Rounding::kAwayFromZero; set
  // this to kAwayFromZero (with rounding = kUpward) to reproduce it bit for bit.
  std::optional<Rounding> tail_rounding;
};

class DepthwiseConv2D {
 public:
  // filter: [kernel_height][kernel_width][input_channels * depth_multiplier] int8 (TFLite's
  // [1, KH, KW, C] without the leading 1); scales: num_scales (1 or C * depth_multiplier);
  // zero_points: nullable (all 0) or [C * depth_multiplier]. Everything is copied.
  DepthwiseConv2D(const int8_t* filter, const float* scales, int32_t num_scales,
                  const int32_t* zero_points, const DepthwiseConv2DOptions& options);
  ~DepthwiseConv2D();
  DepthwiseConv2D(DepthwiseConv2D&&) noexcept;
  DepthwiseConv2D& operator=(DepthwiseConv2D&&) noexcept;

  void reserve(int max_threads);

  // input: [batch][H][W][C]; output: [batch][OH][OW][C * depth_multiplier].
  void run(const int8_t* input, int8_t* output, ThreadPool* pool = nullptr);
  void run(const int8_t* input, float* output, ThreadPool* pool = nullptr);
  void run(const int8_t* input, int32_t* output, ThreadPool* pool = nullptr);
  // Like run() (int8 output); where the split gives every task whole output rows, runs tasks
  // of several whole rows (2 per thread) and calls `done` for each task's rows (every channel)
  // right after writing them, on that thread, inside the layer's pool job (a 1x1 convolution
  // after it computes them there: Conv2D::run_pixels), and returns true; otherwise runs as
  // run() does and returns false without calling it.
  bool run(const int8_t* input, int8_t* output, ThreadPool* pool, const PixelsDone& done);
  // Whether run() with InputRows applies on `threads` threads: batch 1, int8 output, and no
  // output row's window (its input rows) spans more than two tasks' input rows.
  bool takes_input_rows(int threads) const;
  // Like run() with `done`, the input written inside the job: 2 tasks per thread (as the
  // PixelsDone run), task t owning an even share of the input rows. Task t first has `rows`
  // compute its input rows, then runs the output rows whose windows lie in them and `done` on
  // those; the rows whose windows span tasks t and t + 1 (one or two per boundary for a 3x3
  // layer) and `done` on them run in whichever of the two tasks is done with its part last (an
  // atomic count per boundary: no task waits for another, no input row is computed twice).
  // Each output byte is computed once, by the code run() uses: the bytes of 1 thread.
  // Requires takes_input_rows(threads) (else throws std::invalid_argument before running).
  void run(const int8_t* input, int8_t* output, ThreadPool* pool, const PixelsDone& done,
           const InputRows& rows);

  int32_t output_height() const;
  int32_t output_width() const;
  int32_t output_channels() const;
  OutputType output_type() const;
  Isa isa() const;
  const char* kernel_name() const;
  // Bytes the plan keeps for the whole model run, derived from the filter at construction:
  // the int32 taps, the fused kernel's copy (widened to int16 on AVX2) and its tables, the
  // epilogue arrays. Counted from the plan's own buffers, so it stays true when a kernel's
  // layout changes; per-thread workspaces (reserve) are not included.
  std::size_t prepared_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edge
