// 2-D convolution, NHWC, int8 activations and packed int8 / int4 / ternary / 2-bit weights.
//
// TFLite CONV_2D semantics: filter OHWI flattened to packed weights with n = O and
// k = KH * KW * Cin (in that order: kh, kw, cin); stride, dilation, SAME / VALID or explicit
// padding; padded input reads as the input zero point (real 0). The epilogue is the one of
// fully_connected.h (requantise to int8, dequantise to float or raw int32).
//
// Algorithm: im2col per block of output pixels into a per-thread workspace (1x1 stride-1 convs
// read the input rows in place), then the GEMM micro-kernels of fully_connected.h. Output pixels
// are split over the pool's threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "edge/kernels/fully_connected.h"

namespace edge {

enum class Padding { kValid, kSame, kExplicit };

// Output size and leading padding along one axis, exactly as TFLite computes them
// (ComputePaddingHeightWidth): SAME: out = ceil(in / stride), total padding
// max((out - 1) * stride + (kernel - 1) * dilation + 1 - in, 0), before = total / 2;
// VALID: out = (in - (kernel - 1) * dilation - 1) / stride + 1 (0 if negative), before = 0;
// explicit: out = (in + before + after - effective_kernel) / stride + 1.
struct AxisGeometry {
  int32_t output = 0;
  int32_t pad_before = 0;
};
AxisGeometry conv_axis_geometry(int32_t input, int32_t kernel, int32_t stride, int32_t dilation,
                                Padding padding, int32_t pad_before = 0, int32_t pad_after = 0);

// The geometry shared by Conv2D and DepthwiseConv2D.
struct ConvGeometry {
  int32_t batch = 1;
  int32_t input_height = 0, input_width = 0, input_channels = 0;
  int32_t kernel_height = 1, kernel_width = 1;
  int32_t stride_height = 1, stride_width = 1;
  int32_t dilation_height = 1, dilation_width = 1;
  Padding padding = Padding::kValid;
  // Only for Padding::kExplicit.
  int32_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
};

struct Conv2DOptions : LayerOptions {
  ConvGeometry geometry;
};

// What Conv2D::run calls for output rows (pixels, batch-major) [row0, row1) once every channel
// of them is written: on the thread that wrote them, inside the layer's pool job, so that an
// element-wise op on those rows (a residual ADD) needs no job of its own.
struct RowsDone {
  void (*fn)(const void* ctx, std::size_t row0, std::size_t row1) = nullptr;
  const void* ctx = nullptr;
};

// What a layer calls for its output pixels (batch-major) [p0, p1) once every channel of them
// is written: on the thread that wrote them, `thread` being that thread's index in the pool
// (for per-thread scratch), inside the layer's pool job, so that a 1x1 convolution after it
// (Conv2D::run_pixels) computes those pixels there, with no job of its own.
struct PixelsDone {
  void (*fn)(const void* ctx, std::size_t p0, std::size_t p1, int thread) = nullptr;
  const void* ctx = nullptr;
};

class Conv2D {
 public:
  // weights: n = output channels, k = kernel_height * kernel_width * input_channels.
  // `weights.data` must outlive the plan. Throws std::invalid_argument / IsaUnavailableError.
  Conv2D(const PackedWeightsView& weights, const Conv2DOptions& options);
  Conv2D(PackedWeights&& weights, const Conv2DOptions& options);
  ~Conv2D();
  Conv2D(Conv2D&&) noexcept;
  Conv2D& operator=(Conv2D&&) noexcept;

  // Allocates the per-thread im2col workspace for pools of up to `max_threads` threads.
  void reserve(int max_threads);

  // input: [batch][input_height][input_width][input_channels] int8.
  // output: [batch][output_height][output_width][output_channels] of the options' output type.
  void run(const int8_t* input, int8_t* output, ThreadPool* pool = nullptr);
  void run(const int8_t* input, float* output, ThreadPool* pool = nullptr);
  void run(const int8_t* input, int32_t* output, ThreadPool* pool = nullptr);
  // Like run() (int8 output); where the layer's split gives every task whole output rows (all
  // channels), calls `done` once for each task's rows right after writing them and returns
  // true; otherwise runs as run() does and returns false without calling it.
  bool run(const int8_t* input, int8_t* output, ThreadPool* pool, const RowsDone& done);
  // Whether run_pixels applies: a 1x1 stride-1 layer with int8 output (output pixel p reads
  // input pixel p only, so any range of pixels can be computed on its own).
  bool runs_pixels() const;
  // Output pixels [p0, p1), every channel, on the calling thread with workspace `thread` (one
  // reserved for: reserve(threads) before, outside any job); the same bytes as run(). Called
  // from a task of the layer before it (PixelsDone) on the pixels that task wrote.
  void run_pixels(const int8_t* input, int8_t* output, std::size_t p0, std::size_t p1,
                  int thread);

  int32_t output_height() const;
  int32_t output_width() const;
  int32_t output_channels() const;
  const ConvGeometry& geometry() const;
  OutputType output_type() const;
  Isa isa() const;
  const char* kernel_name() const;
  // The bytes the plan keeps from its weights: the packed weights it owns (not a view's: their
  // owner counts those), its per-channel tables (bias terms, requantisation, scales, the fused
  // kernel's per-tile tables) and, where the indirect conv pads each tap's channels, the padded
  // copy of the weights and its tables. Not the per-run buffers (indirection, input copy,
  // workspaces). The runtime reports it as the operator's prepared weights.
  std::size_t prepared_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edge
